"""One service a process (a container of its own: compose.split.yml, Kubernetes):
`serve --only`, `wait-ready --only` and `healthcheck --only` name the services they mean.

The services left out sit on closed ports (support.closed_ports): nothing can answer there,
so a client that asked them would fail, and a test that passes shows it did not ask."""

from __future__ import annotations

import pytest
from support import closed_ports, run_cli, running_services, service_env, with_ports

from ai_trader.health import mcp_exchange


@pytest.fixture
def trade_and_prices(tmp_path):
    """`serve --only trade,prices`, its env pointing math and search at closed ports."""
    with (
        closed_ports(2) as (math, search),
        running_services(
            service_env(tmp_path / "data"), tmp_path / "serve.log", ("trade", "prices")
        ) as services,
    ):
        services.env = with_ports(services.env, {"math": math, "search": search})
        yield services


def test_serve_only_serves_the_services_named_each_under_its_own_name(trade_and_prices):
    for name in ("trade", "prices"):
        assert mcp_exchange(trade_and_prices.url(name), name, timeout=30) is None
    assert "(trade :" in trade_and_prices.log.read_text()
    assert "math :" not in trade_and_prices.log.read_text()


def test_wait_ready_only_waits_for_the_services_named(trade_and_prices):
    done = run_cli("wait-ready", "--only", "prices,trade", env=trade_and_prices.env)
    assert done.returncode == 0, done.stderr
    assert "the trade, prices services answer" in done.stderr


def test_wait_ready_for_all_four_names_those_not_served(trade_and_prices):
    done = run_cli("wait-ready", "--timeout", "0.5", env=trade_and_prices.env)
    assert done.returncode != 0
    error = done.stderr.strip().splitlines()[-1]
    assert "not ready after 0.5 s: math (" in error, done.stderr
    assert "search (" in error
    assert "trade (" not in error


def test_healthcheck_only_checks_the_service_named(trade_and_prices):
    done = run_cli("healthcheck", "--only", "trade", env=trade_and_prices.env)
    assert done.returncode == 0, done.stderr
    missing = run_cli("healthcheck", "--only", "math", env=trade_and_prices.env)
    assert missing.returncode == 1
    assert "the math service is not answering" in missing.stderr


@pytest.mark.parametrize("command", ["serve", "wait-ready", "healthcheck"])
def test_only_refuses_a_name_that_is_no_service_in_one_line(command, tmp_path):
    done = run_cli(command, "--only", "trade,bogus", env=service_env(tmp_path))
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        f"ai-trader {command}: error: argument --only: names no service (bogus): give one or "
        "more of math, search, trade, prices, separated by commas"
    )
    assert "Traceback" not in done.stderr
