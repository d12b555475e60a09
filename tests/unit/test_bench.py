"""The bench's arithmetic and report (pure functions, no Docker), and its dashboard measurement.

Timing never decides a test: these check how figures are computed and printed from given
numbers, and that the dashboard measurement produces a complete set of figures.
"""

from __future__ import annotations

import asyncio

import pytest

from ai_trader.dashboard import data
from bench import apibound, matrix, report
from bench.calls import BLOCK, WARMUP_BLOCKS, interleaved
from bench.probes import BenchError
from bench.report import Figure, Relative
from bench.split import start_to_ready


def start_pairs() -> list[tuple[float, float]]:
    # (our start, the idle docker run right after it), seconds, three rounds
    return [(0.80, 0.25), (1.00, 0.30), (2.40, 0.50)]


def test_the_excess_is_the_median_of_each_rounds_difference():
    figure = Relative.of("start_ready_full", "start", "s", "run", start_pairs(), "how")
    assert figure.excesses == pytest.approx([0.55, 0.70, 1.90])
    assert figure.excess == pytest.approx(0.70)


def test_the_ratio_is_the_median_of_each_rounds_ratio():
    figure = Relative.of("start_ready_full", "start", "s", "run", start_pairs(), "how")
    assert figure.ratios == pytest.approx([3.2, 1.0 / 0.3, 4.8])
    assert figure.ratio == pytest.approx(1.0 / 0.3)


def test_a_start_meets_its_aim_on_the_excess_not_on_the_absolute_time():
    # 2.4 s is far over the old absolute aim (1.5 s), but only 0.5 s over its floor.
    busy_round = Relative.of("start_ready_full", "start", "s", "run", [(2.4, 1.9)], "how")
    assert busy_round.aim == ("excess", 0.6)
    assert busy_round.met is True
    slow = Relative.of("start_ready_full", "start", "s", "run", [(1.0, 0.3)], "how")
    assert slow.met is False


def test_a_stop_aim_is_an_excess_of_at_most_0_2_seconds():
    assert Relative.of("stop_full", "stop", "s", "stop", [(0.45, 0.25)], "").met is True
    assert Relative.of("stop_full", "stop", "s", "stop", [(0.46, 0.25)], "").met is False


def test_a_tool_call_aim_is_a_ratio_of_at_most_three_to_the_http_floor():
    calls = Relative.of("latency_buy", "buy", "ms", "health", [(1.5, 0.5)], "")
    assert calls.aim == ("ratio", 3.0)
    assert calls.met is True
    assert Relative.of("latency_buy", "buy", "ms", "health", [(1.6, 0.5)], "").met is False


def test_a_figure_without_an_aim_is_neither_met_nor_missed():
    assert Relative.of("something_else", "x", "s", "run", [(1.0, 0.5)], "").met is None


def test_the_shown_medians_come_from_all_samples_when_given():
    figure = Relative.of(
        "latency_price", "price", "ms", "health", [(2.0, 1.0), (4.0, 1.0)], "",
        ours=[1.0, 2.0, 3.0], floors=[0.5, 0.5, 0.7],
    )  # fmt: skip
    document = figure.as_json()
    assert (document["ours_median"], document["floor_median"]) == (2.0, 0.5)
    assert document["excess"] == pytest.approx(2.0)  # from the pairs: median of 1 and 3
    assert document["ratio"] == pytest.approx(3.0)


def test_a_floor_of_zero_is_refused():
    with pytest.raises(ValueError, match="floor"):
        Relative.of("stop_full", "stop", "s", "stop", [(0.4, 0.0)], "")


def test_no_pairs_is_refused():
    with pytest.raises(ValueError, match="no pairs"):
        Relative.of("stop_full", "stop", "s", "stop", [], "")


def test_the_relative_table_shows_excess_ratio_range_aim_and_verdict():
    rows = [
        Relative.of("start_ready_full", "start -> ready, full", "s", "run", start_pairs(), ""),
        Relative.of("latency_buy", "buy p50", "ms", "health", [(1.8, 0.5), (2.2, 0.5)], ""),
    ]
    lines = report.relative_table(rows).splitlines()
    assert lines[0].split()[:4] == ["figure", "ours", "floor", "floor"]
    start = lines[2]
    assert start.startswith("start -> ready, full")
    for cell in ("1.00 s", "0.30 s", "idle docker run", "+0.70 s", "+0.55..+1.90", "3.33x",
                 "3.20-4.80", "excess <= 0.60 s", "NO", "3"):  # fmt: skip
        assert cell in start
    buy = lines[3]
    for cell in ("GET /health", "+1.50 ms", "4.00x", "ratio <= 3.0x", "NO", "2"):
        assert cell in buy


def test_a_negative_excess_keeps_its_sign():
    assert report.signed(-0.031, "s") == "-0.03"
    assert report.signed(0.031, "s") == "+0.03"


def test_the_relative_table_keeps_the_aims_order():
    later = Relative.of("latency_buy", "b", "ms", "health", [(1.0, 0.5)], "")
    first = Relative.of("start_ready_full", "a", "s", "run", [(1.0, 0.5)], "")
    assert [r.key for r in report.ordered_relative([later, first])] == [
        "start_ready_full",
        "latency_buy",
    ]


def test_a_quiet_machine_gets_no_warning():
    assert report.busy(2, before=0.4, during=1.9, after=1.2) is None


def test_a_load_above_half_the_cores_before_the_bench_is_busy():
    warning = report.busy(2, before=1.9, during=2.0, after=2.0)
    assert warning is not None
    assert "1.90 before it started (above 1: half the cores)" in warning
    assert "2 cores" in warning


def test_a_load_above_the_cores_plus_the_benchs_own_while_running_is_busy():
    warning = report.busy(2, before=0.3, during=3.4, after=2.1)
    assert warning is not None
    assert "up to 3.40 while it ran (above 3" in warning
    assert "before it started" not in warning


def test_the_load_lines_show_before_the_highest_during_and_after():
    load = {
        "before": [1.9, 1.5, 1.2],
        "during": [["image", [1.0, 1.4, 1.2]], ["fetch", [2.5, 1.6, 1.3]]],
        "after": [1.1, 1.5, 1.3],
    }
    lines = report.load_lines(2, load)
    assert lines[0] == (
        "load average (1, 5, 15 min) on 2 cores: before 1.90 1.50 1.20; "
        "highest 1-min while running 2.50; after 1.10 1.50 1.30"
    )
    assert lines[1].startswith("warning: the machine was busy")


def test_an_absolute_figure_reports_median_spread_and_its_aim():
    figure = Figure.of("rebuild", "rebuild", "s", [3.0, 4.0, 12.0], "how")
    assert (figure.median, figure.low, figure.high, figure.n) == (4.0, 3.0, 12.0, 3)
    assert (figure.aim, figure.met) == (10.0, True)
    row = report.table([figure]).splitlines()[2]
    for cell in ("4.00 s", "3.00-12.00", "<= 10.00 s", "yes", "3"):
        assert cell in row


def test_a_speed_up_aim_is_a_least_value():
    figure = Figure.of("api_bound_4_speedup", "4 models", "x", [3.5, 3.7, 3.9], "how",
                       aim=3.6, at_least=True)  # fmt: skip
    assert (figure.aim, figure.met) == (3.6, True)
    assert ">= 3.60 x" in report.table([figure]).splitlines()[2]
    slow = Figure.of("api_bound_4_speedup", "4 models", "x", [3.5], "", aim=3.6, at_least=True)
    assert slow.met is False


def test_the_start_and_stop_aims_are_no_longer_on_absolute_times():
    assert Figure.of("start_ready_full", "start", "s", [2.4], "").met is None
    assert Figure.of("stop_full", "stop", "s", [1.2], "").met is None


def test_the_nearest_rank_percentile():
    values = list(range(1, 101))
    assert report.percentile(values, 50) == 50
    assert report.percentile(values, 99) == 99
    assert report.percentile(list(range(1, 301)), 99) == 297
    assert report.percentile([7.0], 99) == 7.0
    assert report.percentile([3.0, 1.0, 2.0], 0) == 1.0


def test_interleaved_calls_need_more_than_the_warm_up():
    too_few = [({}, None)] * ((WARMUP_BLOCKS + 1) * BLOCK - 1)
    with pytest.raises(ValueError, match="at least"):
        asyncio.run(
            interleaved("http://127.0.0.1:9/mcp", "http://127.0.0.1:9/health", "x", too_few)
        )


def test_the_dashboard_benchmark_measures_a_synthetic_folder_end_to_end(tmp_path):
    from bench.dashboard import measure
    from bench.dashboard import report as dashboard_report

    figures = measure(days=30, models=2, warm_runs=1, folder=tmp_path / "data")
    assert (figures["days"], figures["models"], figures["symbols"]) == (30, 2, 102)
    timed = ("cold", "parse_floor", "warm", "one_day_more", "new_prices", "page_after_change")
    for key in (*timed, "page_warm"):
        wall, cpu = figures[key]
        assert wall > 0
        assert cpu is None or cpu >= 0
    text = dashboard_report(figures)
    assert "load average" in text
    assert "/health during the cold summary" in text
    assert "the json.loads floor" in text
    # What the bench wrote is a valid folder: the page reads it without skipping a line.
    summary = data.summarise(tmp_path / "data")
    assert summary["skipped"] == []
    assert [m["days"] for m in summary["signatures"]] == [31, 31]


# --- the matrix's CPU table (bench.matrix) -------------------------------------------------

PROC_STAT = """cpu  1000 50 300 5000 100 20 30 0 0 0
cpu0 500 25 150 2500 50 10 15 0 0 0
intr 12345
"""


def test_busy_cpu_is_user_nice_system_irq_softirq_and_steal_and_idle_includes_iowait():
    busy, idle = matrix.parse_cpu(PROC_STAT, ticks=100)
    assert busy == (1000 + 50 + 300 + 20 + 30 + 0) / 100
    assert idle == (5000 + 100) / 100


def test_a_stat_without_a_cpu_line_is_refused():
    with pytest.raises(ValueError, match="no 'cpu' line"):
        matrix.parse_cpu("intr 1\n", ticks=100)


def test_only_noxs_running_session_lines_start_a_session():
    assert matrix.session_started("nox > Running session tests-3.11\n") == "tests-3.11"
    assert matrix.session_started("nox > Session lint was successful in 2 seconds.") is None
    assert matrix.session_started("Running session lint") is None


def test_each_session_runs_until_the_next_one_starts_and_the_last_until_the_end():
    c = matrix.Counters
    marks = [("lint", c(0.0, 0.0, 0.0)), ("tests", c(3.0, 4.0, 2.0))]
    found = matrix.rows(marks, end=c(13.0, 22.0, 4.0))
    assert found == [matrix.Row("lint", 3.0, 4.0, 2.0), matrix.Row("tests", 10.0, 18.0, 2.0)]
    assert [row.used for row in found] == [pytest.approx(4 / 6), pytest.approx(0.9)]


def test_a_row_without_cpu_time_has_no_share_of_the_cores():
    assert matrix.Row("build", 0.2, 0.0, 0.0).used is None


def test_the_table_shows_each_session_the_total_and_the_floor_of_its_busy_time():
    c = matrix.Counters
    found = matrix.rows([("lint", c(0.0, 0.0, 0.0))], end=c(10.0, 16.0, 4.0))
    text = matrix.render(found, matrix.whole_run(c(-1.0, 0.0, 0.0), c(10.0, 16.0, 4.0)), 2)
    assert "lint" in text
    assert "80%" in text  # 16 busy of 20 CPU seconds
    assert "2 cores would do the 16 busy CPU seconds in 8 s" in text
    assert "the run took 11 s" in text


# -- API-bound models (bench/apibound.py) ---------------------------------------------------

SERVICES = ("math", "search", "trade", "prices")


def test_the_ports_come_from_serves_listening_line_once_it_is_there():
    assert apibound.served_ports("serve: starting\n", SERVICES) is None
    line = "serve: listening on 127.0.0.1 (math :41001, search :41002, trade :8002, prices :9)"
    assert apibound.served_ports(f"x\n{line}\n", SERVICES) == {
        "math": 41001, "search": 41002, "trade": 8002, "prices": 9,
    }  # fmt: skip


def test_a_listening_line_that_misses_a_service_is_an_error():
    line = "serve: listening on 127.0.0.1 (math :41001, search :41002, trade :8002)"
    with pytest.raises(BenchError, match="each service"):
        apibound.served_ports(line, SERVICES)


def test_the_speed_up_is_the_solo_time_over_the_jobs_time():
    assert apibound.speedup(20.0, 5.0) == 4.0


def test_the_floor_is_the_requests_times_the_delay_over_the_jobs():
    # 16 models x 5 days x 3 requests at 200 ms: 3 s when 16 are always in flight.
    assert apibound.model_floor(240, 0.2, 16) == pytest.approx(3.0)
    assert apibound.model_floor(15, 0.2, 1) == pytest.approx(3.0)


def test_the_runs_get_none_of_the_callers_product_variables_and_cache_bytecode(tmp_path):
    caller = {
        "PATH": "/bin",
        "OPENAI_API_KEY": "mine",
        "OPENAI_API_KEY_FILE": "/my/key",
        "AGENT_JOBS": "2",
        "TRADE_HTTP_PORT": "1234",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": "elsewhere",
    }
    env = apibound.child_env(caller, tmp_path / "data", tmp_path / "pycache")
    assert env["PATH"] == "/bin"
    assert not {"OPENAI_API_KEY", "OPENAI_API_KEY_FILE", "AGENT_JOBS", "TRADE_HTTP_PORT",
                "PYTHONDONTWRITEBYTECODE"} & set(env)  # fmt: skip
    assert env["DATA_DIR"] == str(tmp_path / "data")
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path / "pycache")
    assert env["PYTHONPATH"].endswith("elsewhere")
    assert env["PYTHONPATH"].split(":")[0].endswith("src")


def test_only_names_a_measurement_the_bench_knows():
    from bench.__main__ import parse_args

    assert parse_args(["--only", "api-bound"]).only == "api-bound"
    with pytest.raises(SystemExit):
        parse_args(["--only", "builds"])


def test_a_host_only_report_shows_its_figures_and_says_what_to_compare_them_with(capsys):
    speedup = Figure.of("api_bound_4_speedup", "4 models: speed-up", "x", [3.9], "",
                        aim=3.6, at_least=True)  # fmt: skip
    document = {
        "only": "api-bound",
        "started": "2026-12-07T11:43:10+00:00",
        "revision": "abc123",
        "machine": {"nproc": 2, "memory_bytes": 2**34, "kernel": "6.1", "python": "3.11.7"},
        "load": {"before": [4.1, 7.4, 7.0], "during": [], "after": [4.2, 5.8, 6.5]},
        "notes": ["books equal"],
        "errors": [],
    }
    report.print_host_report([speedup], document)
    out = capsys.readouterr().out
    assert "ai-trader bench --only api-bound, 2026-12-07 11:43 UTC" in out
    assert "compare each figure with the floor measured beside it" in out
    assert "relative figures" not in out
    assert ">= 3.60 x" in out
    assert "note: books equal" in out


def test_the_split_topology_is_ready_when_its_last_service_answers_counted_from_its_first_create():
    ready = {"math": 12.5, "search": 13.0, "trade": 12.0, "prices": 14.25}
    assert start_to_ready([10.0, 10.5, 11.0, 10.25], ready) == 4.25
