"""An interrupted test run (Ctrl-C) tears its compose stack down and leaves nothing behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import engine
import pytest
from conftest import ROOT

pytestmark = pytest.mark.container


def project_resources(project: str) -> list[str]:
    containers = [f"container {c.name}" for c in engine.compose_containers(project)]
    networks = [f"network {n.name}" for n in engine.project_networks(project)]
    return containers + networks


def test_ctrl_c_during_a_run_leaves_no_container_or_network(tmp_path) -> None:
    project = f"aitrader-int-{uuid.uuid4().hex[:8]}"
    # A real run of one slow-ish test, with a project name we can look for afterwards.
    target = ["tests/integration/test_persistence.py", "-k", "longer_range"]
    inner = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-m", "container",
         *target, "--basetemp", str(tmp_path)],
        cwd=ROOT, env={**os.environ, "AI_TRADER_IT_PROJECT": project},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while not any(
            c.status == "running" for c in engine.compose_containers(project, "ai-trader")
        ):
            assert inner.poll() is None, inner.stdout.read()
            assert time.monotonic() < deadline, "the inner run never started its container"
            time.sleep(0.3)
        inner.send_signal(signal.SIGINT)
        output, _ = inner.communicate(timeout=180)
    finally:
        if inner.poll() is None:
            inner.kill()
    assert inner.returncode != 0, output  # interrupted, not passed
    assert project_resources(project) == [], output
