"""The run context: which book a tool call trades on, and which day is "today".

The agent's MCP client sends it with every tool call, in the request's ``_meta`` under
``ai-trader/run``; the model never sees or sets it. The services read it from each request,
so any number of runs and signatures share one set of services, and no state lives in a
shared file. A call without a context (someone's own MCP client) gets a tool error that
says what to send.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from pathlib import Path

# A reverse-DNS-style prefix, as the MCP specification asks of custom ``_meta`` keys.
META_KEY = "ai-trader/run"
SIGNATURE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
_SIGNATURE = re.compile(SIGNATURE_PATTERN)
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class ContextError(ValueError):
    """The request's run context is missing or unusable; the message says why."""


@dataclass(frozen=True)
class RunContext:
    signature: str
    today: str  # YYYY-MM-DD, the simulated trading day
    log_path: str  # absolute: the folder that holds <signature>/position/

    @property
    def signature_dir(self) -> Path:
        return Path(self.log_path) / self.signature

    def to_meta(self) -> dict[str, dict[str, str]]:
        """The ``_meta`` entry for a tool call."""
        return {
            META_KEY: {"signature": self.signature, "today": self.today, "log_path": self.log_path}
        }


def valid_day(text: object) -> bool:
    """True for a real calendar day written YYYY-MM-DD."""
    if not isinstance(text, str) or not _DAY.match(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def _entry(meta: Mapping[str, object] | None) -> Mapping[str, object]:
    raw = (meta or {}).get(META_KEY)
    if raw is None:
        raise ContextError(
            f"no run context: this tool needs the agent's {META_KEY!r} entry in the request's "
            "_meta (signature, today, log_path); ai-trader run sends it"
        )
    if not isinstance(raw, Mapping):
        raise ContextError(f"run context {META_KEY!r} must be an object")
    return raw


def today_from_meta(meta: Mapping[str, object] | None) -> str:
    """Only the simulated day of a request (all that prices and search need)."""
    today = _entry(meta).get("today")
    if not valid_day(today):
        raise ContextError(f"run context: today {today!r} is not a YYYY-MM-DD date")
    return str(today)


def from_meta(meta: Mapping[str, object] | None) -> RunContext:
    """The whole context a request carries; raises ContextError naming what is wrong."""
    raw = _entry(meta)
    today = today_from_meta(meta)
    signature, log_path = raw.get("signature"), raw.get("log_path")
    if not isinstance(signature, str) or not _SIGNATURE.match(signature):
        raise ContextError(f"run context: signature {signature!r} is not a plain folder name")
    if not isinstance(log_path, str) or not Path(log_path).is_absolute():
        raise ContextError(f"run context: log_path {log_path!r} is not an absolute path")
    return RunContext(signature, today, log_path)
