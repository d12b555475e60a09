"""The crypto benchmark ``BASKET``: an equal-weight index of the coins, derived from their
price files (it has no Alpha Vantage symbol of its own).

The rule:

* Only days every coin has a bar for count (the common days); any other day is left out.
* The base is the first common day: the index opens there at 1000.
* Every common day after it the basket is rebalanced to equal weights at the previous
  common day's close: a day's open and close are the previous close times the mean, over
  the coins, of each coin's open (close) over its previous close. On the base day the
  close is 1000 times the mean of each coin's close over its open.
* So a day's return is the plain mean of the coins' returns that day, whatever the base:
  fetching a longer or shorter history moves the level, never the returns.
* Open and close only: a basket's intraday high and low are not the sum of its coins'
  (they need not peak together), and a wrong number is worse than none.
* Every coin's file must be there and usable (the merge's rules). When one is missing or
  unusable, no index is written (an existing BASKET file stays as it was) and the reason
  is one line (``BasketRefused``): an index of fewer coins would be another index.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ai_trader.fsutil import atomic_write_json
from ai_trader.layout import price_file
from ai_trader.market.fetching import LAST_REFRESHED_KEY
from ai_trader.market.merge import MalformedPrices, check_reply
from ai_trader.market.pricebook import META_KEY, SERIES_KEY

BASE_LEVEL = 1000.0


class BasketRefused(Exception):
    """The index cannot be derived: a coin's file is missing or unusable, or the coins
    share no day."""


def _coin_bars(data_dir: Path, coin: str) -> dict[str, tuple[float, float]]:
    """A coin's (open, close) by day, from its file; BasketRefused when it is not usable."""
    path = price_file(data_dir, coin)
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BasketRefused(f"{coin} has no price file") from None
    except (OSError, ValueError) as exc:
        raise BasketRefused(f"{coin}'s price file is unreadable ({exc})") from None
    try:
        check_reply(coin, payload)
    except MalformedPrices as exc:
        raise BasketRefused(f"{coin}'s price file is unusable ({exc})") from None
    return {
        day: (float(bar["1. open"]), float(bar["4. close"]))
        for day, bar in payload[SERIES_KEY].items()
    }


def basket_payload(data_dir: Path, coins: Sequence[str], symbol: str) -> dict[str, Any]:
    """The index of ``coins`` by the module's rule, as a daily file for ``symbol``."""
    if not coins:
        raise BasketRefused("the basket has no coins")
    bars = {coin: _coin_bars(data_dir, coin) for coin in coins}
    common = sorted(set.intersection(*(set(by_day) for by_day in bars.values())))
    if not common:
        raise BasketRefused(f"{', '.join(coins)} share no day")
    count = len(coins)
    series: dict[str, dict[str, str]] = {}
    base = common[0]
    level_open = BASE_LEVEL
    level_close = BASE_LEVEL * sum(bars[c][base][1] / bars[c][base][0] for c in coins) / count
    series[base] = {"1. open": f"{level_open:.4f}", "4. close": f"{level_close:.4f}"}
    for previous, day in itertools.pairwise(common):
        start = level_close
        level_open = start * sum(bars[c][day][0] / bars[c][previous][1] for c in coins) / count
        level_close = start * sum(bars[c][day][1] / bars[c][previous][1] for c in coins) / count
        series[day] = {"1. open": f"{level_open:.4f}", "4. close": f"{level_close:.4f}"}
    return {
        META_KEY: {
            "1. Information": (
                f"Equal-weight index of {', '.join(coins)}, rebalanced at each close, "
                f"{BASE_LEVEL:g} at the open of {base} (open and close only)"
            ),
            "2. Symbol": symbol,
            LAST_REFRESHED_KEY: common[-1],
            "4. Output Size": "Full size",
            "5. Time Zone": "UTC",
            "6. Source": "derived by ai-trader from the coins' price files",
        },
        # Newest first, as Alpha Vantage lists its days.
        SERIES_KEY: dict(reversed(series.items())),
    }


def write_basket(data_dir: Path, coins: Sequence[str], symbol: str) -> Path:
    """Derive the index and write it atomically as ``symbol``'s price file; BasketRefused
    (nothing written) by the module's rule."""
    payload = basket_payload(data_dir, coins, symbol)
    check_reply(symbol, payload)  # the merge's rules hold for what is written
    path = price_file(data_dir, symbol)
    try:
        unchanged = json.loads(path.read_text(encoding="utf-8")) == payload
    except (OSError, ValueError):
        unchanged = False
    if not unchanged:  # the same index again leaves the file as it was
        atomic_write_json(path, payload)
    return path
