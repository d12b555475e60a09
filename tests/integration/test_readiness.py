"""Port readiness: the four services answer MCP from the host, and the agent waits for them."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Iterator

import engine
import pytest
from conftest import (
    DASHBOARD,
    ROOT,
    SERVICE,
    SERVICE_PORTS,
    Compose,
    Stack,
    default_env,
    short_config,
)
from mcp import Client

from ai_trader.settings import DASHBOARD_PORT

# Its module-scoped fixtures are built once: keep its tests on one worker.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("test_readiness")]

EXPECTED_TOOLS = {
    "math": {"add", "multiply"},
    "search": {"get_information"},
    "trade": {"buy", "sell"},
    "prices": {"get_price_local"},
}


@pytest.fixture(scope="module")
def running(new_stack) -> Iterator[Stack]:
    """A run held in its first model call, so its services stay up to be probed.

    The stand-in holds that call unanswered until the next scenario: the run stays in it,
    whatever the load, until its model client gives up after 120 s, and the module's tests
    take seconds. It used to be a model answering in 1 s a day: a run of about half a
    minute, over whenever the run went faster than the tests.
    """
    stack = new_stack()
    model = {"name": "slow", "basemodel": "gpt-stand-in", "signature": "slow", "enabled": True}
    config = short_config(
        end_date="2025-10-31",
        models=[model],
        agent_config={"max_steps": 2, "max_retries": 0, "base_delay": 0},
    )
    stack.standins.set_scenario({"openai": {"hold": True}})
    stack.up(AI_TRADER_CONFIG=stack.data_config("slow.json", config), OPENAI_API_KEY="sk-stand-in")
    try:
        stack.wait_for_log("step 4/4")
        yield stack
    finally:
        stack.down()


async def list_tools(port: int) -> set[str]:
    async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:
        return {tool.name for tool in (await client.list_tools()).tools}


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_each_service_answers_mcp_from_the_host_with_its_tools(
    running: Stack, service: str
) -> None:
    _, port = running.host_port(SERVICE_PORTS[service])
    assert asyncio.run(list_tools(port)) == EXPECTED_TOOLS[service]


def test_ports_are_published_on_loopback_only(running: Stack) -> None:
    for container_port in SERVICE_PORTS.values():
        host, _ = running.host_port(container_port)
        assert host == "127.0.0.1"


def test_every_port_the_compose_file_publishes_is_bound_to_loopback_by_default(
    compose: Compose,
) -> None:
    """Every published port of every service (the dashboard's too, and any added later),
    as compose itself resolves the file with nothing set: none is open to the network."""
    product = Compose(compose.command, [str(ROOT / "docker-compose.yml")], compose.project)
    resolved = json.loads(product("config", "--format", "json", env=default_env(ROOT, ROOT)).stdout)
    published = {
        (name, int(port["target"])): port.get("host_ip")
        for name, service in resolved["services"].items()
        for port in service.get("ports", [])
    }
    expected_ports = {(SERVICE, p) for p in SERVICE_PORTS.values()} | {(DASHBOARD, DASHBOARD_PORT)}
    assert set(published) == expected_ports
    assert set(published.values()) == {"127.0.0.1"}


def test_the_container_turns_healthy_while_the_agent_runs(running: Stack) -> None:
    box = running.container()
    engine.wait_event(box.id, "health_status: healthy", time.time() - 600, timeout=60)
    assert engine.health(box) == "healthy"


def test_the_agent_starts_only_after_all_four_services_answer(running: Stack) -> None:
    logs = running.logs_text()
    ready = logs.index("wait-ready: all four services answer")
    assert ready < logs.index("step 4/4: running the agent")
    assert logs.index("starting the MCP services") < ready


def test_every_process_in_the_running_container_is_non_root(running: Stack) -> None:
    init, run = engine.run_tree(engine.processes(running.container()))
    # Docker's init starts as the container's user (root) and only forwards signals; the
    # run is what it started. (docker exec processes, like the healthcheck, are not.)
    assert init.args.startswith("/sbin/docker-init"), init
    assert len(run) >= 3, run  # entrypoint, services, agent
    expected = 1000 if os.geteuid() == 0 else os.getuid()  # the data folder's owner
    assert {p.uid for p in run} == {expected}, run
    assert {p.euid for p in run} == {expected}, run
