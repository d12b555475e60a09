"""The run manifest (``manifest``): what it records, which changes of config or prices it
notices, and a resumed run that stops in one line when its book's inputs changed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ai_trader import __version__, manifest
from ai_trader.config import parse_config
from ai_trader.errors import UserError
from ai_trader.layout import BookPaths
from ai_trader.market.pricebook import PriceBook
from unit.support import Services, run_cli
from unit.test_end_to_end import BUILTIN, DAYS, SIGNATURE, position_file, run, write_config


def config(**changes: Any) -> Any:
    raw: dict[str, Any] = {
        "date_range": {"init_date": "2025-10-01", "end_date": "2025-10-31"},
        "models": [{"name": "m", "basemodel": "gpt-x", "signature": "m", "temperature": 0}],
    }
    for key, value in changes.items():
        if key == "model":
            raw["models"][0].update(value)
        else:
            raw[key] = value
    return parse_config(raw, "c.json")


def digest_of(parsed: Any) -> str:
    return manifest.config_digest(parsed, parsed.models[0])


# --- the config hash ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        {"date_range": {"init_date": "2025-10-01", "end_date": "2025-12-31"}},
        {
            "model": {
                "max_cost_usd": 5,
                "pricing": {"input_per_million": 1, "output_per_million": 2},
            }
        },
        {"model": {"name": "renamed", "responses": "record"}},
    ],
)
def test_what_cannot_change_a_done_day_leaves_the_config_hash(change: dict[str, Any]):
    assert digest_of(config(**change)) == digest_of(config())


@pytest.mark.parametrize(
    "change",
    [
        {"model": {"temperature": 0.5}},
        {"model": {"basemodel": "gpt-y"}},
        {"trading": {"slippage_bps": 2}},
        {"agent_config": {"initial_cash": 5000.0}},
        {"date_range": {"init_date": "2025-09-30", "end_date": "2025-10-31"}},
    ],
)
def test_what_shapes_a_days_trades_changes_the_config_hash(change: dict[str, Any]):
    assert digest_of(config(**change)) != digest_of(config())


# --- the prices seen ---------------------------------------------------------------------------


def book(**closes: float | None) -> PriceBook:
    bars: dict[str, dict[str, dict[str, float]]] = {"AAA": {}}
    for day, close in closes.items():
        bar = {"open": 10.0}
        if close is not None:
            bar["close"] = close
        bars["AAA"][day.replace("_", "-")] = bar
    return PriceBook(bars)


def test_a_new_day_and_the_close_it_brings_leave_the_prices_seen():
    # Day 2 was the newest (open only) when the book traded it; then the data grew.
    before = book(d2025_10_01=11.0, d2025_10_02=None)
    after = book(d2025_10_01=11.0, d2025_10_02=12.0, d2025_10_03=None)
    through = "d2025-10-02"
    assert manifest.prices_seen(before, through) == manifest.prices_seen(after, through)


def test_a_changed_past_close_changes_the_prices_seen():
    through = "d2025-10-02"
    assert manifest.prices_seen(book(d2025_10_01=11.0, d2025_10_02=None), through) != (
        manifest.prices_seen(book(d2025_10_01=11.5, d2025_10_02=None), through)
    )


def test_a_damaged_manifest_is_one_line(tmp_path: Path):
    path = tmp_path / "run.json"
    path.write_text("{}", encoding="utf-8")
    with pytest.raises(UserError, match=r"run.json: not a run manifest \(no schema"):
        manifest.read_manifest(path)


# --- runs -----------------------------------------------------------------------------------


def manifest_of(books: Path) -> dict[str, Any]:
    return json.loads(BookPaths(books / SIGNATURE).manifest_file.read_text(encoding="utf-8"))


@pytest.fixture
def ran(services: Services, tmp_path: Path) -> tuple[Path, Path]:
    """A built-in run over all but the last day: its books and its config."""
    books = services.new_books()
    cfg = write_config(tmp_path, books, BUILTIN, end_date=DAYS[-2])
    result = run(services, cfg)
    assert result.returncode == 0, result.stderr
    return books, cfg


def test_a_run_writes_what_produced_the_book(ran: tuple[Path, Path], services: Services):
    books, cfg = ran
    made = manifest_of(books)
    assert made["schema"] == "ai-trader.run/1"
    assert made["package_version"] == __version__
    assert made["config_file"] == str(cfg)
    assert made["responses"] == "off"
    assert made["trading_days"] == {"first": DAYS[0], "last": DAYS[-2], "count": len(DAYS) - 1}
    merged = services.settings.data_dir / "merged.jsonl"
    assert made["merged_sha256"] == manifest.file_digest(merged)
    assert made["prices_seen"]["through"] == DAYS[-2]
    assert made["started"] <= made["ended"]
    assert made["changes"] == []


def test_carrying_a_book_on_to_a_later_end_date_is_no_change(
    ran: tuple[Path, Path], services: Services, tmp_path: Path
):
    books, _ = ran
    (tmp_path / "longer").mkdir()
    result = run(services, write_config(tmp_path / "longer", books, BUILTIN))
    assert result.returncode == 0, result.stderr
    assert manifest_of(books)["trading_days"]["last"] == DAYS[-1]
    assert manifest_of(books)["changes"] == []


def test_a_resumed_book_whose_config_changed_stops_in_one_line_and_writes_nothing(
    ran: tuple[Path, Path], services: Services, tmp_path: Path
):
    books, cfg = ran
    raw = json.loads(cfg.read_text())
    raw["trading"] = {"commission_bps": 10}
    raw["date_range"]["end_date"] = DAYS[-1]
    cfg.write_text(json.dumps(raw))
    before = position_file(books).read_bytes(), manifest_of(books)
    result = run(services, cfg)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert errors == [
        f"ai-trader run: error: {SIGNATURE}: the config changed since its book was last run "
        f"(see {BookPaths(books / SIGNATURE).manifest_file}); run with --allow-changes to "
        "carry on anyway, or give the model another signature"
    ]
    assert (position_file(books).read_bytes(), manifest_of(books)) == before


def test_allow_changes_carries_on_and_the_manifest_lists_the_change(
    ran: tuple[Path, Path], services: Services
):
    books, cfg = ran
    raw = json.loads(cfg.read_text())
    raw["agent_config"] = {"max_steps": 10, "max_retries": 1, "base_delay": 0, "initial_cash": 1}
    raw["date_range"]["end_date"] = DAYS[-1]
    cfg.write_text(json.dumps(raw))
    result = run_cli("run", str(cfg), "--allow-changes", env=services.env, timeout=180)
    assert result.returncode == 0, result.stderr
    made = manifest_of(books)
    assert [change["what"] for change in made["changes"]] == [["the config"]]
    assert made["trading_days"]["last"] == DAYS[-1]
    assert made["first_started"] < made["started"] or made["first_started"] == made["started"]


def test_how_the_model_is_asked_leaves_the_config_hash():
    asked = {"max_retries": 9, "base_delay": 5.0, "request_timeout": 900.0}
    assert digest_of(config(agent_config=asked)) == digest_of(config())
