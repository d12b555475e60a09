"""What a run pays: trading costs (what a fill costs beyond the open price), and the prices
of a model's tokens (``Pricing``, applied by ``usage``).

The rules (one schedule a run, from its config's ``trading`` section; all 0 by default):

* **Slippage** moves the fill against the trader: a buy fills at
  ``open * (1 + slippage_bps / 10000)``, a sell at ``open * (1 - slippage_bps / 10000)``,
  rounded to 4 decimals (a hundredth of a cent).
* **Commission** is charged on each trade's gross value, ``fill * shares`` (rounded to 4
  decimals, as cash is): ``max(min_commission, gross * commission_bps / 10000)``, rounded
  to 4 decimals. ``min_commission`` alone is a flat fee per trade.
* A buy pays ``gross + fee`` from cash; a sell adds ``gross - fee``. Cash never goes
  negative: a buy that cash does not cover, or a sale whose fee is more than the sale and
  the cash together, is refused, and the refusal names the fill and the fee.
* A run with every cost at 0 is **free**: it fills at the open and charges nothing, and its
  book is byte-identical to one written before costs existed (no ``price`` or ``fee`` in
  its rows). A run with any cost records the fill price and the fee in each trade's row
  (``this_action.price``, ``this_action.fee``), so the book alone says what was paid.
* Metrics are net of costs because they are computed from the cash the book holds.
"""

from __future__ import annotations

import math
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass, fields

BASIS = 10_000  # basis points in a whole
# Bounds of a sane schedule: 10% a trade in slippage or commission is far beyond any
# market's, and a fee above a million is a typo, not a schedule.
MAX_BPS = 1_000.0
MAX_MIN_COMMISSION = 1_000_000.0


def _bounded(name: str, value: object, ceiling: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{name} must be a number, got {reprlib.repr(value)}")
    number = float(value)
    if not math.isfinite(number) or number < 0 or number > ceiling:
        raise ValueError(f"{name} must be between 0 and {ceiling:g}, got {reprlib.repr(value)}")
    return number


_CEILINGS = {
    "commission_bps": MAX_BPS,
    "min_commission": MAX_MIN_COMMISSION,
    "slippage_bps": MAX_BPS,
}


@dataclass(frozen=True)
class Costs:
    commission_bps: float = 0.0
    min_commission: float = 0.0
    slippage_bps: float = 0.0

    def __post_init__(self) -> None:
        # Checked here, so a schedule from a config and one from a run context obey the
        # same bounds; stored as floats, so 10 and 10.0 are one schedule.
        for name, ceiling in _CEILINGS.items():
            object.__setattr__(self, name, _bounded(name, getattr(self, name), ceiling))

    @classmethod
    def from_mapping(cls, raw: Mapping[str, object]) -> Costs:
        """The schedule in ``raw`` (the keys of the dataclass only); ValueError naming a
        key that is unknown or out of bounds."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            names = ", ".join(sorted(known))
            raise ValueError(f"unknown cost {reprlib.repr(unknown[0])} (known: {names})")
        return cls(**raw)  # type: ignore[arg-type]  # each value is checked on creation

    def to_json(self) -> dict[str, float]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def free(self) -> bool:
        return not (self.commission_bps or self.min_commission or self.slippage_bps)

    def fill_price(self, action: str, open_price: float) -> float:
        """The price ``action`` ("buy" or "sell") fills at, given the day's open."""
        if not self.slippage_bps:
            return open_price
        sign = 1 if action == "buy" else -1
        return round(open_price * (1 + sign * self.slippage_bps / BASIS), 4)

    def fee(self, gross: float) -> float:
        """The commission on a trade of ``gross`` value."""
        if not (self.commission_bps or self.min_commission):
            return 0.0
        return round(max(self.min_commission, gross * self.commission_bps / BASIS), 4)

    def affordable(self, budget: float, open_price: float) -> int:
        """The most whole shares a buy at ``open_price`` can take, fill and fee included,
        without spending more than ``budget``."""
        if self.free:
            return max(0, math.floor(budget / open_price))
        price = self.fill_price("buy", open_price)
        shares = max(0, math.floor(budget / (price * (1 + self.commission_bps / BASIS))))
        # The minimum fee, and rounding, can make the estimate too many by a few shares.
        while shares > 0 and (gross := round(price * shares, 4)) + self.fee(gross) > budget:
            shares -= 1
        return shares

    def describe(self) -> str:
        """The schedule in words, for a refusal or a summary: "2 bp slippage, 10 bp
        commission (at least 1.00)"; "no costs" when free."""
        if self.free:
            return "no costs"
        parts = []
        if self.slippage_bps:
            parts.append(f"{self.slippage_bps:g} bp slippage")
        if self.commission_bps:
            least = f" (at least {self.min_commission:.2f})" if self.min_commission else ""
            parts.append(f"{self.commission_bps:g} bp commission{least}")
        elif self.min_commission:
            parts.append(f"a {self.min_commission:.2f} fee a trade")
        return ", ".join(parts)


FREE = Costs()


MILLION = 1_000_000


@dataclass(frozen=True)
class Pricing:
    """Dollars per million tokens."""

    input_per_million: float
    output_per_million: float
    cached_input_per_million: float | None = None

    def cost(self, prompt: int, completion: int, cached: int = 0) -> float:
        """The dollars of one request: ``cached`` of its ``prompt`` tokens at the cached
        rate (the input rate when none is given), the rest at the input rate, and the
        ``completion`` tokens at the output rate."""
        cached_rate = self.cached_input_per_million
        if cached_rate is None:
            cached_rate = self.input_per_million
        fresh = prompt - cached
        return (
            fresh * self.input_per_million
            + cached * cached_rate
            + completion * self.output_per_million
        ) / MILLION
