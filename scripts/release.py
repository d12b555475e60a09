#!/usr/bin/env python3
"""Release ai-trader: check, set the version, commit, tag, move main on, push.

Usage::

    python scripts/release.py vX.Y.Z [--remote NAME] [--default-branch NAME] [--dry-run]

``nox -s release -- vX.Y.Z`` runs it with nox's own Python, which always has ``packaging``.

The checks come first, and each refusal is one line on stderr with a non-zero exit: a
malformed version (or a development or post-release), a version not newer than the one at
HEAD, a work tree with changes or untracked files, HEAD not on the default branch, that
branch behind, ahead of or diverged from the remote, the tag already existing locally or on
the remote. Then, on the default branch:

1. the new version goes into every file that carries it (VERSION_FILES), committed as
   "Release vX.Y.Z";
2. the annotated tag vX.Y.Z goes on that commit;
3. the next development version (see ``next_dev_version``) goes into the same files,
   committed as its own commit;
4. one atomic push sends the branch and that tag, and nothing else.

If a step fails, the branch is reset to where it was and the tag deleted, so nothing is
left half done. ``--dry-run`` runs every check and prints the exact steps, changing no
file, no ref and nothing on the remote (it compares with the remote through
``git ls-remote`` and a fetch that writes no ref).
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

PROG = "release"

try:
    from packaging.version import InvalidVersion, Version
except ImportError:
    if __name__ != "__main__":
        raise
    sys.exit(
        f"{PROG}: error: this Python ({sys.executable}) cannot import 'packaging'; "
        "run `nox -s release -- vX.Y.Z` (nox's Python has it) or install packaging"
    )

FALLBACK_DEFAULT_BRANCH = "main"
PACKAGE_VERSION_FILE = "src/ai_trader/__init__.py"
# Every file that carries the version: the one line that holds it, and how that line looks.
# The package is the source of truth; the compose build argument and .env.example repeat it
# for the image label, and tests/unit/test_packaging.py keeps the three equal.
VERSION_FILES: dict[str, re.Pattern[str]] = {
    PACKAGE_VERSION_FILE: re.compile(r'^(__version__ = ")([^"\n]*)(")$', re.M),
    "docker-compose.yml": re.compile(r"^(\s+VERSION: \$\{AI_TRADER_VERSION:-)([^}\n]*)(\})$", re.M),
    ".env.example": re.compile(r"^(AI_TRADER_VERSION=)(.*)()$", re.M),
}
VERSION_LINE_LOOKS_LIKE = {
    PACKAGE_VERSION_FILE: '__version__ = "X.Y.Z"',
    "docker-compose.yml": "VERSION: ${AI_TRADER_VERSION:-X.Y.Z}",
    ".env.example": "AI_TRADER_VERSION=X.Y.Z",
}
EXPECTED_FORMAT = (
    "v<major>.<minor>.<patch>, optionally followed by aN, bN or rcN, "
    "in PEP 440 normal form (e.g. v1.0.0, v1.1.0rc1)"
)


class ReleaseError(Exception):
    """A reason to refuse or abandon the release; its message is the one line shown."""


# --------------------------------------------------------------------------- versions


def version_from_tag(tag: str) -> Version:
    """Return the version in a release tag such as ``v1.1.0rc1``, or refuse the tag."""
    version = _parse_tag(tag)
    if version is None:
        hint = _suggest(tag)
        raise ReleaseError(
            f"malformed version {tag!r}: expected {EXPECTED_FORMAT}"
            + (f"; did you mean {hint}?" if hint else "")
        )
    if version.is_devrelease:
        raise ReleaseError(
            f"{tag} is a development version: main carries those between releases "
            "and they are never tagged"
        )
    if version.is_postrelease:
        raise ReleaseError(
            f"{tag} is a post-release: releases are final versions or pre-releases "
            "(aN, bN, rcN); fix forward with the next patch version"
        )
    return version


def _parse_tag(tag: str) -> Version | None:
    """The tag's version when it is v + a three-part PEP 440 version in normal form."""
    if not tag.startswith("v"):
        return None
    try:
        version = Version(tag[1:])
    except InvalidVersion:
        return None
    if str(version) != tag[1:] or version.epoch or version.local or len(version.release) != 3:
        return None
    return version


def _suggest(tag: str) -> str | None:
    """The normal form of a nearly right tag (v1.2.0RC1, 1.0.0, v01.0.0), if there is one."""
    try:
        normal = f"v{Version(tag.strip().removeprefix('v').removeprefix('V'))}"
    except InvalidVersion:
        return None
    version = _parse_tag(normal)
    releasable = version is not None and not (version.is_devrelease or version.is_postrelease)
    return normal if releasable and normal != tag else None


def next_dev_version(released: Version) -> Version:
    """The version main carries after ``released``: the lowest sensible next release, .dev0.

    After a final release X.Y.Z the next release is at least X.Y.(Z+1). After a pre-release
    X.Y.ZrcN the next is at least X.Y.Zrc(N+1) (or X.Y.Z itself, which sorts above it), so
    main never goes below a version already released.
    """
    major, minor, patch = released.release
    if released.pre is not None:
        letter, number = released.pre
        return Version(f"{major}.{minor}.{patch}{letter}{number + 1}.dev0")
    return Version(f"{major}.{minor}.{patch + 1}.dev0")


def check_newer(version: Version, current: str) -> None:
    """Refuse a release that is not newer than the version committed at HEAD."""
    try:
        at_head = Version(current)
    except InvalidVersion as exc:
        raise ReleaseError(
            f"{PACKAGE_VERSION_FILE} declares {current!r}, which is not a PEP 440 version"
        ) from exc
    if version <= at_head:
        raise ReleaseError(
            f"v{version} is not newer than {at_head}, the version at HEAD "
            f"({PACKAGE_VERSION_FILE}); versions only go up"
        )


def find_version(path: str, text: str) -> str:
    """The version on the one line of ``path`` that carries it, or a refusal."""
    matches: list[tuple[str, str]] = VERSION_FILES[path].findall(text)
    if len(matches) != 1:
        raise ReleaseError(
            f"{path} has {len(matches) or 'no'} lines like `{VERSION_LINE_LOOKS_LIKE[path]}`; "
            "the release needs exactly one"
        )
    return matches[0][1]


def with_version(path: str, text: str, version: Version) -> str:
    """``text`` with the version on its version line replaced (find_version must pass)."""
    find_version(path, text)
    return VERSION_FILES[path].sub(lambda m: f"{m[1]}{version}{m[3]}", text)


# ------------------------------------------------------------------------- small helpers


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
        return (
            f"{branch} is {_commits(ahead)} ahead of {upstream}; push them (and let CI pass) "
            "or drop them first"
        )
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


def _commits(count: int) -> str:
    return f"{count} commit" + ("" if count == 1 else "s")


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no error message"


def write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one rename, keeping its mode, so it is never half written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.chmod(tmp, path.stat().st_mode & 0o7777)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


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

    def toplevel(self) -> Path:
        proc = self._call(["rev-parse", "--show-toplevel"])
        if proc.returncode != 0:
            raise ReleaseError(f"{self.cwd} is not inside a git work tree")
        return Path(proc.stdout.strip())

    def has_remote(self, remote: str) -> bool:
        return remote in self.run("remote").split()

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

    def remote_refs(self, remote: str, *refs: str) -> dict[str, str]:
        """What the remote's refs point at now (``^{}`` lines name a tag's commit)."""
        out = self.run("ls-remote", remote, *refs)
        return {name: oid for oid, _, name in (line.partition("\t") for line in out.splitlines())}

    def has_commit(self, oid: str) -> bool:
        return self.succeeds("cat-file", "-e", f"{oid}^{{commit}}")

    def fetch_objects(self, remote: str, branch: str) -> None:
        # An empty --refmap and no FETCH_HEAD: the objects arrive, no ref moves.
        self.run(
            "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--refmap=",
            remote, f"refs/heads/{branch}",
        )  # fmt: skip

    def ahead_behind(self, local: str, other: str) -> tuple[int, int]:
        counts = self.run("rev-list", "--left-right", "--count", f"{local}...{other}")
        ahead, behind = counts.split()
        return int(ahead), int(behind)

    def local_tag_exists(self, tag: str) -> bool:
        return self.succeeds("rev-parse", "--verify", "--quiet", f"refs/tags/{tag}")

    def head(self) -> str:
        return self.run("rev-parse", "HEAD").strip()


# --------------------------------------------------------------------------------- release


@dataclass(frozen=True)
class WriteVersion:
    """A step: put ``version`` on the version line of every file in VERSION_FILES."""

    version: Version

    def describe(self, *, dry_run: bool) -> str:
        verb = "would write" if dry_run else "writing"
        return f"{verb} {self.version} into {', '.join(VERSION_FILES)}"

    def run(self, git: Git) -> None:
        for path in VERSION_FILES:
            text = read_text(git.cwd / path, path)
            try:
                write_atomically(git.cwd / path, with_version(path, text, self.version))
            except OSError as exc:
                raise ReleaseError(f"cannot write {path}: {exc}") from exc


@dataclass(frozen=True)
class GitCommand:
    """A step: one git command, shown exactly as it runs."""

    argv: tuple[str, ...]

    def describe(self, *, dry_run: bool) -> str:
        return f"{'would run' if dry_run else 'running'}: {shlex.join(self.argv)}"

    def run(self, git: Git) -> None:
        git.run(*self.argv[1:])


@dataclass(frozen=True)
class Plan:
    """Everything the checks found, and the steps that follow from it."""

    tag: str
    version: Version
    next_version: Version
    current_version: str
    remote: str
    branch: str
    commit: str

    def steps(self) -> list[WriteVersion | GitCommand]:
        files = tuple(VERSION_FILES)
        branch_ref, tag_ref = f"refs/heads/{self.branch}", f"refs/tags/{self.tag}"
        return [
            WriteVersion(self.version),
            GitCommand(("git", "commit", "--quiet", "--message", f"Release {self.tag}",
                        "--", *files)),
            GitCommand(("git", "tag", "--annotate", "--message", f"ai-trader {self.version}",
                        self.tag)),
            WriteVersion(self.next_version),
            GitCommand(("git", "commit", "--quiet", "--message",
                        f"Back to development: {self.next_version}", "--", *files)),
            # Explicit refspecs push these two refs only; --atomic sends both or neither,
            # and --no-follow-tags keeps a push.followTags setting from adding other tags.
            GitCommand(("git", "push", "--atomic", "--no-follow-tags", self.remote,
                        f"{branch_ref}:{branch_ref}", f"{tag_ref}:{tag_ref}")),
        ]  # fmt: skip


def check(git: Git, tag: str, remote: str, default_branch: str | None) -> Plan:
    """Run every check in order; return what to do, or raise the first refusal."""
    version = version_from_tag(tag)
    if not git.has_remote(remote):
        raise ReleaseError(f"no git remote named {remote!r} (see `git remote -v`; use --remote)")

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

    # The tree is clean, so the files read here are the ones committed at HEAD.
    texts = {path: read_text(git.cwd / path, path) for path in VERSION_FILES}
    for path, text in texts.items():
        find_version(path, text)
    current = find_version(PACKAGE_VERSION_FILE, texts[PACKAGE_VERSION_FILE])
    check_newer(version, current)

    commit = git.head()
    upstream = f"{remote}/{branch}"
    remote_tip = git.remote_refs(remote, f"refs/heads/{branch}").get(f"refs/heads/{branch}")
    if remote_tip is None:
        raise ReleaseError(f"{remote} has no branch {branch!r}; push it first")
    if remote_tip != commit:
        if not git.has_commit(remote_tip):
            git.fetch_objects(remote, branch)
        if not git.has_commit(remote_tip):
            raise ReleaseError(f"{upstream} moved while it was being checked; run again")
        divergence = describe_divergence(branch, upstream, *git.ahead_behind(commit, remote_tip))
        if divergence:
            raise ReleaseError(divergence)

    if git.local_tag_exists(tag):
        raise ReleaseError(f"tag {tag} already exists locally; versions are released once")
    if f"refs/tags/{tag}" in git.remote_refs(remote, f"refs/tags/{tag}"):
        raise ReleaseError(f"tag {tag} already exists on {remote}; versions are released once")

    return Plan(
        tag=tag,
        version=version,
        next_version=next_dev_version(version),
        current_version=current,
        remote=remote,
        branch=branch,
        commit=commit,
    )


def read_text(path: Path, name: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ReleaseError(f"cannot read {name}: {exc}") from exc


def execute(git: Git, plan: Plan) -> None:
    """Run the plan's steps; on any failure put the branch and tags back as they were."""
    try:
        for step in plan.steps():
            print(step.describe(dry_run=False), flush=True)
            step.run(git)
    except (ReleaseError, KeyboardInterrupt) as exc:
        # The tree was clean when the checks ran, so a hard reset loses only this run's work.
        git.succeeds("reset", "--quiet", "--hard", plan.commit)
        if git.local_tag_exists(plan.tag):
            git.succeeds("tag", "--delete", plan.tag)
        reason = str(exc) if isinstance(exc, ReleaseError) else "interrupted"
        raise ReleaseError(
            f"{reason} (undone: {plan.branch} is back at {plan.commit[:12]}, "
            f"no tag {plan.tag}, nothing pushed)"
        ) from exc
    print(
        f"pushed refs/heads/{plan.branch} (now {plan.next_version}) and refs/tags/{plan.tag} "
        f"to {plan.remote}, and nothing else"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Check the repository, then set and commit the version, tag it, move the branch "
            "on to the next .dev0 version and push the branch and the tag."
        ),
    )
    parser.add_argument("tag", metavar="vX.Y.Z", help="the release tag, e.g. v1.0.0 or v1.1.0rc1")
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
        help="run the checks and print the exact steps; change nothing",
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        git = Git(Git(Path.cwd()).toplevel())
        plan = check(git, args.tag, args.remote, args.default_branch)
        print(
            f"releasing {plan.tag} from {plan.branch} at {plan.commit[:12]}: "
            f"{plan.current_version} -> {plan.version}, then {plan.next_version}"
        )
        if args.dry_run:
            for step in plan.steps():
                print(step.describe(dry_run=True))
            print("dry run: nothing was changed")
            return 0
        execute(git, plan)
    except ReleaseError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
