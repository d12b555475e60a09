"""What the nox sessions need from the host, and the command that provides it.

The noxfile looks at the host (which commands exist and work, who runs nox, which system)
and hands the facts to these functions, which decide what is missing, whether this host
can install it itself (root on Debian or Ubuntu, through apt), and otherwise the one line
that names what is missing and how to get it. They have no side effects, so
tests/unit/test_bootstrap.py checks every decision without Docker, root or apt.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

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
