"""Host and Origin checks for every HTTP server we run (the four services, the dashboard).

A web page whose name the attacker re-points at 127.0.0.1 (DNS rebinding) reaches a
loopback-published port with its own name in ``Host`` and ``Origin``. Publishing on
loopback does not stop that; refusing foreign names does. The MCP SDK's own check is on
only when the bind host is literally a loopback name, so it is off in a container that
binds 0.0.0.0; this one applies wherever we listen, to every route.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Receive, Scope, Send


def host_name(header: str | None) -> str | None:
    """The lower-case name in a Host header (``name``, ``name:port``, ``[v6]:port``)."""
    if not header:
        return None
    text = header.strip().lower()
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            return None
        rest = text[end + 1 :]
        if rest and not (rest.startswith(":") and rest[1:].isdigit()):
            return None
        return text[1:end]
    name, colon, port = text.partition(":")
    if colon and not port.isdigit():
        return None
    return name or None


def origin_name(header: str) -> str | None:
    """The host name of an http(s) Origin, or None for anything else (``null`` included)."""
    try:
        parts = urlsplit(header.strip())
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    return parts.hostname.lower()


def refusal(host: str | None, origin: str | None, allowed: Iterable[str]) -> tuple[int, str] | None:
    """(status, reason) when a request must be refused, else None.

    A foreign or missing Host is 421 (Misdirected Request), as the MCP SDK answers; a
    foreign Origin is 403. No Origin at all is a client that is not a browser: allowed.
    """
    names = frozenset(allowed)
    if host_name(host) not in names:
        return 421, "Invalid Host header"
    if origin is not None and origin_name(origin) not in names:
        return 403, "Invalid Origin header"
    return None


class HostGuard:
    """ASGI middleware applying ``refusal`` to every HTTP request."""

    def __init__(self, app: ASGIApp, allowed: Iterable[str]) -> None:
        self.app = app
        self.allowed = frozenset(allowed)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = Headers(scope=scope)
            refused = refusal(headers.get("host"), headers.get("origin"), self.allowed)
            if refused is not None:
                status, reason = refused
                await PlainTextResponse(reason, status_code=status)(scope, receive, send)
                return
        await self.app(scope, receive, send)
