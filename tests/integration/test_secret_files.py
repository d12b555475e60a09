"""Keys as Docker secrets (compose.secrets.yml laid over the suite's compose files): the key
works, and it is in no environment, no log, no manifest and no report."""

from __future__ import annotations

import json
import time
import uuid
from datetime import date, timedelta

import engine
import pytest
from conftest import ROOT, Stack, short_config

from ai_trader.layout import BookPaths, books_dir
from ai_trader.market.universe import ALL_SYMBOLS

pytestmark = pytest.mark.container

COMPOSE_OVER = ROOT / "compose.secrets.yml"
MODEL = {"name": "keyed", "basemodel": "gpt-stand-in", "signature": "keyed", "enabled": True}
SCRIPT = [
    {"tool_calls": [{"name": "buy", "arguments": {"symbol": "NVDA", "amount": 1}}]},
    {"content": "Bought. <FINISH_SIGNAL>"},
]
# Every process's environment in the container, as the user the run drops to reads it.
ENVIRONS = """
import json, os
found = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        command = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\\0", b" ").decode()
        found[command] = open(f"/proc/{pid}/environ", "rb").read().decode("utf-8", "replace")
    except OSError:
        pass
print(json.dumps(found))
"""


def test_keys_given_as_secrets_work_and_appear_in_no_environment_log_or_result(
    stack: Stack,
) -> None:
    keys = {name: f"sk-{name}-{uuid.uuid4().hex}" for name in ("openai", "jina", "alphavantage")}
    folder = stack.configs.parent / "secrets"
    folder.mkdir()
    paths = {}
    for name, key in keys.items():
        path = folder / f"{name}_api_key"
        path.write_text(key + "\n", encoding="utf-8")
        path.chmod(0o644)
        paths[f"{name.upper()}_API_KEY_PATH"] = str(path)
    # The model stand-in takes only the secret's key, and holds the first request so the run
    # is still there to be looked at. With an Alpha Vantage key (the secret's), prices come
    # from the Alpha Vantage stand-in: its recent days.
    stack.standins.set_scenario(
        {
            "symbols": list(ALL_SYMBOLS),  # Alpha Vantage's section is the top level
            "openai": {"keys": [keys["openai"]], "script": SCRIPT, "hold": 1},
        }
    )
    config = short_config(end_date="2099-12-31", models=[MODEL])
    config["date_range"]["init_date"] = (date.today() - timedelta(days=8)).isoformat()
    stack.up(AI_TRADER_CONFIG=stack.data_config("keyed.json", config), **paths)
    deadline = time.monotonic() + 180  # the start and one day's set-up; a bound, not a pace
    while stack.standins.stats()["openai"]["held"] == 0:
        assert engine.state(stack.container())["Status"] != "exited", stack.logs_text()
        assert time.monotonic() < deadline, stack.logs_text()
        time.sleep(0.1)

    inspected = json.dumps(stack.inspect())
    owner = stack.data.stat().st_uid or 1000  # the user the run drops to
    environs = json.loads(engine.exec_python(stack.container(), ENVIRONS, user=str(owner)))
    running = [command for command in environs if "ai_trader" in command or "ai-trader" in command]
    assert any(" run " in f" {c} " for c in running), environs.keys()  # the run was read
    stack.standins.release()
    assert stack.wait_exit() == 0, stack.logs_text()

    assert "Alpha Vantage: 102 fetched" in stack.logs_text()  # its key worked
    trades = [row for row in stack.positions("keyed") if "this_action" in row]
    assert trades  # the model's key worked: a buy each day
    assert trades[-1]["positions"]["NVDA"] == len(trades)
    made = BookPaths(books_dir(stack.data) / "keyed").manifest_file.read_text()
    done = stack.run("exec", "ai-trader", "report", "--format", "json", **paths)
    assert done.returncode == 0, done.stderr
    places = {
        "docker inspect": inspected,
        "the environments": json.dumps(environs),
        "the logs": stack.logs_text(),
        "run.json": made,
        "the report": done.stdout,
    }
    for key in keys.values():
        for where, text in places.items():
            assert key not in text, f"a key is in {where}"
    assert "/run/secrets/openai_api_key" in json.dumps(environs)  # what is there instead
