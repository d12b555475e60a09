"""Whose book a trade call may change: only the book of the run that holds the signature,
inside the services' own data folder, on a day that is still open (``services.trade``).

Every call goes over real MCP to the real `serve` process. Each refusal is one line with
``isError: true``; the book, the stage and every file outside the data folder stay as they
were, and the service keeps serving without a traceback in its log.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from support import PAST_DAY, TODAY, Services, Session, call_tool, tool_value

from ai_trader.context import RunContext
from ai_trader.ledger import Ledger
from ai_trader.lock import signature_lock
from ai_trader.market.universe import NASDAQ_100

BUY = {"symbol": "AAPL", "amount": 1}


@pytest.fixture
def session(services: Services) -> Session:
    return services.start_session()


@pytest.fixture
def quiet_log(services: Services) -> Iterator[None]:
    """The serve log must gain no traceback while the test runs."""
    start = services.log.stat().st_size
    yield
    with services.log.open("rb") as log:
        log.seek(start)
        added = log.read().decode("utf-8", "replace")
    assert "Traceback" not in added, added


def files_under(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def refusal(services: Services, context: RunContext, arguments: dict = BUY) -> str:
    result = call_tool(services.url("trade"), "buy", arguments, context)
    assert result.is_error, result.structured_content
    (part,) = result.content
    assert "\n" not in part.text
    return part.text


def answers(services: Services) -> bool:
    return tool_value(services.url("math"), "add", {"a": 1, "b": 1}) == 2


# --- only the run that holds the signature -----------------------------------------------------


def test_a_call_with_a_foreign_token_is_refused_and_stages_nothing(
    services: Services, session: Session, quiet_log: None
):
    before = files_under(session.ledger.root)
    forged = replace(session.context, token="f" * 32)
    text = refusal(services, forged)
    assert text == (
        "signature 'tester' is not this call's to trade: "
        "the call's token is not that of the run that holds it"
    )
    assert files_under(session.ledger.root) == before


def test_a_call_for_a_signature_no_run_holds_is_refused(
    services: Services, session: Session, quiet_log: None
):
    session.lock.release()  # the run ended: its token is worth nothing now
    before = files_under(session.ledger.root)
    text = refusal(services, session.context)
    assert text == "signature 'tester' is not this call's to trade: no run holds it now"
    assert files_under(session.ledger.root) == before


def test_the_token_of_an_earlier_run_of_the_signature_is_refused(
    services: Services, session: Session, quiet_log: None
):
    old = session.context
    session.lock.release()
    with signature_lock(session.ledger.root):  # the next run of the same signature
        assert "the call's token is not that of the run" in refusal(services, old)
    assert not session.ledger.pending_file.exists()


def test_a_call_with_its_holders_token_trades(services: Services, session: Session):
    answer = tool_value(services.url("trade"), "buy", BUY, session.context)
    assert answer["positions"]["AAPL"] == 1


# --- inside the data folder, and nowhere else ------------------------------------------------


@pytest.mark.parametrize(
    ("books", "problem"),
    [
        ("..", "books '..' is not a folder inside the data folder"),
        ("agent_data/../..", "books 'agent_data/../..' is not a folder inside the data folder"),
        ("/etc", "books '/etc' is not a folder inside the data folder"),
        ("agent_data\n", "books 'agent_data\\n' is not a folder inside the data folder"),
    ],
)
def test_a_books_folder_outside_the_data_folder_is_refused(
    services: Services, session: Session, quiet_log: None, books: str, problem: str
):
    assert problem in refusal(services, replace(session.context, books=books))
    assert answers(services)


def test_a_signature_with_a_trailing_newline_is_refused(
    services: Services, session: Session, quiet_log: None
):
    text = refusal(services, replace(session.context, signature="tester\n"))
    assert text == "run context: signature 'tester\\n' is not a plain folder name"


def test_a_book_reached_through_a_link_out_of_the_data_folder_is_refused(
    services: Services, session: Session, tmp_path: Path, quiet_log: None
):
    # A real, held book outside the data folder, and a link to it inside.
    outside = Ledger(tmp_path / "elsewhere")
    outside.ensure_initialized("2025-10-01", NASDAQ_100, 10000.0)
    link = services.settings.data_dir / session.context.books / "linked"
    link.symlink_to(outside.root, target_is_directory=True)
    before = files_under(tmp_path)
    with signature_lock(outside.root) as held:
        context = replace(session.context, signature="linked", token=held.token)
        text = refusal(services, context)
    assert text.startswith("the book of signature 'linked' leads out of the data folder")
    assert files_under(tmp_path) == {**before, outside.root / ".lock": b""}


def test_a_stage_that_links_out_of_the_data_folder_is_refused(
    services: Services, session: Session, tmp_path: Path, quiet_log: None
):
    target = tmp_path / "victim.txt"
    target.write_text("keep me\n")
    session.ledger.pending_file.symlink_to(target)
    text = refusal(services, session.context)
    assert "leads out of the data folder" in text
    assert "pending.jsonl is a link elsewhere" in text
    assert target.read_text() == "keep me\n"


def test_an_overlong_books_folder_is_one_line_and_the_service_keeps_serving(
    services: Services, session: Session, quiet_log: None
):
    text = refusal(services, replace(session.context, books="a" * 5000))
    assert text.startswith("run context: books 'aaaa")
    assert len(text) < 300
    assert answers(services)


def test_a_books_path_longer_than_the_file_system_takes_is_one_line(
    services: Services, session: Session, quiet_log: None
):
    # Each part is a legal name; together they are too long for a path (PATH_MAX 4096).
    deep = "/".join(["d" * 250] * 4)
    text = refusal(services, replace(session.context, books=deep))
    assert text in (
        "no book for signature 'tester' in " + repr(deep) + " under the data folder "
        "(ai-trader run creates it before trading)",
        "cannot open the book of 'tester': File name too long",
    )
    assert answers(services)


# --- a day that is still open ------------------------------------------------------------------


def test_a_trade_on_a_day_the_book_has_committed_is_refused_and_stages_nothing(
    services: Services, session: Session, quiet_log: None
):
    tool_value(services.url("trade"), "buy", BUY, session.context)
    session.ledger.commit_day(TODAY)
    before = files_under(session.ledger.root)
    for day in (PAST_DAY, TODAY):
        text = refusal(services, replace(session.context, today=day))
        assert text == (
            f"cannot record the trade: {day} is done: the book is committed up to {TODAY}; "
            "a trade can only be for a later day"
        )
    assert files_under(session.ledger.root) == before


def test_a_trade_dated_before_the_staged_day_keeps_the_days_trades(
    services: Services, session: Session, quiet_log: None
):
    tool_value(services.url("trade"), "buy", BUY, session.context)
    staged = session.ledger.pending_file.read_bytes()
    text = refusal(services, replace(session.context, today=PAST_DAY))
    assert text == (
        f"cannot record the trade: {PAST_DAY} is before the day already staged ({TODAY}); "
        "a trade is never dated back"
    )
    assert session.ledger.pending_file.read_bytes() == staged


# --- what the answer says ------------------------------------------------------------------------


def test_share_counts_in_a_trade_answer_are_whole_numbers(services: Services, session: Session):
    result = call_tool(
        services.url("trade"), "buy", {"symbol": "AAPL", "amount": 3}, session.context
    )
    (part,) = result.content
    positions = json.loads(part.text)["positions"]
    assert positions["AAPL"] == 3
    assert type(positions["AAPL"]) is int
    assert type(positions["CASH"]) is float
