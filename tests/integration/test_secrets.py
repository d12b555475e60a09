"""No secret reaches the image, whatever the route.

A user's keys sit in `.env` files: at the root of the checkout, where compose reads them,
and anywhere else a user or a tool drops one (`configs/prod.env`, `src/.env`...). The image
is built the way a user builds it, `docker compose build`, from a throwaway copy of the
build context with a `.env` and `*.env` files holding a random secret in every folder the
context admits, and with every credential variable set in the root `.env`. The real tree
is never touched. The secret must then be absent from every file of the image, every
layer, the history, the labels and the config; and no ENV or ARG whose name looks like a
credential may carry a value.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import engine
import pytest
from conftest import CONTROLLED, IMAGE, ROOT

# Its module-scoped fixtures are built once: keep its tests on one worker.
pytestmark = [pytest.mark.container, pytest.mark.xdist_group("test_secrets")]

CREDENTIAL_VARIABLES = ("ALPHAADVANTAGE_API_KEY", "ALPHAVANTAGE_API_KEY", "OPENAI_API_KEY",
                        "JINA_API_KEY")  # fmt: skip
# Names that look like a credential: they may be declared, never given a value.
CREDENTIAL_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
# Every file name a secret is kept under in each folder: `.env`, `.env.*` and `*.env`.
SECRET_FILES = (".env", ".env.production", "credentials.env")
# The folders .dockerignore admits (`!configs/`, `!src/`, ...), and everything below them.
ADMITTED = ("configs", "src", "requirements", "wheelhouse", "debugtools")


@dataclass(frozen=True)
class SecretImage:
    tag: str
    secret: str  # every secret planted starts with this
    planted: dict[str, str]  # secret -> where it was planted (relative path)


def build_context_copy(target: Path) -> None:
    """The checkout's files as a user has them (tracked and untracked, not ignored), plus the
    wheelhouse and debug tools the build installs from here; never the developer's own .env."""
    listed = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.splitlines()  # fmt: skip
    wheels = [f"{folder}/{p.name}" for folder in ("wheelhouse", "debugtools")
              for p in (ROOT / folder).glob("*") if p.is_file()]  # fmt: skip
    for name in [*listed, *wheels]:
        source = ROOT / name
        if source.is_file() and not source.name.endswith(".env") and source.name != ".env":
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def plant_secrets(context: Path, secret: str) -> dict[str, str]:
    """A distinct secret in each secret file of every admitted folder; secret -> its path."""
    below = sorted(
        path
        for top in ADMITTED
        if (context / top).is_dir()
        for path in [context / top, *(context / top).rglob("*")]
        if path.is_dir()
    )
    folders = [context, *below]
    planted: dict[str, str] = {}
    for folder in folders:
        for name in SECRET_FILES:
            path = folder / name
            value = f"{secret}-{len(planted):03d}"
            lines = [f"{variable}={value}" for variable in CREDENTIAL_VARIABLES]
            if path.parent == context and name == ".env":
                # The root .env is also what compose interpolates the build from.
                lines.append(f"BASE_IMAGE={os.environ.get('AI_TRADER_BASE_IMAGE', '')}")
            path.write_text("\n".join(lines) + "\n")
            planted[value] = str(path.relative_to(context))
    return planted


@pytest.fixture(scope="module")
def secret_image(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecretImage]:
    context = tmp_path_factory.mktemp("secret-context")
    build_context_copy(context)
    secret = f"sk-it-{uuid.uuid4().hex}"
    planted = plant_secrets(context, secret)
    repository, tag = "ai-trader-secret-check", uuid.uuid4().hex[:10]
    compose = shlex.split(os.environ.get("AI_TRADER_COMPOSE") or "docker compose")
    # The shell's own values would override .env: keep the credentials out of it, and name
    # the throwaway image explicitly.
    env = {k: v for k, v in os.environ.items() if k not in CONTROLLED and k != "BASE_IMAGE"}
    env |= {"AI_TRADER_IMAGE": repository, "AI_TRADER_TAG": tag}
    done = subprocess.run(
        [*compose, "--project-directory", str(context), "-f", str(context / "docker-compose.yml"),
         "-p", f"aitrader-secrets-{tag}", "build", "ai-trader"],
        cwd=context, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    name = f"{repository}:{tag}"
    try:
        yield SecretImage(name, secret, planted)
    finally:
        engine.client().images.remove(name, force=True)


def leaked(found: set[bytes], image: SecretImage) -> list[str]:
    names = {value.encode(): path for value, path in image.planted.items()}
    return sorted(names.get(value, value.decode()) for value in found)


def secret_bytes(image: SecretImage) -> set[bytes]:
    return {value.encode() for value in image.planted}


def test_no_secret_file_from_any_folder_of_the_context_is_in_the_image_filesystem(
    secret_image: SecretImage,
) -> None:
    box = engine.client().containers.create(secret_image.tag)
    try:
        found = engine.stream_contains(box.export(), secret_bytes(secret_image))
    finally:
        box.remove(force=True)
    assert not found, f"secrets from {leaked(found, secret_image)} are in the image's files"


def test_no_secret_file_name_is_in_the_app(secret_image: SecretImage) -> None:
    code, out = engine.run_once(
        secret_image.tag,
        ["-c", "find /app /opt -name '.env' -o -name '.env.*' -o -name '*.env'"],
        entrypoint=["sh"],
    )
    assert code == 0, out
    assert out.strip() == ""


def test_no_secret_is_in_any_layer_or_the_image_config(secret_image: SecretImage) -> None:
    # `docker save` holds every layer (a file added and later deleted too), the config
    # and the history.
    found = engine.stream_contains(
        engine.image(secret_image.tag).save(named=False), secret_bytes(secret_image)
    )
    assert not found, f"secrets from {leaked(found, secret_image)} are in the saved image"


def test_no_secret_is_in_the_image_history(secret_image: SecretImage) -> None:
    history = json.dumps(engine.image(secret_image.tag).history())
    assert secret_image.secret not in history


def test_no_secret_is_in_the_image_labels_or_config(secret_image: SecretImage) -> None:
    image = engine.image(secret_image.tag)
    assert secret_image.secret not in json.dumps(image.labels)
    assert secret_image.secret not in json.dumps(image.attrs)


def credential_values(image_name: str) -> list[str]:
    """Every ENV and ARG in an image whose name looks like a credential and has a value."""
    image = engine.image(image_name)
    found = []
    for entry in image.attrs["Config"].get("Env") or []:
        name, _, value = entry.partition("=")
        if CREDENTIAL_NAME.search(name) and value:
            found.append(f"ENV {name}")
    for row in image.history():
        created_by = row.get("CreatedBy") or ""
        # A RUN step records the build args it saw: `|2 NAME=value NAME=value /bin/sh -c ...`.
        used = re.match(r"\|(\d+) (.*)", created_by)
        if used:
            words = used.group(2).split(" ")[: int(used.group(1))]
            found += [f"ARG {w}" for w in words if _credential_with_value(w)]
        # An ARG line with a default: `/bin/sh -c #(nop) ARG NAME=value` (classic builder).
        declared = re.search(r"\bARG (.*)", created_by)
        if declared:
            found += [f"ARG {w}" for w in declared.group(1).split() if _credential_with_value(w)]
    return found


def _credential_with_value(word: str) -> bool:
    name, eq, value = word.partition("=")
    return bool(eq and value and CREDENTIAL_NAME.search(name))


@pytest.mark.parametrize("which", ["the built image", "a build with keys in .env"])
def test_no_credential_env_or_arg_carries_a_value(
    which: str, request: pytest.FixtureRequest
) -> None:
    name = IMAGE if which == "the built image" else request.getfixturevalue("secret_image").tag
    assert credential_values(name) == []


def test_the_check_finds_a_credential_baked_into_an_image(tmp_path: Path) -> None:
    """The check above can fail: an image with a key in ENV and ARG is reported."""
    (tmp_path / "Dockerfile").write_text(
        f"FROM {IMAGE}\nARG JINA_API_KEY=sk-arg\nENV OPENAI_API_KEY=sk-env\nRUN true\n"
    )
    tag = f"ai-trader-secret-selfcheck:{uuid.uuid4().hex[:10]}"
    engine.client().images.build(path=str(tmp_path), tag=tag, rm=True)
    try:
        assert sorted(credential_values(tag)) == [
            "ARG JINA_API_KEY=sk-arg", "ARG JINA_API_KEY=sk-arg", "ENV OPENAI_API_KEY"
        ]  # fmt: skip
    finally:
        engine.client().images.remove(tag, force=True)
