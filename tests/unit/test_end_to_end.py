"""The real CLI, as child processes, over the offline sample: fetch, merge, serve, wait-ready, run.

`fetch`, `merge`, `serve` and `wait-ready` run in the session fixtures (conftest.py), whose outputs
the first tests check; every `run` below is a separate `ai-trader run CONFIG` process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from support import Services, cli_env, run_cli

from ai_trader.layout import BookPaths
from ai_trader.market.universe import ALL_SYMBOLS, NASDAQ_100
from standins import StandIns

INIT = "2025-10-24"
DAYS = ["2025-10-27", "2025-10-28", "2025-10-29", "2025-10-30", "2025-10-31"]
SIGNATURE = "builtin-momentum"


def write_config(folder: Path, log_path: Path, models: list[dict[str, Any]], **dates: str) -> Path:
    path = folder / "config.json"
    path.write_text(
        json.dumps(
            {
                "agent_type": "BaseAgent",
                "date_range": {"init_date": INIT, "end_date": DAYS[-1], **dates},
                "models": models,
                "agent_config": {"max_steps": 10, "max_retries": 1, "base_delay": 0},
                "log_config": {"log_path": str(log_path)},
            }
        ),
        encoding="utf-8",
    )
    return path


BUILTIN = [{"name": SIGNATURE, "basemodel": "builtin/momentum", "signature": SIGNATURE}]


def position_file(log_path: Path, signature: str = SIGNATURE) -> Path:
    return BookPaths(log_path / signature).position_file


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(services: Services, config: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("run", str(config), env={**services.env, **extra}, timeout=180)


@dataclass
class FirstRun:
    log_path: Path
    config: Path
    result: subprocess.CompletedProcess[str]
    text: str  # position.jsonl as the first run left it

    def copy_to(self, folder: Path, books: Path) -> tuple[Path, Path]:
        """The first run's output copied to ``books``, with a config in ``folder`` that
        points at it."""
        log_path = books
        shutil.copytree(self.log_path, log_path)
        return log_path, write_config(folder, log_path, BUILTIN)


@pytest.fixture(scope="module")
def first_run(tmp_path_factory: pytest.TempPathFactory, services: Services) -> FirstRun:
    folder = tmp_path_factory.mktemp("first-run")
    log_path = services.new_books()
    config = write_config(folder, log_path, BUILTIN)
    # The import profile (on stderr) shows what a built-in run loads.
    result = run(services, config, PYTHONPROFILEIMPORTTIME="1")
    assert result.returncode == 0, result.stderr
    return FirstRun(log_path, config, result, position_file(log_path).read_text(encoding="utf-8"))


# --- fetch and merge (no key) --------------------------------------------------------------


def test_fetch_without_a_key_writes_a_synthetic_sample_and_says_so(offline_data):
    assert "SYNTHETIC" in offline_data.fetch.stderr
    for symbol in ALL_SYMBOLS:
        payload = json.loads((offline_data.data_dir / f"daily_prices_{symbol}.json").read_text())
        assert "SYNTHETIC" in payload["Meta Data"]["6. Note"]
        assert payload["Meta Data"]["2. Symbol"] == symbol


def test_merge_writes_one_line_per_symbol_in_the_original_shape(offline_data):
    lines = (offline_data.data_dir / "merged.jsonl").read_text().splitlines()
    assert len(lines) == len(ALL_SYMBOLS)
    first = json.loads(lines[0])
    assert set(first) == {"Meta Data", "Time Series (Daily)"}
    series = first["Time Series (Daily)"]
    latest = max(series)
    assert latest == DAYS[-1]
    assert set(series[latest]) == {"1. buy price"}
    assert {"1. buy price", "4. sell price"} <= set(series[DAYS[-2]])


# --- run -----------------------------------------------------------------------------------


def test_run_writes_position_rows_in_the_original_format(first_run: FirstRun):
    rows = rows_of(position_file(first_run.log_path))
    assert list(rows[0]) == ["date", "id", "positions"]
    assert rows[0]["date"] == INIT
    assert set(rows[0]["positions"]) == {*NASDAQ_100, "CASH"}
    assert rows[0]["positions"]["CASH"] == 10000.0
    for row in rows[1:]:
        assert list(row) == ["date", "id", "this_action", "positions"]
        assert list(row["this_action"]) == ["action", "symbol", "amount"]
        assert row["this_action"]["action"] in ("buy", "sell", "no_trade")
        assert "CASH" in row["positions"]
    assert [row["id"] for row in rows] == list(range(len(rows)))
    assert sorted({row["date"] for row in rows[1:]}) == DAYS
    assert any(row["this_action"]["action"] == "buy" for row in rows[1:])


def test_run_writes_a_log_for_each_trading_day(first_run: FirstRun):
    logs = first_run.log_path / SIGNATURE / "log"
    assert sorted(p.name for p in logs.iterdir()) == DAYS
    for day in DAYS:
        entries = rows_of(logs / day / "log.jsonl")
        assert entries
        assert all(entry["signature"] == SIGNATURE for entry in entries)
        assert all(len(entry["new_messages"]) == 1 for entry in entries)


def test_run_prints_a_summary_with_the_benchmark(first_run: FirstRun):
    header, line = first_run.result.stdout.strip().splitlines()
    assert header.split() == [
        "signature", "days", "final", "value", "return", "QQQ", "Sharpe", "max", "DD",
        "fees", "tokens", "LLM", "cost",
    ]  # fmt: skip
    fields = line.split()
    assert fields[:2] == [SIGNATURE, str(len(DAYS))]
    assert fields[3].endswith("%")
    assert fields[4].endswith("%")
    assert float(fields[5]) == pytest.approx(float(fields[5]))  # a number, not n/a
    assert fields[6].endswith("%")
    assert fields[7:] == ["0.00", "0", "$0.00"]  # no costs, and no model to pay


def test_a_builtin_run_does_not_load_the_openai_client(first_run: FirstRun):
    imported = {
        line.split("|")[-1].strip()
        for line in first_run.result.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "ai_trader.agent.runner" in imported
    assert "openai" not in imported


def test_run_leaves_no_stage_behind(first_run: FirstRun):
    position = BookPaths(first_run.log_path / SIGNATURE).position_dir
    assert sorted(p.name for p in position.iterdir()) == ["position.jsonl", "usage.jsonl"]


def test_a_second_run_adds_no_line(first_run: FirstRun, services, tmp_path: Path, books: Path):
    log_path, config = first_run.copy_to(tmp_path, books)
    result = run(services, config)
    assert result.returncode == 0, result.stderr
    assert position_file(log_path).read_text() == first_run.text


def test_a_run_after_the_last_day_was_deleted_redoes_exactly_that_day(
    first_run: FirstRun, services, tmp_path: Path, books: Path
):
    log_path, config = first_run.copy_to(tmp_path, books)
    kept = [line for line in first_run.text.splitlines() if DAYS[-1] not in line]
    position_file(log_path).write_text("".join(line + "\n" for line in kept))
    result = run(services, config)
    assert result.returncode == 0, result.stderr
    assert f"[1/1] {DAYS[-1]}" in result.stderr
    # The strategy is deterministic, so the redone day is the day it was.
    assert position_file(log_path).read_text() == first_run.text
    log = BookPaths(log_path / SIGNATURE).log_file(DAYS[-1])
    original = BookPaths(first_run.log_path / SIGNATURE).log_file(DAYS[-1])
    assert len(log.read_text().splitlines()) == len(original.read_text().splitlines())


def test_a_truncated_last_line_is_repaired_and_its_day_redone(
    first_run: FirstRun, services, tmp_path: Path, books: Path
):
    log_path, config = first_run.copy_to(tmp_path, books)
    text = first_run.text
    position_file(log_path).write_text(text[: text.rindex("\n", 0, -1) + 60])
    result = run(services, config)
    assert result.returncode == 0, result.stderr
    assert "truncated" in result.stderr
    assert position_file(log_path).read_text() == first_run.text


@pytest.mark.parametrize(
    ("content", "named"),
    [
        ('{"date_range": {"init_date": "2025-10-24"}, "models": []}', "date_range.end_date"),
        ('{"date_range": ', "not valid JSON"),
    ],
)
def test_run_with_a_malformed_config_prints_one_line_and_exits_non_zero(
    tmp_path: Path, content: str, named: str
):
    config = tmp_path / "bad.json"
    config.write_text(content)
    result = run_cli("run", str(config), env=cli_env({"DATA_DIR": str(tmp_path)}), timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert str(config) in lines[0]


# --- the model path ------------------------------------------------------------------------


def test_run_with_an_openai_compatible_server_places_the_models_trade(
    services, tmp_path: Path, books: Path
):
    script = [
        {"tool_calls": [{"name": "get_price_local",
                         "arguments": {"symbol": "MSFT", "date": "{today}"}}]},
        {"tool_calls": [{"name": "buy", "arguments": {"symbol": "MSFT", "amount": 1}}]},
        {"content": "Done. <FINISH_SIGNAL>"},
    ]  # fmt: skip
    models = [{"name": "scripted", "basemodel": "gpt-stand-in", "signature": "scripted"}]
    config = write_config(tmp_path, books, models, init_date=DAYS[-3])
    with StandIns({"openai": {"script": script}}) as standins:
        result = run(
            services,
            config,
            OPENAI_API_KEY="test-key",
            OPENAI_API_BASE=standins.openai_base,
        )
        requests = standins.stats()["openai"]["requests"]
    assert result.returncode == 0, result.stderr
    rows = rows_of(position_file(books, "scripted"))
    assert [(row["date"], row["this_action"]) for row in rows[1:]] == [
        (day, {"action": "buy", "symbol": "MSFT", "amount": 1}) for day in DAYS[-2:]
    ]
    assert rows[-1]["positions"]["MSFT"] == 2
    assert requests == 6  # three steps a day, two days


# --- fetch against the Alpha Vantage stand-in ----------------------------------------------


@pytest.fixture
def alphavantage(tmp_path: Path):
    with StandIns({"symbols": [s for s in ALL_SYMBOLS if s != "GFS"]}) as standins:
        env = cli_env(
            {
                "DATA_DIR": str(tmp_path / "data"),
                "ALPHAVANTAGE_API_KEY": "test-key",
                "ALPHAVANTAGE_BASE_URL": standins.alphavantage_url,
                "ALPHAVANTAGE_MIN_INTERVAL": "0",
            }
        )
        yield standins, env, tmp_path / "data"


def test_fetch_with_a_key_downloads_every_symbol_and_reports_the_one_that_failed(alphavantage):
    standins, env, data_dir = alphavantage
    result = run_cli("fetch", env=env, timeout=120)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "GFS" in result.stderr
    assert "Invalid API call" in result.stderr
    assert "test-key" not in result.stderr
    assert standins.stats()["alphavantage"]["requests"] == len(ALL_SYMBOLS)
    written = sorted(p.name for p in data_dir.glob("daily_prices_*.json"))
    assert len(written) == len(ALL_SYMBOLS) - 1
    payload = json.loads((data_dir / "daily_prices_AAPL.json").read_text())
    assert payload["Meta Data"]["2. Symbol"] == "AAPL"
    assert "6. Note" not in payload["Meta Data"]
