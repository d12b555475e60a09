"""The bench's dashboard measurement (bench/dashboard.py) on a small synthetic folder."""

from __future__ import annotations

from ai_trader.dashboard import data


def test_the_dashboard_benchmark_measures_a_synthetic_folder_end_to_end(tmp_path):
    from bench.dashboard import measure
    from bench.dashboard import report as dashboard_report

    figures = measure(days=30, models=2, warm_runs=1, folder=tmp_path / "data")
    assert (figures["days"], figures["models"], figures["symbols"]) == (30, 2, 102)
    for key in ("cold", "warm", "one_day_more", "new_prices", "page_after_change", "page_warm"):
        wall, cpu = figures[key]
        assert wall > 0
        assert cpu is None or cpu >= 0
    text = dashboard_report(figures)
    assert "load average" in text
    assert "/health during the cold summary" in text
    # What the bench wrote is a valid folder: the page reads it without skipping a line.
    summary = data.summarise(tmp_path / "data")
    assert summary["skipped"] == []
    assert [m["days"] for m in summary["signatures"]] == [31, 31]
