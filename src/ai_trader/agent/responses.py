"""Recorded model responses: keep each chat-completion request's response, and answer from it.

The rules (a model entry's ``responses`` setting picks the mode):

* A request's **key** is the sha256 of its canonical JSON (keys sorted, no spaces): the
  model, the messages, the tools and every sampling parameter sent. Two requests with the
  same key are the same request.
* ``record``: every response of a day is kept, in order, with its key and its step, and the
  day's record (``responses/<day>.jsonl`` beside the book) is written atomically just before
  the day commits, as its usage row is. A day stopped before its commit keeps no record of
  its own; its redo records the day again and replaces whatever an earlier attempt left, so
  no request is kept twice.
* ``replay``: each request is answered from the day's record: the first entry with the same
  key not yet used that day. No network at all: no client is made and no key is needed. A
  request the record does not hold is an error naming the step (the runner adds the day);
  it never falls through to the API.
* ``off`` (the default): nothing is recorded or read.
"""

from __future__ import annotations

import hashlib
import json
from collections import deque
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from ai_trader.fsutil import atomic_write_jsonl
from ai_trader.jsonl import BadLine, read_strict

Mode = Literal["off", "record", "replay"]
MODES: tuple[Mode, ...] = ("off", "record", "replay")
RECORD_DIR = "responses"


class NotRecorded(Exception):
    """Replay met a request its record does not hold; the message names the step."""


def request_key(request: Mapping[str, Any]) -> str:
    """The sha256 of the request's canonical JSON."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def record_file(folder: Path, day: str) -> Path:
    return folder / f"{day}.jsonl"


def _entry(line: str) -> dict[str, Any]:
    try:
        entry = json.loads(line)
    except ValueError:
        entry = None
    if not (isinstance(entry, dict) and isinstance(entry.get("key"), str)):
        raise BadLine("not a recorded response")
    if not isinstance(entry.get("response"), dict):
        raise BadLine("not a recorded response")
    return entry


def read_record(path: Path) -> list[dict[str, Any]]:
    """The entries of one day's record, or UserError naming the line that is not one."""
    return read_strict(path, _entry)


def has_record(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*.jsonl"))


class Recording:
    """One model's responses in one mode, a day at a time (``start_day``, then each request
    through ``recorded``/``keep``, then ``commit``)."""

    def __init__(self, mode: Mode, folder: Path) -> None:
        self.mode = mode
        self.folder = folder
        self._kept: list[dict[str, Any]] = []
        self._answers: dict[str, deque[dict[str, Any]]] = {}
        self._day: str | None = None

    def start_day(self, day: str) -> None:
        self._day = day
        self._kept = []
        self._answers = {}
        if self.mode == "replay":
            for entry in read_record(record_file(self.folder, day)):
                self._answers.setdefault(entry["key"], deque()).append(entry["response"])

    def recorded(self, key: str, step: int) -> dict[str, Any]:
        """Replay: the recorded response to the request with ``key``, or NotRecorded."""
        queue = self._answers.get(key)
        if not queue:
            where = record_file(self.folder, self._day or "?")
            raise NotRecorded(
                f"replay: step {step}'s request (key {key[:12]}) is not in the record {where}; "
                "replay answers only requests the record holds (record the day again)"
            )
        return queue.popleft()

    def keep(self, key: str, step: int, response: dict[str, Any]) -> None:
        """Record: one response, in the order it came."""
        self._kept.append({"step": step, "key": key, "response": response})

    def commit(self, day: str) -> None:
        """Record: write the day's record, replacing an earlier attempt's."""
        if self.mode == "record":
            atomic_write_jsonl(record_file(self.folder, day), self._kept)
