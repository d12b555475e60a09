"""The agent's side of MCP: one client per service, tools discovered by listing them, and
the run context sent with every call."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any, cast

from mcp import Client, MCPError
from mcp.types import CONNECTION_CLOSED, REQUEST_TIMEOUT, RequestParamsMeta
from pydantic import ValidationError

from ai_trader.context import RunContext
from ai_trader.errors import RunFailed, UserError, describe
from ai_trader.settings import SERVICE_NAMES, Settings

log = logging.getLogger(__name__)

# Seconds a single tool call may take before its service counts as not answering.
CALL_TIMEOUT = 60.0


class ToolRefused(Exception):
    """The tool answered with an error (``isError``) or an answer that breaks its schema;
    the message is the reason, for the model to read."""


class ServiceDown(RunFailed):
    """A service stopped answering: the day cannot be completed."""


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    service: str


def _text_of(result: Any) -> str:
    texts = [getattr(part, "text", "") for part in getattr(result, "content", []) or []]
    return "\n".join(t for t in texts if t)


def result_value(result: Any) -> Any:
    """The plain value of a successful CallToolResult: its structured content (unwrapped
    when it is a bare ``{"result": x}``), or its text parsed as JSON."""
    structured = getattr(result, "structured_content", None)
    if isinstance(structured, dict):
        if set(structured) == {"result"}:
            return structured["result"]
        return structured
    text = _text_of(result)
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


def _leaf(exc: BaseException) -> BaseException:
    """The first real error inside (possibly nested) exception groups."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc


class _Link:
    """One MCP client, held open by a task of its own.

    The SDK's client runs its transport in a task group entered by whoever opens it; when
    the transport fails (the service died), the group cancels that task. Held here, that
    task is this link's and not the runner's: the call in flight then fails with
    "connection closed" and the runner reports which service stopped answering.
    """

    def __init__(self, service: str, url: str) -> None:
        self.service = service
        self.url = url
        self.client: Client | None = None
        self._closing = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def open(self) -> list[Any]:
        """Connect and list the tools, or UserError when the service does not answer."""
        ready: asyncio.Future[list[Any]] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._hold(ready), name=f"mcp-{self.service}")
        waiting: set[asyncio.Future[Any]] = {ready, self._task}
        await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if not ready.done() or ready.cancelled():
            await self.close()
            raise UserError(
                f"the {self.service} service does not answer at {self.url}; "
                "start the services with `ai-trader serve`"
            )
        return ready.result()

    async def _hold(self, ready: asyncio.Future[list[Any]]) -> None:
        async with Client(self.url, read_timeout_seconds=CALL_TIMEOUT) as client:
            listing = await client.list_tools()
            self.client = client
            ready.set_result(list(listing.tools))
            await self._closing.wait()

    @property
    def down(self) -> bool:
        return self._task is not None and self._task.done()

    async def close(self) -> None:
        self._closing.set()
        if self._task is None:
            return
        try:
            await self._task
        except (Exception, ExceptionGroup) as error:
            # Closing a client whose service has gone fails too; what the run reports is
            # the failure that stopped it, not the noise of hanging up.
            log.debug("closing the %s client: %r", self.service, error)


class Toolbox:
    """Open clients to the four services; ``call`` routes a tool name to its service."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tools: dict[str, ToolSpec] = {}
        self._links: dict[str, _Link] = {}

    async def __aenter__(self) -> Toolbox:
        try:
            for service in SERVICE_NAMES:
                link = _Link(service, self.settings.service_url(service))
                self._links[service] = link
                for tool in await link.open():
                    self.tools[tool.name] = ToolSpec(
                        tool.name, tool.description or "", dict(tool.input_schema or {}), service
                    )
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        for link in self._links.values():
            await link.close()

    async def call(
        self, name: str, arguments: dict[str, Any], context: RunContext | None = None
    ) -> Any:
        """The tool's value; ToolRefused with the reason when it refuses; ServiceDown when
        its service stops answering."""
        spec = self.tools.get(name)
        if spec is None:
            raise ToolRefused(f"no tool named {name!r}")
        link = self._links[spec.service]

        def down(detail: str) -> ServiceDown:
            return ServiceDown(
                f"the {spec.service} service stopped answering at {link.url} ({detail})"
            )

        if link.client is None or link.down:
            raise down("its connection had already failed")
        try:
            meta = cast(RequestParamsMeta, context.to_meta()) if context else None
            result = await link.client.call_tool(name, arguments, meta=meta)
        except MCPError as exc:
            if link.down or exc.code in (CONNECTION_CLOSED, REQUEST_TIMEOUT):
                raise down(str(exc)) from None
            # A JSON-RPC error answer: the service is up and refused the request itself.
            raise ToolRefused(f"{name}: {exc}") from None
        except (RuntimeError, ValidationError) as exc:
            # The client checks answers against the tool's output schema (RuntimeError)
            # and the protocol (ValidationError): the service answered, but wrongly.
            raise ToolRefused(f"{name} gave an invalid answer: {describe(exc)}") from None
        except (Exception, ExceptionGroup) as exc:
            leaf = _leaf(exc)
            raise down(f"{type(leaf).__name__}: {describe(leaf)}") from None
        if result.is_error:
            raise ToolRefused(_text_of(result) or f"{name} failed")
        return result_value(result)
