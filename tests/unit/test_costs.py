"""Trading costs: the rules of ``costs`` (slippage, commission, its minimum), how the ledger
fills a trade under them, how a run context carries them, and the trade service charging
them over MCP. Every expected figure is worked out by hand in the test."""

from __future__ import annotations

import dataclasses

import pytest

from ai_trader.context import META_KEY, ContextError, RunContext, from_meta
from ai_trader.costs import FREE, Costs
from ai_trader.ledger import CASH, TradeRejected, fill_trade
from ai_trader.market.pricebook import PriceBook
from unit.support import TODAY, Services, tool_error, tool_value

TEN_BP = Costs(commission_bps=10)
TOKEN = "0" * 32

# --- the schedule ------------------------------------------------------------------------


def test_no_costs_is_free_and_fills_at_the_open():
    assert FREE.free
    assert FREE.fill_price("buy", 123.4567) == 123.4567
    assert FREE.fee(1_000_000.0) == 0.0


def test_slippage_moves_a_buy_up_and_a_sell_down():
    costs = Costs(slippage_bps=5)
    assert costs.fill_price("buy", 100.0) == 100.05
    assert costs.fill_price("sell", 100.0) == 99.95


def test_the_fill_price_is_rounded_to_four_decimals():
    # 33.3333 * 1.0002 = 33.33996666: four decimals keep 33.34
    assert Costs(slippage_bps=2).fill_price("buy", 33.3333) == 33.34


def test_commission_is_basis_points_of_the_gross_value():
    assert TEN_BP.fee(1000.0) == 1.0
    assert TEN_BP.fee(2345.67) == 2.3457  # 2.34567, to four decimals


def test_the_minimum_commission_applies_when_the_basis_points_come_to_less():
    costs = Costs(commission_bps=10, min_commission=5)
    assert costs.fee(1000.0) == 5.0
    assert costs.fee(10_000.0) == 10.0


def test_a_minimum_commission_alone_is_a_flat_fee_a_trade():
    assert Costs(min_commission=1.5).fee(0.01) == 1.5


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"commission_bps": -1}, "commission_bps must be between 0 and 1000, got -1"),
        ({"slippage_bps": float("inf")}, "slippage_bps must be between 0 and 1000, got inf"),
        ({"min_commission": "1"}, "min_commission must be a number, got '1'"),
        ({"commission_bps": True}, "commission_bps must be a number, got True"),
    ],
)
def test_a_schedule_out_of_bounds_is_refused_naming_the_cost(fields: dict, problem: str):
    with pytest.raises(ValueError, match="must be") as caught:
        Costs(**fields)
    assert str(caught.value) == problem


def test_an_unknown_cost_is_refused_naming_it():
    with pytest.raises(ValueError, match="unknown cost 'tax_bps'"):
        Costs.from_mapping({"tax_bps": 1})


def test_whole_and_decimal_numbers_give_one_schedule():
    assert Costs(commission_bps=10) == Costs(commission_bps=10.0)


def test_affordable_without_costs_is_the_budget_over_the_open():
    assert FREE.affordable(1000.0, 33.0) == 30


def test_affordable_with_costs_leaves_room_for_the_fill_and_the_fee():
    # 9 shares: 900 + 1 fee = 901; 10 would be 1000 + 1.
    assert Costs(commission_bps=10, min_commission=1).affordable(1000.0, 100.0) == 9
    # A 200 minimum: 9 shares cost 1100, 8 cost 800 + 200 = 1000 exactly.
    assert Costs(commission_bps=10, min_commission=200).affordable(1000.0, 100.0) == 8
    # Slippage: 100.1 a share, so 9 shares (900.9) fit in 901 and 10 do not.
    assert Costs(slippage_bps=10).affordable(901.0, 100.0) == 9


def test_affordable_is_zero_when_the_fee_alone_is_beyond_the_budget():
    assert Costs(min_commission=50).affordable(40.0, 1.0) == 0


def test_the_schedule_reads_as_words():
    assert FREE.describe() == "no costs"
    assert Costs(5, 1, 2).describe() == "2 bp slippage, 5 bp commission (at least 1.00)"
    assert Costs(min_commission=1).describe() == "a 1.00 fee a trade"


# --- the ledger's fill -----------------------------------------------------------------------


def test_a_buy_pays_the_slipped_fill_and_the_fee_from_cash():
    costs = Costs(commission_bps=10, min_commission=1, slippage_bps=10)
    filled = fill_trade({"AAPL": 0, CASH: 1000.0}, "buy", "AAPL", 9, 100.0, costs)
    # fill 100.1; gross 900.9; fee max(1, 0.9009) = 1; cash 1000 - 901.9
    assert (filled.price, filled.fee) == (100.1, 1.0)
    assert filled.positions == {"AAPL": 9, CASH: 98.1}


def test_a_sell_receives_the_slipped_fill_less_the_fee():
    costs = Costs(commission_bps=10, slippage_bps=10)
    filled = fill_trade({"AAPL": 9, CASH: 0.0}, "sell", "AAPL", 9, 100.0, costs)
    # fill 99.9; gross 899.1; fee 0.8991; cash 898.2009
    assert (filled.price, filled.fee) == (99.9, 0.8991)
    assert filled.positions == {"AAPL": 0, CASH: 898.2009}


def test_a_buy_the_fee_makes_too_dear_is_refused_naming_the_fee():
    with pytest.raises(TradeRejected) as caught:
        fill_trade({CASH: 900.0}, "buy", "AAPL", 9, 100.0, TEN_BP)
    assert str(caught.value) == (
        "insufficient cash: buying 9 AAPL at 100.0 costs 900.00 plus a fee of 0.90 "
        "(10 bp commission) = 900.90, cash is 900.00"
    )


def test_a_refused_buy_with_slippage_names_the_open_and_the_slippage():
    with pytest.raises(TradeRejected, match=r"at 100\.05 \(the open 100\.0 with 5 bp slippage\)"):
        fill_trade({CASH: 100.0}, "buy", "AAPL", 1, 100.0, Costs(slippage_bps=5))


def test_a_sale_whose_fee_is_more_than_it_and_the_cash_is_refused():
    with pytest.raises(TradeRejected) as caught:
        fill_trade({"AAPL": 1, CASH: 0.0}, "sell", "AAPL", 1, 0.5, Costs(min_commission=1))
    assert str(caught.value) == (
        "insufficient cash for the fee: selling 1 AAPL at 0.5 yields 0.50 and the fee is 1.00 "
        "(a 1.00 fee a trade), cash is 0.00"
    )


def test_a_refusal_without_costs_reads_as_it_always_did():
    with pytest.raises(TradeRejected) as caught:
        fill_trade({CASH: 100.0}, "buy", "AAPL", 2, 50.01)
    assert (
        str(caught.value)
        == "insufficient cash: buying 2 AAPL at 50.01 costs 100.02, cash is 100.00"
    )


# --- the run context -------------------------------------------------------------------------


def test_a_free_context_sends_no_costs():
    meta = RunContext("m", TODAY, "agent_data", TOKEN).to_meta()
    assert "costs" not in meta[META_KEY]


def test_a_context_with_costs_carries_them_to_the_service():
    context = RunContext("m", TODAY, "agent_data", TOKEN, Costs(10, 1, 2))
    assert from_meta(context.to_meta()) == context


@pytest.mark.parametrize(
    ("costs", "problem"),
    [
        ([10], "run context: costs must be an object (commission_bps, ...)"),
        ({"commission_bps": -5}, "run context: costs: commission_bps must be between 0 and 1000"),
        ({"fee": 1}, "run context: costs: unknown cost 'fee'"),
    ],
)
def test_a_context_with_unusable_costs_is_refused_in_one_line(costs: object, problem: str):
    meta = RunContext("m", TODAY, "agent_data", TOKEN).to_meta()
    meta[META_KEY]["costs"] = costs
    with pytest.raises(ContextError) as caught:
        from_meta(meta)
    assert str(caught.value).startswith(problem)
    assert "\n" not in str(caught.value)


# --- the trade service -----------------------------------------------------------------------


def test_the_trade_service_charges_the_calls_costs_and_records_fill_and_fee(
    services: Services,
):
    book = PriceBook.load(services.settings.data_dir / "merged.jsonl")
    opening = book.open("MSFT", TODAY)
    assert opening is not None
    costs = Costs(commission_bps=10, min_commission=1, slippage_bps=5)
    session = services.start_session(cash=10000.0)
    context = dataclasses.replace(session.context, costs=costs)
    answer = tool_value(services.url("trade"), "buy", {"symbol": "MSFT", "amount": 3}, context)
    fill = round(opening * 1.0005, 4)
    gross = round(fill * 3, 4)
    fee = round(max(1.0, gross * 0.001), 4)
    assert (answer["price"], answer["fee"]) == (fill, fee)
    assert answer["positions"] == {"MSFT": 3, CASH: round(10000.0 - gross - fee, 4)}
    (staged,) = session.ledger.pending(TODAY)
    assert staged["this_action"] == {
        "action": "buy",
        "symbol": "MSFT",
        "amount": 3,
        "price": fill,
        "fee": fee,
    }


def test_the_trade_services_refusal_names_the_fee_and_writes_nothing(services: Services):
    session = services.start_session(cash=10.0)
    context = dataclasses.replace(session.context, costs=Costs(min_commission=10))
    text = tool_error(services.url("trade"), "buy", {"symbol": "MSFT", "amount": 1}, context)
    assert "plus a fee of 10.00 (a 10.00 fee a trade)" in text
    assert session.ledger.pending(TODAY) == []
