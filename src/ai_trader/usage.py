"""Token and dollar accounting: what each model request used, each day's total, and a book's.

The rules:

* Each chat-completion response's ``usage`` is kept with the reply in the day's log: prompt,
  completion and cached prompt tokens (``prompt_tokens_details.cached_tokens``). A response
  without a usable ``usage`` is recorded as ``null``: unknown, never 0.
* A day's total is one row of the book's ``position/usage.jsonl``: the requests made, how
  many said nothing of their usage (``unknown``), the tokens of those that did, and the
  dollars. It is written just before the day commits, replacing any row an interrupted
  attempt of that day left; only rows of committed days count, so a committed day's total is
  that of the attempt that committed it.
* Dollars come from the model's price table (``pricing``, per million tokens): cached prompt
  tokens at the cached rate (the input rate when none is given), the rest of the prompt at
  the input rate, the completion at the output rate. A day with no request costs 0 (the
  built-in strategy asks no model). A day with a request and no price table, or with a
  request of unknown usage, has an unknown cost (``null``).
* A book's total sums its committed days. Tokens are unknown when any day's are (a request
  without usage, or a day with no row: a book written before this accounting), and the
  reason names the first such day; the cost likewise. Trading fees are summed from the
  book's rows (``this_action.fee``, see ``costs``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, StrictFloat, StrictInt, TypeAdapter, ValidationError
from typing_extensions import TypedDict

from ai_trader.context import MOMENT_PATTERN
from ai_trader.costs import Pricing
from ai_trader.fsutil import atomic_write_jsonl
from ai_trader.jsonl import BadLine, read_strict
from ai_trader.metrics import Figure

# How the summary, the report and the dashboard write a book's accounting: (key, heading,
# format), as ``metrics.DISPLAY`` does for the metrics.
DISPLAY: tuple[tuple[str, str, str], ...] = (
    ("fees", "fees", "{:,.2f}"),
    ("tokens", "tokens", "{:,.0f}"),
    ("cost_usd", "LLM cost", "${:,.2f}"),
)
FORMATS = {key: pattern for key, _, pattern in DISPLAY}


@dataclass(frozen=True)
class Usage:
    """The tokens one request used, as the API reported them."""

    prompt: int
    completion: int
    cached: int = 0  # of the prompt tokens, those the API served from its cache

    def to_json(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "cached_tokens": self.cached,
        }


def _count(value: object) -> int | None:
    ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
    return value if ok else None  # type: ignore[return-value]


def usage_of(response: object) -> Usage | None:
    """The usage a chat-completion response (the SDK's object) reports; None when it has none
    or one that is not counts of tokens."""
    usage = getattr(response, "usage", None)
    if usage is None:
        return None
    prompt = _count(getattr(usage, "prompt_tokens", None))
    completion = _count(getattr(usage, "completion_tokens", None))
    if prompt is None or completion is None:
        return None
    details = getattr(usage, "prompt_tokens_details", None)
    cached = _count(getattr(details, "cached_tokens", None)) or 0
    return Usage(prompt, completion, min(cached, prompt))


@dataclass
class DayTally:
    """One day's requests as they come (``add``), and its row (``row``)."""

    pricing: Pricing | None = None
    requests: int = 0
    unknown: int = 0
    prompt: int = 0
    completion: int = 0
    cached: int = 0
    known_cost: float = 0.0

    def add(self, usage: Usage | None) -> None:
        self.requests += 1
        if usage is None:
            self.unknown += 1
            return
        self.prompt += usage.prompt
        self.completion += usage.completion
        self.cached += usage.cached
        if self.pricing is not None:
            self.known_cost += self.pricing.cost(usage.prompt, usage.completion, usage.cached)

    @property
    def cost(self) -> float | None:
        if self.requests == 0:
            return 0.0
        if self.unknown or self.pricing is None:
            return None
        return round(self.known_cost, 6)

    def row(self, day: str) -> dict[str, Any]:
        return {
            "date": day,
            "requests": self.requests,
            "unknown": self.unknown,
            "prompt_tokens": self.prompt,
            "completion_tokens": self.completion,
            "cached_tokens": self.cached,
            "cost_usd": self.cost,
        }


Count = Annotated[StrictInt, Field(ge=0)]


class UsageRow(TypedDict):
    date: Annotated[str, Field(strict=True, pattern=MOMENT_PATTERN)]
    requests: Count
    unknown: Count
    prompt_tokens: Count
    completion_tokens: Count
    cached_tokens: Count
    cost_usd: Annotated[StrictFloat | StrictInt, Field(ge=0, allow_inf_nan=False)] | None


_ROW = TypeAdapter(UsageRow)


def _usage_row(line: str) -> dict[str, Any]:
    try:
        return dict(_ROW.validate_json(line))
    except ValidationError:
        raise BadLine("not a usage row") from None


_ROWS = TypeAdapter(list[UsageRow])


def read_usage(path: Path) -> list[dict[str, Any]]:
    """The rows of a ``usage.jsonl`` ([] when there is none), or UserError naming the first
    line that is not a usage row."""
    try:
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        # One parse of the whole file (a long book has thousands of rows); a file it refuses
        # is read again a line at a time, to name the line.
        return [dict(row) for row in _ROWS.validate_json(f"[{','.join(lines)}]")]
    except FileNotFoundError:
        return []
    except (OSError, UnicodeDecodeError, ValidationError):
        return read_strict(path, _usage_row)


def record_day(path: Path, row: Mapping[str, Any]) -> None:
    """Write ``row`` as its day's total, atomically; rows of that day or later (left by an
    interrupted attempt) go."""
    kept = [r for r in read_usage(path) if r["date"] < row["date"]]
    atomic_write_jsonl(path, [*kept, row])


@dataclass(frozen=True)
class Totals:
    """A book's accounting over its committed days."""

    requests: int
    prompt_tokens: Figure
    completion_tokens: Figure
    cached_tokens: Figure
    cost_usd: Figure
    fees: Figure  # trading fees paid

    @property
    def tokens(self) -> Figure:
        """Prompt and completion tokens together."""
        if self.prompt_tokens.value is None:
            return self.prompt_tokens
        if self.completion_tokens.value is None:
            return self.completion_tokens
        return Figure.of(self.prompt_tokens.value + self.completion_tokens.value)

    def to_json(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "tokens": self.tokens.to_json(),
            "prompt_tokens": self.prompt_tokens.to_json(),
            "completion_tokens": self.completion_tokens.to_json(),
            "cached_tokens": self.cached_tokens.to_json(),
            "cost_usd": self.cost_usd.to_json(),
            "fees": self.fees.to_json(),
        }


def fees_paid(rows: Iterable[Mapping[str, Any]]) -> Figure:
    """The trading fees a book's rows record (0 for a book without costs)."""
    fees = [
        float(action["fee"])
        for row in rows
        if isinstance(action := row.get("this_action"), Mapping)
        and isinstance(action.get("fee"), int | float)
    ]
    return Figure.of(math.fsum(fees))


def committed_days(rows: Iterable[Mapping[str, Any]]) -> list[str]:
    """The days a book has committed: the dates of its rows with an action, in order."""
    days: list[str] = []
    for row in rows:
        if row.get("this_action") is not None and (not days or days[-1] != row["date"]):
            days.append(row["date"])
    return days


def _why_unknown(row: Mapping[str, Any] | None, day: str, what: str) -> str | None:
    if row is None:
        return f"no usage recorded for {day} (a book written before token accounting)"
    if row["unknown"]:
        return f"{row['unknown']} request(s) on {day} returned no usage"
    if what == "cost" and row["cost_usd"] is None:
        return f"no price table for the model on {day} (set pricing in the config)"
    return None


def totals(rows: Sequence[Mapping[str, Any]], usage_rows: Iterable[Mapping[str, Any]]) -> Totals:
    """The accounting of a book from its rows and its usage rows (one pass over its days: a
    long book has thousands)."""
    by_day = {row["date"]: row for row in usage_rows}
    requests, prompt, completion, cached = 0, 0, 0, 0
    dollars: list[float] = []
    tokens_why: str | None = None  # why the tokens are unknown: the first day that says
    cost_why: str | None = None
    for day in committed_days(rows):
        row = by_day.get(day)
        if row is not None:
            requests += row["requests"]
            prompt += row["prompt_tokens"]
            completion += row["completion_tokens"]
            cached += row["cached_tokens"]
            if row["cost_usd"] is not None:
                dollars.append(float(row["cost_usd"]))
        if row is not None and not row["unknown"] and row["cost_usd"] is not None:
            continue  # the usual day: everything known
        if tokens_why is None:
            tokens_why = _why_unknown(row, day, "tokens")
        if cost_why is None:
            cost_why = _why_unknown(row, day, "cost")

    def figure(value: float, why: str | None) -> Figure:
        return Figure.na(why) if why is not None else Figure.of(value)

    return Totals(
        requests,
        figure(float(prompt), tokens_why),
        figure(float(completion), tokens_why),
        figure(float(cached), tokens_why),
        figure(math.fsum(dollars), cost_why),
        fees_paid(rows),
    )


def combined(books: Mapping[str, Totals]) -> Totals:
    """The accounting of several books together (by signature): a figure is unknown when
    any book's is, and the reason names that book."""

    def added(key: str) -> Figure:
        for name, paid in books.items():
            figure: Figure = getattr(paid, key)
            if figure.value is None:
                return Figure.na(f"{name}: {figure.reason}")
        return Figure.of(math.fsum(getattr(paid, key).value for paid in books.values()))

    return Totals(
        sum(paid.requests for paid in books.values()),
        added("prompt_tokens"),
        added("completion_tokens"),
        added("cached_tokens"),
        added("cost_usd"),
        added("fees"),
    )


def spent(usage_rows: Iterable[Mapping[str, Any]], days: Iterable[str]) -> tuple[float, float]:
    """The dollars spent over ``days`` (committed) and the dearest of them; ValueError naming
    the first day whose cost is unknown."""
    by_day = {row["date"]: row for row in usage_rows}
    costs = []
    for day in days:
        row = by_day.get(day)
        why = _why_unknown(row, day, "cost")
        if why is not None:
            raise ValueError(why)
        assert row is not None
        costs.append(float(row["cost_usd"]))
    return math.fsum(costs), max(costs, default=0.0)
