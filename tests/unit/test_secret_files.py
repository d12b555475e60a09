"""Keys from files (``settings.secret``): every key variable has a ``_FILE`` form, as the
official database images read Docker secrets; both forms at once, or a file that cannot
give a key, is one line naming the variable and the path, never the content."""

from __future__ import annotations

from pathlib import Path

import pytest

from ai_trader.errors import UserError
from ai_trader.settings import load_settings, secret
from unit.support import cli_env, run_cli

KEY = "sk-from-a-file-0123456789"


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "openai_api_key"
    path.write_text(KEY + "\n", encoding="utf-8")  # as `echo key > file` writes it
    return path


@pytest.mark.parametrize(
    ("variable", "field"),
    [
        ("OPENAI_API_KEY", "openai_api_key"),
        ("JINA_API_KEY", "jina_api_key"),
        ("ALPHAADVANTAGE_API_KEY", "alphavantage_api_key"),
        ("ALPHAVANTAGE_API_KEY", "alphavantage_api_key"),
    ],
)
def test_each_key_is_read_from_the_file_its_file_form_names(
    key_file: Path, variable: str, field: str
):
    settings = load_settings({f"{variable}_FILE": str(key_file)})
    assert getattr(settings, field) == KEY


def test_a_key_a_config_names_has_a_file_form_too(key_file: Path):
    settings = load_settings({"DEEPSEEK_API_KEY_FILE": str(key_file)})
    assert settings.variable("DEEPSEEK_API_KEY") == KEY


def test_both_forms_of_one_key_are_one_line(key_file: Path):
    with pytest.raises(UserError) as caught:
        secret(
            {"OPENAI_API_KEY": "sk-direct", "OPENAI_API_KEY_FILE": str(key_file)}, "OPENAI_API_KEY"
        )
    assert str(caught.value) == (
        "OPENAI_API_KEY and OPENAI_API_KEY_FILE are both set: give the key one way only"
    )


@pytest.mark.parametrize(
    ("make", "problem"),
    [
        (lambda p: None, "does not exist"),
        (lambda p: p.write_text("  \n"), "is empty"),
        (lambda p: p.write_bytes(b"\xff\xfe"), "is not UTF-8 text"),
        (lambda p: p.mkdir(), "cannot read"),
    ],
)
def test_a_file_that_gives_no_key_is_one_line_naming_the_variable_and_path(
    tmp_path: Path, make, problem: str
):
    path = tmp_path / "key"
    make(path)
    with pytest.raises(UserError) as caught:
        secret({"JINA_API_KEY_FILE": str(path)}, "JINA_API_KEY")
    assert str(caught.value).startswith("JINA_API_KEY_FILE: ")
    assert str(path) in str(caught.value)
    assert problem in str(caught.value)


def test_the_cli_stops_in_one_line_and_never_prints_the_key(key_file: Path):
    env = cli_env({"OPENAI_API_KEY": KEY, "OPENAI_API_KEY_FILE": str(key_file)})
    done = run_cli("wait-ready", "--timeout", "1", env=env, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "ai-trader wait-ready: error: OPENAI_API_KEY and OPENAI_API_KEY_FILE are both set: "
        "give the key one way only"
    ]
    assert KEY not in done.stderr + done.stdout
