"""JSON-lines files, read two ways: strictly and leniently.

A format's owner (``market.pricebook`` for prices, ``ledger`` for positions) writes one
function that turns a line into a value or raises ``BadLine`` saying why not. The agent and
the services read strictly: the first bad line is a one-line error. The dashboard reads
leniently: each bad line is skipped and reported with its file, line number and reason.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

from ai_trader.errors import UserError

T = TypeVar("T")


class BadLine(ValueError):
    """One line a format's owner cannot use; the message says why."""


@dataclass(frozen=True)
class Skipped:
    """A line (or a whole file, ``line`` None) a lenient read could not use, and why."""

    file: str
    line: int | None
    reason: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.reason}"


@dataclass
class Lenient(Generic[T]):
    """What a lenient read found: the usable values (None when the file does not exist)
    and the lines it skipped."""

    values: list[T] | None
    skipped: list[Skipped] = field(default_factory=list)


def numbered(text: str) -> Iterator[tuple[int, str]]:
    """Each non-blank line with its 1-based number."""
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line


def read_strict(path: Path, parse: Callable[[str], T]) -> list[T]:
    """Every line of ``path`` through ``parse`` ([] when there is no file), or UserError
    naming the file, the first line ``parse`` refuses and why."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read it ({exc})") from None
    values = []
    for number, line in numbered(text):
        try:
            values.append(parse(line))
        except BadLine as exc:
            raise UserError(f"{path}:{number}: {exc}") from None
    return values


def read_lenient(path: Path, parse: Callable[[str], T]) -> Lenient[T]:
    """Every line ``parse`` accepts; the others, and an unreadable file, are reported."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Lenient(None)
    except (OSError, UnicodeDecodeError) as exc:
        return Lenient(None, [Skipped(str(path), None, f"cannot read the file: {exc}")])
    return parse_lenient(str(path), numbered(text), parse)


def parse_lenient(
    name: str, lines: Iterator[tuple[int, str]], parse: Callable[[str], T]
) -> Lenient[T]:
    """``parse`` over numbered lines, skipping and reporting each it refuses."""
    found = Lenient[T]([])
    assert found.values is not None
    for number, line in lines:
        try:
            found.values.append(parse(line))
        except BadLine as exc:
            found.skipped.append(Skipped(name, number, str(exc)))
    return found


def loads(line: str, parse_constant: Callable[[str], Any] | None = None) -> Any:
    """One line as JSON; BadLine for invalid JSON or nesting too deep for the parser.

    ``json.JSONDecodeError`` is re-raised as is (the ledger tells a truncated last line
    by it), after the other failures have become BadLine.
    """
    try:
        return json.loads(line, parse_constant=parse_constant)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise BadLine("nested too deeply") from None
    except ValueError as exc:  # parse_constant's refusal (NaN, Infinity)
        raise BadLine(str(exc)) from None
