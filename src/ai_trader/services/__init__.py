"""The four MCP tool services (math, search, trade, prices) and the launcher that runs them."""
