"""Token and dollar accounting (``usage``): a request's usage read from the API's response,
a day's total, a book's, the price table, and a model's budget, down to a real run against
the stand-in model API."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from ai_trader.costs import Pricing
from ai_trader.errors import UserError
from ai_trader.layout import BookPaths
from ai_trader.usage import (
    DayTally,
    Usage,
    read_usage,
    record_day,
    spent,
    totals,
    usage_of,
)
from standins import StandIns
from unit.support import Services
from unit.test_end_to_end import DAYS, position_file, rows_of, run, write_config

PRICES = Pricing(input_per_million=2.0, output_per_million=8.0, cached_input_per_million=0.5)
SCRIPT = [
    {"tool_calls": [{"name": "buy", "arguments": {"symbol": "MSFT", "amount": 1}}]},
    {"content": "Done. <FINISH_SIGNAL>"},
]


def response(usage: Any) -> SimpleNamespace:
    return SimpleNamespace(usage=usage)


# --- a request's usage --------------------------------------------------------------------


def test_usage_is_read_from_the_response_with_its_cached_tokens():
    usage = SimpleNamespace(
        prompt_tokens=100,
        completion_tokens=20,
        prompt_tokens_details=SimpleNamespace(cached_tokens=60),
    )
    assert usage_of(response(usage)) == Usage(100, 20, 60)


def test_a_response_without_usage_has_unknown_usage_not_zero():
    assert usage_of(response(None)) is None


@pytest.mark.parametrize(
    "usage",
    [
        SimpleNamespace(prompt_tokens=None, completion_tokens=3),
        SimpleNamespace(prompt_tokens=-1, completion_tokens=3),
        SimpleNamespace(prompt_tokens=True, completion_tokens=3),
    ],
)
def test_usage_that_is_not_counts_of_tokens_is_unknown(usage: Any):
    assert usage_of(response(usage)) is None


def test_cached_tokens_beyond_the_prompt_are_cut_to_the_prompt():
    usage = SimpleNamespace(
        prompt_tokens=10,
        completion_tokens=1,
        prompt_tokens_details=SimpleNamespace(cached_tokens=50),
    )
    assert usage_of(response(usage)) == Usage(10, 1, 10)


# --- the price table and a day's total -------------------------------------------------------


def test_cached_prompt_tokens_are_charged_at_the_cached_rate():
    # 40 fresh at 2, 60 cached at 0.5, 20 out at 8: (80 + 30 + 160) / 1e6
    assert PRICES.cost(100, 20, 60) == pytest.approx(270 / 1_000_000, abs=1e-15)


def test_without_a_cached_rate_cached_tokens_cost_the_input_rate():
    assert Pricing(2.0, 8.0).cost(100, 20, 60) == pytest.approx(360 / 1_000_000)


def test_a_day_sums_its_requests_tokens_and_dollars():
    tally = DayTally(PRICES)
    tally.add(Usage(100, 20, 60))
    tally.add(Usage(1_000_000, 0))
    assert tally.row("2025-10-01") == {
        "date": "2025-10-01",
        "requests": 2,
        "unknown": 0,
        "prompt_tokens": 1_000_100,
        "completion_tokens": 20,
        "cached_tokens": 60,
        "cost_usd": 2.00027,
    }


def test_a_day_with_a_request_of_unknown_usage_has_an_unknown_cost():
    tally = DayTally(PRICES)
    tally.add(Usage(100, 20))
    tally.add(None)
    row = tally.row("2025-10-01")
    assert (row["requests"], row["unknown"], row["cost_usd"]) == (2, 1, None)


def test_a_day_without_a_price_table_has_tokens_and_an_unknown_cost():
    tally = DayTally(None)
    tally.add(Usage(100, 20))
    assert tally.row("2025-10-01")["cost_usd"] is None
    assert tally.row("2025-10-01")["prompt_tokens"] == 100


def test_a_day_with_no_request_costs_nothing():
    assert DayTally(None).row("2025-10-01")["cost_usd"] == 0.0


# --- a book's total ----------------------------------------------------------------------------


def book_rows(*days: str, fee: float | None = None) -> list[dict[str, Any]]:
    action: dict[str, Any] = {"action": "buy", "symbol": "AAPL", "amount": 1}
    if fee is not None:
        action["fee"] = fee
    return [
        {"date": "2025-09-30", "id": 0, "positions": {"CASH": 100.0}},
        *({"date": d, "id": n, "this_action": action, "positions": {}} for n, d in enumerate(days)),
    ]


def usage_row(day: str, prompt: int = 10, unknown: int = 0, cost: float | None = 0.5) -> dict:
    return {"date": day, "requests": 1 + unknown, "unknown": unknown, "prompt_tokens": prompt,
            "completion_tokens": 1, "cached_tokens": 0, "cost_usd": cost}  # fmt: skip


def test_a_books_total_sums_its_committed_days_only():
    days = ("2025-10-01", "2025-10-02")
    # A row of 2025-10-03 is an interrupted attempt: the book never committed that day.
    found = totals(book_rows(*days), [usage_row(d) for d in (*days, "2025-10-03")])
    assert (found.requests, found.tokens.value, found.cost_usd.value) == (2, 22.0, 1.0)


def test_a_committed_day_without_usage_makes_the_tokens_unknown_naming_it():
    found = totals(book_rows("2025-10-01", "2025-10-02"), [usage_row("2025-10-01")])
    assert found.tokens.value is None
    assert found.tokens.reason == (
        "no usage recorded for 2025-10-02 (a book written before token accounting)"
    )


def test_a_request_without_usage_makes_the_totals_unknown_never_zero():
    found = totals(book_rows("2025-10-01"), [usage_row("2025-10-01", unknown=2, cost=None)])
    assert found.tokens.reason == "2 request(s) on 2025-10-01 returned no usage"
    assert found.cost_usd.value is None


def test_the_fees_are_the_sum_of_the_books_fees():
    assert totals(book_rows("2025-10-01", "2025-10-02", fee=1.25), []).fees.value == 2.5


def test_recording_a_day_again_replaces_the_interrupted_attempts_row(tmp_path: Path):
    path = tmp_path / "usage.jsonl"
    record_day(path, usage_row("2025-10-01"))
    record_day(path, usage_row("2025-10-02", prompt=99))
    record_day(path, usage_row("2025-10-02", prompt=7))
    assert [(r["date"], r["prompt_tokens"]) for r in read_usage(path)] == [
        ("2025-10-01", 10),
        ("2025-10-02", 7),
    ]


def test_a_damaged_usage_file_is_one_line_naming_the_line(tmp_path: Path):
    path = tmp_path / "usage.jsonl"
    path.write_text(json.dumps(usage_row("2025-10-01")) + '\n{"date": 5}\n', encoding="utf-8")
    with pytest.raises(UserError) as caught:
        read_usage(path)
    assert str(caught.value) == f"{path}:2: not a usage row"


def test_spent_names_the_day_whose_cost_is_unknown():
    with pytest.raises(ValueError, match="no price table for the model on 2025-10-01"):
        spent([usage_row("2025-10-01", cost=None)], ["2025-10-01"])


def test_spent_gives_the_total_and_the_dearest_day():
    rows = [usage_row("2025-10-01", cost=0.25), usage_row("2025-10-02", cost=0.75)]
    assert spent(rows, ["2025-10-01", "2025-10-02"]) == (1.0, 0.75)


# --- a run against the stand-in model API --------------------------------------------------


def model_run(
    services: Services, tmp_path: Path, books: Path, openai: dict[str, Any], **entry: Any
) -> tuple[Any, Path]:
    models = [{"name": "m", "basemodel": "gpt-stand-in", "signature": "m", **entry}]
    tmp_path.mkdir(parents=True, exist_ok=True)
    config = write_config(tmp_path, books, models, init_date=DAYS[-4])
    with StandIns({"openai": {"script": SCRIPT, **openai}}) as standins:
        result = run(
            services, config, OPENAI_API_KEY="test-key", OPENAI_API_BASE=standins.openai_base
        )
    return result, books / "m"


def test_a_run_logs_each_replys_usage_and_keeps_a_total_for_each_day(
    services: Services, tmp_path: Path, books: Path
):
    pricing = {"input_per_million": 2, "output_per_million": 8, "cached_input_per_million": 0.5}
    result, root = model_run(services, tmp_path, books, {"cached_tokens": 5}, pricing=pricing)
    assert result.returncode == 0, result.stderr
    days = DAYS[-3:]
    replies = [
        entry["new_messages"][0]
        for entry in rows_of(BookPaths(root).log_file(days[0]))
        if entry["new_messages"][0]["role"] == "assistant"
    ]
    assert len(replies) == 2
    assert all(r["usage"]["cached_tokens"] == 5 for r in replies)
    rows = read_usage(BookPaths(root).usage_file)
    assert [row["date"] for row in rows] == days
    first = rows[0]
    assert first["prompt_tokens"] == sum(r["usage"]["prompt_tokens"] for r in replies)
    fresh, cached = first["prompt_tokens"] - 10, 10
    expected = (fresh * 2 + cached * 0.5 + first["completion_tokens"] * 8) / 1_000_000
    assert first["cost_usd"] == pytest.approx(expected, abs=1e-9)
    assert len(rows_of(position_file(books, "m"))) == 4  # the book is the same as ever


def test_a_run_whose_api_sends_no_usage_reports_its_tokens_as_unknown(
    services: Services, tmp_path: Path, books: Path
):
    result, root = model_run(services, tmp_path, books, {"usage": False})
    assert result.returncode == 0, result.stderr
    rows = read_usage(BookPaths(root).usage_file)
    assert all(row["unknown"] == 2 and row["cost_usd"] is None for row in rows)
    summary = result.stdout.splitlines()[-1].split()
    assert summary[0] == "m"
    assert summary[-2:] == ["n/a", "n/a"]  # tokens and cost


def test_a_budget_stops_the_model_before_a_day_that_would_pass_it(
    services: Services, tmp_path: Path, books: Path
):
    # Each day costs the same; a budget of one and a half days allows exactly one.
    pricing = {"input_per_million": 1000, "output_per_million": 1000}
    probe, probe_root = model_run(
        services, tmp_path / "probe", books / "probe", {}, pricing=pricing
    )
    assert probe.returncode == 0, probe.stderr
    day_cost = read_usage(BookPaths(probe_root).usage_file)[0]["cost_usd"]
    result, root = model_run(
        services, tmp_path, books / "capped", {}, pricing=pricing, max_cost_usd=day_cost * 1.5
    )
    assert result.returncode == 0, result.stderr
    assert f"m: stopped before {DAYS[-2]}: max_cost_usd" in result.stderr
    rows = rows_of(position_file(books / "capped", "m"))
    assert [row["date"] for row in rows[1:]] == [DAYS[-3]]  # one whole day, nothing half done
    assert not BookPaths(root).pending_file.exists()


def test_a_budget_without_prices_is_a_config_error(services: Services, tmp_path: Path, books: Path):
    result, _ = model_run(services, tmp_path, books, {}, max_cost_usd=1)
    assert result.returncode != 0
    assert "models.0: " in result.stderr
    assert "max_cost_usd needs pricing" in result.stderr
    assert "Traceback" not in result.stderr
