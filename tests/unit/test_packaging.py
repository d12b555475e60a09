"""The container files agree with each other and with the package (no drift between them)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from packaging.version import Version

import ai_trader

ROOT = Path(__file__).resolve().parents[2]
INTERPOLATED = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(?::?-([^}]*))?\}")


def env_example() -> dict[str, str]:
    values = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name] = value
    return values


def compose_defaults() -> dict[str, str]:
    return {m[0]: m[1] for m in INTERPOLATED.findall((ROOT / "docker-compose.yml").read_text())}


def test_every_variable_compose_reads_is_in_env_example() -> None:
    missing = sorted(set(compose_defaults()) - set(env_example()))
    assert not missing, f".env.example lacks {missing}"


def test_every_variable_in_env_example_has_a_comment_above_its_group() -> None:
    lines = (ROOT / ".env.example").read_text().splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith("#"):
            block = index
            while block > 0 and lines[block - 1] and not lines[block - 1].startswith("#"):
                block -= 1
            assert block > 0, line
            assert lines[block - 1].startswith("#"), f"{line!r} has no comment"


@pytest.mark.parametrize("name", sorted(set(compose_defaults()) & set(env_example())))
def test_env_example_values_match_the_compose_defaults(name: str) -> None:
    assert env_example()[name] == compose_defaults()[name]


def test_compose_and_env_example_carry_the_package_version() -> None:
    # `nox -s release` rewrites all three together; a hand edit to one must fail here.
    assert compose_defaults()["AI_TRADER_VERSION"] == ai_trader.__version__
    assert env_example()["AI_TRADER_VERSION"] == ai_trader.__version__


def test_the_package_version_is_pep_440_in_normal_form() -> None:
    # The release tag is "v" + this string, and the publish workflow compares the two.
    assert str(Version(ai_trader.__version__)) == ai_trader.__version__


def test_the_default_base_image_is_the_same_everywhere() -> None:
    dockerfile = re.search(r"^ARG BASE_IMAGE=(\S+)", (ROOT / "Dockerfile").read_text(), re.M)
    # tools/facts.py: what the nox build and the bench fall back from.
    facts = re.search(r'^DEFAULT_BASE = "([^"]+)"', (ROOT / "tools/facts.py").read_text(), re.M)
    assert dockerfile
    assert facts
    assert dockerfile.group(1) == facts.group(1) == compose_defaults()["BASE_IMAGE"]


def test_compose_has_no_obsolete_version_key_and_publishes_on_loopback() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    assert "version" not in compose
    for port in compose["services"]["ai-trader"]["ports"]:
        assert port.startswith("${AI_TRADER_BIND:-127.0.0.1}:"), port


def test_the_trading_service_does_not_restart_a_finished_run() -> None:
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["ai-trader"]
    assert service["restart"] == "${AI_TRADER_RESTART:-no}"
    assert env_example()["AI_TRADER_RESTART"] == "no"
