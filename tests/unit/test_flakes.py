"""The flakes program's own parts (tools/flakes): reports in, the failure table out."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support import load_file

# By its path: the module itself, not the package `python -m flakes` runs.
flakes = load_file("tools/flakes/flakes.py", "flakes_tool")
Outcome = flakes.Outcome

REPORT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
  <testcase classname="tests.unit.test_services" name="test_a_missing_host_is_refused"/>
  <testcase classname="tests.unit.test_services" name="test_b[x]">
    <failure message="boom">trace</failure></testcase>
  <testcase classname="tests.unit.test_flakes" name="test_c"><error message="fixture"/></testcase>
  <testcase classname="tests.unit.test_services" name="test_d"><skipped message="no"/></testcase>
  <testcase classname="" name="collection"/>
</testsuite></testsuites>
"""


def test_a_report_gives_each_test_case_its_node_id_and_verdict():
    assert flakes.junit_outcomes(REPORT) == [
        Outcome("tests/unit/test_services.py::test_a_missing_host_is_refused", False),
        Outcome("tests/unit/test_services.py::test_b[x]", True),
        Outcome("tests/unit/test_flakes.py::test_c", True),
        Outcome("collection", False),
    ]


def test_a_class_after_the_module_stays_in_the_node_id():
    node = flakes.test_id("tests.unit.test_flakes.TestSome", "test_x")
    assert node == "tests/unit/test_flakes.py::TestSome::test_x"


def test_a_classname_that_names_no_file_is_kept_as_it_came():
    assert flakes.test_id("elsewhere.module", "test_x") == "elsewhere::module::test_x"


def test_the_nox_summary_gives_each_sessions_verdict():
    output = "\n".join(
        [
            "nox > Ran multiple sessions:",
            "nox > * lint: success, took 20 seconds",
            "nox > * tests-3.13: failed, took 1 minute",
            "nox > * tests-3.12: skipped",
            "tests/unit/test_x.py::test_y PASSED",
        ]
    )
    assert flakes.session_outcomes(output) == [
        Outcome("session lint", False),
        Outcome("session tests-3.13", True),
        Outcome("session tests-3.12", False),
    ]


def test_the_tally_counts_runs_and_failures_per_test():
    runs = [
        [Outcome("a", False), Outcome("b", True)],
        [Outcome("a", True), Outcome("b", True), Outcome("c", False)],
        [Outcome("a", False)],
    ]
    assert flakes.tally(runs) == [
        flakes.Row("a", 3, 1),
        flakes.Row("b", 2, 2),
        flakes.Row("c", 1, 0),
    ]


def test_a_test_reported_twice_in_one_run_counts_once_and_failed_if_either_did():
    runs = [[Outcome("a", False), Outcome("a", True)], [Outcome("a", False), Outcome("a", False)]]
    assert flakes.tally(runs) == [flakes.Row("a", 2, 1)]


def test_the_table_lists_the_tests_that_failed_most_first():
    rows = [flakes.Row("never", 5, 0), flakes.Row("once", 5, 1), flakes.Row("twice", 4, 2)]
    assert flakes.render(rows, 5, 1).splitlines() == [
        "5 run(s), 1 busy loop(s): 3 tests and sessions seen",
        "test   runs  failures",
        "-----  ----  --------",
        "twice     4         2",
        "once      5         1",
        "2 failed at least once; 1 never failed",
    ]


def test_the_table_says_so_when_nothing_failed():
    text = flakes.render([flakes.Row("a", 2, 0)], 2, 0)
    assert text.splitlines()[-1] == "no test and no session failed in any run"


@pytest.mark.parametrize(
    ("target", "pytest_target"),
    [
        ("tests-3.13", False),
        ("integration", False),
        ("tests/unit", True),
        ("tests/unit/test_services.py::test_a_missing_host_is_refused", True),
        ("test_services.py", True),
    ],
)
def test_a_target_is_a_session_unless_it_names_a_path(target: str, pytest_target: bool):
    assert flakes.is_pytest_target(target) is pytest_target


def test_targets_split_into_sessions_and_pytest_targets_in_order():
    sessions, targets = flakes.split_targets(["faults", "tests/unit/a.py", "lint", "x::y"])
    assert (sessions, targets) == (["faults", "lint"], ["tests/unit/a.py", "x::y"])


def test_no_session_named_is_the_bare_nox():
    assert flakes.nox_command(["nox"], [], []) == ["nox"]


def test_named_sessions_and_extra_arguments_go_to_nox():
    command = flakes.nox_command(["py", "-m", "nox"], ["integration"], ["-k", "ctrl_c"])
    assert command == ["py", "-m", "nox", "-s", "integration", "--", "-k", "ctrl_c"]


def test_pytest_targets_run_with_their_report_and_no_cache(tmp_path: Path):
    command = flakes.pytest_command("py", ["tests/unit/a.py"], tmp_path / "r.xml", ["-x"])
    assert command == [
        "py", "-m", "pytest", "tests/unit/a.py", "-p", "no:cacheprovider",
        f"--junitxml={tmp_path / 'r.xml'}", "-x",
    ]  # fmt: skip


def test_the_report_option_is_added_to_pytest_options_already_set(tmp_path: Path):
    env = flakes.with_report({"PYTEST_ADDOPTS": "-x", "HOME": "/h"}, tmp_path)
    assert env == {"PYTEST_ADDOPTS": f"-x --junitxml={tmp_path}/$VIRTUAL_ENV.xml", "HOME": "/h"}


def test_nox_runs_outside_the_programs_own_venv():
    env = {"VIRTUAL_ENV": "/v", "PATH": os.pathsep.join(["/v/bin", "/usr/bin"]), "A": "1"}
    assert flakes.outside_venv(env, "/v") == {"PATH": "/usr/bin", "A": "1"}


def test_each_sessions_pytest_writes_its_own_report_where_the_tally_reads_it(tmp_path: Path):
    """The real pytest, started as a nox session starts it: the report lands under the run's
    folder, named after the session's venv, and the tally reads it back with that name."""
    test = tmp_path / "suite" / "test_one.py"
    test.parent.mkdir()
    test.write_text("def test_passes():\n    pass\n\ndef test_fails():\n    assert False\n")
    folder = tmp_path / "run-1"
    venv = tmp_path / "project" / ".nox" / "tests-3-13"
    env = flakes.with_report({**os.environ, "VIRTUAL_ENV": str(venv)}, folder)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         "--rootdir", str(tmp_path / "suite"), str(test)],
        env=env, capture_output=True, text=True, check=False, cwd=tmp_path / "suite",
    )  # fmt: skip
    assert done.returncode == 1, done.stdout
    found = sorted(flakes.reports(folder), key=lambda o: o.name)
    assert found == [
        Outcome("tests-3-13: test_one::test_fails", True),
        Outcome("tests-3-13: test_one::test_passes", False),
    ]


def test_busy_loops_run_until_the_block_ends():
    with flakes.busy_loops(2) as loops:
        assert [loop.poll() for loop in loops] == [None, None]  # still running
    assert all(loop.returncode is not None for loop in loops)  # ended and reaped
