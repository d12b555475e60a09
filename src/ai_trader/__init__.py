"""ai-trader: the AI-Trader benchmark, packaged.

LLM agents (or a built-in deterministic strategy) trade the NASDAQ-100 day by
day through four MCP tool services: math, search, trade and prices.
"""

__version__ = "0.1.1.dev0"
