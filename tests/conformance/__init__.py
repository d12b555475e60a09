"""`nox -s conformance`: the container checked by MCP clients this project did not write."""
