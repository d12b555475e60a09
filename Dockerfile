# ai-trader: the AI-Trader benchmark in one image.
# Builds with the classic builder and with buildx (no BuildKit-only syntax).
# On a host that cannot pull the default base, `nox -s build` builds a local one.
ARG BASE_IMAGE=python:3.13.13-slim-trixie

# --- builder: the locked dependencies in a virtual environment --------------------
FROM ${BASE_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore
WORKDIR /build
# The pattern matches the optional wheelhouse/ folder when it exists and nothing
# otherwise, so a plain clone (no wheelhouse) builds too; its wheels land in wheels/.
COPY requirements/runtime.txt wheelhous[e] wheels/
# Wheels in the build context (made on the host by `nox -s build`) win; without
# them the same hash-pinned lock installs from the index.
RUN python3 -m venv /opt/venv \
    && mv wheels/runtime.txt requirements.txt \
    && if ls wheels/*.whl >/dev/null 2>&1; then \
         set -- --no-index --find-links wheels; \
       fi \
    && /opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary=:all: "$@" \
         -r requirements.txt \
    && /opt/venv/bin/pip uninstall --yes pip

# --- final: the environment and the app, run as a non-root user -------------------
FROM ${BASE_IMAGE}
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/app/src \
    DATA_DIR=/app/data \
    LOG_DIR=/app/logs \
    SERVICE_HOST=0.0.0.0
RUN groupadd --gid 1000 trader \
    && useradd --uid 1000 --gid 1000 --home-dir /app --no-create-home \
         --shell /usr/sbin/nologin trader \
    && mkdir -p /app/data/agent_data /app/logs \
    && chown -R 1000:1000 /app/data /app/logs
COPY --from=builder /opt/venv /opt/venv
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
COPY src/ /app/src/
# Bytecode now (the runtime user cannot write it next to the sources), then a smoke
# test: the package and its heavy dependencies import in this image.
RUN python -m compileall -q /app/src \
    && python -c "import ai_trader.cli, ai_trader.services.launcher, ai_trader.agent.runner, \
ai_trader.dashboard.app"
# The image's own user. Compose starts the container as root instead, only so that the
# entrypoint can hand the mounted folders to their owner and drop to that user (setpriv,
# from util-linux, which Debian's base images carry).
USER 1000:1000

# Last, so a new revision changes only this metadata and no layer above.
ARG VERSION=0.0.0 REVISION=unknown CREATED=unknown SOURCE=https://github.com/ai-trader/ai-trader
LABEL org.opencontainers.image.title="ai-trader" \
      org.opencontainers.image.description="The AI-Trader benchmark: agents trade the NASDAQ-100 through four MCP services" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}"
