"""The shared run state: one small JSON file at an absolute path, written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ai_trader.runtime import RunState, clear_state, read_state, write_state


def test_a_written_state_reads_back(tmp_path: Path):
    path = tmp_path / "deep" / "runtime.json"
    state = RunState("model-a", "2025-10-29", str(tmp_path / "logs"))
    write_state(path, state)
    assert read_state(path) == state


def test_the_file_holds_the_three_fields_as_json(tmp_path: Path):
    path = tmp_path / "runtime.json"
    write_state(path, RunState("model-a", "2025-10-29", "/logs"))
    assert json.loads(path.read_text()) == {
        "signature": "model-a",
        "today_date": "2025-10-29",
        "log_path": "/logs",
    }


def test_writing_leaves_no_temporary_file(tmp_path: Path):
    path = tmp_path / "runtime.json"
    write_state(path, RunState("a", "2025-10-28", "/logs"))
    write_state(path, RunState("a", "2025-10-29", "/logs"))
    assert [p.name for p in tmp_path.iterdir()] == ["runtime.json"]
    assert read_state(path).today_date == "2025-10-29"


def test_no_file_means_no_session(tmp_path: Path):
    assert read_state(tmp_path / "absent.json") is None


@pytest.mark.parametrize("text", ["", "{not json", "[]", '{"signature": "a"}', '"just a string"'])
def test_an_unusable_file_means_no_session(tmp_path: Path, text: str):
    path = tmp_path / "runtime.json"
    path.write_text(text, encoding="utf-8")
    assert read_state(path) is None


def test_clearing_removes_the_file_and_tolerates_its_absence(tmp_path: Path):
    path = tmp_path / "runtime.json"
    write_state(path, RunState("a", "2025-10-29", "/logs"))
    clear_state(path)
    assert not path.exists()
    clear_state(path)
    assert read_state(path) is None


def test_the_signature_folder_is_under_the_log_path():
    assert RunState("model-a", "2025-10-29", "/logs").signature_dir == Path("/logs/model-a")
