"""The agent's side of MCP: one client session per service, tools discovered by listing them."""

from __future__ import annotations

import json
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import Any

from mcp import Client

from ai_trader.errors import UserError
from ai_trader.services.launcher import SERVICES
from ai_trader.settings import Settings


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str
    input_schema: dict[str, Any]
    service: str


def result_value(result: Any) -> Any:
    """The plain value of a CallToolResult: its structured content, or its text parsed as JSON."""
    structured = getattr(result, "structured_content", None)
    if isinstance(structured, dict):
        if set(structured) == {"result"}:
            return structured["result"]
        return structured
    texts = [getattr(part, "text", "") for part in getattr(result, "content", []) or []]
    text = "\n".join(t for t in texts if t)
    if getattr(result, "is_error", False):
        return {"error": text or "the tool failed"}
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


class Toolbox:
    """Open sessions to the four services; ``call`` routes a tool name to its service."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.tools: dict[str, ToolSpec] = {}
        self._clients: dict[str, Client] = {}
        self._stack = AsyncExitStack()

    async def __aenter__(self) -> Toolbox:
        try:
            for service in SERVICES:
                url = self.settings.service_url(service)
                try:
                    client = await self._stack.enter_async_context(
                        Client(url, read_timeout_seconds=60)
                    )
                except (Exception, BaseExceptionGroup):
                    raise UserError(
                        f"the {service} service does not answer at {url}; "
                        "start the services with `ai-trader serve`"
                    ) from None
                self._clients[service] = client
                for tool in (await client.list_tools()).tools:
                    self.tools[tool.name] = ToolSpec(
                        tool.name, tool.description or "", dict(tool.input_schema or {}), service
                    )
        except BaseException:
            await self._stack.aclose()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.aclose()

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        spec = self.tools.get(name)
        if spec is None:
            return {"error": f"no tool named {name!r}"}
        return result_value(await self._clients[spec.service].call_tool(name, arguments))
