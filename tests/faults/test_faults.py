"""Faults a long benchmark run meets, made real: kills, crowds, full and read-only disks, and
missing or corrupt data. Each must end in one line and a book that is either untouched or,
after one clean run, byte for byte what an undisturbed run writes."""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import (
    Table,
    book,
    only_error_line,
    start,
    valid_book,
    write_config,
)

from ai_trader.layout import LOCK_NAME, books_dir
from ai_trader.lock import holder
from standins import StandIns
from unit.support import (
    Services,
    cli_env,
    run_cli,
    service_env,
    start_serve,
    wait_serving,
    with_ports,
)

# Kills in batches: each batch is a test of its own, so pytest-xdist spreads them over its
# lanes; the table adds the batches of a check up.
RUN_KILLS = 12
SERVE_KILLS = 8
KILLS_PER_BATCH = 4


DAYS = 23  # trading days in the default config's range


def after_day(run: subprocess.Popen[str], day: int, extra: float) -> bool:
    """Wait until ``run`` logged trading day ``day`` (0: as soon as it starts), then ``extra``
    seconds more; False when it ended first. Progress, not wall time, picks the moment, so
    the kills land all through the run however loaded the machine is."""
    assert run.stderr is not None
    if day > 0:
        for line in run.stderr:
            if f"[{day}/{DAYS}]" in line:
                break
        else:
            return False
    time.sleep(extra)
    return run.poll() is None


def kill(process: subprocess.Popen[str]) -> None:
    process.kill()  # SIGKILL, as `kill -9`: no handler runs, nothing is cleaned up
    process.wait()


def rows_in(path: Path) -> int:
    try:
        return len(path.read_text(encoding="utf-8").splitlines())
    except FileNotFoundError:
        return 0


def rerun_equals(config: Path, env: dict[str, str], log_path: Path, reference: bytes) -> bool:
    """A clean run after a kill: it succeeds and leaves the book byte-equal to the reference."""
    clean = run_cli("run", str(config), env=env, timeout=300)
    return clean.returncode == 0 and book(log_path).read_bytes() == reference


def batches(kills: int) -> list[range]:
    """The trial numbers of each batch, ``KILLS_PER_BATCH`` at a time."""
    return [range(n, min(n + KILLS_PER_BATCH, kills)) for n in range(0, kills, KILLS_PER_BATCH)]


@pytest.mark.parametrize("trials", batches(RUN_KILLS), ids=lambda r: f"trials-{r.start}-{r.stop}")
def test_kill_9_of_run_at_random_moments_never_loses_or_duplicates_a_day(
    trials: range,
    serve: Services,
    books: Path,
    reference: bytes,
    tmp_path: Path,
    rng: random.Random,
    table: Table,
):
    check = table.check("kill -9 of run, then a clean run")
    failed_before = check.failed  # earlier batches of this check, in this worker
    for trial in trials:
        log_path = books / f"trial-{trial}"
        config = write_config(tmp_path / f"c{trial}", log_path)
        day, extra = rng.randrange(DAYS), rng.uniform(0, 0.05)
        moment = f"day {day} + {extra * 1000:.0f} ms"
        run = start(["run", str(config)], serve.env)
        check.count("kills landed before the run ended", after_day(run, day, extra))
        kill(run)
        check.rows_at_kill.append(rows_in(book(log_path)))
        check.tried += 1
        if not rerun_equals(config, serve.env, log_path, reference):
            check.failed += 1
            check.notes.append(f"trial {trial} (kill after {moment}) differs")
    assert check.failed == failed_before, check.notes  # this batch's own verdict


@contextlib.contextmanager
def own_serve(data_dir: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, int]]]:
    """A serve of the test's own and the ports it names. It starts on port 0 (service_env)
    and binds what the system picks, so no other process can take a port between the test
    choosing it and serve binding it."""
    env = service_env(data_dir)
    log = data_dir.parent / f"serve-{data_dir.name}.log"
    process = start_serve(env, log)
    try:
        yield process, wait_serving(process, log)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.mark.parametrize("trials", batches(SERVE_KILLS), ids=lambda r: f"trials-{r.start}-{r.stop}")
def test_kill_9_of_serve_mid_run_fails_the_run_in_one_line_and_loses_nothing(
    trials: range,
    serve: Services,
    books: Path,
    data_dir: Path,
    reference: bytes,
    tmp_path: Path,
    rng: random.Random,
    table: Table,
):
    check = table.check("kill -9 of serve mid-run, then a clean run")
    failed_before = check.failed  # earlier batches of this check, in this worker
    for trial in trials:
        log_path = books / f"trial-{trial}"
        config = write_config(tmp_path / f"c{trial}", log_path)
        with own_serve(data_dir) as (serve_process, ports):
            agent = start(["run", str(config)], with_ports(service_env(data_dir), ports))
            day, extra = rng.randrange(DAYS), rng.uniform(0, 0.05)
            moment = f"day {day} + {extra * 1000:.0f} ms"
            after_day(agent, day, extra)
            kill(serve_process)
            _, stderr = agent.communicate(timeout=300)
        check.tried += 1
        check.rows_at_kill.append(rows_in(book(log_path)))
        if agent.returncode == 0:
            pass  # the run ended before the kill
        elif agent.returncode in (1, 2) and only_error_line(stderr) is not None:
            # 1: a service stopped answering mid-run; 2: it was gone before the run began.
            check.count("runs stopped with one line naming the service")
        else:
            check.failed += 1
            check.notes.append(f"trial {trial}: exit {agent.returncode}, not one line")
        if book(log_path).exists() and not valid_book(book(log_path)):
            check.failed += 1
            check.notes.append(f"trial {trial}: the book is not valid after the kill")
        # The clean run goes to the session's serve: same data, and no second start-up.
        if not rerun_equals(config, serve.env, log_path, reference):
            check.failed += 1
            check.notes.append(f"trial {trial} (kill after {moment}): clean run differs")
    assert check.failed == failed_before, check.notes  # this batch's own verdict


def test_a_second_run_of_a_signature_is_refused_while_the_first_trades(
    serve: Services, books: Path, tmp_path: Path, table: Table
):
    check = table.check("two runs of one signature")
    finish = [{"content": "Holding. <FINISH_SIGNAL>"}]
    with StandIns({"openai": {"script": finish, "delay": 0.2}}) as standins:
        env = {**serve.env, "OPENAI_API_KEY": "k", "OPENAI_API_BASE": standins.openai_base}
        config = write_config(tmp_path, books, ["slow"], basemodel="gpt-stand-in")
        first = start(["run", str(config)], env)
        lock = books / "slow" / LOCK_NAME
        deadline = time.monotonic() + 60
        while holder(lock) is None and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        second = run_cli("run", str(config), env=env, timeout=120)
        _, first_err = first.communicate(timeout=300)
    check.tried += 1
    line = only_error_line(second.stderr) or ""
    refused = second.returncode == 2 and f"already being run by pid {first.pid}" in line
    if not refused or first.returncode != 0:
        check.failed += 1
        check.notes.append(f"second exit {second.returncode}: {second.stderr.strip()[:200]}")
    else:
        check.notes.append("refused at once, naming the holder's pid")
    assert refused, second.stderr
    assert first.returncode == 0, first_err


def test_runs_of_different_signatures_on_one_serve_each_equal_their_solo_run(
    serve: Services, books: Path, reference: bytes, tmp_path: Path, table: Table
):
    check = table.check("3 signatures at once on one serve")
    log_path = books
    configs = [write_config(tmp_path / f"c{n}", log_path, [f"model-{n}"]) for n in range(3)]
    runs = [start(["run", str(config)], serve.env) for config in configs]
    for process in runs:
        process.communicate(timeout=300)
    for n, process in enumerate(runs):
        check.tried += 1
        if process.returncode != 0 or book(log_path, f"model-{n}").read_bytes() != reference:
            check.failed += 1
            check.notes.append(f"model-{n} differs from its solo run")
    assert check.failed == 0, check.notes


def is_root() -> bool:
    return os.geteuid() == 0


@contextlib.contextmanager
def mounted(target: Path, *options: str) -> Iterator[None]:
    target.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", *options, str(target)], check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(target)], check=False, capture_output=True)


@pytest.mark.skipif(
    not is_root(), reason="a small tmpfs needs root to mount (run as root, as CI does)"
)
def test_a_full_disk_stops_the_run_in_one_line_and_the_book_stays_valid(
    serve: Services, books: Path, reference: bytes, tmp_path: Path, table: Table
):
    check = table.check("full disk (a 2 MB tmpfs)")
    disk = books / "disk"
    with mounted(disk, "-t", "tmpfs", "-o", "size=2m", "tmpfs"):
        config = write_config(tmp_path, disk / "agent_data")
        filler = disk / "filler"
        # Leave room for the opening row and a few days, not for the whole run.
        with contextlib.suppress(OSError), filler.open("wb") as handle:
            handle.write(b"\0" * (2 * 1024 * 1024 - 160 * 1024))
        full = run_cli("run", str(config), env=serve.env, timeout=300)
        check.tried += 1
        line = only_error_line(full.stderr)
        if full.returncode != 1 or line is None or "No space left on device" not in line:
            check.failed += 1
            check.notes.append(f"exit {full.returncode}: {full.stderr.strip()[-300:]}")
        if book(disk / "agent_data").exists() and not valid_book(book(disk / "agent_data")):
            check.failed += 1
            check.notes.append("the book is not valid on the full disk")
        filler.unlink()
        clean = run_cli("run", str(config), env=serve.env, timeout=300)
        if clean.returncode != 0 or book(disk / "agent_data").read_bytes() != reference:
            check.failed += 1
            check.notes.append("the run after freeing space differs from the reference")
        leftovers = list((disk / "agent_data").rglob(".*.tmp"))
        if leftovers:
            check.failed += 1
            check.notes.append(f"temporary files left: {leftovers}")
    if check.failed == 0:
        check.notes.append("one line, exit 1; the book valid; the rerun equals the reference")
    assert check.failed == 0, check.notes


def test_a_read_only_data_folder_is_one_line_and_nothing_changes(
    serve: Services, books: Path, reference: bytes, tmp_path: Path, table: Table
):
    check = table.check("read-only data folder")
    log_path = books / "agent_data"
    config = write_config(tmp_path, log_path)
    first = run_cli("run", str(config), env={**serve.env, "END_DATE": "2025-10-15"}, timeout=300)
    assert first.returncode == 0, first.stderr
    before = {p: p.read_bytes() for p in log_path.rglob("*") if p.is_file()}
    if is_root():
        # Root writes through permissions, so make the folder read-only for real.
        guard = mounted(books, "--bind", "-o", "ro", str(books))
        how = "read-only bind mount"
    else:
        guard = contextlib.nullcontext()
        for folder in [log_path, *[p for p in log_path.rglob("*") if p.is_dir()]]:
            folder.chmod(0o555)
        how = "folders without write permission"
    with guard:
        result = run_cli("run", str(config), env=serve.env, timeout=300)
    if not is_root():
        for folder in [log_path, *[p for p in log_path.rglob("*") if p.is_dir()]]:
            folder.chmod(0o755)
    check.tried += 1
    line = only_error_line(result.stderr) or ""
    after = {p: p.read_bytes() for p in log_path.rglob("*") if p.is_file()}
    ok = result.returncode == 2 and ("Read-only" in line or "Permission denied" in line)
    if not ok or after != before:
        check.failed += 1
        check.notes.append(f"exit {result.returncode}: {result.stderr.strip()[-300:]}")
    else:
        check.notes.append(f"{how}: one line, exit 2, no file changed")
    assert ok, result.stderr
    assert after == before


def test_serve_without_merged_jsonl_makes_the_run_fail_and_commit_no_day(
    data_dir: Path, tmp_path: Path, table: Table
):
    check = table.check("serve has no merged.jsonl")
    empty = tmp_path / "empty"
    empty.mkdir()
    books = books_dir(data_dir) / tmp_path.name  # where this run's DATA_DIR keeps books
    config = write_config(tmp_path, books)
    with own_serve(empty) as (_, ports):
        env = with_ports(service_env(data_dir), ports)
        result = run_cli("run", str(config), env=env, timeout=300)
    check.tried += 1
    line = only_error_line(result.stderr) or ""
    rows = book(books).read_text().splitlines()
    ok = result.returncode == 1 and "cannot price this day" in line and len(rows) == 1
    if not ok:
        check.failed += 1
        check.notes.append(f"exit {result.returncode}, {len(rows)} rows: {line}")
    else:
        check.notes.append("one line, exit 1, only the opening row")
    assert ok, result.stderr


def test_a_corrupt_daily_file_loses_no_symbol_and_fetch_repairs_it(
    data_dir: Path, tmp_path: Path, table: Table
):
    check = table.check("corrupt daily file")
    data = tmp_path / "data"
    shutil.copytree(data_dir, data)
    before = sorted((data / "merged.jsonl").read_text().splitlines())
    good = (data / "daily_prices_NVDA.json").read_bytes()
    (data / "daily_prices_NVDA.json").write_bytes(good[: len(good) // 2])
    env = cli_env({"DATA_DIR": str(data)})
    merged = run_cli("merge", env=env, timeout=120)
    check.tried += 1
    kept = sorted((data / "merged.jsonl").read_text().splitlines()) == before
    merge_line = only_error_line(merged.stderr, "merge") or ""
    fetched = run_cli("fetch", env=env, timeout=120)
    repaired = (data / "daily_prices_NVDA.json").read_bytes() == good
    ok = merged.returncode == 1 and "daily_prices_NVDA.json" in merge_line and kept
    ok = ok and fetched.returncode == 0 and repaired
    if not ok:
        check.failed += 1
        check.notes.append(f"merge exit {merged.returncode}, kept {kept}, repaired {repaired}")
    else:
        check.notes.append("merge kept all 102 symbols and failed in one line; fetch rewrote it")
    assert ok, merged.stderr + fetched.stderr
