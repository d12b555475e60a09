"""Repeats (``repeats``): Student's t against published quantiles, a group's spread and
interval, Welch's test, the books ``run --repeat N`` makes, and the report's repeat table."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from ai_trader import repeats, report
from ai_trader.config import parse_config
from ai_trader.errors import UserError
from ai_trader.fsutil import atomic_write_jsonl
from ai_trader.layout import books_dir, merged_file
from ai_trader.ledger import Ledger
from ai_trader.metrics import Figure
from unit.support import Services, run_cli
from unit.test_end_to_end import BUILTIN, SIGNATURE, position_file, write_config
from unit.test_report import DAYS, OPENS, price_line

# Student's t, 97.5% quantiles, from published tables (e.g. NIST/SEMATECH e-Handbook, 1.3.6.7.2).
PUBLISHED_T975 = {1: 12.706204736, 2: 4.302652730, 3: 3.182446305, 5: 2.570581836,
                  10: 2.228138852, 30: 2.042272456, 100: 1.983971519}  # fmt: skip


@pytest.mark.parametrize(("df", "quantile"), sorted(PUBLISHED_T975.items()))
def test_the_t_quantile_matches_the_published_table(df: int, quantile: float):
    assert repeats.t_quantile(0.975, df) == pytest.approx(quantile, abs=1e-9)


def test_the_t_distribution_is_symmetric_about_zero():
    assert repeats.t_cdf(0.0, 7) == pytest.approx(0.5, abs=1e-12)
    assert repeats.t_cdf(-1.3, 7) == pytest.approx(1 - repeats.t_cdf(1.3, 7), abs=1e-12)


def test_a_groups_spread_is_its_mean_sample_sd_and_t_interval():
    found = repeats.spread({"a": Figure(0.1), "b": Figure(0.2), "c": Figure(0.3)})
    assert found.mean.value == pytest.approx(0.2, abs=1e-12)
    assert found.sd.value == pytest.approx(0.1, abs=1e-12)  # sqrt((0.01 + 0 + 0.01) / 2)
    half = 4.302652730 * 0.1 / math.sqrt(3)  # t(0.975, 2) from the table
    assert found.low.value == pytest.approx(0.2 - half, abs=1e-9)
    assert found.high.value == pytest.approx(0.2 + half, abs=1e-9)


def test_identical_repeats_say_so_instead_of_a_zero_width_interval():
    found = repeats.spread({"a": Figure(0.05), "b": Figure(0.05)})
    assert (found.mean.value, found.sd.value, found.low.value) == (0.05, 0.0, None)
    assert found.low.reason == "the 2 repeats are identical (a deterministic strategy or a replay)"


def test_a_book_whose_figure_is_n_a_makes_the_groups_n_a_naming_it():
    found = repeats.spread({"m.r1": Figure(0.1), "m.r2": Figure.na("volatility is 0")})
    assert found.mean.value is None
    assert found.mean.reason == "m.r2: volatility is 0"


def test_welchs_test_matches_the_hand_computed_statistic():
    # a: mean 2.5, variance 5/3; b: mean 6, variance 10. se^2 = 5/12 + 2 = 29/12.
    test = repeats.welch("a", [1, 2, 3, 4], "b", [2, 4, 6, 8, 10])
    se2 = 29 / 12
    assert test.difference.value == -3.5
    assert test.t.value == pytest.approx(-3.5 / math.sqrt(se2), abs=1e-12)
    df = se2**2 / ((5 / 12) ** 2 / 3 + 2**2 / 4)
    assert test.df.value == pytest.approx(df, abs=1e-12)
    # p is two-sided: the t at 1 - p/2 is the statistic itself.
    assert test.p.value is not None
    assert repeats.t_quantile(1 - test.p.value / 2, df) == pytest.approx(
        abs(test.t.value), abs=1e-9
    )


def test_welchs_test_is_n_a_when_neither_group_varies():
    test = repeats.welch("a", [0.1, 0.1], "b", [0.2, 0.2])
    assert test.difference.value == pytest.approx(-0.1)
    assert test.p.value is None
    assert test.p.reason == "no spread in either group: every repeat gave the same return"


def test_repeat_groups_are_books_named_signature_r_n_with_two_or_more():
    figures = {name: dict.fromkeys(repeats.FIGURES, Figure(1.0))
               for name in ("m.r2", "m.r10", "m.r1", "solo", "n.r1")}  # fmt: skip
    (group,) = repeats.groups(figures)
    assert (group.name, group.members) == ("m", ("m.r1", "m.r2", "m.r10"))


# --- run --repeat ------------------------------------------------------------------------------


def entry(signature: str = "m") -> object:
    model = {"name": "m", "basemodel": "builtin/momentum", "signature": signature}
    raw = {"date_range": {"init_date": "2025-10-01", "end_date": "2025-10-31"}, "models": [model]}
    return parse_config(raw, "c.json").models[0]


def test_repeat_n_makes_n_books_of_each_model():
    (model,) = [entry()]
    assert [m.signature for m in repeats.repeated([model], 3)] == ["m.r1", "m.r2", "m.r3"]  # type: ignore[list-item]


def test_a_repeat_signature_beyond_the_limit_is_one_line():
    with pytest.raises(UserError, match=r"its repeat book '.*\.r1' is not a valid signature"):
        repeats.repeated([entry("x" * 127)], 2)  # type: ignore[list-item]


def test_run_with_repeat_zero_is_refused_in_one_line(tmp_path: Path):
    result = run_cli("run", str(tmp_path / "any.json"), "--repeat", "0", env={})
    assert result.returncode == 2
    assert "--repeat: must be a whole number, 1 or more" in result.stderr


def test_the_builtin_strategy_repeated_gives_identical_books_and_the_report_says_so(
    services: Services, tmp_path: Path
):
    books = services.new_books()
    config = write_config(tmp_path, books, BUILTIN)
    result = run_cli("run", str(config), "--repeat", "3", "--jobs", "3", env=services.env)
    assert result.returncode == 0, result.stderr
    texts = {position_file(books, f"{SIGNATURE}.r{n}").read_bytes() for n in (1, 2, 3)}
    assert len(texts) == 1
    board = report.build(services.settings.data_dir, books)
    (group,) = board.repeat_groups
    assert group.members == tuple(f"{SIGNATURE}.r{n}" for n in (1, 2, 3))
    assert "the 3 repeats are identical" in report.markdown(board)


# --- the report ---------------------------------------------------------------------------------


@pytest.fixture
def two_models(tmp_path: Path) -> Path:
    """Two models of three repeats each, every repeat buying a different number of AAA."""
    data = tmp_path / "data"
    atomic_write_jsonl(merged_file(data), [price_line("AAA"), price_line("QQQ")])
    for name, buys in (("bold", (80, 70, 60)), ("shy", (10, 20, 5))):
        for number, amount in enumerate(buys, start=1):
            ledger = Ledger(books_dir(data) / f"{name}.r{number}")
            ledger.ensure_initialized("2025-09-30", ["AAA"], 1000.0)
            ledger.record_trade(DAYS[0], "buy", "AAA", amount, OPENS["AAA"][0])
            for day in DAYS:
                ledger.commit_day(day)
    return data


def test_the_report_gives_each_groups_spread_and_welchs_test(two_models: Path):
    board = report.build(two_models)
    document = json.loads(report.to_json(board))
    groups = {g["model"]: g for g in document["repeats"]["groups"]}
    assert sorted(groups) == ["bold", "shy"]
    returns = [row.metrics.cumulative_return.value for row in board.rows if row.name[:4] == "bold"]
    assert groups["bold"]["cumulative_return"]["mean"]["value"] == pytest.approx(
        math.fsum(v for v in returns if v is not None) / 3, abs=1e-12
    )
    (test,) = document["repeats"]["welch"]
    assert (test["a"], test["b"]) == ("bold", "shy")
    assert test["p"]["value"] is not None
    text = report.markdown(board)
    assert "| bold | 3 | " in text
    assert "- bold vs shy: mean return" in text
