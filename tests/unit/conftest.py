"""Shared fixtures: the offline data set and the real `serve` subprocess.

The services are started once per session (`ai-trader serve` is a real child process, waited for
with `ai-trader wait-ready`) because importing the MCP SDK costs seconds on a small machine;
tests keep their state apart by trading under their own signature and log folder.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import Services, cli_env, run_cli, running_services, service_env

# --- data ------------------------------------------------------------------------------------


@dataclass
class OfflineData:
    """The offline sample made by the real CLI (`fetch` with no key, then `merge`)."""

    data_dir: Path
    fetch: subprocess.CompletedProcess[str]
    merge: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def offline_data(tmp_path_factory: pytest.TempPathFactory) -> OfflineData:
    data_dir = tmp_path_factory.mktemp("data")
    env = cli_env({"DATA_DIR": str(data_dir)})
    fetch = run_cli("fetch", env=env)
    assert fetch.returncode == 0, fetch.stderr
    merge = run_cli("merge", env=env)
    assert merge.returncode == 0, merge.stderr
    return OfflineData(data_dir, fetch, merge)


# --- services --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jina_standin():
    from standins import StandIns

    with StandIns() as standins:
        yield standins


@pytest.fixture(scope="session")
def services(
    tmp_path_factory: pytest.TempPathFactory, offline_data: OfflineData, jina_standin
) -> Iterator[Services]:
    """The four services over the offline sample, search answering from the Jina stand-in.

    One `serve` process for the whole session: the offline default runs against the same
    services (its built-in strategy never searches), so the no-key search check is made
    in-process instead of paying for a second start-up.
    """
    root = tmp_path_factory.mktemp("services")
    env = service_env(
        offline_data.data_dir,
        {
            "JINA_API_KEY": "test-jina-key",
            "AI_TRADER_ALLOWED_HOSTS": "trader.internal",
            "JINA_SEARCH_BASE_URL": jina_standin.jina_search_url,
            "JINA_READER_BASE_URL": jina_standin.jina_reader_url,
        },
    )
    with running_services(env, root / "serve.log") as running:
        yield running
