"""The results dashboard: values against hand-computed figures, QQQ scaling, bad lines,
the empty state, the SVG chart, and the web app's page and JSON."""

from __future__ import annotations

import json
import re
import socket
from html import escape, unescape
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from ai_trader.agent.runner import Result, summarise
from ai_trader.cli import build_parser, main
from ai_trader.dashboard import data
from ai_trader.dashboard.app import bind, build_app
from ai_trader.dashboard.chart import Series, line_chart, nice_step
from ai_trader.dashboard.page import chart_svg, drawdown_svg, page_body, render_page
from ai_trader.errors import UserError
from ai_trader.ledger import Ledger
from ai_trader.market.pricebook import PriceBook
from ai_trader.settings import load_settings

# A tiny market. D0 is the opening row's day; D3 is the newest day, which has only opens.
D0, D1, D2, D3 = "2025-10-01", "2025-10-02", "2025-10-03", "2025-10-06"
PRICES = {
    "AAA": {D0: (9, 10), D1: (10, 12), D2: (12, 11), D3: (13, None)},
    "BBB": {D1: (20, 22), D2: (22, 25), D3: (24, None)},
    "QQQ": {D0: (99, 100), D1: (100, 110), D2: (110, 105), D3: (120, None)},
}


def merged_line(symbol: str, bars: dict[str, tuple[float, float | None]]) -> str:
    series = {}
    for day, (opened, closed) in bars.items():
        bar = {"1. buy price": str(opened)}
        if closed is not None:
            bar |= {"2. high": str(max(opened, closed)), "3. low": str(min(opened, closed))}
            bar |= {"4. sell price": str(closed), "5. volume": "1000"}
        series[day] = bar
    return json.dumps({"Meta Data": {"2. Symbol": symbol}, "Time Series (Daily)": series})


def row(day: str, id_: int, positions: dict, action: tuple | None = None) -> dict:
    line = {"date": day, "id": id_, "positions": positions}
    if action is not None:
        name, symbol, amount = action
        line["this_action"] = {"action": name, "symbol": symbol, "amount": amount}
    return line


# Model A, 1000 in cash: buys 10 AAA at 10 and 5 BBB at 20 on D1, does nothing on D2,
# sells the 10 AAA at 13 on D3.
MODEL_A = [
    row(D0, 0, {"AAA": 0, "BBB": 0, "CASH": 1000.0}),
    row(D1, 1, {"AAA": 10, "BBB": 0, "CASH": 900.0}, ("buy", "AAA", 10)),
    row(D1, 2, {"AAA": 10, "BBB": 5, "CASH": 800.0}, ("buy", "BBB", 5)),
    row(D2, 3, {"AAA": 10, "BBB": 5, "CASH": 800.0}, ("no_trade", "", 0)),
    row(D3, 4, {"AAA": 0, "BBB": 5, "CASH": 930.0}, ("sell", "AAA", 10)),
]
# By hand: start 1000 (cash only, QQQ's base is its D1 open, 100);
# D1 800 + 10*12 + 5*22 = 1030, QQQ 1000*110/100 = 1100;
# D2 800 + 10*11 + 5*25 = 1035, QQQ 1050;
# D3 (opens only) 930 + 5*24 = 1050, QQQ 1000*120/100 = 1200.
VALUES_A = [(D0, 1000.0, 1000.0), (D1, 1030.0, 1100.0), (D2, 1035.0, 1050.0), (D3, 1050.0, 1200.0)]
# Model B, 500 in cash, only one day so far, 4 AAA bought at 10: 460 + 4*12 = 508.
MODEL_B = [
    row(D0, 0, {"AAA": 0, "CASH": 500.0}),
    row(D1, 1, {"AAA": 4, "CASH": 460.0}, ("buy", "AAA", 4)),
]


def write_jsonl(path: Path, lines: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text)
    return path


def position_file(data_dir: Path, signature: str) -> Path:
    return data_dir / "agent_data" / signature / "position" / "position.jsonl"


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    data_dir = tmp_path / "data"
    write_jsonl(data_dir / "merged.jsonl", [merged_line(s, b) for s, b in PRICES.items()])
    write_jsonl(position_file(data_dir, "model-a"), MODEL_A)
    write_jsonl(position_file(data_dir, "model-b"), MODEL_B)
    return data_dir


def dashboard_port(line: str) -> int:
    """The port a dashboard started with ``--port 0`` took, from its first line."""
    found = re.fullmatch(r"dashboard: http://127\.0\.0\.1:(\d+)/ \(data: .*\)\n?", line)
    assert found, line
    port = int(found.group(1))
    assert port != 0
    return port


def by_name(summary: dict, signature: str) -> dict:
    return next(m for m in summary["signatures"] if m["signature"] == signature)


def polylines(svg: str) -> dict[str, int]:
    found = re.findall(r'<polyline data-series="([^"]*)" data-points="(\d+)"', svg)
    return {name: int(points) for name, points in found}


def chart_in(page: str, element_id: str) -> str:
    """The one chart of ``page`` with that id (the value chart or the drawdown chart)."""
    found = re.findall(rf'<svg [^>]*id="{element_id}".*?</svg>', page, re.S)
    assert len(found) == 1, f"{len(found)} charts with id {element_id}"
    return str(found[0])


def lowest(svg: str) -> dict[str, float]:
    """Each series' lowest value in a chart: the least ``data-low`` of its lines."""
    found: dict[str, float] = {}
    for name, low in re.findall(r'data-series="([^"]*)" [^>]*data-low="([^"]*)"', svg):
        found[unescape(name)] = min(found.get(unescape(name), float(low)), float(low))
    return found


def metrics_table(page: str) -> dict[str, dict[str, str]]:
    """The page's metrics table: each row's cells by column heading, by the row's name."""
    table = re.search(r"<table class=metrics>.*?</table>", page, re.S)
    assert table is not None
    headings = [unescape(h) for h in re.findall(r"<th[^>]*>(.*?)</th>", table.group(0))]
    rows = {}
    for line in re.findall(r"<tr[^>]*>(.*?)</tr>", table.group(0).split("<tbody>")[1], re.S):
        cells = [
            unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td[^>]*>(.*?)</td>", line)
        ]
        rows[cells[0]] = dict(zip(headings, cells, strict=True))
    return rows


# --- values ----------------------------------------------------------------------------------


def test_values_per_day_match_the_hand_computed_figures(folder):
    model = by_name(data.summarise(folder), "model-a")
    got = [(p["date"], p["value"], p["benchmark"]) for p in model["series"]]
    assert got == [(d, pytest.approx(v), pytest.approx(b)) for d, v, b in VALUES_A]


def test_total_return_and_qqq_return_over_the_same_days(folder):
    model = by_name(data.summarise(folder), "model-a")
    assert model["initial_value"] == pytest.approx(1000.0)
    assert model["final_value"] == pytest.approx(1050.0)
    assert model["total_return"] == pytest.approx(0.05)
    assert model["benchmark_return"] == pytest.approx(0.20)
    assert (model["days"], model["start_date"], model["last_date"]) == (3, D0, D3)


def run_summary(data_dir: Path, signature: str) -> Result:
    """What the run prints at its end for this book (``runner.summarise``, strict reads)."""
    book = PriceBook.load(data_dir / "merged.jsonl")
    return summarise(book, Ledger(data_dir / "agent_data" / signature), signature, 1000.0)


def add_prices(data_dir: Path, **series: dict[str, tuple[float, float | None]]) -> None:
    with (data_dir / "merged.jsonl").open("a") as handle:
        for symbol, bars in series.items():
            handle.write(merged_line(symbol, bars) + "\n")


# Model G holds CCC, which has no bar on D2: D2's value is unknown, D3's is known again.
# Model H holds DDD, which has no bar on the newest day: its final value is unknown.
CCC = {D1: (10, 11), D3: (12, None)}
DDD = {D1: (5, 6), D2: (6, 7)}
MODEL_G = [
    row(D0, 0, {"CCC": 0, "CASH": 1000.0}),
    row(D1, 1, {"CCC": 10, "CASH": 900.0}, ("buy", "CCC", 10)),
    row(D2, 2, {"CCC": 10, "CASH": 900.0}, ("no_trade", "", 0)),
    row(D3, 3, {"CCC": 10, "CASH": 900.0}, ("no_trade", "", 0)),
]
MODEL_H = [
    row(D0, 0, {"DDD": 0, "CASH": 1000.0}),
    row(D1, 1, {"DDD": 10, "CASH": 950.0}, ("buy", "DDD", 10)),
    row(D3, 2, {"DDD": 10, "CASH": 950.0}, ("no_trade", "", 0)),
]


@pytest.fixture
def gappy(folder: Path) -> Path:
    add_prices(folder, CCC=CCC, DDD=DDD)
    write_jsonl(position_file(folder, "model-g"), MODEL_G)
    write_jsonl(position_file(folder, "model-h"), MODEL_H)
    return folder


@pytest.mark.parametrize("signature", ["model-a", "model-b", "model-g", "model-h"])
def test_the_page_and_the_runs_summary_agree_on_every_figure(gappy, signature):
    result = run_summary(gappy, signature)
    page = by_name(TestClient(build_app(gappy)).get("/api/summary").json(), signature)
    assert page["days"] == result.days
    assert (page["series"][1]["date"], page["last_date"]) == (result.first_day, result.last_day)
    assert page["initial_value"] == result.start_value
    assert page["final_value"] == result.final_value
    assert page["total_return"] == result.total_return
    assert page["benchmark_return"] == result.benchmark_return


def test_a_gap_in_a_held_symbols_prices_is_a_gap_in_the_value_and_a_notice(gappy):
    summary = TestClient(build_app(gappy)).get("/api/summary").json()
    model = by_name(summary, "model-g")
    # D1 900 + 10 * 11; D2 unknown (no CCC bar); D3 900 + 10 * 12 at the open.
    assert [p["value"] for p in model["series"]] == [1000.0, 1010.0, None, 1020.0]
    assert model["final_value"] == pytest.approx(1020.0)
    assert (
        f"model-g: no price for CCC on {D2}; the value there is unknown (a gap)"
        in (summary["notices"])
    )
    page = TestClient(build_app(gappy)).get("/").text
    runs = re.findall(
        r'<polyline data-series="model-g" data-points="(\d+)"', chart_in(page, "value-chart")
    )
    assert runs == ["2", "1"]  # the line stops before D2 and starts again at D3
    assert "no price for CCC on 2025-10-03" in page


def test_a_book_that_cannot_be_valued_on_its_last_day_shows_n_a_like_the_run(gappy):
    summary = TestClient(build_app(gappy)).get("/api/summary").json()
    model = by_name(summary, "model-h")
    assert (model["final_value"], model["total_return"]) == (None, None)
    assert model["benchmark_return"] == pytest.approx(0.2)
    assert any(f"model-h: no price for DDD on {D3}" in n for n in summary["notices"])
    assert run_summary(gappy, "model-h").unpriced == ("DDD",)
    section = TestClient(build_app(gappy)).get("/").text.split('<section id="model-h">')[1]
    assert section.startswith("<h2>model-h: <span>n/a</span>")


def test_qqq_is_scaled_to_each_models_own_start(folder):
    model = by_name(data.summarise(folder), "model-b")
    # 500 at the start, QQQ's D1 close over its D1 open: 500 * 110 / 100.
    assert [(p["value"], p["benchmark"]) for p in model["series"]] == [
        (pytest.approx(500.0), pytest.approx(500.0)),
        (pytest.approx(508.0), pytest.approx(550.0)),
    ]


def test_the_chart_benchmark_follows_the_longest_run(folder):
    summary = data.summarise(folder)
    assert summary["benchmark"]["basis"] == "model-a"
    assert [p["value"] for p in summary["benchmark"]["points"]] == pytest.approx(
        [1000.0, 1100.0, 1050.0, 1200.0]
    )


def test_current_positions_are_valued_at_the_newest_price(folder):
    model = by_name(data.summarise(folder), "model-a")
    assert model["cash"] == pytest.approx(930.0)
    assert model["holdings"] == [{"symbol": "BBB", "shares": 5, "price": 24.0, "value": 120.0}]


def test_each_days_trades_with_their_fill_price(folder):
    model = by_name(data.summarise(folder), "model-a")
    assert model["trades"] == [
        {
            "date": D1,
            "trades": [
                {"action": "buy", "symbol": "AAA", "amount": 10, "price": 10.0},
                {"action": "buy", "symbol": "BBB", "amount": 5, "price": 20.0},
            ],
        },
        {"date": D2, "trades": []},
        {"date": D3, "trades": [{"action": "sell", "symbol": "AAA", "amount": 10, "price": 13.0}]},
    ]


def test_a_run_with_only_its_opening_row_is_one_point_at_its_cash(tmp_path, folder):
    write_jsonl(position_file(folder, "model-c"), [row(D0, 0, {"AAA": 0, "CASH": 250.0})])
    model = by_name(data.summarise(folder), "model-c")
    assert model["series"] == [{"date": D0, "value": 250.0, "benchmark": 250.0}]
    assert (model["days"], model["total_return"], model["benchmark_return"]) == (0, 0.0, None)


def test_a_holding_without_a_price_is_never_counted_as_zero(folder):
    lines = [*MODEL_A[:2], row(D1, 2, {"AAA": 10, "ZZZ": 1, "CASH": 900.0}, ("buy", "ZZZ", 0))]
    write_jsonl(position_file(folder, "model-a"), lines)
    summary = data.summarise(folder)
    model = by_name(summary, "model-a")
    assert model["final_value"] is None
    assert model["series"][-1] == {"date": D1, "value": None, "benchmark": 1100.0}
    assert any("no price for ZZZ on 2025-10-02" in n for n in summary["notices"])


def test_without_merged_jsonl_positions_show_and_values_do_not(folder):
    (folder / "merged.jsonl").unlink()
    summary = data.summarise(folder)
    model = by_name(summary, "model-a")
    assert model["series"] == []
    assert model["holdings"] == [{"symbol": "BBB", "shares": 5, "price": None, "value": None}]
    assert any("merged.jsonl is missing" in n for n in summary["notices"])


def test_the_synthetic_sample_is_labelled(folder):
    meta = {"2. Symbol": "QQQ", "6. Note": "SYNTHETIC offline sample data"}
    line = json.dumps({"Meta Data": meta, "Time Series (Daily)": {D1: {"1. buy price": "1"}}})
    with (folder / "merged.jsonl").open("a") as handle:
        handle.write(line + "\n")
    summary = data.summarise(folder)
    assert summary["prices"]["synthetic"] is True
    assert any("SYNTHETIC" in n for n in summary["notices"])


# --- bad lines and empty folders -----------------------------------------------------------


def test_corrupt_position_lines_are_skipped_and_reported(folder):
    path = position_file(folder, "model-a")
    lines = path.read_text().splitlines()
    lines.insert(2, "{this is not json")
    lines.insert(4, json.dumps({"date": D1, "id": 9}))  # no positions
    path.write_text("\n".join(lines) + "\n")
    summary = data.summarise(folder)
    assert [(s["line"], s["reason"]) for s in summary["skipped"]] == [
        (3, "not valid JSON"),
        (5, "missing or invalid 'positions'"),
    ]
    assert all(s["file"] == str(path) for s in summary["skipped"])
    assert any("2 line(s) could not be used" in n for n in summary["notices"])
    # The good lines still give the same figures.
    model = by_name(summary, "model-a")
    assert [p["value"] for p in model["series"]] == pytest.approx([v for _, v, _ in VALUES_A])


def test_a_truncated_last_line_is_reported_and_the_file_left_alone(folder):
    path = position_file(folder, "model-a")
    before = path.read_text() + '{"date": "2025-10-07", "id": 5, "posi'
    path.write_text(before)
    summary = data.summarise(folder)
    assert [s["line"] for s in summary["skipped"]] == [6]
    assert path.read_text() == before  # read-only: never repaired here


def test_corrupt_price_lines_are_skipped_and_reported(folder):
    with (folder / "merged.jsonl").open("a") as handle:
        handle.write("[1, 2]\n")
        handle.write(json.dumps({"Meta Data": {"2. Symbol": "X"}}) + "\n")
    summary = data.summarise(folder)
    assert [s["line"] for s in summary["skipped"]] == [4, 5]
    assert by_name(summary, "model-a")["final_value"] == pytest.approx(1050.0)


EXTREME_ROWS = [
    pytest.param('"positions": {"AAA": 1e308, "CASH": 1.0}}', "is beyond 1e+15", id="1e308"),
    pytest.param('"positions": {"AAA": 1, "CASH": 1' + "0" * 400 + "}}", "is beyond",
                 id="10**400"),
    pytest.param('"positions": {"AAA": NaN, "CASH": 1.0}}', "NaN is not a number", id="NaN"),
]  # fmt: skip
EXTREME_LINES = [
    *EXTREME_ROWS,
    pytest.param("[" * 50_000 + "]" * 50_000, "nested too deeply", id="deeply-nested"),
    pytest.param("[1, 2, 3]", "expected a JSON object", id="non-object"),
]


@pytest.mark.parametrize(("text", "reason"), EXTREME_LINES)
def test_an_extreme_position_line_is_skipped_and_reported_never_a_500(folder, text, reason):
    path = position_file(folder, "model-b")
    head = f'{{"date": "{D2}", "id": 2, "this_action": {{"action": "no_trade"}}, '
    line = text if text.startswith("[") else head + text
    with path.open("a") as handle:
        handle.write(line + "\n")
    client = TestClient(build_app(folder))
    reply = client.get("/api/summary")
    assert reply.status_code == 200
    summary = reply.json()
    ((file, number, why),) = [(s["file"], s["line"], s["reason"]) for s in summary["skipped"]]
    assert (file, number) == (str(path), 3)
    assert reason in why
    assert by_name(summary, "model-b")["final_value"] == pytest.approx(508.0)
    page = client.get("/")
    assert page.status_code == 200
    assert "1 skipped line(s)" in page.text
    assert escape(reason) in page.text


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 50_000 + "]" * 50_000, id="deeply-nested"),
        pytest.param('"QQQ"', id="non-object"),
        pytest.param(merged_line("AAA", {D1: (1e308, 1e308)}).replace("1e+308", "1e999"),
                     id="infinite-price"),
    ],
)  # fmt: skip
def test_an_extreme_price_line_is_skipped_and_reported_never_a_500(folder, text):
    with (folder / "merged.jsonl").open("a") as handle:
        handle.write(text + "\n")
    client = TestClient(build_app(folder))
    reply = client.get("/api/summary")
    assert reply.status_code == 200
    assert [s["line"] for s in reply.json()["skipped"]] == [4]
    assert client.get("/").status_code == 200


def test_a_value_too_large_to_be_a_number_is_a_gap_not_a_500(folder):
    add_prices(folder, HUGE={D1: (1e300, 1e300)})
    write_jsonl(
        position_file(folder, "model-b"),
        [*MODEL_B[:1], row(D1, 1, {"HUGE": 1e15, "CASH": 0.0}, ("buy", "HUGE", 1))],
    )
    client = TestClient(build_app(folder))
    reply = client.get("/api/summary")
    assert reply.status_code == 200
    model = by_name(reply.json(), "model-b")
    assert (model["final_value"], model["holdings"][0]["value"]) == (None, None)
    assert any("too large to be a number" in n for n in reply.json()["notices"])
    assert client.get("/").status_code == 200


def test_an_unreadable_position_file_is_reported_not_raised(folder):
    path = position_file(folder, "model-b")
    path.write_bytes(b"\xff\xfe not utf-8")
    summary = data.summarise(folder)
    assert by_name(summary, "model-b")["series"] == []
    assert any(s["file"] == str(path) and s["line"] is None for s in summary["skipped"])


@pytest.mark.parametrize("make", ["missing", "empty", "only prices"])
def test_a_missing_or_empty_folder_is_the_empty_state(tmp_path, make):
    data_dir = tmp_path / "data"
    if make != "missing":
        data_dir.mkdir()
    if make == "only prices":
        write_jsonl(data_dir / "merged.jsonl", [merged_line("QQQ", PRICES["QQQ"])])
    summary = data.summarise(data_dir)
    assert summary["empty"] is True
    assert summary["signatures"] == []
    assert summary["benchmark"]["points"] == []
    assert any("No model runs yet" in n for n in summary["notices"])
    page = render_page(summary)
    assert "id=empty-state" in page
    assert polylines(page) == {}


def test_folders_without_a_position_file_are_not_models(folder):
    (folder / "agent_data" / "not-a-model" / "log").mkdir(parents=True)
    assert list(data.find_signatures(folder)) == ["model-a", "model-b"]


def test_the_model_a_live_run_holds_is_shown_with_the_day_it_trades(folder):
    from ai_trader.lock import signature_lock

    next_day = "2025-10-07"  # the day after the book's last (D3): the one a run trades next
    Ledger(folder / "agent_data" / "model-a").record_trade(next_day, "buy", "BBB", 1, 24.0)
    with signature_lock(folder / "agent_data" / "model-a"):
        summary = data.summarise(folder)
    assert [(r["signature"], r["day"]) for r in summary["running"]] == [("model-a", next_day)]
    assert "is trading 2025-10-07" in render_page(summary)


def test_a_model_whose_run_ended_is_not_shown_running(folder):
    from ai_trader.lock import signature_lock

    with signature_lock(folder / "agent_data" / "model-a"):
        pass
    assert data.summarise(folder)["running"] == []


# --- the chart -------------------------------------------------------------------------------


def test_the_chart_has_one_line_per_model_plus_qqq_with_every_point(folder):
    svg = chart_svg(data.summarise(folder))
    assert polylines(svg) == {"model-a": 4, "model-b": 2, "QQQ": 4}
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")


def test_each_polyline_has_as_many_coordinates_as_its_data_points():
    svg = line_chart(
        [Series("m", [(D0, 1.0), (D1, 2.0), (D2, 1.5)]), Series("QQQ", [(D0, 1.0)], True)]
    )
    for points, coords in re.findall(r'data-points="(\d+)" points="([^"]*)"', svg):
        assert len(coords.split()) == int(points)
    assert 'stroke-dasharray="6 4"' in svg  # the benchmark is dashed


def test_the_chart_has_axes_labels_and_a_legend():
    svg = line_chart([Series("alpha", [(D0, 1000.0), (D3, 1100.0)])], title="Value")
    assert ">Value</text>" in svg
    assert ">2025-10-01</text>" in svg  # x labels
    assert ">2025-10-06</text>" in svg
    assert ">1,000</text>" in svg  # y ticks
    assert ">1,100</text>" in svg
    assert ">alpha</text>" in svg  # legend


def test_names_are_escaped_in_the_svg():
    svg = line_chart([Series('<b>"x"</b>', [(D0, 1.0)])])
    assert "<b>" not in svg
    assert polylines(svg) == {"&lt;b&gt;&quot;x&quot;&lt;/b&gt;": 1}


def test_an_empty_chart_says_so_and_draws_no_line():
    svg = line_chart([Series("m", [])])
    assert "No data to chart yet" in svg
    assert "<polyline" not in svg


@pytest.mark.parametrize(
    ("span", "step"), [(100, 20), (1000, 200), (12, 2.5), (0.9, 0.2), (0, 1.0)]
)
def test_tick_steps_are_round(span, step):
    assert nice_step(span) == pytest.approx(step)


def test_a_drawdown_chart_that_never_fell_has_a_flat_line_on_a_readable_axis():
    svg = line_chart([Series("m", [(D0, 0.0), (D1, 0.0), (D2, 0.0)])], unit="%")
    assert polylines(svg) == {"m": 3}
    ticks = re.findall(r'dy="4" text-anchor="end" fill="#374151">([^<]*)</text>', svg)
    assert ticks == ["-1.0%", "-0.5%", "0.0%", "0.5%", "1.0%"]


def test_the_tick_at_zero_is_written_0_never_minus_0():
    # Adding 0.2 four times to -0.8 gives -5.6e-17, which would print as "-0.0".
    svg = line_chart([Series("m", [(D0, 0.0), (D1, -0.7)])], unit="%")
    ticks = re.findall(r'dy="4" text-anchor="end" fill="#374151">([^<]*)</text>', svg)
    assert ticks == ["-0.8%", "-0.6%", "-0.4%", "-0.2%", "0.0%"]


def test_each_line_carries_the_lowest_value_it_joins_exactly():
    svg = line_chart([Series("m", [(D0, 3.0), (D1, -2.5), (D2, None), (D3, 0.1)])])
    assert re.findall(r'data-points="(\d+)" data-low="([^"]*)"', svg) == [
        ("2", "-2.5"),
        ("1", "0.1"),
    ]


def test_a_chart_can_be_told_from_another_on_the_page_by_its_id():
    assert line_chart([Series("m", [(D0, 1.0)])], element_id="value-chart").startswith(
        '<svg xmlns="http://www.w3.org/2000/svg" id="value-chart" class="chart"'
    )


# --- the drawdown chart ----------------------------------------------------------------------

# Model D, 1000 in cash, buys 30 AAA at 10 on D1 and holds: D1 700 + 30*12 = 1060,
# D2 700 + 30*11 = 1030 (a fall of 1030/1060 - 1 from the D1 peak), D3 700 + 30*13 = 1090.
MODEL_D = [
    row(D0, 0, {"AAA": 0, "CASH": 1000.0}),
    row(D1, 1, {"AAA": 30, "CASH": 700.0}, ("buy", "AAA", 30)),
    row(D2, 2, {"AAA": 30, "CASH": 700.0}, ("no_trade", "", 0)),
    row(D3, 3, {"AAA": 30, "CASH": 700.0}, ("no_trade", "", 0)),
]


def test_the_drawdown_chart_has_one_line_per_model_plus_qqq_below_the_value_chart(folder):
    page = TestClient(build_app(folder)).get("/").text
    assert page.index('id="value-chart"') < page.index('id="drawdown-chart"')
    svg = chart_in(page, "drawdown-chart")
    assert polylines(svg) == {"model-a": 4, "model-b": 2, "QQQ": 4}  # the same days
    # Model A only rises (1000, 1030, 1035, 1050): 0 everywhere. QQQ (1000, 1100, 1050,
    # 1200) falls once, from its D1 peak, by hand 1050/1100 - 1.
    assert lowest(svg) == {
        "model-a": 0.0,
        "model-b": 0.0,
        "QQQ": pytest.approx((1050 / 1100 - 1) * 100),
    }
    assert "<title>model-a 2025-10-03: 0.00%</title>" in svg  # a point's tooltip, in %


def test_each_lines_lowest_drawdown_is_the_max_drawdown_in_the_metrics_table(folder):
    write_jsonl(position_file(folder, "model-d"), MODEL_D)
    summary = TestClient(build_app(folder)).get("/api/summary").json()
    page = TestClient(build_app(folder)).get("/").text
    low = lowest(chart_in(page, "drawdown-chart"))
    table = metrics_table(page)
    basis = summary["benchmark"]["basis"]
    rows = {m["signature"]: m["signature"] for m in summary["signatures"]}
    figures = {m["signature"]: m["metrics"]["model"] for m in summary["signatures"]}
    rows["QQQ"] = f"QQQ ({basis}'s days)"  # the chart draws the QQQ of the longest book
    figures["QQQ"] = by_name(summary, basis)["metrics"]["benchmark"]
    assert set(low) == set(rows) == {"model-a", "model-b", "model-d", "QQQ"}
    assert low["model-d"] == pytest.approx((1030 / 1060 - 1) * 100)  # by hand
    for name, row_name in rows.items():
        assert low[name] == figures[name]["max_drawdown"]["value"] * 100  # the same number
        assert f"{low[name]:.2f}%" == table[row_name]["max drawdown"]  # as the table shows it


def test_a_gap_stops_the_drawdown_line_where_max_drawdown_is_n_a(gappy):
    page = TestClient(build_app(gappy)).get("/").text
    svg = chart_in(page, "drawdown-chart")
    # model-g: 1000, 1010, unknown, 1020. After the gap the peak is unknown, so the line
    # ends at D1; it never reads the gap as 0.
    runs = re.findall(r'<polyline data-series="model-g" data-points="(\d+)"', svg)
    assert runs == ["2"]
    assert lowest(svg)["model-g"] == 0.0
    assert metrics_table(page)["model-g"]["max drawdown"] == "n/a"
    assert f'title="no value on {D2}: no price for CCC">n/a</td>' in page


def test_the_drawdown_chart_is_drawn_from_the_summarys_own_series(folder):
    summary = data.summarise(folder)
    assert "drawdown" not in json.dumps(summary["signatures"][0]["series"])  # no extra JSON
    assert polylines(drawdown_svg(summary)) == {"model-a": 4, "model-b": 2, "QQQ": 4}


# --- the app ---------------------------------------------------------------------------------


def test_the_page_shows_the_chart_the_returns_positions_and_trades(folder):
    client = TestClient(build_app(folder))
    reply = client.get("/")
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    page = reply.text
    assert "<title>ai-trader results</title>" in page
    assert polylines(chart_in(page, "value-chart")) == {"model-a": 4, "model-b": 2, "QQQ": 4}
    assert "+5.00%" in page  # model-a's return
    assert "+20.00%" in page  # QQQ's
    assert "sell 10 AAA</span> @ 13.00" in page
    assert "<td>BBB</td>" in page
    assert 'http-equiv="refresh" content="10"' in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # no external asset


def test_the_page_reports_skipped_lines(folder):
    with position_file(folder, "model-b").open("a") as handle:
        handle.write("garbage\n")
    page = TestClient(build_app(folder)).get("/").text
    assert "1 skipped line(s)" in page
    assert "position.jsonl:3</code>: not valid JSON" in page


def test_the_json_summary_has_the_documented_shape(folder):
    reply = TestClient(build_app(folder)).get("/api/summary")
    assert reply.status_code == 200
    summary = reply.json()
    assert set(summary) >= {
        "data_dir", "empty", "running", "prices", "benchmark", "signatures", "notices",
        "skipped", "fingerprint", "generated",
    }  # fmt: skip
    assert summary["empty"] is False
    assert [m["signature"] for m in summary["signatures"]] == ["model-a", "model-b"]
    model = summary["signatures"][0]
    assert set(model) == {
        "signature", "start_date", "last_date", "days", "initial_value", "final_value",
        "total_return", "benchmark_return", "series", "cash", "holdings", "trades", "metrics",
        "accounting", "run",
    }  # fmt: skip
    assert "accounting_total" in summary
    assert set(model["series"][0]) == {"date", "value", "benchmark"}
    assert summary["benchmark"]["symbol"] == "QQQ"


def test_health_answers_ok(tmp_path):
    reply = TestClient(build_app(tmp_path / "nothing")).get("/health")
    assert (reply.status_code, reply.json()) == (200, {"status": "ok"})


def test_the_page_follows_the_files_as_a_run_writes(folder):
    client = TestClient(build_app(folder))
    first = client.get("/api/summary").json()
    with position_file(folder, "model-b").open("a") as handle:
        handle.write(json.dumps(row(D2, 2, {"AAA": 4, "CASH": 460.0}, ("no_trade", "", 0))) + "\n")
    # A new price file (the prices are cached until the file changes).
    prices = {**PRICES, "AAA": {**PRICES["AAA"], D2: (12, 21)}}
    write_jsonl(folder / "merged.jsonl", [merged_line(s, b) for s, b in prices.items()])
    second = client.get("/api/summary").json()
    assert second["fingerprint"] != first["fingerprint"]
    model = by_name(second, "model-b")
    assert model["days"] == 2
    assert model["final_value"] == pytest.approx(460.0 + 4 * 21)


def test_the_empty_state_is_served_for_a_missing_folder(tmp_path):
    client = TestClient(build_app(tmp_path / "missing"))
    assert "No results yet" in client.get("/").text
    assert client.get("/api/summary").json()["empty"] is True


def test_a_notice_with_markup_is_shown_as_text_in_the_page(folder):
    summary = data.summarise(folder)
    summary["notices"].append('<script>alert("x")</script> & <b>more</b>')
    page = render_page(summary)
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; &lt;b&gt;more&lt;/b&gt;" in page
    assert "<script>alert" not in page
    assert "<b>more" not in page


def test_a_data_folder_named_with_markup_is_escaped_wherever_the_page_shows_it(tmp_path):
    data_dir = tmp_path / "<script>alert(1)</script>&x"  # missing: the empty state names it
    page = TestClient(build_app(data_dir)).get("/").text
    shown = escape(str(data_dir), quote=False)
    assert f"Data: <code>{shown}</code>" in page
    assert f"Nothing to show from <code>{shown}</code>" in page
    assert f"<p class=notice>The data folder {shown} does not exist yet.</p>" in page
    assert "<script>alert(1)" not in page


def test_a_signature_with_markup_is_escaped_in_the_tables_and_the_chart(folder):
    write_jsonl(position_file(folder, '<i>m&m"'), MODEL_B)
    page = TestClient(build_app(folder)).get("/").text
    assert '<a href="#&lt;i&gt;m&amp;m&#34;">&lt;i&gt;m&amp;m&#34;</a>' in page
    assert '<section id="&lt;i&gt;m&amp;m&#34;"><h2>&lt;i&gt;m&amp;m&#34;: ' in page
    assert polylines(chart_in(page, "value-chart"))["&lt;i&gt;m&amp;m&quot;"] == 2
    assert polylines(chart_in(page, "drawdown-chart"))["&lt;i&gt;m&amp;m&quot;"] == 2
    assert "<i>" not in page


def test_the_page_body_is_rendered_once_per_change_of_the_data(folder, monkeypatch):
    rendered: list[str] = []

    def counted(summary: dict) -> str:
        rendered.append(summary["fingerprint"])
        return page_body(summary)

    def without_read_time(text: str) -> str:
        return re.sub(r" · read [^ ]+ · ", " · ", text)

    monkeypatch.setattr("ai_trader.dashboard.page.page_body", counted)
    client = TestClient(build_app(folder))
    first = client.get("/").text
    assert without_read_time(client.get("/").text) == without_read_time(first)
    assert len(rendered) == 1
    with position_file(folder, "model-b").open("a") as handle:
        handle.write(json.dumps(row(D2, 2, {"AAA": 4, "CASH": 460.0}, ("no_trade", "", 0))) + "\n")
    changed = client.get("/").text
    assert len(rendered) == 2
    assert rendered[0] != rendered[1]
    assert f'data-fingerprint="{rendered[1]}"' in changed
    assert "<td class=nowrap>2025-10-03</td>" in changed.split('<section id="model-b">')[1]


# --- reading only what changed ----------------------------------------------------------------


def test_an_unchanged_folder_is_not_read_again(folder):
    source = data.Folder(folder)
    assert source.summary() is source.summary()


def test_a_book_that_grew_reads_like_a_fresh_read(folder):
    source = data.Folder(folder)
    source.summary()
    path = position_file(folder, "model-b")
    with path.open("a") as handle:
        handle.write("garbage\n")
        handle.write(json.dumps(row(D2, 2, {"AAA": 4, "CASH": 460.0}, ("no_trade", "", 0))))
        handle.write("\n")
        handle.write('{"date": "2025-10-06", "id"')  # a last line still being written
    grown = source.summary()
    assert grown == data.summarise(folder)
    assert [(s["line"], s["reason"]) for s in grown["skipped"]] == [
        (3, "not valid JSON"),
        (5, "not valid JSON"),
    ]
    assert by_name(grown, "model-b")["days"] == 2


def test_a_book_rewritten_from_an_earlier_line_is_read_again_from_its_start(folder):
    source = data.Folder(folder)
    source.summary()
    path = position_file(folder, "model-b")
    cheaper = [MODEL_B[0], row(D1, 1, {"AAA": 2, "CASH": 480.0}, ("buy", "AAA", 2))]
    write_jsonl(path, [*cheaper, row(D2, 2, {"AAA": 2, "CASH": 480.0}, ("no_trade", "", 0))])
    rewritten = source.summary()
    assert rewritten == data.summarise(folder)
    assert by_name(rewritten, "model-b")["final_value"] == pytest.approx(480.0 + 2 * 11)


def test_health_answers_while_a_summary_is_being_read(tmp_path):
    """The summary is held on a price file that is a FIFO: reading it blocks until the test
    writes to it. /health must answer meanwhile, and the summary must finish after."""
    import http.client
    import os
    import subprocess
    import sys
    import threading
    import time

    from support import cli_env

    data_dir = tmp_path / "data"
    write_jsonl(position_file(data_dir, "model-a"), MODEL_A)
    fifo = data_dir / "merged.jsonl"
    os.mkfifo(fifo)
    # Port 0: the dashboard takes a free port and names it; nothing can take it first.
    server = subprocess.Popen(
        [sys.executable, "-m", "ai_trader", "dashboard", "--port", "0"],
        env=cli_env({"DATA_DIR": str(data_dir)}),
        stderr=subprocess.PIPE,
        text=True,
    )

    def get(path: str, timeout: float) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", path)
            reply = connection.getresponse()
            return reply.status, reply.read()
        finally:
            connection.close()

    answers: list[tuple[int, bytes]] = []
    try:
        assert server.stderr is not None
        port = dashboard_port(server.stderr.readline())
        waiting = threading.Thread(target=lambda: answers.append(get("/api/summary", 120)))
        waiting.start()
        # The summary is under way once the dashboard has the FIFO open for reading
        # (opening its write end fails with ENXIO until then).
        deadline = time.monotonic() + 60
        while True:
            try:
                writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:
                assert time.monotonic() < deadline, "the summary never opened the price file"
                time.sleep(0.05)
        try:
            assert get("/health", 30) == (200, b'{"status":"ok"}')
            assert waiting.is_alive()  # still held: /health did not wait for it
        finally:
            lines = [merged_line(s, b) for s, b in PRICES.items()]
            os.set_blocking(writer, True)
            os.write(writer, ("\n".join(lines) + "\n").encode())
            os.close(writer)
        waiting.join(120)
        ((status, body),) = answers
        assert status == 200
        assert by_name(json.loads(body), "model-a")["final_value"] == pytest.approx(1050.0)
    finally:
        server.terminate()
        server.wait(timeout=20)


# --- the command -----------------------------------------------------------------------------


def test_the_dashboard_address_comes_from_the_settings():
    assert (load_settings({}).dashboard_host, load_settings({}).dashboard_port) == (
        "127.0.0.1",
        8888,
    )
    env = {"DASHBOARD_HOST": "0.0.0.0", "DASHBOARD_PORT": "9000"}
    assert (load_settings(env).dashboard_host, load_settings(env).dashboard_port) == (
        "0.0.0.0",
        9000,
    )


@pytest.mark.parametrize("raw", ["http", "-1", "70000", "0"])  # 0 is for serve only
def test_a_bad_dashboard_port_is_a_clear_error(raw):
    with pytest.raises(UserError, match="DASHBOARD_PORT must be a port number"):
        load_settings({"DASHBOARD_PORT": raw})


def test_the_subcommand_parses_host_and_port():
    args = build_parser().parse_args(["dashboard", "--host", "0.0.0.0", "--port", "9001"])
    assert (args.command, args.host, args.port) == ("dashboard", "0.0.0.0", 9001)


def test_a_port_in_use_is_a_one_line_error(tmp_path, capsys, monkeypatch):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    try:
        with pytest.raises(UserError, match=f"port {port} for the dashboard is already in use"):
            bind("127.0.0.1", port)
        assert main(["dashboard", "--port", str(port)]) == 2
    finally:
        holder.close()
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith("ai-trader dashboard: error: port")


def test_the_served_dashboard_refuses_foreign_hosts_and_origins(tmp_path):
    import http.client
    import subprocess
    import sys

    from support import cli_env

    env = cli_env({"DATA_DIR": str(tmp_path), "AI_TRADER_ALLOWED_HOSTS": "board.internal"})
    server = subprocess.Popen(
        [sys.executable, "-m", "ai_trader", "dashboard", "--port", "0"],  # any free port
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stderr is not None
        port = dashboard_port(server.stderr.readline())

        def status(headers: dict[str, str]) -> int:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", "/api/summary", headers=headers)
            code = connection.getresponse().status
            connection.close()
            return code

        assert status({"Host": f"localhost:{port}"}) == 200
        assert status({"Host": f"board.internal:{port}"}) == 200
        assert status({"Host": f"evil.example:{port}"}) == 421
        assert status({"Host": f"127.0.0.1:{port}", "Origin": "http://evil.example"}) == 403
    finally:
        server.terminate()
        server.wait(timeout=20)


# --- a missing benchmark -------------------------------------------------------------------


@pytest.fixture
def no_benchmark(folder: Path) -> Path:
    prices = {s: b for s, b in PRICES.items() if s != "QQQ"}
    write_jsonl(folder / "merged.jsonl", [merged_line(s, b) for s, b in prices.items()])
    return folder


def test_prices_without_the_benchmark_give_a_notice_naming_it_and_how_to_get_it(no_benchmark):
    summary = TestClient(build_app(no_benchmark)).get("/api/summary").json()
    missing = summary["benchmark"]["missing"]
    assert missing.startswith(f"The benchmark QQQ is missing from {no_benchmark / 'merged.jsonl'}")
    assert "`ai-trader fetch` fetches QQQ, then `ai-trader merge`" in missing
    assert missing in summary["notices"]
    assert by_name(summary, "model-a")["benchmark_return"] is None
    assert escape(missing) in TestClient(build_app(no_benchmark)).get("/").text


def test_prices_with_the_benchmark_carry_no_such_notice(folder):
    summary = data.summarise(folder)
    assert summary["benchmark"]["missing"] is None
    assert not any("benchmark" in notice for notice in summary["notices"])


# --- metrics ---------------------------------------------------------------------------------


def test_each_models_metrics_are_valuations_own(folder):
    from ai_trader.valuation import measure, value_book

    rows = Ledger(folder / "agent_data" / "model-a").rows()
    prices = PriceBook.load(folder / "merged.jsonl")
    expected = measure(value_book(rows, prices), rows, prices).to_json()
    assert by_name(data.summarise(folder), "model-a")["metrics"] == expected


def test_the_page_shows_the_metrics_table_with_each_n_a_reason(folder):
    page = TestClient(build_app(folder)).get("/").text
    assert "<table class=metrics>" in page
    assert 'title="QQQ is held, not traded">n/a</td>' in page


# --- what each model paid: fees, tokens, dollars --------------------------------------------


def usage_row(day: str, prompt: int, cost: float | None, unknown: int = 0) -> dict:
    return {"date": day, "requests": 1 + unknown, "unknown": unknown, "prompt_tokens": prompt,
            "completion_tokens": 10, "cached_tokens": 0, "cost_usd": cost}  # fmt: skip


def usage_file(data_dir: Path, signature: str) -> Path:
    return position_file(data_dir, signature).with_name("usage.jsonl")


@pytest.fixture
def paid(folder: Path) -> Path:
    write_jsonl(usage_file(folder, "model-a"), [usage_row(d, 100, 0.5) for d in (D1, D2, D3)])
    write_jsonl(usage_file(folder, "model-b"), [usage_row(D1, 1000, 0.25)])
    return folder


def test_the_summary_carries_each_models_tokens_and_dollars_and_their_total(paid: Path):
    summary = TestClient(build_app(paid)).get("/api/summary").json()
    a = by_name(summary, "model-a")["accounting"]
    assert (a["tokens"], a["cost_usd"], a["fees"]) == ({"value": 330.0}, {"value": 1.5},
                                                       {"value": 0.0})  # fmt: skip
    assert summary["accounting_total"]["tokens"] == {"value": 1340.0}
    assert summary["accounting_total"]["cost_usd"] == {"value": 1.75}


def test_the_page_shows_each_models_tokens_and_dollars_and_their_total(paid: Path):
    page = TestClient(build_app(paid)).get("/").text
    assert '<td class=num data-paid="tokens">330</td>' in page
    assert '<td class=num data-paid="cost_usd">$1.50</td>' in page
    assert '<span data-paid-total="cost_usd">$1.75</span>' in page


def test_a_new_days_usage_reaches_the_page_without_a_restart(paid: Path):
    client = TestClient(build_app(paid))
    before = client.get("/api/summary").json()["fingerprint"]
    # The day redone (same size of file, another total): the stat key, not the size, tells.
    write_jsonl(usage_file(paid, "model-b"), [usage_row(D1, 2000, 0.25)])
    summary = client.get("/api/summary").json()
    assert summary["fingerprint"] != before
    assert by_name(summary, "model-b")["accounting"]["tokens"] == {"value": 2010.0}


def test_a_request_without_usage_shows_n_a_with_its_reason(paid: Path):
    write_jsonl(usage_file(paid, "model-b"), [usage_row(D1, 1000, None, unknown=1)])
    page = TestClient(build_app(paid)).get("/").text
    assert (
        '<td class=num data-paid="tokens" title="1 request(s) on '
        f'{D1} returned no usage">n/a</td>' in page
    )
    assert "model-b: 1 request(s)" in page  # the total names the model


def test_an_unreadable_usage_file_is_a_notice_not_a_failure(paid: Path):
    usage_file(paid, "model-b").write_text("garbage\n")
    summary = TestClient(build_app(paid)).get("/api/summary").json()
    assert by_name(summary, "model-b")["accounting"] is None
    assert any("model-b: tokens and dollars unknown" in n for n in summary["notices"])


def test_the_page_says_what_produced_each_book_from_its_manifest(paid: Path):
    made = {
        "schema": "ai-trader.run/1", "package_version": "9.9", "git_revision": "abc123",
        "config_sha256": "f" * 64, "responses": "record", "started": "S", "ended": "E",
    }  # fmt: skip
    path = position_file(paid, "model-a").parent.parent / "run.json"
    path.write_text(json.dumps(made))
    summary = TestClient(build_app(paid)).get("/api/summary").json()
    assert by_name(summary, "model-a")["run"]["git_revision"] == "abc123"
    assert by_name(summary, "model-b")["run"] is None
    page = TestClient(build_app(paid)).get("/").text
    assert (
        '<p class="quiet run" data-run="model-a">ai-trader 9.9, revision abc123, config '
        "ffffffffffff, responses record, run S to E</p>" in page
    )
