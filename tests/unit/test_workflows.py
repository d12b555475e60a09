"""The GitHub workflows against the noxfile: no drift, and the hardening they promise.

CI must call the nox sessions a developer calls. Every `nox -s NAME` in a workflow's `run:`
steps is read (matrix expressions expanded) and compared with what `nox -l --json` lists for
the repository's noxfile, so renaming or removing a session fails here, naming the step,
rather than on GitHub. The other tests hold the workflows to their security settings:
no default token permissions, third-party actions pinned to a commit, and checkouts that do
not leave the token behind in .git/config. The last ones hold the publish workflow to the
release scheme: it runs for the tags `nox -s release` pushes, and its smoke test fails an
image whose `ai_trader.__version__` is not the tag's version.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import product
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML, from the test dependency group; a missing one must fail, not skip

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOW_DIR = REPO_ROOT / ".github" / "workflows"
WORKFLOW_FILES = ("ci.yml", "docker-release.yml", "llm.yml", "multiarch.yml", "mutants.yml")

_EXPRESSION = re.compile(r"\$\{\{\s*(.*?)\s*\}\}")
_MATRIX_REF = re.compile(r"matrix\.([A-Za-z_][A-Za-z0-9_-]*)")
_PLACEHOLDER = re.compile(r"@@EXPR(\d+)@@")
_SESSION_FLAGS = frozenset({"-s", "-e", "--session", "--sessions"})
_SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&", "(", ")", ";;"})
_FULL_SHA = re.compile(r"[0-9a-f]{40}")


@dataclass(frozen=True)
class SessionRef:
    """One nox session named in a workflow, and where."""

    session: str
    where: str


# -------------------------------------------------------------------- reading workflows


def load_workflow(text: str) -> dict[str, Any]:
    """Parse a workflow. (YAML 1.1 reads the `on:` key as True; nothing here needs it.)"""
    data = yaml.safe_load(text)
    assert isinstance(data, dict), "a workflow is a mapping"
    return data


def matrix_values(job: Mapping[str, Any]) -> dict[str, list[str]]:
    """Every value each matrix variable of a job takes, `include:` entries counted."""
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    if not isinstance(matrix, Mapping):  # e.g. a fromJSON(...) expression
        return {}
    values: dict[str, list[str]] = {}
    for key, value in matrix.items():
        if key in {"include", "exclude"} or not isinstance(value, list):
            continue
        values[key] = [str(v) for v in value]
    for extra in matrix.get("include") or []:
        for key, value in extra.items():
            if str(value) not in values.setdefault(key, []):
                values[key].append(str(value))
    return values


def _expand(word: str, expressions: list[str], matrix: Mapping[str, list[str]]) -> set[str]:
    """Expand the expression placeholders in one word over the matrix values.

    An expression that is not a plain `matrix.NAME` of this job is kept as `${{ ... }}`,
    so it can never match a session and is reported.
    """
    indices = sorted({int(i) for i in _PLACEHOLDER.findall(word)})
    choices: list[list[str]] = []
    for index in indices:
        ref = _MATRIX_REF.fullmatch(expressions[index])
        if ref and ref.group(1) in matrix:
            choices.append(matrix[ref.group(1)])
        else:
            choices.append([f"${{{{ {expressions[index]} }}}}"])
    results = set()
    for combination in product(*choices):
        chosen = dict(zip(indices, combination, strict=True))
        results.add(_PLACEHOLDER.sub(lambda m, c=chosen: c[int(m.group(1))], word))
    return results


def _words(line: str) -> list[str]:
    """Split one shell line into words and operators (`&&`, `;`, ...), dropping a comment."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        return list(lexer)
    except ValueError:  # a quote that closes on a later line: fall back to plain words
        return line.split()


def _is_nox(word: str) -> bool:
    """`nox`, a path to it, or the module in `python -m nox`."""
    return word == "nox" or word.endswith("/nox")


def sessions_in_script(script: str, matrix: Mapping[str, list[str]]) -> set[str]:
    """The nox sessions a shell script selects with -s/-e/--session(s), matrix expanded."""
    expressions: list[str] = []

    def hide(match: re.Match[str]) -> str:
        expressions.append(match.group(1))
        return f"@@EXPR{len(expressions) - 1}@@"

    text = _EXPRESSION.sub(hide, script.replace("\\\n", " "))
    sessions: set[str] = set()
    for line in text.splitlines():
        words = _words(line)
        for start in (i for i, word in enumerate(words) if _is_nox(word)):
            selecting = False
            for word in words[start + 1 :]:
                if word in _SHELL_OPERATORS or word == "--":
                    break
                flag, eq, value = word.partition("=")
                if flag in _SESSION_FLAGS:
                    selecting = not eq
                    if eq:
                        sessions |= _expand(value, expressions, matrix)
                elif word.startswith("-"):
                    selecting = False
                elif selecting:
                    sessions |= _expand(word, expressions, matrix)
    return sessions


def session_refs(workflow: Mapping[str, Any]) -> list[SessionRef]:
    """Every nox session named in a `run:` step of a parsed workflow."""
    refs: list[SessionRef] = []
    for job_id, job in (workflow.get("jobs") or {}).items():
        matrix = matrix_values(job)
        for number, step in enumerate(job.get("steps") or [], start=1):
            script = step.get("run")
            if not isinstance(script, str):
                continue
            where = f"job {job_id!r}, step {step.get('name') or number}"
            refs.extend(SessionRef(s, where) for s in sorted(sessions_in_script(script, matrix)))
    return refs


def unknown_sessions(refs: list[SessionRef], known: set[str]) -> list[str]:
    """Describe each reference to a session that nox does not list."""
    return [
        f"{ref.where}: no nox session {ref.session!r}" for ref in refs if ref.session not in known
    ]


def steps(workflow: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for job_id, job in (workflow.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_id, step


def uses_refs(workflow: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(job id, `uses:` value) for every step and every reusable-workflow job."""
    for job_id, job in (workflow.get("jobs") or {}).items():
        if "uses" in job:
            yield job_id, job["uses"]
    for job_id, step in steps(workflow):
        if "uses" in step:
            yield job_id, step["uses"]


def is_pinned(uses: str) -> bool:
    """Local actions and docker:// images aside, `uses:` must name a full commit SHA."""
    if uses.startswith(("./", "docker://")):
        return True
    _, at, ref = uses.partition("@")
    return bool(at) and _FULL_SHA.fullmatch(ref) is not None


# ---------------------------------------------------------------------------- nox side


def _nox_list(*extra: str) -> list[dict[str, Any]]:
    proc = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json", *extra],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, f"`nox -l --json` failed:\n{proc.stderr}"
    return json.loads(proc.stdout)


def known_session_names(listing: list[dict[str, Any]]) -> set[str]:
    """Names nox accepts after -s: each session (`tests-3.12`) and its base name (`tests`)."""
    return {entry["session"] for entry in listing} | {entry["name"] for entry in listing}


@cache
def all_sessions() -> frozenset[str]:
    # `nox -l --json` alone lists only the default selection; `-k True` selects every session.
    return frozenset(known_session_names(_nox_list("-k", "True")))


@cache
def default_sessions() -> tuple[tuple[str, str], ...]:
    """(session, base name) for each session the bare `nox` runs."""
    return tuple((entry["session"], entry["name"]) for entry in _nox_list())


@cache
def workflow(name: str) -> dict[str, Any]:
    return load_workflow((WORKFLOW_DIR / name).read_text())


# ------------------------------------------------------------------------------- tests


@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_every_nox_session_a_workflow_names_exists(name: str) -> None:
    problems = unknown_sessions(session_refs(workflow(name)), set(all_sessions()))

    assert not problems, f"{name} names sessions the noxfile does not define:\n" + "\n".join(
        problems
    )


def test_ci_runs_every_session_the_bare_nox_runs() -> None:
    named = sorted({ref.session for ref in session_refs(workflow("ci.yml"))})
    # What CI runs includes what its sessions require (integration requires build):
    # `nox -l --json -s A B` lists exactly that closure.
    in_ci = known_session_names(_nox_list("-s", *named))

    missing = [
        session
        for session, base in default_sessions()
        if session not in in_ci and base not in in_ci
    ]

    assert not missing, f"the bare `nox` runs {missing} but ci.yml does not"


def test_the_coverage_job_sets_up_the_python_whose_run_is_measured() -> None:
    # nox fails a session whose Python is missing, so a drift here fails CI's coverage job.
    wanted = {entry["python"] for entry in _nox_list("-s", "coverage") if entry["python"]}
    given: set[str] = set()
    for step in workflow("ci.yml")["jobs"]["coverage"]["steps"]:
        if str(step.get("uses", "")).startswith("actions/setup-python@"):
            given |= set(str(step["with"]["python-version"]).split())

    assert wanted, "nox lists no Python for the coverage session"
    assert wanted <= given, f"the coverage job sets up {sorted(given)}, nox needs {sorted(wanted)}"


def test_drift_check_reports_a_session_that_does_not_exist() -> None:
    text = """
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - run: nox -s lint
      - name: Typo
        run: nox -s no-such-session
"""
    problems = unknown_sessions(session_refs(load_workflow(text)), {"lint"})

    assert problems == ["job 'build', step Typo: no nox session 'no-such-session'"]


def test_drift_check_expands_a_session_name_over_the_job_matrix() -> None:
    text = """
jobs:
  tests:
    strategy:
      matrix:
        python: ["3.11", "3.12"]
        include:
          - python: "3.14"
    steps:
      - run: nox -s "tests-${{ matrix.python }}"
"""
    refs = session_refs(load_workflow(text))

    assert {ref.session for ref in refs} == {"tests-3.11", "tests-3.12", "tests-3.14"}


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("nox -s lint tests", {"lint", "tests"}),
        ("nox --session lint", {"lint"}),
        ("nox --sessions=build", {"build"}),
        ("python -m nox -e lint -- --fix", {"lint"}),
        ("nox -s lint --no-venv integration", {"lint"}),
        ("nox -s lint && nox -s \\\n  integration", {"lint", "integration"}),
        ("nox -s lint; echo -s other", {"lint"}),
        ("nox", set()),
        ("nox -s lint  # nox -s commented-out", {"lint"}),
    ],
)
def test_drift_check_reads_the_sessions_after_each_session_flag(
    script: str, expected: set[str]
) -> None:
    assert sessions_in_script(script, {}) == expected


def test_drift_check_reports_an_expression_it_cannot_expand() -> None:
    text = """
jobs:
  any:
    steps:
      - run: nox -s ${{ inputs.session }}
"""
    problems = unknown_sessions(session_refs(load_workflow(text)), {"lint"})

    assert problems == ["job 'any', step 1: no nox session '${{ inputs.session }}'"]


@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_workflow_grants_no_permissions_at_the_top_level(name: str) -> None:
    assert "permissions" in workflow(name)
    assert workflow(name)["permissions"] == {}


@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_every_job_states_its_own_permissions(name: str) -> None:
    jobs = workflow(name)["jobs"]

    assert [job_id for job_id, job in jobs.items() if "permissions" not in job] == []


@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_every_third_party_action_is_pinned_to_a_full_commit_sha(name: str) -> None:
    loose = [f"{job}: {uses}" for job, uses in uses_refs(workflow(name)) if not is_pinned(uses)]

    assert not loose, f"{name} uses actions not pinned to a 40-hex commit: {loose}"


@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_every_pinned_action_names_its_version_in_a_comment(name: str) -> None:
    lines = (WORKFLOW_DIR / name).read_text().splitlines()
    pinned = [line for line in lines if re.search(r"uses:\s*[^.\s][^@\s]*@[0-9a-f]{40}", line)]

    assert pinned
    assert [line for line in pinned if not re.search(r"#\s*v\d+(\.\d+)*\s*$", line)] == []


@pytest.mark.parametrize("name", WORKFLOW_FILES)
def test_every_checkout_leaves_no_credentials_behind(name: str) -> None:
    checkouts = [
        (job, step)
        for job, step in steps(workflow(name))
        if str(step.get("uses", "")).startswith("actions/checkout@")
    ]

    assert checkouts
    assert [
        job
        for job, step in checkouts
        if (step.get("with") or {}).get("persist-credentials") is not False
    ] == []


def test_pinned_check_tells_a_tag_from_a_commit() -> None:
    assert is_pinned("actions/checkout@de0fac2e4500dabe0009e67214ff5f5447ce83dd")
    assert is_pinned("./.github/actions/local")
    assert not is_pinned("actions/checkout@v6")
    assert not is_pinned("actions/checkout@de0fac2")
    assert not is_pinned("actions/checkout")


# --------------------------------------------------------------- the publish workflow


RELEASE_TAGS = ("v1.0.0", "v1.1.0rc1", "v2.0.0a1", "v10.20.30")
SMOKE_STEP = "Smoke-test the pushed image by digest"
# Stands in for the docker CLI in the smoke step (no registry here): `pull` succeeds, `run`
# logs its arguments and answers the version the "image" reports.
DOCKER_STANDIN = """#!/bin/sh
printf '%s\\n' "$*" >> "$DOCKER_LOG"
case "$1" in
    pull) exit 0 ;;
    run) printf '%s\\n' "$IMAGE_REPORTS" ;;
    *) echo "unexpected docker $1" >&2; exit 2 ;;
esac
"""


def workflow_triggers(data: Mapping[str, Any]) -> Mapping[str, Any]:
    # YAML 1.1 reads the bare key `on` as True.
    return data.get("on", data.get(True)) or {}


def step_named(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    (found,) = [step for _, step in steps(data) if step.get("name") == name]
    return found


@dataclass(frozen=True)
class SmokeRun:
    returncode: int
    output: str
    docker_calls: list[str]


def run_smoke_step(tmp_path: Path, ref_type: str, ref_name: str, image_reports: str) -> SmokeRun:
    """Run the publish workflow's smoke step under bash, with the docker stand-in on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    docker = bin_dir / "docker"
    docker.write_text(DOCKER_STANDIN)
    docker.chmod(0o755)
    script = tmp_path / "smoke.sh"
    script.write_text(step_named(workflow("docker-release.yml"), SMOKE_STEP)["run"])
    log = tmp_path / "docker.log"
    log.write_text("")
    env = {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "DOCKER_LOG": str(log),
        "IMAGE_REPORTS": image_reports,
        "IMAGE": "ghcr.io/owner/ai-trader",
        "DIGEST": "sha256:" + "0" * 64,
        "REF_TYPE": ref_type,
        "REF_NAME": ref_name,
    }
    # GitHub runs a `run:` step as `bash -e {0}`.
    proc = subprocess.run(
        ["bash", "-e", str(script)], env=env, capture_output=True, text=True, check=False
    )
    return SmokeRun(proc.returncode, proc.stdout + proc.stderr, log.read_text().splitlines())


@pytest.mark.parametrize("tag", RELEASE_TAGS)
def test_the_publish_workflow_runs_for_each_tag_the_release_session_pushes(tag: str) -> None:
    patterns = workflow_triggers(workflow("docker-release.yml"))["push"]["tags"]

    assert any(fnmatch.fnmatchcase(tag, pattern) for pattern in patterns)


def test_the_smoke_test_asks_each_platforms_image_for_its_package_version(
    tmp_path: Path,
) -> None:
    run = run_smoke_step(tmp_path, "tag", "v1.0.0", "1.0.0")

    runs = [call for call in run.docker_calls if call.startswith("run ")]
    assert [call.split("--platform ")[1].split()[0] for call in runs] == [
        "linux/amd64",
        "linux/arm64",
    ]
    assert all("--entrypoint python" in call and "ai_trader.__version__" in call for call in runs)


@pytest.mark.parametrize("tag", RELEASE_TAGS)
def test_the_smoke_test_passes_an_image_that_reports_the_tags_version(
    tmp_path: Path, tag: str
) -> None:
    run = run_smoke_step(tmp_path, "tag", tag, tag.removeprefix("v"))

    assert run.returncode == 0, run.output


@pytest.mark.parametrize(
    ("tag", "reported"),
    [("v1.0.0", "1.0.1.dev0"), ("v1.0.0", "0.1.1.dev0"), ("v1.1.0rc1", "1.1.0"), ("v1.0.0", "")],
)
def test_the_smoke_test_fails_an_image_that_reports_another_version(
    tmp_path: Path, tag: str, reported: str
) -> None:
    run = run_smoke_step(tmp_path, "tag", tag, reported)

    assert run.returncode != 0
    assert f"::error::the image reports version {reported} but the tag is {tag}" in run.output


def test_the_smoke_test_compares_no_version_for_a_branch_build(tmp_path: Path) -> None:
    run = run_smoke_step(tmp_path, "branch", "main", "0.1.1.dev0")

    assert run.returncode == 0, run.output
