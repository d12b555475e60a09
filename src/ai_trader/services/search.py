"""The search service: market news published before the simulated now, with no look-ahead.

Two providers, chosen by ``SEARCH_PROVIDER`` (settings): Jina's web search and reader (the
default), or Alpha Vantage's news feed (``NEWS_SENTIMENT``). The rules, for both:

* The simulated now comes from the call's run context, never from the model: the start of
  the simulated day (00:00), so a day's own news is never seen while it is traded; in an
  hourly market the slot's time (Alpha Vantage's window ends there; a result dated by day
  only must be from an earlier day).
* What reaches the model was published strictly before that now. The server is asked for
  that window where it takes one (Alpha Vantage's ``time_to``), and every result is checked
  again here whatever the server did; a result with no date, or a date that does not parse,
  is dropped.
* A refusal (no key, a rate limit, an error reply, a reply of the wrong shape, no answer in
  time) is a tool error of one line, never an empty list that would read as "no news".
  Only Alpha Vantage's own "No articles found" reply is an empty answer.
* Alpha Vantage takes its key in the query string: the key is kept out of every message
  and of the HTTP client's log lines.
"""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Annotated, Any
from urllib.parse import quote

import anyio
import httpx
from mcp.server.mcpserver import Context
from pydantic import Field
from typing_extensions import TypedDict

from ai_trader.services.common import Service, ToolError, request_today
from ai_trader.settings import ALPHAVANTAGE, Settings

MAX_RESULTS = 3
MAX_CONTENT_CHARS = 3000
MAX_QUERY_CHARS = 500
# Seconds for a whole search (search plus reading the pages), not per network read.
SEARCH_DEADLINE = 60.0
_ISO_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")

Query = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_QUERY_CHARS,
        description=f"What to search for (at most {MAX_QUERY_CHARS} characters)",
    ),
]


class Article(TypedDict):
    title: str
    url: str
    date: str | None
    content: str


class SearchAnswer(TypedDict):
    query: str
    today: str
    results: list[Article]


def published_day(raw: object) -> date | None:
    """The calendar day of a result's date, in the formats Jina returns; None when unknown."""
    if not isinstance(raw, str) or not raw.strip():
        return None
    text = raw.strip()
    found = _ISO_DAY.search(text)
    if found:
        try:
            return date.fromisoformat(found.group(1))
        except ValueError:
            return None
    for parse in (parsedate_to_datetime, lambda t: datetime.strptime(t, "%b %d, %Y")):
        try:
            return parse(text).date()
        except (TypeError, ValueError):
            continue
    return None


def before_today(results: list[dict[str, Any]], today: str) -> list[dict[str, Any]]:
    """Only results published strictly before the simulated today (undated ones are dropped);
    an hourly slot's today is its day (a result dated by day only cannot be placed in it)."""
    limit = date.fromisoformat(today[:10])
    kept = []
    for item in results:
        day = published_day(item.get("date") or item.get("publishedTime"))
        if day is not None and day < limit:
            kept.append(item)
    return kept


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


class JinaClient:
    def __init__(self, settings: Settings) -> None:
        self.key = settings.jina_api_key
        self.search_base = settings.jina_search_base_url.rstrip("/")
        self.reader_base = settings.jina_reader_base_url.rstrip("/")

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}", "Accept": "application/json"}

    async def search(self, client: httpx.AsyncClient, query: str) -> list[dict[str, Any]]:
        reply = await client.get(
            f"{self.search_base}/", params={"q": query}, headers=self._headers()
        )
        reply.raise_for_status()
        data = reply.json().get("data") or []
        return [item for item in data if isinstance(item, dict)]

    async def read(self, client: httpx.AsyncClient, url: str) -> dict[str, Any]:
        reply = await client.get(
            f"{self.reader_base}/{quote(url, safe=':/?&=%')}", headers=self._headers()
        )
        reply.raise_for_status()
        data = reply.json().get("data")
        return data if isinstance(data, dict) else {}

    async def articles(self, query: str, today: str) -> list[Article]:
        async with httpx.AsyncClient(timeout=30) as client:
            found = before_today(await self.search(client, query), today)[:MAX_RESULTS]
            articles: list[Article] = []
            for item in found:
                page = await self.read(client, _text(item.get("url")))
                content = _text(
                    page.get("content") or item.get("content") or item.get("description")
                )
                articles.append(
                    {
                        "title": _text(item.get("title")),
                        "url": _text(item.get("url")),
                        "date": _text(item.get("date") or page.get("publishedTime")) or None,
                        "content": content[:MAX_CONTENT_CHARS],
                    }
                )
        return articles


# --- Alpha Vantage NEWS_SENTIMENT ----------------------------------------------------------

MAX_NEWS_RESULTS = 5
# How far back the window opens: the feed is asked for [now - 30 days, now].
NEWS_LOOKBACK = timedelta(days=30)
# Articles asked for (the API's default; it allows up to 1000).
NEWS_LIMIT = 50
# The window's format (YYYYMMDDTHHMM) and the articles' (YYYYMMDDTHHMMSS).
WINDOW_FORMAT = "%Y%m%dT%H%M"
_PUBLISHED = re.compile(r"(\d{8}T\d{4})(\d{2})?")
# The topics the feed filters by (its documented names).
NEWS_TOPICS = frozenset(
    {
        "blockchain",
        "earnings",
        "ipo",
        "mergers_and_acquisitions",
        "financial_markets",
        "economy_fiscal",
        "economy_monetary",
        "economy_macro",
        "energy_transportation",
        "finance",
        "life_sciences",
        "manufacturing",
        "real_estate",
        "retail_wholesale",
        "technology",
    }
)
# A word of the query written as a ticker: NVDA, or the feed's CRYPTO:BTC and FOREX:USD forms.
# Not one letter: "I" and "A" open sentences far more often than they name a company.
_TICKER = re.compile(r"[A-Z]{2,5}|(?:CRYPTO|FOREX):[A-Z]{2,10}")
# The one "Information" reply that is an answer, not a refusal: nothing in the window.
NO_ARTICLES = "No articles found"
# How the feed's rate-limit replies put it (per day, and the older per minute).
_RATE_LIMIT_WORDS = ("rate limit", "call frequency")
MAX_MESSAGE_CHARS = 300


class TickerSentiment(TypedDict):
    ticker: str
    relevance_score: str
    ticker_sentiment_score: str
    ticker_sentiment_label: str


class NewsArticle(TypedDict):
    title: str
    url: str
    published: str  # ISO 8601, in the feed's own clock (the window is in the same clock)
    source: str
    summary: str
    overall_sentiment_label: str
    ticker_sentiment: list[TickerSentiment]


class NewsAnswer(TypedDict):
    query: str
    today: str
    published_before: str  # the simulated now: every result was published before it
    tickers: list[str]  # what the query asked the feed for
    topics: list[str]
    results: list[NewsArticle]


class NewsRefused(Exception):
    """The feed gave no usable answer; the message says why, on one line, without the key."""


def simulated_now(today: str) -> datetime:
    """The moment a call lives in: the start of its simulated day, or its hourly slot."""
    return datetime.fromisoformat(today)


def news_window(now: datetime) -> dict[str, str]:
    """The ``time_from``/``time_to`` parameters for news up to ``now``."""
    return {
        "time_from": (now - NEWS_LOOKBACK).strftime(WINDOW_FORMAT),
        "time_to": now.strftime(WINDOW_FORMAT),
    }


def published_at(raw: object) -> datetime | None:
    """An article's ``time_published`` (YYYYMMDDTHHMMSS; YYYYMMDDTHHMM also read), or None."""
    if not isinstance(raw, str):
        return None
    found = _PUBLISHED.fullmatch(raw.strip())
    if found is None:
        return None
    try:
        return datetime.strptime(found.group(1) + (found.group(2) or "00"), "%Y%m%dT%H%M%S")
    except ValueError:
        return None


def query_filters(query: str) -> tuple[list[str], list[str]]:
    """The tickers (words written NVDA or CRYPTO:BTC) and the feed's topic names in a query."""
    tickers: list[str] = []
    topics: list[str] = []
    for raw in query.split():
        word = raw.strip(",.;:!?()[]{}\"'")
        if _TICKER.fullmatch(word):
            tickers.append(word)
        elif word.lower() in NEWS_TOPICS:
            topics.append(word.lower())
    return list(dict.fromkeys(tickers)), list(dict.fromkeys(topics))


def _line(value: object) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_MESSAGE_CHARS else text[: MAX_MESSAGE_CHARS - 3] + "..."


def feed_of(payload: object) -> list[dict[str, Any]]:
    """The articles of a NEWS_SENTIMENT reply, or NewsRefused for an error or rate-limit reply
    (the ``Error Message``, ``Note`` and ``Information`` keys) or a reply of another shape."""
    if not isinstance(payload, dict):
        raise NewsRefused("the reply is not a JSON object")
    if "Error Message" in payload:
        raise NewsRefused(f"Alpha Vantage error: {_line(payload['Error Message'])}")
    for key in ("Note", "Information"):
        if key in payload:
            message = _line(payload[key])
            if key == "Information" and message.startswith(NO_ARTICLES):
                return []
            if any(word in message.lower() for word in _RATE_LIMIT_WORDS):
                raise NewsRefused(f"Alpha Vantage rate limit: {message}")
            raise NewsRefused(f"Alpha Vantage refused the request: {message}")
    feed = payload.get("feed")
    if not isinstance(feed, list):
        raise NewsRefused("the reply has no feed list")
    return [item for item in feed if isinstance(item, dict)]


def published_before(feed: list[dict[str, Any]], now: datetime) -> list[NewsArticle]:
    """The feed's articles published strictly before ``now``, newest first; undated ones and
    unparseable dates are dropped, whatever window the server applied."""
    dated = [(published_at(item.get("time_published")), item) for item in feed]
    kept = [(when, item) for when, item in dated if when is not None and when < now]
    kept.sort(key=lambda pair: pair[0], reverse=True)
    return [_article(item, when) for when, item in kept]


def _article(item: dict[str, Any], when: datetime) -> NewsArticle:
    sentiments: list[TickerSentiment] = [
        {
            "ticker": _text(entry.get("ticker")),
            "relevance_score": _text(entry.get("relevance_score")),
            "ticker_sentiment_score": _text(entry.get("ticker_sentiment_score")),
            "ticker_sentiment_label": _text(entry.get("ticker_sentiment_label")),
        }
        for entry in item.get("ticker_sentiment") or []
        if isinstance(entry, dict)
    ]
    return {
        "title": _text(item.get("title")),
        "url": _text(item.get("url")),
        "published": when.isoformat(),
        "source": _text(item.get("source")),
        "summary": _text(item.get("summary"))[:MAX_CONTENT_CHARS],
        "overall_sentiment_label": _text(item.get("overall_sentiment_label")),
        "ticker_sentiment": sentiments,
    }


class _HideKey(logging.Filter):
    """httpx logs each request's URL (with --verbose), and Alpha Vantage's key is in it."""

    def __init__(self, key: str) -> None:
        super().__init__()
        self.key = key

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if self.key in message:
            record.msg = message.replace(self.key, "***")
            record.args = ()
        return True


class AlphaVantageNews:
    def __init__(self, settings: Settings) -> None:
        self.key = settings.alphavantage_api_key
        self.base_url = settings.alphavantage_base_url
        httpx_log = logging.getLogger("httpx")
        if self.key and not any(
            isinstance(f, _HideKey) and f.key == self.key for f in httpx_log.filters
        ):
            httpx_log.addFilter(_HideKey(self.key))

    def _hidden(self, text: str) -> str:
        return text.replace(self.key, "***") if self.key else text

    async def articles(
        self, tickers: list[str], topics: list[str], now: datetime
    ) -> list[NewsArticle]:
        params = {
            "function": "NEWS_SENTIMENT",
            **news_window(now),
            "sort": "LATEST",
            "limit": str(NEWS_LIMIT),
            "apikey": self.key or "",
        }
        if tickers:
            params["tickers"] = ",".join(tickers)
        if topics:
            params["topics"] = ",".join(topics)
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                reply = await client.get(self.base_url, params=params)
        except httpx.HTTPError as exc:
            raise NewsRefused(self._hidden(f"{type(exc).__name__}: {_line(exc)}")) from None
        # Not raise_for_status(): its message holds the URL, and with it the key.
        if reply.status_code >= 400:
            raise NewsRefused(f"HTTP {reply.status_code} from Alpha Vantage")
        try:
            payload = reply.json()
        except ValueError:
            raise NewsRefused("the reply is not JSON") from None
        found = published_before(feed_of(payload), now)
        return found[:MAX_NEWS_RESULTS]


def _news_service(settings: Settings) -> Service:
    server = Service("search", "Market news published before the simulated now.")
    news = AlphaVantageNews(settings)

    @server.tool_from
    async def get_information(query: Query, ctx: Context) -> NewsAnswer:
        """Market news (Alpha Vantage's news feed) published before today, newest first.

        Write tickers in capitals (NVDA, CRYPTO:BTC) to get articles that mention every one
        of them, and a topic by its name (earnings, ipo, technology, financial_markets,
        economy_macro, ...) to narrow to it; write other words in lower case: they do not
        filter."""
        if not news.key:
            raise ToolError("search is unavailable: ALPHAADVANTAGE_API_KEY is not set")
        today = request_today(ctx)
        now = simulated_now(today)
        tickers, topics = query_filters(query)
        try:
            with anyio.fail_after(SEARCH_DEADLINE):
                articles = await news.articles(tickers, topics, now)
        except TimeoutError:
            raise ToolError(f"news search failed: no answer within {SEARCH_DEADLINE:g} s") from None
        except NewsRefused as exc:
            raise ToolError(f"news search failed: {exc}") from None
        return {
            "query": query,
            "today": today,
            "published_before": now.isoformat(),
            "tickers": tickers,
            "topics": topics,
            "results": articles,
        }

    return server


def _jina_service(settings: Settings) -> Service:
    server = Service("search", "Search the web for market news published before today.")
    jina = JinaClient(settings)

    @server.tool_from
    async def get_information(query: Query, ctx: Context) -> SearchAnswer:
        """Search the web for `query` and read the top results published before today."""
        if not jina.key:
            raise ToolError("search is unavailable: JINA_API_KEY is not set")
        today = request_today(ctx)
        try:
            with anyio.fail_after(SEARCH_DEADLINE):
                articles = await jina.articles(query, today)
        except TimeoutError:
            raise ToolError(f"search failed: no answer within {SEARCH_DEADLINE:g} s") from None
        except (httpx.HTTPError, ValueError) as exc:
            raise ToolError(f"search failed: {type(exc).__name__}: {exc}") from None
        return {"query": query, "today": today, "results": articles}

    return server


def build(settings: Settings) -> Service:
    if settings.search_provider == ALPHAVANTAGE:
        return _news_service(settings)
    return _jina_service(settings)
