"""The Docker route for every user: the run belongs to the owner of ./data, never to root.

Compose starts the container as root only so that the entrypoint can hand the mounted
folders to their owner (uid 1000 when root owns them, as when Docker creates a missing
one) and drop to that user. The cases are the folders a root user makes, a uid-1000
user's, another user's (uid 1234) and no folders at all; a user's folders are made by
giving them to that uid (directly as root, else through a throwaway container).
A bad setting stops the run with one line and exit 2, and leaves ./data as it was.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

import engine
import pytest
from conftest import CONTAINER_UID, IMAGE, SERVICE, Stack
from engine import describe, processes, run_tree

# Its module-scoped fixtures are built once: keep its tests on one worker.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("test_users")]

SHORT = {"END_DATE": "2025-10-03"}
# A run kept busy by slow model answers (30 s each, within the agent's timeout), so that
# its processes can be listed: the shipped example config, whose OpenAI entry is enabled.
BUSY = {"AI_TRADER_CONFIG": "configs/example_llm_config.json", "OPENAI_API_KEY": "sk-stand-in"}
SLOW_ANSWERS = {"openai": {"delay": 30}}
# Who makes ./data and ./logs (None: nobody, Docker creates them as root), and who then
# owns what the run writes.
FOLDERS = {
    "made-by-root": ((0, 0), (CONTAINER_UID, CONTAINER_UID)),
    "made-by-uid-1000": ((1000, 1000), (1000, 1000)),
    "made-by-uid-1234": ((1234, 1234), (1234, 1234)),
    "absent": (None, (CONTAINER_UID, CONTAINER_UID)),
}

Snapshot = dict[str, tuple[object, ...]]


# --- helpers ---------------------------------------------------------------------------------


def give(path: Path, uid: int, gid: int) -> None:
    """chown -R, as a user with a folder of their own would have it."""
    if os.geteuid() == 0:
        for item in [path, *path.rglob("*")]:
            os.lchown(item, uid, gid)
        return
    # Not root here: the engine's root does it (a docker-group user can).
    code, output = engine.run_once(
        IMAGE, ["-R", f"{uid}:{gid}", "/target"], entrypoint=["chown"], user="0:0",
        volumes={str(path): {"bind": "/target", "mode": "rw"}},
    )  # fmt: skip
    assert code == 0, output


def owners(*roots: Path) -> set[tuple[int, int]]:
    return {
        (item.lstat().st_uid, item.lstat().st_gid)
        for root in roots
        for item in [root, *root.rglob("*")]
    }


def snapshot(root: Path) -> Snapshot:
    """Everything about a folder a run could change: each entry's kind, owner, mode,
    size, modification time and content."""
    found: Snapshot = {}
    for item in [root, *sorted(root.rglob("*"))]:
        info = item.lstat()
        content = hashlib.sha256(item.read_bytes()).hexdigest() if item.is_file() else None
        found[str(item.relative_to(root))] = (
            stat.S_IFMT(info.st_mode), info.st_uid, info.st_gid, stat.S_IMODE(info.st_mode),
            info.st_size, info.st_mtime_ns, content,
        )  # fmt: skip
    return found


def error_lines(logs: str) -> list[str]:
    return [line for line in logs.splitlines() if "error:" in line]


@pytest.fixture(autouse=True)
def _hand_back(stack: Stack) -> Iterator[None]:
    yield
    if os.geteuid() != 0:  # what the tests gave away comes back, so that pytest can remove it
        give(stack.data.parent, os.getuid(), os.getgid())


def make_folders(stack: Stack, case: str) -> tuple[int, int]:
    """./data and ./logs as the case has them; returns who the run's files must belong to."""
    made_by, expected = FOLDERS[case]
    for folder in (stack.data, stack.logs):
        if made_by is None:
            folder.rmdir()
        else:
            give(folder, *made_by)
    return expected


@pytest.fixture(scope="module")
def finished(new_stack) -> Iterator[Path]:
    """The data folder of one finished run of uid 1234's, for the bad-setting tests to copy."""
    done = new_stack()
    give(done.data, 1234, 1234)
    give(done.logs, 1234, 1234)
    done.up(**SHORT)
    try:
        assert done.wait_exit() == 0, done.logs_text()
        assert done.positions()
        yield done.data
    finally:
        done.down()
        if os.geteuid() != 0:
            give(done.data.parent, os.getuid(), os.getgid())


def copy_of(finished: Path, stack: Stack) -> Snapshot:
    """The finished run's data in this test's folder, still uid 1234's; returns its snapshot."""
    shutil.copytree(finished, stack.data, dirs_exist_ok=True)
    give(stack.data, 1234, 1234)
    give(stack.logs, 1234, 1234)
    return snapshot(stack.data)


# --- who the run is --------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(FOLDERS))
def test_the_runs_files_belong_to_the_owner_of_the_folders(stack: Stack, case: str) -> None:
    expected = make_folders(stack, case)
    stack.up(**SHORT)
    assert stack.wait_exit() == 0, stack.logs_text()
    assert stack.positions(), "the run wrote no positions"
    assert (stack.logs / "entrypoint.log").is_file()
    assert owners(stack.data, stack.logs) == {expected}


@pytest.mark.parametrize("case", list(FOLDERS))
def test_no_process_of_the_run_is_root_or_holds_a_capability(stack: Stack, case: str) -> None:
    uid, gid = make_folders(stack, case)
    stack.standins.set_scenario(SLOW_ANSWERS)
    stack.up(**BUSY)
    stack.wait_for_log("step 4/4")
    found = processes(stack.container())
    init, run = run_tree(found)
    listing = describe(found)

    # PID 1 is Docker's init: it starts as the container's user and only forwards signals.
    assert init.cmdline[:3] == ("/sbin/docker-init", "--", "/app/entrypoint.sh"), listing
    commands = " | ".join(p.args for p in run)
    assert "/app/entrypoint.sh" in commands, listing
    assert "ai_trader serve" in commands, listing
    assert "ai_trader run" in commands, listing
    for process in run:
        assert process.uids == (uid,) * 4, listing
        assert process.gids == (gid,) * 4, listing
        assert process.cap_eff == process.cap_prm == 0, listing


def test_the_healthcheck_runs_as_the_runs_user_too(stack: Stack) -> None:
    uid, _ = make_folders(stack, "made-by-uid-1234")
    stack.standins.set_scenario(SLOW_ANSWERS)
    stack.up(**BUSY)
    stack.wait_for_log("step 4/4")
    check = stack.inspect()["Config"]["Healthcheck"]["Test"]
    assert check[1:3] == ["/app/entrypoint.sh", "exec"], check
    # The same start, with `id -u` in place of the probe, as docker runs the healthcheck:
    # docker exec as the container's user, root.
    done = engine.execute(stack.container(), ["/app/entrypoint.sh", "exec", "id", "-u"])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(uid)


def test_ai_trader_uid_and_gid_choose_the_user(stack: Stack) -> None:
    make_folders(stack, "made-by-root")
    stack.up(AI_TRADER_UID="1234", AI_TRADER_GID="4321", **SHORT)
    assert stack.wait_exit() == 0, stack.logs_text()
    assert owners(stack.data, stack.logs) == {(1234, 4321)}


def test_the_command_in_the_readme_returns_the_runs_exit_status(stack: Stack) -> None:
    make_folders(stack, "absent")
    readme = ("up", "--exit-code-from", SERVICE, SERVICE)
    good = stack.compose(*readme, env=stack.run_env(SHORT), check=False)
    assert good.returncode == 0, good.stdout + good.stderr
    failed = stack.compose(
        *readme, env=stack.run_env({"AI_TRADER_CONFIG": "configs/nope.json"}), check=False
    )
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert "configs/nope.json not found" in failed.stdout + failed.stderr


# --- bad settings: one line, exit 2, ./data as it was ----------------------------------------


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ({"AI_TRADER_UID": "nosuchuser"}, "AI_TRADER_UID=nosuchuser is not a known user"),
        ({"AI_TRADER_UID": "0"}, "AI_TRADER_UID=0: the run never runs as root"),
        ({"AI_TRADER_GID": "nosuchgroup"}, "AI_TRADER_GID=nosuchgroup is not a known group"),
        ({"AI_TRADER_UID": "1234", "AI_TRADER_GID": "0"}, "AI_TRADER_GID=0"),
    ],
    ids=["unknown-user", "root-user", "unknown-group", "root-group"],
)
def test_a_bad_user_setting_is_one_line_and_exit_2_and_changes_nothing(
    stack: Stack, finished: Path, setting: dict[str, str], message: str
) -> None:
    before = copy_of(finished, stack)
    stack.up(**SHORT, **setting)
    code = stack.wait_exit()
    logs = stack.logs_text()
    assert code == 2, logs
    assert len(error_lines(logs)) == 1, logs
    assert message in error_lines(logs)[0]
    assert "Traceback" not in logs
    assert snapshot(stack.data) == before


def test_a_folder_another_user_owns_is_not_taken_over(stack: Stack, finished: Path) -> None:
    before = copy_of(finished, stack)
    stack.up(AI_TRADER_UID="1000", AI_TRADER_GID="1000", **SHORT)
    code = stack.wait_exit()
    logs = stack.logs_text()
    assert code == 2, logs
    assert len(error_lines(logs)) == 1, logs
    assert "(owner 1234:1234) is not writable by uid 1000" in error_lines(logs)[0]
    assert snapshot(stack.data) == before


def test_a_root_folder_the_container_cannot_take_over_is_one_line_and_exit_2(stack: Stack) -> None:
    # Root's folder, with a file root put there, and a container without the CHOWN
    # capability: the one thing that cannot hand a folder over.
    (stack.data / "notes.txt").write_text("mine\n")
    make_folders(stack, "made-by-root")
    before = snapshot(stack.data)
    code, output = engine.run_once(
        IMAGE, user="0:0", cap_drop=["ALL"], cap_add=["SETUID", "SETGID"],
        security_opt=["no-new-privileges:true"],
        volumes={str(stack.data): {"bind": "/app/data", "mode": "rw"}}, timeout=120,
    )  # fmt: skip
    assert code == 2, output
    assert len(error_lines(output)) == 1, output
    assert "cannot hand /app/data, which root owns, to uid 1000" in output
    assert snapshot(stack.data) == before
