"""What the services share: a readiness route, the run state, and the price data."""

from __future__ import annotations

import threading
from pathlib import Path

from mcp.server.mcpserver import MCPServer
from starlette.requests import Request
from starlette.responses import JSONResponse

from ai_trader.errors import UserError
from ai_trader.market.pricebook import PriceBook
from ai_trader.runtime import RunState, read_state
from ai_trader.settings import HEALTH_PATH

__all__ = ["HEALTH_PATH", "PriceSource", "current_state", "new_server"]


def new_server(name: str, instructions: str) -> MCPServer:
    server = MCPServer(name, instructions=instructions, log_level="WARNING")

    # A cheap probe for the container's HEALTHCHECK: no MCP session, no import.
    @server.custom_route(HEALTH_PATH, methods=["GET"], include_in_schema=False)
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "service": name})

    return server


class PriceSource:
    """merged.jsonl, loaded once and reloaded when the file changes (a fetch during serve)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._book: PriceBook | None = None
        self._stamp: tuple[int, int] | None = None

    def book(self) -> PriceBook:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise UserError(f"no price data at {self.path}; run `ai-trader merge` first") from None
        stamp = (stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._book is None or stamp != self._stamp:
                self._book = PriceBook.load(self.path)
                self._stamp = stamp
            return self._book


def current_state(path: Path) -> RunState:
    state = read_state(path)
    if state is None:
        raise UserError("no trading session is active (the agent sets the simulated date)")
    return state
