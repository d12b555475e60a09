"""The run configuration: the original keys, validated, with the bad key named in one line."""

from __future__ import annotations

import copy
import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ai_trader.config import load_config, parse_config
from ai_trader.errors import UserError
from ai_trader.settings import config_overrides


def valid() -> dict[str, Any]:
    return {
        "agent_type": "BaseAgent",
        "date_range": {"init_date": "2025-10-01", "end_date": "2025-10-31"},
        "models": [
            {
                "name": "builtin-momentum",
                "basemodel": "builtin/momentum",
                "signature": "builtin-momentum",
                "enabled": True,
            },
            {
                "name": "gpt",
                "basemodel": "gpt-4o-mini",
                "signature": "gpt-4o-mini",
                "enabled": False,
            },
        ],
        "agent_config": {
            "max_steps": 12,
            "max_retries": 2,
            "base_delay": 0.5,
            "initial_cash": 5000.0,
        },
        "log_config": {"log_path": "./data/agent_data"},
    }


def error_of(raw: object, env: dict[str, str] | None = None) -> str:
    with pytest.raises(UserError) as caught:
        parse_config(raw, "test.json", config_overrides(env or {}))
    message = str(caught.value)
    assert "\n" not in message, message
    return message


def test_a_valid_config_is_read_with_the_original_keys():
    config = parse_config(valid(), "test.json")
    assert config.date_range.init_date == date(2025, 10, 1)
    assert config.date_range.end_date == date(2025, 10, 31)
    assert [m.signature for m in config.enabled_models] == ["builtin-momentum"]
    assert config.enabled_models[0].builtin
    assert not config.models[1].builtin
    assert config.agent_config.max_steps == 12
    assert config.agent_config.max_retries == 2
    assert config.agent_config.base_delay == 0.5
    assert config.agent_config.initial_cash == 5000.0


def test_the_agent_and_log_sections_have_defaults():
    raw = valid()
    del raw["agent_config"], raw["log_config"]
    config = parse_config(raw, "test.json")
    assert config.agent_config.max_steps == 30
    assert config.agent_config.initial_cash == 10000.0
    assert config.log_config.log_path is None
    assert config.log_path(Path("/srv/data/agent_data")) == Path("/srv/data/agent_data")


def test_a_missing_end_date_is_named():
    raw = valid()
    del raw["date_range"]["end_date"]
    message = error_of(raw)
    assert "date_range.end_date" in message
    assert "test.json" in message


def test_an_end_date_before_the_init_date_is_refused():
    raw = valid()
    raw["date_range"]["end_date"] = "2025-09-30"
    message = error_of(raw)
    assert "date_range" in message
    assert "end_date is before init_date" in message


def test_a_malformed_date_is_named():
    raw = valid()
    raw["date_range"]["init_date"] = "01/10/2025"
    assert "date_range.init_date" in error_of(raw)


@pytest.mark.parametrize("signature", ["../escape", "a/b", "", ".hidden", "with space"])
def test_a_signature_that_is_not_a_plain_folder_name_is_named(signature: str):
    raw = valid()
    raw["models"][0]["signature"] = signature
    assert "models.0.signature" in error_of(raw)


def test_a_config_without_an_enabled_model_is_refused_naming_models():
    raw = valid()
    raw["models"][0]["enabled"] = False
    message = error_of(raw)
    assert message.startswith("config test.json: models")
    assert "no model is enabled" in message


def test_two_enabled_models_with_one_signature_are_refused_naming_models():
    raw = valid()
    raw["models"][1]["enabled"] = True
    raw["models"][1]["signature"] = "builtin-momentum"
    message = error_of(raw)
    assert message.startswith("config test.json: models")
    assert "share a signature" in message


def test_a_disabled_model_may_repeat_a_signature():
    raw = valid()
    raw["models"][1]["signature"] = "builtin-momentum"
    assert len(parse_config(raw, "test.json").enabled_models) == 1


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("max_steps", 0, "agent_config.max_steps"),
        ("max_retries", -1, "agent_config.max_retries"),
        ("base_delay", -0.5, "agent_config.base_delay"),
        ("initial_cash", 0, "agent_config.initial_cash"),
        ("max_steps", "many", "agent_config.max_steps"),
    ],
)
def test_a_bad_agent_setting_is_named(key: str, value: object, named: str):
    raw = valid()
    raw["agent_config"][key] = value
    assert named in error_of(raw)


def test_a_model_without_a_signature_is_named():
    raw = valid()
    del raw["models"][1]["signature"]
    assert "models.1.signature" in error_of(raw)


@pytest.mark.parametrize("raw", [[], "config", 3, None])
def test_a_top_level_that_is_not_an_object_is_refused(raw: object):
    assert "expected a JSON object" in error_of(raw)


def test_a_file_that_is_not_json_is_refused_with_its_line(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text('{\n  "date_range": {,\n}\n', encoding="utf-8")
    with pytest.raises(UserError, match=r"not valid JSON \(line 2") as caught:
        load_config(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_missing_file_is_refused(tmp_path: Path):
    path = tmp_path / "absent.json"
    with pytest.raises(UserError, match="no such file") as caught:
        load_config(path)
    assert str(path) in str(caught.value)


def test_a_valid_file_loads(tmp_path: Path):
    path = tmp_path / "config.json"
    path.write_text(json.dumps(valid()), encoding="utf-8")
    assert load_config(path).enabled_models[0].signature == "builtin-momentum"


def test_the_environment_overrides_dates_and_max_steps():
    env = {"INIT_DATE": "2025-10-20", "END_DATE": "2025-10-24", "AGENT_MAX_STEP": "7"}
    config = parse_config(valid(), "test.json", config_overrides(env))
    assert config.date_range.init_date == date(2025, 10, 20)
    assert config.date_range.end_date == date(2025, 10, 24)
    assert config.agent_config.max_steps == 7


def test_an_override_fills_a_missing_key():
    raw = valid()
    del raw["date_range"]["end_date"]
    config = parse_config(raw, "test.json", config_overrides({"END_DATE": "2025-10-10"}))
    assert config.date_range.end_date == date(2025, 10, 10)


def test_a_bad_override_is_named_like_the_key_it_sets():
    assert "agent_config.max_steps" in error_of(valid(), {"AGENT_MAX_STEP": "lots"})


def test_blank_overrides_are_ignored():
    config = parse_config(
        valid(), "test.json", config_overrides({"INIT_DATE": "  ", "AGENT_MAX_STEP": ""})
    )
    assert config.date_range.init_date == date(2025, 10, 1)
    assert config.agent_config.max_steps == 12


def test_the_callers_dict_is_not_mutated_by_overrides():
    raw = valid()
    before = copy.deepcopy(raw)
    parse_config(
        raw, "test.json", config_overrides({"END_DATE": "2025-10-24", "AGENT_MAX_STEP": "3"})
    )
    assert raw == before


@pytest.mark.parametrize(
    ("place", "where"),
    [
        ((), "tax_bps"),
        (("agent_config",), "agent_config.tax_bps"),
        (("models", 0), "models.0.tax_bps"),
        (("log_config",), "log_config.tax_bps"),
        (("date_range",), "date_range.tax_bps"),
        (("trading",), "trading.tax_bps"),
    ],
)
def test_an_unknown_key_is_an_error_naming_it(place: tuple, where: str):
    # A cost this version does not charge must not be silently left out of the figures.
    raw = valid()
    raw["trading"] = {"commission_bps": 10}
    target: Any = raw
    for step in place:
        target = target[step]
    target["tax_bps"] = 10
    assert error_of(raw) == (
        f"config test.json: {where}: unknown key (this version does not read it; remove it)"
    )


def test_upstreams_keys_are_accepted_with_their_one_meaning_and_listed_as_ignored():
    raw = valid()
    config = parse_config(raw, "test.json")
    assert config.ignored == ["agent_type"]
    del raw["agent_type"]
    assert parse_config(raw, "test.json").ignored == []


def test_market_and_frequency_are_read_not_ignored():
    raw = valid()
    raw["market"], raw["frequency"] = "cn", "daily"
    config = parse_config(raw, "test.json")
    assert (config.market, config.frequency, config.ignored) == ("cn", "daily", ["agent_type"])


def test_a_market_that_is_not_a_string_is_an_error():
    raw = valid()
    raw["market"] = 1
    assert error_of(raw).startswith("config test.json: market: ")


@pytest.mark.parametrize(("key", "value"), [("agent_type", "BaseAgent_Hour")])
def test_an_upstream_key_asking_for_what_this_version_does_not_run_is_an_error(
    key: str, value: str
):
    raw = valid()
    raw[key] = value
    wanted = {"agent_type": "BaseAgent"}[key]
    assert error_of(raw) == (
        f"config test.json: {key}: {value!r} is not what this version runs: "
        f"it runs {key} {wanted!r} only"
    )


def test_a_key_written_into_the_config_is_refused_saying_where_keys_go():
    raw = valid()
    raw["models"][1]["openai_api_key"] = "sk-secret-value"
    message = error_of(raw)
    assert message == (
        "config test.json: models.1.openai_api_key: a key never goes in a config: put it in "
        "an environment variable and name that variable in api_key_env"
    )
    assert "sk-secret-value" not in message


@pytest.mark.parametrize("name", ["DEEPSEEK-KEY", "1KEY", "", "A B", "KEY\n"])
def test_api_key_env_must_name_an_environment_variable(name: str):
    raw = valid()
    raw["models"][1]["api_key_env"] = name
    assert "models.1.api_key_env: must be the name of an environment variable" in error_of(raw)


def test_api_key_env_is_read_into_the_model_entry():
    raw = valid()
    raw["models"][1]["api_key_env"] = "DEEPSEEK_API_KEY"
    assert parse_config(raw, "test.json").models[1].api_key_env == "DEEPSEEK_API_KEY"


@pytest.mark.parametrize("cash", [float("inf"), float("nan"), 1e13, 0, -5])
def test_initial_cash_must_be_finite_positive_and_sensible(cash: float):
    raw = valid()
    raw["agent_config"]["initial_cash"] = cash
    assert "agent_config.initial_cash" in error_of(raw)


def test_a_signature_longer_than_128_characters_is_refused():
    raw = valid()
    raw["models"][0]["signature"] = "s" * 129
    assert "models.0.signature: must be 1 to 128" in error_of(raw)


def test_trading_costs_are_zero_when_the_config_has_no_trading_section():
    config = parse_config(valid(), "test.json")
    assert config.trading.costs.free


def test_a_trading_section_gives_the_runs_costs():
    raw = valid()
    raw["trading"] = {"commission_bps": 10, "min_commission": 1, "slippage_bps": 2.5}
    costs = parse_config(raw, "test.json").trading.costs
    assert (costs.commission_bps, costs.min_commission, costs.slippage_bps) == (10, 1, 2.5)
    assert not costs.free


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("commission_bps", -1, "greater than or equal to 0"),
        ("slippage_bps", 1001, "less than or equal to 1000"),
        ("min_commission", "1", "valid number"),
        ("commission_bps", True, "valid number"),
    ],
)
def test_a_cost_out_of_bounds_is_an_error_naming_it(key: str, value: object, problem: str):
    raw = valid()
    raw["trading"] = {key: value}
    message = error_of(raw)
    assert message.startswith(f"config test.json: trading.{key}: "), message
    assert problem in message.lower(), message


def test_the_model_request_timeout_is_120_seconds_unless_set():
    assert parse_config(valid(), "test.json").agent_config.request_timeout == 120.0
    raw = valid()
    raw["agent_config"] = {"request_timeout": 600}
    assert parse_config(raw, "test.json").agent_config.request_timeout == 600.0
    raw["agent_config"] = {"request_timeout": 0}
    assert error_of(raw).startswith("config test.json: agent_config.request_timeout: ")
