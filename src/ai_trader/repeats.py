"""Repeats: one model run N times as separate books, and what the spread of their results says.

The rules (the formulas are written out in docs/METRICS.md, "Repeats"):

* ``run --repeat N`` trades each enabled model N times, as the books ``<signature>.r1`` to
  ``<signature>.rN``; a book named that way belongs to the repeat group ``<signature>``.
* For a group of n >= 2 books, each of the cumulative return, Sharpe and max drawdown gets
  its mean, its sample standard deviation (n - 1 in the denominator) and a 95% confidence
  interval for the mean, ``mean ± t(0.975, n - 1) · sd / √n`` (Student's t).
* A book whose figure is n/a leaves the group's figure n/a, naming it: a mean over the
  books that happen to have a value would be another quantity.
* When every repeat gives the same value (a deterministic strategy, or a replay), the
  interval is n/a and says so, never a zero-width interval that reads as certainty.
* Two groups are compared on their cumulative returns with Welch's t test (unequal
  variances, Welch-Satterthwaite degrees of freedom); the two-sided p value comes from
  Student's t distribution. With no spread in either group there is no test (n/a).
* Student's t distribution is computed here, from the regularised incomplete beta function
  (its continued fraction), and checked against published quantiles in the tests: no
  statistics library enters the image.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ai_trader.context import valid_signature
from ai_trader.errors import UserError
from ai_trader.metrics import Figure

if TYPE_CHECKING:  # the report groups repeats without loading the config's models
    from ai_trader.config import ModelEntry

_REPEAT = re.compile(r"(?P<base>.+)\.r(?P<n>[1-9][0-9]*)")
CONFIDENCE = 0.95
FIGURES = ("cumulative_return", "sharpe", "max_drawdown")


def repeat_signature(signature: str, number: int) -> str:
    return f"{signature}.r{number}"


def repeated(models: Sequence[ModelEntry], times: int) -> list[ModelEntry]:
    """Each model ``times`` times as the books ``<signature>.r1`` ... (itself when once);
    UserError when a repeat's signature would not be a valid one."""
    if times < 1:
        raise UserError(f"--repeat must be 1 or more, got {times}")
    if times == 1:
        return list(models)
    found = []
    for entry in models:
        for number in range(1, times + 1):
            signature = repeat_signature(entry.signature, number)
            if not valid_signature(signature):
                raise UserError(
                    f"model {entry.signature}: its repeat book {signature!r} is not a valid "
                    "signature (at most 128 characters); shorten the signature"
                )
            found.append(entry.model_copy(update={"signature": signature}))
    return found


def group_of(signature: str) -> str | None:
    """The repeat group a book's signature names (``m.r3`` -> ``m``), or None."""
    found = _REPEAT.fullmatch(signature)
    return found.group("base") if found else None


# --- Student's t -------------------------------------------------------------------------------


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            h *= d * c
        if abs(d * c - 1.0) < eps:
            break
    return h


def incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularised incomplete beta function I_x(a, b), for 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    log_front = (
        math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    )
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T <= t) for Student's t with ``df`` degrees of freedom."""
    tail = 0.5 * incomplete_beta(df / 2.0, 0.5, df / (df + t * t))
    return 1.0 - tail if t >= 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T <= t) = p (0.5 < p < 1), by bisection on ``t_cdf``."""
    low, high = 0.0, 1.0
    while t_cdf(high, df) < p:
        high *= 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if t_cdf(middle, df) < p:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


# --- a group's spread --------------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """One figure over a group's repeats."""

    n: int
    mean: Figure
    sd: Figure
    low: Figure  # the 95% confidence interval of the mean
    high: Figure

    def to_json(self) -> dict[str, object]:
        return {"n": self.n, "mean": self.mean.to_json(), "sd": self.sd.to_json(),
                "ci95": [self.low.to_json(), self.high.to_json()]}  # fmt: skip


def spread(values: Mapping[str, Figure]) -> Spread:
    """The mean, sd and 95% interval of one figure over the books (by signature)."""
    n = len(values)
    missing = next((name for name, f in values.items() if f.value is None), None)
    if missing is not None:
        why = Figure.na(f"{missing}: {values[missing].reason}")
        return Spread(n, why, why, why, why)
    numbers = [f.value for f in values.values() if f.value is not None]
    mean = math.fsum(numbers) / n
    if n < 2:
        one = Figure.na("one repeat: no spread")
        return Spread(n, Figure.of(mean), one, one, one)
    sd = math.sqrt(math.fsum((x - mean) ** 2 for x in numbers) / (n - 1))
    if sd == 0.0:
        same = Figure.na(f"the {n} repeats are identical (a deterministic strategy or a replay)")
        return Spread(n, Figure.of(mean), Figure.of(0.0), same, same)
    half = t_quantile(0.5 + CONFIDENCE / 2, n - 1) * sd / math.sqrt(n)
    return Spread(n, Figure.of(mean), Figure.of(sd), Figure.of(mean - half), Figure.of(mean + half))


@dataclass(frozen=True)
class Welch:
    """Welch's t test of two groups' means: the difference (a - b), t, df and p."""

    a: str
    b: str
    difference: Figure
    t: Figure
    df: Figure
    p: Figure

    def to_json(self) -> dict[str, object]:
        return {"a": self.a, "b": self.b, "difference": self.difference.to_json(),
                "t": self.t.to_json(), "df": self.df.to_json(), "p": self.p.to_json()}  # fmt: skip


def welch(a: str, xs: Sequence[float], b: str, ys: Sequence[float]) -> Welch:
    """Welch's two-sided t test of mean(xs) = mean(ys)."""
    n, m = len(xs), len(ys)
    if n < 2 or m < 2:
        why = Figure.na("each group needs two repeats or more")
        return Welch(a, b, why, why, why, why)
    mx, my = math.fsum(xs) / n, math.fsum(ys) / m
    vx = math.fsum((x - mx) ** 2 for x in xs) / (n - 1)
    vy = math.fsum((y - my) ** 2 for y in ys) / (m - 1)
    difference = Figure.of(mx - my)
    se2 = vx / n + vy / m
    if se2 == 0.0:
        why = Figure.na("no spread in either group: every repeat gave the same return")
        return Welch(a, b, difference, why, why, why)
    t = (mx - my) / math.sqrt(se2)
    df = se2**2 / ((vx / n) ** 2 / (n - 1) + (vy / m) ** 2 / (m - 1))
    p = 2.0 * (1.0 - t_cdf(abs(t), df))
    return Welch(a, b, difference, Figure.of(t), Figure.of(df), Figure.of(p))


# --- groups of a leaderboard -------------------------------------------------------------------


@dataclass(frozen=True)
class Group:
    """The books of one model's repeats, and each figure's spread over them."""

    name: str
    members: tuple[str, ...]
    spreads: Mapping[str, Spread]  # by figure name (``FIGURES``)

    def to_json(self) -> dict[str, object]:
        return {"model": self.name, "books": list(self.members),
                **{key: spread.to_json() for key, spread in self.spreads.items()}}  # fmt: skip


def groups(figures: Mapping[str, Mapping[str, Figure]]) -> list[Group]:
    """The repeat groups among the books (by signature, each with its figures by name) that
    have two books or more, by name."""
    members: dict[str, list[str]] = {}
    for signature in figures:
        base = group_of(signature)
        if base is not None:
            members.setdefault(base, []).append(signature)
    found = []
    for base, books in sorted(members.items()):
        if len(books) < 2:
            continue
        books.sort(key=lambda s: int(s.rsplit(".r", 1)[1]))
        spreads = {key: spread({b: figures[b][key] for b in books}) for key in FIGURES}
        found.append(Group(base, tuple(books), spreads))
    return found


def comparisons(found: Sequence[Group], figures: Mapping[str, Mapping[str, Figure]]) -> list[Welch]:
    """Welch's test of each pair of groups on the cumulative return (n/a when a book's is)."""
    tests = []
    for index, a in enumerate(found):
        for b in found[index + 1 :]:
            xs = [figures[s]["cumulative_return"].value for s in a.members]
            ys = [figures[s]["cumulative_return"].value for s in b.members]
            if any(v is None for v in (*xs, *ys)):
                why = Figure.na("a book's cumulative return is n/a")
                tests.append(Welch(a.name, b.name, why, why, why, why))
                continue
            tests.append(welch(a.name, [v for v in xs if v is not None], b.name,
                               [v for v in ys if v is not None]))  # fmt: skip
    return tests
