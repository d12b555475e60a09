"""Settings read from the environment, with the defaults DESIGN.md gives.

Everything that talks to the outside world takes its address from here, so the
tests can point the product at local stand-ins through the same variables a
user would set.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ai_trader.errors import UserError

DEFAULT_PORTS = {"math": 8000, "search": 8001, "trade": 8002, "prices": 8003}
# Each service's readiness route. Defined here, not in services.common, so that the
# container's healthcheck reads it without importing the MCP SDK.
HEALTH_PATH = "/health"
PORT_VARIABLES = {
    "math": "MATH_HTTP_PORT",
    "search": "SEARCH_HTTP_PORT",
    "trade": "TRADE_HTTP_PORT",
    "prices": "GETPRICE_HTTP_PORT",
}


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    alphavantage_api_key: str | None
    alphavantage_base_url: str
    alphavantage_min_interval: float
    jina_api_key: str | None
    jina_search_base_url: str
    jina_reader_base_url: str
    openai_api_key: str | None
    openai_api_base: str | None
    service_host: str
    client_host: str
    ports: dict[str, int]
    runtime_env_path: Path
    ready_timeout: float

    def service_url(self, name: str) -> str:
        return f"http://{self.client_host}:{self.ports[name]}/mcp"


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise UserError(f"{name} must be a number, got {raw!r}") from None
    if value < 0:
        raise UserError(f"{name} must not be negative, got {raw!r}")
    return value


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    if not raw.isdigit() or not 0 < int(raw) < 65536:
        raise UserError(f"{name} must be a port number between 1 and 65535, got {raw!r}")
    return int(raw)


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (the process environment by default)."""
    env = os.environ if env is None else env
    data_dir = Path(_text(env, "DATA_DIR") or "data").resolve()
    runtime = _text(env, "RUNTIME_ENV_PATH")
    runtime_path = Path(runtime) if runtime else data_dir / "agent_data" / ".runtime_env.json"
    if not runtime_path.is_absolute():
        raise UserError(f"RUNTIME_ENV_PATH must be an absolute path, got {runtime!r}")
    return Settings(
        data_dir=data_dir,
        # The original project spells it ALPHAADVANTAGE; accept the usual spelling too.
        alphavantage_api_key=_text(env, "ALPHAADVANTAGE_API_KEY")
        or _text(env, "ALPHAVANTAGE_API_KEY"),
        alphavantage_base_url=_text(env, "ALPHAVANTAGE_BASE_URL")
        or "https://www.alphavantage.co/query",
        # The free tier allows about five requests a minute.
        alphavantage_min_interval=_number(env, "ALPHAVANTAGE_MIN_INTERVAL", 12.0),
        jina_api_key=_text(env, "JINA_API_KEY"),
        jina_search_base_url=_text(env, "JINA_SEARCH_BASE_URL") or "https://s.jina.ai",
        jina_reader_base_url=_text(env, "JINA_READER_BASE_URL") or "https://r.jina.ai",
        openai_api_key=_text(env, "OPENAI_API_KEY"),
        openai_api_base=_text(env, "OPENAI_API_BASE"),
        service_host=_text(env, "SERVICE_HOST") or "127.0.0.1",
        client_host=_text(env, "SERVICE_CLIENT_HOST") or "127.0.0.1",
        ports={name: _port(env, var, DEFAULT_PORTS[name]) for name, var in PORT_VARIABLES.items()},
        runtime_env_path=runtime_path,
        ready_timeout=_number(env, "READY_TIMEOUT", 30.0),
    )
