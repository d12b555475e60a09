"""Settings from the environment, with the defaults DESIGN.md gives."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_trader.errors import UserError
from ai_trader.settings import PORT_VARIABLES, load_settings, services_named


def test_the_service_ports_default_to_8000_to_8003():
    settings = load_settings({})
    assert settings.ports == {"math": 8000, "search": 8001, "trade": 8002, "prices": 8003}


def test_the_port_variables_are_the_originals():
    assert PORT_VARIABLES == {
        "math": "MATH_HTTP_PORT",
        "search": "SEARCH_HTTP_PORT",
        "trade": "TRADE_HTTP_PORT",
        "prices": "GETPRICE_HTTP_PORT",
    }


def test_other_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.data_dir == tmp_path.resolve() / "data"
    assert settings.alphavantage_api_key is None
    assert settings.alphavantage_base_url == "https://www.alphavantage.co/query"
    assert settings.alphavantage_min_interval == 12.0
    assert settings.jina_api_key is None
    assert settings.jina_search_base_url == "https://s.jina.ai"
    assert settings.jina_reader_base_url == "https://r.jina.ai"
    assert settings.openai_api_key is None
    assert settings.openai_api_base is None
    assert settings.service_host == "127.0.0.1"
    assert settings.ready_timeout == 30.0


def test_ports_come_from_their_variables():
    env = {
        "MATH_HTTP_PORT": "9100",
        "SEARCH_HTTP_PORT": "9101",
        "TRADE_HTTP_PORT": "9102",
        "GETPRICE_HTTP_PORT": "9103",
    }
    assert load_settings(env).ports == {
        "math": 9100,
        "search": 9101,
        "trade": 9102,
        "prices": 9103,
    }


def test_the_service_url_is_the_mcp_endpoint_on_the_client_host():
    settings = load_settings({"SERVICE_CLIENT_HOST": "trader", "TRADE_HTTP_PORT": "9002"})
    assert settings.service_url("trade") == "http://trader:9002/mcp"


def test_the_original_alpha_vantage_key_spelling_is_read():
    assert load_settings({"ALPHAADVANTAGE_API_KEY": "orig"}).alphavantage_api_key == "orig"


def test_the_usual_alpha_vantage_key_spelling_is_read():
    assert load_settings({"ALPHAVANTAGE_API_KEY": "usual"}).alphavantage_api_key == "usual"


def test_a_blank_key_counts_as_unset():
    env = {"ALPHAADVANTAGE_API_KEY": "  ", "ALPHAVANTAGE_API_KEY": "", "OPENAI_API_KEY": " "}
    settings = load_settings(env)
    assert settings.alphavantage_api_key is None
    assert settings.openai_api_key is None


@pytest.mark.parametrize("value", ["abc", "65536", "-1", "80.5"])
@pytest.mark.parametrize("variable", sorted(PORT_VARIABLES.values()))
def test_a_bad_port_names_its_variable(variable: str, value: str):
    with pytest.raises(UserError, match=variable) as caught:
        load_settings({variable: value})
    assert repr(value) in str(caught.value)
    assert "or 0 for any free port (serve only)" in str(caught.value)


@pytest.mark.parametrize("variable", sorted(PORT_VARIABLES.values()))
def test_a_service_port_of_0_is_read_and_refused_to_clients(variable: str):
    """0 asks serve for any free port: the settings keep it, and a client's URL for that
    service is a one-line error naming the variable (there is nothing to connect to)."""
    settings = load_settings({variable: "0"})
    (name,) = [n for n, v in PORT_VARIABLES.items() if v == variable]
    assert settings.ports[name] == 0
    with pytest.raises(UserError) as caught:
        settings.service_url(name)
    assert str(caught.value) == (
        f"{variable} is 0 (any free port, for serve only): give clients the port serve reports"
    )
    with pytest.raises(UserError, match=variable):
        settings.service_urls()
    others = [n for n in PORT_VARIABLES if n != name]
    assert all(settings.service_url(n).endswith(f":{settings.ports[n]}/mcp") for n in others)


@pytest.mark.parametrize("variable", ["ALPHAVANTAGE_MIN_INTERVAL", "READY_TIMEOUT"])
@pytest.mark.parametrize("value", ["soon", "-3"])
def test_a_bad_number_names_its_variable(variable: str, value: str):
    with pytest.raises(UserError, match=variable):
        load_settings({variable: value})


def test_only_loopback_names_are_allowed_by_default():
    assert load_settings({}).allowed_hosts == {"127.0.0.1", "localhost", "::1"}


def test_allowed_hosts_add_names_from_their_setting():
    settings = load_settings({"AI_TRADER_ALLOWED_HOSTS": "Trader, ai-trader.internal [::2]"})
    assert settings.allowed_hosts == {
        "127.0.0.1", "localhost", "::1", "trader", "ai-trader.internal", "::2",
    }  # fmt: skip


@pytest.mark.parametrize("value", ["http://trader", "trader:8002", "bad_name", "*"])
def test_an_allowed_host_that_is_not_a_name_is_refused(value: str):
    with pytest.raises(UserError, match=r"^AI_TRADER_ALLOWED_HOSTS: .* is not a host name"):
        load_settings({"AI_TRADER_ALLOWED_HOSTS": value})


def test_agent_jobs_default_to_four_and_come_from_their_variable():
    assert load_settings({}).agent_jobs == 4
    assert load_settings({"AGENT_JOBS": "12"}).agent_jobs == 12


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "65"])
def test_bad_agent_jobs_are_refused(value: str):
    with pytest.raises(UserError, match="AGENT_JOBS must be a whole number from 1 to 64"):
        load_settings({"AGENT_JOBS": value})


def test_agent_data_lives_in_the_data_dir(tmp_path: Path):
    assert load_settings({"DATA_DIR": str(tmp_path)}).agent_data_dir == tmp_path / "agent_data"


def test_the_data_dir_is_made_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(tmp_path)
    assert load_settings({"DATA_DIR": "prices"}).data_dir == tmp_path.resolve() / "prices"


def test_settings_are_read_from_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("MATH_HTTP_PORT", "9200")
    assert load_settings().ports["math"] == 9200


def test_compose_publishes_each_service_on_the_host_port_variable_of_the_table():
    from ai_trader.settings import DASHBOARD_PUBLISH_VARIABLE, SERVICES

    compose = (Path(__file__).resolve().parents[2] / "docker-compose.yml").read_text()
    for spec in SERVICES:
        published = f"${{{spec.publish_variable}-{spec.default_port}}}:{spec.default_port}"
        assert published in compose, spec
        assert spec.port_variable not in compose  # the listen port means one thing only
    assert f"${{{DASHBOARD_PUBLISH_VARIABLE}-8888}}:8888" in compose


def test_each_service_can_be_reached_at_a_host_of_its_own():
    env = {"SERVICE_CLIENT_HOST": "all", "TRADE_HTTP_HOST": "trade", "GETPRICE_HTTP_HOST": "px"}
    urls = load_settings(env).service_urls()
    assert urls == {
        "math": "http://all:8000/mcp",
        "search": "http://all:8001/mcp",
        "trade": "http://trade:8002/mcp",
        "prices": "http://px:8003/mcp",
    }


def test_only_names_services_in_the_tables_order():
    assert services_named(" prices,math ") == ("math", "prices")


@pytest.mark.parametrize("text", ["bogus", "trade,bogus", "", " , "])
def test_only_refuses_what_names_no_service(text):
    with pytest.raises(ValueError, match="give one or more of math, search, trade, prices"):
        services_named(text)
