"""What the container suites share (integration and conformance): the compose driver."""
