"""The search service: web search and page reading through Jina, with no look-ahead."""

from __future__ import annotations

import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from typing import Annotated, Any
from urllib.parse import quote

import anyio
import httpx
from mcp.server.mcpserver import Context
from pydantic import Field
from typing_extensions import TypedDict

from ai_trader.services.common import Service, ToolError, request_today
from ai_trader.settings import Settings

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
    """Only results published strictly before the simulated today (undated ones are dropped)."""
    limit = date.fromisoformat(today)
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


def build(settings: Settings) -> Service:
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
