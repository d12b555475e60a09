"""MCP over streamable HTTP, spoken with the standard library's http.client.

The probes need what an SDK client hides: the exact `Host` and `Origin` headers on the
wire, the raw status of each request, and sessions that are opened and never closed.
Nothing here retries or repairs: each call reports what the server said.
"""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass, field
from typing import Any

PROTOCOL_VERSION = "2025-06-18"
CLIENT_INFO = {"name": "ai-trader-conformance", "version": "1"}
ACCEPT = "application/json, text/event-stream"


@dataclass
class Reply:
    """One HTTP exchange: the status, the headers (lower-case names) and the JSON-RPC body."""

    status: int
    headers: dict[str, str]
    body: Any = None
    text: str = ""

    @property
    def session_id(self) -> str | None:
        return self.headers.get("mcp-session-id")

    def summary(self) -> str:
        """`STATUS` and, for a refusal, the start of what the server said."""
        if 200 <= self.status < 300:
            return str(self.status)
        said = " ".join(self.text.split())[:80]
        return f"{self.status} {said!r}" if said else str(self.status)


def parse_body(content_type: str, raw: bytes) -> Any:
    """The JSON-RPC message in a reply: plain JSON, or the last `data:` event of an SSE stream."""
    text = raw.decode("utf-8", errors="replace")
    if not text.strip():
        return None
    if content_type.startswith("text/event-stream"):
        messages = [line[5:].strip() for line in text.splitlines() if line.startswith("data:")]
        messages = [m for m in messages if m]
        return json.loads(messages[-1]) if messages else None
    try:
        return json.loads(text)
    except ValueError:
        return None


def request_headers(
    port: int,
    *,
    host: str | None = None,
    origin: str | None = None,
    session: str | None = None,
    protocol: bool = False,
) -> dict[str, str]:
    """Headers for a POST to /mcp; `host` replaces the loopback Host a client would send."""
    headers = {
        "Host": host or f"127.0.0.1:{port}",
        "Content-Type": "application/json",
        "Accept": ACCEPT,
    }
    if origin is not None:
        headers["Origin"] = origin
    if session:
        headers["Mcp-Session-Id"] = session
    if protocol:
        headers["MCP-Protocol-Version"] = PROTOCOL_VERSION
    return headers


def initialize_message(request_id: int = 1) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": request_id,
        "method": "initialize",
        "params": {
            "protocolVersion": PROTOCOL_VERSION,
            "capabilities": {},
            "clientInfo": CLIENT_INFO,
        },
    }


@dataclass
class Connection:
    """One keep-alive connection to a published port on 127.0.0.1."""

    port: int
    timeout: float = 30
    _conn: http.client.HTTPConnection | None = field(default=None, repr=False)

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
        return self._conn

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def send(
        self, method: str, path: str, headers: dict[str, str], body: bytes | None = None
    ) -> Reply:
        conn = self._connection()
        try:
            # skip_host: the Host header is ours to choose (a rebinding page sends its own).
            conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            if body is not None:
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body)
            response = conn.getresponse()
            raw = response.read()
        except (OSError, http.client.HTTPException):
            self.close()
            raise
        reply_headers = {k.lower(): v for k, v in response.getheaders()}
        if response.will_close:
            self.close()
        content_type = reply_headers.get("content-type", "")
        try:
            body_json = parse_body(content_type, raw)
        except ValueError:
            body_json = None
        return Reply(
            response.status, reply_headers, body_json, raw.decode("utf-8", errors="replace")
        )

    def post(self, message: dict[str, Any], headers: dict[str, str]) -> Reply:
        return self.send("POST", "/mcp", headers, json.dumps(message).encode())

    def get(self, path: str, headers: dict[str, str]) -> Reply:
        return self.send("GET", path, headers)


@dataclass
class Session:
    """An MCP session opened with chosen Host and Origin headers (all its requests carry them)."""

    conn: Connection
    host: str | None = None
    origin: str | None = None
    session_id: str | None = None
    next_id: int = 1
    log: list[str] = field(default_factory=list)

    def headers(self, *, protocol: bool = True) -> dict[str, str]:
        return request_headers(
            self.conn.port,
            host=self.host,
            origin=self.origin,
            session=self.session_id,
            protocol=protocol,
        )

    def initialize(self) -> Reply:
        reply = self.conn.post(initialize_message(self._id()), self.headers(protocol=False))
        self.log.append(f"initialize {reply.summary()}")
        if reply.status == 200:
            self.session_id = reply.session_id
            notified = self.conn.post(
                {"jsonrpc": "2.0", "method": "notifications/initialized"}, self.headers()
            )
            self.log.append(f"initialized {notified.summary()}")
        return reply

    def request(self, method: str, params: dict[str, Any] | None = None) -> Reply:
        message = {"jsonrpc": "2.0", "id": self._id(), "method": method, "params": params or {}}
        reply = self.conn.post(message, self.headers())
        self.log.append(f"{method} {reply.summary()}")
        return reply

    def close(self) -> None:
        """End the session (DELETE), as a well-behaved client does."""
        if self.session_id:
            self.conn.send("DELETE", "/mcp", self.headers())
            self.session_id = None

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def result_of(reply: Reply) -> dict[str, Any] | None:
    """The JSON-RPC `result` of a reply, or None for an HTTP or JSON-RPC error."""
    if reply.status != 200 or not isinstance(reply.body, dict):
        return None
    result = reply.body.get("result")
    return result if isinstance(result, dict) else None


def error_of(reply: Reply) -> str:
    """A one-line account of why a reply carries no result."""
    if reply.status != 200:
        return f"HTTP {reply.summary()}"
    if isinstance(reply.body, dict) and isinstance(reply.body.get("error"), dict):
        error = reply.body["error"]
        return f"JSON-RPC error {error.get('code')}: {error.get('message')}"
    return f"HTTP 200 with no JSON-RPC result ({reply.text[:80]!r})"


def fresh_exchange(port: int, timeout: float = 30) -> tuple[bool, str]:
    """Initialize, list the tools and close: True with the tool names, or False with why not."""
    conn = Connection(port, timeout=timeout)
    session = Session(conn)
    try:
        reply = session.initialize()
        if result_of(reply) is None:
            return False, f"initialize: {error_of(reply)}"
        listed = session.request("tools/list")
        tools = result_of(listed)
        if tools is None:
            return False, f"tools/list: {error_of(listed)}"
        session.close()
        names = sorted(t.get("name", "?") for t in tools.get("tools", []))
        return True, "tools " + ", ".join(names)
    except (OSError, http.client.HTTPException) as exc:
        return False, f"{type(exc).__name__}: {exc}"
    finally:
        conn.close()
