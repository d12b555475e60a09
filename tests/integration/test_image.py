"""Facts about the built image: who it runs as, what it carries, what it leaks."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
from conftest import IMAGE, ROOT

pytestmark = pytest.mark.container


def docker(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=check)


@pytest.fixture(scope="module")
def image() -> dict:
    return json.loads(docker("image", "inspect", IMAGE).stdout)[0]


def in_image(image_name: str, script: str) -> subprocess.CompletedProcess[str]:
    return docker("run", "--rm", "--entrypoint", "sh", image_name, "-c", script, check=False)


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


def test_image_has_a_healthcheck_that_asks_the_services(image: dict) -> None:
    check = image["Config"]["Healthcheck"]["Test"]
    assert "healthcheck" in check


def test_image_entrypoint_is_exec_form_with_the_default_config(image: dict) -> None:
    assert image["Config"]["Entrypoint"] == ["/app/entrypoint.sh"]
    assert image["Config"]["Cmd"] == ["configs/default_config.json"]


def test_image_holds_no_env_file_git_folder_or_tests() -> None:
    done = in_image(
        IMAGE, "ls -A /app; test ! -e /app/.env && test ! -e /app/.git && test ! -e /app/tests"
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_processes_in_the_image_run_as_the_image_user() -> None:
    done = docker("run", "--rm", "--entrypoint", "id", IMAGE, "-u")
    assert done.stdout.strip() == "1000"


@pytest.fixture
def image_built_with_a_secret_env(tmp_path: Path) -> tuple[str, str]:
    """The build context as a user has it, plus a .env holding a secret; built like `build` does."""
    secret = f"sk-integration-{uuid.uuid4().hex}"
    context = tmp_path / "context"
    tracked = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in [*tracked, *(f"wheelhouse/{p.name}" for p in (ROOT / "wheelhouse").glob("*.whl"))]:
        source = ROOT / name
        if source.is_file():
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, context / name)
    (context / ".env").write_text(f"OPENAI_API_KEY={secret}\nJINA_API_KEY={secret}\n")
    tag = f"ai-trader-secret-check:{uuid.uuid4().hex[:8]}"
    base = os.environ.get("AI_TRADER_BASE_IMAGE", "python:3.13.13-slim-trixie")
    done = docker(
        "build", "-q", "--build-arg", f"BASE_IMAGE={base}", "-t", tag, str(context), check=False
    )
    assert done.returncode == 0, done.stderr
    yield tag, secret
    docker("image", "rm", "-f", tag, check=False)


def test_a_secret_in_env_never_reaches_the_image(
    image_built_with_a_secret_env: tuple[str, str],
) -> None:
    tag, secret = image_built_with_a_secret_env
    history = docker("history", "--no-trunc", tag).stdout
    inspect = docker("image", "inspect", tag).stdout
    files = in_image(tag, f"grep -rl {secret} /app /opt /etc 2>/dev/null; test ! -e /app/.env")
    assert secret not in history
    assert secret not in inspect
    assert files.stdout.strip() == ""
    assert files.returncode == 0
