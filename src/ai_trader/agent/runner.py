"""The day loop: for each enabled model and each trading day not yet done, trade and commit.

Models run concurrently (``jobs`` at a time), each under its own signature lock, sharing
one set of MCP clients; every tool call carries its model's run context. A day is only
committed when it went through: a refusal the data cannot explain, a service that stops
answering or a day the prices service cannot price ends that model's run with one line,
and the day is redone on the next run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from ai_trader import logformat, manifest
from ai_trader.agent import builtin
from ai_trader.agent.model import ModelFailed, ModelTrader, ModelUnavailable, system_prompt
from ai_trader.agent.responses import RECORD_DIR, NotRecorded, Recording, has_record
from ai_trader.agent.toolbox import ServiceDown, Toolbox, ToolRefused
from ai_trader.config import ModelEntry, RunConfig
from ai_trader.context import RunContext, valid_books
from ai_trader.errors import RunFailed, UserError, from_os_error
from ai_trader.layout import BookPaths, merged_file
from ai_trader.ledger import Ledger
from ai_trader.lock import LockHeld, remove_stale_temporaries, signature_lock
from ai_trader.market.base import Market
from ai_trader.market.markets import DEFAULT, market_for
from ai_trader.market.pricebook import PriceBook
from ai_trader.market.us import US_DAILY
from ai_trader.metrics import FORMATS, Figure, shown
from ai_trader.repeats import repeated
from ai_trader.settings import Settings
from ai_trader.shards import Shard, chosen
from ai_trader.usage import DISPLAY as USAGE_DISPLAY
from ai_trader.usage import (
    DayTally,
    Totals,
    combined,
    committed_days,
    read_usage,
    record_day,
    spent,
    totals,
)
from ai_trader.valuation import measure, value_book

log = logging.getLogger(__name__)

T = TypeVar("T")


async def off_loop(work: Callable[[], T]) -> T:
    """``work()`` in a worker thread, so that its waits on the disk (a durable write's
    fsync, a rename) hold up only its own model, not every model of the run. A cancel
    waits for it to finish first (a thread cannot be stopped half-way), so that nothing
    is written to a book after its run has let go of it."""
    done = asyncio.ensure_future(asyncio.to_thread(work))
    try:
        return await asyncio.shield(done)
    except asyncio.CancelledError:
        while not done.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait([done])
        if not done.cancelled():
            done.exception()  # the cancel is what goes on; the thread's error is dropped
        raise


class AgentError(RunFailed):
    """The run could not finish; the message says which model and day."""


@dataclass(frozen=True)
class Result:
    """One model's summary line, from ``valuation.value_book`` (the dashboard's figures)."""

    signature: str
    days: int
    first_day: str | None
    last_day: str | None
    final_value: float | None  # None when the book cannot be valued on the last day
    start_value: float  # the opening row valued at the first day's open (see valuation)
    benchmark_return: float | None
    unpriced: tuple[str, ...] = ()  # the holdings with no price on the last day
    # Headline metrics (valuation.measure; docs/METRICS.md): n/a with a reason when the
    # book cannot support them, None for a book with no rows at all.
    sharpe: Figure | None = None
    max_drawdown: Figure | None = None
    accounting: Totals | None = None  # fees, tokens and dollars (``usage``)
    benchmark: str = US_DAILY.benchmark  # the market's, which the return is compared with
    periods: str = "days"  # what ``days`` counts: "slots" in an hourly market

    @property
    def total_return(self) -> float | None:
        if self.final_value is None or not self.start_value:
            return None
        return self.final_value / self.start_value - 1


@dataclass
class Outcome:
    """What a run produced: a result for each model that finished, and each failure."""

    results: list[Result] = field(default_factory=list)
    failures: list[UserError] = field(default_factory=list)


def books_relative(log_path: Path, data_dir: Path) -> str:
    """The books' folder as the run context names it: relative to the data folder, where
    the trade service looks (``context``); a folder outside it is a one-line error."""
    root = data_dir.resolve()
    try:
        relative = log_path.resolve().relative_to(root)
    except ValueError:
        raise UserError(
            f"log_config.log_path {log_path} is outside the data folder {root}: the trade "
            "service only keeps books inside DATA_DIR (leave log_path out, or point it there)"
        ) from None
    books = relative.as_posix()
    if not valid_books(books):
        raise UserError(
            f"log_config.log_path {log_path} must be a folder inside the data folder {root} "
            "named with letters, digits, '.', '_' or '-'"
        )
    return books


def trading_days(book_days: list[str], after: str, end: str) -> list[str]:
    """The data's trading days strictly after ``after`` and up to ``end``. In hourly data
    the days are slots (``YYYY-MM-DD HH:MM:SS``): ``after`` a day (the book's opening row)
    is after every slot of that day, ``after`` a slot is after that slot, and ``end`` (a
    day) takes in all of its slots."""
    if len(after) == len("YYYY-MM-DD"):
        after += _DAY_END
    return [day for day in book_days if after < day <= end + _DAY_END]


# Sorts after any slot of a day: "2025-10-01" + _DAY_END > "2025-10-01 15:00:00".
_DAY_END = "~"


def supported(
    book: PriceBook, symbols: tuple[str, ...], day: str, previous: str | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``symbols`` split into those the data supports on ``day`` and those it does not: a
    symbol needs yesterday's close and today's open (a partial fetch may lack them), so
    that every call the built-in strategy makes on it can succeed. On the first day of the
    data there is no yesterday, and every symbol is kept."""
    if previous is None:
        return symbols, ()
    usable, missing = [], []
    for symbol in symbols:
        bar = book.bar(symbol, previous)
        if bar is not None and "close" in bar and book.open(symbol, day) is not None:
            usable.append(symbol)
        else:
            missing.append(symbol)
    return tuple(usable), tuple(missing)


def summarise(
    book: PriceBook, ledger: Ledger, signature: str, cash: float, market: Market = US_DAILY
) -> Result:
    """The run's summary of one book; ``cash`` stands in for a book with no rows at all."""
    rows = ledger.rows()
    if not rows:
        return Result(signature, 0, None, None, cash, cash, None, benchmark=market.benchmark,
                      periods=_periods(market))  # fmt: skip
    valued = value_book(rows, book, benchmark=market.benchmark)
    start = valued.initial_value if valued.initial_value is not None else cash
    metrics = measure(
        valued,
        rows,
        book,
        periods_per_year=market.periods_per_year,
        benchmark=market.benchmark,
    ).model
    accounting = totals(rows, read_usage(ledger.paths.usage_file))
    return Result(
        signature,
        len(valued.days),
        valued.first_day,
        valued.last_day,
        valued.final_value,
        start,
        valued.benchmark_return,
        valued.unpriced,
        metrics.sharpe,
        metrics.max_drawdown,
        accounting,
        market.benchmark,
        _periods(market),
    )


def _periods(market: Market) -> str:
    return "slots" if market.slots else "days"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def format_summary(results: list[Result]) -> str:
    """The run's end: value and return against QQQ, two headline metrics (every figure is in
    `ai-trader report`), and what the run paid: fees, tokens and the models' dollars, with a
    total line when there are several models."""
    benchmark = results[0].benchmark if results else US_DAILY.benchmark
    periods = results[0].periods if results else "days"
    header = (
        f"{'signature':<24} {periods:>5} {'final value':>13} {'return':>9} {benchmark:>9} "
        f"{'Sharpe':>7} {'max DD':>8} {'fees':>9} {'tokens':>10} {'LLM cost':>9}"
    )
    lines = [header]
    for r in results:
        bench = f"{r.benchmark_return:+.2%}" if r.benchmark_return is not None else "n/a"
        value = f"{r.final_value:>13,.2f}" if r.final_value is not None else f"{'n/a':>13}"
        ret = f"{r.total_return:>+9.2%}" if r.total_return is not None else f"{'n/a':>9}"
        sharpe = _figure(r.sharpe, FORMATS["sharpe"])
        drawdown = _figure(r.max_drawdown, FORMATS["max_drawdown"])
        lines.append(
            f"{r.signature:<24} {r.days:>5} {value} {ret} {bench:>9} {sharpe:>7} {drawdown:>8} "
            f"{_paid(r.accounting)}"
        )
    books = {r.signature: r.accounting for r in results if r.accounting is not None}
    if len(books) > 1:
        lines.append(f"{'all models':<24} {'':>5} {'':>13} {'':>9} {'':>9} {'':>7} {'':>8} "
                     f"{_paid(combined(books))}")  # fmt: skip
    return "\n".join(lines)


def summary_rows(results: list[Result]) -> list[dict[str, Any]]:
    """The summary's figures as data (the JSON log's ``summary``): one row per model, a
    figure the data cannot support as null."""
    rows: list[dict[str, Any]] = []
    for r in results:
        row: dict[str, Any] = {
            "signature": r.signature,
            "days": r.days,
            "final_value": r.final_value,
            "return": r.total_return,
            "benchmark_return": r.benchmark_return,
            "sharpe": r.sharpe.value if r.sharpe else None,
            "max_drawdown": r.max_drawdown.value if r.max_drawdown else None,
        }
        for key, _, _ in USAGE_DISPLAY:
            figure = getattr(r.accounting, key) if r.accounting else None
            row[key] = figure.value if figure is not None else None
        rows.append(row)
    return rows


def _paid(accounting: Totals | None) -> str:
    """The fees, tokens and dollars columns of a summary line."""
    widths = {"fees": 9, "tokens": 10, "cost_usd": 9}
    return " ".join(
        f"{_figure(getattr(accounting, key) if accounting else None, pattern):>{widths[key]}}"
        for key, _, pattern in USAGE_DISPLAY
    )


def _figure(figure: Figure | None, pattern: str) -> str:
    return shown(figure.value if figure is not None else None, pattern)


def unpriced_errors(results: list[Result]) -> list[RunFailed]:
    """One error for each result the summary could not value."""
    return [
        RunFailed(
            f"{r.signature}: cannot value the book on {r.last_day}: "
            + (
                f"no price for {', '.join(r.unpriced)} that day"
                if r.unpriced
                else "its value is too large to be a number"
            )
        )
        for r in results
        if r.final_value is None
    ]


class Runner:
    def __init__(
        self,
        config: RunConfig,
        settings: Settings,
        jobs: int | None = None,
        *,
        allow_changes: bool = False,
        source: str = "",
        repeat: int = 1,
        models: Sequence[str] = (),
        shard: Shard | None = None,
        claim: bool = False,
    ) -> None:
        # The market the config names; its starting cash when the config sets none.
        self.market = market_for(
            config.market, config.frequency, where=f"config {source}" if source else "config"
        )
        agent = config.agent_config
        if "initial_cash" not in agent.model_fields_set:
            cash = {"initial_cash": self.market.initial_cash}
            config = config.model_copy(update={"agent_config": agent.model_copy(update=cash)})
        self.config = config
        # Trade one book only: the first with days left that no live process holds.
        self.claim = claim
        # Each enabled model, or each of its repeats as a book of its own (``repeats``),
        # and of those the ones this process trades (``shards``).
        self.models = chosen(repeated(config.enabled_models, repeat), models, shard)
        self.allow_changes = allow_changes  # carry on a book whose config or prices changed
        self.source = source  # the config file, for the manifests
        self.costs = config.trading.costs
        self.settings = settings
        self.jobs = jobs or settings.agent_jobs
        self.log_path: Path = config.log_path(settings.agent_data_dir)
        self.books = books_relative(self.log_path, settings.data_dir)
        self.book = PriceBook.load(merged_file(settings.data_dir))
        benchmark = self.market.benchmark
        if self.book.hourly != bool(self.market.slots):
            held, wanted = ("hourly", "daily") if self.book.hourly else ("daily", "hourly")
            raise UserError(
                f"{merged_file(settings.data_dir)} holds {held} bars, and the config trades "
                f"{self.market.key} ({wanted}): fetch and merge with --market "
                f"{self.market.key}, into a data folder of its own"
            )
        if benchmark not in self.book.symbols:
            option = "" if self.market is DEFAULT else f" --market {self.market.key}"
            raise UserError(
                f"{merged_file(settings.data_dir)} has no {benchmark} line, the benchmark "
                f"every return is compared with: `ai-trader fetch{option}` fetches {benchmark} "
                f"(with the other symbols), then `ai-trader merge{option}` adds it"
            )
        dates = config.date_range
        self.init_day, self.end_day = dates.init_date.isoformat(), dates.end_date.isoformat()
        # One HTTP client for every model's API client (``_shared_http``): one pool of
        # connections and one TLS context, not one each, which would cost every model its
        # own context's CPU before its first request.
        self._http: Any = None
        self._http_loop: asyncio.AbstractEventLoop | None = None  # the loop it belongs to
        # The hash of the prices seen through a day, worked out once a run: every book
        # ending on that day saw the same prices (``manifest.prices_seen``).
        self._seen: dict[str, str] = {}
        for entry in self.models:
            if entry.responses == "replay" and not has_record(self._responses_folder(entry)):
                raise UserError(
                    f"model {entry.signature}: responses replay: no record in "
                    f"{self._responses_folder(entry)} (record one first with "
                    '"responses": "record")'
                )
            # Before anything is written: a key named but not set is an input error.
            if (
                entry.responses != "replay"
                and entry.api_key_env
                and not settings.variable(entry.api_key_env)
            ):
                raise UserError(
                    f"model {entry.signature}: api_key_env names {entry.api_key_env}, "
                    f"which is not set (or empty) in the environment, nor "
                    f"{entry.api_key_env}_FILE"
                )
        days = self.book.dates()
        if not trading_days(days, self.init_day, self.end_day):
            covered = f"{days[0]} to {days[-1]}" if days else "no days"
            raise UserError(
                f"no trading day after init_date {self.init_day} up to end_date "
                f"{self.end_day} in the price data (it covers {covered})"
            )

    def _api_key(self, entry: ModelEntry) -> str | None:
        """The model's own key (its api_key_env) or else OPENAI_API_KEY."""
        if entry.api_key_env:
            return self.settings.variable(entry.api_key_env)
        return self.settings.openai_api_key

    def _entry_log(
        self, ledger: Ledger, signature: str, day: str
    ) -> Callable[[dict[str, Any]], None]:
        def record(message: dict[str, Any]) -> None:
            ledger.append_log(
                day,
                {
                    "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
                    "signature": signature,
                    "new_messages": [message],
                },
            )

        return record

    def _responses_folder(self, entry: ModelEntry) -> Path:
        """Where the entry's record is kept (record) or read (replay)."""
        if entry.responses == "replay" and entry.responses_from:
            return Path(entry.responses_from).expanduser().resolve()
        return self.log_path / entry.signature / RECORD_DIR

    def _model_trader(self, entry: ModelEntry) -> ModelTrader | None:
        if entry.builtin:
            return None
        agent = self.config.agent_config
        recording = None
        if entry.responses != "off":
            recording = Recording(entry.responses, self._responses_folder(entry))
        client = None
        if entry.responses != "replay":  # a replay makes no request: no client, no key
            key = self._api_key(entry)
            if not key:
                raise ModelUnavailable("OPENAI_API_KEY is not set")
            import openai

            client = openai.AsyncOpenAI(
                api_key=key,
                base_url=entry.openai_base_url or self.settings.openai_api_base,
                max_retries=0,  # ModelTrader retries with the config's backoff
                timeout=agent.request_timeout,  # each request's, whatever the client's
                http_client=self._shared_http(),
            )
        return ModelTrader(
            client,
            entry.basemodel,
            max_steps=agent.max_steps,
            max_retries=agent.max_retries,
            base_delay=agent.base_delay,
            key_variable=entry.api_key_env or "OPENAI_API_KEY",
            sampling=entry.sampling,
            recording=recording,
        )

    def _shared_http(self) -> Any:
        """The HTTP client of this event loop's models, made on first use (a client made
        in another loop cannot be used in this one); `run` closes it when it ends."""
        import openai

        loop = asyncio.get_running_loop()
        if self._http is None or self._http_loop is not loop:
            self._http, self._http_loop = openai.DefaultAsyncHttpxClient(), loop
        return self._http

    def _prompt(self, day: str, previous: str | None, positions: dict[str, float]) -> str:
        symbols = self.market.symbols
        opens = {s: p for s in symbols if (p := self.book.open(s, day)) is not None}
        closes = {
            s: p for s in symbols if previous and (p := self.book.close(s, previous)) is not None
        }
        return system_prompt(day, positions, opens, closes, self.costs, self.market)

    def _locked(self, ledger: Ledger, day: str) -> dict[str, float]:
        """What ``day``'s settlement rule keeps from being sold: under T+1, what the day's
        earlier slots bought (a daily book has none: it trades once a day)."""
        locked: dict[str, float] = {}
        if self.market.settlement_days:
            for row in ledger.same_day_rows(day):
                action = row["this_action"]
                if action["action"] == "buy":
                    locked[action["symbol"]] = locked.get(action["symbol"], 0) + action["amount"]
        return locked

    def _watchlist(
        self, day: str, previous: str | None, record: Callable[[dict[str, Any]], None]
    ) -> tuple[str, ...]:
        """The built-in strategy's watchlist for ``day``; a symbol left out is recorded in
        the day's log: a decision the log shows, not a default in place of a result."""
        watchlist = self.market.symbols[: builtin.WATCHLIST_SIZE]
        usable, missing = supported(self.book, watchlist, day, previous)
        if missing:
            record(
                {
                    "role": "assistant",
                    "content": f"No prices for {', '.join(missing)} around {day}; "
                    "left out of today's watchlist.",
                }
            )
        return usable

    async def _check_prices(self, toolbox: Toolbox, context: RunContext) -> None:
        """The prices service must price ``context.today`` from the same data as this run:
        otherwise every lookup of the day would be refused or wrong."""
        day = context.today
        benchmark = self.market.benchmark
        expected = self.book.open(benchmark, day)
        if expected is None:
            raise AgentError(f"{context.signature} on {day}: no {benchmark} price that day")
        try:
            answer = await toolbox.call(
                "get_price_local", {"symbol": benchmark, "date": day}, context
            )
        except ToolRefused as exc:
            raise AgentError(
                f"{context.signature} on {day}: the prices service cannot price this day: {exc}"
            ) from None
        served = answer.get("ohlcv", {}).get("open") if isinstance(answer, dict) else None
        if served != expected:
            raise AgentError(
                f"{context.signature} on {day}: the prices service reads other price data than "
                f"this run ({benchmark} open {served} there, {expected} here); start `serve` "
                "and `run` with the same DATA_DIR"
            )

    async def run_model(self, toolbox: Toolbox, entry: ModelEntry, token: str) -> Result | None:
        """Trade ``entry``'s days; ``token`` is its signature lock's, which the caller holds.
        What is logged meanwhile names the book (and the day: ``logformat.bound``)."""
        with logformat.bound(signature=entry.signature):
            return await self._trade(toolbox, entry, token)

    async def _trade(self, toolbox: Toolbox, entry: ModelEntry, token: str) -> Result | None:
        agent = self.config.agent_config
        ledger = Ledger(self.log_path / entry.signature)
        try:
            trader = self._model_trader(entry)
        except ModelUnavailable as exc:
            log.warning("skipping model %s: %s", entry.name, exc)
            return None
        # The writes of the book's start, days and end go to a worker thread (``off_loop``).
        manifest = await off_loop(partial(self._begin_manifest, entry, ledger))
        await off_loop(
            partial(
                ledger.ensure_initialized, self.init_day, self.market.symbols, agent.initial_cash
            )
        )
        days = trading_days(self.book.dates(), ledger.last_date() or "", self.end_day)
        if not days:
            log.info("%s: nothing to do, every day up to %s is done", entry.signature, self.end_day)
        pricing = entry.pricing.pricing if entry.pricing else None
        for number, day in enumerate(days, start=1):
            with logformat.bound(day=day):
                if entry.max_cost_usd is not None and self._over_budget(entry, ledger, day):
                    break
                ledger.begin_day(day)
                tally = DayTally(pricing)
                if trader is not None and trader.recording is not None:
                    trader.recording.start_day(day)
                context = RunContext(
                    entry.signature, day, self.books, token, self.costs, self.market.key
                )
                await self._check_prices(toolbox, context)
                call = partial(toolbox.call, context=context)
                record = self._entry_log(ledger, entry.signature, day)
                positions, _ = ledger.committed()
                previous = self.book.previous_day(day)
                try:
                    if trader is None:
                        strategy = builtin.strategy(entry.basemodel)
                        watchlist = self._watchlist(day, previous, record)
                        await strategy(
                            call,
                            record,
                            day,
                            previous,
                            positions,
                            watchlist,
                            self.costs,
                            lot=self.market.lot_size,
                            decimals=self.market.decimals,
                            locked=self._locked(ledger, day),
                        )
                    else:
                        await trader.trade_day(
                            call,
                            record,
                            self._prompt(day, previous, positions),
                            list(toolbox.tools.values()),
                            tally,
                        )
                except ModelUnavailable as exc:
                    log.warning("skipping model %s: %s", entry.name, exc)
                    ledger.begin_day(day)
                    return None
                except (ModelFailed, ToolRefused, ServiceDown, NotRecorded) as exc:
                    raise AgentError(f"{entry.signature} on {day}: {exc}") from None
                added = await off_loop(partial(self._commit_day, ledger, trader, day, tally))
                trades = sum(1 for row in added if row["this_action"]["action"] != "no_trade")
                log.info(
                    "%s [%d/%d] %s: %d trade(s)", entry.signature, number, len(days), day, trades
                )
        done = committed_days(ledger.rows())
        seen = self._prices_seen(done[-1]) if done else None
        await off_loop(partial(self._end_manifest, manifest, ledger, done, seen))
        return summarise(self.book, ledger, entry.signature, agent.initial_cash, self.market)

    def days_left(self, entry: ModelEntry) -> list[str]:
        """The trading days ``entry``'s book has still to trade up to the end date."""
        done = Ledger(self.log_path / entry.signature).last_date() or ""
        return trading_days(self.book.dates(), done, self.end_day)

    def _claim(self, locks: contextlib.ExitStack) -> tuple[ModelEntry, str] | None:
        """The first book (config order) with days left whose lock this process could take,
        and the lock's token (held in ``locks``); None when no book is left to trade.

        A book another process holds is skipped, and so is one that is done: N processes
        started together (a Swarm job's tasks, which get no usable index) each take a book
        of their own, and one that starts after a book is finished takes the next."""
        for entry in self.models:
            try:
                lock = locks.enter_context(signature_lock(self.log_path / entry.signature))
            except LockHeld:
                log.info(
                    "run --claim: %s is held by another run; next",
                    entry.signature,
                    extra={"signature": entry.signature},
                )
                continue
            if self.days_left(entry):
                log.info(
                    "run --claim: trading %s", entry.signature, extra={"signature": entry.signature}
                )
                return entry, lock.token
            lock.release()
        log.info("run --claim: no book with days left is free; nothing to do")
        return None

    def _begin_manifest(self, entry: ModelEntry, ledger: Ledger) -> dict[str, Any]:
        """The book's manifest as this run starts, written; UserError in one line, before
        anything is written, when a resumed book's config or seen prices changed (unless
        the run allows changes)."""
        path = ledger.paths.manifest_file
        previous = manifest.read_manifest(path)
        done = committed_days(ledger.rows())
        changed = manifest.what_changed(previous, self.config, entry, self.book) if (
            previous is not None and done
        ) else []  # fmt: skip
        if changed and not self.allow_changes:
            raise UserError(
                f"{entry.signature}: {' and '.join(changed)} changed since its book was "
                f"last run (see {path}); run with --allow-changes to carry on anyway, or "
                "give the model another signature"
            )
        started = _now()
        made = manifest.build(
            self.config,
            entry,
            source=self.source,
            merged=merged_file(self.settings.data_dir),
            book=self.book,
            days=done,
            started=started,
            through=done[-1] if done else None,
        )
        if previous is not None:
            made["first_started"] = previous.get("first_started") or previous.get("started")
            made["changes"] = list(previous.get("changes") or [])
        if changed:
            made["changes"].append({"at": started, "what": changed})
            log.warning(
                "%s: carrying on although %s changed", entry.signature, " and ".join(changed)
            )
        manifest.write_manifest(path, made)
        return made

    @staticmethod
    def _commit_day(
        ledger: Ledger, trader: ModelTrader | None, day: str, tally: DayTally
    ) -> list[dict[str, Any]]:
        """Commit ``day``: its record of responses, its usage row, then its rows."""
        if trader is not None and trader.recording is not None:
            trader.recording.commit(day)  # before the commit, as the usage row
        # The day's total goes first: a stop before the commit leaves a row of a day
        # that is not committed, which counts for nothing and the redo replaces.
        record_day(ledger.paths.usage_file, tally.row(day))
        return ledger.commit_day(day)

    def _prices_seen(self, through: str) -> str:
        if through not in self._seen:
            self._seen[through] = manifest.prices_seen(self.book, through)
        return self._seen[through]

    def _end_manifest(
        self, made: dict[str, Any], ledger: Ledger, done: list[str], seen: str | None
    ) -> None:
        """Write the manifest as the run ends: ``done`` are the committed days, and ``seen``
        the hash of the prices seen through the last of them."""
        made["trading_days"] = manifest.span(done)
        if done and seen is not None:
            made["prices_seen"] = {"through": done[-1], "sha256": seen}
        made["ended"] = _now()
        manifest.write_manifest(ledger.paths.manifest_file, made)

    def _over_budget(self, entry: ModelEntry, ledger: Ledger, day: str) -> bool:
        """True (and one line said) when ``day`` would pass the model's max_cost_usd: the
        dollars spent so far plus the dearest day so far. AgentError when the spend is not
        known (a request without usage), since the budget then cannot be kept."""
        budget = entry.max_cost_usd
        assert budget is not None
        done = committed_days(ledger.rows())
        try:
            total, dearest = spent(read_usage(ledger.paths.usage_file), done)
        except ValueError as exc:
            raise AgentError(
                f"{entry.signature} on {day}: cannot keep to max_cost_usd {budget:.2f}: {exc}"
            ) from None
        if total + dearest <= budget:
            return False
        log.warning(
            "%s: stopped before %s: max_cost_usd %.2f would be passed (spent %.4f, the "
            "dearest day so far cost %.4f)",
            entry.signature,
            day,
            budget,
            total,
            dearest,
        )
        return True

    async def run(self) -> Outcome:
        models = self.models
        outcome = Outcome()
        tokens: dict[str, str] = {}
        with contextlib.ExitStack() as locks:
            if self.claim:
                claimed = self._claim(locks)
                if claimed is None:
                    return outcome
                models, tokens = [claimed[0]], {claimed[0].signature: claimed[1]}
            else:
                # Every lock first: a second run of any signature is refused before anything
                # is written, and nobody else writes these books while we hold them.
                for entry in models:
                    folder = self.log_path / entry.signature
                    tokens[entry.signature] = locks.enter_context(signature_lock(folder)).token
            for entry in models:
                remove_stale_temporaries(BookPaths(self.log_path / entry.signature).position_dir)
            async with Toolbox(self.settings) as toolbox:
                slots = asyncio.Semaphore(self.jobs)

                async def one(entry: ModelEntry) -> Result | None:
                    async with slots:
                        return await self.run_model(toolbox, entry, tokens[entry.signature])

                try:
                    finished = await asyncio.gather(
                        *(one(entry) for entry in models), return_exceptions=True
                    )
                finally:
                    if self._http is not None and self._http_loop is asyncio.get_running_loop():
                        await self._http.aclose()
                    self._http = self._http_loop = None
        for item in finished:
            if isinstance(item, UserError | OSError):
                outcome.failures.append(
                    item if isinstance(item, UserError) else from_os_error(item)
                )
            elif isinstance(item, BaseException):
                raise item  # a bug: keep its traceback
            elif item is not None:
                outcome.results.append(item)
        if not outcome.results and not outcome.failures and not self.claim:
            # Every model was skipped (no key, unknown to the server): an input problem.
            raise UserError("no enabled model could run (see the warnings above)")
        return outcome
