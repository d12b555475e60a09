"""The dashboard's ``/metrics``: each model's days, value, return, drawdown, tokens and
dollars as Prometheus gauges, the dashboard's own figures, an unknown one absent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient
from test_dashboard import (
    D0,
    D1,
    D2,
    D3,
    MODEL_A,
    MODEL_B,
    PRICES,
    by_name,
    merged_line,
    position_file,
    usage_file,
    usage_row,
    write_jsonl,
)

from ai_trader.dashboard.app import build_app
from ai_trader.httpguard import HostGuard
from ai_trader.settings import LOOPBACK_NAMES

Gauges = dict[str, dict[str, float]]  # name: signature: value


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    """test_dashboard's two small books over its tiny market."""
    data_dir = tmp_path / "data"
    write_jsonl(data_dir / "merged.jsonl", [merged_line(s, b) for s, b in PRICES.items()])
    write_jsonl(position_file(data_dir, "model-a"), MODEL_A)
    write_jsonl(position_file(data_dir, "model-b"), MODEL_B)
    return data_dir


@pytest.fixture
def paid(folder: Path) -> Path:
    """And what each model's calls used and cost."""
    write_jsonl(usage_file(folder, "model-a"), [usage_row(d, 100, 0.5) for d in (D1, D2, D3)])
    write_jsonl(usage_file(folder, "model-b"), [usage_row(D1, 1000, 0.25)])
    return folder


def gauges(text: str) -> Gauges:
    found: Gauges = {}
    for family in text_string_to_metric_families(text):
        assert family.type == "gauge", family.name
        for sample in family.samples:
            found.setdefault(sample.name, {})[sample.labels["signature"]] = sample.value
    return found


def scrape(data_dir: Path) -> Gauges:
    answer = TestClient(build_app(data_dir)).get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    assert answer.headers["cache-control"] == "no-store"
    return gauges(answer.text)


def write_manifest(data_dir: Path, signature: str, init: str, end: str) -> None:
    made = {"schema": "ai-trader.run/1", "config": {"date_range": {"init_date": init,
            "end_date": end}}}  # fmt: skip
    (position_file(data_dir, signature).parent.parent / "run.json").write_text(json.dumps(made))


def test_each_model_has_its_days_value_return_drawdown_tokens_and_dollars(paid: Path):
    write_manifest(paid, "model-a", D0, D3)
    found = scrape(paid)
    summary = TestClient(build_app(paid)).get("/api/summary").json()
    a = by_name(summary, "model-a")
    assert found["ai_trader_model_days_done"] == {"model-a": 3, "model-b": 1}
    assert found["ai_trader_model_days_total"] == {"model-a": 3}  # model-b has no manifest
    assert found["ai_trader_model_portfolio_value_usd"]["model-a"] == a["final_value"] == 1050.0
    assert found["ai_trader_model_return_ratio"]["model-a"] == pytest.approx(0.05)
    assert found["ai_trader_model_return_ratio"]["model-a"] == a["total_return"]
    drawdown = a["metrics"]["model"]["max_drawdown"]["value"]
    assert found["ai_trader_model_max_drawdown_ratio"]["model-a"] == drawdown
    assert found["ai_trader_model_tokens"] == {"model-a": 330.0, "model-b": 1010.0}
    assert found["ai_trader_model_llm_cost_usd"] == {"model-a": 1.5, "model-b": 0.25}


def test_days_total_counts_the_trading_days_of_the_configs_range(folder: Path):
    write_manifest(folder, "model-a", D0, D2)  # D1 and D2: the days after init_date
    assert scrape(folder)["ai_trader_model_days_total"] == {"model-a": 2}


def test_an_unknown_figure_is_absent_never_zero(folder: Path):
    (folder / "merged.jsonl").unlink()  # no prices: no value, return or drawdown
    write_manifest(folder, "model-a", D0, D3)  # and no trading days to count either
    found = scrape(folder)
    assert found["ai_trader_model_days_done"] == {"model-a": 3, "model-b": 1}
    for name in (
        "ai_trader_model_days_total",
        "ai_trader_model_portfolio_value_usd",
        "ai_trader_model_return_ratio",
        "ai_trader_model_max_drawdown_ratio",
        "ai_trader_model_tokens",  # no usage file: nothing recorded
        "ai_trader_model_llm_cost_usd",
    ):
        assert name not in found, name


def test_an_empty_folder_has_no_series(tmp_path: Path):
    assert scrape(tmp_path / "none") == {}


def test_a_scrape_of_an_unchanged_folder_is_the_text_kept(paid: Path):
    client = TestClient(build_app(paid))
    first = client.get("/metrics").text
    assert client.get("/metrics").text == first
    position_file(paid, "model-b").write_text("")  # the book emptied: no longer a figure
    assert "model-b" not in gauges(client.get("/metrics").text)["ai_trader_model_tokens"]


def test_metrics_is_behind_the_host_guard(folder: Path):
    client = TestClient(
        HostGuard(build_app(folder), LOOPBACK_NAMES), base_url="http://evil.example"
    )
    refused = client.get("/metrics")
    assert refused.status_code == 421
    assert "ai_trader_model" not in refused.text
    allowed = TestClient(HostGuard(build_app(folder), LOOPBACK_NAMES), base_url="http://localhost")
    assert allowed.get("/metrics").status_code == 200
