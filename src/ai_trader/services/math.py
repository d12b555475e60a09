"""The math service: arithmetic the model can trust."""

from __future__ import annotations

from mcp.server.mcpserver import MCPServer

from ai_trader.services.common import new_server


def build() -> MCPServer:
    server = new_server("math", "Exact arithmetic: add and multiply two numbers.")

    @server.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers and return the sum."""
        return a + b

    @server.tool()
    def multiply(a: float, b: float) -> float:
        """Multiply two numbers and return the product."""
        return a * b

    return server
