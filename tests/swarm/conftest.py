"""Fixtures for the Swarm suite (`nox -s swarm`): a single-node swarm on this engine, a stack
of deploy/swarm/stack.yml per test, and the image the `build` session made.

The swarm is made here when the engine is in none, and left at the end; a swarm that was
there before is used and kept. Each stack has a name of its own and is removed, its task
containers and its network with it, even when the test fails. Swarm has no stack API in the
engine (stacks are the CLI's), so the suite drives the `docker` CLI, as a user does.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK_FILE = ROOT / "deploy" / "swarm" / "stack.yml"
IMAGE = f"{os.environ.get('AI_TRADER_IMAGE', 'ai-trader')}:{os.environ.get('AI_TRADER_TAG', 'dev')}"
# Only keeps a broken sweep from hanging the suite: no measure of speed.
GUARD_SECONDS = 900.0
# What the entrypoint needs to hand a root-owned folder over and drop to its user.
ROOT_START = ["--user", "0:0", "--cap-drop", "ALL", "--cap-add", "CHOWN", "--cap-add", "SETUID",
              "--cap-add", "SETGID"]  # fmt: skip


def docker(
    *args: str, env: Mapping[str, str] | None = None, check: bool = True, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["docker", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        pytest.fail(f"docker {' '.join(args)} exited {done.returncode}:\n{done.stderr}", False)
    return done


@pytest.fixture(scope="session")
def swarm() -> Iterator[None]:
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").stdout.strip()
    made = state == "inactive"
    bridges = docker("network", "ls", "-q", "--filter", "name=^docker_gwbridge$").stdout.split()
    if made:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    elif state != "active":
        pytest.fail(f"the engine's swarm is {state!r}: neither none nor an active one", False)
    try:
        yield
    finally:
        if made:
            docker("swarm", "leave", "--force", check=False)
            if not bridges:  # the bridge the swarm made, which leaving keeps
                docker("network", "rm", "docker_gwbridge", check=False)


class Stack:
    """One deployment of deploy/swarm/stack.yml under a name of its own."""

    def __init__(self, name: str) -> None:
        self.name = name

    def deploy(self, data: Path, config: str, tasks: int) -> None:
        env = {
            "AI_TRADER_DATA_DIR": str(data),
            "AI_TRADER_CONFIG": config,
            "AI_TRADER_SWEEP_TASKS": str(tasks),
        }
        docker("stack", "deploy", "--resolve-image", "never", "-c", str(STACK_FILE), self.name,
               env=env)  # fmt: skip

    def states(self, service: str) -> list[str]:
        listing = docker("service", "ps", f"{self.name}_{service}", "--format", "{{json .}}")
        return [json.loads(line)["CurrentState"].split()[0] for line in listing.stdout.splitlines()]

    def logs(self, service: str) -> str:
        """What the service's tasks wrote, stdout and stderr."""
        done = docker("service", "logs", "--raw", f"{self.name}_{service}")
        return done.stdout + done.stderr

    def wait_job(self, service: str, tasks: int) -> None:
        """Until the job's ``tasks`` tasks are Complete; a Failed task fails at once."""
        deadline = time.monotonic() + GUARD_SECONDS
        while (states := self.states(service)).count("Complete") < tasks:
            assert "Failed" not in states, f"{states}\n{self.logs(service)}"
            assert time.monotonic() < deadline, f"{states}\n{self.logs(service)}"
            time.sleep(0.5)

    def remove(self) -> None:
        """The stack, then its task containers (a job's stay after `stack rm`), then wait
        until its network is gone, so that a swarm the suite made can be left cleanly."""
        docker("stack", "rm", self.name, check=False)
        label = f"label=com.docker.stack.namespace={self.name}"
        deadline = time.monotonic() + GUARD_SECONDS
        while True:
            boxes = docker("ps", "-aq", "--filter", label).stdout.split()
            if boxes:
                docker("rm", "--force", *boxes, check=False)
            networks = docker("network", "ls", "-q", "--filter", label).stdout.split()
            if not boxes and not networks:
                return
            assert time.monotonic() < deadline, f"stack {self.name} left {boxes} {networks}"
            time.sleep(0.5)


@pytest.fixture
def stack(swarm: None) -> Iterator[Stack]:
    made = Stack(f"aitrader-sw-{uuid.uuid4().hex[:8]}")
    try:
        yield made
    finally:
        made.remove()


def run_image(*args: str, data: Path, env: Mapping[str, str] | None = None) -> tuple[int, str]:
    """`docker run --rm` of the image on ``data`` as compose starts it (root, to drop)."""
    environment = [a for k, v in (env or {}).items() for a in ("--env", f"{k}={v}")]
    done = docker("run", "--rm", *ROOT_START, *environment, "--volume", f"{data}:/app/data",
                  IMAGE, *args, check=False, timeout=GUARD_SECONDS)  # fmt: skip
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def prepared(tmp_path: Path) -> Callable[[str], Path]:
    """Make a data folder with the price data in it (`entrypoint.sh prepare`)."""

    def make(name: str) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        code, out = run_image("prepare", data=folder)
        assert code == 0, out
        return folder

    return make
