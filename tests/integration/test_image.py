"""Facts about the built image: who it runs as, what it carries, how it starts.

What it must not leak (secrets by every route) is in test_secrets.py; that its health
check notices a frozen service is in test_health.py.
"""

from __future__ import annotations

import os

import engine
import pytest
from conftest import IMAGE

# Its module-scoped fixtures are built once: keep its tests on one worker.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("test_image")]


@pytest.fixture(scope="module")
def image() -> dict:
    return engine.image(IMAGE).attrs


def test_image_runs_as_a_non_root_numeric_user(image: dict) -> None:
    user = image["Config"]["User"]
    uid = user.split(":")[0]
    assert uid.isdigit(), user
    assert int(uid) != 0


def test_image_labels_carry_version_revision_and_source(image: dict) -> None:
    labels = image["Config"]["Labels"]
    assert labels["org.opencontainers.image.version"] == os.environ.get(
        "AI_TRADER_VERSION", "0.1.0"
    )
    revision = os.environ.get("AI_TRADER_REVISION")
    if revision and revision != "unknown":
        assert labels["org.opencontainers.image.revision"] == revision
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.created"] != "unknown"


def test_image_exposes_the_four_service_ports_and_the_dashboard(image: dict) -> None:
    exposed = set(image["Config"]["ExposedPorts"])
    assert exposed == {"8000/tcp", "8001/tcp", "8002/tcp", "8003/tcp", "8888/tcp"}


def test_image_entrypoint_is_exec_form_with_the_default_config(image: dict) -> None:
    assert image["Config"]["Entrypoint"] == ["/app/entrypoint.sh"]
    assert image["Config"]["Cmd"] == ["configs/default_config.json"]


def test_image_holds_no_env_file_git_folder_or_tests() -> None:
    code, out = engine.run_once(
        IMAGE,
        ["-c", "ls -A /app; test ! -e /app/.env && test ! -e /app/.git && test ! -e /app/tests"],
        entrypoint=["sh"],
    )
    assert code == 0, out


def test_processes_in_the_image_run_as_the_image_user() -> None:
    code, out = engine.run_once(IMAGE, ["-u"], entrypoint=["id"])
    assert code == 0, out
    assert out.strip() == "1000"


def test_the_package_is_installed_so_ai_trader_is_on_path_without_pythonpath() -> None:
    import ai_trader

    code, out = engine.run_once(
        IMAGE,
        ["-c", 'test -z "${PYTHONPATH-}" && test ! -e /app/src && ai-trader --version'],
        entrypoint=["sh"],
    )
    assert code == 0, out
    assert out.strip().endswith(f"ai-trader {ai_trader.__version__}")
