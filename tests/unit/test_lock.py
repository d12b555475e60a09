"""Locks that die with their process: one writer per signature, one writer of the prices."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from support import cli_env

from ai_trader.errors import UserError
from ai_trader.layout import LOCK_NAME
from ai_trader.lock import (
    LockHeld,
    holder,
    prices_lock,
    remove_stale_temporaries,
    signature_lock,
)

HOLD = """
import sys, time
from pathlib import Path
from ai_trader.lock import signature_lock
with signature_lock(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def hold_in_child(folder: Path) -> subprocess.Popen[str]:
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(folder)], env=cli_env(), stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_held_signature_is_refused_naming_the_holders_pid(tmp_path: Path):
    child = hold_in_child(tmp_path / "sig")
    try:
        with pytest.raises(
            LockHeld, match=rf"signature 'sig' is already being run by pid {child.pid} on "
        ):
            signature_lock(tmp_path / "sig").acquire()
    finally:
        child.kill()
        child.wait()


def test_a_refusal_is_bad_input_exit_2():
    assert issubclass(LockHeld, UserError)
    assert LockHeld.exit_code == 2


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_the_lock_dies_with_its_process(tmp_path: Path, how: signal.Signals):
    child = hold_in_child(tmp_path / "sig")
    os.kill(child.pid, how)
    child.wait()
    with signature_lock(tmp_path / "sig"):
        pass  # taken at once: nothing stale to clean up by hand


def test_the_holder_is_readable_while_held_and_gone_after(tmp_path: Path):
    path = tmp_path / "sig" / LOCK_NAME
    with signature_lock(tmp_path / "sig"):
        held = holder(path)
        assert held is not None
        assert held.pid == os.getpid()
    assert holder(path) is None


def test_no_lock_file_means_nobody_holds_it(tmp_path: Path):
    assert holder(tmp_path / LOCK_NAME) is None


def test_the_price_files_lock_refuses_at_once(tmp_path: Path):
    with prices_lock(tmp_path), pytest.raises(LockHeld, match="are being written by pid"):
        prices_lock(tmp_path).acquire()


def test_stale_temporaries_are_removed_and_nothing_else(tmp_path: Path):
    (tmp_path / ".position.jsonl.abc.tmp").write_text("half")
    (tmp_path / "position.jsonl").write_text("{}\n")
    (tmp_path / "notes.tmp").write_text("not ours: no leading dot")
    removed = remove_stale_temporaries(tmp_path)
    assert [p.name for p in removed] == [".position.jsonl.abc.tmp"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.tmp", "position.jsonl"]


@pytest.mark.parametrize("content", ["[" * 100_000, '{"pid": 1e400}', "not json", ""])
def test_a_lock_file_with_foreign_content_never_breaks_a_reader(tmp_path: Path, content: str):
    from ai_trader.lock import _parse_holder

    assert _parse_holder(content) is None
