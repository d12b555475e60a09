"""Run the deployment defects and mutmut: ``python -m mutants [--only ID]... [--list]
[--skip-defects] [--skip-mutmut] [--keep]`` (what ``nox -s mutants -- ...`` passes on).

Prints a caught/missed table and the mutation score; exits 1 when a defect was missed or
no longer applies, when the unbroken tree fails a selection (the control run), or when the
score is below the floor.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from mutants import score
from mutants.defects import DEFECTS, Defect, Edit

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / ".nox" / "mutants-work"  # git-ignored; the copies and their logs
LOGS = WORK / "logs"
SESSION_TIMEOUT = 45 * 60  # seconds for one nested session: a build and a compose stack


class NoLongerApplies(Exception):
    """An edit's snippet is not where the defect expects it."""


@dataclass
class Outcome:
    defect: Defect
    verdict: str  # caught, MISSED, NO LONGER APPLIES
    by: str  # the failing tests, or why the session failed
    seconds: float


def tracked_files() -> list[str]:
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout  # fmt: skip
    return [name for name in listed.split("\0") if name and (ROOT / name).is_file()]


def fresh_copy(target: Path) -> Path:
    """The checkout as a user has it (plus the wheels and .deb files the build installs from
    here)."""
    shutil.rmtree(target, ignore_errors=True)
    for name in tracked_files():
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target / name)
    for folder in ("wheelhouse", "debugtools"):  # what the build installs from here
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, target / folder, copy_function=_link_or_copy)
    return target


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def commit(tree: Path) -> None:
    """A git repository of its own, clean, as a user's checkout is (the build tags the
    revision, and the secrets test lists the files git knows)."""
    git = ["git", "-c", "user.name=mutants", "-c", "user.email=mutants@localhost",
           "-c", "commit.gpgsign=false"]  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-q", "-m", "mutant"]):
        subprocess.run([*git, *args], cwd=tree, check=True, capture_output=True)


def apply(edit: Edit, tree: Path) -> str:
    """Apply one edit; the file it changed. NoLongerApplies when the snippet is not found
    exactly once."""
    if any(c in edit.path for c in "*?["):
        candidates = sorted(p for p in tree.glob(edit.path) if p.is_file())
    else:
        candidates = [tree / edit.path] if (tree / edit.path).is_file() else []
    holding = [p for p in candidates if edit.old in p.read_text(encoding="utf-8")]
    if len(holding) != 1:
        where = ", ".join(str(p.relative_to(tree)) for p in holding) or "no file"
        raise NoLongerApplies(f"{edit.old!r} is in {where} (under {edit.path}), not one place")
    path = holding[0]
    text = path.read_text(encoding="utf-8")
    if text.count(edit.old) != 1:
        raise NoLongerApplies(f"{edit.old!r} occurs {text.count(edit.old)} times in {path.name}")
    path.write_text(text.replace(edit.old, edit.new), encoding="utf-8")
    return str(path.relative_to(tree))


def nox_session(
    tree: Path, session: str, select: Sequence[str], log: Path, image: str
) -> tuple[int, list[str], str]:
    """Run one nox session in a copy: exit code, failing tests (junit), last error line."""
    junit = log.with_suffix(".xml")
    junit.unlink(missing_ok=True)
    posargs = [] if session == "lint" else [*select, f"--junitxml={junit}"]
    command = [sys.executable, "-m", "nox", "-f", str(tree / "noxfile.py"),
               "--envdir", str(WORK / "envs"), "-s", session, "--", *posargs]  # fmt: skip
    env = {**os.environ, "AI_TRADER_IMAGE": image}
    env.pop("AI_TRADER_IT_PROJECT", None)
    with log.open("w") as out:
        try:
            code = subprocess.run(command, cwd=tree, env=env, stdout=out, stderr=subprocess.STDOUT,
                                  timeout=SESSION_TIMEOUT).returncode  # fmt: skip
        except subprocess.TimeoutExpired:
            code = -1
    text = log.read_text(errors="replace")
    errors = [
        line
        for line in text.splitlines()
        if re.search(r"nox > (Command .* failed|Session .* (failed|aborted))", line)
    ]
    return code, failing_tests(junit), (errors[0].removeprefix("nox > ") if errors else "")


def failing_tests(junit: Path) -> list[str]:
    if not junit.is_file():
        return []
    names = []
    # pytest's own report of a run in this tree, not outside input.
    for case in ET.parse(junit).getroot().iter("testcase"):  # noqa: S314
        if case.find("failure") is not None or case.find("error") is not None:
            names.append(f"{case.get('classname', '').rpartition('.')[2]}::{case.get('name')}")
    return names


def union(defects: Sequence[Defect]) -> dict[str, list[str]]:
    """Per session, one selection covering every defect's (the control run)."""
    by_session: dict[str, list[str]] = {}
    for defect in defects:
        if defect.session == "lint":
            by_session.setdefault("lint", [])
            continue
        # Selections are `-k EXPRESSION`, so they combine with `or`.
        assert defect.select[:1] == ("-k",), defect.id
        assert len(defect.select) == 2, defect.id
        by_session.setdefault(defect.session, []).append(f"({defect.select[1]})")
    return {s: (["-k", " or ".join(dict.fromkeys(e))] if e else []) for s, e in by_session.items()}


def control(defects: Sequence[Defect], image: str) -> list[str]:
    """The unbroken tree must pass every selection; the problems when it does not."""
    tree = fresh_copy(WORK / "control" / "tree")
    commit(tree)
    problems = []
    for session, select in union(defects).items():
        log = LOGS / f"control-{session}.log"
        print(f"control: nox -s {session} on the unbroken tree ...", flush=True)
        code, failed, error = nox_session(tree, session, select, log, image)
        if code != 0:
            problems.append(f"control {session}: {error or 'failed'} {failed} (log: {log})")
    return problems


def try_defect(defect: Defect, image: str) -> Outcome:
    began = time.monotonic()
    folder = WORK / defect.id
    tree = fresh_copy(folder / "tree")
    try:
        for edit in defect.edits:
            apply(edit, tree)
    except NoLongerApplies as exc:
        return Outcome(defect, "NO LONGER APPLIES", str(exc), time.monotonic() - began)
    commit(tree)
    log = LOGS / f"{defect.id}.log"
    code, failed, error = nox_session(tree, defect.session, defect.select, log, image)
    if code == 0:
        verdict, by = "MISSED", f"nox -s {defect.session} passed (log: {log})"
    elif failed:
        verdict, by = "caught", ", ".join(failed)
    else:
        verdict, by = "caught", error or f"nox exited {code}"
    return Outcome(defect, verdict, by, time.monotonic() - began)


def table(outcomes: Sequence[Outcome]) -> str:
    rows = [("defect", "session", "verdict", "s", "caught by")]
    rows += [(o.defect.id, o.defect.session, o.verdict, f"{o.seconds:.0f}", o.by)
             for o in outcomes]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = []
    for number, row in enumerate(rows):
        lines.append(
            "  ".join([*(c.ljust(w) for c, w in zip(row[:4], widths, strict=True)), row[4]])
        )
        if number == 0:
            lines.append("  ".join("-" * w for w in [*widths, 9]))
    return "\n".join(lines)


def remove_images(image: str) -> None:
    listed = subprocess.run(["docker", "image", "ls", "--format", "{{.Repository}}:{{.Tag}}",
                             image], capture_output=True, text=True).stdout.split()  # fmt: skip
    if listed:
        subprocess.run(["docker", "image", "rm", *listed], capture_output=True)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mutants", description=__doc__.split("\n")[0])
    parser.add_argument("--only", action="append", default=[], metavar="ID",
                        help="run only this defect (repeatable)")  # fmt: skip
    parser.add_argument("--list", action="store_true", help="list the defects and exit")
    parser.add_argument("--skip-defects", action="store_true", help="only run mutmut")
    parser.add_argument("--skip-mutmut", action="store_true", help="only run the defects")
    parser.add_argument("--image", default=os.environ.get("AI_TRADER_IMAGE", "ai-trader") +
                        "-mutant", help="the image repository the copies build (default: "
                        "AI_TRADER_IMAGE-mutant)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help=f"keep the copies under {WORK}")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - {d.id for d in DEFECTS})
    if unknown:
        parser.error(f"no defect named {', '.join(unknown)} (see --list)")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.list:
        for defect in DEFECTS:
            print(f"{defect.id:40} {defect.session:12} {defect.what}")
        return 0
    chosen = [d for d in DEFECTS if not args.only or d.id in args.only]
    shutil.rmtree(WORK / "control", ignore_errors=True)
    shutil.rmtree(LOGS, ignore_errors=True)
    LOGS.mkdir(parents=True)
    failed: list[str] = []
    try:
        if not args.skip_defects:
            failed += control(chosen, args.image)
            outcomes = []
            for number, defect in enumerate(chosen, start=1):
                print(f"[{number}/{len(chosen)}] {defect.id}: {defect.what} ...", flush=True)
                outcome = try_defect(defect, args.image)
                print(f"    {outcome.verdict} ({outcome.seconds:.0f} s): {outcome.by}", flush=True)
                outcomes.append(outcome)
                if not args.keep:
                    shutil.rmtree(WORK / defect.id, ignore_errors=True)
            print()
            print(table(outcomes))
            caught = sum(o.verdict == "caught" for o in outcomes)
            print(f"\ndefects caught: {caught} of {len(outcomes)}")
            failed += [f"{o.defect.id}: {o.verdict}" for o in outcomes if o.verdict != "caught"]
        if not args.skip_mutmut:
            tree = fresh_copy(WORK / "mutmut")
            log = LOGS / "mutmut.log"
            print(f"\nmutmut over {', '.join(score.CORE_MODULES)} (log: {log}) ...", flush=True)
            result = score.run(tree, log)
            print(f"mutation score: {result.ratio:.1%} ({result.killed} killed of {result.judged}"
                  f" judged; {result.survived} survived or uncovered, {result.skipped} skipped; "
                  f"floor {score.FLOOR:.1%})")  # fmt: skip
            if result.ratio < score.FLOOR:
                failed.append(f"mutation score {result.ratio:.1%} is below the floor")
    finally:
        remove_images(args.image)
    for problem in failed:
        print(f"mutants: {problem}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
