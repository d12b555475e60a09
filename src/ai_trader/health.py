"""Is a service up: one MCP exchange with it, standard library only.

The container's health check runs this every few seconds, and ``wait-ready`` polls it while
the services start, so neither imports the MCP SDK (a second of CPU, which at start-up
competes with the services' own import of it). A service whose HTTP server still answers a
plain route but cannot complete MCP (a hung event loop, an exhausted session table) must
count as down, so the probe is a real ``initialize`` request to the MCP endpoint, answered
with the service's own name.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

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


def wait_ready(urls: Mapping[str, str], limit: float, interval: float = 0.1) -> list[str]:
    """Probe each service (name: MCP URL) until all complete an MCP exchange or ``limit``
    seconds pass; the names still down, in the given order."""
    deadline = time.monotonic() + limit
    waiting = list(urls)
    # One thread a service: a service that accepted but hangs must not keep the others
    # from being asked.
    with ThreadPoolExecutor(max_workers=max(len(waiting), 1)) as pool:
        while waiting:
            # A refused connection fails at once; a server that accepted is still starting
            # up, so let it answer rather than abandon its first request mid-way.
            per_probe = [max(deadline - time.monotonic(), 0.1)] * len(waiting)
            asked = [urls[n] for n in waiting]
            problems = list(pool.map(mcp_exchange, asked, waiting, per_probe))
            waiting = [n for n, problem in zip(waiting, problems, strict=True) if problem]
            if not waiting or time.monotonic() >= deadline:
                break
            time.sleep(interval)
    return waiting
