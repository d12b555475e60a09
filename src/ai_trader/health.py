"""The container's health check: one MCP exchange with a service, standard library only.

It runs every few seconds, so it must not import the MCP SDK (a second or more here). A
service whose HTTP server still answers a plain route but cannot complete MCP (a hung
event loop, an exhausted session table) must count as unhealthy, so the check is a real
``initialize`` request to the MCP endpoint, answered with the service's own name.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

from ai_trader import __version__

# A protocol version every MCP server of the SDK we ship answers.
PROTOCOL_VERSION = "2025-11-25"


def initialize_request() -> bytes:
    return json.dumps(
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": PROTOCOL_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "ai-trader-healthcheck", "version": __version__},
            },
        }
    ).encode()


def check_answer(body: bytes, name: str) -> str | None:
    """None when ``body`` is the initialize result of service ``name``, else what is wrong."""
    try:
        answer = json.loads(body)
        server = answer["result"]["serverInfo"]["name"]
    except (ValueError, KeyError, TypeError):
        return f"gave no MCP initialize result: {body[:200]!r}"
    if server != name:
        return f"answered as {server!r}"
    return None


def mcp_exchange(url: str, name: str, timeout: float) -> str | None:
    """None when the service at ``url`` completes an MCP initialize, else what went wrong."""
    if not url.startswith("http://"):
        return f"has no http:// address ({url!r})"
    request = urllib.request.Request(  # noqa: S310 (an http:// URL, checked above)
        url,
        data=initialize_request(),
        method="POST",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as reply:  # noqa: S310
            return check_answer(reply.read(), name)
    except urllib.error.HTTPError as exc:
        return f"answered HTTP {exc.code} at {url}"
    except (OSError, TimeoutError) as exc:
        return f"is not answering at {url} ({exc})"
