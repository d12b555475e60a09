"""What the services share: the server class, strict argument types, the run context of a
call, a readiness route, and the price data."""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import anyio.to_thread
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from pydantic import Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse

from ai_trader import __version__, logformat
from ai_trader.context import ContextError, RunContext, from_meta, today_from_meta
from ai_trader.errors import UserError, problems
from ai_trader.market.pricebook import PriceBook
from ai_trader.services.metering import METRICS_PATH, Meter
from ai_trader.settings import HEALTH_PATH

__all__ = [
    "HEALTH_PATH",
    "Day",
    "PriceSource",
    "Service",
    "Slot",
    "Symbol",
    "ToolError",
    "request_context",
    "request_today",
]

# The tools' argument types. Strict: no string or bool coercion, no case folding, so
# what the schema says is exactly what is accepted.
Symbol = Annotated[
    str,
    Field(
        strict=True,
        pattern=r"^[A-Z]{1,5}$",
        description="Upper-case ticker, e.g. NVDA (NASDAQ-100 stocks and QQQ)",
    ),
]
Day = Annotated[
    str,
    Field(strict=True, pattern=r"^\d{4}-\d{2}-\d{2}$", description="A date, YYYY-MM-DD"),
]
# An hourly market's bar: the day and the slot's time.
Slot = Annotated[
    str,
    Field(
        strict=True,
        pattern=r"^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$",
        description="An hourly slot, YYYY-MM-DD HH:MM:SS",
    ),
]

_Fn = TypeVar("_Fn", bound=Callable[..., Any])


def one_line(error: ValidationError) -> str:
    """A pydantic error as one line a model can act on: ``amount: Input should be ...``."""
    return "invalid arguments: " + "; ".join(problems(error, whole="arguments"))


class Service(MCPServer):
    """An MCP server whose refusals are one clean line of text (``isError: true``)."""

    def __init__(self, name: str, instructions: str) -> None:
        super().__init__(name, instructions=instructions, version=__version__, log_level="WARNING")

        # A cheap liveness route; readiness and the health check ask the MCP endpoint.
        async def health(_: Request) -> JSONResponse:
            return JSONResponse({"status": "ok", "service": name})

        self.custom_route(HEALTH_PATH, methods=["GET"], include_in_schema=False)(health)
        # Its tool calls for Prometheus, in a registry of its own (``metering``).
        self.meter = Meter(name)
        self.custom_route(METRICS_PATH, methods=["GET"], include_in_schema=False)(
            self.meter.endpoint
        )

    def tool_from(self, fn: _Fn) -> _Fn:
        """Register ``fn`` as a tool, its docstring (dedented) as the description.

        Structured output is required, so a return type the SDK cannot describe fails here,
        at start-up, instead of quietly publishing no output schema. So is a coroutine:
        the SDK runs a plain function in a worker thread, and waking that thread showed in
        a third of a price lookup's samples in the server (py-spy); work that may block for
        long (a reload of the prices) goes to a thread by itself.
        """
        if not inspect.iscoroutinefunction(fn):
            raise TypeError(f"tool {fn.__name__} must be a coroutine function (async def)")
        self.add_tool(fn, description=inspect.cleandoc(fn.__doc__ or ""), structured_output=True)
        self.meter.add_tool(fn.__name__)
        return fn

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None = None
    ) -> Any:
        return await self.meter.measure(name, lambda: self._call_tool(name, arguments, context))

    async def _call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[Any, Any] | None
    ) -> Any:
        try:
            with logformat.bound(tool=name, **_logged_context(context)):
                return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise  # a crash: the SDK shows the model a generic line and logs the traceback
        except ToolError as exc:
            # The SDK prefixes "Error executing tool NAME:" and, for bad arguments, prints
            # pydantic's multi-line report; the model gets the reason alone, on one line.
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(one_line(cause)) from cause
            if isinstance(cause, ToolError):
                raise ToolError(str(cause)) from cause
            raise


def _logged_context(ctx: Context[Any, Any] | None) -> dict[str, str | None]:
    """The book and day a call is for, as far as its run context says, for what is logged
    during the call (a traceback, a warning); nothing is checked here."""
    try:
        meta = ctx.request_context.meta if ctx is not None else None
    except ValueError:  # outside a request
        return {}
    try:
        whole = from_meta(meta)
    except ContextError:
        try:
            return {"day": today_from_meta(meta)}
        except ContextError:
            return {}
    return {"signature": whole.signature, "day": whole.today}


def request_context(ctx: Context[Any, Any]) -> RunContext:
    """The run context the agent sent with this call, or a tool error saying what is missing."""
    try:
        return from_meta(ctx.request_context.meta)
    except ContextError as exc:
        raise ToolError(str(exc)) from None


def request_today(ctx: Context[Any, Any]) -> str:
    """Only the simulated today of this call (prices and search need no book)."""
    try:
        return today_from_meta(ctx.request_context.meta)
    except ContextError as exc:
        raise ToolError(str(exc)) from None


class PriceSource:
    """merged.jsonl, loaded once and reloaded when the file changes (a fetch during serve)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        # (the file's stamp, its prices), replaced as one so a reader never pairs them wrongly
        self._loaded: tuple[tuple[int, int, int], PriceBook] | None = None

    def _stamp(self) -> tuple[int, int, int]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            raise ToolError(
                f"the prices service has no price data ({self.path} is missing; "
                "run `ai-trader merge` for this DATA_DIR)"
            ) from None
        return (stat.st_mtime_ns, stat.st_size, stat.st_ino)

    def book(self) -> PriceBook:
        """The current prices, or a tool error saying why there are none."""
        stamp = self._stamp()
        with self._lock:
            if self._loaded is None or self._loaded[0] != stamp:
                try:
                    self._loaded = (stamp, PriceBook.load(self.path))
                except UserError as exc:
                    raise ToolError(f"the price data is unusable: {exc}") from None
            return self._loaded[1]

    async def current(self) -> PriceBook:
        """``book()`` for a tool on the event loop: when the prices are loaded already, one
        ``stat``; a (re)load parses the whole file, so it runs in a worker thread."""
        loaded = self._loaded
        if loaded is not None and loaded[0] == self._stamp():
            return loaded[1]
        return await anyio.to_thread.run_sync(self.book)
