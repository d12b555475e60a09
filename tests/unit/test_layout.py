"""The data folder's one owner of names: what it names, and what it tells a shell script."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from support import cli_env

from ai_trader import layout


def test_a_books_files_are_named_under_its_signature_folder():
    paths = layout.book_paths(Path("/d/agent_data"), "model-a")
    assert paths.signature == "model-a"
    assert paths.lock_file == Path("/d/agent_data/model-a/.lock")
    assert paths.position_file == Path("/d/agent_data/model-a/position/position.jsonl")
    assert paths.pending_file == Path("/d/agent_data/model-a/position/pending.jsonl")
    assert paths.log_file("2025-10-01") == Path("/d/agent_data/model-a/log/2025-10-01/log.jsonl")


def test_the_price_files_keep_the_original_benchmarks_names():
    data = Path("/d")
    assert layout.price_file(data, "NVDA") == Path("/d/daily_prices_NVDA.json")
    assert layout.price_file(data, "NVDA").match(layout.PRICE_GLOB)
    assert layout.merged_file(data) == Path("/d/merged.jsonl")
    assert layout.books_dir(data) == Path("/d/agent_data")


def test_a_temporary_file_matches_the_pattern_its_cleaner_looks_for():
    name = layout.temp_prefix(Path("/d/position.jsonl")) + "x1y2" + layout.TEMP_SUFFIX
    assert Path(name).match(layout.TEMP_GLOB)


def layout_cli(*names: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ai_trader.layout", *names],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_shell_script_gets_each_name_it_asks_for_on_a_line_of_its_own():
    done = layout_cli("PRICE_GLOB", "MERGED_NAME", "AGENT_DATA")
    assert (done.returncode, done.stdout) == (0, "daily_prices_*.json\nmerged.jsonl\nagent_data\n")


def test_an_unknown_name_is_a_usage_error_listing_the_known_ones():
    done = layout_cli("NOPE")
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == (
        "usage: python -m ai_trader.layout NAME... (names: PRICE_GLOB, MERGED_NAME, AGENT_DATA)"
    )


def test_the_entrypoint_takes_the_data_folders_names_from_the_layout():
    script = (Path(__file__).resolve().parents[2] / "entrypoint.sh").read_text()
    asked = (
        'python -m ai_trader.market.folder "$CONFIG" "$DATA_DIR" PRICE_GLOB MERGED_NAME AGENT_DATA'
    )
    assert asked in script
    code = [line for line in script.splitlines() if not line.lstrip().startswith("#")]
    for name in ("daily_prices_", "merged.jsonl", "agent_data"):
        assert [line for line in code if name in line] == [], name
