"""The math service: arithmetic the model can trust."""

from __future__ import annotations

import math
from typing import Annotated

from pydantic import Field

from ai_trader.services.common import Service, ToolError

# Finite numbers only, and no strings or booleans passed off as numbers.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def finite(value: float, what: str) -> float:
    """``value``, or a tool error when it overflowed: a result is never null or infinite."""
    if not math.isfinite(value):
        raise ToolError(f"the {what} is too large to represent (overflow)")
    return value


def build() -> Service:
    server = Service("math", "Exact arithmetic: add and multiply two numbers.")

    @server.tool_from
    async def add(a: Number, b: Number) -> float:
        """Add two numbers and return the sum."""
        return finite(a + b, "sum")

    @server.tool_from
    async def multiply(a: Number, b: Number) -> float:
        """Multiply two numbers and return the product."""
        return finite(a * b, "product")

    return server
