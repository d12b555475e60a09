"""Run the four services in one process.

One process serving four ports starts in about the time of one import of the
MCP SDK; four processes pay that import four times on two cores (measured in
the bench session). All four share one event loop and stop together on
SIGTERM or SIGINT.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import socket
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ai_trader import logformat
from ai_trader.httpguard import HostGuard
from ai_trader.layout import merged_file
from ai_trader.netutil import listen
from ai_trader.settings import PORT_VARIABLES, SERVICE_NAMES, Settings

if TYPE_CHECKING:
    from ai_trader.market.base import Market
    from ai_trader.services.common import Service

log = logging.getLogger(__name__)


def build_apps(
    settings: Settings, names: Sequence[str] = SERVICE_NAMES, market: Market | None = None
) -> dict[str, HostGuard]:
    """The services named, each behind its Host and Origin guard; trade and prices serve
    ``market`` (the US one by default)."""
    from mcp.server.transport_security import TransportSecuritySettings

    from ai_trader.market.us import US_DAILY
    from ai_trader.services import math, prices, search, trade

    served = market or US_DAILY
    builders: dict[str, Callable[[], Service]] = {
        "math": math.build,
        "search": lambda: search.build(settings),
        "trade": lambda: trade.build(settings.data_dir, served),
        "prices": lambda: prices.build(merged_file(settings.data_dir), served),
    }
    servers = {name: builders[name]() for name in names}
    # Stateless: the tools keep no per-session state (the run context comes with each
    # call), so there are no sessions for a client to pile up and exhaust. Plain JSON
    # replies rather than an SSE stream per call: the tools send no progress
    # notifications, and JSON costs about 1 ms less a call (measured). Host and Origin
    # are checked by HostGuard for every route, whatever the bind address, so the SDK's
    # own check (on only for a loopback bind, and without port-less Host) is off.
    apps = {
        name: HostGuard(
            server.streamable_http_app(
                host=settings.service_host,
                json_response=True,
                stateless_http=True,
                transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
            ),
            settings.allowed_hosts,
        )
        for name, server in servers.items()
    }
    # Everything built so far lives as long as the process: keep it out of the
    # collector's way on every request.
    gc.freeze()
    return apps


class ClientGone(logging.Filter):
    """A client that closes its connection before its request is read (a health check that
    its own timeout ended, on a loaded machine) is no fault of ours: the SDK logs it as an
    error with a traceback; this makes it one line at INFO."""

    def filter(self, record: logging.LogRecord) -> bool:
        from starlette.requests import ClientDisconnect

        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, ClientDisconnect):
            record.msg, record.args = GONE, ()
            record.exc_info, record.exc_text = None, None
            record.levelno, record.levelname = logging.INFO, "INFO"
        return True


GONE = "serve: a client closed its connection before its request was read"
# Where the MCP SDK logs a request it could not read.
SDK_REQUEST_LOGGER = "mcp.server.streamable_http"


def bind(name: str, host: str, port: int) -> socket.socket:
    """A listening socket for one service (on a free port the system picks when ``port`` is 0),
    or a one-line error naming the port and its variable."""
    return listen(host, port, f"the {name} service", f"set {PORT_VARIABLES[name]} to another port")


class _Server(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._stopping = asyncio.Event()

    # The launcher handles signals once for all four servers; uvicorn's own
    # handler would be replaced by whichever server started last.
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def stop(self) -> None:
        self.should_exit = True
        self._stopping.set()

    async def main_loop(self) -> None:
        # uvicorn notices should_exit on its next tick, up to 0.1 s later; a stop ends the
        # loop at once. Its ticks go on until then (they refresh the Date header).
        ticking = asyncio.ensure_future(super().main_loop())
        stopping = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({ticking, stopping}, return_when=asyncio.FIRST_COMPLETED)
        for task in (ticking, stopping):
            task.cancel()
        await asyncio.gather(ticking, stopping, return_exceptions=True)


async def serve(
    settings: Settings, names: Sequence[str] = SERVICE_NAMES, market: Market | None = None
) -> None:
    """Serve the services named (all four by default) until SIGTERM or SIGINT."""
    logging.getLogger(SDK_REQUEST_LOGGER).addFilter(ClientGone())
    sockets = {name: bind(name, settings.service_host, settings.ports[name]) for name in names}
    apps = build_apps(settings, names, market)
    servers = {
        name: _Server(
            uvicorn.Config(
                apps[name],
                log_level="warning",
                # JSON logs: uvicorn's loggers go to the root's JSON handler, not its own.
                log_config=None if logformat.is_json() else LOGGING_CONFIG,
                timeout_graceful_shutdown=2,
                lifespan="on",
            )
        )
        for name in names
    }
    loop = asyncio.get_running_loop()

    def stop(sig: signal.Signals) -> None:
        log.info("serve: %s received, stopping the services", sig.name)
        for server in servers.values():
            server.stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop, sig)
    tasks = [asyncio.create_task(servers[n].serve(sockets=[sockets[n]])) for n in names]

    async def announce() -> None:
        while not all(s.started for s in servers.values()):
            if any(t.done() for t in tasks):
                return
            await asyncio.sleep(0.02)
        # The bound ports, not the settings: a port of 0 is one the system picked.
        listing = ", ".join(f"{n} :{sockets[n].getsockname()[1]}" for n in names)
        log.info("serve: listening on %s (%s)", settings.service_host, listing)

    await asyncio.gather(announce(), *tasks)
    log.info("serve: all services stopped")
