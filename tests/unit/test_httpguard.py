"""Host and Origin checks against DNS rebinding, as pure functions and as middleware."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from ai_trader.httpguard import HostGuard, host_name, origin_name, refusal
from ai_trader.settings import LOOPBACK_NAMES

ALLOWED = LOOPBACK_NAMES | {"trader"}


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("localhost", "localhost"),
        ("LocalHost:8002", "localhost"),
        ("127.0.0.1:1", "127.0.0.1"),
        ("[::1]:8000", "::1"),
        ("[::1]", "::1"),
        ("evil.example:80", "evil.example"),
        ("localhost:x", None),
        ("[::1", None),
        ("[::1]x", None),
        ("", None),
        (None, None),
    ],
)
def test_host_name_reads_the_name_out_of_a_host_header(header: str | None, name: str | None):
    assert host_name(header) == name


@pytest.mark.parametrize(
    ("origin", "name"),
    [
        ("http://localhost:3000", "localhost"),
        ("https://Trader", "trader"),
        ("http://[::1]:9", "::1"),
        ("null", None),
        ("file://", None),
        ("ws://localhost", None),
        ("http://localhost:99999", None),
    ],
)
def test_origin_name_accepts_only_http_origins(origin: str, name: str | None):
    assert origin_name(origin) == name


def test_a_loopback_host_without_an_origin_passes():
    assert refusal("127.0.0.1:8002", None, ALLOWED) is None


def test_an_allowed_name_passes_on_any_port():
    assert refusal("trader:8002", "http://trader:1234", ALLOWED) is None


def test_a_foreign_host_is_421():
    assert refusal("evil.example:8002", None, ALLOWED) == (421, "Invalid Host header")


def test_a_loopback_host_with_a_foreign_origin_is_403():
    assert refusal("localhost:8002", "http://evil.example", ALLOWED) == (
        403,
        "Invalid Origin header",
    )


def test_the_middleware_guards_every_route():
    app = Starlette(routes=[Route("/", lambda request: PlainTextResponse("ok"))])
    client = TestClient(HostGuard(app, ALLOWED), base_url="http://localhost:8888")
    assert client.get("/").text == "ok"
    assert client.get("/", headers={"Host": "evil.example"}).status_code == 421
    assert client.get("/", headers={"Origin": "http://evil.example"}).status_code == 403
