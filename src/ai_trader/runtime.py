"""The run state shared by the agent and the services: who is trading, and on which day.

The agent writes it before each trading session; the trade and prices services
read it on every call. It lives in one small JSON file at an absolute path
(``RUNTIME_ENV_PATH``), written atomically, so no process depends on its
working directory and no reader ever sees half a file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ai_trader.fsutil import atomic_write_json


@dataclass(frozen=True)
class RunState:
    signature: str
    today_date: str
    log_path: str  # absolute: where <signature>/position/ lives

    @property
    def signature_dir(self) -> Path:
        return Path(self.log_path) / self.signature


def write_state(path: Path, state: RunState) -> None:
    atomic_write_json(path, asdict(state))


def read_state(path: Path) -> RunState | None:
    """The current state, or None when no trading session has been set up."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return RunState(
            signature=str(raw["signature"]),
            today_date=str(raw["today_date"]),
            log_path=str(raw["log_path"]),
        )
    except (FileNotFoundError, json.JSONDecodeError, KeyError, TypeError):
        return None


def clear_state(path: Path) -> None:
    path.unlink(missing_ok=True)
