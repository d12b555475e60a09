"""Deployment defects the matrix must notice, each with the session that must catch it.

Each defect is one or more edits of a fresh copy of the tree. An edit names a small,
stable snippet that must occur exactly once in the file (or, for a glob, in exactly one of
the files it matches); when the snippet is gone (the code moved or was rewritten) the
defect reports "mutant no longer applies" and the session fails, so the list is kept up
to date rather than silently passing. To re-target one, find the new home of the logic and
change `path`/`old`; the `what` line says what the breakage means.

`select` narrows the session to the tests that prove the point (pytest arguments after
`--`). The narrowest selection is used because each integration run builds the image and
brings up the stand-ins: running the whole suite for every defect would take hours on two
cores. The control run (the unbroken tree with every selection together) proves each
selection passes when nothing is broken, so a failure under a defect is the defect's doing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Edit:
    path: str  # relative to the tree's root; a glob picks the one file holding the snippet
    old: str
    new: str


@dataclass(frozen=True)
class Defect:
    id: str
    what: str
    edits: tuple[Edit, ...]
    session: str  # the nox session that must catch it
    select: tuple[str, ...] = ()  # pytest arguments narrowing that session


DEFECTS: tuple[Defect, ...] = (
    # --- Dockerfile ---------------------------------------------------------------------
    Defect(
        "dockerfile-runs-as-root",
        "the image drops its non-root USER",
        (Edit("Dockerfile", "USER 1000:1000\n", ""),),
        "integration",
        ("-k", "non_root or image_user"),
    ),
    Defect(
        "dockerfile-healthcheck-never-fails",
        "the image's HEALTHCHECK is a command that always succeeds",
        (
            Edit(
                "Dockerfile",
                'CMD ["/app/entrypoint.sh", "exec", "python", "-m", "ai_trader", "healthcheck"]',
                'CMD ["true"]',
            ),
        ),
        "integration",
        ("-k", "image_health_check"),
    ),
    Defect(
        "dockerfile-bakes-a-key",
        "a credential is baked into the image's config with ENV",
        (
            Edit(
                "Dockerfile",
                "    SERVICE_HOST=0.0.0.0\n",
                "    SERVICE_HOST=0.0.0.0 \\\n    OPENAI_API_KEY=sk-baked-into-the-image\n",
            ),
        ),
        "integration",
        ("-k", "credential_env_or_arg"),
    ),
    Defect(
        "build-arg-carries-a-key",
        "compose passes a key from .env as a build argument that a RUN step sees",
        (
            Edit(
                "docker-compose.yml",
                "        REVISION: ${AI_TRADER_REVISION:-unknown}\n",
                "        REVISION: ${AI_TRADER_REVISION:-unknown}\n"
                "        OPENAI_API_KEY: ${OPENAI_API_KEY:-}\n",
            ),
            Edit(
                "Dockerfile",
                "COPY entrypoint.sh /app/entrypoint.sh\n",
                "ARG OPENAI_API_KEY\nCOPY entrypoint.sh /app/entrypoint.sh\n",
            ),
        ),
        "integration",
        ("-k", "test_secrets"),
    ),
    Defect(
        "dockerfile-shell-form-entrypoint",
        "the entrypoint is in shell form: `sh -c` drops the command (the config) and passes "
        "no signal on",
        (
            Edit(
                "Dockerfile",
                'ENTRYPOINT ["/app/entrypoint.sh"]\n',
                "ENTRYPOINT /app/entrypoint.sh configs/default_config.json\n",
            ),
        ),
        "integration",
        ("-k", "ends_through_the_cleanup and compose-stop"),
    ),
    # --- compose ------------------------------------------------------------------------
    Defect(
        "compose-no-grace-period",
        "compose gives the run no time to stop (SIGKILL at once, no cleanup, exit 137)",
        (
            Edit(
                "docker-compose.yml", "    stop_grace_period: 20s\n", "    stop_grace_period: 0s\n"
            ),
        ),
        "integration",
        ("-k", "ends_through_the_cleanup and compose-stop"),
    ),
    Defect(
        "compose-publishes-on-every-interface",
        "the unauthenticated trade service is published on 0.0.0.0 by default",
        (
            Edit(
                "docker-compose.yml",
                '"${AI_TRADER_BIND:-127.0.0.1}:${AI_TRADER_TRADE_PORT-8002}:8002"',
                '"${AI_TRADER_BIND:-0.0.0.0}:${AI_TRADER_TRADE_PORT-8002}:8002"',
            ),
        ),
        "integration",
        ("-k", "loopback_only"),
    ),
    Defect(
        "compose-restarts-a-finished-run",
        "a finished run starts again by itself, in a loop",
        (
            Edit(
                "docker-compose.yml",
                "restart: ${AI_TRADER_RESTART:-no}",
                "restart: ${AI_TRADER_RESTART:-always}",
            ),
        ),
        "integration",
        ("-k", "does_not_start_again"),
    ),
    Defect(
        "compose-healthcheck-never-fails",
        "the run's health check is a command that always succeeds",
        (
            Edit(
                "docker-compose.yml",
                'test: ["CMD", "/app/entrypoint.sh", "exec", "python", "-m", "ai_trader", '
                '"healthcheck"]',
                'test: ["CMD", "true"]',
            ),
        ),
        "integration",
        ("-k", "frozen_serve_process"),
    ),
    Defect(
        "compose-dashboard-healthcheck-never-fails",
        "the dashboard's health check is a command that always succeeds",
        (
            Edit(
                "docker-compose.yml",
                "urllib.request.urlopen('http://127.0.0.1:8888/health', timeout=3)",
                "pass",
            ),
        ),
        "integration",
        ("-k", "frozen_dashboard"),
    ),
    Defect(
        "compose-forgets-the-data-mount",
        "the run's data folder is not mounted: positions vanish with the container",
        (
            Edit(
                "docker-compose.yml",
                "      - ${AI_TRADER_DATA_DIR:-./data}:/app/data\n      - ${AI_TRADER_LOGS_DIR",
                "      - ${AI_TRADER_LOGS_DIR",
            ),
        ),
        "integration",
        ("-k", "survive_down_then_up"),
    ),
    # --- entrypoint ---------------------------------------------------------------------
    Defect(
        "entrypoint-no-term-trap",
        "SIGTERM kills the entrypoint outright: no cleanup runs",
        (Edit("entrypoint.sh", "trap 'on_signal TERM 15' TERM\n", ""),),
        "integration",
        ("-k", "ends_through_the_cleanup and compose-stop"),
    ),
    Defect(
        "entrypoint-cleanup-leaves-services",
        "the cleanup forgets to stop the services (they die by SIGKILL with the container)",
        (Edit("entrypoint.sh", '    stop_pid "$SERVICES_PID" services\n', ""),),
        "integration",
        ("-k", "ends_through_the_cleanup and compose-down"),
    ),
    Defect(
        "entrypoint-signal-exits-zero",
        "a stopped run reports success",
        (Edit("entrypoint.sh", "    exit $((128 + $2))\n", "    exit 0\n"),),
        "integration",
        ("-k", "ends_through_the_cleanup and ctrl-c"),
    ),
    Defect(
        "entrypoint-unquoted-command",
        "the command array is expanded unquoted (word splitting)",
        (
            Edit(
                "entrypoint.sh",
                '"${AI_TRADER[@]}" serve --market "$MARKET" &',
                '${AI_TRADER[@]} serve --market "$MARKET" &',
            ),
        ),
        "lint",
    ),
    # --- Kubernetes manifests -----------------------------------------------------------
    Defect(
        "kubernetes-writable-root",
        "the run's pods get a writable root file system",
        (
            Edit(
                "deploy/kubernetes/run.yaml",
                "readOnlyRootFilesystem: true",
                "readOnlyRootFilesystem: false",
            ),
        ),
        "lint",
    ),
    Defect(
        "kubernetes-job-completions-off",
        "the run's Job has more completions than the config has enabled models",
        (
            Edit(
                "deploy/kubernetes/run.yaml",
                "  completions: 1\n  parallelism: 1\n",
                "  completions: 2\n  parallelism: 2\n",
            ),
        ),
        "lint",
    ),
    # --- .dockerignore ------------------------------------------------------------------
    Defect(
        "dockerignore-admits-env-files",
        "the build context admits .env and *.env files from the folders it copies",
        (Edit(".dockerignore", "**/.env\n**/.env.*\n**/*.env\n", ""),),
        "integration",
        ("-k", "test_secrets"),
    ),
    # --- workflows ----------------------------------------------------------------------
    Defect(
        "workflow-action-by-tag",
        "a workflow uses an action by a movable tag, not a commit",
        (
            Edit(
                ".github/workflows/ci.yml",
                "actions/setup-python@ece7cb06caefa5fff74198d8649806c4678c61a1  # v6.3.0\n"
                "        with:\n          python-version: ${{ matrix.python }}",
                "actions/setup-python@v6\n"
                "        with:\n          python-version: ${{ matrix.python }}",
            ),
        ),
        "tests-3.11",
        ("-k", "pinned"),
    ),
    Defect(
        "workflow-token-left-behind",
        "a checkout keeps the token in .git/config",
        (
            Edit(
                ".github/workflows/ci.yml",
                "persist-credentials: false\n      - name: Set up Python ${{ matrix.python }}",
                "persist-credentials: true\n      - name: Set up Python ${{ matrix.python }}",
            ),
        ),
        "tests-3.11",
        ("-k", "credentials"),
    ),
    Defect(
        "workflow-skips-integration",
        "CI stops running the container suite the bare nox runs",
        (Edit(".github/workflows/ci.yml", "run: nox -s integration\n", "run: nox -s build\n"),),
        "tests-3.11",
        ("-k", "ci_runs_every_session"),
    ),
    Defect(
        "workflow-write-all",
        "a workflow's token may write everything by default",
        (Edit(".github/workflows/ci.yml", "permissions: {}\n", "permissions: write-all\n"),),
        "tests-3.11",
        ("-k", "no_permissions_at_the_top_level"),
    ),
    # --- the payload: resume and fetch --------------------------------------------------
    Defect(
        "resume-redoes-the-last-day",
        "a rerun trades the last completed day again (duplicate trades)",
        (Edit("src/ai_trader/**/*.py", "after < day <= end", "after <= day <= end"),),
        "integration",
        ("-k", "longer_range_resumes"),
    ),
    Defect(
        "resume-forgets-progress",
        "a rerun starts again from the first day",
        (Edit("src/ai_trader/**/*.py", 'ledger.last_date() or ""', '""'),),
        "integration",
        ("-k", "survive_a_restart"),
    ),
    Defect(
        "fetch-refreshes-current-files",
        "every start downloads every symbol again, current or not",
        (
            Edit(
                "src/ai_trader/**/*.py",
                "if file_is_current(path, today, time.time(), symbol, calendar):",
                "if False:",
            ),
        ),
        "integration",
        ("-k", "downloads_nothing_that_is_current"),
    ),
    Defect(
        "fetch-gives-up-on-a-rate-limit",
        "a rate-limit reply is taken as a final error, not retried",
        (
            Edit(
                "src/ai_trader/**/*.py",
                'raise Retryable(f"rate limited: {payload[key]}")',
                'raise Failed(f"rate limited: {payload[key]}")',
            ),
        ),
        "integration",
        ("-k", "rate_limit_reply_is_retried"),
    ),
    Defect(
        "fetch-keeps-an-unusable-reply",
        "a reply the merge would reject replaces a good price file",
        (
            Edit(
                "src/ai_trader/**/*.py", 'raise Failed(f"unusable reply: {exc}") from None', "pass"
            ),
        ),
        "tests-3.11",
        ("-k", "alphavantage"),
    ),
)
