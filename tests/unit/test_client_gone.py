"""A client that goes away mid-request (a health check its own timeout ended, on a loaded
machine) is one line in serve's log, never a traceback. The test closes the connection
itself, after the headers and part of the body, so the server always meets the
disconnect: nothing here depends on how fast either side is."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlsplit

from ai_trader.services.launcher import GONE
from unit.support import SERVE_GUARD_SECONDS, Services


def half_a_request(url: str) -> None:
    """Headers that promise a 1,000-byte JSON body, one byte of it, then the close."""
    parts = urlsplit(url)
    head = (
        f"POST {parts.path} HTTP/1.1\r\n"
        f"Host: {parts.hostname}:{parts.port}\r\n"
        "Content-Type: application/json\r\n"
        "Accept: application/json, text/event-stream\r\n"
        "Content-Length: 1000\r\n\r\n{"
    )
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        sock.sendall(head.encode())


def test_a_client_that_closes_mid_request_is_one_line_and_no_traceback(services: Services):
    start = services.log.stat().st_size
    half_a_request(services.url("math"))
    deadline = time.monotonic() + SERVE_GUARD_SECONDS  # a hang guard, not a pace
    while GONE not in (added := services.log.read_text()[start:]):
        assert services.process.poll() is None, added
        assert time.monotonic() < deadline, added
        time.sleep(0.05)
    assert "Traceback" not in added
    assert "Error handling POST request" not in added
    assert services.process.poll() is None  # and serve goes on
