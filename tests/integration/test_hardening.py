"""Compose's hardening, each setting seen where it acts: in the engine's configuration and
in the kernel's view of the running containers.

- no-new-privileges: no process can gain privileges (setuid binaries, file capabilities);
- cap_drop ALL, adding back only what the root start and Docker's init need: root in the
  container holds nothing else, and the run holds no capability at all;
- a read-only root filesystem with a small tmpfs /tmp: the run writes only its folders;
- pids_limit: a runaway process count stops at the limit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import engine
import pytest
from conftest import QUICK_HEALTH_FILE, Compose, Stack, default_env
from docker.models.containers import Container
from engine import capability_mask, describe, processes, run_tree

# Its module-scoped fixtures are built once: keep its tests on one worker.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("test_hardening")]

DASHBOARD = "dashboard"
# A run that stays busy for the whole module: the shipped example config's OpenAI entry,
# with each model answer 30 s away (23 days of them; within the agent's 120 s timeout).
BUSY = {"AI_TRADER_CONFIG": "configs/example_llm_config.json", "OPENAI_API_KEY": "sk-stand-in"}
SLOW_ANSWERS = {"openai": {"delay": 30}}
# What each service may hold: the run hands folders over (CHOWN), both drop (SETUID,
# SETGID), and Docker's init, which stays root, passes signals on to them (KILL).
EXPECTED_CAPS = {
    "ai-trader": {"CHOWN", "SETUID", "SETGID", "KILL"},
    DASHBOARD: {"SETUID", "SETGID", "KILL"},
}
EXPECTED_PIDS_LIMIT = {"ai-trader": 256, DASHBOARD: 128}
# The stack's folders are the suite's: the run takes their owner, or 1000 when that is root.
RUN_UID = 1000 if os.geteuid() == 0 else os.getuid()


class Running:
    """The busy run and the dashboard of one compose project, both up."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack

    def container(self, service: str) -> Container:
        return self.stack.container(service)

    def inspect(self, service: str) -> dict[str, Any]:
        box = self.container(service)
        box.reload()
        return box.attrs

    def exec(self, service: str, *command: str, user: str) -> engine.Executed:
        return engine.execute(self.container(service), list(command), user=user)


@pytest.fixture(scope="module")
def running(new_stack) -> Iterator[Running]:
    stack = new_stack()
    stack.standins.set_scenario(SLOW_ANSWERS)
    stack.up(**BUSY)
    try:
        stack.compose("up", "--detach", "--no-deps", DASHBOARD, env=stack.env)
        stack.wait_for_log("step 4/4")
        yield Running(stack)
    finally:
        stack.compose("rm", "--stop", "--force", DASHBOARD, env=stack.env, check=False)
        stack.down()


SERVICES = pytest.mark.parametrize("service", ["ai-trader", DASHBOARD])


# --- no-new-privileges --------------------------------------------------------------------------


@SERVICES
def test_no_process_can_gain_privileges(running: Running, service: str) -> None:
    assert "no-new-privileges:true" in running.inspect(service)["HostConfig"]["SecurityOpt"]
    found = processes(running.container(service))
    init, run = run_tree(found)
    assert run, describe(found)
    assert all(p.no_new_privs for p in [init, *run]), describe(found)


# --- capabilities -----------------------------------------------------------------------------


@SERVICES
def test_every_capability_is_dropped_but_those_the_drop_uses(
    running: Running, service: str
) -> None:
    host = running.inspect(service)["HostConfig"]
    assert host["CapDrop"] == ["ALL"]
    assert {cap.removeprefix("CAP_") for cap in host["CapAdd"]} == EXPECTED_CAPS[service]
    found = processes(running.container(service))
    init, run = run_tree(found)
    # The kernel's bounding set: nothing else can ever be held in this container.
    assert init.cap_bnd == capability_mask(*EXPECTED_CAPS[service]), describe(found)
    assert all(p.cap_eff == p.cap_prm == 0 for p in run), describe(found)


def test_docker_stop_reaches_the_dropped_dashboard_through_dockers_init(
    docker_compose_command: str, docker_compose_file: list[str], compose: Compose, tmp_path: Path
) -> None:
    # Docker's init is root and the dashboard is not: without KILL the init could not pass
    # the SIGTERM on, and would die with an error instead. (The run's own stop, with its
    # cleanup and status 143, is test_cleanup.py's.) A project of its own, so that the
    # module's running dashboard stays up; its health checked every second, so that
    # `--wait` does not sit out the first 10 s interval.
    files = [*docker_compose_file, str(QUICK_HEALTH_FILE)]
    own = Compose(docker_compose_command, files, f"{compose.project}-stop")
    env = default_env(tmp_path / "data", tmp_path / "logs")
    (tmp_path / "data").mkdir()
    try:
        own("up", "--detach", "--no-deps", "--wait", DASHBOARD, env=env)
        own("stop", DASHBOARD, env=env)
        cid = own("ps", "--all", "--quiet", DASHBOARD, env=env).stdout.strip()
        state = engine.state(engine.container(cid))
        logs = own("logs", DASHBOARD, env=env, check=False).stdout
        assert state["ExitCode"] == 0, logs
        assert "dashboard: stopped" in logs
        assert "tini" not in logs
    finally:
        own("down", "--volumes", "--remove-orphans", "--timeout", "5", env=env, check=False)


def test_root_in_the_container_cannot_override_file_permissions(running: Running) -> None:
    made = running.exec(
        "ai-trader", "sh", "-c", "umask 077 && echo secret > /tmp/private", user=str(RUN_UID)
    )
    assert made.returncode == 0, made.stderr
    # Without DAC_OVERRIDE and FOWNER, root can neither read nor loosen another user's file.
    read = running.exec("ai-trader", "cat", "/tmp/private", user="0")
    assert read.returncode != 0
    assert "Permission denied" in read.stderr
    loosen = running.exec("ai-trader", "chmod", "644", "/tmp/private", user="0")
    assert loosen.returncode != 0
    assert "Operation not permitted" in loosen.stderr


# --- read-only root filesystem -------------------------------------------------------------------


@SERVICES
def test_the_root_filesystem_is_read_only_even_for_root(running: Running, service: str) -> None:
    assert running.inspect(service)["HostConfig"]["ReadonlyRootfs"] is True
    for user, path in ((str(RUN_UID), "/app/probe"), ("0", "/usr/local/probe")):
        done = running.exec(service, "touch", path, user=user)
        assert done.returncode != 0
        assert "Read-only file system" in done.stderr


@SERVICES
def test_tmp_is_a_small_writable_tmpfs_without_devices_setuid_or_exec(
    running: Running, service: str
) -> None:
    assert "/tmp" in running.inspect(service)["HostConfig"]["Tmpfs"]
    mounts = running.exec(service, "cat", "/proc/mounts", user=str(RUN_UID)).stdout
    tmp = next(line.split() for line in mounts.splitlines() if line.split()[1] == "/tmp")
    assert tmp[2] == "tmpfs"
    assert {"rw", "nosuid", "nodev", "noexec"} <= set(tmp[3].split(","))
    assert any(option.startswith("size=") for option in tmp[3].split(","))
    wrote = running.exec(service, "sh", "-c", "echo ok > /tmp/probe", user=str(RUN_UID))
    assert wrote.returncode == 0, wrote.stderr


# --- pids_limit -------------------------------------------------------------------------------

# Starts threads until the kernel refuses one; prints how many it had then.
SPAWN = """
import threading
stop, started = threading.Event(), 0
try:
    while started < 10_000:
        threading.Thread(target=stop.wait, daemon=True).start()
        started += 1
except RuntimeError:
    pass
stop.set()
print(started)
"""


@SERVICES
def test_the_process_count_has_a_limit(running: Running, service: str) -> None:
    limit = EXPECTED_PIDS_LIMIT[service]
    assert running.inspect(service)["HostConfig"]["PidsLimit"] == limit
    cgroup = running.exec(
        service,
        "sh", "-c", "cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max",
        user=str(RUN_UID),
    )  # fmt: skip
    assert cgroup.stdout.strip() == str(limit), cgroup.stderr


def test_a_runaway_process_count_stops_at_the_limit(running: Running) -> None:
    # In a container of its own (compose run), so that the busy run is not starved.
    done = running.stack.compose(
        "run", "--rm", "--no-deps", "ai-trader", "exec", "python", "-c", SPAWN,
        env=running.stack.env, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    started = int(done.stdout.strip().splitlines()[-1])
    # The limit, less the container's few other tasks (init, python's main thread), is what
    # stopped it: not memory, and not the 10,000 the loop allows.
    limit = EXPECTED_PIDS_LIMIT["ai-trader"]
    assert limit - 16 < started < limit, started
