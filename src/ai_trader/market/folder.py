"""Which market a run trades and which market a data folder holds: what the container's
entrypoint asks before it fetches, and what ``fetch`` and ``merge`` check before they write.

The rules:

* A config's market is its ``market`` and ``frequency`` keys (``Market.key``: ``us``,
  ``cn``, ...). A config that cannot be read, or names no known market, gives the US here:
  the run reads the config again and refuses it with its own one-line message before it
  trades, so this reading never decides what a bad config means.
* One data folder per market. A folder holding the price files of another market is
  refused with one line before anything is written: two markets' prices in one folder
  would mix in ``merged.jsonl`` and in the books. So is a folder of the same market at the
  other frequency (daily against hourly bars: the same symbols), told by the series one of
  its price files holds.
* Light: a config that names no market costs a JSON read and a folder listing; the
  markets' modules are imported only when a config names one or the folder holds a file
  the US universe does not know.

``python -m ai_trader.market.folder CONFIG DATA_DIR [NAME...]`` prints the package's
version, the config's market, the folder's problem (empty when none) and then the
data folder's names (``ai_trader.layout``'s), one a line: the entrypoint's one question to
the package before the run, in one process.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from ai_trader import layout
from ai_trader.layout import PRICE_PREFIX, PRICE_SUFFIX

if TYPE_CHECKING:
    from ai_trader.market.base import Market

DEFAULT_KEY = "us"


def config_market(path: Path) -> str:
    """The key of the market a config names; the US for one that names none, or that the
    run will refuse (see the module's rules)."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return DEFAULT_KEY
    if not isinstance(raw, dict) or ("market" not in raw and "frequency" not in raw):
        return DEFAULT_KEY
    from ai_trader.errors import UserError
    from ai_trader.market.markets import market_for

    name, frequency = raw.get("market"), raw.get("frequency")
    if not isinstance(name, str | None) or not isinstance(frequency, str | None):
        return DEFAULT_KEY
    try:
        return market_for(name, frequency).key
    except UserError:
        return DEFAULT_KEY


def price_symbols(data_dir: Path) -> list[str]:
    """The symbols whose price files the folder holds (none for a missing folder)."""
    try:
        names = os.listdir(data_dir)
    except OSError:
        return []
    return sorted(
        name[len(PRICE_PREFIX) : -len(PRICE_SUFFIX)]
        for name in names
        if name.startswith(PRICE_PREFIX) and name.endswith(PRICE_SUFFIX)
    )


def other_market(data_dir: Path, key: str) -> str | None:
    """One line when the folder holds price files of a market other than ``key``'s;
    None when it holds none (files of no known market are not this check's business)."""
    symbols = price_symbols(data_dir)
    if not symbols:
        return None
    from ai_trader.market.markets import MARKETS

    own = set(MARKETS[key].all_symbols)
    foreign = [symbol for symbol in symbols if symbol not in own]
    for other in MARKETS.values():
        theirs = [symbol for symbol in foreign if symbol in set(other.all_symbols)]
        if theirs and other.name != MARKETS[key].name:
            example = f"{PRICE_PREFIX}{theirs[0]}{PRICE_SUFFIX}"
            return (
                f"{data_dir} holds the {other.name} market's prices ({len(theirs)} file(s) "
                f"such as {example}); a {key} run needs a data folder of its own "
                "(one data folder per market)"
            )
    return other_frequency(data_dir, symbols, MARKETS[key])


def other_frequency(data_dir: Path, symbols: list[str], market: Market) -> str | None:
    """One line when the folder's price files hold the other frequency's bars (the first
    file of the market's own that can be read tells: its series key comes in its first
    bytes)."""
    from ai_trader.market.base import SERIES_KEYS

    for symbol in symbols:
        if symbol not in market.all_symbols:
            continue
        try:
            with open(data_dir / f"{PRICE_PREFIX}{symbol}{PRICE_SUFFIX}", "rb") as file:
                head = file.read(4096).decode("utf-8", "replace")
        except OSError:
            continue
        held = [freq for freq, key in SERIES_KEYS.items() if f'"{key}"' in head]
        if held and market.frequency not in held:
            return (
                f"{data_dir} holds {held[0]} prices of the {market.name} market "
                f"({PRICE_PREFIX}{symbol}{PRICE_SUFFIX}); a {market.key} run needs a data "
                "folder of its own (one data folder per market and frequency)"
            )
        return None
    return None


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print("usage: python -m ai_trader.market.folder CONFIG DATA_DIR [NAME...]", file=sys.stderr)
        return 2
    from ai_trader import __version__

    key = config_market(Path(argv[0]))
    problem = other_market(Path(argv[1]), key)
    print(__version__, key, problem or "", sep="\n")
    return layout.main(argv[2:]) if argv[2:] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
