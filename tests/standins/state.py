"""The scenario and the counters, shared by the request threads."""

from __future__ import annotations

import copy
import threading
from typing import Any

DEFAULT_SCENARIO: dict[str, Any] = {
    # Symbols Alpha Vantage knows; any other gets its "Invalid API call" error.
    "symbols": ["AAPL", "MSFT", "NVDA", "QQQ"],
    # Coins DIGITAL_CURRENCY_DAILY knows (any other gets its "Invalid API call" error); their
    # history: "crypto_days" days ending on "last_refreshed" (today, UTC, when None), or from
    # "coin_first_day"'s day for a coin it names (a coin listed later than the others).
    "coins": ["BTC", "ETH", "XRP", "SOL", "BNB", "DOGE", "ADA", "LINK", "LTC", "DOT"],
    "crypto_days": 400,
    "coin_first_day": {},
    # SYMBOL -> n: the first n requests for it get that failure (in this order).
    "http_error": {},
    "rate_limit": {},
    "information": {},
    # The newest day served (ISO); None = the most recent weekday before today.
    "last_refreshed": None,
    "openai": {
        "models": ["gpt-stand-in"],
        "script": [],
        "fail_first": 0,
        "always_fail": False,
        # Seconds to wait before answering each chat request: an honest wait in the
        # request's own thread, so concurrent requests wait side by side (a model API
        # answers many clients at once); stopping the stand-ins ends it early.
        "delay": 0,
        # Hold chat requests, unanswered, until `/_control/release` (or a new scenario, or
        # a reset) lets them go: true holds every one, N the N-th (counted from 1) and every
        # one after it. A test that must act while a run is in the middle of a model call
        # waits for `held` in the stats, an event, not a clock.
        "hold": False,
        # When a list: the only keys accepted; any other gets OpenAI's 401 invalid_api_key.
        "keys": None,
    },
    # Tushare Pro (POST /tushare): "tokens" the only tokens it knows (None: any non-empty
    # one); "points" the account's points ("daily" needs 120, "index_daily" 2000, else the
    # permission error); "last_trade_date" the newest SSE session served (ISO; None: the
    # last one before today); "rate_limit" / "http_error" TS_CODE -> n: the first n requests
    # for it get that reply (the HTTP error first).
    "tushare": {
        "tokens": None,
        "points": 2000,
        "last_trade_date": None,
        "rate_limit": {},
        "http_error": {},
    },
    "jina": {
        "results": [
            {
                "title": "Chip makers rally as data-centre demand grows",
                "url": "https://news.example.com/2025/01/chips-rally",
                "description": "Semiconductor shares rose after strong guidance.",
                "date": "2025-01-15T14:30:00Z",
                "content": "Semiconductor shares rose on Wednesday after strong guidance ...",
            },
            {
                "title": "A report from the future that must never leak into a backtest",
                "url": "https://news.example.com/2099/01/future",
                "description": "Dated after any simulated day.",
                "date": "2099-01-01T00:00:00Z",
                "content": "This article is dated in the far future ...",
            },
        ],
    },
    # Alpha Vantage NEWS_SENTIMENT. "mode": "window" answers as the real feed does (the
    # articles inside time_from..time_to); "ignore_window" serves the whole feed whatever the
    # window (a server not to be trusted); "note" and "information" answer every request with
    # that rate-limit reply, "http_error" with a 503 page. "feed": the articles, in the
    # feed's own shape.
    "news": {
        "mode": "window",
        "feed": [
            {
                "title": "Chip makers rally as data-centre demand grows",
                "url": "https://news.example.com/2025/10/chips-rally",
                "time_published": "20251027T143000",
                "authors": ["A. Reporter"],
                "summary": "Semiconductor shares rose after strong guidance.",
                "banner_image": None,
                "source": "Example Wire",
                "category_within_source": "Markets",
                "source_domain": "news.example.com",
                "topics": [{"topic": "Technology", "relevance_score": "1.0"}],
                "overall_sentiment_score": 0.31,
                "overall_sentiment_label": "Somewhat-Bullish",
                "ticker_sentiment": [
                    {
                        "ticker": "NVDA",
                        "relevance_score": "0.9",
                        "ticker_sentiment_score": "0.4",
                        "ticker_sentiment_label": "Bullish",
                    },
                ],
            },
            {
                "title": "A report from the future that must never leak into a backtest",
                "url": "https://news.example.com/2099/01/future",
                "time_published": "20990101T000000",
                "authors": [],
                "summary": "Dated after any simulated day.",
                "banner_image": None,
                "source": "Example Wire",
                "category_within_source": "Markets",
                "source_domain": "news.example.com",
                "topics": [{"topic": "Financial Markets", "relevance_score": "1.0"}],
                "overall_sentiment_score": -0.5,
                "overall_sentiment_label": "Bearish",
                "ticker_sentiment": [],
            },
        ],
    },
}


def _merged(scenario: dict[str, Any] | None) -> dict[str, Any]:
    """The defaults with ``scenario`` laid over them (one level deep for the nested sections)."""
    result = copy.deepcopy(DEFAULT_SCENARIO)
    for key, value in (scenario or {}).items():
        if key in ("openai", "jina", "news", "tushare") and isinstance(value, dict):
            result[key].update(copy.deepcopy(value))
        else:
            result[key] = copy.deepcopy(value)
    return result


class State:
    def __init__(self, scenario: dict[str, Any] | None = None) -> None:
        self.lock = threading.Lock()
        self.scenario = _merged(scenario)
        self.released = threading.Event()
        self.stopping = threading.Event()  # set once, when the server stops
        self.openai_in_flight = 0  # chat requests being answered right now
        self._zero()

    def _zero(self) -> None:
        self.av_requests = 0
        self.av_by_symbol: dict[str, int] = {}
        self.openai_requests = 0
        self.openai_bodies: list[Any] = []
        self.openai_held = 0
        # The most chat requests in flight at once since now (those in flight count).
        self.openai_max_in_flight = self.openai_in_flight
        self.jina_requests = 0
        self.tushare_requests = 0
        self.tushare_by_code: dict[str, int] = {}
        # Each Tushare request body as it came, the token replaced by whether one came.
        self.tushare_bodies: list[Any] = []
        # The parameters of each NEWS_SENTIMENT request, the key replaced by whether one came.
        self.news_requests: list[dict[str, Any]] = []
        # Whatever was held is let go, and what comes next is held again (if the scenario says).
        self.released.set()
        self.released = threading.Event()

    def reset(self) -> None:
        with self.lock:
            self._zero()

    def set_scenario(self, scenario: dict[str, Any]) -> None:
        with self.lock:
            self.scenario = _merged(scenario)
            self._zero()

    def chat_began(self) -> int:
        """Count a chat request in (and in flight); returns its number, from 1."""
        with self.lock:
            self.openai_requests += 1
            self.openai_in_flight += 1
            self.openai_max_in_flight = max(self.openai_max_in_flight, self.openai_in_flight)
            return self.openai_requests

    def chat_ended(self) -> None:
        with self.lock:
            self.openai_in_flight -= 1

    def release(self) -> None:
        """Let every held chat request go, and those that arrive later pass unheld."""
        with self.lock:
            self.released.set()

    def hold(self, number: int) -> None:
        """Block the ``number``-th chat request if the scenario holds it; counted as held
        meanwhile. ``"hold": true`` is 1: every request from the first."""
        with self.lock:
            first = int(self.scenario["openai"].get("hold") or 0)
            if not first or number < first or self.released.is_set():
                return
            released = self.released
            self.openai_held += 1
        released.wait()
        with self.lock:
            if released is self.released:  # not zeroed by a new scenario meanwhile
                self.openai_held -= 1

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return copy.deepcopy(
                {
                    "alphavantage": {
                        "requests": self.av_requests,
                        "by_symbol": self.av_by_symbol,
                    },
                    "openai": {
                        "requests": self.openai_requests,
                        "bodies": self.openai_bodies,
                        "held": self.openai_held,
                        "in_flight": self.openai_in_flight,
                        "max_in_flight": self.openai_max_in_flight,
                    },
                    "jina": {"requests": self.jina_requests},
                    "tushare": {
                        "requests": self.tushare_requests,
                        "by_code": self.tushare_by_code,
                        "bodies": self.tushare_bodies,
                    },
                    "alphavantage_news": {"requests": self.news_requests},
                }
            )
