"""Fixtures for the fault suite (`nox -s faults`): the offline data, a live `serve`, an
uninterrupted reference run, and the table of what was tried.

Everything runs on the host as real `ai-trader` processes; faults are real too (SIGKILL,
a full tmpfs, a read-only mount). Each test records what it tried and what failed in the
table printed at the end, so the figures are facts, not timings.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from ai_trader.layout import BookPaths
from unit.support import Services, cli_env, run_cli, running_services, service_env

CONFIG = Path(__file__).resolve().parents[2] / "configs" / "default_config.json"
SIGNATURE = "builtin-momentum"


@dataclass
class Check:
    name: str
    tried: int = 0
    failed: int = 0
    notes: list[str] = field(default_factory=list)
    # Outcomes counted over every batch of a check, "N of TRIED <what>" in the table.
    counts: dict[str, int] = field(default_factory=dict)
    rows_at_kill: list[int] = field(default_factory=list)

    def count(self, what: str, hit: bool = True) -> None:
        self.counts[what] = self.counts.get(what, 0) + int(hit)

    def merge(self, other: dict[str, Any]) -> None:
        """Add a worker's record of the same check (pytest-xdist runs batches apart)."""
        self.tried += other["tried"]
        self.failed += other["failed"]
        self.notes.extend(note for note in other["notes"] if note not in self.notes)
        for what, n in other["counts"].items():
            self.counts[what] = self.counts.get(what, 0) + n
        self.rows_at_kill.extend(other["rows_at_kill"])

    def detail(self) -> str:
        said = [*self.notes, *(f"{n} of {self.tried} {what}" for what, n in self.counts.items())]
        if self.rows_at_kill:
            said.append(f"book lines at the kills: {sorted(self.rows_at_kill)}")
        return "; ".join(said)


class Table:
    """What each check tried and how often it failed, printed after the run."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}

    def check(self, name: str) -> Check:
        return self.checks.setdefault(name, Check(name))


TABLE = Table()


@pytest.fixture(scope="session")
def table() -> Table:
    return TABLE


def pytest_sessionfinish(session: pytest.Session) -> None:
    # Under pytest-xdist each worker fills a table of its own: hand it to the controller.
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["faults"] = json.dumps([check.__dict__ for check in TABLE.checks.values()])


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """(pytest-xdist, in the controller) merge a finished worker's table into this one."""
    for row in json.loads(getattr(node, "workeroutput", {}).get("faults", "[]")):
        TABLE.check(row["name"]).merge(row)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if not TABLE.checks:
        return
    write = terminalreporter.write_line
    terminalreporter.section("faults: what was tried")
    width = max(len(name) for name in TABLE.checks)
    write(f"{'check':<{width}}  {'tried':>5}  {'failed':>6}  detail")
    for check in TABLE.checks.values():
        write(f"{check.name:<{width}}  {check.tried:>5}  {check.failed:>6}  {check.detail()}")


def pytest_configure(config: pytest.Config) -> None:
    # One seed for the whole run, chosen before pytest-xdist starts its workers (they
    # inherit the environment), so that FAULTS_SEED alone reproduces every moment.
    if not hasattr(config, "workerinput"):
        os.environ.setdefault("FAULTS_SEED", str(random.SystemRandom().randrange(2**32)))


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Random kill moments, reproducible with FAULTS_SEED: each test draws its own from the
    seed and its id, whichever worker runs it and whatever ran before."""
    seed = os.environ["FAULTS_SEED"]  # set by pytest_configure when not given
    said = TABLE.check("seed").notes
    if f"FAULTS_SEED={seed}" not in said:
        said.append(f"FAULTS_SEED={seed}")
    # A string seed is hashed (SHA-512), the same in every process.
    return random.Random(f"{seed}:{request.node.nodeid}")  # noqa: S311 (not secrets)


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("data")
    env = cli_env({"DATA_DIR": str(data)})
    for step in ("fetch", "merge"):
        done = run_cli(step, env=env)
        assert done.returncode == 0, done.stderr
    return data


@pytest.fixture(scope="session")
def serve(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Services]:
    root = tmp_path_factory.mktemp("serve")
    with running_services(service_env(data_dir), root / "serve.log") as running:
        yield running


def write_config(
    folder: Path, log_path: Path, signatures: list[str] | None = None, **models: Any
) -> Path:
    """The default config with its books under ``log_path`` (and other signatures if given)."""
    config = json.loads(CONFIG.read_text(encoding="utf-8"))
    config["log_config"] = {"log_path": str(log_path)}
    if signatures is not None:
        template = config["models"][0]
        config["models"] = [{**template, "name": s, "signature": s, **models} for s in signatures]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def book(log_path: Path, signature: str = SIGNATURE) -> Path:
    return BookPaths(log_path / signature).position_file


def start(args: list[str], env: dict[str, str], **options: Any) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "ai_trader", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **options,
    )


@pytest.fixture(scope="session")
def reference(serve: Services, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The default run's book, uninterrupted: what every disturbed run must end up with."""
    folder = tmp_path_factory.mktemp("reference")
    books = serve.new_books()
    config = write_config(folder, books)
    done = run_cli("run", str(config), env=serve.env, timeout=300)
    assert done.returncode == 0, done.stderr
    return book(books).read_bytes()


# --- an hourly market: the SSE-50 hourly sample and its own serve ----------------------------

HOURLY_CONFIG = CONFIG.with_name("cn_hourly_config.json")
HOURLY_SIGNATURE = "builtin-momentum-cn-hourly"


@pytest.fixture(scope="session")
def hourly_serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    """`serve --market cn-hourly` over the SSE-50 hourly sample, fetched and merged by the CLI."""
    data = tmp_path_factory.mktemp("data-cn-hourly")
    env = cli_env({"DATA_DIR": str(data)})
    for step in ("fetch", "merge"):
        done = run_cli(step, "--market", "cn-hourly", env=env)
        assert done.returncode == 0, done.stderr
    log = tmp_path_factory.mktemp("serve-cn-hourly") / "serve.log"
    with running_services(service_env(data), log, market="cn-hourly") as running:
        yield running


def write_hourly_config(folder: Path, log_path: Path) -> Path:
    """The cn hourly example config with its books under ``log_path``."""
    config = json.loads(HOURLY_CONFIG.read_text(encoding="utf-8"))
    config["log_config"] = {"log_path": str(log_path)}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def hourly_reference(hourly_serve: Services, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The hourly run's book, uninterrupted."""
    books = hourly_serve.new_books()
    config = write_hourly_config(tmp_path_factory.mktemp("hourly-reference"), books)
    done = run_cli("run", str(config), env=hourly_serve.env, timeout=300)
    assert done.returncode == 0, done.stderr
    return book(books, HOURLY_SIGNATURE).read_bytes()


@pytest.fixture
def books(serve: Services) -> Path:
    """A new folder of books inside the services' data folder, where a run keeps them."""
    return serve.new_books()


def only_error_line(stderr: str, command: str = "run") -> str | None:
    """The one `ai-trader CMD: error:` line, or None when there is not exactly one (or a
    traceback came with it)."""
    if "Traceback" in stderr:
        return None
    errors = [
        line for line in stderr.splitlines() if line.startswith(f"ai-trader {command}: error:")
    ]
    return errors[0] if len(errors) == 1 else None


def valid_book(path: Path) -> bool:
    """Every line of the book parses and the ids count up from 0 without a gap."""
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    except (OSError, ValueError):
        return False
    return [row.get("id") for row in rows] == list(range(len(rows)))
