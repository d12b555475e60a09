"""One threaded HTTP server for all stand-ins, routed by path prefix."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from . import alphavantage, jina, model_api, tushare
from .state import DEFAULT_SCENARIO, State

__all__ = ["DEFAULT_SCENARIO", "StandIns", "make_server"]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], state: State, verbose: bool) -> None:
        super().__init__(address, _Handler)
        self.state = state
        self.verbose = verbose


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.1 keeps connections alive, as clients with connection pools expect.
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, keep-alive clients wait ~40 ms each.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            sys.stderr.write(f"standins: {format % args}\n")

    # -- plumbing ---------------------------------------------------------------------------

    def _send(self, status: int, payload: Any, content_type: str | None = None) -> None:
        if isinstance(payload, str):
            data = payload.encode()
            content_type = content_type or "text/html; charset=utf-8"
        else:
            data = json.dumps(payload).encode()
            content_type = content_type or "application/json"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _not_found(self) -> None:
        self._send(404, {"error": {"message": f"no stand-in at {self.path}", "type": "not_found",
                                   "param": None, "code": None}})  # fmt: skip

    # -- routes -----------------------------------------------------------------------------

    def do_GET(self) -> None:
        state = self.server.state
        parts = urlsplit(self.path)
        path = parts.path
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if path == "/alphavantage/query":
            self._send(*alphavantage.handle(state, params))
        elif path == "/openai/v1/models":
            self._send(*model_api.models(state, self.headers, None))
        elif path.startswith("/openai/v1/models/"):
            model_id = unquote(path.removeprefix("/openai/v1/models/"))
            self._send(*model_api.models(state, self.headers, model_id))
        elif path.startswith("/jina-search"):
            # Both spellings of the real API: /?q=QUERY and /QUERY.
            query = params.get("q") or unquote(path.removeprefix("/jina-search").lstrip("/"))
            self._send(*jina.search(state, self.headers, query))
        elif path.startswith("/jina-reader/"):
            # The target URL is everything after the prefix, its own query string included.
            self._send(*jina.read(state, self.path.removeprefix("/jina-reader/")))
        elif path == "/_control/health":
            self._send(200, {"status": "ok"})
        elif path == "/_control/stats":
            self._send(200, state.stats())
        else:
            self._not_found()

    def do_POST(self) -> None:
        state = self.server.state
        path = urlsplit(self.path).path
        raw = self._body()
        if path == "/openai/v1/chat/completions":
            status, payload, stream = model_api.chat(state, self.headers, raw)
            if stream and status == 200:
                self._send(200, model_api.as_stream(payload), "text/event-stream")
            else:
                self._send(status, payload)
        elif path == "/tushare" or path.startswith("/tushare/"):
            # The documented endpoint, and the SDK's spelling with the API's name appended.
            self._send(*tushare.handle(state, raw))
        elif path == "/_control/release":
            state.release()
            self._send(200, {"status": "released"})
        elif path == "/_control/reset":
            state.reset()
            self._send(200, {"status": "reset"})
        elif path == "/_control/scenario":
            try:
                scenario = json.loads(raw or b"null")
            except ValueError:
                scenario = None
            if not isinstance(scenario, dict):
                self._send(400, {"error": "the scenario must be a JSON object"})
                return
            state.set_scenario(scenario)
            self._send(200, {"status": "scenario set"})
        else:
            self._not_found()


def make_server(
    host: str = "127.0.0.1",
    port: int = 0,
    scenario: dict[str, Any] | None = None,
    *,
    verbose: bool = False,
) -> _Server:
    """A bound server (port 0 = any free one); call ``serve_forever()`` on it."""
    return _Server((host, port), State(scenario), verbose)


class StandIns:
    """The stand-ins on 127.0.0.1, a free port, in a daemon thread; use as a context manager."""

    def __init__(self, scenario: dict[str, Any] | None = None) -> None:
        self._server = make_server("127.0.0.1", 0, scenario)
        self._thread: threading.Thread | None = None
        port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{port}"
        self.alphavantage_url = f"{self.url}/alphavantage/query"
        self.openai_base = f"{self.url}/openai/v1"
        self.jina_search_url = f"{self.url}/jina-search"
        self.jina_reader_url = f"{self.url}/jina-reader"
        self.tushare_url = f"{self.url}/tushare"

    def start(self) -> StandIns:
        if self._thread is None:
            # A short poll interval makes stop() quick, which adds up over many tests.
            self._thread = threading.Thread(
                target=self._server.serve_forever, args=(0.05,), name="standins", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._server.state.stopping.set()  # no request thread stays in a delay
        self._server.state.release()  # nor blocked on a hold
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self._server.server_close()

    def __enter__(self) -> StandIns:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def stats(self) -> dict[str, Any]:
        return self._server.state.stats()

    def set_scenario(self, scenario: dict[str, Any]) -> None:
        self._server.state.set_scenario(scenario)

    def reset(self) -> None:
        self._server.state.reset()

    def release(self) -> None:
        self._server.state.release()
