"""The dashboard's web app: ``GET /`` (the page), ``/api/summary`` (JSON), ``/metrics``
(Prometheus gauges per model, ``gauges``), ``/health``.

The rules:

* Routes and serving only: the data comes from ``data.Source`` (which reads only what
  changed and keeps the JSON), the page from ``page.Page`` (which renders it again only
  when the data changed).
* Reading the folder runs in a worker thread, never on the event loop, so ``/health``
  always answers, even while a long backtest is read for the first time.
* Every answer is ``Cache-Control: no-store``: the page follows a run as it writes.
* Only requests naming an allowed host in ``Host`` (and ``Origin``, when a browser sends
  one) are answered (``HostGuard``): a page elsewhere cannot read the results through DNS
  rebinding.
* The address comes from the settings (``DASHBOARD_HOST``, ``DASHBOARD_PORT``) or the
  command line (``cli``); a port in use is a one-line error. ``docker stop`` (SIGTERM) and
  Ctrl-C end the server normally, with status 0.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ai_trader import logformat
from ai_trader.dashboard import data, gauges, page
from ai_trader.httpguard import HostGuard
from ai_trader.netutil import listen
from ai_trader.settings import LOOPBACK_NAMES

log = logging.getLogger(__name__)

# Every answer is read fresh: the data changes as a run trades.
NO_STORE = {"Cache-Control": "no-store"}


# --- the app ----------------------------------------------------------------------------------


def build_app(data_dir: Path) -> Starlette:
    source = data.Source(data_dir)
    pages = page.Page()
    figures = gauges.Gauges(source.folder)  # the same folder, read once for both

    # Reading the folder may take a while (a long backtest, a new price file): it runs in
    # a worker thread, so the event loop, and with it /health, keeps answering.
    async def home(request: Request) -> HTMLResponse:
        text = await run_in_threadpool(lambda: pages.render(source.summary()))
        return HTMLResponse(text, headers=NO_STORE)

    async def summary(request: Request) -> Response:
        body = await run_in_threadpool(source.summary_json)
        return Response(body, media_type="application/json", headers=NO_STORE)

    async def metrics(request: Request) -> Response:
        body = await run_in_threadpool(figures.exposition)
        return Response(body, media_type=gauges.CONTENT_TYPE, headers=NO_STORE)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", home),
            Route("/api/summary", summary),
            Route("/metrics", metrics),
            Route("/health", health),
        ]
    )


# --- serving ------------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """A listening socket, or a one-line error naming the port and how to change it."""
    return listen(host, port, "the dashboard", "set DASHBOARD_PORT or --port to another port")


def serve(
    data_dir: Path, host: str, port: int, allowed_hosts: Iterable[str] = LOOPBACK_NAMES
) -> None:
    """Serve the dashboard until SIGINT or SIGTERM, then return (exit status 0).

    Only requests naming an allowed host in Host (and Origin, when a browser sends one) are
    answered: a page elsewhere cannot read the results through DNS rebinding.
    """
    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    class Server(uvicorn.Server):
        # uvicorn re-raises the stopping signal after its graceful shutdown, so `docker
        # stop` would end the container with 143. A stop is the normal end of a server.
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            def stop(signum: int, frame: object) -> None:
                self.force_exit = self.should_exit and signum == signal.SIGINT
                self.should_exit = True

            previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    sock = bind(host, port)
    port = sock.getsockname()[1]  # the one taken, when 0 asked for any free port
    config = uvicorn.Config(
        HostGuard(build_app(data_dir), allowed_hosts),
        log_level="warning",
        # JSON logs: uvicorn's loggers go to the root's JSON handler, not its own.
        log_config=None if logformat.is_json() else LOGGING_CONFIG,
        timeout_graceful_shutdown=2,
        lifespan="off",
    )
    shown = f"[{host}]" if ":" in host else host
    log.info("dashboard: http://%s:%d/ (data: %s)", shown, port, data_dir)
    Server(config).run(sockets=[sock])
    log.info("dashboard: stopped")
