"""Names are matched whole: a signature, a ticker or a date with a trailing newline (which
``re.match`` with ``$`` would let through) is refused wherever one is validated."""

from __future__ import annotations

import json

import pytest
from support import TODAY, Services, Session, tool_error

from ai_trader.config import parse_config
from ai_trader.errors import UserError
from ai_trader.jsonl import BadLine
from ai_trader.ledger import read_line
from ai_trader.market.pricebook import parse_line


@pytest.fixture
def session(services: Services) -> Session:
    return services.start_session()


def config_with(**changes: object) -> dict:
    model = {"name": "m", "basemodel": "builtin/momentum", "signature": "m"}
    raw = {"date_range": {"init_date": "2025-10-01", "end_date": "2025-10-31"}, "models": [model]}
    for key, value in changes.items():
        if key == "signature":
            model["signature"] = value
        else:
            raw["date_range"][key] = value
    return raw


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"signature": "model-a\n"}, "models.0.signature"),
        ({"init_date": "2025-10-01\n"}, "date_range.init_date"),
        ({"end_date": "2025-10-31\n"}, "date_range.end_date"),
    ],
)
def test_a_config_name_or_date_with_a_trailing_newline_is_refused(change: dict, key: str):
    with pytest.raises(UserError, match=f"^config test: {key}: "):
        parse_config(config_with(**change), "test")


def test_a_ticker_with_a_trailing_newline_is_refused_by_the_trade_service(
    services: Services, session: Session
):
    text = tool_error(
        services.url("trade"), "buy", {"symbol": "AAPL\n", "amount": 1}, session.context
    )
    assert text.startswith("invalid arguments: symbol: String should match pattern")
    assert session.ledger.pending(TODAY) == []


@pytest.mark.parametrize(
    ("symbol", "day", "field"),
    [("AAPL\n", "2025-10-28", "symbol"), ("AAPL", "2025-10-28\n", "date")],
)
def test_a_ticker_or_date_with_a_trailing_newline_is_refused_by_the_prices_service(
    services: Services, session: Session, symbol: str, day: str, field: str
):
    arguments = {"symbol": symbol, "date": day}
    text = tool_error(services.url("prices"), "get_price_local", arguments, session.context)
    assert text.startswith(f"invalid arguments: {field}: String should match pattern")


def test_a_book_row_dated_with_a_trailing_newline_is_refused():
    row = {"date": "2025-10-01\n", "id": 0, "positions": {"CASH": 1.0}}
    with pytest.raises(BadLine, match="'date'"):
        read_line(json.dumps(row))


def test_a_price_day_with_a_trailing_newline_is_refused():
    line = {
        "Meta Data": {"2. Symbol": "AAPL"},
        "Time Series (Daily)": {"2025-10-01\n": {"1. buy price": "1.0", "4. sell price": "1.0"}},
    }
    with pytest.raises(BadLine):
        parse_line(json.dumps(line))
