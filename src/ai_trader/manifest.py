"""The run manifest: what produced a book (``<signature>/run.json``), and whether a resumed run
would trade on what its committed days saw.

The rules:

* A run writes the manifest of each of its books when it starts and again when the model
  ends: the package version, the git revision and image id when known (``AI_TRADER_REVISION``
  and ``AI_TRADER_IMAGE_ID``, which the image and ``nox -s up`` set), the config and its
  hash, the model's settings (names of key variables only: a key never stands in a config),
  the sha256 of ``merged.jsonl``, the trading days, the start and end times and the response
  mode. Written atomically, like the book.
* The **config hash** covers what shapes the trades of a day already done: the opening date,
  ``agent_config`` (but its retries, back-off and request timeout), ``trading``, and the
  model's ``basemodel`` and sampling settings. The end date, the other models, prices per
  token and budgets are left out: changing them does not change a committed day.
* The **prices seen** hash covers the prices the committed days could see: every bar of the
  days before the book's last committed day, and the opens of that day (its close was not
  known when it traded). New days appended to the data leave it unchanged, so a book can be
  carried on as the data grows.
* A resumed run whose config hash or prices seen differ from the manifest's stops with one
  line naming what changed, before anything is written, unless told to continue
  (``run --allow-changes``); the manifest then lists the change.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ai_trader import __version__
from ai_trader.errors import UserError
from ai_trader.fsutil import atomic_write_json
from ai_trader.market.pricebook import PriceBook

if TYPE_CHECKING:  # the report reads manifests without loading the config's models
    from ai_trader.config import ModelEntry, RunConfig

SCHEMA = "ai-trader.run/1"
# How the model is asked, not what it is asked: no committed day depends on them.
_HOW_TO_ASK = {"max_retries", "base_delay", "request_timeout"}
_SAMPLING_AND_MODEL = {"basemodel", "temperature", "top_p", "seed", "max_tokens"}


def digest(value: object) -> str:
    """The sha256 of ``value``'s canonical JSON (keys sorted, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def config_digest(config: RunConfig, entry: ModelEntry) -> str:
    """The hash of the settings that shape a committed day's trades (see the rules)."""
    return digest(
        {
            "init_date": config.date_range.init_date.isoformat(),
            "agent_config": config.agent_config.model_dump(mode="json", exclude=_HOW_TO_ASK),
            "trading": config.trading.model_dump(mode="json"),
            "model": entry.model_dump(mode="json", include=_SAMPLING_AND_MODEL),
        }
    )


def prices_seen(book: PriceBook, through: str) -> str:
    """The hash of the prices the days up to ``through`` could see: whole bars before it, and
    only the opens on it."""
    hashed = hashlib.sha256()
    symbols = sorted(book.symbols)
    for day in book.dates():
        if day > through:
            break
        for symbol in symbols:
            bar = book.bar(symbol, day)
            if bar is None:
                continue
            if day == through:
                bar = {"open": bar["open"]} if "open" in bar else {}
            hashed.update(f"{day} {symbol} {sorted(bar.items())}\n".encode())
    return hashed.hexdigest()


def git_revision() -> str | None:
    """The revision of the code: the image's (``AI_TRADER_REVISION``), else the checkout's
    the package runs from, else None."""
    given = os.environ.get("AI_TRADER_REVISION")
    if given and given != "unknown":
        return given
    try:
        done = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() or None if done.returncode == 0 else None


def file_digest(path: Path) -> str | None:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def span(days: list[str]) -> dict[str, object]:
    """The committed days of a book, as a manifest records them."""
    return {"first": days[0] if days else None, "last": days[-1] if days else None,
            "count": len(days)}  # fmt: skip


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at ``path``, None when there is none, UserError when it is not one."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise UserError(f"{path}: not a run manifest ({exc})") from None
    if not isinstance(value, dict) or value.get("schema") != SCHEMA:
        raise UserError(f"{path}: not a run manifest (no schema {SCHEMA!r})")
    return value


def build(
    config: RunConfig,
    entry: ModelEntry,
    *,
    source: str,
    merged: Path,
    book: PriceBook,
    days: list[str],
    started: str,
    through: str | None,
) -> dict[str, Any]:
    """A manifest of ``entry``'s book, whose last committed day is ``through``."""
    return {
        "schema": SCHEMA,
        "package_version": __version__,
        "git_revision": git_revision(),
        "image_id": os.environ.get("AI_TRADER_IMAGE_ID") or None,
        "config_file": source,
        "config": config.model_dump(mode="json", exclude_none=True),
        "config_sha256": config_digest(config, entry),
        "model": entry.model_dump(mode="json", exclude_none=True),
        "responses": entry.responses,
        "merged_sha256": file_digest(merged),
        "trading_days": span(days),
        "prices_seen": (
            {"through": through, "sha256": prices_seen(book, through)} if through else None
        ),
        "started": started,
        "ended": None,
        "changes": [],
    }


def what_changed(
    previous: Mapping[str, Any], config: RunConfig, entry: ModelEntry, book: PriceBook
) -> list[str]:
    """What differs between the manifest of a book and this run: "the config" and/or "the
    prices its committed days saw" (empty when nothing)."""
    found = []
    if previous.get("config_sha256") != config_digest(config, entry):
        found.append("the config")
    seen = previous.get("prices_seen")
    seen = seen if isinstance(seen, Mapping) else {}
    through = seen.get("through")
    if isinstance(through, str) and prices_seen(book, through) != seen.get("sha256"):
        found.append(f"the prices its days up to {through} saw")
    return found


# What the report and the dashboard show of a manifest (the whole config stays in run.json).
SHOWN = ("package_version", "git_revision", "image_id", "config_sha256", "merged_sha256",
         "prices_seen", "responses", "first_started", "started", "ended", "changes")  # fmt: skip


def shown(made: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """The part of a manifest the report and the dashboard show."""
    return None if made is None else {key: made.get(key) for key in SHOWN}


def described(made: Mapping[str, Any]) -> str:
    """One line of a manifest for people: version, revision, hashes, responses, times."""
    parts = [f"ai-trader {made.get('package_version')}"]
    if made.get("git_revision"):
        parts.append(f"revision {made['git_revision']}")
    if made.get("image_id"):
        parts.append(f"image {str(made['image_id'])[:19]}")
    parts.append(f"config {str(made.get('config_sha256'))[:12]}")
    seen = made.get("prices_seen") or {}
    if seen:
        parts.append(f"prices to {seen.get('through')} {str(seen.get('sha256'))[:12]}")
    parts.append(f"responses {made.get('responses')}")
    parts.append(f"run {made.get('started')} to {made.get('ended') or 'not ended'}")
    if made.get("changes"):
        parts.append(f"{len(made['changes'])} change(s) allowed")
    return ", ".join(parts)


def write_manifest(path: Path, manifest: Mapping[str, Any]) -> None:
    atomic_write_json(path, dict(manifest))
