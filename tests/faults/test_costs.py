"""Trading costs under the faults suite's eyes: at zero they change no byte of a book, and a
run with costs survives a kill -9 as a free run does (after one clean run, its book is
byte for byte an undisturbed run's)."""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import pytest
from conftest import Table, book, start, write_config
from test_faults import DAYS, after_day, kill, rerun_equals

from unit.support import Services, run_cli

# The sha256 of the default config's book over the offline sample, as the last version
# without trading costs wrote it. A change to the sample, the strategy or the book's format
# changes it, and then this number is updated on purpose, in the same commit.
BOOK_BEFORE_COSTS = "f7e3bc2ba90be17c1cbfd023c7a965bf1a74afd95a0b2250350115df5fa24e13"
COSTS = {"commission_bps": 10, "min_commission": 1, "slippage_bps": 5}
COST_KILLS = 4


def with_trading(config: Path, trading: dict[str, float]) -> Path:
    raw = json.loads(config.read_text(encoding="utf-8"))
    raw["trading"] = trading
    config.write_text(json.dumps(raw), encoding="utf-8")
    return config


def test_the_default_book_is_byte_for_byte_the_one_written_before_costs_existed(
    reference: bytes, table: Table
):
    check = table.check("no trading section: the book before costs")
    check.tried += 1
    digest = hashlib.sha256(reference).hexdigest()
    if digest != BOOK_BEFORE_COSTS:
        check.failed += 1
    check.notes.append(f"sha256 {digest[:12]}")
    assert digest == BOOK_BEFORE_COSTS


def test_every_cost_at_zero_writes_the_same_bytes_as_no_trading_section(
    serve: Services, books: Path, reference: bytes, tmp_path: Path, table: Table
):
    check = table.check("every cost at 0: the same bytes")
    zero = dict.fromkeys(COSTS, 0)
    config = with_trading(write_config(tmp_path, books), zero)
    done = run_cli("run", str(config), env=serve.env, timeout=300)
    assert done.returncode == 0, done.stderr
    check.tried += 1
    same = book(books).read_bytes() == reference
    check.failed += not same
    assert same


@pytest.fixture(scope="module")
def costly_reference(serve: Services, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The default run with costs, undisturbed."""
    books = serve.new_books()
    config = with_trading(write_config(tmp_path_factory.mktemp("costly"), books), COSTS)
    done = run_cli("run", str(config), env=serve.env, timeout=300)
    assert done.returncode == 0, done.stderr
    return book(books).read_bytes()


def test_a_run_with_costs_records_a_fill_and_a_fee_on_every_trade(
    costly_reference: bytes, reference: bytes
):
    rows = [json.loads(line) for line in costly_reference.decode().splitlines()]
    trades = [r["this_action"] for r in rows[1:] if r["this_action"]["action"] != "no_trade"]
    assert trades
    assert all(t["fee"] >= COSTS["min_commission"] and t["price"] > 0 for t in trades)
    free_cash = json.loads(reference.decode().splitlines()[-1])["positions"]["CASH"]
    assert rows[-1]["positions"]["CASH"] != free_cash  # the costs were charged


def test_kill_9_of_a_run_with_costs_never_loses_or_duplicates_a_day(
    serve: Services,
    books: Path,
    costly_reference: bytes,
    tmp_path: Path,
    rng: random.Random,
    table: Table,
):
    check = table.check("kill -9 of a run with costs, then a clean run")
    for trial in range(COST_KILLS):
        log_path = books / f"trial-{trial}"
        config = with_trading(write_config(tmp_path / f"c{trial}", log_path), COSTS)
        day, extra = rng.randrange(DAYS), rng.uniform(0, 0.05)
        run = start(["run", str(config)], serve.env)
        check.count("kills landed before the run ended", after_day(run, day, extra))
        kill(run)
        check.tried += 1
        if not rerun_equals(config, serve.env, log_path, costly_reference):
            check.failed += 1
            check.notes.append(f"trial {trial} (kill after day {day}) differs")
    assert check.failed == 0, check.notes
