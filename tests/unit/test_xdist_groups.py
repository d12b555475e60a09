"""`--dist loadgroup` keeps an `xdist_group` on one worker: the container suite's module
stacks rely on it (one stack a module, not one a worker), and a pytest upgrade once made
it stop grouping without a word (pytest-xdist#1386)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

# The two ways the container suite marks a group: a module's pytestmark, and marks on the
# params of a module-scoped fixture.
MODULE_GROUP = """
import pytest

pytestmark = pytest.mark.xdist_group("whole-module")

@pytest.mark.parametrize("n", range(6))
def test_in_the_module_group(n):
    pass
"""
PARAM_GROUPS = """
import pytest

ROUTES = [pytest.param(r, marks=pytest.mark.xdist_group(f"route-{r}")) for r in "abc"]

@pytest.fixture(scope="module", params=ROUTES)
def route(request):
    return request.param

def test_reads_a_route(route):
    pass

def test_reads_it_again(route):
    pass
"""
# e.g. "[gw1] [ 40%] PASSED test_module_group.py::test_in_the_module_group[3]@whole-module"
_RESULT = re.compile(r"^\[(gw\d+)\] .*PASSED \S+@(\S+)\s*$")


def test_each_xdist_group_runs_on_one_worker(tmp_path: Path) -> None:
    (tmp_path / "test_module_group.py").write_text(MODULE_GROUP)
    (tmp_path / "test_param_groups.py").write_text(PARAM_GROUPS)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "3", "--dist", "loadgroup", "-v",
         "-p", "no:cacheprovider"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    workers: dict[str, set[str]] = {}
    for line in result.stdout.splitlines():
        found = _RESULT.match(line)
        if found:
            worker, group = found.groups()
            workers.setdefault(group, set()).add(worker)

    assert set(workers) == {"whole-module", "route-a", "route-b", "route-c"}, result.stdout
    assert all(len(ran_on) == 1 for ran_on in workers.values()), workers
