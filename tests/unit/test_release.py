"""scripts/release.py against a throwaway bare remote: what it pushes and what it refuses.

Each test gets a bare repository standing in for the remote, a clone of it with one commit
on main (pushed) declaring ``__version__ = "1.0.0"``, and a copy of the script kept outside
the clone (so the copy itself never dirties the tree). The script runs as a subprocess with
the clone as its working directory, as ``nox -s release`` runs it.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "release.py"
VERSION_FILE = Path("src/ai_trader/__init__.py")

Refs = dict[str, str]


# ------------------------------------------------------------------------------- fixtures


@pytest.fixture
def git_env(tmp_path: Path) -> dict[str, str]:
    """An environment in which git has an identity and ignores the user's own config."""
    empty_config = tmp_path / "gitconfig"
    empty_config.write_text("")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GIT_") or key in {"GIT_EXEC_PATH"}
    }
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
def remote(tmp_path: Path, git: Callable[..., str]) -> Path:
    path = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(path))
    return path


def _commit_file(git: Callable[..., str], repo: Path, relpath: Path | str, text: str) -> None:
    target = repo / relpath
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(text)
    git(repo, "add", str(relpath))
    git(repo, "commit", "--quiet", "-m", f"write {relpath}")


@pytest.fixture
def clone(tmp_path: Path, remote: Path, git: Callable[..., str]) -> Path:
    """A clone of ``remote`` on main, with the project's version file committed and pushed."""
    path = tmp_path / "clone"
    git(tmp_path, "clone", "--quiet", str(remote), str(path))
    git(path, "checkout", "--quiet", "-B", "main")
    _commit_file(git, path, ".gitignore", "ignored.log\n")
    _commit_file(git, path, VERSION_FILE, '"""ai-trader."""\n\n__version__ = "1.0.0"\n')
    git(path, "push", "--quiet", "--set-upstream", "origin", "main")
    return path


@pytest.fixture
def other_clone(tmp_path: Path, remote: Path, clone: Path, git: Callable[..., str]) -> Path:
    """A second clone, standing in for a colleague who pushes to the same remote."""
    path = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(remote), str(path))
    return path


@pytest.fixture
def script(tmp_path: Path) -> Path:
    copy = tmp_path / "tools" / "release.py"
    copy.parent.mkdir()
    shutil.copy2(SCRIPT, copy)
    return copy


@pytest.fixture
def release(
    script: Path, clone: Path, git_env: dict[str, str]
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run the copied script in the clone with the given arguments."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(script), *args],
            cwd=clone,
            env=git_env,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    return run


@pytest.fixture
def refs(git: Callable[..., str]) -> Callable[[Path], Refs]:
    """Every ref of a repository, by name, with the object it points at."""

    def read(repo: Path) -> Refs:
        out = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
        return dict(line.split(" ", 1) for line in out.splitlines())

    return read


@pytest.fixture
def refused(
    release, remote: Path, clone: Path, refs: Callable[[Path], Refs]
) -> Callable[..., None]:
    """Run the script with ``args``; assert it refused with one line naming ``fragment``.

    The remote's refs and the clone's own (not remote-tracking: the fetch may move those)
    are read just before the run and must be the same after it: a refusal pushes nothing
    and creates no tag.
    """

    def own_refs(repo: Path) -> Refs:
        return {k: v for k, v in refs(repo).items() if not k.startswith("refs/remotes/")}

    def check(fragment: str, *args: str) -> None:
        remote_before = refs(remote)
        clone_before = own_refs(clone)

        result = release(*args)

        assert result.returncode != 0
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, f"expected one line on stderr, got: {result.stderr!r}"
        assert lines[0].startswith("release: error: ")
        assert fragment in lines[0]
        assert "Traceback" not in result.stderr
        assert refs(remote) == remote_before
        assert own_refs(clone) == clone_before

    return check


@pytest.fixture
def release_module() -> ModuleType:
    """The script imported as a module, for its pure functions."""
    spec = importlib.util.spec_from_file_location("release_script", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while being built
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


# ------------------------------------------------------------------------------- success


def test_release_pushes_exactly_the_version_tag_and_nothing_else(
    release, remote: Path, refs: Callable[[Path], Refs]
) -> None:
    before = refs(remote)

    result = release("v1.0.0")

    assert result.returncode == 0, result.stderr
    after = refs(remote)
    assert set(after) - set(before) == {"refs/tags/v1.0.0"}
    assert {name: after[name] for name in before} == before


def test_released_tag_on_the_remote_is_annotated(release, remote: Path, git) -> None:
    assert release("v1.0.0").returncode == 0

    assert git(remote, "cat-file", "-t", "refs/tags/v1.0.0").strip() == "tag"


def test_released_tag_points_at_the_release_commit_with_the_release_message(
    release, remote: Path, clone: Path, git
) -> None:
    head = git(clone, "rev-parse", "HEAD").strip()

    assert release("v1.0.0").returncode == 0

    assert git(remote, "rev-parse", "refs/tags/v1.0.0^{commit}").strip() == head
    message = git(remote, "for-each-ref", "--format=%(contents:subject)", "refs/tags/v1.0.0")
    assert message.strip() == "ai-trader 1.0.0"


def test_release_accepts_a_pre_release_version(release, clone: Path, remote: Path, git, refs):
    _commit_file(git, clone, VERSION_FILE, '__version__ = "1.2.0rc1"\n')
    git(clone, "push", "--quiet", "origin", "main")

    result = release("v1.2.0rc1")

    assert result.returncode == 0, result.stderr
    assert "refs/tags/v1.2.0rc1" in refs(remote)


def test_release_pushes_to_the_remote_named_by_the_remote_option(
    release, clone: Path, remote: Path, git, refs
) -> None:
    git(clone, "remote", "rename", "origin", "upstream")

    result = release("v1.0.0", "--remote", "upstream")

    assert result.returncode == 0, result.stderr
    assert "refs/tags/v1.0.0" in refs(remote)


def test_release_takes_the_default_branch_from_the_remote_head(
    release, clone: Path, git, refused
) -> None:
    git(clone, "push", "--quiet", "origin", "main:trunk")
    git(clone, "remote", "set-head", "origin", "trunk")

    refused("'trunk'", "v1.0.0")


def test_release_accepts_the_branch_named_by_the_default_branch_option(
    release, clone: Path, remote: Path, git, refs
) -> None:
    git(clone, "checkout", "--quiet", "-b", "stable")
    git(clone, "push", "--quiet", "--set-upstream", "origin", "stable")

    result = release("v1.0.0", "--default-branch", "stable")

    assert result.returncode == 0, result.stderr
    assert "refs/tags/v1.0.0" in refs(remote)


def test_release_ignores_files_that_git_ignores(release, clone: Path, remote: Path, refs) -> None:
    (clone / "ignored.log").write_text("noise\n")

    result = release("v1.0.0")

    assert result.returncode == 0, result.stderr
    assert "refs/tags/v1.0.0" in refs(remote)


def test_dry_run_creates_no_tag_and_pushes_nothing(
    release, remote: Path, clone: Path, refs: Callable[[Path], Refs]
) -> None:
    remote_before = refs(remote)

    result = release("v1.0.0", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert refs(remote) == remote_before
    assert not [name for name in refs(clone) if name.startswith("refs/tags/")]


def test_dry_run_prints_the_tag_and_push_commands_it_would_run(release) -> None:
    result = release("v1.0.0", "--dry-run")

    assert "git tag --annotate v1.0.0 --message 'ai-trader 1.0.0'" in result.stdout
    assert "git push --no-follow-tags origin refs/tags/v1.0.0:refs/tags/v1.0.0" in result.stdout


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize("tag", ["1.0.0", "v1.0", "v1.0.0-rc1", "v01.0.0", "v1.0.0+local", "vX"])
def test_release_refuses_a_malformed_version(release, refused, tag: str) -> None:
    refused("malformed version", tag)


def test_malformed_version_refusal_says_what_was_expected(release) -> None:
    result = release("1.0")

    assert "expected v<major>.<minor>.<patch>" in result.stderr


def test_release_refuses_a_modified_tracked_file(release, clone: Path, refused) -> None:
    (clone / VERSION_FILE).write_text('__version__ = "1.0.0"\n# local edit\n')

    refused("not clean", "v1.0.0")


def test_release_refuses_an_untracked_file(release, clone: Path, refused) -> None:
    (clone / "notes.txt").write_text("draft\n")

    refused("not clean", "v1.0.0")


def test_release_refuses_a_branch_other_than_the_default(
    release, clone: Path, git, refused
) -> None:
    git(clone, "checkout", "--quiet", "-b", "feature")

    refused("not the default branch 'main'", "v1.0.0")


def test_release_refuses_a_branch_behind_its_remote(
    release, other_clone: Path, git, refused
) -> None:
    _commit_file(git, other_clone, "CHANGES.md", "later work\n")
    git(other_clone, "push", "--quiet", "origin", "main")

    refused("behind origin/main", "v1.0.0")


def test_release_refuses_a_branch_diverged_from_its_remote(
    release, clone: Path, other_clone: Path, git, refused
) -> None:
    _commit_file(git, other_clone, "CHANGES.md", "their work\n")
    git(other_clone, "push", "--quiet", "origin", "main")
    _commit_file(git, clone, "LOCAL.md", "my work\n")

    refused("diverged from origin/main", "v1.0.0")


def test_release_refuses_a_release_commit_not_yet_pushed(
    release, clone: Path, git, refused
) -> None:
    _commit_file(git, clone, "LOCAL.md", "unpushed\n")

    refused("ahead of origin/main", "v1.0.0")


def test_release_refuses_a_tag_that_exists_locally(release, clone: Path, git, refused) -> None:
    git(clone, "tag", "v1.0.0")

    refused("already exists locally", "v1.0.0")


def test_release_refuses_a_tag_that_exists_on_the_remote(
    release, other_clone: Path, git, refused
) -> None:
    git(other_clone, "tag", "--annotate", "v1.0.0", "--message", "someone else's")
    git(other_clone, "push", "--quiet", "origin", "refs/tags/v1.0.0")

    refused("already exists on origin", "v1.0.0")


def test_release_refuses_a_version_that_differs_from_the_project_version(release, refused) -> None:
    refused("the tag says 1.0.1 but src/ai_trader/__init__.py declares", "v1.0.1")


def test_release_refuses_an_unknown_remote(release, refused) -> None:
    refused("no git remote named 'nowhere'", "v1.0.0", "--remote", "nowhere")


def test_release_refuses_a_detached_head(release, clone: Path, git, refused) -> None:
    git(clone, "checkout", "--quiet", "--detach")

    refused("detached", "v1.0.0")


def test_dry_run_still_refuses_what_a_real_run_refuses(release, clone: Path, refused) -> None:
    (clone / "notes.txt").write_text("draft\n")

    refused("not clean", "v1.0.0", "--dry-run")


# -------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("tag", "version"),
    [
        ("v1.0.0", "1.0.0"),
        ("v0.1.0", "0.1.0"),
        ("v1.2.0rc1", "1.2.0rc1"),
        ("v2.0.0a3", "2.0.0a3"),
        ("v2.0.0b1.post2.dev3", "2.0.0b1.post2.dev3"),
        ("v10.20.30.post1", "10.20.30.post1"),
    ],
)
def test_version_from_tag_accepts_normalised_release_versions(
    release_module: ModuleType, tag: str, version: str
) -> None:
    assert release_module.version_from_tag(tag) == version


@pytest.mark.parametrize(
    "tag", ["v1.2.0-rc.1", "v1.2.0RC1", "v1.2.0c1", "v1!1.0.0", "V1.0.0", "v1.0.0 ", "v1.0.0.0"]
)
def test_version_from_tag_rejects_versions_not_in_normal_form(
    release_module: ModuleType, tag: str
) -> None:
    with pytest.raises(release_module.ReleaseError, match="malformed version"):
        release_module.version_from_tag(tag)


def test_project_version_reads_the_assignment_without_importing(
    release_module: ModuleType,
) -> None:
    source = 'import does_not_exist\n__version__: str = "3.1.4"\n'

    assert release_module.project_version(source) == "3.1.4"


def test_project_version_refuses_a_computed_version(release_module: ModuleType) -> None:
    with pytest.raises(release_module.ReleaseError, match="not a plain string literal"):
        release_module.project_version("__version__ = '.'.join(['1', '0', '0'])\n")


def test_branch_from_remote_head_strips_the_remote_prefix(release_module: ModuleType) -> None:
    assert release_module.branch_from_remote_head("refs/remotes/up/dev/x\n", "up") == "dev/x"
    assert release_module.branch_from_remote_head("refs/heads/main", "up") is None
