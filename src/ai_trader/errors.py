"""The exception types that mean "the user gave us something wrong" or "the run failed".

The CLI prints them as a single line and exits non-zero; anything else is a bug
and keeps its traceback (shown with ``-v``).
"""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pydantic is not imported to print --help
    from pydantic import ValidationError


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


def first_problem(error: ValidationError) -> tuple[tuple[str | int, ...], str, object]:
    """Where pydantic's first problem is (``loc``), its type and the offending input: what a
    file format's owner turns into its own words (a book row, a price line, a reply)."""
    found = error.errors(include_url=False)[0]
    return tuple(found["loc"]), found["type"], found.get("input")


def problems(error: ValidationError, whole: str = "(top level)") -> list[str]:
    """Each problem pydantic found as ``where: message``, ``where`` the dotted key path
    (``whole`` when it is the value itself): the one translation the config and the tool
    arguments share."""
    lines = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or whole
        lines.append(f"{where}: {str(item['msg']).removeprefix('Value error, ')}")
    return lines


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
