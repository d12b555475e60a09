"""The market a config names and the market a data folder holds (ai_trader.market.folder):
what the container's entrypoint asks before a run, and the one-line refusal of `fetch`
and `merge` in a folder of another market's prices, over the real CLI."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import OfflineData
from support import cli_env, run_cli

from ai_trader import __version__
from ai_trader.layout import PRICE_GLOB, merged_file
from ai_trader.market.folder import config_market, other_market

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@pytest.fixture
def us_folder(tmp_path: Path, offline_data: OfflineData) -> Path:
    """A data folder of its own holding the US offline sample (a copy: tests may write)."""
    folder = tmp_path / "us-data"
    shutil.copytree(offline_data.data_dir, folder)
    return folder


def test_the_default_config_names_the_us_market():
    assert config_market(CONFIGS / "default_config.json") == "us"


def test_the_cn_config_names_the_cn_market():
    assert config_market(CONFIGS / "cn_daily_config.json") == "cn"


def test_the_crypto_config_names_the_crypto_market():
    assert config_market(CONFIGS / "crypto_daily_config.json") == "crypto"


def test_a_config_that_is_not_json_leaves_the_market_to_the_run_s_refusal(tmp_path: Path):
    config = tmp_path / "config.json"
    config.write_text('{"market": "cn",', encoding="utf-8")
    assert config_market(config) == "us"


def test_a_config_naming_an_unknown_market_leaves_it_to_the_run_s_refusal(tmp_path: Path):
    config = tmp_path / "config.json"
    config.write_text('{"market": "jp"}', encoding="utf-8")
    assert config_market(config) == "us"


def test_a_missing_config_leaves_it_to_the_run_s_refusal(tmp_path: Path):
    assert config_market(tmp_path / "missing.json") == "us"


def test_an_empty_folder_suits_any_market(tmp_path: Path):
    assert other_market(tmp_path, "cn") is None


def test_a_missing_folder_suits_any_market(tmp_path: Path):
    assert other_market(tmp_path / "missing", "crypto") is None


def test_a_folder_of_us_prices_suits_a_us_run(us_folder: Path):
    assert other_market(us_folder, "us") is None


def test_a_folder_of_us_prices_is_refused_to_a_cn_run_naming_the_us(us_folder: Path):
    problem = other_market(us_folder, "cn")
    assert problem == (
        f"{us_folder} holds the us market's prices (102 file(s) such as "
        "daily_prices_AAPL.json); a cn run needs a data folder of its own "
        "(one data folder per market)"
    )


def test_a_folder_of_cn_prices_is_refused_to_a_us_run(cn_data: OfflineData):
    problem = other_market(cn_data.data_dir, "us")
    assert problem is not None
    assert problem.startswith(f"{cn_data.data_dir} holds the cn market's prices (51 file(s)")


def test_the_entrypoint_s_question_answers_version_market_problem_and_names(us_folder: Path):
    done = subprocess.run(
        [sys.executable, "-m", "ai_trader.market.folder", str(CONFIGS / "cn_daily_config.json"),
         str(us_folder), "PRICE_GLOB", "MERGED_NAME"],
        capture_output=True, text=True, check=False, env=cli_env({}),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[:2] == [__version__, "cn"]
    assert lines[2].startswith(f"{us_folder} holds the us market's prices")
    assert lines[3:] == [PRICE_GLOB, "merged.jsonl"]


def test_the_entrypoint_s_question_has_an_empty_problem_line_for_a_fitting_folder(
    us_folder: Path,
):
    done = subprocess.run(
        [sys.executable, "-m", "ai_trader.market.folder", str(CONFIGS / "default_config.json"),
         str(us_folder)],
        capture_output=True, text=True, check=False, env=cli_env({}),
    )  # fmt: skip
    assert done.stdout.split("\n") == [__version__, "us", "", ""]


def test_fetch_for_cn_in_a_folder_of_us_prices_is_one_line_and_exit_2(us_folder: Path):
    before = sorted(path.name for path in us_folder.iterdir())
    result = run_cli("fetch", "--market", "cn", env=cli_env({"DATA_DIR": str(us_folder)}))
    assert (result.returncode, result.stderr.strip().splitlines()) == (
        2,
        [f"ai-trader fetch: error: {other_market(us_folder, 'cn')}"],
    )
    assert sorted(path.name for path in us_folder.iterdir()) == before


def test_merge_for_crypto_in_a_folder_of_us_prices_leaves_merged_jsonl_as_it_was(us_folder: Path):
    merged = merged_file(us_folder).read_bytes()
    result = run_cli("merge", "--market", "crypto", env=cli_env({"DATA_DIR": str(us_folder)}))
    assert result.returncode == 2
    assert "holds the us market's prices" in result.stderr
    assert merged_file(us_folder).read_bytes() == merged
