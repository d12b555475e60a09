"""The compose driver both container suites share (tests/harness/compose.py), without Docker:
a stand-in `compose` that prints what it was given."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from harness.compose import CONTROLLED, Compose, ComposeFailed

# Prints its arguments and two variables, then exits with the status in STATUS.
ECHO = [sys.executable, "-c",
        "import os, sys; print(sys.argv[1:]); print(os.environ.get('OPENAI_API_KEY'), "
        "os.environ.get('MINE')); sys.exit(int(os.environ.get('STATUS', '0')))"]  # fmt: skip


def test_the_env_file_each_file_and_the_project_follow_the_command(tmp_path: Path) -> None:
    compose = Compose(ECHO, ["a.yml"], "proj", env_file=tmp_path / "e.env").with_file("b.yml")
    said = compose("ps").stdout.splitlines()[0]
    expected = ["--env-file", str(tmp_path / "e.env"), "-f", "a.yml", "-f", "b.yml"]
    assert said == str([*expected, "-p", "proj", "ps"])


def test_a_controlled_variable_never_comes_from_the_shell(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert "OPENAI_API_KEY" in CONTROLLED
    monkeypatch.setenv("OPENAI_API_KEY", "a-real-key")
    monkeypatch.setenv("MINE", "from-the-shell")
    plain = Compose(ECHO, [], "p")
    assert plain("x").stdout.splitlines()[1] == "None from-the-shell"
    mine = Compose(ECHO, [], "p", env={"OPENAI_API_KEY": "k"}, controlled={"MINE"})
    assert mine.with_file("c.yml")("x").stdout.splitlines()[1] == "k None"
    assert mine("x", env={"MINE": "set"}).stdout.splitlines()[1] == "k set"


def test_a_failed_command_says_what_failed_unless_unchecked() -> None:
    compose = Compose(ECHO, [], "p")
    with pytest.raises(ComposeFailed, match="compose up exited 3"):
        compose("up", env={"STATUS": "3"})
    assert compose("up", env={"STATUS": "3"}, check=False).returncode == 3
