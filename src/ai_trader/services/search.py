"""The search service: web search and page reading through Jina, with no look-ahead."""

from __future__ import annotations

import re
from datetime import date, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from mcp.server.mcpserver import MCPServer

from ai_trader.runtime import read_state
from ai_trader.services.common import new_server
from ai_trader.settings import Settings

MAX_RESULTS = 3
MAX_CONTENT_CHARS = 3000
_ISO_DAY = re.compile(r"(\d{4}-\d{2}-\d{2})")


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


def build(settings: Settings) -> MCPServer:
    server = new_server("search", "Search the web for market news published before today.")
    jina = JinaClient(settings)
    runtime_path: Path = settings.runtime_env_path

    @server.tool()
    async def get_information(query: str) -> dict[str, Any]:
        """Search the web for `query` and read the top results published before today."""
        if not jina.key:
            return {"error": "search is unavailable: JINA_API_KEY is not set", "query": query}
        state = read_state(runtime_path)
        today = state.today_date if state else date.today().isoformat()
        try:
            async with httpx.AsyncClient(timeout=30) as client:
                found = before_today(await jina.search(client, query), today)[:MAX_RESULTS]
                articles = []
                for item in found:
                    page = await jina.read(client, str(item.get("url", "")))
                    content = str(
                        page.get("content") or item.get("content") or item.get("description") or ""
                    )
                    articles.append(
                        {
                            "title": item.get("title", ""),
                            "url": item.get("url", ""),
                            "date": item.get("date") or page.get("publishedTime"),
                            "content": content[:MAX_CONTENT_CHARS],
                        }
                    )
        except (httpx.HTTPError, ValueError) as exc:
            return {"error": f"search failed: {type(exc).__name__}: {exc}", "query": query}
        return {"query": query, "today": today, "results": articles}

    return server
