"""The day loop: for each enabled model and each trading day not yet done, trade and commit."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ai_trader.agent import builtin
from ai_trader.agent.model import ModelFailed, ModelTrader, ModelUnavailable, system_prompt
from ai_trader.agent.toolbox import Toolbox
from ai_trader.config import ModelEntry, RunConfig
from ai_trader.errors import RunFailed, UserError
from ai_trader.ledger import CASH, Ledger, portfolio_value
from ai_trader.market.pricebook import PriceBook
from ai_trader.market.universe import BENCHMARK, MERGED_NAME, NASDAQ_100
from ai_trader.runtime import RunState, clear_state, write_state
from ai_trader.settings import Settings

log = logging.getLogger(__name__)


class AgentError(RunFailed):
    """The run could not finish; the message says which model and day."""


@dataclass(frozen=True)
class Result:
    signature: str
    days: int
    first_day: str | None
    last_day: str | None
    final_value: float
    initial_cash: float
    benchmark_return: float | None

    @property
    def total_return(self) -> float:
        return self.final_value / self.initial_cash - 1


def trading_days(book_days: list[str], after: str, end: str) -> list[str]:
    """The data's trading days strictly after ``after`` and up to ``end``."""
    return [day for day in book_days if after < day <= end]


def mark_price(book: PriceBook, symbol: str, day: str) -> float | None:
    """A day's value price: the close, or the open on the newest day (whose close is unknown)."""
    close = book.close(symbol, day)
    return close if close is not None else book.open(symbol, day)


def summarise(book: PriceBook, ledger: Ledger, signature: str, cash: float) -> Result:
    rows = ledger.rows()
    traded = sorted({row["date"] for row in rows if "this_action" in row})
    if not traded:
        return Result(signature, 0, None, None, cash, cash, None)
    last = traded[-1]
    positions = rows[-1]["positions"]
    prices = {s: p for s in positions if s != CASH and (p := mark_price(book, s, last)) is not None}
    start = book.open(BENCHMARK, traded[0])
    end = mark_price(book, BENCHMARK, last)
    bench = end / start - 1 if start and end else None
    return Result(
        signature, len(traded), traded[0], last, portfolio_value(positions, prices), cash, bench
    )


def format_summary(results: list[Result]) -> str:
    lines = [f"{'signature':<24} {'days':>5} {'final value':>13} {'return':>9} {'QQQ':>9}"]
    for r in results:
        bench = f"{r.benchmark_return:+.2%}" if r.benchmark_return is not None else "n/a"
        lines.append(
            f"{r.signature:<24} {r.days:>5} {r.final_value:>13,.2f} "
            f"{r.total_return:>+9.2%} {bench:>9}"
        )
    return "\n".join(lines)


class Runner:
    def __init__(self, config: RunConfig, settings: Settings) -> None:
        self.config = config
        self.settings = settings
        self.log_path: Path = config.log_path()
        self.book = PriceBook.load(settings.data_dir / MERGED_NAME)

    def _entry_log(self, ledger: Ledger, signature: str, day: str):
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

    def _model_trader(self, entry: ModelEntry) -> ModelTrader | None:
        if entry.builtin:
            return None
        if not self.settings.openai_api_key:
            raise ModelUnavailable("OPENAI_API_KEY is not set")
        import openai

        agent = self.config.agent_config
        client = openai.AsyncOpenAI(
            api_key=self.settings.openai_api_key,
            base_url=entry.openai_base_url or self.settings.openai_api_base,
            max_retries=0,  # ModelTrader retries with the config's backoff
            timeout=120,
        )
        return ModelTrader(
            client,
            entry.basemodel,
            max_steps=agent.max_steps,
            max_retries=agent.max_retries,
            base_delay=agent.base_delay,
        )

    def _prompt(self, day: str, previous: str | None, positions: dict[str, float]) -> str:
        opens = {s: p for s in NASDAQ_100 if (p := self.book.open(s, day)) is not None}
        closes = {
            s: p for s in NASDAQ_100 if previous and (p := self.book.close(s, previous)) is not None
        }
        return system_prompt(day, positions, opens, closes)

    async def run_model(self, toolbox: Toolbox, entry: ModelEntry) -> Result | None:
        agent = self.config.agent_config
        dates = self.config.date_range
        ledger = Ledger(self.log_path / entry.signature)
        try:
            trader = self._model_trader(entry)
        except ModelUnavailable as exc:
            log.warning("skipping model %s: %s", entry.name, exc)
            return None
        ledger.ensure_initialized(dates.init_date.isoformat(), NASDAQ_100, agent.initial_cash)
        days = trading_days(self.book.dates(), ledger.last_date() or "", dates.end_date.isoformat())
        if not days:
            log.info(
                "%s: nothing to do, every day up to %s is done", entry.signature, dates.end_date
            )
        for number, day in enumerate(days, start=1):
            ledger.begin_day(day)
            write_state(
                self.settings.runtime_env_path, RunState(entry.signature, day, str(self.log_path))
            )
            record = self._entry_log(ledger, entry.signature, day)
            positions, _ = ledger.committed()
            previous = self.book.previous_day(day)
            try:
                if trader is None:
                    await builtin.trade_day(toolbox.call, record, day, previous, positions)
                else:
                    await trader.trade_day(
                        toolbox.call,
                        record,
                        self._prompt(day, previous, positions),
                        list(toolbox.tools.values()),
                    )
            except ModelUnavailable as exc:
                log.warning("skipping model %s: %s", entry.name, exc)
                ledger.begin_day(day)
                return None
            except ModelFailed as exc:
                raise AgentError(f"{entry.signature} on {day}: {exc}") from None
            added = ledger.commit_day(day)
            trades = sum(1 for row in added if row["this_action"]["action"] != "no_trade")
            log.info("%s [%d/%d] %s: %d trade(s)", entry.signature, number, len(days), day, trades)
        return summarise(self.book, ledger, entry.signature, agent.initial_cash)

    async def run(self) -> list[Result]:
        results: list[Result] = []
        try:
            async with Toolbox(self.settings) as toolbox:
                for entry in self.config.enabled_models:
                    result = await self.run_model(toolbox, entry)
                    if result is not None:
                        results.append(result)
        finally:
            clear_state(self.settings.runtime_env_path)
        if not results:
            # Every model was skipped (no key, unknown to the server): an input problem.
            raise UserError("no enabled model could run (see the warnings above)")
        return results
