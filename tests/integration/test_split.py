"""The split topology (compose.split.yml): one container per MCP service, the run apart.

One compose project for the module, its own stand-ins inside it. Each run gets fresh data
and logs folders; compose recreates trade and prices (which mount the data folder) when the
folder changes. A run is held at a known point the way test_cleanup.py holds one: the
stand-in model keeps a request unanswered, so whatever the test does to a service happens
between two of the run's calls, however long it takes.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import engine
import pytest
from conftest import (
    HELD_REQUEST,
    IMAGE,
    REQUESTS_A_DAY,
    ROOT,
    TWO_BUYS,
    StandIns,
    buys_by_day,
    default_env,
    short_config,
    slow_config,
)

from ai_trader.layout import BookPaths, books_dir
from ai_trader.settings import SERVICE_NAMES
from harness.compose import Compose, compose_command

pytestmark = [pytest.mark.container, pytest.mark.xdist_group("split")]

FILES = [ROOT / "compose.split.yml", ROOT / "tests" / "integration" / "compose.split-test.yml"]
AGENT = "agent"
DATA_SERVICES = {"trade", "prices"}  # the services that mount the data folder


class Split:
    """The split project, a run at a time, each in folders of its own."""

    def __init__(self, compose: Compose, root: Path) -> None:
        self.compose = compose
        self.root = root
        self._standins: StandIns | None = None

    def standins(self, env: dict[str, str]) -> StandIns:
        """The project's stand-ins, up and answering (started on first use), so that a
        scenario is in place before a run starts."""
        if self._standins is None:
            self.compose("up", "--detach", "--wait", "standins", env=env)
            _, port = engine.published(self.container("standins"), 9000)
            self._standins = StandIns(f"http://127.0.0.1:{port}")
        return self._standins

    def folders(self, name: str) -> dict[str, str]:
        """The environment of a run whose data and logs are fresh folders called ``name``."""
        data, logs = self.root / name / "data", self.root / name / "logs"
        data.mkdir(parents=True)
        logs.mkdir(parents=True)
        return default_env(data, logs)

    def start(self, env: dict[str, str], *options: str) -> None:
        """`up --detach agent`: compose brings the four services up healthy first."""
        self.compose("up", "--detach", *options, AGENT, env=env)

    def run(self, env: dict[str, str], *options: str) -> int:
        self.start(env, *options)
        return engine.wait_exit(self.container(AGENT), timeout=300)

    def containers(self, service: str) -> list[Any]:
        return engine.compose_containers(self.compose.project, service)

    def container(self, service: str) -> Any:
        found = self.containers(service)
        assert len(found) == 1, [c.name for c in found]
        return found[0]

    def logs(self, service: str = AGENT) -> str:
        return "".join(engine.logs_text(box) for box in self.containers(service))

    def wait_healthy(self, service: str) -> None:
        """Until the service's own health check passes (180 s only keeps a broken service from
        hanging the suite)."""
        deadline = time.monotonic() + 180
        while engine.health(box := self.container(service)) != "healthy":
            assert engine.state(box)["Status"] == "running", self.logs(service)
            assert time.monotonic() < deadline, self.logs(service)
            time.sleep(0.2)


@pytest.fixture(scope="module")
def split(empty_env_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Split]:
    project = f"aitrader-split-{uuid.uuid4().hex[:10]}"
    compose = Compose(compose_command(), FILES, project, env_file=empty_env_file)
    try:
        yield Split(compose, tmp_path_factory.mktemp("split"))
    finally:
        compose.down()


def book(env: dict[str, str], signature: str) -> bytes:
    data = Path(env["AI_TRADER_DATA_DIR"])
    return BookPaths(books_dir(data) / signature).position_file.read_bytes()


def slow_run(split: Split, env: dict[str, str], scenario: dict[str, Any]) -> dict[str, str]:
    """The env of a stand-in model run (two buys a day, conftest.slow_config) with its config
    in the data folder, the model's scenario set before anything starts."""
    (Path(env["AI_TRADER_DATA_DIR"]) / "slow.json").write_text(json.dumps(slow_config()))
    split.standins(env).set_scenario({"openai": scenario})
    return {**env, "AI_TRADER_CONFIG": "/app/data/slow.json", "OPENAI_API_KEY": "sk-x"}


def hold_between_two_buys(split: Split, name: str) -> dict[str, str]:
    """Start a slow run in folders called ``name`` and wait until the stand-in holds the
    third day's second buy; the run's env."""
    env = slow_run(split, split.folders(name), {"script": TWO_BUYS, "hold": HELD_REQUEST})
    split.start(env)
    deadline = time.monotonic() + 150  # the run's start and two days; a bound, not a pace
    while (stats := split.standins(env).stats()["openai"])["held"] == 0:
        assert time.monotonic() < deadline, f"never reached the held request: {stats}"
        time.sleep(0.05)
    assert stats["requests"] == HELD_REQUEST, stats
    return env


@pytest.fixture(scope="module")
def undisturbed(split: Split, new_stack: Any) -> dict[str, bytes]:
    """The books the disturbed runs must equal: the offline default in the single
    container, and the stand-in model run in the split project, each left alone."""
    single = new_stack()
    single.up()
    assert single.wait_exit() == 0, single.logs_text()
    default = BookPaths(books_dir(single.data) / "builtin-momentum").position_file.read_bytes()
    single.down()
    env = slow_run(split, split.folders("undisturbed"), {"script": TWO_BUYS})
    assert split.run(env) == 0, split.logs()
    return {"default": default, "slow": book(env, "slow")}


def test_the_split_project_runs_the_offline_default_to_the_single_containers_book(
    split: Split, undisturbed: dict[str, bytes]
) -> None:
    env = split.folders("default")
    assert split.run(env) == 0, split.logs()
    assert book(env, "builtin-momentum") == undisturbed["default"]
    assert "step 1/4: the MCP services run in their own containers" in split.logs()


def test_each_service_has_a_hardened_container_of_its_own_with_only_the_mounts_it_needs(
    split: Split, undisturbed: dict[str, bytes]
) -> None:
    for service in (*SERVICE_NAMES, AGENT):
        box = split.container(service)
        box.reload()
        host = box.attrs["HostConfig"]
        mounts = sorted(m["Destination"] for m in box.attrs["Mounts"])
        if service == AGENT:
            assert mounts == ["/app/data", "/app/logs"], mounts
        elif service in DATA_SERVICES:
            assert mounts == ["/app/data"], (service, mounts)
        else:
            assert mounts == [], (service, mounts)
            assert box.attrs["Config"]["User"] == "1000:1000", service
            assert not host["CapAdd"], (service, host["CapAdd"])
        assert host["ReadonlyRootfs"] is True, service
        assert host["CapDrop"] == ["ALL"], service
        assert "no-new-privileges:true" in host["SecurityOpt"], service
        for bindings in (host["PortBindings"] or {}).values():
            assert {b["HostIp"] for b in bindings} == {"127.0.0.1"}, (service, bindings)
        if service != AGENT:
            check = box.attrs["Config"]["Healthcheck"]["Test"]
            assert check[-2:] == ["--only", service], (service, check)
            assert engine.health(box) == "healthy", service


def test_a_trade_service_stopped_mid_run_fails_the_run_in_one_line_and_the_next_run_resumes(
    split: Split, undisturbed: dict[str, bytes]
) -> None:
    env = hold_between_two_buys(split, "stopped")
    split.compose("stop", "trade", env=env)
    split.standins(env).release()  # the model asks for the buy: the trade service is gone
    assert engine.wait_exit(split.container(AGENT), 120) == 1, split.logs()
    logs = split.logs()
    errors = [line for line in logs.splitlines() if "ai-trader run: error:" in line]
    assert len(errors) == 1, logs
    assert "the trade service" in errors[0], logs
    assert "Traceback" not in logs
    rows = [json.loads(line) for line in book(env, "slow").splitlines()]
    days = buys_by_day(rows)
    assert len(days) == (HELD_REQUEST - 1) // REQUESTS_A_DAY, days  # the day under way: none
    assert set(days.values()) == {2}, days
    split.standins(env).set_scenario({"openai": {"script": TWO_BUYS}})
    assert split.run(env) == 0, split.logs()  # `up` starts trade again, healthy first
    assert book(env, "slow") == undisturbed["slow"]


def test_a_trade_service_restarted_between_two_calls_is_invisible_to_the_run(
    split: Split, undisturbed: dict[str, bytes]
) -> None:
    env = hold_between_two_buys(split, "restarted")
    split.compose("restart", "trade", env=env)
    split.wait_healthy("trade")
    split.standins(env).release()
    assert engine.wait_exit(split.container(AGENT), 300) == 0, split.logs()
    assert book(env, "slow") == undisturbed["slow"]


def test_prices_scales_to_two_replicas_that_serve_one_run(
    split: Split, undisturbed: dict[str, bytes]
) -> None:
    env = split.folders("scaled")
    assert split.run(env, "--scale", "prices=2") == 0, split.logs()
    replicas = split.containers("prices")
    assert len(replicas) == 2
    assert {engine.health(box) for box in replicas} == {"healthy"}
    assert book(env, "builtin-momentum") == undisturbed["default"]


def test_an_unknown_services_mode_stops_the_run_in_one_line() -> None:
    code, out = engine.run_once(IMAGE, environment={"AI_TRADER_SERVICES": "elsewhere"})
    assert code == 2, out
    assert "error: AI_TRADER_SERVICES=elsewhere: give local" in out
    assert "step 1/4" not in out


def test_options_after_the_config_reach_the_run(split: Split) -> None:
    env = split.folders("one-of-two")
    config = short_config(
        models=[
            {"name": name, "basemodel": "builtin/momentum", "signature": name, "enabled": True}
            for name in ("first", "second")
        ]
    )
    (Path(env["AI_TRADER_DATA_DIR"]) / "two.json").write_text(json.dumps(config))
    done = split.compose(
        "run", "--rm", AGENT, "/app/data/two.json", "--model", "second", env=env, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(run options: --model second)" in done.stderr + done.stdout
    books = sorted(p.name for p in books_dir(Path(env["AI_TRADER_DATA_DIR"])).iterdir())
    assert books == ["second"]
