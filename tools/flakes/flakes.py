"""Run chosen nox sessions or pytest targets N times under load; count each test's failures.

``nox -s flakes -- --runs 5 --load 1 [TARGET ...]`` (or ``python -m flakes`` from tools/
with a Python that has the dev lock). A TARGET is a nox session name (``tests-3.13``,
``integration``) or a pytest path or node id (``tests/unit/test_services.py::test_x``);
with none, each run is the bare ``nox``. ``--load L`` keeps L cores busy the whole time
with plain busy loops, as other work on a developer's machine would. Every pytest run
writes a JUnit XML report under ``--out``; the table at the end names every test that
failed at least once, with how many runs saw it, and every nox session that failed. A
test that fails in any run is racy until shown otherwise: fix its race, never its timeout.

The exit status is 1 when anything failed in any run, else 0. The wall time of each run
is printed, never judged.
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# nox's closing summary: "nox > * tests-3.13: success, took 1 minute" (or failed, skipped).
SESSION_RESULT = re.compile(r"^nox > \* (\S+): (\w+)")
# Where a pytest run started by a nox session writes its report: pytest expands the
# variable in --junitxml, so each session's venv gives its own file.
SESSION_REPORT = "$VIRTUAL_ENV.xml"
PYTEST_REPORT = "pytest.xml"  # the report of the pytest targets, run directly
BUSY_LOOP = "while True: pass"


# --- what a run produced -----------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """One test (or one nox session) in one run: its name and whether it failed."""

    name: str
    failed: bool


def junit_outcomes(text: str) -> list[Outcome]:
    """Each test case of a JUnit XML report; a failure or an error counts as failed,
    a skip is left out (it neither passed nor failed)."""
    root = ElementTree.fromstring(text)  # noqa: S314 - our own pytest's report
    found = []
    for case in root.iter("testcase"):
        if case.find("skipped") is not None:
            continue
        classname, name = case.get("classname", ""), case.get("name", "")
        failed = case.find("failure") is not None or case.find("error") is not None
        found.append(Outcome(test_id(classname, name), failed))
    return found


def test_id(classname: str, name: str) -> str:
    """pytest's node id back from JUnit's classname (dotted module, then classes) and name.

    The module is the longest dotted prefix that is a file under ROOT; the rest are classes.
    """
    parts = classname.split(".") if classname else []
    for end in range(len(parts), 0, -1):
        module = Path(*parts[:end]).with_suffix(".py")
        if (ROOT / module).is_file():
            return "::".join([module.as_posix(), *parts[end:], name])
    return "::".join([*parts, name]) if parts else name


def session_outcomes(output: str) -> list[Outcome]:
    """The sessions of nox's closing summary; only success and skipped count as passed."""
    found = []
    for line in output.splitlines():
        match = SESSION_RESULT.match(line.strip())
        if match:
            name, result = match.groups()
            found.append(Outcome(f"session {name}", result not in ("success", "skipped")))
    return found


# --- the table ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    runs: int  # how many runs reported it
    failures: int


def tally(runs: Sequence[Iterable[Outcome]]) -> list[Row]:
    """One row per test or session: in how many runs it was seen and how many it failed.

    A name seen twice in one run (a test in two reports) counts once, failed if either failed.
    """
    seen: dict[str, int] = {}
    failed: dict[str, int] = {}
    for run in runs:
        here: dict[str, bool] = {}
        for outcome in run:
            here[outcome.name] = here.get(outcome.name, False) or outcome.failed
        for name, bad in here.items():
            seen[name] = seen.get(name, 0) + 1
            failed[name] = failed.get(name, 0) + int(bad)
    return [Row(name, seen[name], failed[name]) for name in sorted(seen)]


def render(rows: Sequence[Row], runs: int, load: int) -> str:
    """The failure table: the rows that failed at least once, and a line for the rest."""
    bad = sorted((r for r in rows if r.failures), key=lambda r: (-r.failures, r.name))
    lines = [f"{runs} run(s), {load} busy loop(s): {len(rows)} tests and sessions seen"]
    if not bad:
        lines.append("no test and no session failed in any run")
        return "\n".join(lines)
    width = max(len("test"), *(len(r.name) for r in bad))
    lines += [
        f"{'test':<{width}}  runs  failures",
        f"{'-' * width}  ----  --------",
        *(f"{r.name:<{width}}  {r.runs:>4}  {r.failures:>8}" for r in bad),
        f"{len(bad)} failed at least once; {len(rows) - len(bad)} never failed",
    ]
    return "\n".join(lines)


# --- the commands ------------------------------------------------------------------------


def is_pytest_target(target: str) -> bool:
    """A path or node id (it names a file or folder) rather than a nox session name."""
    return "/" in target or "::" in target or target.endswith(".py")


def split_targets(targets: Sequence[str]) -> tuple[list[str], list[str]]:
    """(nox sessions, pytest targets), each in the order given."""
    sessions = [t for t in targets if not is_pytest_target(t)]
    return sessions, [t for t in targets if is_pytest_target(t)]


def nox_command(nox: Sequence[str], sessions: Sequence[str], extra: Sequence[str]) -> list[str]:
    """The bare nox when no session is named; extra arguments go to the sessions' tools."""
    command = [*nox]
    if sessions:
        command += ["-s", *sessions]
    if extra:
        command += ["--", *extra]
    return command


def pytest_command(
    python: str, targets: Sequence[str], report: Path, extra: Sequence[str]
) -> list[str]:
    return [
        python, "-m", "pytest", *targets, "-p", "no:cacheprovider",
        f"--junitxml={report}", *extra,
    ]  # fmt: skip


def with_report(env: Mapping[str, str], folder: Path) -> dict[str, str]:
    """The environment for a nox run whose pytest sessions each write a report in ``folder``.

    The path is folder + the session's venv path: pytest expands the variable and normalises
    the doubled slash, so tests-3.11 and tests-3.13 do not overwrite each other.
    """
    option = f"--junitxml={folder}/{SESSION_REPORT}"
    earlier = env.get("PYTEST_ADDOPTS", "")
    return {**env, "PYTEST_ADDOPTS": f"{earlier} {option}".strip()}


def outside_venv(env: Mapping[str, str], venv: str | None) -> dict[str, str]:
    """The environment without this program's own venv, for a nox that makes its own."""
    result = {k: v for k, v in env.items() if k != "VIRTUAL_ENV"}
    if venv:
        bin_dir = str(Path(venv) / "bin")
        path = [p for p in env.get("PATH", "").split(os.pathsep) if p and p != bin_dir]
        result["PATH"] = os.pathsep.join(path)
    return result


# --- the campaign ------------------------------------------------------------------------


@contextmanager
def busy_loops(count: int) -> Iterator[list[subprocess.Popen[bytes]]]:
    """``count`` processes that each keep a core busy until the block ends."""
    loops = [subprocess.Popen([sys.executable, "-c", BUSY_LOOP]) for _ in range(count)]
    try:
        yield loops
    finally:
        for loop in loops:
            loop.send_signal(signal.SIGTERM)
        for loop in loops:
            loop.wait()


def reports(folder: Path) -> list[Outcome]:
    """Every report under ``folder``; a session's tests are named with the session's venv
    (tests-3-11, tests-3-13), so a test that fails on one Python only shows as such."""
    found: list[Outcome] = []
    for path in sorted(folder.rglob("*.xml")):
        try:
            outcomes = junit_outcomes(path.read_text(encoding="utf-8"))
        except (OSError, ElementTree.ParseError) as exc:
            found.append(Outcome(f"report {path.name} unreadable: {exc}", True))
            continue
        if path != folder / PYTEST_REPORT:
            outcomes = [Outcome(f"{path.stem}: {o.name}", o.failed) for o in outcomes]
        found += outcomes
    return found


def run_once(args: argparse.Namespace, number: int) -> tuple[list[Outcome], int, float]:
    """One run of the targets: the outcomes, the worst exit status, the wall seconds."""
    folder = args.out / f"run-{number}"
    shutil.rmtree(folder, ignore_errors=True)  # an earlier campaign's reports are not this run's
    folder.mkdir(parents=True)
    sessions, targets = split_targets(args.targets)
    extra = shlex.split(args.pytest_args)
    outcomes: list[Outcome] = []
    status = 0
    started = time.monotonic()
    if sessions or not targets:
        env = with_report(outside_venv(os.environ, os.environ.get("VIRTUAL_ENV")), folder)
        command = nox_command(shlex.split(args.nox), sessions, extra)
        with (folder / "nox.log").open("w", encoding="utf-8") as log:
            done = subprocess.run(
                command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        outcomes += session_outcomes((folder / "nox.log").read_text(encoding="utf-8"))
        status = max(status, done.returncode)
    if targets:
        command = pytest_command(sys.executable, targets, folder / PYTEST_REPORT, extra)
        with (folder / "pytest.log").open("w", encoding="utf-8") as log:
            done = subprocess.run(
                command, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, check=False
            )
        status = max(status, done.returncode)
    outcomes += reports(folder)
    return outcomes, status, time.monotonic() - started


def parse(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="flakes", description=__doc__.split("\n\n")[0])
    parser.add_argument("targets", nargs="*", help="nox sessions or pytest targets (none: nox)")
    parser.add_argument("--runs", type=int, default=5, help="how many times (default 5)")
    parser.add_argument("--load", type=int, default=1, help="busy loops meanwhile (default 1)")
    parser.add_argument(
        "--pytest-args", default="", help="more arguments for pytest, one string (-k EXPR ...)"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / ".nox" / "flakes-reports", help="where reports go"
    )
    parser.add_argument(
        "--nox", default=f"{shlex.quote(sys.executable)} -m nox", help="how to run nox"
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.load < 0:
        parser.error("--runs must be 1 or more and --load 0 or more")
    return args


def main(argv: Sequence[str]) -> int:
    args = parse(argv)
    args.out = args.out.resolve()
    runs: list[list[Outcome]] = []
    with busy_loops(args.load) as loops:
        pids = [loop.pid for loop in loops]
        print(f"flakes: {args.load} busy loop(s) {pids}; reports under {args.out}", flush=True)
        for number in range(1, args.runs + 1):
            outcomes, status, wall = run_once(args, number)
            failed = sum(o.failed for o in outcomes)
            print(
                f"flakes: run {number}/{args.runs}: exit {status}, {failed} failed, {wall:.0f} s",
                flush=True,
            )
            runs.append([*outcomes, Outcome("exit status", status != 0)])
    table = tally(runs)
    print(render(table, args.runs, args.load))
    return 1 if any(row.failures for row in table) else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
