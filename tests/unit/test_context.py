"""The run context each tool call carries in its _meta."""

from __future__ import annotations

import pytest

from ai_trader.context import META_KEY, ContextError, RunContext, from_meta, today_from_meta


def test_a_context_round_trips_through_meta():
    context = RunContext("model-a", "2025-10-29", "/data/agent_data")
    assert from_meta(context.to_meta()) == context


def test_prices_and_search_need_only_today():
    assert today_from_meta({META_KEY: {"today": "2025-10-29"}}) == "2025-10-29"


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        (None, "no run context"),
        ("2025-10-29", "must be an object"),
        ({"today": "2025-02-30", "signature": "a", "log_path": "/x"}, "today '2025-02-30'"),
        ({"today": "20251029", "signature": "a", "log_path": "/x"}, "today '20251029'"),
        ({"today": "2025-10-29", "signature": "../a", "log_path": "/x"}, "signature '../a'"),
        ({"today": "2025-10-29", "signature": "a", "log_path": "x"}, "log_path 'x'"),
        ({"today": "2025-10-29", "signature": "a"}, "log_path None"),
    ],
)
def test_a_missing_or_unusable_context_is_refused_saying_why(entry: object, problem: str):
    meta = {} if entry is None else {META_KEY: entry}
    with pytest.raises(ContextError, match=problem.replace("(", r"\(").replace(".", r"\.")):
        from_meta(meta)
