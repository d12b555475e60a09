"""Shared fixtures: the offline data set and the real `serve` subprocess.

The services are started once per session (`ai-trader serve` is a real child process on ports
it picks, waited for by its listening line, which names them) because importing the MCP SDK
costs seconds on a small machine; tests keep their state apart by trading under their own
signature and log folder.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from support import Services, cli_env, run_cli, running_services, service_env

# --- data ------------------------------------------------------------------------------------


@dataclass
class OfflineData:
    """The offline sample made by the real CLI (`fetch` with no key, then `merge`)."""

    data_dir: Path
    fetch: subprocess.CompletedProcess[str]
    merge: subprocess.CompletedProcess[str]


@pytest.fixture(scope="session")
def offline_data(tmp_path_factory: pytest.TempPathFactory) -> OfflineData:
    data_dir = tmp_path_factory.mktemp("data")
    env = cli_env({"DATA_DIR": str(data_dir)})
    fetch = run_cli("fetch", env=env)
    assert fetch.returncode == 0, fetch.stderr
    merge = run_cli("merge", env=env)
    assert merge.returncode == 0, merge.stderr
    return OfflineData(data_dir, fetch, merge)


def offline_market(tmp_path_factory: pytest.TempPathFactory, market: str) -> OfflineData:
    """The offline sample of ``market`` in a data folder of its own (`fetch --market`, then
    `merge --market`), as the US one above."""
    data_dir = tmp_path_factory.mktemp(f"data-{market}")
    env = cli_env({"DATA_DIR": str(data_dir)})
    fetch = run_cli("fetch", "--market", market, env=env)
    assert fetch.returncode == 0, fetch.stderr
    merge = run_cli("merge", "--market", market, env=env)
    assert merge.returncode == 0, merge.stderr
    return OfflineData(data_dir, fetch, merge)


@pytest.fixture(scope="session")
def cn_data(tmp_path_factory: pytest.TempPathFactory) -> OfflineData:
    return offline_market(tmp_path_factory, "cn")


@pytest.fixture(scope="session")
def crypto_data(tmp_path_factory: pytest.TempPathFactory) -> OfflineData:
    return offline_market(tmp_path_factory, "crypto")


@pytest.fixture(scope="session")
def us_hourly_data(tmp_path_factory: pytest.TempPathFactory) -> OfflineData:
    return offline_market(tmp_path_factory, "us-hourly")


@pytest.fixture(scope="session")
def cn_hourly_data(tmp_path_factory: pytest.TempPathFactory) -> OfflineData:
    return offline_market(tmp_path_factory, "cn-hourly")


@contextlib.contextmanager
def market_services(
    tmp_path_factory: pytest.TempPathFactory, data: OfflineData, market: str
) -> Iterator[Services]:
    """`serve --market MARKET` over that market's sample."""
    log = tmp_path_factory.mktemp(f"services-{market}") / "serve.log"
    with running_services(service_env(data.data_dir), log, market=market) as running:
        yield running


@pytest.fixture(scope="session")
def cn_services(tmp_path_factory: pytest.TempPathFactory, cn_data: OfflineData):
    with market_services(tmp_path_factory, cn_data, "cn") as running:
        yield running


@pytest.fixture(scope="session")
def us_hourly_services(tmp_path_factory: pytest.TempPathFactory, us_hourly_data: OfflineData):
    with market_services(tmp_path_factory, us_hourly_data, "us-hourly") as running:
        yield running


@pytest.fixture(scope="session")
def cn_hourly_services(tmp_path_factory: pytest.TempPathFactory, cn_hourly_data: OfflineData):
    with market_services(tmp_path_factory, cn_hourly_data, "cn-hourly") as running:
        yield running


@pytest.fixture(scope="session")
def crypto_services(tmp_path_factory: pytest.TempPathFactory, crypto_data: OfflineData):
    with market_services(tmp_path_factory, crypto_data, "crypto") as running:
        yield running


# --- services --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def jina_standin():
    from standins import StandIns

    with StandIns() as standins:
        yield standins


@pytest.fixture(scope="session")
def services(
    tmp_path_factory: pytest.TempPathFactory, offline_data: OfflineData, jina_standin
) -> Iterator[Services]:
    """The four services over the offline sample, search answering from the Jina stand-in.

    One `serve` process for the whole session: the offline default runs against the same
    services (its built-in strategy never searches), so the no-key search check is made
    in-process instead of paying for a second start-up.
    """
    root = tmp_path_factory.mktemp("services")
    env = service_env(
        offline_data.data_dir,
        {
            "JINA_API_KEY": "test-jina-key",
            "AI_TRADER_ALLOWED_HOSTS": "trader.internal",
            "JINA_SEARCH_BASE_URL": jina_standin.jina_search_url,
            "JINA_READER_BASE_URL": jina_standin.jina_reader_url,
        },
    )
    with running_services(env, root / "serve.log") as running:
        yield running


@pytest.fixture(scope="session")
def news_services(tmp_path_factory: pytest.TempPathFactory, jina_standin) -> Iterator[Services]:
    """The search service alone (`serve --only search`), its provider Alpha Vantage's news
    feed, answered by the stand-in (the same one the Jina tests use, so scenarios are set per
    test)."""
    root = tmp_path_factory.mktemp("news")
    env = service_env(
        root,
        {
            "SEARCH_PROVIDER": "alphavantage",
            "ALPHAADVANTAGE_API_KEY": "test-news-key",
            "ALPHAVANTAGE_BASE_URL": jina_standin.alphavantage_url,
        },
    )
    with running_services(env, root / "serve.log", ["search"]) as running:
        yield running


# --- release: scripts/release.py against a throwaway bare remote --------------------------------

REPO_ROOT = Path(__file__).resolve().parents[2]
RELEASE_SCRIPT = REPO_ROOT / "scripts" / "release.py"
# What a release touches or runs, copied from this repository into the throwaway project.
RELEASE_PROJECT_FILES = (
    "noxfile.py",
    "pyproject.toml",  # the noxfile reads the supported Pythons from it
    "scripts/bootstrap.py",  # and its sessions load the host provisioning from here
    "scripts/release.py",
    "src/ai_trader/__init__.py",
    "docker-compose.yml",
    ".env.example",
    ".gitignore",
)

Refs = dict[str, str]


@pytest.fixture
def start_version() -> str:
    """The version main carries in the throwaway project before any release."""
    return "0.1.1.dev0"


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which git has an identity and ignores the user's own config."""
    empty_config = tmp_path / "gitconfig"
    empty_config.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_") or k == "GIT_EXEC_PATH"}
    env.update(
        GIT_AUTHOR_NAME="Release Test",
        GIT_AUTHOR_EMAIL="release-test@example.invalid",
        GIT_COMMITTER_NAME="Release Test",
        GIT_COMMITTER_EMAIL="release-test@example.invalid",
        GIT_CONFIG_GLOBAL=str(empty_config),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_TERMINAL_PROMPT="0",
        LC_ALL="C",
    )
    return env


@pytest.fixture
def git(git_env: dict[str, str]) -> Callable[..., str]:
    """Run git in a directory and return its stdout; any failure fails the test."""

    def run(cwd: Path, *args: str) -> str:
        proc = subprocess.run(
            ["git", *args], cwd=cwd, env=git_env, capture_output=True, text=True, check=False
        )
        assert proc.returncode == 0, f"git {' '.join(args)} failed: {proc.stderr}"
        return proc.stdout

    return run


@pytest.fixture
def release_remote(tmp_path: Path, git: Callable[..., str], start_version: str) -> Path:
    """A bare remote whose main holds the project's release files at ``start_version``.

    The files are this repository's own (noxfile, release script, version files), so the
    tests release the real thing; only the package version is set to a known start.
    """
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(remote))
    seed = tmp_path / "seed"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(seed))
    for name in RELEASE_PROJECT_FILES:
        (seed / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, seed / name)
    init = seed / "src/ai_trader/__init__.py"
    text, count = re.subn(
        r'^__version__ = "[^"]*"$',
        f'__version__ = "{start_version}"',
        init.read_text(),
        flags=re.M,
    )
    assert count == 1, 'src/ai_trader/__init__.py has no single `__version__ = "..."` line'
    init.write_text(text)
    git(seed, "add", "--all")
    git(seed, "commit", "--quiet", "--message", "The project before its release")
    git(seed, "push", "--quiet", str(remote), "main")
    shutil.rmtree(seed)
    return remote


@pytest.fixture
def release_clone(tmp_path: Path, release_remote: Path, git: Callable[..., str]) -> Path:
    """A fresh clone of the remote: main checked out, level with origin/main, clean."""
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(release_remote), str(clone))
    return clone


@pytest.fixture
def colleague_clone(
    tmp_path: Path, release_remote: Path, release_clone: Path, git: Callable[..., str]
) -> Path:
    """A second clone, standing in for a colleague who pushes to the same remote."""
    clone = tmp_path / "colleague"
    git(tmp_path, "clone", "--quiet", str(release_remote), str(clone))
    return clone


@pytest.fixture
def commit_file(git: Callable[..., str]) -> Callable[[Path, str, str], None]:
    """Write a file in a clone and commit it."""

    def write(repo: Path, relpath: str, text: str) -> None:
        (repo / relpath).parent.mkdir(parents=True, exist_ok=True)
        (repo / relpath).write_text(text)
        git(repo, "add", relpath)
        git(repo, "commit", "--quiet", "--message", f"Change {relpath}")

    return write


@pytest.fixture
def release(
    release_clone: Path, git_env: dict[str, str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the clone's scripts/release.py from the clone, as `nox -s release` does."""

    def run(*args: str, cwd: Path = release_clone) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "scripts/release.py", *args],
            cwd=cwd,
            env=git_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    return run


@pytest.fixture
def refs(git: Callable[..., str]) -> Callable[[Path], Refs]:
    """Every ref of a repository, remote-tracking ones and HEAD included, with its object."""

    def read(repo: Path) -> Refs:
        out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
        found = dict(line.split(" ", 1) for line in out.splitlines())
        found["HEAD"] = git(repo, "rev-parse", "HEAD").strip()
        return found

    return read


@dataclass(frozen=True)
class CloneState:
    """What a release could change in a clone and on its remote."""

    clone_refs: Refs
    remote_refs: Refs
    status: str
    files: dict[str, bytes]
    fetch_head: bool


@pytest.fixture
def clone_state(
    release_clone: Path,
    release_remote: Path,
    git: Callable[..., str],
    refs: Callable[[Path], Refs],
) -> Callable[[], CloneState]:
    """Read the clone's refs, status and files, and the remote's refs, for a before/after."""

    def read() -> CloneState:
        files = {
            str(path.relative_to(release_clone)): path.read_bytes()
            for path in sorted(release_clone.rglob("*"))
            if path.is_file() and ".git" not in path.relative_to(release_clone).parts
        }
        return CloneState(
            clone_refs=refs(release_clone),
            remote_refs=refs(release_remote),
            status=git(release_clone, "status", "--porcelain", "--ignored"),
            files=files,
            fetch_head=(release_clone / ".git" / "FETCH_HEAD").exists(),
        )

    return read


@pytest.fixture
def refused(release, clone_state: Callable[[], CloneState]) -> Callable[..., None]:
    """Run the script with ``args``; assert it refused with one line naming ``fragment``.

    A refusal changes nothing: the clone's refs (remote-tracking ones included), its files
    and status, and the remote's refs are the same after the run as before it.
    """

    def check(fragment: str, *args: str) -> None:
        before = clone_state()

        result = release(*args)

        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
        assert lines[0].startswith("release: error: ")
        assert fragment in lines[0]
        assert "Traceback" not in result.stderr
        assert clone_state() == before

    return check


@pytest.fixture
def release_module() -> ModuleType:
    """The repository's scripts/release.py imported as a module, for its pure functions."""
    spec = importlib.util.spec_from_file_location("release_script", RELEASE_SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


@pytest.fixture
def books(services: Services) -> Path:
    """A new folder of books inside the services' data folder (``Services.new_books``)."""
    return services.new_books()
