"""An interrupted test run (Ctrl-C) tears its compose stack down and leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import engine
import pytest
from conftest import ROOT, Stack, short_config

pytestmark = pytest.mark.container

# The inner run collects only functions named like this one (`-o python_functions=...`),
# so the suite never collects `held_run` and the inner run never collects the test itself.
INNER_FUNCTIONS = "held_*"
MODEL = {"name": "stand-in", "basemodel": "gpt-stand-in", "signature": "llm", "enabled": True}


def held_run(stack: Stack) -> None:
    """The inner run's work, not a test of the suite: a run whose model never answers.

    The stand-in holds every chat request until it is released, and nothing releases it:
    the run waits in its first model call, and the container with it, until the outer test
    interrupts this pytest run.
    """
    stack.standins.set_scenario({"openai": {"hold": True}})
    config = short_config(end_date="2025-10-02", models=[MODEL])
    stack.up(AI_TRADER_CONFIG=stack.data_config("llm.json", config), OPENAI_API_KEY="sk-stand-in")
    assert stack.wait_exit() == 0, stack.logs_text()


def project_resources(project: str) -> list[str]:
    containers = [f"container {c.name}" for c in engine.compose_containers(project)]
    networks = [f"network {n.name}" for n in engine.project_networks(project)]
    return containers + networks


def model_calls_held(project: str) -> int:
    """How many chat requests the project's stand-in holds now (0 before it answers)."""
    found = [c for c in engine.compose_containers(project, "standins") if c.status == "running"]
    if not found:
        return 0
    try:
        _, port = engine.published(found[0], 9000)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/_control/stats", timeout=10) as reply:
            return int(json.loads(reply.read())["openai"]["held"])
    except (LookupError, OSError):
        return 0  # published, or answering, only once it has started


def interruptible() -> None:
    """In the inner run's process before it starts: Ctrl-C does what it does in a terminal.

    A process started in the background by a shell without job control (`nox &` in a
    script, some CI runners) inherits SIGINT ignored, and Python then never turns it into
    KeyboardInterrupt: the inner run would go on to its end whatever the test sends.
    """
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_ctrl_c_during_a_run_leaves_no_container_or_network(tmp_path) -> None:
    """Ctrl-C reaches the inner pytest run while its container is in the middle of a run.

    It cannot race the run's end: the signal goes only after the stand-in reports the run's
    model call held (an event, not a guess at how long a run takes), and a held call is
    never answered. The run's model client gives up on a call only after 120 s, and each of
    its three retries is held again, so the inner run is still in its first day when Ctrl-C
    arrives, a poll after the call was seen.
    """
    project = f"aitrader-int-{uuid.uuid4().hex[:8]}"
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "container",
         "-o", f"python_functions={INNER_FUNCTIONS}", "tests/integration/test_interrupt.py",
         "--basetemp", str(tmp_path)],
        cwd=ROOT, env={**os.environ, "AI_TRADER_IT_PROJECT": project},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, preexec_fn=interruptible,
    )  # fmt: skip
    try:
        # A bound on a wait for an event that comes in seconds, so a broken stand-in fails
        # the test instead of hanging it; never what decides a pass.
        deadline = time.monotonic() + 300
        while model_calls_held(project) == 0:
            assert inner.poll() is None, inner.stdout.read()
            assert time.monotonic() < deadline, "the inner run's model call never arrived"
            time.sleep(0.3)
        inner.send_signal(signal.SIGINT)
        output, _ = inner.communicate(timeout=180)
    finally:
        if inner.poll() is None:
            inner.kill()
    assert inner.returncode == pytest.ExitCode.INTERRUPTED, output  # interrupted, not passed
    assert project_resources(project) == [], output
