"""Every market this version trades, by the name and frequency a config gives.

Adding a market: a module under ``market/`` that builds a ``Market`` (``us`` is the
model), listed here, with its tests.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ai_trader.errors import UserError
from ai_trader.market.base import FREQUENCIES, Market
from ai_trader.market.cn import CN_DAILY, CN_HOURLY
from ai_trader.market.crypto import CRYPTO_DAILY
from ai_trader.market.us import US_DAILY, US_HOURLY

DEFAULT = US_DAILY
MARKETS: dict[str, Market] = {
    m.key: m for m in (US_DAILY, US_HOURLY, CN_DAILY, CN_HOURLY, CRYPTO_DAILY)
}
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


def market_of_books(configs: Iterable[Mapping[str, object] | None], where: str) -> Market:
    """The one market the books of a folder trade, from the configs their manifests record
    (``run.json``; None for a book without one, which names no market). The US when none
    names one; a one-line UserError when they name more than one."""
    named: dict[str, Market] = {}
    for config in configs:
        if config is None:
            continue
        name, frequency = config.get("market"), config.get("frequency")
        found = market_for(
            name if isinstance(name, str) else None,
            frequency if isinstance(frequency, str) else None,
            where=where,
        )
        named[found.key] = found
    if len(named) > 1:
        raise UserError(
            f"{where}: books of several markets ({', '.join(sorted(named))}) in one folder; "
            "report each market's folder of books on its own"
        )
    return next(iter(named.values()), DEFAULT)
