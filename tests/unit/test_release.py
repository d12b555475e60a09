"""`nox -s release -- vX.Y.Z` against a throwaway bare remote: what it commits, tags and pushes,
and what it refuses.

The remote holds this repository's own release files (noxfile, scripts/release.py, the
package version file, docker-compose.yml, .env.example) with the version set to the
``start_version`` fixture; each test works in a fresh clone of it and runs the clone's script
the way the session does (``python scripts/release.py ARGS`` from the clone). One test runs the
design's command itself through nox. Fixtures are in conftest.py.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSION_FILES = ("src/ai_trader/__init__.py", "docker-compose.yml", ".env.example")

Git = Callable[..., str]


def versions_at(git: Git, repo: Path, rev: str) -> dict[str, str]:
    """The version each file carries at ``rev``, read without the script's own code."""
    module = ast.parse(git(repo, "show", f"{rev}:src/ai_trader/__init__.py"))
    (package,) = [
        node.value.value
        for node in module.body
        if isinstance(node, ast.Assign)
        and [getattr(t, "id", None) for t in node.targets] == ["__version__"]
        and isinstance(node.value, ast.Constant)
    ]
    compose = yaml.safe_load(git(repo, "show", f"{rev}:docker-compose.yml"))
    build_arg = compose["services"]["ai-trader"]["build"]["args"]["VERSION"]
    default = re.fullmatch(r"\$\{AI_TRADER_VERSION:-(.*)\}", build_arg)
    assert default, build_arg
    env_lines = git(repo, "show", f"{rev}:.env.example").splitlines()
    (env,) = [line.partition("=")[2] for line in env_lines if line.startswith("AI_TRADER_VERSION=")]
    return {"package": package, "compose": default[1], "env": env}


def all_at(version: str) -> dict[str, str]:
    return {"package": version, "compose": version, "env": version}


def subjects(git: Git, repo: Path, rev: str, count: int) -> list[str]:
    return git(repo, "log", "--format=%s", f"-{count}", rev).splitlines()


def step_lines(stdout: str) -> list[str]:
    """The steps a run printed, without the dry-run or real-run verb in front."""
    steps = []
    for line in stdout.splitlines():
        for prefix in ("would run: ", "running: ", "would write ", "writing "):
            if line.startswith(prefix):
                verb = "write " if "write" in prefix or "writing" in prefix else ""
                steps.append(verb + line.removeprefix(prefix))
    return steps


# ------------------------------------------------------------------- the design's command


def test_the_designs_command_releases_from_a_fresh_clone(
    release_clone: Path, release_remote: Path, git_env: dict[str, str], git: Git
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nox", "-s", "release", "--", "v1.0.0"],
        cwd=release_clone,
        env=git_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    assert versions_at(git, release_remote, "v1.0.0") == all_at("1.0.0")
    assert versions_at(git, release_remote, "main") == all_at("1.0.1.dev0")


def test_release_commit_sets_the_version_in_every_version_file(
    release, release_remote: Path, git: Git, start_version: str
) -> None:
    assert versions_at(git, release_remote, "main") == all_at(start_version)

    assert release("v1.0.0").returncode == 0

    assert versions_at(git, release_remote, "v1.0.0") == all_at("1.0.0")


def test_release_commit_is_named_after_the_tag_and_changes_only_the_version_lines(
    release, release_remote: Path, git: Git
) -> None:
    start = git(release_remote, "rev-parse", "main").strip()

    assert release("v1.0.0").returncode == 0

    assert subjects(git, release_remote, "v1.0.0", 1) == ["Release v1.0.0"]
    assert git(release_remote, "rev-parse", "v1.0.0^{commit}~1").strip() == start
    numstat = git(release_remote, "diff", "--numstat", start, "v1.0.0").splitlines()
    assert sorted(numstat) == sorted(f"1\t1\t{name}" for name in VERSION_FILES)


def test_tag_is_annotated_on_the_release_commit_with_the_release_message(
    release, release_remote: Path, git: Git
) -> None:
    assert release("v1.0.0").returncode == 0

    assert git(release_remote, "cat-file", "-t", "refs/tags/v1.0.0").strip() == "tag"
    message = git(
        release_remote, "for-each-ref", "--format=%(contents:subject)", "refs/tags/v1.0.0"
    )
    assert message.strip() == "ai-trader 1.0.0"


def test_main_moves_on_to_the_next_development_version_in_its_own_commit(
    release, release_remote: Path, git: Git
) -> None:
    assert release("v1.0.0").returncode == 0

    assert versions_at(git, release_remote, "main") == all_at("1.0.1.dev0")
    assert subjects(git, release_remote, "main", 2) == [
        "Back to development: 1.0.1.dev0",
        "Release v1.0.0",
    ]
    tagged = git(release_remote, "rev-parse", "v1.0.0^{commit}").strip()
    assert git(release_remote, "rev-parse", "main~1").strip() == tagged


def test_release_pushes_the_branch_and_the_tag_and_nothing_else(
    release, release_remote: Path, release_clone: Path, git: Git, refs
) -> None:
    before = refs(release_remote)

    result = release("v1.0.0")

    assert result.returncode == 0, result.stderr
    after = refs(release_remote)
    assert set(after) == set(before) | {"refs/tags/v1.0.0"}
    assert after["refs/heads/main"] == git(release_clone, "rev-parse", "main").strip()
    assert "pushed refs/heads/main (now 1.0.1.dev0) and refs/tags/v1.0.0 to origin" in (
        result.stdout
    )


def test_release_leaves_the_clone_clean_and_level_with_the_remote(
    release, release_clone: Path, release_remote: Path, git: Git, refs
) -> None:
    assert release("v1.0.0").returncode == 0

    assert git(release_clone, "status", "--porcelain") == ""
    assert refs(release_clone)["refs/heads/main"] == refs(release_remote)["refs/heads/main"]
    assert refs(release_clone)["refs/tags/v1.0.0"] == refs(release_remote)["refs/tags/v1.0.0"]


# ------------------------------------------------------------- pre-releases, later releases


def test_pre_release_is_tagged_and_main_moves_to_the_next_candidates_dev(
    release, release_remote: Path, git: Git
) -> None:
    result = release("v1.1.0rc1")

    assert result.returncode == 0, result.stderr
    assert versions_at(git, release_remote, "v1.1.0rc1") == all_at("1.1.0rc1")
    assert versions_at(git, release_remote, "main") == all_at("1.1.0rc2.dev0")


def test_final_release_follows_its_pre_release(release, release_remote: Path, git: Git) -> None:
    assert release("v1.1.0rc1").returncode == 0

    result = release("v1.1.0")

    assert result.returncode == 0, result.stderr
    assert versions_at(git, release_remote, "v1.1.0") == all_at("1.1.0")
    assert versions_at(git, release_remote, "main") == all_at("1.1.1.dev0")


def test_second_release_follows_the_first_from_the_same_clone(
    release, release_remote: Path, git: Git
) -> None:
    assert release("v1.0.0").returncode == 0

    result = release("v1.0.1")

    assert result.returncode == 0, result.stderr
    assert versions_at(git, release_remote, "v1.0.1") == all_at("1.0.1")
    assert versions_at(git, release_remote, "main") == all_at("1.0.2.dev0")
    assert subjects(git, release_remote, "main", 5) == [
        "Back to development: 1.0.2.dev0",
        "Release v1.0.1",
        "Back to development: 1.0.1.dev0",
        "Release v1.0.0",
        "The project before its release",
    ]


def test_second_release_works_from_a_colleagues_fresh_clone(
    release, release_remote: Path, tmp_path: Path, git: Git
) -> None:
    assert release("v1.0.0").returncode == 0
    later = tmp_path / "later"
    git(tmp_path, "clone", "--quiet", str(release_remote), str(later))

    result = release("v1.1.0", cwd=later)

    assert result.returncode == 0, result.stderr
    assert versions_at(git, release_remote, "v1.1.0") == all_at("1.1.0")
    assert versions_at(git, release_remote, "main") == all_at("1.1.1.dev0")


# ------------------------------------------------------------------------------ options


def test_release_pushes_to_the_remote_named_by_the_remote_option(
    release, release_clone: Path, release_remote: Path, git: Git, refs
) -> None:
    git(release_clone, "remote", "rename", "origin", "upstream")

    result = release("v1.0.0", "--remote", "upstream")

    assert result.returncode == 0, result.stderr
    assert "refs/tags/v1.0.0" in refs(release_remote)
    assert "git push --atomic --no-follow-tags upstream " in result.stdout


def test_release_cuts_from_the_branch_named_by_the_default_branch_option(
    release, release_clone: Path, release_remote: Path, git: Git, refs
) -> None:
    main_before = refs(release_remote)["refs/heads/main"]
    git(release_clone, "checkout", "--quiet", "-b", "stable")
    git(release_clone, "push", "--quiet", "--set-upstream", "origin", "stable")

    result = release("v1.0.0", "--default-branch", "stable")

    assert result.returncode == 0, result.stderr
    assert versions_at(git, release_remote, "stable") == all_at("1.0.1.dev0")
    assert refs(release_remote)["refs/heads/main"] == main_before


def test_release_takes_the_default_branch_from_the_remote_head(
    release_clone: Path, git: Git, refused
) -> None:
    git(release_clone, "push", "--quiet", "origin", "main:trunk")
    git(release_clone, "remote", "set-head", "origin", "trunk")

    refused("not the default branch 'trunk'", "v1.0.0")


def test_release_ignores_files_that_git_ignores(
    release, release_clone: Path, release_remote: Path, refs
) -> None:
    (release_clone / ".nox").mkdir()
    (release_clone / ".nox" / "leftover").write_text("noise\n")

    result = release("v1.0.0")

    assert result.returncode == 0, result.stderr
    assert "refs/tags/v1.0.0" in refs(release_remote)


# ------------------------------------------------------------------------------ dry run


EXPECTED_STEPS = [
    "write 1.0.0 into src/ai_trader/__init__.py, docker-compose.yml, .env.example",
    "git commit --quiet --message 'Release v1.0.0' -- "
    "src/ai_trader/__init__.py docker-compose.yml .env.example",
    "git tag --annotate --message 'ai-trader 1.0.0' v1.0.0",
    "write 1.0.1.dev0 into src/ai_trader/__init__.py, docker-compose.yml, .env.example",
    "git commit --quiet --message 'Back to development: 1.0.1.dev0' -- "
    "src/ai_trader/__init__.py docker-compose.yml .env.example",
    "git push --atomic --no-follow-tags origin "
    "refs/heads/main:refs/heads/main refs/tags/v1.0.0:refs/tags/v1.0.0",
]


def test_dry_run_changes_no_file_no_ref_and_nothing_on_the_remote(release, clone_state) -> None:
    before = clone_state()

    result = release("v1.0.0", "--dry-run")

    assert result.returncode == 0, result.stderr
    assert clone_state() == before
    assert "dry run: nothing was changed" in result.stdout


def test_dry_run_prints_the_exact_steps(release) -> None:
    result = release("v1.0.0", "--dry-run")

    assert step_lines(result.stdout) == EXPECTED_STEPS


def test_dry_run_prints_the_commands_the_real_run_then_runs(release) -> None:
    dry = release("v1.0.0", "--dry-run")

    real = release("v1.0.0")

    assert real.returncode == 0, real.stderr
    assert step_lines(real.stdout) == step_lines(dry.stdout) == EXPECTED_STEPS


def test_dry_run_still_refuses_what_a_real_run_refuses(release_clone: Path, refused) -> None:
    (release_clone / "notes.txt").write_text("draft\n")

    refused("not clean", "v1.0.0", "--dry-run")


# ------------------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    "tag", ["1.0.0", "v1.0", "v1.0.0-rc1", "v01.0.0", "v1.0.0+local", "vX", "v1!1.0.0", "v1.0.0.0"]
)
def test_release_refuses_a_malformed_version(refused, tag: str) -> None:
    refused("malformed version", tag)


def test_malformed_version_refusal_says_what_was_expected(release) -> None:
    result = release("1.0")

    assert "expected v<major>.<minor>.<patch>, optionally followed by aN, bN or rcN" in (
        result.stderr
    )


def test_malformed_version_refusal_suggests_the_normal_form(refused) -> None:
    refused("did you mean v1.1.0rc1?", "v1.1.0-RC1")


def test_release_refuses_a_development_version(refused) -> None:
    refused("v1.0.0.dev1 is a development version", "v1.0.0.dev1")


def test_release_refuses_a_post_release(refused) -> None:
    refused("v1.0.0.post1 is a post-release", "v1.0.0.post1")


def test_release_refuses_a_version_older_than_the_one_at_head(refused, start_version) -> None:
    refused(f"v0.1.0 is not newer than {start_version}", "v0.1.0")


def test_release_refuses_a_version_already_released(release, refused) -> None:
    assert release("v1.0.0").returncode == 0

    refused("v1.0.0 is not newer than 1.0.1.dev0", "v1.0.0")


def test_release_refuses_a_pre_release_below_one_already_released(release, refused) -> None:
    assert release("v1.1.0rc1").returncode == 0

    refused("v1.1.0b1 is not newer than 1.1.0rc2.dev0", "v1.1.0b1")


def test_release_refuses_a_modified_tracked_file(release_clone: Path, refused) -> None:
    with (release_clone / ".env.example").open("a") as env:
        env.write("# local edit\n")

    refused("not clean", "v1.0.0")


def test_release_refuses_an_untracked_file(release_clone: Path, refused) -> None:
    (release_clone / "notes.txt").write_text("draft\n")

    refused("not clean", "v1.0.0")


def test_release_refuses_a_branch_other_than_the_default(
    release_clone: Path, git: Git, refused
) -> None:
    git(release_clone, "checkout", "--quiet", "-b", "feature")

    refused("not the default branch 'main'", "v1.0.0")


def test_release_refuses_a_detached_head(release_clone: Path, git: Git, refused) -> None:
    git(release_clone, "checkout", "--quiet", "--detach")

    refused("detached", "v1.0.0")


def test_release_refuses_a_branch_behind_its_remote(
    colleague_clone: Path, git: Git, commit_file, refused
) -> None:
    commit_file(colleague_clone, "CHANGES.md", "later work\n")
    git(colleague_clone, "push", "--quiet", "origin", "main")

    refused("main is 1 commit behind origin/main", "v1.0.0")


def test_release_refuses_a_branch_diverged_from_its_remote(
    release_clone: Path, colleague_clone: Path, git: Git, commit_file, refused
) -> None:
    commit_file(colleague_clone, "CHANGES.md", "their work\n")
    git(colleague_clone, "push", "--quiet", "origin", "main")
    commit_file(release_clone, "LOCAL.md", "my work\n")

    refused("diverged from origin/main", "v1.0.0")


def test_release_refuses_commits_not_yet_pushed(release_clone: Path, commit_file, refused) -> None:
    commit_file(release_clone, "LOCAL.md", "unpushed\n")

    refused("main is 1 commit ahead of origin/main", "v1.0.0")


def test_release_refuses_a_tag_that_exists_locally(release_clone: Path, git: Git, refused) -> None:
    git(release_clone, "tag", "v1.0.0")

    refused("tag v1.0.0 already exists locally", "v1.0.0")


def test_release_refuses_a_tag_that_exists_on_the_remote(
    colleague_clone: Path, git: Git, refused
) -> None:
    git(colleague_clone, "tag", "--annotate", "v1.0.0", "--message", "someone else's")
    git(colleague_clone, "push", "--quiet", "origin", "refs/tags/v1.0.0")

    refused("tag v1.0.0 already exists on origin", "v1.0.0")


def test_release_refuses_an_unknown_remote(refused) -> None:
    refused("no git remote named 'nowhere'", "v1.0.0", "--remote", "nowhere")


def test_release_refuses_a_branch_the_remote_does_not_have(
    release_clone: Path, git: Git, refused
) -> None:
    git(release_clone, "checkout", "--quiet", "-b", "stable")

    refused("origin has no branch 'stable'", "v1.0.0", "--default-branch", "stable")


def test_release_refuses_a_version_file_without_its_version_line(
    release_clone: Path, git: Git, commit_file, refused
) -> None:
    compose = (release_clone / "docker-compose.yml").read_text()
    commit_file(release_clone, "docker-compose.yml", compose.replace("AI_TRADER_VERSION", "V"))
    git(release_clone, "push", "--quiet", "origin", "main")

    refused("docker-compose.yml has no lines like `VERSION: ${AI_TRADER_VERSION:-X.Y.Z}`", "v1.0.0")


def test_release_without_packaging_says_so_in_one_line(release_clone: Path, git_env) -> None:
    # -S leaves site-packages off sys.path: a Python without the packaging distribution.
    result = subprocess.run(
        [sys.executable, "-S", "scripts/release.py", "v1.0.0"],
        cwd=release_clone,
        env=git_env,
        capture_output=True,
        text=True,
        check=False,
    )

    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"release: error: this Python ({sys.executable}) cannot import 'packaging'; "
        "run `nox -s release -- vX.Y.Z` (nox's Python has it) or install packaging"
    ]


def test_rejected_push_undoes_the_commits_and_the_tag(release_remote: Path, refused) -> None:
    hook = release_remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'main is protected' >&2\nexit 1\n")
    hook.chmod(0o755)

    refused("undone: main is back at", "v1.0.0")


# -------------------------------------------------------------------------- pure helpers


@pytest.mark.parametrize(
    ("tag", "version"),
    [("v1.0.0", "1.0.0"), ("v0.1.0", "0.1.0"), ("v1.1.0rc1", "1.1.0rc1"), ("v2.0.0a3", "2.0.0a3"),
     ("v2.0.0b1", "2.0.0b1"), ("v10.20.30", "10.20.30")],
)  # fmt: skip
def test_version_from_tag_accepts_final_and_pre_releases_in_normal_form(
    release_module: ModuleType, tag: str, version: str
) -> None:
    assert str(release_module.version_from_tag(tag)) == version


@pytest.mark.parametrize(
    "tag", ["v1.2.0-rc.1", "v1.2.0RC1", "v1.2.0c1", "V1.0.0", "v1.0.0 ", "vv1.0.0", "v1.0.0rc1x"]
)
def test_version_from_tag_rejects_versions_not_in_normal_form(
    release_module: ModuleType, tag: str
) -> None:
    with pytest.raises(release_module.ReleaseError, match="malformed version"):
        release_module.version_from_tag(tag)


def test_malformed_version_refusal_suggests_no_version_it_would_refuse(
    release_module: ModuleType,
) -> None:
    with pytest.raises(release_module.ReleaseError) as refusal:
        release_module.version_from_tag("v1.0.0-post1")

    assert "did you mean" not in str(refusal.value)


@pytest.mark.parametrize(
    ("released", "next_dev"),
    [
        ("1.0.0", "1.0.1.dev0"),
        ("0.1.9", "0.1.10.dev0"),
        ("1.1.0rc1", "1.1.0rc2.dev0"),
        ("2.0.0a1", "2.0.0a2.dev0"),
        ("2.0.0b3", "2.0.0b4.dev0"),
    ],
)
def test_next_dev_version_is_the_lowest_next_release_as_dev0(
    release_module: ModuleType, released: str, next_dev: str
) -> None:
    from packaging.version import Version

    following = release_module.next_dev_version(Version(released))

    assert str(following) == next_dev
    assert Version(released) < following


def test_check_newer_refuses_the_same_version(release_module: ModuleType) -> None:
    from packaging.version import Version

    with pytest.raises(release_module.ReleaseError, match=r"not newer than 1\.0\.0,"):
        release_module.check_newer(Version("1.0.0"), "1.0.0")


@pytest.mark.parametrize("name", VERSION_FILES)
def test_the_script_finds_the_version_in_each_of_this_repositorys_files(
    release_module: ModuleType, name: str
) -> None:
    import ai_trader

    text = (REPO_ROOT / name).read_text()

    assert release_module.find_version(name, text) == ai_trader.__version__


@pytest.mark.parametrize("name", VERSION_FILES)
def test_with_version_changes_only_the_version_line(release_module: ModuleType, name: str) -> None:
    from packaging.version import Version

    text = (REPO_ROOT / name).read_text()

    changed = release_module.with_version(name, text, Version("9.8.7rc6"))

    differing = [
        (old, new)
        for old, new in zip(text.splitlines(), changed.splitlines(), strict=True)
        if old != new
    ]
    assert len(differing) == 1
    assert "9.8.7rc6" in differing[0][1]
    assert release_module.find_version(name, changed) == "9.8.7rc6"


def test_branch_from_remote_head_strips_the_remote_prefix(release_module: ModuleType) -> None:
    assert release_module.branch_from_remote_head("refs/remotes/up/dev/x\n", "up") == "dev/x"
    assert release_module.branch_from_remote_head("refs/heads/main", "up") is None
