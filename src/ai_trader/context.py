"""The run context: which book a tool call trades on, and which day is "today".

The agent's MCP client sends it with every tool call, in the request's ``_meta`` under
``ai-trader/run``; the model never sees or sets it. The services read it from each request,
so any number of runs and signatures share one set of services, and no state lives in a
shared file. A call without a context (someone's own MCP client) gets a tool error that
says what to send.

The rules (the trade service enforces the last two, see ``services.trade``):

* ``signature`` is one plain folder name, ``today`` a real YYYY-MM-DD day (an hourly
  market's slot: YYYY-MM-DD HH:MM:SS); both are matched whole (a trailing newline is
  refused).
* ``books`` is the folder of the books *relative to the services' own data folder*
  (``agent_data`` by default): never absolute, never ``..``. The services derive every path
  from their own ``DATA_DIR``, this folder and the signature, so a call cannot name a file
  elsewhere, and a run and services that see the data folder at different paths (a
  container and its host) still agree.
* ``token`` is the secret the run wrote into the signature's lock when it took it
  (``lock.ExclusiveLock``): a trade is accepted only while a live process holds that lock
  with that token, so only the run that holds a signature trades for it.
* ``costs`` is the run's trading costs (``costs.Costs``, from its config's ``trading``
  section). It is sent only when some cost is set: no entry means no costs, so a free run's
  calls are what they were before costs existed. Costs are the run's own choice for its
  own book, like its day, so they travel with the call and the services keep none.
* ``market`` is the market the run trades (``market.base.Market.key``: ``cn``,
  ``crypto``). It is sent only when it is not the default ``us``, so a US run's calls are
  what they were before markets existed. The services serve one market and refuse a call
  for another.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import PurePosixPath

from ai_trader.costs import FREE, Costs

# A reverse-DNS-style prefix, as the MCP specification asks of custom ``_meta`` keys.
META_KEY = "ai-trader/run"
# Matched whole (``fullmatch``): with ``re.match``, ``$`` also accepts a trailing newline.
_SIGNATURE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")
# An hourly market's slot: the day and the bar's time, as upstream's hourly books write it.
_SLOT = re.compile(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}")
# What a book's row, a usage row and a price bar are dated with: a day or a slot.
MOMENT_PATTERN = r"^\d{4}-\d{2}-\d{2}( \d{2}:\d{2}:\d{2})?$"
_TOKEN = re.compile(r"[0-9a-f]{32}")  # secrets.token_hex(16), as the lock writes it
_MARKET = re.compile(r"[a-z][a-z0-9-]{0,31}")
DEFAULT_MARKET = "us"
# One component of ``books``: a plain name a file system takes (no '.', '..' or '/').
_PART = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,254}")
MAX_BOOKS_LENGTH = 1024


class ContextError(ValueError):
    """The request's run context is missing or unusable; the message says why."""


def shown(value: object, limit: int = 64) -> str:
    """``repr(value)``, cut short: a message stays one readable line whatever was sent."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


@dataclass(frozen=True)
class RunContext:
    signature: str
    today: str  # YYYY-MM-DD, the simulated trading day (YYYY-MM-DD HH:MM:SS: an hourly slot)
    books: str  # relative to the data folder: the folder that holds <signature>/position/
    token: str  # the signature lock's token (see the module's docstring)
    costs: Costs = FREE  # the run's trading costs
    market: str = DEFAULT_MARKET  # the market's key (see the module's docstring)

    def to_meta(self) -> dict[str, dict[str, object]]:
        """The ``_meta`` entry for a tool call."""
        entry: dict[str, object] = {
            "signature": self.signature,
            "today": self.today,
            "books": self.books,
            "token": self.token,
        }
        if not self.costs.free:
            entry["costs"] = self.costs.to_json()
        if self.market != DEFAULT_MARKET:
            entry["market"] = self.market
        return {META_KEY: entry}


def valid_day(text: object) -> bool:
    """True for a real calendar day written YYYY-MM-DD."""
    if not isinstance(text, str) or not _DAY.fullmatch(text):
        return False
    try:
        date.fromisoformat(text)
    except ValueError:
        return False
    return True


def valid_slot(text: object) -> bool:
    """True for an hourly slot written YYYY-MM-DD HH:MM:SS, a real day and time."""
    if not isinstance(text, str) or not _SLOT.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def valid_moment(text: object) -> bool:
    """A trading day (daily markets) or an hourly slot: what a book's rows are dated."""
    return valid_day(text) or valid_slot(text)


def valid_signature(text: object) -> bool:
    return isinstance(text, str) and _SIGNATURE.fullmatch(text) is not None


def valid_books(text: object) -> bool:
    """True for a relative folder of plain names: ``agent_data``, ``sweeps/october``."""
    if not isinstance(text, str) or not text or len(text) > MAX_BOOKS_LENGTH:
        return False
    return all(_PART.fullmatch(part) for part in text.split("/"))


def books_folder(books: str) -> PurePosixPath:
    """``books`` as a relative path, or ContextError."""
    if not valid_books(books):
        raise ContextError(
            f"run context: books {shown(books)} is not a folder inside the data folder "
            f"(relative, plain names separated by '/', at most {MAX_BOOKS_LENGTH} characters)"
        )
    return PurePosixPath(books)


def _entry(meta: Mapping[str, object] | None) -> Mapping[str, object]:
    raw = (meta or {}).get(META_KEY)
    if raw is None:
        raise ContextError(
            f"no run context: this tool needs the agent's {META_KEY!r} entry in the request's "
            "_meta (signature, today, books, token); ai-trader run sends it"
        )
    if not isinstance(raw, Mapping):
        raise ContextError(f"run context {META_KEY!r} must be an object")
    return raw


def today_from_meta(meta: Mapping[str, object] | None) -> str:
    """Only the simulated day of a request (all that prices and search need)."""
    today = _entry(meta).get("today")
    if not valid_moment(today):
        raise ContextError(
            f"run context: today {shown(today)} is not a YYYY-MM-DD date "
            "(nor an hourly slot, YYYY-MM-DD HH:MM:SS)"
        )
    return str(today)


def from_meta(meta: Mapping[str, object] | None) -> RunContext:
    """The whole context a request carries; raises ContextError naming what is wrong."""
    raw = _entry(meta)
    today = today_from_meta(meta)
    signature, books, token = raw.get("signature"), raw.get("books"), raw.get("token")
    if not valid_signature(signature):
        raise ContextError(f"run context: signature {shown(signature)} is not a plain folder name")
    if not isinstance(books, str):
        raise ContextError(
            f"run context: books {shown(books)} is not a folder inside the data folder"
        )
    books_folder(books)
    if not isinstance(token, str) or not _TOKEN.fullmatch(token):
        raise ContextError(
            "run context: token is missing or not 32 hex digits (the run that holds the "
            "signature's lock sends it)"
        )
    assert isinstance(signature, str)
    return RunContext(signature, today, books, token, _costs(raw.get("costs")), _market(raw))


def _market(raw: Mapping[str, object]) -> str:
    market = raw.get("market", DEFAULT_MARKET)
    if not isinstance(market, str) or not _MARKET.fullmatch(market):
        raise ContextError(f"run context: market {shown(market)} is not a market's name")
    return market


def market_from_meta(meta: Mapping[str, object] | None) -> str:
    """Only the market of a request (``us`` when it names none)."""
    return _market(_entry(meta))


def _costs(raw: object) -> Costs:
    if raw is None:
        return FREE
    if not isinstance(raw, Mapping):
        raise ContextError("run context: costs must be an object (commission_bps, ...)")
    try:
        return Costs.from_mapping(raw)
    except (TypeError, ValueError) as exc:
        raise ContextError(f"run context: costs: {exc}") from None
