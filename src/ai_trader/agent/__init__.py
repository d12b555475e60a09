"""The trading agent: a model (or the built-in strategy) acting day by day through MCP tools."""
