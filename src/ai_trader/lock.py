"""Exclusive locks that die with their process: one writer per signature, one price writer.

``flock`` locks belong to an open file, so the kernel drops them when the holder exits,
however it exits (``kill -9`` included): there is never a stale lock to clean up by hand.
They hold across containers that share the folder through a bind mount (one kernel).
The holder writes who it is into the file, so a refused process can say who holds it,
and a random token that only it was told: the run sends that token with each tool call,
and the trade service trades only while the lock is held with it (``check_token``). The
file is readable by its owner alone (the user that runs both the run and the services).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hmac
import json
import os
import secrets
import socket
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

from ai_trader.errors import UserError
from ai_trader.layout import TEMP_GLOB, BookPaths, prices_lock_file

# A reader (the dashboard) takes a shared lock for an instant to see whether anyone holds
# the file; a writer that collides with it waits this long before calling the lock taken.
PATIENCE_SECONDS = 1.0


class LockHeld(UserError):
    """Another live process holds the lock."""


@dataclass(frozen=True)
class Holder:
    pid: int
    host: str
    since: str
    token: str = ""  # empty in a file written before tokens, or by someone else

    def describe(self) -> str:
        return f"pid {self.pid} on {self.host} (since {self.since})"


def _parse_holder(text: str) -> Holder | None:
    """Who wrote the lock file, or None when its content is not ours (a reader never fails
    on what it finds there)."""
    try:
        raw = json.loads(text)
        return Holder(
            int(raw["pid"]), str(raw["host"]), str(raw["since"]), str(raw.get("token", ""))
        )
    except (ValueError, KeyError, TypeError, RecursionError, OverflowError):
        return None


def _try_lock(fd: int, mode: int) -> bool:
    try:
        fcntl.flock(fd, mode | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise
    return True


class ExclusiveLock:
    """``with ExclusiveLock(path, "signature x"):`` or a LockHeld naming the holder."""

    def __init__(
        self,
        path: Path,
        what: str,
        busy: str = "is already being run by",
        patience: float = PATIENCE_SECONDS,
    ) -> None:
        self.path = path
        self.what = what
        self.busy = busy
        self.patience = patience
        self._fd: int | None = None
        self.token = ""  # set while held: what the holder's tool calls carry

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            deadline = time.monotonic() + self.patience
            while not _try_lock(fd, fcntl.LOCK_EX):
                if time.monotonic() >= deadline:
                    holder = _parse_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
                    who = holder.describe() if holder else "another process"
                    raise LockHeld(f"{self.what} {self.busy} {who}")
                time.sleep(0.05)
            me = Holder(
                os.getpid(),
                socket.gethostname(),
                datetime.now(UTC).isoformat(timespec="seconds"),
                secrets.token_hex(16),
            )
            os.fchmod(fd, 0o600)  # the token is a secret of the run's user
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me.__dict__).encode(), 0)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self.token = me.token

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        self.token = ""
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # no holder any more
        os.close(fd)  # closing drops the lock

    def __enter__(self) -> ExclusiveLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def holder(path: Path) -> Holder | None:
    """Who holds the lock at ``path`` now, or None when nobody does (read-only friendly)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if _try_lock(fd, fcntl.LOCK_SH):
            return None  # nobody holds it exclusively; closing drops our shared lock
        text = os.pread(fd, 4096, 0).decode("utf-8", "replace")
        return _parse_holder(text) or Holder(0, "unknown", "unknown")
    finally:
        os.close(fd)


def check_token(path: Path, token: str) -> str | None:
    """None when a live process holds the lock at ``path`` with ``token``; else why not.

    Never follows a symbolic link: the lock is the signature folder's own file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return "no run holds it (it has no lock file)"
    except OSError as exc:
        return f"its lock file cannot be read ({exc.strerror})"
    try:
        if _try_lock(fd, fcntl.LOCK_SH):
            return "no run holds it now"
        found = _parse_holder(os.pread(fd, 4096, 0).decode("utf-8", "replace"))
    finally:
        os.close(fd)
    if found is None or not found.token or not hmac.compare_digest(found.token, token):
        return "the call's token is not that of the run that holds it"
    return None


def signature_lock(signature_dir: Path) -> ExclusiveLock:
    return ExclusiveLock(BookPaths(signature_dir).lock_file, f"signature {signature_dir.name!r}")


def prices_lock(data_dir: Path) -> ExclusiveLock:
    """Held by fetch and merge, the only writers of the price files."""
    return ExclusiveLock(
        prices_lock_file(data_dir),
        f"the price files in {data_dir}",
        busy="are being written by",
        patience=0,
    )


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files a killed atomic write left in ``folder`` (call it while
    holding the lock of everything that writes there)."""
    removed: list[Path] = []
    try:
        candidates = list(folder.glob(TEMP_GLOB))
    except OSError:
        return removed
    for path in candidates:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
            removed.append(path)
    return removed
