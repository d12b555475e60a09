"""The exception types that mean "the user gave us something wrong" or "the run failed".

The CLI prints them as a single line and exits non-zero; anything else is a bug
and keeps its traceback (shown with ``-v``).
"""

from __future__ import annotations

import errno


class UserError(Exception):
    """A problem with input, configuration or environment that the user can fix."""

    exit_code = 2


class RunFailed(UserError):
    """The input was fine but the run could not finish (a model API kept failing, say)."""

    exit_code = 1


def describe(exc: BaseException) -> str:
    """One line for an error: an OSError as ``reason: path``, anything else as its text."""
    if isinstance(exc, OSError) and exc.strerror:
        where = exc.filename if exc.filename is not None else ""
        return f"{exc.strerror}: {where}" if where else exc.strerror
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


# Errors a user fixes by changing a setting or a folder (exit 2); any other OSError (a
# full disk, an I/O error) is a run that could not finish (exit 1).
_USER_FIXABLE = frozenset(
    {
        errno.EACCES,
        errno.EPERM,
        errno.EROFS,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
        errno.EEXIST,
        errno.ENOENT,
    }
)


def from_os_error(exc: OSError) -> UserError:
    """An OSError as the one-line error the CLI prints."""
    kind = UserError if exc.errno in _USER_FIXABLE else RunFailed
    return kind(describe(exc))
