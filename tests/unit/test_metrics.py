"""The metric set of a value series against an independent oracle: each expected figure is
worked out here with exact fractions and ``statistics`` from the formulas of
docs/METRICS.md, never with the module's own helpers; and each figure the data cannot
support is n/a with its reason, never NaN, infinity or a stand-in 0."""

from __future__ import annotations

import itertools
import json
import math
import statistics
from fractions import Fraction

import pytest

from ai_trader.metrics import Figure, Metrics, drawdowns, series_metrics

D = ["2025-10-01", "2025-10-02", "2025-10-03", "2025-10-06", "2025-10-07", "2025-10-08"]
VALUES = [100.0, 110.0, 99.0, 103.95, 124.74]  # +10%, -10%, +5%, +20%


def close(expected: float | Fraction) -> object:
    return pytest.approx(float(expected), rel=1e-9, abs=1e-9)


def series(values: list[float | None]) -> list[tuple[str, float | None]]:
    return list(zip(D, values, strict=False))


def exact_returns(values: list[float]) -> list[Fraction]:
    """The period returns of the floats as given, in exact arithmetic."""
    return [Fraction(b) / Fraction(a) - 1 for a, b in itertools.pairwise(values)]


def na(figure: Figure) -> str | None:
    assert figure.value is None
    return figure.reason


@pytest.mark.parametrize("periods", [252, 252 * 6.5, 365])
@pytest.mark.parametrize("rf", [0.0, 0.05])
def test_each_figure_matches_the_hand_computed_oracle(periods: float, rf: float):
    got = series_metrics(series(VALUES), periods_per_year=periods, risk_free_rate=rf)
    r = exact_returns(VALUES)
    n = len(r)
    rf_period = (1 + rf) ** (1 / periods) - 1
    mean = statistics.fmean(float(x) for x in r)
    sample_sd = math.sqrt(statistics.variance(r))  # n - 1 in the denominator
    growth = Fraction(VALUES[-1]) / Fraction(VALUES[0])
    annual = float(growth) ** (periods / n) - 1

    assert got.periods == 4
    assert got.cumulative_return.value == close(growth - 1)
    assert got.annualised_return.value == close(annual)
    assert got.volatility.value == close(sample_sd * math.sqrt(periods))
    assert got.sharpe.value == close((mean - rf_period) / sample_sd * math.sqrt(periods))
    downside = math.sqrt(sum(min(float(x) - rf_period, 0.0) ** 2 for x in r) / n)
    assert got.sortino.value == close((mean - rf_period) / downside * math.sqrt(periods))
    assert got.max_drawdown.value == close(Fraction(99.0) / Fraction(110.0) - 1)  # -10%
    assert (got.drawdown_peak, got.drawdown_trough) == (D[1], D[2])
    assert got.calmar.value == close(annual / 0.1)
    assert got.win_rate.value == close(Fraction(3, 4))
    assert got.average_win.value == close((r[0] + r[2] + r[3]) / 3)
    assert got.average_loss.value == close(r[1])


def test_the_volatility_is_the_sample_standard_deviation_not_the_population_one():
    got = series_metrics(series([100.0, 110.0, 99.0]))
    r = exact_returns([100.0, 110.0, 99.0])  # +10%, -10%
    assert got.volatility.value == close(math.sqrt(statistics.variance(r) * 252))
    assert got.volatility.value != close(math.sqrt(statistics.pvariance(r) * 252))


def test_the_sortino_downside_divides_by_every_period():
    # Returns +10%, -10%, +10%: one period below 0, the sum of squares over all three.
    values = [100.0, 110.0, 99.0, 108.9]
    r = exact_returns(values)
    downside = math.sqrt(float(r[1]) ** 2 / 3)
    expected = statistics.fmean(float(x) for x in r) / downside * math.sqrt(252)
    assert series_metrics(series(values)).sortino.value == close(expected)


def test_the_drawdown_is_the_deepest_fall_from_a_running_peak_with_its_dates():
    # 100 -> 90 (-10% from 100), then 120 -> 96 (-20% from the new peak 120).
    got = series_metrics(series([100.0, 90.0, 120.0, 108.0, 96.0, 130.0]))
    assert got.max_drawdown.value == close(Fraction(96) / 120 - 1)
    assert (got.drawdown_peak, got.drawdown_trough) == (D[2], D[4])


def test_the_drawdown_counts_a_fall_from_the_start_point():
    got = series_metrics(series([100.0, 80.0, 90.0]))
    assert got.max_drawdown.value == close(Fraction(-1, 5))
    assert (got.drawdown_peak, got.drawdown_trough) == (D[0], D[1])


def test_the_drawdown_series_is_each_value_over_its_running_peak_less_one():
    # Peaks 100, 100, 120, 120, 120, 130: by hand, 0, -10%, 0, -10%, -20%, 0.
    got = drawdowns([100.0, 90.0, 120.0, 108.0, 96.0, 130.0])
    expected = [0, Fraction(90, 100) - 1, 0, Fraction(108, 120) - 1, Fraction(96, 120) - 1, 0]
    assert got == [close(x) for x in expected]
    assert got[0] == got[2] == got[5] == 0.0  # a new peak is exactly 0


def test_a_series_that_only_rises_has_no_drawdown_anywhere():
    assert drawdowns([100.0, 100.0, 101.5, 250.0]) == [0.0, 0.0, 0.0, 0.0]


def test_an_unknown_value_in_the_drawdown_series_is_a_gap_not_a_zero():
    # After an unknown value the running peak is unknown (the gap may have been higher),
    # so every later point is unknown too, as max drawdown is then n/a.
    assert drawdowns([100.0, 90.0, None, 95.0, 120.0]) == [0.0, close(-0.1), None, None, None]
    assert drawdowns([None, 100.0]) == [None, None]
    assert drawdowns([]) == []


def test_a_drawdown_needs_a_peak_above_zero():
    assert drawdowns([0.0, -5.0, 50.0, 40.0]) == [None, None, 0.0, close(Fraction(-1, 5))]
    assert drawdowns([100.0, 0.0]) == [0.0, -1.0]  # everything lost: a true -100%


@pytest.mark.parametrize(
    "values",
    [VALUES, [100.0, 90.0, 120.0, 108.0, 96.0, 130.0], [100.0, 80.0, 90.0], [5.0, 6.0, 7.0]],
)
def test_max_drawdown_is_the_lowest_point_of_the_drawdown_series(values):
    # The dashboard draws the series and shows max drawdown: they cannot disagree.
    assert series_metrics(series(values)).max_drawdown.value == min(drawdowns(values))


def test_a_flat_period_is_neither_a_win_nor_a_loss():
    got = series_metrics(series([100.0, 100.0, 110.0, 110.0, 99.0]))
    assert got.win_rate.value == close(Fraction(1, 2))  # one gain, one loss, two flat
    assert got.average_win.value == close(Fraction(1, 10))
    assert got.average_loss.value == close(Fraction(99.0) / Fraction(110.0) - 1)


def test_one_point_has_no_period_and_every_return_figure_is_na():
    got = series_metrics(series([250.0]))
    assert got.periods == 0
    for name in ("cumulative_return", "annualised_return", "volatility", "sharpe", "sortino"):
        assert na(getattr(got, name)) == "no period: the series has fewer than 2 points"
    assert na(got.max_drawdown) == "no period: the series has fewer than 2 points"
    assert na(got.win_rate) == "no period: the series has fewer than 2 points"


def test_one_period_has_a_return_but_no_spread_and_is_not_annualised():
    got = series_metrics(series([100.0, 90.0]))
    assert got.cumulative_return.value == close(Fraction(-1, 10))
    assert na(got.annualised_return) == "one period: too short to annualise"
    for name in ("volatility", "sharpe", "sortino"):
        assert na(getattr(got, name)) == "one period: a spread needs at least 2"
    assert got.max_drawdown.value == close(Fraction(-1, 10))
    assert na(got.calmar) == "no annualised return: one period: too short to annualise"
    assert got.win_rate.value == 0.0  # a true 0: the one period lost
    assert na(got.average_win) == "no period gained"


def test_a_flat_book_has_a_true_zero_volatility_and_no_ratios():
    got = series_metrics(series([100.0, 100.0, 100.0]))
    assert got.cumulative_return.value == 0.0
    assert got.annualised_return.value == 0.0
    assert got.volatility.value == 0.0
    assert na(got.sharpe) == "volatility is 0"
    assert na(got.sortino) == "no period fell below the risk-free rate"
    assert got.max_drawdown.value == 0.0
    assert (got.drawdown_peak, got.drawdown_trough) == (None, None)
    assert na(got.calmar) == "no drawdown"
    assert na(got.win_rate) == "no period gained or lost"
    assert na(got.average_win) == "no period gained"
    assert na(got.average_loss) == "no period lost"


def test_equal_returns_have_zero_volatility_exactly():
    got = series_metrics(series([1.0, 2.0, 4.0, 8.0]))  # +100% every period
    assert got.volatility.value == 0.0
    assert na(got.sharpe) == "volatility is 0"


def test_a_risk_free_rate_above_every_return_leaves_sortino_defined():
    # +1%, +2% a period, under a risk-free rate of 20000% a year: both periods fall below it.
    values = [100.0, 101.0, 103.02]
    got = series_metrics(series(values), risk_free_rate=200.0)
    rf = 201 ** (1 / 252) - 1
    r = [float(x) for x in exact_returns(values)]
    downside = math.sqrt(sum((x - rf) ** 2 for x in r) / 2)
    assert got.sortino.value == close((statistics.fmean(r) - rf) / downside * math.sqrt(252))


def test_a_gap_leaves_the_ends_and_makes_every_period_figure_na_naming_the_day():
    got = series_metrics(series([100.0, 110.0, None, 105.0]), unknown={D[2]: "no price for AAA"})
    assert got.cumulative_return.value == close(Fraction(105.0) / 100 - 1)
    assert got.annualised_return.value == close(1.05 ** (252 / 3) - 1)
    why = f"no value on {D[2]}: no price for AAA"
    for name in ("volatility", "sharpe", "sortino", "calmar", "max_drawdown", "win_rate"):
        assert na(getattr(got, name)) == why
    assert na(got.average_loss) == why
    assert (got.drawdown_peak, got.drawdown_trough) == (None, None)


def test_an_unknown_last_value_leaves_no_return_at_all():
    got = series_metrics(series([100.0, 110.0, None]))
    why = f"no value on {D[2]}: the value is unknown"
    assert na(got.cumulative_return) == why
    assert na(got.annualised_return) == why
    assert na(got.volatility) == why


def test_a_start_value_of_zero_has_no_return_on_it():
    got = series_metrics(series([0.0, 10.0, 20.0]))
    assert na(got.cumulative_return) == "the start value is 0: no return on it"
    assert na(got.volatility) == "the start value is 0: no return on it"


def test_a_result_too_large_for_a_float_is_na_not_infinity():
    got = series_metrics(series([1.0, 1e200, 1e300]))
    assert na(got.annualised_return) == "the result is too large to be a number"
    assert na(got.calmar).startswith("no annualised return")  # type: ignore[union-attr]
    assert got.cumulative_return.value == close(1e300 - 1)


def test_trades_and_turnover_are_na_unless_the_book_gives_them():
    got = series_metrics(series(VALUES))
    assert na(got.trades) == "no trades: the book's rows were not given"
    assert na(got.turnover) == "no trades: the book's rows were not given"


@pytest.mark.parametrize(
    "values", [[250.0], [100.0, 100.0], [100.0, None, 120.0], [1.0, 1e200, 1e300], VALUES]
)
def test_the_json_is_strict_json_a_value_or_null_and_a_reason(values: list[float | None]):
    got: Metrics = series_metrics(series(values))
    text = json.dumps(got.to_json(), allow_nan=False)  # raises on NaN or infinity
    for name, figure in json.loads(text).items():
        if isinstance(figure, dict):
            assert ("na" in figure) == (figure["value"] is None), name
            assert figure.get("na", "x"), name  # a reason is never empty


def test_a_figure_as_json():
    assert Figure(0.25).to_json() == {"value": 0.25}
    assert Figure.na("volatility is 0").to_json() == {"value": None, "na": "volatility is 0"}
    assert Figure.of(math.inf).to_json() == {
        "value": None,
        "na": "the result is too large to be a number",
    }


@pytest.mark.parametrize(("periods", "rf"), [(0, 0.0), (-252, 0.0), (252, -1.0), (252, math.nan)])
def test_a_nonsense_year_or_rate_is_refused(periods: float, rf: float):
    with pytest.raises(ValueError, match="must be"):
        series_metrics(series(VALUES), periods_per_year=periods, risk_free_rate=rf)


def test_of_two_troughs_as_deep_the_first_is_named():
    got = series_metrics(series([100.0, 90.0, 100.0, 90.0]))
    assert got.max_drawdown.value == close(Fraction(-1, 10))
    assert (got.drawdown_peak, got.drawdown_trough) == (D[0], D[1])
