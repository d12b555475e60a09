"""The dashboard's web app: ``GET /`` (the page), ``/api/summary`` (JSON), ``/health``.

Every request looks at the data folder (a stat of each file) and reads only what changed,
in a worker thread so that ``/health`` always answers, so the page follows a run as it
writes. The page is self-contained: inline CSS, the chart as
inline SVG, and a few lines of script that reload it when the data changes (a meta
refresh does the same without script). It works with no network at all.
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import socket
import threading
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from ai_trader.dashboard import data
from ai_trader.dashboard.chart import Series, line_chart
from ai_trader.httpguard import HostGuard
from ai_trader.netutil import listen
from ai_trader.settings import LOOPBACK_NAMES

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8888
REFRESH_SECONDS = 10
NO_STORE = {"Cache-Control": "no-store"}
COMPACT = (",", ":")
# The page lists this many trading days of trades, newest first (the JSON has them all).
TRADE_DAYS_SHOWN = 250


# --- the data, read off the event loop ----------------------------------------------------


def _dumps(value: Any) -> str:
    # Strict JSON: a NaN or an infinity would be a bug upstream, not something to send.
    return json.dumps(value, ensure_ascii=False, allow_nan=False, separators=COMPACT)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class Source:
    """The data folder behind the app. ``data.Folder`` reads only what changed; on top, the
    JSON and the page are kept while the fingerprint is the same, so an unchanged folder
    costs a few stat calls. Called from worker threads, never on the event loop."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.folder = data.Folder(data_dir)
        self._lock = threading.Lock()
        self._json: tuple[str, bytes] | None = None
        self._page: tuple[str, str] | None = None
        # Each model's JSON, by the model's dict (the folder keeps it while unchanged).
        self._models: dict[int, tuple[dict[str, Any], str]] = {}

    def summary(self) -> dict[str, Any]:
        summary = dict(self.folder.summary())  # a copy: the folder keeps its own
        summary["generated"] = _now()
        return summary

    def summary_json(self) -> bytes:
        summary = self.folder.summary()
        with self._lock:
            if self._json is None or self._json[0] != summary["fingerprint"]:
                self._json = (summary["fingerprint"], self._encode(summary))
            body = self._json[1]
        # The one field that changes on every request, put in front of the kept body.
        return b'{"generated":' + json.dumps(_now()).encode() + b"," + body[1:]

    def _encode(self, summary: Mapping[str, Any]) -> bytes:
        """The summary as JSON, each model's part encoded again only when it changed."""
        parts, kept = [], {}
        for model in summary["signatures"]:
            found = self._models.get(id(model))
            if found is None or found[0] is not model:
                found = (model, _dumps(model))
            kept[id(model)] = found
            parts.append(found[1])
        self._models = kept
        rest = _dumps({k: v for k, v in summary.items() if k != "signatures"})
        return f'{rest[:-1]},"signatures":[{",".join(parts)}]}}'.encode()

    def page(self) -> str:
        summary = self.summary()
        with self._lock:
            if self._page is None or self._page[0] != summary["fingerprint"]:
                self._page = (summary["fingerprint"], page_body(summary))
            body = self._page[1]
        return page_head(summary) + body


# --- the page -----------------------------------------------------------------------------


def _money(value: float | None) -> str:
    return f"{value:,.2f}" if value is not None else "n/a"


def _percent(value: float | None) -> str:
    return f"{value:+.2%}" if value is not None else "n/a"


def _signed_class(value: float | None) -> str:
    if value is None or value == 0:
        return ""
    return ' class="up"' if value > 0 else ' class="down"'


def chart_svg(summary: Mapping[str, Any]) -> str:
    series = [
        Series(m["signature"], [(p["date"], p["value"]) for p in m["series"]])
        for m in summary["signatures"]
    ]
    bench = summary["benchmark"]
    if bench["points"]:
        series.append(
            Series(
                bench["symbol"], [(p["date"], p["value"]) for p in bench["points"]], benchmark=True
            )
        )
    return line_chart(series, title="Portfolio value against QQQ (scaled to the same start)")


def _overview(models: list[dict[str, Any]]) -> str:
    rows = "".join(
        f'<tr><td><a href="#{escape(m["signature"])}">{escape(m["signature"])}</a></td>'
        f"<td>{m['days']}</td><td>{escape(m['start_date'] or '')}</td>"
        f"<td>{escape(m['last_date'] or '')}</td>"
        f"<td class=num>{_money(m['initial_value'])}</td>"
        f"<td class=num>{_money(m['final_value'])}</td>"
        f"<td class=num><span{_signed_class(m['total_return'])}>"
        f"{_percent(m['total_return'])}</span></td>"
        f"<td class=num><span{_signed_class(m['benchmark_return'])}>"
        f"{_percent(m['benchmark_return'])}</span></td></tr>"
        for m in models
    )
    return (
        "<table class=overview><thead><tr><th>model</th><th>days</th><th>start</th>"
        "<th>last day</th><th class=num>start value</th><th class=num>value</th>"
        "<th class=num>return</th><th class=num>QQQ</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
    )


def _positions(model: Mapping[str, Any]) -> str:
    rows = [
        f"<tr><td>{escape(h['symbol'])}</td><td class=num>{h['shares']:g}</td>"
        f"<td class=num>{_money(h['price'])}</td><td class=num>{_money(h['value'])}</td></tr>"
        for h in model["holdings"]
    ]
    rows.append(
        f"<tr><td>cash</td><td></td><td></td><td class=num>{_money(model['cash'])}</td></tr>"
    )
    return (
        f"<table class=positions><caption>Positions after {escape(model['last_date'] or '-')}"
        "</caption><thead><tr><th>symbol</th><th class=num>shares</th>"
        "<th class=num>price</th><th class=num>value</th></tr></thead>"
        f"<tbody>{''.join(rows)}</tbody>"
        f"<tfoot><tr><th>total</th><th></th><th></th>"
        f"<th class=num>{_money(model['final_value'])}</th></tr></tfoot></table>"
    )


def _trades(model: Mapping[str, Any]) -> str:
    values = {p["date"]: p["value"] for p in model["series"]}
    rows = []
    older = len(model["trades"]) - TRADE_DAYS_SHOWN
    for day in reversed(model["trades"][-TRADE_DAYS_SHOWN:]):
        done = [
            f"<span class={escape(t['action'])}>{escape(t['action'])} {t['amount']} "
            f"{escape(t['symbol'])}</span>"
            + (f" @ {t['price']:,.2f}" if t["price"] is not None else "")
            for t in day["trades"]
        ]
        rows.append(
            f"<tr><td class=nowrap>{escape(day['date'])}</td>"
            f"<td>{'; '.join(done) if done else '<span class=quiet>no trade</span>'}</td>"
            f"<td class=num>{_money(values.get(day['date']))}</td></tr>"
        )
    if older > 0:
        rows.append(
            f"<tr><td colspan=3 class=quiet>and {older} earlier day(s): see "
            "<a href=api/summary>the JSON</a></td></tr>"
        )
    body = "".join(rows) or "<tr><td colspan=3 class=quiet>no trading day yet</td></tr>"
    return (
        "<table class=trades><caption>Trades by day (newest first; fills at the open)"
        "</caption><thead><tr><th>date</th><th>trades</th><th class=num>value</th>"
        f"</tr></thead><tbody>{body}</tbody></table>"
    )


STYLE = """
body{font-family:system-ui,sans-serif;margin:24px auto;max-width:1000px;color:#111827;
padding:0 16px}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}
.meta{color:#6b7280;font-size:13px;margin:0 0 16px}
.notice{background:#fef9c3;border:1px solid #fde68a;padding:8px 12px;margin:8px 0;
border-radius:4px}
.empty{background:#eff6ff;border-color:#bfdbfe;font-size:15px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:14px}
th,td{padding:4px 10px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top}
caption{text-align:left;font-weight:600;padding:4px 0}
.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.nowrap{white-space:nowrap}
.up{color:#15803d}.down{color:#b91c1c}.buy{color:#1d4ed8}.sell{color:#b45309}
.quiet{color:#9ca3af}.grid{display:flex;gap:32px;flex-wrap:wrap}
.chart{max-width:100%;height:auto;border:1px solid #e5e7eb;border-radius:4px}
details{font-size:13px;margin:8px 0}code{font-size:12px}
"""

# Reload when the data changes; with no script, the meta refresh in <noscript> does it.
SCRIPT = """
(function () {
  var current = document.documentElement.dataset.fingerprint;
  setInterval(function () {
    fetch("api/summary", {cache: "no-store"}).then(function (r) { return r.json(); })
      .then(function (s) { if (s.fingerprint !== current) { location.reload(); } })
      .catch(function () {});
  }, REFRESH_MS);
})();
""".replace("REFRESH_MS", str(REFRESH_SECONDS * 1000))


def page_head(summary: Mapping[str, Any]) -> str:
    """The page up to its data: the head, the title and when the data was read."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en" data-fingerprint="{escape(summary.get("fingerprint", ""))}">'
        '<head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<noscript><meta http-equiv="refresh" content="{REFRESH_SECONDS}"></noscript>'
        f"<title>ai-trader results</title><style>{STYLE}</style></head><body>"
        "<h1>ai-trader results</h1>"
        f"<p class=meta>Data: <code>{escape(summary['data_dir'])}</code> · prices "
        f"{escape(summary['prices']['first_date'] or '-')} to "
        f"{escape(summary['prices']['last_date'] or '-')} · read "
        f"{escape(summary.get('generated', ''))} · <a href=api/summary>JSON</a></p>"
    )


def page_body(summary: Mapping[str, Any]) -> str:
    """The rest of the page: notices, skipped lines, the chart and each model's tables."""
    models = summary["signatures"]
    notices = []
    if summary["empty"]:
        notices.append(
            "<p class='notice empty' id=empty-state><strong>No results yet.</strong> "
            f"Nothing to show from <code>{escape(summary['data_dir'])}</code>: start a run "
            "(<code>docker compose up</code>) and this page fills in as the agents trade.</p>"
        )
    for running in summary.get("running") or []:
        day = f" is trading {escape(running['day'])}" if running.get("day") else " is running"
        notices.append(
            f"<p class=notice>Running now: <strong>{escape(running['signature'])}</strong>"
            f"{day}.</p>"
        )
    notices += [f"<p class=notice>{escape(text)}</p>" for text in summary["notices"]]
    skipped = ""
    if summary["skipped"]:
        items = "".join(
            f"<li><code>{escape(s['file'])}{':' + str(s['line']) if s['line'] else ''}</code>"
            f": {escape(s['reason'])}</li>"
            for s in summary["skipped"]
        )
        skipped = (
            f"<details id=skipped open><summary>{len(summary['skipped'])} skipped line(s)"
            f"</summary><ul>{items}</ul></details>"
        )
    sections = "".join(
        f'<section id="{escape(m["signature"])}"><h2>{escape(m["signature"])}: '
        f"<span{_signed_class(m['total_return'])}>{_percent(m['total_return'])}</span> "
        f"<small class=quiet>(QQQ {_percent(m['benchmark_return'])})</small></h2>"
        f"<div class=grid>{_positions(m)}{_trades(m)}</div></section>"
        for m in models
    )
    body = f"{chart_svg(summary)}{_overview(models)}{sections}" if models else chart_svg(summary)
    return f"{''.join(notices)}{skipped}{body}<script>{SCRIPT}</script></body></html>"


def render_page(summary: Mapping[str, Any]) -> str:
    """The whole page of a summary."""
    return page_head(summary) + page_body(summary)


# --- the app ----------------------------------------------------------------------------------


def build_app(data_dir: Path) -> Starlette:
    source = Source(data_dir)

    # Reading the folder may take a while (a long backtest, a new price file): it runs in
    # a worker thread, so the event loop, and with it /health, keeps answering.
    async def page(request: Request) -> HTMLResponse:
        text = await run_in_threadpool(source.page)
        return HTMLResponse(text, headers={"Cache-Control": "no-store"})

    async def summary(request: Request) -> Response:
        body = await run_in_threadpool(source.summary_json)
        return Response(body, media_type="application/json", headers=NO_STORE)

    async def health(request: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/summary", summary),
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
    config = uvicorn.Config(
        HostGuard(build_app(data_dir), allowed_hosts),
        log_level="warning",
        timeout_graceful_shutdown=2,
        lifespan="off",
    )
    shown = f"[{host}]" if ":" in host else host
    log.info("dashboard: http://%s:%d/ (data: %s)", shown, port, data_dir)
    Server(config).run(sockets=[sock])
    log.info("dashboard: stopped")
