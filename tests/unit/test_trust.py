"""Results you can trust: concurrent runs, and no silent wrong result, through the real CLI.

Every `run` here is a separate `ai-trader run` process against real `serve` processes; a
failure must be one line on stderr and a non-zero exit, with nothing wrong committed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import (
    Services,
    cli_env,
    run_cli,
    running_services,
    service_env,
    start_serve,
    wait_serving,
    with_ports,
)

from ai_trader.layout import STAGE_NAME, BookPaths, books_dir, merged_file
from ai_trader.market.universe import ALL_SYMBOLS

INIT = "2025-10-24"
END = "2025-10-31"
BUILTIN = "builtin/momentum"


def write_config(
    folder: Path, log_path: Path, signatures: list[str], name: str = "config.json", **extra: Any
) -> Path:
    config = {
        "date_range": {"init_date": INIT, "end_date": END},
        "models": [{"name": s, "basemodel": BUILTIN, "signature": s} for s in signatures],
        "log_config": {"log_path": str(log_path)},
        **extra,
    }
    path = folder / name
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def book(log_path: Path, signature: str) -> Path:
    return BookPaths(log_path / signature).position_file


def start_run(services: Services, config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ai_trader", "run", str(config)],
        env=services.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def one_error_line(result: subprocess.CompletedProcess[str], command: str = "run") -> str:
    """The single line a failed command prints (no traceback, nothing else)."""
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines, "no error line"
    errors = [line for line in lines if line.startswith(f"ai-trader {command}: error: ")]
    assert len(errors) == 1, result.stderr
    return errors[0]


@pytest.fixture(scope="module")
def solo(services: Services, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The default model's book from a run alone: what every other run must reproduce."""
    folder = tmp_path_factory.mktemp("solo")
    books = services.new_books()
    config = write_config(folder, books, ["alone"])
    result = run_cli("run", str(config), env=services.env, timeout=180)
    assert result.returncode == 0, result.stderr
    return book(books, "alone").read_bytes()


# --- several runs against one serve ---------------------------------------------------------


HOLD_LOCK = """
import sys, time
from pathlib import Path
from ai_trader.lock import signature_lock
with signature_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_run_of_a_signature_a_live_process_holds_is_refused_and_the_lock_dies_with_it(
    services: Services, books: Path, tmp_path: Path, solo: bytes
):
    config = write_config(tmp_path, books, ["alone"])
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(books / "alone")],
        env=services.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        refused = run_cli("run", str(config), env=services.env, timeout=120)
        assert refused.returncode == 2
        line = one_error_line(refused)
        assert f"signature 'alone' is already being run by pid {holder.pid} on " in line
        assert not book(books, "alone").exists()
    finally:
        holder.kill()  # SIGKILL: no clean-up of any kind
        holder.wait()
    result = run_cli("run", str(config), env=services.env, timeout=180)
    assert result.returncode == 0, result.stderr
    assert book(books, "alone").read_bytes() == solo


def test_runs_of_different_signatures_share_one_serve_and_each_book_equals_its_solo_run(
    services: Services, books: Path, tmp_path: Path, solo: bytes
):
    configs = [write_config(tmp_path, books, [f"model-{n}"], name=f"c{n}.json") for n in range(3)]
    runs = [start_run(services, config) for config in configs]
    for process in runs:
        assert process.wait(timeout=180) == 0, process.communicate()[1]
    for n in range(3):
        assert book(books, f"model-{n}").read_bytes() == solo


def test_one_run_trades_its_models_concurrently_each_equal_to_its_solo_run(
    services: Services, books: Path, tmp_path: Path, solo: bytes
):
    config = write_config(tmp_path, books, ["a", "b", "c", "d"])
    result = run_cli("run", str(config), "--jobs", "4", env=services.env, timeout=180)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()[1:]
    assert [line.split()[0] for line in lines] == ["a", "b", "c", "d", "all"]  # and the total
    for signature in "abcd":
        assert book(books, signature).read_bytes() == solo


# --- the services and the run must agree ----------------------------------------------------


@pytest.fixture(scope="module")
def serve_without_data(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """A second `serve` whose DATA_DIR has no merged.jsonl."""
    root = tmp_path_factory.mktemp("no-data")
    (root / "data").mkdir()
    with running_services(service_env(root / "data"), root / "serve.log") as running:
        yield running


def test_a_run_whose_services_have_no_prices_fails_and_commits_no_day(
    services: Services, books: Path, serve_without_data: Services, tmp_path: Path
):
    config = write_config(tmp_path, books, ["model"])
    env = {**serve_without_data.env, "DATA_DIR": services.env["DATA_DIR"]}
    result = run_cli("run", str(config), env=env, timeout=120)
    assert result.returncode == 1
    line = one_error_line(result)
    assert "model on 2025-10-27: the prices service cannot price this day" in line
    assert "merged.jsonl is missing" in line
    rows = book(books, "model").read_text().splitlines()
    assert [json.loads(row)["date"] for row in rows] == [INIT]  # the opening row alone


# --- bad input: one line, exit 2, nothing written --------------------------------------------


def test_a_range_without_trading_days_is_refused_and_writes_nothing(
    services: Services, books: Path, tmp_path: Path
):
    config = write_config(tmp_path, books, ["model"])
    env = {**services.env, "INIT_DATE": "2025-11-01", "END_DATE": "2025-11-30"}
    result = run_cli("run", str(config), env=env, timeout=120)
    assert result.returncode == 2
    assert "no trading day after init_date 2025-11-01 up to end_date 2025-11-30" in one_error_line(
        result
    )
    assert not books.exists()


def test_an_unknown_builtin_strategy_is_refused_listing_the_known_ones(tmp_path: Path):
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "date_range": {"init_date": INIT, "end_date": END},
                "models": [{"name": "x", "basemodel": "builtin/nosuch", "signature": "x"}],
            }
        )
    )
    result = run_cli("run", str(config), env=cli_env({"DATA_DIR": str(tmp_path)}), timeout=60)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "models.0.basemodel: no built-in strategy 'builtin/nosuch'" in line
    assert "(known: builtin/momentum)" in line


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b'{"date_range": \xff}', "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"date_range": NaN}', "NaN is not a JSON value"),
    ],
    ids=["not-utf8", "deeply-nested", "nan"],
)
def test_an_unreadable_config_is_one_line(tmp_path: Path, content: bytes, problem: str):
    config = tmp_path / "config.json"
    config.write_bytes(content)
    result = run_cli("run", str(config), env=cli_env({"DATA_DIR": str(tmp_path)}), timeout=60)
    assert result.returncode == 2
    assert problem in one_error_line(result)


@pytest.mark.parametrize("cash", ["Infinity", "1e309", "-1", "1e13"])
def test_initial_cash_must_be_a_finite_sensible_amount(tmp_path: Path, cash: str):
    config = tmp_path / "config.json"
    text = json.dumps(
        {
            "date_range": {"init_date": INIT, "end_date": END},
            "models": [{"name": "x", "basemodel": BUILTIN, "signature": "x"}],
            "agent_config": {"initial_cash": 0},
        }
    ).replace('"initial_cash": 0', f'"initial_cash": {cash}')
    config.write_text(text)
    result = run_cli("run", str(config), env=cli_env({"DATA_DIR": str(tmp_path)}), timeout=60)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "agent_config.initial_cash" in line or "not a JSON value" in line
    assert not (tmp_path / "agent_data").exists()


def test_a_signature_too_long_for_a_file_name_is_refused(tmp_path: Path):
    config = write_config(tmp_path, tmp_path / "agent_data", ["s" * 300])
    result = run_cli("run", str(config), env=cli_env({"DATA_DIR": str(tmp_path)}), timeout=60)
    assert result.returncode == 2
    assert "models.0.signature: must be 1 to 128 letters" in one_error_line(result)


# --- the environment fails: one line, and the book stays valid --------------------------------


def test_a_log_path_under_a_file_is_one_line(services: Services, tmp_path: Path):
    books = services.new_books()
    books.mkdir(parents=True)
    (books / "a-file").write_text("not a folder")
    config = write_config(tmp_path, books / "a-file" / "agent_data", ["model"])
    result = run_cli("run", str(config), env=services.env, timeout=120)
    assert result.returncode == 2
    assert "Not a directory" in one_error_line(result)


@pytest.fixture
def first_book(services: Services, books: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A finished run's folder and config, to break in some way and run again."""
    config = write_config(tmp_path, books, ["model"])
    result = run_cli("run", str(config), env=services.env, timeout=180)
    assert result.returncode == 0, result.stderr
    return books, config


def test_a_nan_in_the_book_is_one_line_and_the_book_is_left_alone(
    services: Services, first_book: tuple[Path, Path]
):
    log_path, config = first_book
    path = book(log_path, "model")
    rows = path.read_text().splitlines()
    rows[1] = rows[1].replace('"CASH": ', '"CASH": NaN, "was": ', 1)
    broken = "\n".join(rows) + "\n"
    path.write_text(broken)
    result = run_cli("run", str(config), env=services.env, timeout=120)
    assert result.returncode == 2
    assert "position.jsonl:2: NaN is not a number a book can hold" in one_error_line(result)
    assert path.read_text() == broken


def test_a_stage_that_became_a_folder_is_one_line(
    services: Services, first_book: tuple[Path, Path]
):
    log_path, config = first_book
    path = book(log_path, "model")
    kept = [row for row in path.read_text().splitlines() if json.loads(row)["date"] != END]
    path.write_text("\n".join(kept) + "\n")  # the last day undone, so it is redone
    (path.parent / STAGE_NAME).mkdir()
    result = run_cli("run", str(config), env=services.env, timeout=120)
    assert result.returncode == 2
    assert "Is a directory" in one_error_line(result)
    assert STAGE_NAME in one_error_line(result)


def test_temporary_files_of_a_killed_write_are_removed_on_the_next_start(
    services: Services, first_book: tuple[Path, Path]
):
    log_path, config = first_book
    leftover = book(log_path, "model").parent / ".position.jsonl.x1y2z3.tmp"
    leftover.write_text('{"date": "2025-10')
    result = run_cli("run", str(config), env=services.env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not leftover.exists()


# --- merge and fetch never lose or hide a symbol ---------------------------------------------


@pytest.fixture
def data_copy(services: Services, tmp_path: Path) -> Path:
    data = tmp_path / "data"
    shutil.copytree(services.settings.data_dir, data)
    return data


def test_merge_keeps_a_corrupt_symbols_previous_data_warns_and_fails(data_copy: Path):
    before = (data_copy / "merged.jsonl").read_text().splitlines()
    (data_copy / "daily_prices_AAPL.json").write_text('{"Meta Data": {"2. Symbol": "AAPL"')
    result = run_cli("merge", env=cli_env({"DATA_DIR": str(data_copy)}), timeout=60)
    assert result.returncode == 1
    assert "daily_prices_AAPL.json: not valid JSON" in result.stderr
    assert "keeping its previous merged data" in result.stderr
    assert "unusable price file(s): daily_prices_AAPL.json" in one_error_line(result, "merge")
    after = (data_copy / "merged.jsonl").read_text().splitlines()
    assert len(after) == len(ALL_SYMBOLS)
    assert sorted(after) == sorted(before)


def test_fetch_without_a_key_rewrites_a_corrupt_file_instead_of_calling_it_present(
    data_copy: Path,
):
    good = (data_copy / "daily_prices_AAPL.json").read_bytes()
    (data_copy / "daily_prices_AAPL.json").write_text("{corrupt")
    result = run_cli("fetch", env=cli_env({"DATA_DIR": str(data_copy)}), timeout=60)
    assert result.returncode == 0, result.stderr
    assert "1 file(s) written, 101 already present" in result.stderr
    assert (data_copy / "daily_prices_AAPL.json").read_bytes() == good


def test_a_second_merge_while_one_holds_the_price_files_is_refused(data_copy: Path):
    from ai_trader.lock import prices_lock

    with prices_lock(data_copy):
        result = run_cli("merge", env=cli_env({"DATA_DIR": str(data_copy)}), timeout=60)
    assert result.returncode == 2
    line = one_error_line(result, "merge")
    assert f"the price files in {data_copy} are being written by pid {os.getpid()}" in line


# --- a service that dies mid-run ----------------------------------------------------------------


def test_a_service_that_dies_mid_run_ends_it_with_one_line_naming_the_service(
    services: Services, books: Path, tmp_path: Path
):
    from standins import StandIns

    env = service_env(services.settings.data_dir)
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {
                "date_range": {"init_date": INIT, "end_date": END},
                "models": [{"name": "slow", "basemodel": "gpt-stand-in", "signature": "slow"}],
                "log_config": {"log_path": str(books)},
            }
        )
    )
    finish = [{"content": "Holding. <FINISH_SIGNAL>"}]
    serve = start_serve(env, tmp_path / "serve.log")
    with StandIns({"openai": {"script": finish, "delay": 0.3}}) as standins:
        env = with_ports(env, wait_serving(serve, tmp_path / "serve.log"))
        run_env = {**env, "OPENAI_API_KEY": "k", "OPENAI_API_BASE": standins.openai_base}
        agent = subprocess.Popen(
            [sys.executable, "-m", "ai_trader", "run", str(config)],
            env=run_env,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert agent.stderr is not None
        for line in agent.stderr:
            if "slow [1/5]" in line:
                break
        serve.kill()  # SIGKILL: the services vanish mid-run
        serve.wait()
        rest = agent.stderr.read()
        code = agent.wait(timeout=120)
    assert code == 1
    errors = [line for line in rest.splitlines() if line.startswith("ai-trader run: error:")]
    assert len(errors) == 1, rest
    assert "Traceback" not in rest
    assert "service stopped answering at http://127.0.0.1:" in errors[0]
    dates = [json.loads(r)["date"] for r in book(books, "slow").read_text().splitlines()]
    assert dates[:2] == [INIT, "2025-10-27"]
    assert len(dates) < 6  # the run stopped before its last day


def data_without(services: Services, tmp_path: Path, symbol: str) -> Path:
    """A data folder of its own whose merged.jsonl is the services' less ``symbol``."""
    data = tmp_path / "data"
    data.mkdir()
    lines = merged_file(services.settings.data_dir).read_text().splitlines()
    kept = [line for line in lines if f'"2. Symbol": "{symbol}"' not in line]
    assert len(kept) == len(lines) - 1
    merged_file(data).write_text("\n".join(kept) + "\n")
    return data


def test_a_watchlist_symbol_missing_from_the_data_is_left_out_and_logged(
    services: Services, tmp_path: Path
):
    data = data_without(services, tmp_path, "TSLA")
    config = write_config(tmp_path, books_dir(data), ["model"])
    with running_services(service_env(data), tmp_path / "serve.log") as serve:
        result = run_cli("run", str(config), env={**serve.env, "DATA_DIR": str(data)}, timeout=180)
    assert result.returncode == 0, result.stderr
    log = BookPaths(books_dir(data) / "model").log_file("2025-10-27").read_text()
    assert "No prices for TSLA around 2025-10-27; left out of today's watchlist." in log
    assert '"symbol": "TSLA"' not in log


def test_a_run_on_prices_without_the_benchmark_says_how_to_get_it_and_writes_nothing(
    services: Services, tmp_path: Path
):
    data = data_without(services, tmp_path, "QQQ")
    config = write_config(tmp_path, books_dir(data), ["model"])
    result = run_cli("run", str(config), env={**services.env, "DATA_DIR": str(data)}, timeout=60)
    assert result.returncode == 2
    assert one_error_line(result) == (
        f"ai-trader run: error: {data / 'merged.jsonl'} has no QQQ line, the benchmark every "
        "return is compared with: `ai-trader fetch` fetches QQQ (with the other symbols), "
        "then `ai-trader merge` adds it"
    )
    assert not books_dir(data).exists()
