"""Every path of the data folder, named in one place.

The layout (``DATA_DIR``, ``/app/data`` in the container)::

    daily_prices_<SYMBOL>.json        one per symbol: Alpha Vantage's reply, or the sample
    merged.jsonl                      every symbol in the original benchmark's shape
    .prices.lock                      held by fetch and merge, the price files' one writer
    agent_data/                       the books (a config's log_path may name another
                                      folder, always inside DATA_DIR)
        <signature>/
            .lock                     held by the run trading the signature (its token inside)
            position/position.jsonl   the committed book
            position/pending.jsonl    the trades of the day in progress
            log/<YYYY-MM-DD>/log.jsonl  the day's messages and tool calls

A file is replaced atomically through a temporary ``.<name>.<random>.tmp`` in its own
folder; a killed write leaves one behind, which the folder's next writer removes.

Every module, the tests and the entrypoint take these names from here (the entrypoint asks
``python -m ai_trader.layout NAME...``, which prints each value on a line of its own).
This module imports nothing of the package: it is the floor everything stands on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

PRICE_PREFIX, PRICE_SUFFIX = "daily_prices_", ".json"
PRICE_GLOB = f"{PRICE_PREFIX}*{PRICE_SUFFIX}"
MERGED_NAME = "merged.jsonl"
PRICES_LOCK_NAME = ".prices.lock"
AGENT_DATA = "agent_data"
LOCK_NAME = ".lock"
POSITION_DIR = "position"
POSITION_NAME = "position.jsonl"
STAGE_NAME = "pending.jsonl"
USAGE_NAME = "usage.jsonl"  # each committed day's model requests, tokens and dollars
MANIFEST_NAME = "run.json"  # what produced the book (manifest)
LOG_DIR = "log"
LOG_NAME = "log.jsonl"
TEMP_PREFIX, TEMP_SUFFIX = ".", ".tmp"
TEMP_GLOB = f"{TEMP_PREFIX}*{TEMP_SUFFIX}"


def price_file(data_dir: Path, symbol: str) -> Path:
    """One symbol's TIME_SERIES_DAILY reply, under the original benchmark's name."""
    return data_dir / f"{PRICE_PREFIX}{symbol}{PRICE_SUFFIX}"


def merged_file(data_dir: Path) -> Path:
    return data_dir / MERGED_NAME


def prices_lock_file(data_dir: Path) -> Path:
    return data_dir / PRICES_LOCK_NAME


def books_dir(data_dir: Path) -> Path:
    """Where the books live unless a config's log_path names another folder."""
    return data_dir / AGENT_DATA


def temp_prefix(target: Path) -> str:
    """The start of the name of a temporary file that will replace ``target``."""
    return f"{TEMP_PREFIX}{target.name}."


@dataclass(frozen=True)
class BookPaths:
    """The files of one signature's book: ``root`` is ``<books>/<signature>``."""

    root: Path

    @property
    def signature(self) -> str:
        return self.root.name

    @property
    def lock_file(self) -> Path:
        return self.root / LOCK_NAME

    @property
    def position_dir(self) -> Path:
        return self.root / POSITION_DIR

    @property
    def position_file(self) -> Path:
        return self.position_dir / POSITION_NAME

    @property
    def pending_file(self) -> Path:
        return self.position_dir / STAGE_NAME

    @property
    def manifest_file(self) -> Path:
        return self.root / MANIFEST_NAME

    @property
    def usage_file(self) -> Path:
        return self.position_dir / USAGE_NAME

    def log_file(self, day: str) -> Path:
        return self.root / LOG_DIR / day / LOG_NAME


def book_paths(books: Path, signature: str) -> BookPaths:
    return BookPaths(books / signature)


# The names a shell script may ask for (``python -m ai_trader.layout NAME...``).
SHELL_NAMES = {
    "PRICE_GLOB": PRICE_GLOB,
    "MERGED_NAME": MERGED_NAME,
    "AGENT_DATA": AGENT_DATA,
}


def main(argv: list[str]) -> int:
    unknown = [name for name in argv if name not in SHELL_NAMES]
    if unknown or not argv:
        known = ", ".join(SHELL_NAMES)
        print(f"usage: python -m ai_trader.layout NAME... (names: {known})", file=sys.stderr)
        return 2
    print("\n".join(SHELL_NAMES[name] for name in argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
