"""Every market this version trades, by the name and frequency a config gives.

Adding a market: a module under ``market/`` that builds a ``Market`` (``us`` is the
model), listed here, with its tests.
"""

from __future__ import annotations

from ai_trader.errors import UserError
from ai_trader.market.base import FREQUENCIES, Market
from ai_trader.market.cn import CN_DAILY
from ai_trader.market.crypto import CRYPTO_DAILY
from ai_trader.market.us import US_DAILY

DEFAULT = US_DAILY
MARKETS: dict[str, Market] = {m.key: m for m in (US_DAILY, CN_DAILY, CRYPTO_DAILY)}
NAMES: tuple[str, ...] = tuple(dict.fromkeys(m.name for m in MARKETS.values()))


def market_for(name: str | None, frequency: str | None = None, *, where: str = "config") -> Market:
    """The market a config names (us and daily when it names none), or a one-line
    UserError naming what is unknown."""
    name = name or DEFAULT.name
    frequency = frequency or "daily"
    if name not in NAMES:
        raise UserError(f"{where}: market: unknown market {name!r} (known: {', '.join(NAMES)})")
    if frequency not in FREQUENCIES:
        raise UserError(
            f"{where}: frequency: unknown frequency {frequency!r} (known: {', '.join(FREQUENCIES)})"
        )
    key = name if frequency == "daily" else f"{name}-{frequency}"
    found = MARKETS.get(key)
    if found is None:
        offered = ", ".join(m.frequency for m in MARKETS.values() if m.name == name)
        raise UserError(
            f"{where}: frequency: market {name!r} does not trade {frequency} in this version "
            f"(it trades: {offered})"
        )
    return found


def market_by_key(key: str) -> Market | None:
    """The market a run context or ``serve --market`` names (``Market.key``), or None."""
    return MARKETS.get(key)
