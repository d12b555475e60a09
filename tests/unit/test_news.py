"""The search service with Alpha Vantage's news feed (SEARCH_PROVIDER=alphavantage): a real
`serve --only search` over HTTP, a real MCP client, and the stand-in feed speaking
NEWS_SENTIMENT's wire format. The simulated now of a call is the start of its day (TODAY)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from support import TODAY, Services, cli_env, closed_ports, run_cli, tool_error, tool_value

from ai_trader.context import RunContext
from ai_trader.errors import UserError
from ai_trader.services import search
from ai_trader.settings import load_settings

CONTEXT = RunContext("news-reader", TODAY, "agent_data", "0" * 32)
# TODAY is 2025-10-29: its start, and the window the feed is asked for.
NOW_STAMP = "20251029T0000"
THIRTY_DAYS_BEFORE = "20250929T0000"


def article(url: str, published: Any, tickers: tuple[str, ...] = ("NVDA",)) -> dict[str, Any]:
    """One article as the feed writes it (``published`` as given, missing when None)."""
    item: dict[str, Any] = {
        "title": f"Story at {url}",
        "url": url,
        "authors": ["A. Reporter"],
        "summary": f"What happened, per {url}.",
        "banner_image": None,
        "source": "Example Wire",
        "category_within_source": "Markets",
        "source_domain": "news.example.com",
        "topics": [{"topic": "Earnings", "relevance_score": "0.8"}],
        "overall_sentiment_score": 0.2,
        "overall_sentiment_label": "Somewhat-Bullish",
        "ticker_sentiment": [
            {"ticker": t, "relevance_score": "0.7", "ticker_sentiment_score": "0.25",
             "ticker_sentiment_label": "Somewhat-Bullish"}
            for t in tickers
        ],
    }  # fmt: skip
    if published is not None:
        item["time_published"] = published
    return item


# Before, at and after the simulated now (2025-10-29 00:00), newest last.
AROUND_NOW = [
    article("https://n.example/last-week", "20251022T130000"),
    article("https://n.example/last-minute", "20251028T235959"),
    article("https://n.example/at-now", "20251029T000000"),
    article("https://n.example/same-morning", "20251029T093000"),
    article("https://n.example/next-day", "20251030T080000"),
    article("https://n.example/far-future", "20990101T000000"),
]


def news_scenario(mode: str, feed: list[dict[str, Any]]) -> dict[str, Any]:
    return {"news": {"mode": mode, "feed": feed}}


def ask(services: Services, query: str = "market news") -> Any:
    return tool_value(services.url("search"), "get_information", {"query": query}, CONTEXT)


def refusal(services: Services, query: str = "market news") -> str:
    return tool_error(services.url("search"), "get_information", {"query": query}, CONTEXT)


def news_requests(standin: Any) -> list[dict[str, Any]]:
    requests: list[dict[str, Any]] = standin.stats()["alphavantage_news"]["requests"]
    return requests


def in_process(env: dict[str, str], query: str = "market news") -> Any:
    """The tool's result from a search service built in this process (the SDK's in-memory
    transport), for settings the session's `serve` was not started with."""
    from mcp import Client

    async def go() -> Any:
        async with Client(search.build(load_settings(env))) as client:
            return await client.call_tool(
                "get_information", {"query": query}, meta=CONTEXT.to_meta()
            )

    return asyncio.run(go())


# --- no look-ahead --------------------------------------------------------------------------


def test_the_stand_in_that_ignores_the_window_does_serve_future_articles(jina_standin):
    # What the next test's server offers: without our own filter these would reach the model.
    jina_standin.set_scenario(news_scenario("ignore_window", AROUND_NOW))
    reply = httpx.get(
        jina_standin.alphavantage_url,
        params={"function": "NEWS_SENTIMENT", "time_to": NOW_STAMP, "apikey": "k"},
    ).json()
    served = {item["url"] for item in reply["feed"]}
    assert {"https://n.example/same-morning", "https://n.example/far-future"} <= served


def test_news_published_at_or_after_the_simulated_now_never_reaches_the_model(
    news_services: Services, jina_standin
):
    jina_standin.set_scenario(news_scenario("ignore_window", AROUND_NOW))
    answer = ask(news_services)
    assert [item["url"] for item in answer["results"]] == [
        "https://n.example/last-minute",
        "https://n.example/last-week",
    ]
    assert answer["published_before"] == f"{TODAY}T00:00:00"


def test_news_without_a_date_or_with_an_unreadable_one_is_dropped(
    news_services: Services, jina_standin
):
    feed = [
        article("https://n.example/dated", "20251027T101500"),
        article("https://n.example/no-date", None),
        article("https://n.example/empty-date", ""),
        article("https://n.example/words", "yesterday"),
        article("https://n.example/iso", "2025-10-27"),
        article("https://n.example/no-such-month", "20251327T101500"),
        article("https://n.example/a-number", 20251027),
    ]
    jina_standin.set_scenario(news_scenario("ignore_window", feed))
    answer = ask(news_services)
    assert [item["url"] for item in answer["results"]] == ["https://n.example/dated"]


def test_an_article_comes_to_the_model_with_its_date_source_and_sentiment(
    news_services: Services, jina_standin
):
    jina_standin.set_scenario(
        news_scenario("window", [article("https://n.example/one", "20251027T101500")])
    )
    (item,) = ask(news_services)["results"]
    assert item == {
        "title": "Story at https://n.example/one",
        "url": "https://n.example/one",
        "published": "2025-10-27T10:15:00",
        "source": "Example Wire",
        "summary": "What happened, per https://n.example/one.",
        "overall_sentiment_label": "Somewhat-Bullish",
        "ticker_sentiment": [
            {"ticker": "NVDA", "relevance_score": "0.7", "ticker_sentiment_score": "0.25",
             "ticker_sentiment_label": "Somewhat-Bullish"}
        ],
    }  # fmt: skip


# --- what the feed is asked -----------------------------------------------------------------


def test_the_feed_is_asked_for_thirty_days_ending_at_the_simulated_now(
    news_services: Services, jina_standin
):
    jina_standin.set_scenario(news_scenario("window", AROUND_NOW))
    ask(news_services)
    (request,) = news_requests(jina_standin)
    assert request == {
        "function": "NEWS_SENTIMENT",
        "time_from": THIRTY_DAYS_BEFORE,
        "time_to": NOW_STAMP,
        "sort": "LATEST",
        "limit": "50",
        "apikey_given": True,
    }


def test_an_honest_feed_and_our_filter_agree_on_the_window(news_services: Services, jina_standin):
    jina_standin.set_scenario(news_scenario("window", AROUND_NOW))
    answer = ask(news_services)
    # The server keeps 00:00 itself (its window is to the minute, both ends); we do not.
    assert [item["url"] for item in answer["results"]] == [
        "https://n.example/last-minute",
        "https://n.example/last-week",
    ]


def test_tickers_and_topics_written_in_the_query_are_sent_as_filters(
    news_services: Services, jina_standin
):
    feed = [
        article("https://n.example/nvda", "20251027T101500", ("NVDA",)),
        article("https://n.example/both", "20251026T101500", ("NVDA", "CRYPTO:BTC")),
    ]
    jina_standin.set_scenario(news_scenario("window", feed))
    answer = ask(news_services, "NVDA and CRYPTO:BTC, earnings outlook")
    (request,) = news_requests(jina_standin)
    assert (request["tickers"], request["topics"]) == ("NVDA,CRYPTO:BTC", "earnings")
    assert (answer["tickers"], answer["topics"]) == (["NVDA", "CRYPTO:BTC"], ["earnings"])
    assert [item["url"] for item in answer["results"]] == ["https://n.example/both"]


def test_one_letter_and_lower_case_words_are_not_read_as_tickers():
    assert search.query_filters("A look at what I think of Nvidia and nvda") == ([], [])


def test_at_most_five_articles_reach_the_model_newest_first(news_services: Services, jina_standin):
    feed = [article(f"https://n.example/{day}", f"202510{day:02d}T120000") for day in range(1, 9)]
    jina_standin.set_scenario(news_scenario("ignore_window", feed))
    answer = ask(news_services)
    assert [item["url"] for item in answer["results"]] == [
        f"https://n.example/{day}" for day in (8, 7, 6, 5, 4)
    ]


def test_no_articles_in_the_window_is_an_empty_answer(news_services: Services, jina_standin):
    jina_standin.set_scenario(
        news_scenario("window", [article("https://n.example/future", "20990101T000000")])
    )
    answer = ask(news_services)
    assert answer["results"] == []


# --- refusals: one line, isError, never an empty "no news" ----------------------------------


@pytest.mark.parametrize("mode", ["note", "information"])
def test_a_rate_limit_reply_is_a_tool_error(news_services: Services, jina_standin, mode: str):
    jina_standin.set_scenario(news_scenario(mode, AROUND_NOW))
    text = refusal(news_services)
    assert text.startswith("news search failed: Alpha Vantage rate limit: "), text


def test_a_server_error_is_a_tool_error(news_services: Services, jina_standin):
    jina_standin.set_scenario(news_scenario("http_error", AROUND_NOW))
    assert refusal(news_services) == "news search failed: HTTP 503 from Alpha Vantage"


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"Error Message": "the parameter apikey is invalid or missing."},
         "Alpha Vantage error: the parameter apikey is invalid or missing."),
        ({"Information": "Invalid inputs. Please refer to the API documentation."},
         "Alpha Vantage refused the request: Invalid inputs. Please refer to the API "
         "documentation."),
        ({"Information": "Thank you for using Alpha Vantage! This is a premium endpoint."},
         "Alpha Vantage refused the request: Thank you for using Alpha Vantage! This is a "
         "premium endpoint."),
        ({"items": "0"}, "the reply has no feed list"),
        ([], "the reply is not a JSON object"),
    ],
)  # fmt: skip
def test_an_error_reply_is_refused_with_its_reason(payload: Any, reason: str):
    with pytest.raises(search.NewsRefused) as refused:
        search.feed_of(payload)
    assert str(refused.value) == reason


def test_a_multi_line_refusal_reaches_the_model_as_one_line():
    with pytest.raises(search.NewsRefused) as refused:
        search.feed_of({"Note": "Thank you for using Alpha Vantage!\nOur standard API rate limit"})
    assert str(refused.value) == (
        "Alpha Vantage rate limit: Thank you for using Alpha Vantage! Our standard API rate limit"
    )


def test_news_without_an_alpha_vantage_key_is_a_tool_error(news_services: Services):
    keyless = {k: v for k, v in news_services.env.items() if k != "ALPHAADVANTAGE_API_KEY"}
    result = in_process(keyless)
    assert result.is_error
    assert result.content[0].text == "search is unavailable: ALPHAADVANTAGE_API_KEY is not set"


def test_an_unreachable_feed_is_a_tool_error_that_does_not_show_the_key(
    news_services: Services,
):
    with closed_ports(1) as (port,):
        env = {**news_services.env, "ALPHAVANTAGE_BASE_URL": f"http://127.0.0.1:{port}/query"}
        result = in_process(env)
    assert result.is_error
    text = result.content[0].text
    assert text.startswith("news search failed: ConnectError"), text
    assert "\n" not in text
    assert "test-news-key" not in text


def test_the_http_client_log_never_shows_the_key(
    news_services: Services, jina_standin, caplog: pytest.LogCaptureFixture
):
    jina_standin.set_scenario(news_scenario("window", AROUND_NOW))
    with caplog.at_level(logging.INFO, logger="httpx"):
        result = in_process(news_services.env)
    assert not result.is_error, result.content
    assert "apikey=***" in caplog.text  # the request was logged, its key hidden
    assert "test-news-key" not in caplog.text


def test_the_key_is_read_from_its_file_form(news_services: Services, jina_standin, tmp_path):
    key_file = tmp_path / "av-key"
    key_file.write_text("key-from-a-file\n")
    env = {k: v for k, v in news_services.env.items() if k != "ALPHAADVANTAGE_API_KEY"}
    env["ALPHAADVANTAGE_API_KEY_FILE"] = str(key_file)
    jina_standin.set_scenario(news_scenario("window", AROUND_NOW))
    result = in_process(env)
    assert not result.is_error, result.content
    assert news_requests(jina_standin)[0]["apikey_given"] is True


# --- the setting ----------------------------------------------------------------------------


def test_jina_stays_the_default_search_provider():
    assert load_settings({}).search_provider == "jina"


def test_an_unknown_search_provider_is_refused_in_the_settings():
    with pytest.raises(UserError, match=r"^SEARCH_PROVIDER must be jina or alphavantage, got"):
        load_settings({"SEARCH_PROVIDER": "bing"})


def test_serve_with_an_unknown_search_provider_exits_with_one_line(tmp_path):
    env = cli_env({"DATA_DIR": str(tmp_path), "SEARCH_PROVIDER": "Jina"})
    result = run_cli("serve", "--only", "search", env=env, timeout=60)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "ai-trader serve: error: SEARCH_PROVIDER must be jina or alphavantage, got 'Jina'"
    ], result.stderr
