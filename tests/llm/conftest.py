"""Fixtures of the llm tests (`nox -s llm`): the offline sample, `ai-trader serve` over it,
and the real model server (llama-cpp-python serving SmolLM2-135M-Instruct).

The services start once for the session, as in the unit tests. The model server starts once
a module: the record/replay module stops its own in the middle of its test.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import SYMBOLS, ModelServer, model_server

from ai_trader.layout import price_file
from ai_trader.market.universe import NASDAQ_100
from unit.support import Services, cli_env, run_cli, running_services, service_env


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The offline sample made by the real CLI (`fetch` with no key, then `merge`), cut to
    SYMBOLS and the benchmark before the merge (``stack.SYMBOLS`` says why)."""
    folder = tmp_path_factory.mktemp("data")
    env = cli_env({"DATA_DIR": str(folder)})
    done = run_cli("fetch", env=env)
    assert done.returncode == 0, done.stderr
    for symbol in set(NASDAQ_100) - set(SYMBOLS):
        price_file(folder, symbol).unlink()
    done = run_cli("merge", env=env)
    assert done.returncode == 0, done.stderr
    return folder


@pytest.fixture(scope="session")
def services(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Iterator[Services]:
    """`ai-trader serve` over the offline sample, on ports it picks."""
    log = tmp_path_factory.mktemp("services") / "serve.log"
    with running_services(service_env(data_dir), log) as running:
        yield running


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServer]:
    """The model server, listing the model at /v1/models; stopped when the module ends."""
    with model_server(tmp_path_factory.mktemp("model") / "server.log") as server:
        yield server
