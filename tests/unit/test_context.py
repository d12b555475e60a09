"""The run context each tool call carries in its _meta."""

from __future__ import annotations

import pytest

from ai_trader.context import (
    META_KEY,
    ContextError,
    RunContext,
    from_meta,
    today_from_meta,
    valid_books,
    valid_day,
    valid_signature,
)

TOKEN = "0123456789abcdef" * 2


def entry(**changes: object) -> dict[str, object]:
    good = {"today": "2025-10-29", "signature": "a", "books": "agent_data", "token": TOKEN}
    return {k: v for k, v in {**good, **changes}.items() if v is not None}


def test_a_context_round_trips_through_meta():
    context = RunContext("model-a", "2025-10-29", "agent_data", TOKEN)
    assert from_meta(context.to_meta()) == context


def test_prices_and_search_need_only_today():
    assert today_from_meta({META_KEY: {"today": "2025-10-29"}}) == "2025-10-29"


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        (None, "no run context"),
        ("2025-10-29", "must be an object"),
        (entry(today="2025-02-30"), "today '2025-02-30'"),
        (entry(today="20251029"), "today '20251029'"),
        (entry(today="2025-10-29\n"), "today '2025-10-29\\\\n'"),
        (entry(signature="../a"), "signature '../a'"),
        (entry(signature="a\n"), "signature 'a\\\\n'"),
        (entry(books="/data/agent_data"), "books '/data/agent_data'"),
        (entry(books="agent_data/../.."), "books 'agent_data/../..'"),
        (entry(books=".."), "books '..'"),
        (entry(books="agent_data/"), "books 'agent_data/'"),
        (entry(books="agent_data\n"), "books 'agent_data\\\\n'"),
        (entry(books=None), "books None"),
        (entry(books="a" * 5000), "books 'aaaa"),
        (entry(token=None), "token is missing"),
        (entry(token="0" * 31), "token is missing or not 32 hex digits"),
        (entry(token=TOKEN + "\n"), "token is missing or not 32 hex digits"),
    ],
)
def test_a_missing_or_unusable_context_is_refused_saying_why(raw: object, problem: str):
    meta = {} if raw is None else {META_KEY: raw}
    with pytest.raises(ContextError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        from_meta(meta)


def test_an_overlong_value_is_shown_cut_short_in_the_one_line():
    with pytest.raises(ContextError) as raised:
        from_meta({META_KEY: entry(books="a" * 5000)})
    assert len(str(raised.value)) < 300


@pytest.mark.parametrize(
    ("check", "good"),
    [(valid_signature, "model-a"), (valid_day, "2025-10-29"), (valid_books, "agent_data/x")],
)
def test_names_are_matched_whole_so_a_trailing_newline_is_refused(check, good: str):
    assert check(good)
    assert not check(good + "\n")
    assert not check(" " + good)
