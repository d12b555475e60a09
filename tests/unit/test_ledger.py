"""The position book: trading rules, day-level commits, crash safety, the original format."""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
from pathlib import Path

import pytest

from ai_trader.errors import UserError
from ai_trader.ledger import (
    CASH,
    Ledger,
    TradeRejected,
    apply_trade,
    initial_row,
    read_lenient,
    whole_shares,
)
from ai_trader.market.universe import NASDAQ_100

SYMBOLS = ("AAPL", "MSFT", "NVDA")
INIT = "2025-10-24"
DAY1 = "2025-10-27"
DAY2 = "2025-10-28"


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    book = Ledger(tmp_path / "model-a")
    assert book.ensure_initialized(INIT, SYMBOLS, 1000.0)
    return book


def lines(ledger: Ledger) -> list[dict]:
    return [json.loads(line) for line in ledger.position_file.read_text().splitlines()]


# --- the rules ---------------------------------------------------------------------------


def test_a_buy_moves_cash_into_shares_at_the_price():
    after = apply_trade({"AAPL": 0, CASH: 1000.0}, "buy", "AAPL", 3, 100.5)
    assert after == {"AAPL": 3, CASH: 698.5}


def test_a_sell_moves_shares_into_cash_at_the_price():
    after = apply_trade({"AAPL": 5, CASH: 10.0}, "sell", "AAPL", 2, 50.25)
    assert after == {"AAPL": 3, CASH: 110.5}


def test_a_buy_may_spend_exactly_all_the_cash():
    assert apply_trade({CASH: 300.0}, "buy", "MSFT", 3, 100.0) == {"MSFT": 3, CASH: 0.0}


def test_a_buy_beyond_the_cash_is_rejected_naming_the_shortfall():
    with pytest.raises(TradeRejected, match="insufficient cash") as caught:
        apply_trade({"AAPL": 0, CASH: 100.0}, "buy", "AAPL", 2, 50.01)
    assert "100.02" in str(caught.value)


def test_selling_more_than_held_is_rejected():
    with pytest.raises(TradeRejected, match="insufficient shares: selling 3 AAPL, holding 2"):
        apply_trade({"AAPL": 2, CASH: 0.0}, "sell", "AAPL", 3, 10.0)


def test_selling_a_symbol_never_held_is_rejected():
    with pytest.raises(TradeRejected, match="insufficient shares"):
        apply_trade({CASH: 0.0}, "sell", "NVDA", 1, 10.0)


def test_an_unknown_action_is_rejected():
    with pytest.raises(TradeRejected, match="unknown action"):
        apply_trade({CASH: 100.0}, "short", "AAPL", 1, 10.0)


def test_applying_a_trade_leaves_the_given_positions_alone():
    before = {"AAPL": 1, CASH: 100.0}
    apply_trade(before, "buy", "AAPL", 1, 10.0)
    assert before == {"AAPL": 1, CASH: 100.0}


@pytest.mark.parametrize(("amount", "shares"), [(1, 1), (7, 7), (3.0, 3)])
def test_whole_shares_accepts_positive_whole_numbers(amount: object, shares: int):
    assert whole_shares(amount) == shares
    assert type(whole_shares(amount)) is int


@pytest.mark.parametrize(
    "amount", [0, -1, -2.0, 1.5, 0.001, True, False, "3", None, math.nan, math.inf, [1]]
)
def test_whole_shares_rejects_anything_else(amount: object):
    with pytest.raises(TradeRejected, match="amount"):
        whole_shares(amount)


# --- the book on disk --------------------------------------------------------------------


def test_the_opening_row_has_every_symbol_and_the_cash(ledger: Ledger):
    assert lines(ledger) == [
        {"date": INIT, "id": 0, "positions": {"AAPL": 0, "MSFT": 0, "NVDA": 0, CASH: 1000.0}}
    ]
    assert initial_row(INIT, SYMBOLS, 1000.0) == lines(ledger)[0]


def test_an_existing_book_is_not_initialised_again(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 10.0)
    ledger.commit_day(DAY1)
    assert not ledger.ensure_initialized(INIT, SYMBOLS, 5.0)
    assert len(lines(ledger)) == 2


def test_a_staged_trade_reaches_position_jsonl_only_at_commit(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 2, 100.0)
    assert len(lines(ledger)) == 1
    assert ledger.pending_file.exists()
    added = ledger.commit_day(DAY1)
    assert [row["this_action"] for row in added] == [
        {"action": "buy", "symbol": "AAPL", "amount": 2}
    ]
    assert lines(ledger)[1:] == added
    assert not ledger.pending_file.exists()


def test_staged_trades_build_on_each_other_within_a_day(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 2, 100.0)
    ledger.record_trade(DAY1, "buy", "MSFT", 1, 300.0)
    ledger.record_trade(DAY1, "sell", "AAPL", 1, 100.0)
    positions, last_id = ledger.positions_for(DAY1)
    assert positions == {"AAPL": 1, "MSFT": 1, "NVDA": 0, CASH: 600.0}
    assert last_id == 3
    assert [row["id"] for row in ledger.commit_day(DAY1)] == [1, 2, 3]


def test_a_staged_trade_is_checked_against_the_staged_positions(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 9, 100.0)
    with pytest.raises(TradeRejected, match="insufficient cash"):
        ledger.record_trade(DAY1, "buy", "AAPL", 2, 100.0)


def test_a_rejected_trade_stages_nothing(ledger: Ledger):
    with pytest.raises(TradeRejected):
        ledger.record_trade(DAY1, "sell", "AAPL", 1, 100.0)
    assert not ledger.pending_file.exists()


def test_a_day_without_trades_commits_one_no_trade_row(ledger: Ledger):
    added = ledger.commit_day(DAY1)
    assert added == [
        {
            "date": DAY1,
            "id": 1,
            "this_action": {"action": "no_trade", "symbol": "", "amount": 0},
            "positions": {"AAPL": 0, "MSFT": 0, "NVDA": 0, CASH: 1000.0},
        }
    ]
    assert lines(ledger)[-1] == added[0]


def test_the_next_day_starts_from_the_committed_positions(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "NVDA", 4, 50.0)
    ledger.commit_day(DAY1)
    row = ledger.record_trade(DAY2, "sell", "NVDA", 1, 60.0)
    assert row["id"] == 2
    assert row["positions"] == {"AAPL": 0, "MSFT": 0, "NVDA": 3, CASH: 860.0}


def test_a_stage_left_from_another_day_is_ignored(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    assert ledger.pending(DAY2) == []
    assert ledger.positions_for(DAY2) == ({"AAPL": 0, "MSFT": 0, "NVDA": 0, CASH: 1000.0}, 0)


def test_each_trade_appends_one_row_in_the_books_format_and_leaves_the_earlier_ones(
    ledger: Ledger,
):
    first = ledger.record_trade(DAY1, "buy", "AAPL", 2, 100.0)
    before = ledger.pending_file.read_bytes()
    second = ledger.record_trade(DAY1, "buy", "MSFT", 1, 300.0)
    after = ledger.pending_file.read_bytes()
    assert after.startswith(before)
    assert [json.loads(line) for line in after.splitlines()] == [first, second]
    added = ledger.commit_day(DAY1)
    assert ledger.position_file.read_bytes().endswith(after)
    assert added == [first, second]


def test_the_days_first_trade_drops_a_stage_left_from_another_day(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    row = ledger.record_trade(DAY2, "buy", "MSFT", 1, 300.0)
    assert row["id"] == 1
    assert row["positions"] == {"AAPL": 0, "MSFT": 1, "NVDA": 0, CASH: 700.0}
    assert ledger.pending(DAY2) == [row]
    assert len(ledger.pending_file.read_text().splitlines()) == 1


def test_a_stage_whose_last_line_is_cut_is_an_error_not_a_shorter_day(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    ledger.record_trade(DAY1, "buy", "MSFT", 1, 300.0)
    text = ledger.pending_file.read_text()
    ledger.pending_file.write_text(text[: len(text) - 20])
    with pytest.raises(UserError, match=r"pending\.jsonl: unreadable \(its last line is cut\)"):
        ledger.record_trade(DAY1, "buy", "NVDA", 1, 10.0)
    with pytest.raises(UserError, match="its last line is cut"):
        ledger.commit_day(DAY1)
    assert len(lines(ledger)) == 1


def test_a_stage_holding_two_days_is_an_error(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    row = json.loads(ledger.pending_file.read_text())
    with ledger.pending_file.open("a") as handle:
        handle.write(json.dumps({**row, "date": DAY2, "id": 2}) + "\n")
    with pytest.raises(UserError, match="trades of more than one day"):
        ledger.pending(DAY1)


def test_a_staged_row_that_breaks_the_books_rules_is_an_error_naming_its_line(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    ledger.pending_file.write_text(ledger.pending_file.read_text().replace("900.0", "NaN"))
    with pytest.raises(UserError, match=r"pending\.jsonl: unreadable \(last line: NaN"):
        ledger.record_trade(DAY1, "buy", "MSFT", 1, 300.0)
    with pytest.raises(UserError, match=r"\(line 1: NaN"):
        ledger.pending(DAY1)


def test_a_staged_row_longer_than_the_read_tail_is_still_found(tmp_path: Path):
    many = [f"S{i:05d}" for i in range(6000)]  # one row of well over 64 KB
    ledger = Ledger(tmp_path / "wide")
    ledger.ensure_initialized(INIT, many, 1000.0)
    ledger.record_trade(DAY1, "buy", "S00001", 1, 100.0)
    assert ledger.pending_file.stat().st_size > 64 * 1024
    row = ledger.record_trade(DAY1, "buy", "S00002", 1, 100.0)
    assert row["id"] == 2
    assert row["positions"][CASH] == 800.0


def test_the_staged_day_is_read_leniently_for_the_dashboard(ledger: Ledger):
    assert ledger.staged_day() is None
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    assert ledger.staged_day() == DAY1
    ledger.pending_file.write_text("{not json\n")
    assert ledger.staged_day() is None


def test_begin_day_discards_a_stale_stage_so_a_redo_adds_no_duplicate(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    # The attempt stops here; the next run redoes the day and places the same trade.
    ledger.begin_day(DAY1)
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    ledger.commit_day(DAY1)
    buys = [row for row in lines(ledger) if row.get("this_action", {}).get("action") == "buy"]
    assert len(buys) == 1
    assert lines(ledger)[-1]["positions"]["AAPL"] == 1


def test_a_stage_emptied_by_a_power_cut_is_dropped_when_the_day_is_redone(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    # A stage is not flushed to the disk, so a power cut may leave it empty.
    ledger.pending_file.write_text("")
    ledger.begin_day(DAY1)
    ledger.record_trade(DAY1, "buy", "MSFT", 1, 300.0)
    added = ledger.commit_day(DAY1)
    assert [row["this_action"]["symbol"] for row in added] == ["MSFT"]
    assert lines(ledger)[-1]["positions"] == {"AAPL": 0, "MSFT": 1, "NVDA": 0, CASH: 700.0}


def test_a_commit_is_flushed_to_the_disk_and_a_stage_is_not(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
):
    flushed: list[int] = []  # the inodes of the files flushed
    real_fsync = os.fsync

    def spy(fd: int) -> None:
        flushed.append(os.fstat(fd).st_ino)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", spy)
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    assert flushed == []
    ledger.commit_day(DAY1)
    assert flushed == [ledger.position_file.stat().st_ino]


def test_begin_day_removes_the_partial_log_of_that_day(ledger: Ledger):
    ledger.append_log(DAY1, {"step": 1})
    ledger.append_log(DAY2, {"step": 1})
    ledger.begin_day(DAY1)
    assert not ledger.log_file(DAY1).exists()
    assert ledger.log_file(DAY2).exists()


def test_a_commit_repeated_after_a_crash_before_the_stage_was_removed_adds_nothing(
    ledger: Ledger, tmp_path: Path
):
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    stage = tmp_path / "stage-copy.json"
    shutil.copy(ledger.pending_file, stage)
    ledger.commit_day(DAY1)
    committed = ledger.position_file.read_text()
    # The state a crash between the rename and the stage removal leaves behind:
    shutil.copy(stage, ledger.pending_file)
    assert ledger.commit_day(DAY1) == []
    assert ledger.position_file.read_text() == committed
    assert not ledger.pending_file.exists()


def test_log_entries_are_appended_as_json_lines(ledger: Ledger):
    ledger.append_log(DAY1, {"role": "assistant", "content": "héllo"})
    ledger.append_log(DAY1, {"role": "tool", "content": "{}"})
    path = ledger.paths.log_file(DAY1)
    assert [json.loads(x)["role"] for x in path.read_text().splitlines()] == [
        "assistant",
        "tool",
    ]


def test_position_rows_have_the_original_format(ledger: Ledger):
    ledger.record_trade(DAY1, "buy", "AAPL", 2, 100.0)
    ledger.commit_day(DAY1)
    ledger.commit_day(DAY2)
    text = ledger.position_file.read_text()
    assert text.endswith("\n")
    rows = [json.loads(line) for line in text.splitlines()]
    assert list(rows[0]) == ["date", "id", "positions"]
    for row in rows[1:]:
        assert list(row) == ["date", "id", "this_action", "positions"]
        assert list(row["this_action"]) == ["action", "symbol", "amount"]
        assert CASH in row["positions"]
    assert [row["id"] for row in rows] == [0, 1, 2]
    assert [row["date"] for row in rows] == [INIT, DAY1, DAY2]
    # The original's separators: one JSON object per line, ", " and ": ".
    assert text.splitlines()[1].startswith('{"date": "2025-10-27", "id": 1, "this_action": {')


def test_the_last_date_is_the_last_committed_day(ledger: Ledger):
    assert ledger.last_date() == INIT
    ledger.commit_day(DAY1)
    assert ledger.last_date() == DAY1


def test_a_missing_book_has_no_rows(tmp_path: Path):
    book = Ledger(tmp_path / "nobody")
    assert book.rows() == []
    assert book.last_date() is None
    with pytest.raises(UserError, match="not initialised"):
        book.committed()


# --- damaged files -----------------------------------------------------------------------


def two_days(ledger: Ledger) -> str:
    ledger.record_trade(DAY1, "buy", "AAPL", 1, 100.0)
    ledger.commit_day(DAY1)
    ledger.record_trade(DAY2, "buy", "MSFT", 1, 100.0)
    ledger.record_trade(DAY2, "buy", "NVDA", 1, 100.0)
    ledger.commit_day(DAY2)
    return ledger.position_file.read_text()


def test_a_truncated_last_line_drops_its_whole_day(
    ledger: Ledger, caplog: pytest.LogCaptureFixture
):
    text = two_days(ledger)
    ledger.position_file.write_text(text[: text.rindex("\n", 0, -1) + 40])
    with caplog.at_level(logging.WARNING, logger="ai_trader.ledger"):
        rows = ledger.rows()
    assert [row["date"] for row in rows] == [INIT, DAY1]
    assert "truncated" in caplog.text
    assert DAY2 in caplog.text


def test_a_truncated_last_line_is_repaired_on_disk(ledger: Ledger):
    text = two_days(ledger)
    ledger.position_file.write_text(text[: text.rindex("\n", 0, -1) + 40])
    ledger.rows()
    assert [row["date"] for row in lines(ledger)] == [INIT, DAY1]
    assert ledger.position_file.read_text().endswith("\n")


def test_a_repaired_day_is_redone_from_the_previous_days_end(ledger: Ledger):
    text = two_days(ledger)
    ledger.position_file.write_text(text[: text.rindex("\n", 0, -1) + 40])
    assert ledger.last_date() == DAY1
    ledger.begin_day(DAY2)
    ledger.record_trade(DAY2, "buy", "MSFT", 1, 100.0)
    ledger.commit_day(DAY2)
    assert [row["id"] for row in lines(ledger)] == [0, 1, 2]
    assert lines(ledger)[-1]["positions"] == {"AAPL": 1, "MSFT": 1, "NVDA": 0, CASH: 800.0}


def test_a_truncated_line_without_a_readable_date_drops_the_last_intact_day(ledger: Ledger):
    text = two_days(ledger)
    ledger.position_file.write_text(text + '{"da')
    assert [row["date"] for row in ledger.rows()] == [INIT, DAY1]


def test_a_corrupt_middle_line_is_an_error_naming_file_and_line(ledger: Ledger):
    text = two_days(ledger)
    broken = text.splitlines()
    broken[1] = broken[1][:30]
    ledger.position_file.write_text("\n".join(broken) + "\n")
    with pytest.raises(UserError) as caught:
        ledger.rows()
    assert f"{ledger.position_file}:2" in str(caught.value)
    # Nothing is rewritten behind the user's back.
    assert ledger.position_file.read_text() == "\n".join(broken) + "\n"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("[1, 2]", "expected a JSON object"),
        ('{"id": 1, "positions": {"CASH": 1}}', "'date'"),
        ('{"date": "2025-10-27", "id": "1", "positions": {"CASH": 1}}', "'id'"),
        ('{"date": "2025-10-27", "id": 1, "positions": {"AAPL": 1}}', "'CASH'"),
    ],
)
def test_a_row_of_the_wrong_shape_is_an_error_naming_its_line(
    ledger: Ledger, line: str, problem: str
):
    with ledger.position_file.open("a") as handle:
        handle.write(line + "\n")
    with pytest.raises(UserError, match=problem) as caught:
        ledger.rows()
    assert f"{ledger.position_file}:2" in str(caught.value)


def test_committed_positions_come_from_the_last_row_of_a_long_history(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "sig")
    ledger.ensure_initialized("2025-01-01", NASDAQ_100, 1_000_000.0)
    for number in range(1, 200):
        day = f"2025-{1 + number // 28:02d}-{1 + number % 28:02d}"
        ledger.record_trade(day, "buy", "AAPL", 1, 10.0)
        ledger.commit_day(day)
    assert ledger.position_file.stat().st_size > 3 * 64 * 1024  # far more than the tail read
    positions, last_id = ledger.committed()
    assert last_id == 199
    assert positions["AAPL"] == 199
    assert positions["CASH"] == 1_000_000.0 - 1990.0


def test_committed_after_a_truncated_last_line_uses_the_repaired_book(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "sig")
    ledger.ensure_initialized("2025-01-01", ["AAPL"], 100.0)
    ledger.record_trade("2025-01-02", "buy", "AAPL", 1, 10.0)
    ledger.commit_day("2025-01-02")
    with ledger.position_file.open("a") as handle:
        handle.write('{"date": "2025-01-03", "id": 2, "posit')
    positions, last_id = ledger.committed()
    assert (last_id, positions["AAPL"]) == (1, 1)


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_a_non_finite_number_in_the_book_is_an_error_naming_its_line(ledger: Ledger, bad: str):
    text = ledger.position_file.read_text().replace('"CASH": 1000.0', f'"CASH": {bad}')
    ledger.position_file.write_text(
        text + '{"date": "2025-10-02", "id": 1, "positions": {"CASH": 1}}\n'
    )
    with pytest.raises(
        UserError, match=rf"position.jsonl:1: {bad} is not a number a book can hold"
    ):
        ledger.rows()


def test_a_huge_number_that_json_reads_as_infinity_is_an_error(ledger: Ledger):
    text = ledger.position_file.read_text().replace('"AAPL": 0', '"AAPL": 1e309')
    ledger.position_file.write_text(text)
    with pytest.raises(UserError, match=r"positions\['AAPL'\] is not a finite number"):
        ledger.rows()


def test_an_unreadable_stage_of_the_day_is_an_error_not_an_empty_day(ledger: Ledger):
    ledger.pending_file.parent.mkdir(parents=True, exist_ok=True)
    ledger.pending_file.write_text("{not json\n")
    with pytest.raises(UserError, match=r"pending\.jsonl: unreadable \(line 1: "):
        ledger.pending("2025-10-02")


# --- the row model: extreme lines, strict and lenient ------------------------------------

GOOD = '{"date": "2025-10-27", "id": 1, "this_action": {"action": "no_trade"}, '
EXTREME = [
    pytest.param(GOOD + '"positions": {"AAPL": 1e308, "CASH": 1}}',
                 "positions['AAPL'] is beyond 1e+15", id="1e308"),
    pytest.param(GOOD + '"positions": {"AAPL": 1' + "0" * 400 + ', "CASH": 1}}', "beyond",
                 id="10**400"),
    pytest.param(GOOD + '"positions": {"AAPL": NaN, "CASH": 1}}', "NaN is not a number",
                 id="NaN"),
    pytest.param("[" * 100_000 + "]" * 100_000, "nested too deeply", id="deeply-nested"),
    pytest.param('"just a string"', "expected a JSON object", id="non-object"),
    pytest.param('{"date": "27/10/2025", "id": 1, "positions": {"CASH": 1}}', "'date'",
                 id="bad-date"),
    pytest.param(GOOD.replace('"no_trade"', "7") + '"positions": {"CASH": 1}}', "this_action",
                 id="bad-action"),
]  # fmt: skip


@pytest.mark.parametrize(("line", "reason"), EXTREME)
def test_the_strict_read_refuses_an_extreme_line_in_one_line_naming_it(
    ledger: Ledger, line: str, reason: str
):
    with ledger.position_file.open("a") as handle:
        handle.write(line + "\n" + GOOD + '"positions": {"CASH": 1}}\n')
    with pytest.raises(UserError, match=re.escape(reason)) as caught:
        ledger.rows()
    message = str(caught.value)
    assert message.startswith(f"{ledger.position_file}:2: ")
    assert "\n" not in message


@pytest.mark.parametrize(("line", "reason"), EXTREME)
def test_the_lenient_read_skips_an_extreme_line_and_reports_it(
    ledger: Ledger, line: str, reason: str
):
    with ledger.position_file.open("a") as handle:
        handle.write(line + "\n" + GOOD + '"positions": {"CASH": 1}}\n')
    before = ledger.position_file.read_text()
    found = read_lenient(ledger.position_file)
    assert [row["id"] for row in found.values or []] == [0, 1]
    (skipped,) = found.skipped
    assert (skipped.file, skipped.line) == (str(ledger.position_file), 2)
    assert reason in skipped.reason
    assert ledger.position_file.read_text() == before


def test_the_lenient_read_reports_a_truncated_last_line_and_repairs_nothing(ledger: Ledger):
    text = ledger.position_file.read_text() + '{"date": "2025-10-28", "id": 1, "posi'
    ledger.position_file.write_text(text)
    found = read_lenient(ledger.position_file)
    assert [(s.line, s.reason) for s in found.skipped] == [(2, "not valid JSON")]
    assert ledger.position_file.read_text() == text


def test_the_lenient_read_of_a_missing_book_is_none(tmp_path: Path):
    assert read_lenient(tmp_path / "position.jsonl").values is None


def test_a_row_keeps_its_numbers_as_written(ledger: Ledger):
    (row,) = ledger.rows()
    assert type(row["positions"]["AAPL"]) is int
    assert type(row["positions"][CASH]) is float


@pytest.mark.parametrize("amount", ["true", '"3"'])
def test_a_position_that_is_a_boolean_or_a_string_is_not_a_number(ledger: Ledger, amount: str):
    text = ledger.position_file.read_text().replace('"AAPL": 0', f'"AAPL": {amount}')
    ledger.position_file.write_text(text)
    with pytest.raises(UserError, match=r"positions\['AAPL'\] is not a number"):
        ledger.rows()


# --- the book's own rules, on a book someone else wrote ------------------------------------


def with_last_row(ledger: Ledger, **positions: float) -> str:
    """The two-day book with its last row's positions changed as given."""
    text = two_days(ledger)
    rows = [json.loads(line) for line in text.splitlines()]
    rows[-1]["positions"].update(positions)
    ledger.position_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return ledger.position_file.read_text()


@pytest.mark.parametrize(
    ("positions", "problem"),
    [
        ({"MSFT": -3}, "positions['MSFT'] is -3: negative shares break the book"),
        ({CASH: -0.01}, "positions['CASH'] is -0.01: negative cash break the book"),
    ],
)
def test_a_last_row_with_negative_holdings_is_refused_naming_the_row(
    ledger: Ledger, positions: dict, problem: str
):
    text = with_last_row(ledger, **positions)
    for read in (ledger.committed, ledger.rows):
        with pytest.raises(UserError) as caught:
            read()
        assert str(caught.value) == f"{ledger.position_file}:4: {problem}"
    assert ledger.position_file.read_text() == text  # refused, never repaired


def test_a_row_dated_before_the_row_above_it_is_refused_naming_the_row(ledger: Ledger):
    rows = [json.loads(line) for line in two_days(ledger).splitlines()]
    rows[1]["date"], rows[2]["date"] = DAY2, DAY1
    ledger.position_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    with pytest.raises(UserError) as caught:
        ledger.rows()
    assert str(caught.value) == (
        f"{ledger.position_file}:3: dated {DAY1}, before the row above it ({DAY2}); "
        "the days of a book never go back"
    )


def test_the_lenient_read_skips_and_reports_rows_that_break_the_rules(ledger: Ledger):
    rows = [json.loads(line) for line in two_days(ledger).splitlines()]
    rows[1]["positions"]["AAPL"] = -1
    rows.append({**rows[-1], "date": DAY1, "id": 3})  # back in time
    ledger.position_file.write_text("".join(json.dumps(row) + "\n" for row in rows))
    found = read_lenient(ledger.position_file)
    assert [row["id"] for row in found.values or []] == [0, 2, 3]
    assert [(s.line, s.reason) for s in found.skipped] == [
        (2, "positions['AAPL'] is -1: negative shares break the book"),
        (5, f"dated {DAY1}, before the row above it ({DAY2}); the days of a book never go back"),
    ]


# --- which day a trade may be for ------------------------------------------------------------


def test_a_trade_on_a_day_already_committed_is_refused_and_stages_nothing(ledger: Ledger):
    two_days(ledger)
    for day in (DAY1, DAY2):
        with pytest.raises(UserError, match=f"{day} is done: the book is committed up to {DAY2}"):
            ledger.record_trade(day, "buy", "AAPL", 1, 100.0)
    assert not ledger.pending_file.exists()


def test_a_trade_on_the_opening_day_is_refused(ledger: Ledger):
    with pytest.raises(UserError, match=f"{INIT} is done"):
        ledger.record_trade(INIT, "buy", "AAPL", 1, 100.0)


def test_a_trade_dated_before_the_staged_day_is_refused_and_keeps_the_stage(ledger: Ledger):
    ledger.record_trade(DAY2, "buy", "AAPL", 1, 100.0)
    stage = ledger.pending_file.read_bytes()
    with pytest.raises(UserError, match=f"{DAY1} is before the day already staged \\({DAY2}\\)"):
        ledger.record_trade(DAY1, "buy", "MSFT", 1, 100.0)
    assert ledger.pending_file.read_bytes() == stage
