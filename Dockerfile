# ai-trader: the AI-Trader benchmark in one image.
# Builds with the classic builder and with buildx (no BuildKit-only syntax).
# On a host that cannot pull the default base, `nox -s build` builds a local one.
ARG BASE_IMAGE=python:3.13.13-slim-trixie

# --- builder: the locked dependencies, then the app ---------------------------------
FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /build
# The pattern matches the optional wheelhouse/ folder when it exists and nothing
# otherwise, so a plain clone (no wheelhouse) builds too; its wheels land in wheels/.
COPY requirements/runtime.txt requirements/build.txt wheelhous[e] wheels/
# Wheels in the build context (made on the host by `nox -s build`) win; without
# them the same hash-pinned locks install from the index. /opt/build holds pip and
# the build backend (locked too) and stays in this stage; /opt/venv gets no pip. Its
# .pth file puts /opt/app, where the app goes below, on the venv's path.
RUN python3 -m venv /opt/venv \
    && python3 -m venv /opt/build \
    && mv wheels/runtime.txt wheels/build.txt . \
    && if ls wheels/*.whl >/dev/null 2>&1; then \
         set -- --no-index --find-links wheels; \
       fi \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: "$@" \
         -r runtime.txt \
    && /opt/venv/bin/pip uninstall --yes pip \
    && /opt/build/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: "$@" \
         -r build.txt \
    && /opt/venv/bin/python -c "import pathlib, sysconfig; \
pathlib.Path(sysconfig.get_path('purelib'), 'ai_trader_app.pth').write_text('/opt/app\n')"
# The app, after the dependencies (it changes far more often): built from this source
# into a wheel and installed as a package for the venv's Python, in a folder of its own
# so that a code change leaves the dependency layer of the final image cached.
# `ai-trader` is on PATH, nothing needs PYTHONPATH, and pip writes the bytecode.
COPY pyproject.toml README.md app/
COPY src/ app/src/
RUN /opt/build/bin/pip wheel --no-cache-dir --no-deps --no-build-isolation \
         --wheel-dir dist ./app \
    && /opt/build/bin/pip --python /opt/venv/bin/python install --no-cache-dir --no-deps \
         --no-index --target /opt/app dist/ai_trader-*.whl

# --- runtime: the environment, everything of the final image but the app -------------
# A stage of its own so that the debug image below shares it; the final stage, last in
# this file, adds the app on top, exactly as when it was one stage.
FROM ${BASE_IMAGE} AS runtime
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/app/bin:/opt/venv/bin:$PATH \
    DATA_DIR=/app/data \
    LOG_DIR=/app/logs \
    SERVICE_HOST=0.0.0.0
RUN groupadd --gid 1000 trader \
    && useradd --uid 1000 --gid 1000 --home-dir /app --no-create-home \
         --shell /usr/sbin/nologin trader \
    && mkdir -p /app/data /app/logs \
    && chown -R 1000:1000 /app/data /app/logs
WORKDIR /app
# Metadata before the code: a code change then rebuilds only the layers below.
# The four MCP services, and the dashboard (`ai-trader dashboard`).
EXPOSE 8000 8001 8002 8003 8888
# Through the entrypoint, so that a container started as root checks as the run's user.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
    CMD ["/app/entrypoint.sh", "exec", "python", "-m", "ai_trader", "healthcheck"]
ENTRYPOINT ["/app/entrypoint.sh"]
CMD ["configs/default_config.json"]
COPY entrypoint.sh /app/entrypoint.sh
COPY configs/ /app/configs/
# The dependencies (cached while the locks stay), then the app.
COPY --from=builder /opt/venv /opt/venv

# --- debug: the same image plus py-spy, curl, ps and a file watcher ------------------
# For development only: `docker build --target debug .`, or compose.dev.yml, whose
# services restart on a source change. The classic builder (no BuildKit) builds this
# stage in every build, the default one too, so it must cost that build next to nothing:
# its layers depend on neither the app nor the revision, so they stay cached; its packages
# come from debugtools/ when `nox -s build` filled it (the wheels of requirements/debug.txt
# and the .deb files this base lacks for curl and procps), so the build goes to no
# network; and it is short (every step costs even when cached). What is left is the
# larger build context (those 9 MB). Without that folder (a plain clone) pip and apt fetch
# the same packages. Its first layer keeps those files: no BuildKit-only mount to avoid
# it, and this image is never shipped.
FROM runtime AS debug
COPY requirements/debug.txt debugtool[s] /tmp/debug/
# py-spy and watchfiles in a venv of their own, apart from the app's, linked onto PATH
# after it. curl and procps unpinned: the base's own Debian release decides their
# versions (a pin would break at its next point release), as for every package of the base.
# hadolint ignore=DL3008
RUN if ls /tmp/debug/*.deb >/dev/null 2>&1; then \
         dpkg --install /tmp/debug/*.deb; \
       else \
         apt-get update \
         && apt-get install --yes --no-install-recommends curl procps \
         && rm -rf /var/lib/apt/lists/*; \
       fi \
    && if ls /tmp/debug/*.whl >/dev/null 2>&1; then \
         set -- --no-index --find-links /tmp/debug; \
       fi \
    && python3 -m venv /opt/devtools \
    && /opt/devtools/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: "$@" \
         -r /tmp/debug/debug.txt \
    && /opt/devtools/bin/pip uninstall --yes pip \
    && ln -s /opt/devtools/bin/py-spy /opt/devtools/bin/watchfiles /usr/local/bin/ \
    && rm -rf /tmp/debug \
    && curl --version && /usr/bin/ps --version && py-spy --version && watchfiles --version
# Last, as in the final stage: a code change rebuilds only this copy here.
COPY --from=builder /opt/app /opt/app
# The image's user (its group, 1000, from /etc/passwd), as in the final stage.
USER 1000

# --- final: the runtime and the app, run as a non-root user (the default target) ------
FROM runtime
COPY --from=builder /opt/app /opt/app
# A smoke test: the entry point runs, and the package and its heavy dependencies import.
RUN ai-trader --version \
    && python -c "import ai_trader.cli, ai_trader.services.launcher, ai_trader.agent.runner, \
ai_trader.dashboard.app"
# The image's own user. Compose starts the container as root instead, only so that the
# entrypoint can hand the mounted folders to their owner and drop to that user (setpriv,
# from util-linux, which Debian's base images carry).
USER 1000:1000

# Last, so a new revision changes only this metadata and no layer above.
ARG VERSION=0.0.0 REVISION=unknown CREATED=unknown SOURCE=https://github.com/ai-trader/ai-trader
# The revision a run records in its manifest (run.json).
ENV AI_TRADER_REVISION=${REVISION}
LABEL org.opencontainers.image.title="ai-trader" \
      org.opencontainers.image.description="The AI-Trader benchmark: agents trade the NASDAQ-100 through four MCP services" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}"
