"""Crash-safe file writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ai_trader.layout import TEMP_SUFFIX, temp_prefix


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: Path, text: str, durable: bool = True) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder, then rename.

    ``durable``: flush the data to the disk before the rename, so that the new file also
    survives a power cut. Leave it off only for a file that nothing reads after a restart:
    the rename alone already shows every reader the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        # mkstemp makes the file 0600; give it the mode an ordinary open() would, so
        # results stay readable by the host user (backups, the dashboard).
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, data: Any, durable: bool = True) -> None:
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=False) + "\n", durable)


def jsonl_line(value: Any) -> str:
    """``value`` as one line of a JSON-lines file, the way each of ours is written."""
    return json.dumps(value, separators=(", ", ": ")) + "\n"


def atomic_write_jsonl(path: Path, rows: Iterable[Any]) -> None:
    atomic_write_text(path, "".join(map(jsonl_line, rows)))
