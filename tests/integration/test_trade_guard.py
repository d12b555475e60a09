"""Whose book a trade call may change, against the real image: only the book of the run that
holds the signature, inside the container's data folder, on a day still open.

A run is kept on its first day by a model that does not answer; the calls come from the host
over the published trade port, as any local process could send them. Each refusal is one
line with ``isError: true``, nothing in the data folder changes, and the service keeps
serving with no traceback in the container's log.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import SERVICE_PORTS, Stack, short_config
from mcp import Client

from ai_trader.layout import BookPaths, books_dir

# One held run for the whole module: keep its tests on one worker.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("test_trade_guard")]

SIGNATURE = "held"
OPENING_DAY = "2025-09-30"  # the default config's init_date: the book's opening row
FIRST_DAY, SECOND_DAY = "2025-10-01", "2025-10-02"
BUY = {"symbol": "AAPL", "amount": 1}


@pytest.fixture(scope="module")
def held(new_stack) -> Iterator[Stack]:
    """A run that holds SIGNATURE and waits on its model on the first day, for good: the
    model stand-in answers after an hour, long after the module's last call."""
    stack = new_stack()
    model = {"name": SIGNATURE, "basemodel": "gpt-stand-in", "signature": SIGNATURE}
    config = short_config(end_date="2025-10-31", models=[model])
    stack.standins.set_scenario({"openai": {"delay": 3600}})
    stack.up(AI_TRADER_CONFIG=stack.data_config("held.json", config), OPENAI_API_KEY="sk-x")
    try:
        stack.wait_for_log("step 4/4")
        # The model's first request has arrived: the run holds the lock and waits.
        stack.wait_until(lambda: stack.standins.stats()["openai"]["requests"] >= 1)
        yield stack
    finally:
        stack.down()


def token(stack: Stack) -> str:
    """The live run's token, as its lock file holds it (readable by the run's user)."""
    lock = BookPaths(books_dir(stack.data) / SIGNATURE).lock_file
    return str(json.loads(lock.read_text())["token"])


def context(stack: Stack, **changes: str) -> dict[str, Any]:
    run = {"signature": SIGNATURE, "today": FIRST_DAY, "books": "agent_data"}
    return {"ai-trader/run": {**run, "token": token(stack), **changes}}


def call(stack: Stack, meta: dict[str, Any], arguments: dict[str, Any] = BUY) -> Any:
    _, port = stack.host_port(SERVICE_PORTS["trade"])

    async def go() -> Any:
        async with Client(f"http://127.0.0.1:{port}/mcp", mode="legacy") as client:
            return await client.call_tool("buy", arguments, meta=meta)

    return asyncio.run(go())


def refusal(stack: Stack, meta: dict[str, Any]) -> str:
    result = call(stack, meta)
    assert result.is_error, result.structured_content
    (part,) = result.content
    assert "\n" not in part.text
    return part.text


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def unchanged(held: Stack) -> Iterator[Stack]:
    """The data folder is the same after the test's calls, and the log has no traceback."""
    book = books_dir(held.data) / SIGNATURE
    before = files(book)
    yield held
    assert files(book) == before
    assert "Traceback" not in held.logs_text()


def test_a_call_with_a_foreign_token_is_refused(unchanged: Stack) -> None:
    text = refusal(unchanged, context(unchanged, token="f" * 32))
    assert text == (
        "signature 'held' is not this call's to trade: "
        "the call's token is not that of the run that holds it"
    )


@pytest.mark.parametrize(
    "books", ["..", "agent_data/..", "/app/data/agent_data", "/tmp", "agent_data\n"]
)
def test_a_books_folder_outside_the_data_folder_is_refused(unchanged: Stack, books: str) -> None:
    text = refusal(unchanged, context(unchanged, books=books))
    assert text == f"run context: books {books!r} is not a folder inside the data folder " + (
        "(relative, plain names separated by '/', at most 1024 characters)"
    )


def test_a_book_reached_through_a_link_out_of_the_data_folder_is_refused(
    unchanged: Stack,
) -> None:
    # Inside the container the link leads to its /tmp: out of /app/data.
    link = books_dir(unchanged.data) / "escape"
    link.symlink_to("/tmp", target_is_directory=True)
    try:
        text = refusal(unchanged, context(unchanged, signature="escape"))
    finally:
        link.unlink()
    assert text.startswith("the book of signature 'escape' leads out of the data folder")


def test_an_overlong_books_path_is_one_line(unchanged: Stack) -> None:
    deep = "/".join(["d" * 250] * 4)
    text = refusal(unchanged, context(unchanged, books=deep))
    assert text.startswith(("no book for signature 'held'", "cannot open the book of 'held'"))
    assert refusal(unchanged, context(unchanged, books="a" * 5000)).startswith(
        "run context: books 'aaaa"
    )


def test_a_trade_on_a_day_the_book_has_committed_is_refused(unchanged: Stack) -> None:
    text = refusal(unchanged, context(unchanged, today=OPENING_DAY))
    assert text == (
        f"cannot record the trade: {OPENING_DAY} is done: the book is committed up to "
        f"{OPENING_DAY}; a trade can only be for a later day"
    )


def test_a_trade_dated_before_the_staged_day_keeps_the_stage(held: Stack) -> None:
    stage = BookPaths(books_dir(held.data) / SIGNATURE).pending_file
    answer = call(held, context(held, today=SECOND_DAY))
    assert not answer.is_error, answer.content
    staged = stage.read_bytes()
    text = refusal(held, context(held, today=FIRST_DAY))
    assert text == (
        f"cannot record the trade: {FIRST_DAY} is before the day already staged "
        f"({SECOND_DAY}); a trade is never dated back"
    )
    assert stage.read_bytes() == staged
    positions = answer.structured_content["positions"]
    assert positions["AAPL"] == 1
    assert type(positions["AAPL"]) is int
