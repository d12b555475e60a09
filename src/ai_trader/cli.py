"""The ``ai-trader`` command: one subcommand for each step the container runs.

Heavy imports (the MCP SDK, openai) happen inside the subcommands, so ``--help``
and the health check stay fast.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn, TypeVar

from ai_trader import __version__, logformat
from ai_trader.errors import RunFailed, UserError, from_os_error
from ai_trader.settings import (
    SERVICE_NAMES,
    Settings,
    job_count,
    listening_port_number,
    load_settings,
    services_named,
)

log = logging.getLogger("ai_trader")

if TYPE_CHECKING:
    from ai_trader.market.base import Market
    from ai_trader.market.fetching import FetchReport
    from ai_trader.shards import Shard

ENVIRONMENT_HELP = """\
settings come from the environment (see .env.example): DATA_DIR, ALPHAADVANTAGE_API_KEY,
ALPHAVANTAGE_BASE_URL, OPENAI_API_KEY, OPENAI_API_BASE, JINA_API_KEY, MATH_HTTP_PORT,
SEARCH_HTTP_PORT, TRADE_HTTP_PORT, GETPRICE_HTTP_PORT, SERVICE_HOST, AI_TRADER_ALLOWED_HOSTS,
AGENT_JOBS, AI_TRADER_LOG_FORMAT (text, or json: one JSON object per line on stdout), ...
"""


def cmd_fetch(args: argparse.Namespace, settings: Settings) -> int:
    market = _prices_market(args, settings)
    with _price_writer(settings):
        return _fetch(settings, market)


def _market(args: argparse.Namespace) -> Market:
    """The market ``--market`` names (the US one by default), or a one-line error."""
    from ai_trader.market.markets import MARKETS, market_by_key

    found = market_by_key(args.market)
    if found is None:
        raise UserError(f"--market: unknown market {args.market!r} (known: {', '.join(MARKETS)})")
    return found


def _prices_market(args: argparse.Namespace, settings: Settings) -> Market:
    """``_market``, refused with one line when DATA_DIR holds another market's prices:
    fetch and merge never write one market's prices beside another's."""
    from ai_trader.market.folder import other_market

    market = _market(args)
    problem = other_market(settings.data_dir, market.key)
    if problem:
        raise UserError(problem)
    return market


@contextlib.contextmanager
def _price_writer(settings: Settings) -> Iterator[None]:
    """Hold the price files' lock and clear what a killed write left behind."""
    from ai_trader.lock import prices_lock, remove_stale_temporaries

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with prices_lock(settings.data_dir):
        for path in remove_stale_temporaries(settings.data_dir):
            log.info("removed %s, left by an interrupted write", path.name)
        yield


# Each source of real prices (``Market.source``): the setting that enables it, how a log line
# names what is missing without it, and the fetch itself.
_SOURCE_KEYS = {
    "alphavantage": ("alphavantage_api_key", "no Alpha Vantage key"),
    "alphavantage-crypto": (
        "alphavantage_api_key",
        "no Alpha Vantage key (set ALPHAADVANTAGE_API_KEY)",
    ),
    "alphavantage-hourly": (
        "alphavantage_api_key",
        "no Alpha Vantage key (set ALPHAADVANTAGE_API_KEY)",
    ),
    "tushare": ("tushare_token", "no Tushare token (set TUSHARE_TOKEN)"),
    "tushare-hourly": ("tushare_token", "no Tushare token (set TUSHARE_TOKEN)"),
}


def _fetch(settings: Settings, market: Market) -> int:
    from ai_trader.market import sample

    symbols = market.all_symbols
    found = _SOURCE_KEYS.get(market.source or "")
    if found is None or not getattr(settings, found[0]):
        written = sample.generate_sample(symbols, settings.data_dir, market=market)
        why = found[1] if found else f"no data source for {market.key}"
        log.info(
            "fetch: %s; offline SYNTHETIC sample: %d file(s) written, %d already present",
            why,
            len(written),
            len(symbols) - len(written),
        )
        return 0
    if market.source in ("tushare", "tushare-hourly"):
        report = _fetch_tushare(settings, market)
    else:
        report = _fetch_alphavantage(settings, market)
    log.info(
        "fetch: %d fetched, %d already current, %d failed",
        len(report.fetched),
        len(report.current),
        len(report.errors),
    )
    for symbol, reason in sorted(report.errors.items()):
        log.warning("fetch: %s: %s", symbol, reason)
    failed = 1 if report.errors else 0
    if market.source == "alphavantage-crypto":
        failed = max(failed, _write_basket(settings, market))
    return failed


def _fetch_alphavantage(settings: Settings, market: Market) -> FetchReport:
    from datetime import UTC, datetime

    from ai_trader.market import alphavantage

    assert settings.alphavantage_api_key  # _fetch asked
    symbols, series, today = market.all_symbols, alphavantage.TIME_SERIES_DAILY, None
    if market.source == "alphavantage-hourly":
        series = alphavantage.intraday(market.slots)
    elif market.source == "alphavantage-crypto":
        # The coins only (the benchmark is derived from them); days are UTC days.
        symbols, series = market.symbols, alphavantage.DIGITAL_CURRENCY_DAILY
        today = datetime.now(UTC).date()
    return alphavantage.fetch_all(
        symbols,
        settings.data_dir,
        api_key=settings.alphavantage_api_key,
        base_url=settings.alphavantage_base_url,
        min_interval=settings.alphavantage_min_interval,
        today=today,
        series=series,
    )


def _write_basket(settings: Settings, market: Market) -> int:
    """Derive the crypto benchmark from the coins' files: 0 when written, else 1 and one
    line saying why (no index of fewer coins is written)."""
    from ai_trader.market.basket import BasketRefused, write_basket

    try:
        write_basket(settings.data_dir, market.symbols, market.benchmark)
    except BasketRefused as exc:
        log.error("fetch: %s not written: %s", market.benchmark, exc)
        return 1
    log.info("fetch: %s derived from the %d coins", market.benchmark, len(market.symbols))
    return 0


def _fetch_tushare(settings: Settings, market: Market) -> FetchReport:
    from ai_trader.market import tushare

    assert settings.tushare_token  # _fetch asked
    return tushare.fetch_all(
        market.all_symbols,
        settings.data_dir,
        index=market.benchmark,
        token=settings.tushare_token,
        base_url=settings.tushare_base_url,
        min_interval=settings.tushare_min_interval,
        feed=tushare.minutes(market.slots) if market.slots else tushare.DAILY,
    )


def cmd_merge(args: argparse.Namespace, settings: Settings) -> int:
    from ai_trader.market.merge import merge

    market = _prices_market(args, settings)
    with _price_writer(settings):
        report = merge(settings.data_dir, market.all_symbols, market.series_key)
    log.info(
        "merge: %d symbol(s) written to %s, %d kept from the previous merge",
        len(report.merged) + len(report.kept),
        report.path,
        len(report.kept),
    )
    for name, reason in sorted(report.skipped.items()):
        log.warning("merge: skipped %s: %s", name, reason)
    if report.malformed:
        names = ", ".join(sorted(report.malformed))
        raise RunFailed(f"unusable price file(s): {names}; fetch them again or remove them")
    return 0


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from ai_trader.services.launcher import serve

    asyncio.run(serve(settings, args.only, _market(args)))
    return 0


def cmd_wait_ready(args: argparse.Namespace, settings: Settings) -> int:
    # Standard library only, as the health check: see ai_trader.health.
    from ai_trader.health import wait_ready

    timeout = args.timeout if args.timeout is not None else settings.ready_timeout
    urls = settings.service_urls(args.only)
    down = wait_ready(urls, timeout)
    if down:
        detail = ", ".join(f"{n} ({urls[n]})" for n in down)
        raise UserError(f"not ready after {timeout:g} s: {detail}")
    log.info("wait-ready: %s", _which(args.only))
    return 0


def cmd_healthcheck(args: argparse.Namespace, settings: Settings) -> int:
    # Standard library only: this runs every few seconds in the container.
    from ai_trader.health import mcp_exchange

    for name, url in settings.service_urls(args.only).items():
        problem = mcp_exchange(url, name, args.timeout)
        if problem:
            raise RunFailed(f"the {name} service {problem}")
    return 0


def _shard_option(text: str) -> Shard:
    from ai_trader.shards import shard_of  # the config's models load only for `run`

    try:
        return shard_of(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def repeat_count(text: str) -> int:
    """``--repeat``: a whole number, 1 or more."""
    if not text.isdigit() or int(text) < 1:
        raise ValueError("must be a whole number, 1 or more")
    return int(text)


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    from ai_trader.agent import builtin
    from ai_trader.config import BUILTIN_PREFIX, load_config

    # The services' addresses and the config before the slow imports (openai, the MCP
    # SDK): a service port of 0 (serve's alone) or a bad key is reported at once.
    settings.service_urls()
    config = load_config(args.config, settings.config_overrides)
    from ai_trader.market.markets import market_for

    market_for(config.market, config.frequency, where=f"config {args.config}")
    if config.ignored:
        log.info("config: %s read and not used (upstream's keys)", ", ".join(config.ignored))
    for index, model in enumerate(config.models):
        if model.enabled and builtin.unknown([model.basemodel]):
            known = ", ".join(f"{BUILTIN_PREFIX}{name}" for name in builtin.STRATEGIES)
            raise UserError(
                f"config {args.config}: models.{index}.basemodel: no built-in strategy "
                f"{model.basemodel!r} (known: {known})"
            )
    from ai_trader.agent.runner import Runner, format_summary, summary_rows, unpriced_errors

    runner = Runner(
        config,
        settings,
        jobs=args.jobs,
        allow_changes=args.allow_changes,
        source=str(args.config),
        repeat=args.repeat,
        models=args.model or (),
        shard=args.shard,
        claim=args.claim,
    )
    if not runner.models:
        log.info(
            "run: shard %s has no model to trade (the books are dealt round-robin)", args.shard
        )
        return 0
    outcome = asyncio.run(runner.run())
    if outcome.results and logformat.is_json():
        log.info("run: summary", extra={"summary": summary_rows(outcome.results)})
    elif outcome.results:
        print(format_summary(outcome.results), flush=True)
    failures = [*outcome.failures, *unpriced_errors(outcome.results)]
    for failure in failures:
        _error(args, failure)
    return max((failure.exit_code for failure in failures), default=0)


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    from ai_trader import report
    from ai_trader.fsutil import atomic_write_text

    books = args.books.expanduser().resolve() if args.books else None
    board = report.build(settings.data_dir, books, risk_free_rate=args.risk_free_rate)
    text = report.render(board, args.format)
    if args.output is None:
        sys.stdout.write(text)
    else:
        atomic_write_text(args.output, text)
        log.info("report: %d row(s) written to %s", len(board.rows), args.output)
    return 0


def _rate(text: str) -> float:
    """An annual rate as a fraction (0.04 for 4%), above -1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("must be a number, e.g. 0.04 for 4%") from None
    if not -1 < value < 1 or value != value:
        raise argparse.ArgumentTypeError("must be a fraction between -1 and 1, e.g. 0.04")
    return value


def cmd_dashboard(args: argparse.Namespace, settings: Settings) -> int:
    from ai_trader.dashboard.app import serve

    host = args.host or settings.dashboard_host
    port = args.port if args.port is not None else settings.dashboard_port
    serve(settings.data_dir, host, port, settings.allowed_hosts)
    return 0


T = TypeVar("T")


def _option(check: Callable[[str], T]) -> Callable[[str], T]:
    """A settings rule as an argparse type: its message, not argparse's generic one."""

    def parse(text: str) -> T:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def _which(names: Sequence[str]) -> str:
    """Who answered, for wait-ready's line."""
    if tuple(names) == SERVICE_NAMES:
        return "all four services answer"
    if len(names) == 1:
        return f"the {names[0]} service answers"
    return f"the {', '.join(names)} services answer"


def _only(command: argparse.ArgumentParser, verb: str) -> None:
    command.add_argument(
        "--only",
        type=_option(services_named),
        default=SERVICE_NAMES,
        metavar="NAMES",
        help=f"{verb} only these services, separated by commas ({', '.join(SERVICE_NAMES)}); "
        "for a service in a container of its own",
    )


def _market_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--market",
        default="us",
        metavar="MARKET",
        help="the market whose prices this DATA_DIR holds: us (default), us-hourly, cn, "
        "cn-hourly, crypto; one data folder per market and frequency",
    )


def _known_error(exc: BaseException) -> UserError | None:
    """The one-line error a failure stands for, looking inside exception groups (the MCP
    client's task groups wrap what they raise); None for anything else (a bug)."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]
    if isinstance(exc, UserError):
        return exc
    if isinstance(exc, OSError):
        return from_os_error(exc)
    return None


def _error(args: argparse.Namespace, exc: UserError) -> None:
    if args.verbose:
        log.debug("details", exc_info=exc)
    if logformat.is_json():
        log.error("%s", exc)
    else:
        print(f"ai-trader {args.command}: error: {exc}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """argparse's parser, whose usage errors are one JSON line in JSON mode."""

    def error(self, message: str) -> NoReturn:
        if not logformat.is_json():
            super().error(message)
        log.error("%s: %s", self.prog, message)
        sys.exit(2)


def _command_in(argv: Sequence[str]) -> str:
    """The command a command line names (its first word that is no option), for the lines
    logged before it is parsed."""
    return next((word for word in argv if not word.startswith("-")), "ai-trader")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ai-trader",
        description="The AI-Trader benchmark: agents trade the NASDAQ-100 through MCP tools.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    fetch = commands.add_parser(
        "fetch",
        help="download daily prices (or write the offline sample when no key is set)",
        description="Download the market's daily prices into DATA_DIR, skipping files that "
        "are current: the US (the default) and crypto from Alpha Vantage "
        "(ALPHAADVANTAGE_API_KEY; TIME_SERIES_DAILY, DIGITAL_CURRENCY_DAILY in USD for "
        "USDT, the BASKET index derived from the coins), China A-shares from Tushare Pro "
        "(TUSHARE_TOKEN). Without the key or token, write a deterministic SYNTHETIC sample "
        "instead. Exits 1 when some symbols failed.",
    )
    _market_option(fetch)
    fetch.set_defaults(handler=cmd_fetch)
    merge = commands.add_parser(
        "merge",
        help="merge the price files into DATA_DIR/merged.jsonl",
        description="Write merged.jsonl (one line per symbol, the original AI-Trader shape).",
    )
    _market_option(merge)
    merge.set_defaults(handler=cmd_merge)
    serve = commands.add_parser(
        "serve",
        help="run the four MCP services (math, search, trade, prices) until stopped",
        description="Serve math, search, trade and prices over streamable HTTP at /mcp on "
        "MATH_HTTP_PORT, SEARCH_HTTP_PORT, TRADE_HTTP_PORT and GETPRICE_HTTP_PORT. A port of "
        "0 takes any free port; the 'listening on' line names the ports taken.",
    )
    _only(serve, "serve")
    _market_option(serve)
    serve.set_defaults(handler=cmd_serve)
    ready = commands.add_parser(
        "wait-ready",
        help="block until all four services answer an MCP initialize",
        description="Exit 0 once all four services complete an MCP initialize; otherwise "
        "exit non-zero after the timeout, naming the services that did not answer.",
    )
    ready.add_argument(
        "--timeout", type=float, default=None, help="seconds to wait (default: READY_TIMEOUT or 30)"
    )
    _only(ready, "wait for")
    ready.set_defaults(handler=cmd_wait_ready)
    health = commands.add_parser(
        "healthcheck",
        help="exit 0 when all four services complete an MCP exchange",
    )
    health.add_argument("--timeout", type=float, default=2.0, help="seconds per probe")
    _only(health, "check")
    health.set_defaults(handler=cmd_healthcheck)
    run = commands.add_parser(
        "run",
        help="run the agent over the config's date range (resumable)",
        description="For each enabled model and each trading day not yet done, trade "
        "through the MCP services and record positions and logs; print a summary.",
    )
    run.add_argument("config", type=Path, help="the run configuration (JSON)")
    run.add_argument(
        "--repeat",
        type=_option(repeat_count),
        default=1,
        metavar="N",
        help="trade each model N times, as the books SIGNATURE.r1 ... SIGNATURE.rN (run in "
        "parallel within --jobs); the report gives each group's mean, spread and a 95%% "
        "interval",
    )
    run.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="trade only this model (its name or signature); give it again for more",
    )
    run.add_argument(
        "--shard",
        type=_shard_option,
        default=None,
        metavar="I/N",
        help="trade only every N-th book starting with the I-th (1 <= I <= N), so N "
        "processes trade every book once between them",
    )
    run.add_argument(
        "--claim",
        action="store_true",
        help="trade one book: the first with days left that no other run holds (after "
        "--model and --shard); exit 0 when none is left. N workers started together "
        "(a Swarm job's tasks) then trade N books between them",
    )
    run.add_argument(
        "--allow-changes",
        action="store_true",
        help="carry on a book whose config or seen prices changed since its last run "
        "(the change is listed in its run.json); without it such a run stops in one line",
    )
    run.add_argument(
        "--jobs",
        type=_option(job_count),
        default=None,
        metavar="N",
        help="models to trade at once (default: AGENT_JOBS or 4)",
    )
    run.set_defaults(handler=cmd_run)
    leaderboard = commands.add_parser(
        "report",
        help="the leaderboard of DATA_DIR: every model's metrics and QQQ's",
        description="Measure every book under DATA_DIR/agent_data (or --books) against "
        "merged.jsonl and print the leaderboard: returns, volatility, Sharpe, Sortino, "
        "Calmar, drawdown, win rate, trades and turnover (docs/METRICS.md), sorted by "
        "return, with QQQ's row and the reason for every n/a.",
    )
    leaderboard.add_argument("--format", choices=("md", "csv", "json"), default="md")
    leaderboard.add_argument(
        "--output", "-o", type=Path, default=None, help="write to this file (default: stdout)"
    )
    leaderboard.add_argument(
        "--books", type=Path, default=None, help="the folder of the books (default: agent_data)"
    )
    leaderboard.add_argument(
        "--risk-free-rate",
        type=_rate,
        default=0.0,
        metavar="RATE",
        help="annual risk-free rate as a fraction, for Sharpe and Sortino (default: 0)",
    )
    leaderboard.set_defaults(handler=cmd_report)
    dashboard = commands.add_parser(
        "dashboard",
        help="serve the results page (value against QQQ, positions, trades) from DATA_DIR",
        description="Serve a page and /api/summary showing each model's portfolio value "
        "against QQQ, its positions and trades, read live from DATA_DIR.",
    )
    dashboard.add_argument(
        "--host", default=None, help="address to listen on (default: DASHBOARD_HOST or 127.0.0.1)"
    )
    dashboard.add_argument(
        "--port",
        type=_option(listening_port_number),
        default=None,
        help="port, or 0 for any free one, named in its first line "
        "(default: DASHBOARD_PORT or 8888)",
    )
    dashboard.set_defaults(handler=cmd_dashboard)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        log_format = logformat.format_from(os.environ)
    except ValueError as exc:
        print(f"ai-trader: error: {exc}", file=sys.stderr, flush=True)
        return 2
    if log_format == logformat.JSON:
        # Before the parsing, so that a usage error is a JSON line too.
        logformat.install(log_format, _command_in(sys.argv[1:] if argv is None else argv))
    args = build_parser().parse_args(argv)
    logformat.install(log_format, args.command, verbose=args.verbose)
    try:
        settings = load_settings()
        handler: Callable[[argparse.Namespace, Settings], int] = args.handler
        return handler(args, settings)
    except (UserError, OSError, BaseExceptionGroup) as exc:
        known = _known_error(exc)
        if known is None:
            raise  # a bug: keep the traceback
        _error(args, known)
        return known.exit_code
    except KeyboardInterrupt:
        if logformat.is_json():
            log.warning("interrupted")
        else:
            print(f"ai-trader {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        # Spare the interpreter's teardown from collecting the MCP SDK's and pydantic's
        # objects one by one: about half a second of every `docker stop` (measured).
        gc.freeze()
