"""Fixtures for the container suite: the real image, the real compose, the real engine.

pytest-docker owns the compose project's life: a unique project name per run,
and `down` in its teardown, which runs even when bringing the stand-ins up
fails (they are started inside its try/finally, not by its setup hook) and when
the run is interrupted (Ctrl-C, or SIGTERM turned into KeyboardInterrupt).
Each test gets its own data and logs folders and drives the `ai-trader`
service through the `stack` fixture. Compose starts and stops things, as a user
does; what the engine knows (state, exit codes, health, logs, ports) is asked
through the Docker SDK (`engine.py`).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import engine
import pytest
from docker.models.containers import Container

from ai_trader.layout import BookPaths, books_dir
from ai_trader.settings import DASHBOARD_PUBLISH_VARIABLE, DEFAULT_PORTS, PUBLISH_VARIABLES
from harness.compose import CONTROLLED as CONTROLLED  # test_secrets.py reads it from here
from harness.compose import Compose, compose_command

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = [ROOT / "docker-compose.yml", ROOT / "tests" / "integration" / "compose.test.yml"]
# The same health checks, run every second: laid over by the health tests (COMPOSE_OVER)
# and by the dashboard stop test, which only need the checks to answer sooner.
QUICK_HEALTH_FILE = ROOT / "tests" / "compose.quick-health.yml"
SERVICE = "ai-trader"
DASHBOARD = "dashboard"
# The container ports of the four services: the product's own table.
SERVICE_PORTS = DEFAULT_PORTS
CONTAINER_UID = 1000
IMAGE = f"{os.environ.get('AI_TRADER_IMAGE', 'ai-trader')}:{os.environ.get('AI_TRADER_TAG', 'dev')}"


def pytest_configure(config: pytest.Config) -> None:
    # nox ends a run with SIGTERM after its interrupt timeout; make that a
    # KeyboardInterrupt so pytest still tears the stack down.
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


# --- pytest-docker ----------------------------------------------------------------


@pytest.fixture(scope="session")
def empty_env_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


@pytest.fixture(scope="session")
def docker_compose_command(empty_env_file: Path) -> str:
    # An empty env file: the repository's .env (a developer's keys) must not apply.
    return shlex.join([*compose_command(), "--env-file", str(empty_env_file)])


@pytest.fixture(scope="session")
def docker_compose_file() -> list[str]:
    return [str(path) for path in COMPOSE_FILES]


@pytest.fixture(scope="session")
def docker_compose_project_name() -> str:
    # Unique per run, so parallel runs and leftovers never collide; the override is
    # for the test that interrupts a nested run and looks for leftovers by name.
    return os.environ.get("AI_TRADER_IT_PROJECT") or f"aitrader-it-{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def docker_setup() -> list[str]:
    return []  # started by the `standins` fixture, inside pytest-docker's try/finally


@pytest.fixture(scope="session")
def docker_cleanup() -> list[str]:
    return ["down --volumes --remove-orphans --timeout 5"]


# --- compose, driven directly (tests/harness/compose.py) ----------------------------


@pytest.fixture(scope="session")
def compose(
    docker_compose_command: str, docker_compose_file: list[str], docker_compose_project_name: str
) -> Compose:
    return Compose(docker_compose_command, docker_compose_file, docker_compose_project_name)


class StandIns:
    """The host's view of the stand-in server: scenario in, request counts out."""

    def __init__(self, url: str) -> None:
        self.url = url

    def _call(self, path: str, body: Any = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}{path}", data=data, method="POST" if data else "GET"
        )
        request.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(request, timeout=10) as reply:
            return json.loads(reply.read() or b"null")

    def set_scenario(self, scenario: dict[str, Any]) -> None:
        self._call("/_control/scenario", scenario)

    def stats(self) -> dict[str, Any]:
        return self._call("/_control/stats")

    def release(self) -> None:
        """Answer every held request (and hold no more until the next scenario)."""
        self._call("/_control/release", {})


@pytest.fixture(scope="session")
def standins(docker_services: Any, compose: Compose) -> StandIns:
    try:
        compose(
            "up", "--detach", "--wait", "standins", env=default_env(ROOT / "data", ROOT / "logs")
        )
    except AssertionError:
        for box in engine.compose_containers(compose.project):
            print(f"--- logs of {box.name} ---\n{engine.logs_text(box)}")
        raise
    port = docker_services.port_for("standins", 9000)
    client = StandIns(f"http://127.0.0.1:{port}")
    docker_services.wait_until_responsive(check=lambda: _answers(client), timeout=30, pause=0.2)
    return client


def _answers(client: StandIns) -> bool:
    try:
        client.stats()
    except OSError:
        return False
    return True


def default_env(data: Path, logs: Path) -> dict[str, str]:
    return {
        "AI_TRADER_DATA_DIR": str(data),
        "AI_TRADER_LOGS_DIR": str(logs),
        # Empty host ports: compose publishes on free ephemeral ports.
        **dict.fromkeys(PUBLISH_VARIABLES, ""),
        # AI_TRADER_BIND is left unset on purpose: the tests check compose's own default.
        # AI_TRADER_UID/GID too: the run takes the owner of the data folder by itself.
    }


class Stack:
    """The `ai-trader` service of the session's project, with this test's folders."""

    def __init__(self, compose: Compose, standins: StandIns, root: Path) -> None:
        self.compose = compose
        self.standins = standins
        self.data = root / "data"
        self.logs = root / "logs"
        self.configs = root / "configs"
        for folder in (self.data, self.logs, self.configs):
            folder.mkdir(parents=True)  # ours: the run drops to our uid, or 1000 for root
        self.env = default_env(self.data, self.logs)

    def run_env(self, extra: dict[str, str]) -> dict[str, str]:
        return {**self.env, **extra}

    # lifecycle

    def up(self, **extra: str) -> None:
        self.compose("up", "--detach", "--no-deps", SERVICE, env=self.run_env(extra))

    def run(
        self, *args: str, volumes: tuple[str, ...] = (), **extra: str
    ) -> subprocess.CompletedProcess[str]:
        mounts = [a for v in volumes for a in ("--volume", v)]
        return self.compose(
            "run",
            "--rm",
            "--no-deps",
            *mounts,
            SERVICE,
            *args,
            env=self.run_env(extra),
            check=False,
        )

    def stop(self) -> float:
        """`docker compose stop ai-trader` as a user types it: the compose file's own
        stop_grace_period decides when SIGTERM turns into SIGKILL. Returns the seconds."""
        started = time.monotonic()
        self.compose("stop", SERVICE, env=self.env)
        return time.monotonic() - started

    def restart(self) -> None:
        self.compose("restart", SERVICE, env=self.env)

    def down(self) -> None:
        self.compose("rm", "--stop", "--force", SERVICE, env=self.env)

    # observation

    def find(self, service: str = SERVICE) -> Container | None:
        """The service's container in this project, if compose has made one."""
        found = engine.compose_containers(self.compose.project, service)
        assert len(found) <= 1, [c.name for c in found]
        return found[0] if found else None

    def container(self, service: str = SERVICE) -> Container:
        found = self.find(service)
        assert found is not None, f"compose has no {service} container in {self.compose.project}"
        return found

    def container_id(self) -> str:
        found = self.find()
        return found.id if found is not None else ""

    def inspect(self) -> dict[str, Any]:
        box = self.container()
        box.reload()
        return box.attrs

    def wait_exit(self, timeout: float = 240) -> int:
        try:
            return engine.wait_exit(self.container(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"the container did not exit within {timeout} s:\n{self.logs_text()}"
            ) from None

    def wait_for_log(self, text: str, timeout: float = 120) -> None:
        box = self.container()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in engine.logs_text(box):
                return
            if engine.state(box)["Status"] == "exited":
                break
            time.sleep(0.2)
        raise AssertionError(f"{text!r} never appeared in the logs:\n{self.logs_text()}")

    def wait_until(self, ready: Callable[[], bool], guard: float = 180) -> None:
        """Wait for ``ready``; a container that exits first fails at once (``guard`` only
        keeps a broken run from hanging the suite: it is no measure of speed)."""
        deadline = time.monotonic() + guard
        while not ready():
            assert engine.state(self.container())["Status"] != "exited", self.logs_text()
            assert time.monotonic() < deadline, self.logs_text()
            time.sleep(0.2)

    def logs_text(self) -> str:
        found = self.find()
        return engine.logs_text(found) if found is not None else ""

    def host_port(self, container_port: int) -> tuple[str, int]:
        return engine.published(self.container(), container_port)

    def mount_config(self, name: str, config: dict[str, Any]) -> str:
        """A config in a host folder of its own; returns the --volume spec to mount it."""
        path = self.configs / name
        path.write_text(json.dumps(config, indent=2))
        path.chmod(0o644)
        return f"{path}:/app/configs/{name}:ro"

    def data_config(self, name: str, config: dict[str, Any]) -> str:
        """A config kept in the mounted data folder; returns its path in the container."""
        (self.data / name).write_text(json.dumps(config, indent=2))
        return f"/app/data/{name}"

    # the data folder

    def positions(self, signature: str = "builtin-momentum") -> list[dict[str, Any]]:
        path = BookPaths(books_dir(self.data) / signature).position_file
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="session")
def new_stack(
    compose: Compose, standins: StandIns, tmp_path_factory: pytest.TempPathFactory
) -> Any:
    """Make a Stack with fresh folders (for fixtures wider than one test), optionally with
    one more compose file laid over the suite's."""

    def make(over: Path | None = None) -> Stack:
        standins.set_scenario({})
        files = compose.with_file(over) if over is not None else compose
        return Stack(files, standins, tmp_path_factory.mktemp("stack"))

    return make


def _report(stack: Stack, node: pytest.Item) -> None:
    failed = getattr(node, "report_call", None)
    if failed is not None and failed.failed:
        print(f"--- logs of {SERVICE} ---\n{stack.logs_text()}")
        standins = stack.find("standins")
        if standins is not None:
            print(f"--- logs of standins ---\n{engine.logs_text(standins)[-4000:]}")


@pytest.fixture
def stack(new_stack: Any, request: pytest.FixtureRequest) -> Iterator[Stack]:
    # A test module may lay one more compose file over the suite's (`COMPOSE_OVER`).
    current = new_stack(getattr(request.module, "COMPOSE_OVER", None))
    yield current
    _report(current, request.node)
    current.down()


class Dashboard:
    """The dashboard service of the test's stack, published on an ephemeral host port."""

    def __init__(self, stack: Stack, **extra: str) -> None:
        self.stack = stack
        # An empty host port: an ephemeral one, so nothing on 8888 collides.
        self.env = {**stack.env, DASHBOARD_PUBLISH_VARIABLE: "", **extra}

    def up(self, timeout: float = 60) -> str:
        self.stack.compose("up", "--detach", "--no-deps", DASHBOARD, env=self.env)
        _, port = engine.published(self.stack.container(DASHBOARD), 8888)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as reply:
                    if reply.status == 200:
                        return url
            except OSError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"the dashboard did not answer at {url}/health:\n{self.logs()}")

    def container(self) -> Container:
        return self.stack.container(DASHBOARD)

    def logs(self) -> str:
        found = self.stack.find(DASHBOARD)
        return engine.logs_text(found) if found is not None else ""

    def inspect(self) -> dict[str, Any]:
        box = self.container()
        box.reload()
        return box.attrs

    def remove(self) -> None:
        self.stack.compose("rm", "--stop", "--force", DASHBOARD, env=self.env, check=False)


@pytest.fixture
def dashboard(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Callable[..., Dashboard]]:
    made: list[Dashboard] = []

    def make(**extra: str) -> Dashboard:
        made.append(Dashboard(stack, **extra))
        return made[-1]

    yield make
    for board in made:
        failed = getattr(request.node, "report_call", None)
        if failed is not None and failed.failed:
            print(f"--- logs of {DASHBOARD} ---\n{board.logs()}")
        board.remove()


def short_config(end_date: str = "2025-10-08", **overrides: Any) -> dict[str, Any]:
    """The default config, shortened to a few trading days of the offline sample."""
    config = json.loads((ROOT / "configs" / "default_config.json").read_text())
    config["date_range"]["end_date"] = end_date
    config.update(overrides)
    return config


@pytest.fixture
def make_config() -> Any:
    return short_config


# --- a run held at a known point: the stand-in model keeps one request unanswered ---------

SLOW_MODEL = {"name": "slow", "basemodel": "gpt-stand-in", "signature": "slow", "enabled": True}
BUY = {"tool_calls": [{"name": "buy", "arguments": {"symbol": "AAPL", "amount": 1}}]}
# Each day: buy, buy, finish. Three model requests a day, so a day that was cut short
# shows up as a day with one buy.
TWO_BUYS = [BUY, BUY, {"content": "done <FINISH_SIGNAL>"}]
REQUESTS_A_DAY = len(TWO_BUYS)
# The request that asks the model for the third day's second buy, its first placed: the
# stand-in holds it, unanswered, so the run stays between the two buys until it is stopped.
HELD_REQUEST = 2 * REQUESTS_A_DAY + 2


def slow_config() -> dict[str, Any]:
    """The stand-in model (SLOW_MODEL) over the sample's October, with cash for two buys on
    every day of the range."""
    return short_config(
        end_date="2025-10-31",
        models=[SLOW_MODEL],
        agent_config={"max_steps": 5, "max_retries": 0, "base_delay": 0, "initial_cash": 1e6},
    )


def buys_by_day(rows: list[dict]) -> dict[str, int]:
    days: dict[str, int] = {}
    for row in rows:
        if row.get("this_action", {}).get("action") == "buy":
            days[row["date"]] = days.get(row["date"], 0) + 1
    return days
