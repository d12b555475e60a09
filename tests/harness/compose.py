"""`docker compose` for one project, as both container suites drive it.

One class for the integration suite (whose project pytest-docker also brings down) and the
conformance suite (which brings its projects down itself): the compose binary, the files,
the project name, an env file (the repository's .env, a developer's keys, must not apply),
and an environment this run controls, with nothing from the developer's shell leaking in
for the variables named as controlled.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

DOWN_TIMEOUT = 300  # seconds for `down` before it is killed
# Variables the product reads: every stack sets each one itself, so nothing from the
# developer's shell or .env (a real key, say) leaks into a test.
CONTROLLED = (
    "ALPHAADVANTAGE_API_KEY",
    "ALPHAVANTAGE_API_KEY",
    "OPENAI_API_KEY",
    "JINA_API_KEY",
    "AGENT_MAX_STEP",
    "INIT_DATE",
    "END_DATE",
    "AI_TRADER_CONFIG",
    "AI_TRADER_UID",
    "AI_TRADER_GID",
    "AI_TRADER_RESTART",
    "AI_TRADER_BIND",
    "AI_TRADER_LOG_FORMAT",
)


def compose_command() -> list[str]:
    """The compose binary: AI_TRADER_COMPOSE (what nox installs), else `docker compose`."""
    return shlex.split(os.environ.get("AI_TRADER_COMPOSE") or "docker compose")


class Compose:
    """`docker compose [--env-file F] -f ... -p PROJECT ARGS` with a controlled environment.

    `command` is the compose binary and its own options, as a list or as one shell-quoted
    string (pytest-docker's form). The variables of CONTROLLED, and those `controlled`
    adds, are never taken from the shell; `env` is laid over the rest, and each call may
    lay more over that.
    """

    def __init__(
        self,
        command: str | Sequence[str],
        files: Iterable[Path | str],
        project: str,
        *,
        env_file: Path | None = None,
        env: Mapping[str, str] | None = None,
        controlled: Iterable[str] = (),
        timeout: float = 300,
    ) -> None:
        self.command = shlex.split(command) if isinstance(command, str) else list(command)
        self.files = [str(path) for path in files]
        self.project = project
        self.env_file = env_file
        self.controlled = frozenset(CONTROLLED).union(controlled)
        self.timeout = timeout
        inherited = {k: v for k, v in os.environ.items() if k not in self.controlled}
        self.env = {**inherited, **(env or {})}
        env_args = ["--env-file", str(env_file)] if env_file is not None else []
        self.argv = [*self.command, *env_args]
        self.argv += [arg for path in self.files for arg in ("-f", path)] + ["-p", project]

    def with_file(self, *paths: Path | str) -> Compose:
        """The same project with more compose files laid over the others."""
        other = Compose(self.command, [*self.files, *map(str, paths)], self.project,
                        env_file=self.env_file, controlled=self.controlled,
                        timeout=self.timeout)  # fmt: skip
        other.env = dict(self.env)
        return other

    def __call__(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float | None = None,
    ) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*self.argv, *args],
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=self.timeout if timeout is None else timeout,
            check=False,
        )
        if check and done.returncode != 0:
            raise ComposeFailed(
                f"compose {' '.join(args)} exited {done.returncode}:\n"
                f"{done.stderr.strip()[-4000:]}\n{done.stdout.strip()[-4000:]}"
            )
        return done

    def popen(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.Popen[str]:
        """A compose command left running (an attached `up`), its output kept in a pipe."""
        return subprocess.Popen(
            [*self.argv, *args],
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def down(self) -> None:
        """Remove the project (containers, networks, volumes), even through a second Ctrl-C.

        A session of its own: a second Ctrl-C on the terminal must not cut the cleanup,
        which finishes first; the interrupt is raised again after it.
        """
        process = subprocess.Popen(
            [*self.argv, "down", "--volumes", "--remove-orphans", "--timeout", "5"],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        interrupted = False
        while True:
            try:
                _, err = process.communicate(timeout=DOWN_TIMEOUT)
                break
            except KeyboardInterrupt:
                interrupted = True  # finish the cleanup first, then stop the run
            except subprocess.TimeoutExpired:
                process.kill()
                _, err = process.communicate()
                break
        if process.returncode != 0:
            print(f"compose down of {self.project} exited {process.returncode}: {err!r}")
        if interrupted:
            raise KeyboardInterrupt

    def port(self, service: str, container_port: int) -> int:
        """The host port publishing the service's port, which must be on loopback."""
        out = self("port", service, str(container_port), timeout=60).stdout.strip()
        host, _, port = out.rpartition(":")
        if host != "127.0.0.1":
            raise ComposeFailed(f"{service}:{container_port} is published on {out!r}, not loopback")
        return int(port)

    def container_id(self, service: str) -> str:
        return self("ps", "--all", "--quiet", service, timeout=60).stdout.strip()

    def logs(self, service: str) -> str:
        done = self("logs", "--no-color", "--no-log-prefix", service, check=False, timeout=60)
        return done.stdout + done.stderr


class ComposeFailed(AssertionError):
    """A compose command that had to succeed did not (a failed check, not a broken test)."""
