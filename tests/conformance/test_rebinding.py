"""DNS-rebinding probes against the published ports, as a hostile page in a browser sends them.

A page whose name rebinds to 127.0.0.1 reaches the published ports with its own name in
`Host` (and in `Origin`). The services and the dashboard must refuse a foreign Host with
421 and a foreign Origin with 403, accept the loopback names, and a buy sent behind a
foreign Host must leave the book exactly as it was.
"""

from __future__ import annotations

import http.client

import pytest

from conformance.commands import FAIL, PASS, describe_change, result_text
from conformance.conftest import SERVICE_PORTS, MainStack, Report
from conformance.mcp_http import (
    Connection,
    Reply,
    Session,
    initialize_message,
    request_headers,
    result_of,
)

pytestmark = pytest.mark.conformance

FOREIGN = "evil.example"
TARGETS = [*SERVICE_PORTS, "dashboard"]


def probe(stack: MainStack, target: str, host: str, origin: str | None) -> Reply:
    """One request with the given Host and Origin: an MCP initialize, or a dashboard GET."""
    if target == "dashboard":
        assert stack.dashboard_port
        conn = Connection(stack.dashboard_port)
        headers = {"Host": host} | ({"Origin": origin} if origin else {})
        try:
            return conn.get("/api/summary", headers)
        finally:
            conn.close()
    port = stack.ports[target]
    conn = Connection(port)
    try:
        headers = request_headers(port, host=host, origin=origin)
        return conn.post(initialize_message(), headers)
    finally:
        conn.close()


def port_of(stack: MainStack, target: str) -> int:
    return stack.dashboard_port if target == "dashboard" else stack.ports[target]  # type: ignore[return-value]


def describe(reply: Reply) -> str:
    granted = " (session granted)" if reply.status == 200 and reply.session_id else ""
    return f"{reply.summary()}{granted}"


@pytest.mark.parametrize("target", TARGETS)
def test_a_foreign_host_is_refused_with_421(
    main_stack: MainStack, target: str, report: Report
) -> None:
    host = f"{FOREIGN}:{port_of(main_stack, target)}"
    reply = probe(main_stack, target, host, None)
    detail = f"Host {host}: {describe(reply)}"
    report("rebinding: foreign Host", target, PASS if reply.status == 421 else FAIL, detail)

    assert reply.status == 421, detail


@pytest.mark.parametrize("target", TARGETS)
def test_a_foreign_origin_is_refused_with_403(
    main_stack: MainStack, target: str, report: Report
) -> None:
    port = port_of(main_stack, target)
    origin = f"http://{FOREIGN}:{port}"
    reply = probe(main_stack, target, f"127.0.0.1:{port}", origin)
    detail = f"Origin {origin}: {describe(reply)}"
    report("rebinding: foreign Origin", target, PASS if reply.status == 403 else FAIL, detail)

    assert reply.status == 403, detail


@pytest.mark.parametrize("target", TARGETS)
def test_the_loopback_names_are_accepted(
    main_stack: MainStack, target: str, report: Report
) -> None:
    # The refusals above mean something only if the same request with a loopback name works.
    port = port_of(main_stack, target)
    answers = {
        name: probe(main_stack, target, f"{name}:{port}", f"http://{name}:{port}")
        for name in ("127.0.0.1", "localhost")
    }
    refused = {name: r.summary() for name, r in answers.items() if r.status != 200}
    detail = ", ".join(f"Host/Origin {name}: {describe(r)}" for name, r in answers.items())
    report("rebinding: loopback accepted", target, FAIL if refused else PASS, detail)

    assert not refused, detail


def buy_through(stack: MainStack, host: str | None, origin: str | None) -> str:
    """initialize, then tools/call buy 1 share, all behind the given Host and Origin."""
    assert stack.plan
    session = Session(Connection(stack.ports["trade"]), host=host, origin=origin)
    try:
        if result_of(session.initialize()) is not None:
            params = {
                "name": "buy",
                "arguments": {"symbol": stack.plan.buy_symbol, "amount": 1},
                "_meta": stack.plan.meta,
            }
            reply = session.request("tools/call", params)
            result = result_of(reply)
            if result is not None:
                error = str(result.get("isError") is True).lower()
                session.log[-1] += f" isError={error} {result_text(result, 80)!r}"
            session.close()
    except (OSError, http.client.HTTPException) as exc:
        session.log.append(f"{type(exc).__name__}: {exc}")
    finally:
        session.conn.close()
    return ", ".join(session.log)


def test_a_buy_behind_a_foreign_host_leaves_the_book_unchanged(
    main_stack: MainStack, report: Report
) -> None:
    assert main_stack.book
    assert main_stack.plan
    book, port = main_stack.book, main_stack.ports["trade"]
    foreign = f"{FOREIGN}:{port}"

    before = book.snapshot()
    steps = buy_through(main_stack, foreign, f"http://{FOREIGN}:{port}")
    foreign_change = describe_change(before, book.snapshot())
    # The control: the same buy behind the loopback name must trade, or the probe proves nothing.
    middle = book.snapshot()
    control_steps = buy_through(main_stack, None, f"http://127.0.0.1:{port}")
    control_change = describe_change(middle, book.snapshot())

    problems = []
    if foreign_change != "the book is unchanged":
        problems.append(f"behind Host {foreign} ({steps}): {foreign_change}")
    if control_change == "the book is unchanged":
        problems.append(
            f"inconclusive: the same buy behind 127.0.0.1 did not trade either ({control_steps})"
        )
    detail = "; ".join(problems) or (
        f"behind Host {foreign}: {steps}, book unchanged; behind 127.0.0.1: {control_change}"
    )
    report("rebinding: buy behind foreign Host", "trade", FAIL if problems else PASS, detail)

    assert not problems, detail
