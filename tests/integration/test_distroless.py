"""The distroless variant (docker/variants/Dockerfile.distroless) builds and serves.

It is not the default image (docs/DOCKER.md, "The base image, measured"): it has no shell,
so the one-command run does not exist in it. What it promises is every `ai-trader` command
started directly, `serve` by default, and the image's own health check. It is built here
from the repository on the base the session chose; its builder stage is the main image's,
so the build reuses the main build's cached layers and only gathers the root.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import docker
import engine
import pytest

from ai_trader.health import mcp_exchange
from ai_trader.settings import DEFAULT_PORTS

pytestmark = [pytest.mark.container, pytest.mark.xdist_group("test_distroless")]

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "docker" / "variants" / "Dockerfile.distroless"
CONTAINER_UID = 1000
SECOND = 1_000_000_000  # the engine's health-check times are in nanoseconds


@pytest.fixture(scope="module")
def distroless_image() -> Iterator[str]:
    tag = f"aitr-distroless-test:{uuid.uuid4().hex[:10]}"
    base = os.environ.get("AI_TRADER_BASE_IMAGE") or "python:3.13.13-slim-trixie"
    built = subprocess.run(
        ["docker", "build", "--force-rm", "--file", str(DOCKERFILE), "--build-arg",
         f"BASE_IMAGE={base}", "--tag", tag, str(ROOT)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-2000:]
    try:
        yield tag
    finally:
        engine.client().images.remove(tag, force=True)


@pytest.fixture
def prices(distroless_image: str, tmp_path: Path) -> Path:
    """A data folder with the offline sample and merged.jsonl, made by the variant itself."""
    data = tmp_path / "data"
    data.mkdir()
    os.chown(data, CONTAINER_UID, CONTAINER_UID)
    volumes = {str(data): {"bind": "/app/data", "mode": "rw"}}
    for command in ("fetch", "merge"):
        code, output = engine.run_once(distroless_image, [command], init=True, volumes=volumes)
        assert code == 0, output
    return data


@pytest.fixture
def serving(distroless_image: str, prices: Path) -> Iterator[docker.models.containers.Container]:
    """The variant's default command, its own health check run every second."""
    box = engine.client().containers.run(
        distroless_image,
        detach=True,
        init=True,
        volumes={str(prices): {"bind": "/app/data", "mode": "rw"}},
        ports={f"{port}/tcp": ("127.0.0.1", None) for port in DEFAULT_PORTS.values()},
        # Only the timing: the test command stays the image's own.
        healthcheck={"interval": SECOND, "timeout": 5 * SECOND, "retries": 3},
    )
    try:
        yield box
    finally:
        box.remove(force=True, v=True)


def test_the_variant_has_no_shell(distroless_image: str) -> None:
    with pytest.raises(docker.errors.APIError, match=r'"sh": executable file not found'):
        engine.run_once(distroless_image, ["-c", "true"], entrypoint=["sh"])


def test_the_variant_runs_as_the_images_numeric_user(distroless_image: str) -> None:
    code = "import os, pwd; print(os.getuid(), pwd.getpwuid(os.getuid())[0])"
    status, output = engine.run_once(distroless_image, ["-c", code], entrypoint=["python"])
    assert (status, output.strip()) == (0, "1000 trader")


def test_the_variants_default_command_serves_all_four_services(
    serving: docker.models.containers.Container,
) -> None:
    created = engine.parse_time(serving.attrs["Created"])
    engine.wait_event(serving.id, "health_status: healthy", created, timeout=120)
    for name, port in DEFAULT_PORTS.items():
        _, host_port = engine.published(serving, port)
        assert mcp_exchange(f"http://127.0.0.1:{host_port}/mcp", name, 5.0) is None, name
