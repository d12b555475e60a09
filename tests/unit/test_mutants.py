"""The deployment defects of `nox -s mutants` still apply to today's tree.

The session takes an hour, so it runs weekly; a defect whose snippet moved would only show
there. This applies every edit to a copy of the files it names, here, in a second.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mutants.__main__ import apply
from mutants.defects import DEFECTS, Edit

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "edit",
    [edit for defect in DEFECTS for edit in defect.edits],
    ids=[f"{defect.id}-{n}" for defect in DEFECTS for n in range(len(defect.edits))],
)
def test_every_defect_edit_still_finds_its_snippet_once(edit: Edit, tmp_path: Path) -> None:
    for source in ROOT.glob(edit.path):
        if source.is_file():
            copy = tmp_path / source.relative_to(ROOT)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, copy)
    changed = apply(edit, tmp_path)
    assert edit.new in (tmp_path / changed).read_text(encoding="utf-8")
