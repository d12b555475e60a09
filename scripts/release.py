#!/usr/bin/env python3
"""Cut a release of ai-trader: check the repository, then tag and push ``vX.Y.Z``.

Usage::

    python scripts/release.py vX.Y.Z [--remote NAME] [--default-branch NAME] [--dry-run]

Refuses, with one line on stderr and a non-zero exit, when the version is malformed,
when it differs from ``__version__`` in src/ai_trader/__init__.py (as committed at HEAD),
when the work tree is not clean, when HEAD is not the default branch, when that branch is
not level with its remote (after a fetch), or when the tag already exists locally or on
the remote. Otherwise it creates the annotated tag ``vX.Y.Z`` ("ai-trader X.Y.Z") and
pushes that one ref, and nothing else, to the remote. ``--dry-run`` runs every check
(the fetch included) and prints the commands it would run, without running them.

Standard library only: ``nox -s release -- vX.Y.Z`` runs it with the session's Python.
"""

from __future__ import annotations

import argparse
import ast
import re
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROG = "release"
VERSION_FILE = "src/ai_trader/__init__.py"
FALLBACK_DEFAULT_BRANCH = "main"

# PEP 440 in normal form, restricted to what this project tags: three release numbers
# without leading zeros, then an optional pre-release (aN, bN, rcN), post-release (.postN)
# and development release (.devN). No epoch, no local part.
_NUMBER = r"(?:0|[1-9][0-9]*)"
_RELEASE_VERSION = re.compile(
    rf"{_NUMBER}\.{_NUMBER}\.{_NUMBER}"
    rf"(?:(?:a|b|rc){_NUMBER})?"
    rf"(?:\.post{_NUMBER})?"
    rf"(?:\.dev{_NUMBER})?"
)
EXPECTED_FORMAT = (
    "v<major>.<minor>.<patch> in PEP 440 normal form, optionally followed by aN, bN or rcN, "
    ".postN, .devN (e.g. v1.0.0, v1.2.0rc1)"
)


class ReleaseError(Exception):
    """A reason to refuse the release; its message is the one line shown to the user."""


# --------------------------------------------------------------------------- pure helpers


def version_from_tag(tag: str) -> str:
    """Return the version in a release tag such as ``v1.2.0rc1``, or refuse it."""
    if not tag.startswith("v") or not _RELEASE_VERSION.fullmatch(tag[1:]):
        raise ReleaseError(f"malformed version {tag!r}: expected {EXPECTED_FORMAT}")
    return tag[1:]


def project_version(source: str, filename: str = VERSION_FILE) -> str:
    """Return the string assigned to ``__version__`` in a module's source, without importing it."""
    try:
        tree = ast.parse(source, filename=filename)
    except SyntaxError as exc:
        raise ReleaseError(f"cannot parse {filename}: {exc.msg} (line {exc.lineno})") from exc
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets = [node.target]
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "__version__" for t in targets):
            if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
                return node.value.value
            raise ReleaseError(f"__version__ in {filename} is not a plain string literal")
    raise ReleaseError(f"no __version__ assignment found in {filename}")


def check_versions_match(tag_version: str, declared: str) -> None:
    """Refuse a tag whose version differs from the project's declared version."""
    if tag_version != declared:
        raise ReleaseError(
            f"version mismatch: the tag says {tag_version} but {VERSION_FILE} declares "
            f"__version__ = {declared!r}; bump and commit it first"
        )


def branch_from_remote_head(symref: str, remote: str) -> str | None:
    """Turn ``refs/remotes/<remote>/<branch>`` (what origin/HEAD points at) into ``<branch>``."""
    prefix = f"refs/remotes/{remote}/"
    symref = symref.strip()
    if symref.startswith(prefix) and len(symref) > len(prefix):
        return symref[len(prefix) :]
    return None


def describe_divergence(branch: str, upstream: str, ahead: int, behind: int) -> str | None:
    """Say why ``branch`` is not level with ``upstream``, or return None when it is."""
    if ahead and behind:
        return (
            f"{branch} has diverged from {upstream} ({ahead} local and {behind} remote commits "
            "not in the other); reconcile them first"
        )
    if behind:
        return f"{branch} is {_commits(behind)} behind {upstream}; pull first"
    if ahead:
        return f"{branch} is {_commits(ahead)} ahead of {upstream}; push the release commit first"
    return None


def dirty_summary(porcelain: str) -> str | None:
    """Summarise ``git status --porcelain`` output, or return None for a clean tree."""
    entries = [line for line in porcelain.splitlines() if line.strip()]
    if not entries:
        return None
    first = entries[0][3:]
    more = f" and {len(entries) - 1} more" if len(entries) > 1 else ""
    return (
        f"the work tree is not clean ({first!r}{more} changed or untracked); commit or stash first"
    )


def tag_message(version: str) -> str:
    return f"ai-trader {version}"


def _commits(count: int) -> str:
    return f"{count} commit" + ("" if count == 1 else "s")


# ------------------------------------------------------------------------------ git layer


@dataclass(frozen=True)
class Git:
    """Runs git in one repository; a failed command becomes a one-line ReleaseError."""

    cwd: Path

    def run(self, *args: str) -> str:
        proc = self._call(args)
        if proc.returncode != 0:
            raise ReleaseError(f"`git {' '.join(args)}` failed: {_last_line(proc.stderr)}")
        return proc.stdout

    def succeeds(self, *args: str) -> bool:
        return self._call(args).returncode == 0

    def _call(self, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
        try:
            return subprocess.run(
                ["git", *args], cwd=self.cwd, capture_output=True, text=True, check=False
            )
        except FileNotFoundError as exc:
            raise ReleaseError("git is not installed or not on PATH") from exc

    # Queries -----------------------------------------------------------------------------

    def toplevel(self) -> Path:
        proc = self._call(["rev-parse", "--show-toplevel"])
        if proc.returncode != 0:
            raise ReleaseError(f"{self.cwd} is not inside a git work tree")
        return Path(proc.stdout.strip())

    def has_remote(self, remote: str) -> bool:
        return remote in self.run("remote").split()

    def file_at_head(self, path: str) -> str:
        proc = self._call(["show", f"HEAD:{path}"])
        if proc.returncode != 0:
            raise ReleaseError(f"cannot read {path} at HEAD: {_last_line(proc.stderr)}")
        return proc.stdout

    def status(self) -> str:
        return self.run("status", "--porcelain", "--untracked-files=normal")

    def current_branch(self) -> str | None:
        proc = self._call(["symbolic-ref", "--quiet", "--short", "HEAD"])
        return proc.stdout.strip() if proc.returncode == 0 else None

    def remote_default_branch(self, remote: str) -> str | None:
        proc = self._call(["symbolic-ref", "--quiet", f"refs/remotes/{remote}/HEAD"])
        if proc.returncode != 0:
            return None
        return branch_from_remote_head(proc.stdout, remote)

    def fetch(self, remote: str) -> None:
        # --no-tags: the remote's tags are asked for separately and must not appear locally.
        self.run("fetch", "--quiet", "--no-tags", remote)

    def remote_branch_exists(self, remote: str, branch: str) -> bool:
        return self.succeeds("rev-parse", "--verify", "--quiet", f"refs/remotes/{remote}/{branch}")

    def ahead_behind(self, branch: str, remote: str) -> tuple[int, int]:
        out = self.run(
            "rev-list",
            "--left-right",
            "--count",
            f"refs/heads/{branch}...refs/remotes/{remote}/{branch}",
        )
        ahead, behind = out.split()
        return int(ahead), int(behind)

    def local_tag_exists(self, tag: str) -> bool:
        return self.succeeds("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}")

    def remote_tag_exists(self, remote: str, tag: str) -> bool:
        out = self.run("ls-remote", "--tags", remote, f"refs/tags/{tag}")
        wanted = {f"refs/tags/{tag}", f"refs/tags/{tag}^{{}}"}
        return any(line.split("\t")[-1] in wanted for line in out.splitlines())

    def head(self) -> str:
        return self.run("rev-parse", "HEAD").strip()


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"


# --------------------------------------------------------------------------------- release


@dataclass(frozen=True)
class Plan:
    tag: str
    version: str
    remote: str
    branch: str
    commit: str

    def tag_command(self) -> list[str]:
        return ["git", "tag", "--annotate", self.tag, "--message", tag_message(self.version)]

    def push_command(self) -> list[str]:
        # An explicit refspec pushes this one ref; --no-follow-tags keeps a user's
        # push.followTags setting from sending other tags along with it.
        ref = f"refs/tags/{self.tag}"
        return ["git", "push", "--no-follow-tags", self.remote, f"{ref}:{ref}"]


def check(git: Git, tag: str, remote: str, default_branch: str | None) -> Plan:
    """Run every check in order; return what to do, or raise the first refusal."""
    version = version_from_tag(tag)
    if not git.has_remote(remote):
        raise ReleaseError(f"no git remote named {remote!r} (see `git remote -v`; use --remote)")

    check_versions_match(version, project_version(git.file_at_head(VERSION_FILE)))

    dirty = dirty_summary(git.status())
    if dirty:
        raise ReleaseError(dirty)

    wanted = default_branch or git.remote_default_branch(remote) or FALLBACK_DEFAULT_BRANCH
    branch = git.current_branch()
    if branch is None:
        raise ReleaseError(f"HEAD is detached; check out {wanted} to release")
    if branch != wanted:
        raise ReleaseError(
            f"on branch {branch!r}, not the default branch {wanted!r}; check out {wanted} first"
        )

    git.fetch(remote)
    if not git.remote_branch_exists(remote, branch):
        raise ReleaseError(f"{remote} has no branch {branch!r}; push it first")
    ahead, behind = git.ahead_behind(branch, remote)
    divergence = describe_divergence(branch, f"{remote}/{branch}", ahead, behind)
    if divergence:
        raise ReleaseError(divergence)

    if git.local_tag_exists(tag):
        raise ReleaseError(f"tag {tag} already exists locally; versions are released once")
    if git.remote_tag_exists(remote, tag):
        raise ReleaseError(f"tag {tag} already exists on {remote}; versions are released once")

    return Plan(tag=tag, version=version, remote=remote, branch=branch, commit=git.head())


def execute(git: Git, plan: Plan) -> None:
    git.run(*plan.tag_command()[1:])
    print(f"created annotated tag {plan.tag} at {plan.commit[:12]} ({plan.branch})")
    try:
        git.run(*plan.push_command()[1:])
    except ReleaseError as exc:
        # Leave nothing behind, so the same command can simply be run again.
        git.succeeds("tag", "--delete", plan.tag)
        raise ReleaseError(f"{exc} (the local tag {plan.tag} was deleted again)") from exc
    print(f"pushed refs/tags/{plan.tag} to {plan.remote}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Check the repository, then create and push the annotated tag vX.Y.Z.",
    )
    parser.add_argument("tag", metavar="vX.Y.Z", help="the release tag, e.g. v1.0.0 or v1.2.0rc1")
    parser.add_argument(
        "--remote", default="origin", help="remote to check and push to (default: origin)"
    )
    parser.add_argument(
        "--default-branch",
        default=None,
        help="branch releases are cut from (default: what <remote>/HEAD points at, else main)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="run the checks and print what would be done; change nothing",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        git = Git(Git(Path.cwd()).toplevel())
        plan = check(git, args.tag, args.remote, args.default_branch)
        if args.dry_run:
            where = f"{plan.branch} at {plan.commit[:12]}"
            print(f"dry run: all checks passed for {plan.tag} ({where})")
            print(f"would run: {shlex.join(plan.tag_command())}")
            print(f"would run: {shlex.join(plan.push_command())}")
            print("dry run: no tag was created and nothing was pushed")
            return 0
        execute(git, plan)
    except ReleaseError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
