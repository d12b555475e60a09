"""`ai-trader report`: the leaderboard presents valuation's metrics, sorted, with QQQ's row,
every n/a with its reason, in Markdown, CSV and JSON, and the same bytes for the same folder."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from support import cli_env, run_cli

from ai_trader import report
from ai_trader.costs import Costs
from ai_trader.errors import UserError
from ai_trader.fsutil import atomic_write_jsonl
from ai_trader.layout import BookPaths, books_dir, merged_file
from ai_trader.ledger import Ledger
from ai_trader.market.pricebook import PriceBook
from ai_trader.usage import record_day
from ai_trader.valuation import measure, value_book

DAYS = ["2025-10-01", "2025-10-02", "2025-10-03", "2025-10-06"]
OPENS = {"AAA": [10.0, 11.0, 12.0, 11.0], "QQQ": [100.0, 101.0, 99.0, 102.0]}
CLOSES = {"AAA": [11.0, 12.0, 10.0, None], "QQQ": [101.0, 99.0, 100.0, None]}


def price_line(symbol: str) -> dict:
    series = {}
    for day, open_, close in zip(DAYS, OPENS[symbol], CLOSES[symbol], strict=True):
        bar = {"1. buy price": f"{open_:.4f}"}
        if close is not None:
            bar["4. sell price"] = f"{close:.4f}"
        series[day] = bar
    return {"Meta Data": {"2. Symbol": symbol}, "Time Series (Daily)": series}


def book(data: Path, signature: str, buys: dict[str, int]) -> None:
    """A book opened the day before the data, buying ``buys[day]`` AAA on each day given."""
    ledger = Ledger(books_dir(data) / signature)
    ledger.ensure_initialized("2025-09-30", ["AAA"], 1000.0)
    for index, day in enumerate(DAYS):
        if day in buys:
            ledger.record_trade(day, "buy", "AAA", buys[day], OPENS["AAA"][index])
        ledger.commit_day(day)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    atomic_write_jsonl(merged_file(folder), [price_line("AAA"), price_line("QQQ")])
    book(folder, "bold", {"2025-10-01": 80})  # all in on day one
    book(folder, "idle", {})  # cash only: flat
    return folder


def test_the_rows_are_sorted_by_return_with_qqq_last(data: Path):
    board = report.build(data)
    assert [(row.name, row.benchmark) for row in board.rows] == [
        ("bold", False),
        ("idle", False),
        ("QQQ", True),
    ]


def test_each_figure_is_the_one_valuation_measures(data: Path):
    board = report.build(data, risk_free_rate=0.02)
    rows = Ledger(books_dir(data) / "bold").rows()
    prices = PriceBook.load(merged_file(data))
    expected = measure(value_book(rows, prices), rows, prices, risk_free_rate=0.02)
    bold = board.rows[0]
    assert bold.metrics == expected.model
    assert board.rows[-1].metrics == expected.benchmark


def test_a_flat_book_shows_n_a_with_the_reason_under_the_table(data: Path):
    text = report.markdown(report.build(data))
    idle = next(line for line in text.splitlines() if line.startswith("| 2 | idle |"))
    assert "| n/a |" in idle  # Sharpe: no volatility
    assert "- idle: Sharpe: volatility is 0" in text
    assert "- QQQ (benchmark): trades: QQQ is held, not traded" in text


def test_the_csv_has_a_header_and_one_row_each_with_empty_cells_for_n_a(data: Path):
    rows = list(csv.DictReader(io.StringIO(report.to_csv(report.build(data)))))
    assert [row["model"] for row in rows] == ["bold", "idle", "QQQ"]
    assert rows[1]["sharpe"] == ""
    assert "Sharpe: volatility is 0" in rows[1]["notes"]
    assert float(rows[0]["final_value"]) == pytest.approx(200.0 + 80 * 11.0)


def test_the_json_is_versioned_and_strict(data: Path):
    document = json.loads(report.to_json(report.build(data)))
    assert document["schema"] == "ai-trader.report/2"
    assert [row["model"] for row in document["rows"]] == ["bold", "idle", "QQQ"]
    assert document["rows"][1]["metrics"]["sharpe"] == {"value": None, "na": "volatility is 0"}
    assert document["rows"][0]["qqq_same_days"] == document["rows"][2]["metrics"]


def test_a_gap_is_named_in_every_format(data: Path):
    Ledger(books_dir(data) / "gappy").ensure_initialized("2025-09-30", ["AAA", "ZZZ"], 1000.0)
    rows = Ledger(books_dir(data) / "gappy").rows()
    rows[0]["positions"]["ZZZ"] = 1  # a holding the prices never have
    atomic_write_jsonl(Ledger(books_dir(data) / "gappy").position_file, rows)
    for day in DAYS:
        Ledger(books_dir(data) / "gappy").commit_day(day)
    board = report.build(data)
    assert "- gappy: no value on 2025-10-01: no price for ZZZ" in report.markdown(board)
    gaps = next(r for r in json.loads(report.to_json(board))["rows"] if r["model"] == "gappy")
    assert gaps["gaps"][0] == {"date": "2025-10-01", "reason": "no price for ZZZ"}


@pytest.mark.parametrize("fmt", report.FORMATS)
def test_the_same_folder_gives_the_same_bytes(data: Path, fmt: str):
    assert report.render(report.build(data), fmt) == report.render(report.build(data), fmt)


def test_a_folder_without_books_is_one_line(tmp_path: Path):
    with pytest.raises(UserError, match=r"no books in .*: run `ai-trader run` first"):
        report.build(tmp_path)


def test_the_cli_writes_the_chosen_format_to_a_file(data: Path, tmp_path: Path):
    out = tmp_path / "board.json"
    done = run_cli(
        "report", "--format", "json", "-o", str(out), env=cli_env({"DATA_DIR": str(data)})
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text())["schema"] == "ai-trader.report/2"


def test_the_cli_refuses_a_corrupt_book_in_one_line(data: Path):
    position = Ledger(books_dir(data) / "bold").position_file
    position.write_text(position.read_text().replace('"AAA": 80', '"AAA": -80'))
    done = run_cli("report", env=cli_env({"DATA_DIR": str(data)}))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == [
        f"ai-trader report: error: {position}:2: positions['AAA'] is -80: negative shares "
        "break the book"
    ]


@pytest.mark.parametrize("rate", ["x", "1.5", "-1", "nan"])
def test_the_cli_refuses_a_rate_that_is_not_a_fraction(data: Path, rate: str):
    done = run_cli("report", "--risk-free-rate", rate, env=cli_env({"DATA_DIR": str(data)}))
    assert done.returncode == 2
    assert "--risk-free-rate" in done.stderr


def test_a_book_with_a_cut_last_line_is_an_error_and_the_report_writes_nothing(data: Path):
    position = Ledger(books_dir(data) / "bold").position_file
    cut = position.read_text()[:-20]
    position.write_text(cut)
    with pytest.raises(UserError, match=rf"{position}:5: not valid JSON"):
        report.build(data)
    assert position.read_text() == cut  # the run repairs a cut line; the report never writes


def usage_for(data: Path, signature: str, cost: float) -> None:
    """A usage row for each day of the book, every request priced at ``cost``."""
    for day in DAYS:
        row = {"date": day, "requests": 2, "unknown": 0, "prompt_tokens": 100,
               "completion_tokens": 10, "cached_tokens": 0, "cost_usd": cost}  # fmt: skip
        record_day(BookPaths(books_dir(data) / signature).usage_file, row)


@pytest.fixture
def accounted(data: Path) -> Path:
    costs = Costs(commission_bps=10, min_commission=1)
    Ledger(books_dir(data) / "costly").ensure_initialized("2025-09-30", ["AAA"], 1000.0)
    for index, day in enumerate(DAYS):
        Ledger(books_dir(data) / "costly").record_trade(
            day, "buy", "AAA", 1, OPENS["AAA"][index], costs
        )
        Ledger(books_dir(data) / "costly").commit_day(day)
    usage_for(data, "costly", 0.25)
    usage_for(data, "bold", 0.5)
    usage_for(data, "idle", 0.0)
    return data


def test_each_model_row_carries_its_fees_tokens_and_dollars(accounted: Path):
    document = json.loads(report.to_json(report.build(accounted)))
    costly = next(r for r in document["rows"] if r["model"] == "costly")
    assert costly["accounting"] == {
        "requests": 8,
        "tokens": {"value": 440.0},
        "prompt_tokens": {"value": 400.0},
        "completion_tokens": {"value": 40.0},
        "cached_tokens": {"value": 0.0},
        "cost_usd": {"value": 1.0},
        "fees": {"value": 4.0},  # the 1.00 minimum on each of four trades
    }
    assert document["rows"][-1]["accounting"] is None  # QQQ pays nothing
    assert document["accounting_total"]["cost_usd"] == {"value": 3.0}
    assert document["accounting_total"]["fees"] == {"value": 4.0}


def test_the_markdown_shows_fees_tokens_and_cost_and_their_total(accounted: Path):
    text = report.markdown(report.build(accounted))
    header = next(line for line in text.splitlines() if line.startswith("| # |"))
    assert header.endswith("| fees | tokens | LLM cost |")
    costly = next(line for line in text.splitlines() if "| costly |" in line)
    assert costly.endswith("| 4.00 | 440 | $1.00 |")
    assert "All models together: fees 4.00, tokens 1,320, LLM cost $3.00." in text


def test_the_csv_has_the_accounting_columns(accounted: Path):
    rows = list(csv.DictReader(io.StringIO(report.to_csv(report.build(accounted)))))
    costly = next(row for row in rows if row["model"] == "costly")
    assert (costly["fees"], costly["prompt_tokens"], costly["cost_usd"]) == ("4.0", "400.0", "1.0")
    assert rows[-1]["cost_usd"] == ""  # QQQ's row


def test_a_book_without_usage_shows_its_tokens_as_n_a_with_the_reason(data: Path):
    text = report.markdown(report.build(data))
    assert (
        "- bold: tokens: no usage recorded for 2025-10-01 (a book written before token "
        "accounting)" in text
    )
    assert "All models together: fees 0.00, tokens n/a, LLM cost n/a." in text


def test_each_row_says_what_produced_its_book(data: Path):
    made = {
        "schema": "ai-trader.run/1", "package_version": "9.9", "git_revision": "abc123",
        "config_sha256": "e" * 64, "responses": "off", "started": "S", "ended": "E",
    }  # fmt: skip
    (books_dir(data) / "bold" / "run.json").write_text(json.dumps(made))
    board = report.build(data)
    document = json.loads(report.to_json(board))
    bold = next(r for r in document["rows"] if r["model"] == "bold")
    assert bold["run"]["git_revision"] == "abc123"
    assert next(r for r in document["rows"] if r["model"] == "idle")["run"] is None
    assert "- bold: ai-trader 9.9, revision abc123, config eeeeeeeeeeee, responses off" in (
        report.markdown(board)
    )


def test_a_damaged_manifest_stops_the_report_in_one_line(data: Path):
    (books_dir(data) / "bold" / "run.json").write_text("[]")
    with pytest.raises(UserError, match=r"run.json: not a run manifest"):
        report.build(data)
