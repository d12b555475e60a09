"""Which of a config's books one process trades: all, the models named, or one shard.

The rules:

* The books are the enabled models in config order, each repeated when ``--repeat`` asks
  (``repeats.repeated``).
* ``--model NAME`` (given once or more) keeps the books of the models whose ``name`` or
  ``signature`` is NAME; a NAME that matches no enabled model is a one-line error listing
  the enabled ones.
* ``--shard I/N`` keeps every N-th book starting with the I-th (1 <= I <= N): the books are
  dealt round-robin, so N processes (an indexed job's completions, a swarm job's tasks)
  trade every book exactly once between them. A shard with no book trades nothing.
* Each book is still one signature under its lock: two processes given the same book are
  refused by the lock, never both written.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ai_trader.config import ModelEntry
from ai_trader.errors import UserError
from ai_trader.repeats import group_of

_SHARD = re.compile(r"([1-9][0-9]*)/([1-9][0-9]*)")


@dataclass(frozen=True)
class Shard:
    index: int  # 1-based
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def shard_of(text: str) -> Shard:
    """``--shard``'s value; ValueError stating the rule."""
    found = _SHARD.fullmatch(text)
    if not found or int(found.group(1)) > int(found.group(2)):
        raise ValueError("must be I/N with 1 <= I <= N, for example 2/4")
    return Shard(int(found.group(1)), int(found.group(2)))


def _names(book: ModelEntry) -> set[str]:
    """What ``--model`` may call a book: its model's name, its signature, or the signature
    its repeats share."""
    return {book.name, book.signature, group_of(book.signature) or book.signature}


def chosen(
    books: Sequence[ModelEntry], names: Sequence[str] = (), shard: Shard | None = None
) -> list[ModelEntry]:
    """The books this process trades (see the rules)."""
    kept = list(books)
    if names:
        wanted = set(names)
        unknown = sorted(wanted - {n for b in books for n in _names(b)})
        if unknown:
            enabled = ", ".join(sorted({b.name for b in books}))
            raise UserError(
                f"--model {unknown[0]}: no enabled model of that name or signature "
                f"(enabled: {enabled})"
            )
        kept = [b for b in kept if wanted & _names(b)]
    if shard is not None:
        kept = kept[shard.index - 1 :: shard.count]
    return kept
