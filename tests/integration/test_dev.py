"""The development loop (compose.dev.yml) and the debug image it runs.

One compose project for the module, from the debug target, with a temporary copy of
src/ai_trader mounted over the installed package: the tests edit the copy, never the real
tree. A change must show through what it changes, with the same container (no rebuild, no
new container): a tool's description over real MCP HTTP, a line of the dashboard's page
over HTTP. Each is polled until it shows; the deadline only keeps a reload that never
comes from hanging the suite. The debug image must carry py-spy, curl and ps, and py-spy
must dump the running services (compose.dev.yml grants SYS_PTRACE for that).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import engine
import pytest
from conftest import IMAGE, ROOT
from mcp import Client

from ai_trader.settings import DASHBOARD_PORT, PUBLISH_VARIABLES
from harness.compose import Compose, compose_command

# Its module-scoped fixtures are built once: keep its tests on one worker.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("test_dev")]

FILES = [ROOT / "compose.dev.yml"]
SERVICES, DASHBOARD = "services", "dashboard"
MATH_PORT = 8000
# Only keeps a broken reload from hanging the suite: no measure of how fast one is.
DEADLINE = 180
# The variables this module sets itself, whatever the developer's shell holds.
CONTROLLED = ("BASE_IMAGE", "AI_TRADER_DEV_SOURCE", "AI_TRADER_DEBUG_TAG", "AI_TRADER_DATA_DIR",
              "WATCHFILES_FORCE_POLLING")  # fmt: skip


@dataclass
class Dev:
    """The dev project and the copy of the package it runs from."""

    compose: Compose
    source: Path

    def edit(self, relative: str, old: str, new: str) -> None:
        """Replace ``old`` (present once) in a file of the copy, as an editor saves it."""
        path = self.source / relative
        text = path.read_text()
        assert text.count(old) == 1, f"{old!r} is not in {relative} exactly once"
        path.write_text(text.replace(old, new))

    def container_id(self, service: str) -> str:
        found = self.compose.container_id(service)
        assert found, f"no {service} container in {self.compose.project}"
        return found

    def url(self, service: str, container_port: int) -> str:
        return f"http://127.0.0.1:{self.compose.port(service, container_port)}"

    def exec(self, service: str, *argv: str) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", service, *argv, check=False, timeout=120)

    def wait_for(self, service: str, observed: Callable[[], str | None], wanted: str) -> None:
        """Poll ``observed`` until it contains ``wanted``; None is "not answering" (a
        restart under way). Fails only when DEADLINE passes first."""
        deadline = time.monotonic() + DEADLINE
        last: str | None = None
        while time.monotonic() < deadline:
            last = observed()
            if last is not None and wanted in last:
                return
            time.sleep(0.2)
        raise AssertionError(
            f"{wanted!r} never showed within {DEADLINE} s (last seen: {last!r})\n"
            f"--- logs of {service} ---\n{self.compose.logs(service)[-4000:]}"
        )


@pytest.fixture(scope="module")
def dev(empty_env_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dev]:
    root = tmp_path_factory.mktemp("dev")
    source = root / "ai_trader"
    shutil.copytree(ROOT / "src" / "ai_trader", source,
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    # Readable by the services' user (the copy's folders are the test run's own).
    for path in [source, *source.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    data = root / "data"
    data.mkdir()
    env = {
        "AI_TRADER_DEV_SOURCE": str(source),
        "AI_TRADER_DATA_DIR": str(data),
        # Empty host ports: ephemeral ones on loopback, so nothing collides.
        **dict.fromkeys(PUBLISH_VARIABLES, ""),
    }
    if os.environ.get("AI_TRADER_BASE_IMAGE"):  # the base the nox build chose
        env["BASE_IMAGE"] = os.environ["AI_TRADER_BASE_IMAGE"]
    project = f"aitrader-dev-{uuid.uuid4().hex[:10]}"
    compose = Compose(compose_command(), FILES, project, env_file=empty_env_file, env=env,
                      controlled=CONTROLLED, timeout=900)  # fmt: skip
    try:
        compose("build", SERVICES)
        compose("up", "--detach", SERVICES, DASHBOARD)
        yield Dev(compose, source)
    finally:
        compose.down()


def tool_descriptions(url: str) -> str | None:
    """Each tool's name and description, one a line; None while the server does not answer."""

    async def ask() -> str:
        async with Client(f"{url}/mcp", mode="legacy") as client:
            tools = (await client.list_tools()).tools
            return "\n".join(f"{tool.name}: {tool.description}" for tool in tools)

    try:
        return asyncio.run(asyncio.wait_for(ask(), timeout=10))
    except Exception:  # refused, reset or cut off mid-answer: a restart under way
        return None


def page(url: str) -> str | None:
    """The dashboard's page; None while it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/", timeout=10) as reply:
            return reply.read().decode()
    except OSError:
        return None


def test_a_tool_description_edited_in_the_source_shows_over_mcp_without_a_rebuild(
    dev: Dev,
) -> None:
    url = dev.url(SERVICES, MATH_PORT)
    before = dev.container_id(SERVICES)
    dev.wait_for(SERVICES, lambda: tool_descriptions(url), "add: Add two numbers")
    marker = f"edited {uuid.uuid4().hex[:8]}"
    dev.edit("services/math.py", '"""Add two numbers and return the sum."""',
             f'"""Add two numbers and return the sum ({marker})."""')  # fmt: skip
    dev.wait_for(SERVICES, lambda: tool_descriptions(url), f"the sum ({marker})")
    assert dev.container_id(SERVICES) == before


def test_a_template_line_edited_in_the_source_shows_on_the_dashboard_without_a_rebuild(
    dev: Dev,
) -> None:
    url = dev.url(DASHBOARD, DASHBOARD_PORT)
    before = dev.container_id(DASHBOARD)
    dev.wait_for(DASHBOARD, lambda: page(url), "<h1>ai-trader results</h1>")
    marker = f"edited {uuid.uuid4().hex[:8]}"
    dev.edit("dashboard/templates/page.html", "<h1>ai-trader results</h1>",
             f"<h1>ai-trader results ({marker})</h1>")  # fmt: skip
    dev.wait_for(DASHBOARD, lambda: page(url), f"({marker})</h1>")
    assert dev.container_id(DASHBOARD) == before


@pytest.mark.parametrize(
    ("tool", "says"),
    [("py-spy", "py-spy"), ("curl", "curl"), ("ps", "procps")],
)
def test_the_debug_image_carries_the_tool(dev: Dev, tool: str, says: str) -> None:
    done = dev.exec(SERVICES, tool, "--version")
    assert done.returncode == 0, done.stderr
    assert says in done.stdout


def test_py_spy_dumps_the_running_services(dev: Dev) -> None:
    url = dev.url(SERVICES, MATH_PORT)
    dev.wait_for(SERVICES, lambda: tool_descriptions(url), "add: ")
    # pgrep (procps) finds the server process below watchfiles (its command line ends in
    # "serve"; this shell's does not); py-spy runs as root in the container and reads the
    # process of the services' user through SYS_PTRACE.
    done = dev.exec(SERVICES, "sh", "-c",
                    'exec py-spy dump --pid "$(pgrep -f "ai-trader serve$")"')  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cmd_serve (ai_trader/cli.py" in done.stdout, done.stdout


def test_the_product_image_carries_no_debug_tool() -> None:
    """The default target stays the product: no py-spy, curl, ps or watchfiles in it."""
    output = engine.client().containers.run(
        IMAGE, entrypoint=["sh", "-c", "command -v py-spy curl ps watchfiles; ls /opt"],
        remove=True,
    )  # fmt: skip
    assert output.decode().split() == ["app", "venv"]
