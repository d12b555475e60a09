"""Settings read from the environment, with the defaults DESIGN.md gives.

Everything that talks to the outside world takes its address from here, so the
tests can point the product at local stand-ins through the same variables a
user would set.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ai_trader.errors import UserError
from ai_trader.layout import books_dir

# Models a run trades at once. LLM runs spend most of a day waiting on the model, so
# several in flight cut a sweep to about its slowest model; more than a few mostly
# meets the model API's rate limits.
DEFAULT_JOBS = 4
MAX_JOBS = 64


@dataclass(frozen=True)
class ServiceSpec:
    name: str
    port_variable: str  # the port it listens on (the original AI-Trader's variable)
    default_port: int
    # Where clients reach it when it runs apart from them (its own container: compose.split.yml,
    # Kubernetes); SERVICE_CLIENT_HOST when unset.
    host_variable: str
    # The host port compose publishes it on (docker-compose.yml; the product never reads
    # it). A name of its own, so that each variable means one thing everywhere.
    publish_variable: str


# The one table of the four MCP services. Client code (the agent, the health check)
# reads it from here, so it never imports the server stack to learn the names.
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec("math", "MATH_HTTP_PORT", 8000, "MATH_HTTP_HOST", "AI_TRADER_MATH_PORT"),
    ServiceSpec("search", "SEARCH_HTTP_PORT", 8001, "SEARCH_HTTP_HOST", "AI_TRADER_SEARCH_PORT"),
    ServiceSpec("trade", "TRADE_HTTP_PORT", 8002, "TRADE_HTTP_HOST", "AI_TRADER_TRADE_PORT"),
    ServiceSpec(
        "prices", "GETPRICE_HTTP_PORT", 8003, "GETPRICE_HTTP_HOST", "AI_TRADER_PRICES_PORT"
    ),
)
SERVICE_NAMES: tuple[str, ...] = tuple(spec.name for spec in SERVICES)
DEFAULT_PORTS = {spec.name: spec.default_port for spec in SERVICES}
PORT_VARIABLES = {spec.name: spec.port_variable for spec in SERVICES}
HOST_VARIABLES = {spec.name: spec.host_variable for spec in SERVICES}
# A service port of 0: `serve` binds a free port the system picks and names it in its
# listening line. Only serve takes it: a client cannot connect to port 0.
ANY_PORT = 0
DASHBOARD_PORT = 8888
DASHBOARD_PUBLISH_VARIABLE = "AI_TRADER_DASHBOARD_PORT"
# Every host port compose publishes, by the variable that chooses it.
PUBLISH_VARIABLES: dict[str, int] = {
    **{spec.publish_variable: spec.default_port for spec in SERVICES},
    DASHBOARD_PUBLISH_VARIABLE: DASHBOARD_PORT,
}
# Each service's cheapest route; the MCP endpoint is what readiness and health ask.
HEALTH_PATH = "/health"
MCP_PATH = "/mcp"
# Names every service and the dashboard accept in Host and Origin, on any port.
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
_HOST_NAME = re.compile(
    r"(?=.{1,253}\Z)[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
)


# Where the search service looks (SEARCH_PROVIDER): Jina's web search and reader, or Alpha
# Vantage's news feed (NEWS_SENTIMENT, which takes a time window).
JINA = "jina"
ALPHAVANTAGE = "alphavantage"
SEARCH_PROVIDERS: tuple[str, ...] = (JINA, ALPHAVANTAGE)

# Variables that override keys of the run config (the original AI-Trader's names).
CONFIG_OVERRIDES: tuple[tuple[str, str, str], ...] = (
    ("INIT_DATE", "date_range", "init_date"),
    ("END_DATE", "date_range", "end_date"),
    ("AGENT_MAX_STEP", "agent_config", "max_steps"),
)


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    alphavantage_api_key: str | None
    alphavantage_base_url: str
    alphavantage_min_interval: float
    jina_api_key: str | None
    jina_search_base_url: str
    jina_reader_base_url: str
    search_provider: str  # one of SEARCH_PROVIDERS
    openai_api_key: str | None
    openai_api_base: str | None
    service_host: str
    client_hosts: dict[str, str]  # where clients reach each service, by name
    ports: dict[str, int]
    ready_timeout: float
    allowed_hosts: frozenset[str]  # LOOPBACK_NAMES plus AI_TRADER_ALLOWED_HOSTS
    agent_jobs: int
    config_overrides: dict[str, dict[str, str]]  # section -> key -> value
    dashboard_host: str
    dashboard_port: int
    # Tushare Pro (China A-shares): the token, or None for the offline sample.
    tushare_token: str | None
    tushare_base_url: str
    tushare_min_interval: float
    # The environment the settings were read from, for the variables a config names (a
    # model's api_key_env). Never printed: it holds keys.
    environ: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def variable(self, name: str) -> str | None:
        """A key variable a config names, stripped, or read from the file its ``_FILE``
        form names (``secret``); None when neither is set."""
        return secret(self.environ, name)

    def service_url(self, name: str) -> str:
        """Where a client reaches the service; a port of 0 is a UserError (serve's own)."""
        if self.ports[name] == ANY_PORT:
            raise UserError(
                f"{PORT_VARIABLES[name]} is 0 (any free port, for serve only): give clients "
                "the port serve reports"
            )
        return f"http://{self.client_hosts[name]}:{self.ports[name]}{MCP_PATH}"

    def service_urls(self, names: Sequence[str] = SERVICE_NAMES) -> dict[str, str]:
        """The URLs of the services named (every one by default), by name; the first port
        of 0 is a UserError."""
        return {name: self.service_url(name) for name in names}

    @property
    def agent_data_dir(self) -> Path:
        """Where the agent's books live unless a config says otherwise."""
        return books_dir(self.data_dir)


def _text(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name, "").strip()
    return value or None


FILE_FORM = "_FILE"  # OPENAI_API_KEY_FILE: the file that holds OPENAI_API_KEY


def secret(env: Mapping[str, str], name: str) -> str | None:
    """A key: the variable ``name``, or the content of the file ``<name>_FILE`` names (the
    convention of the official database images, for Docker secrets), stripped. Both set is
    a UserError, and so is a file that cannot be read or is empty; a message names the
    variable and the path, never the content."""
    direct = _text(env, name)
    variable = f"{name}{FILE_FORM}"
    path = _text(env, variable)
    if path is None:
        return direct
    if direct is not None:
        raise UserError(f"{name} and {variable} are both set: give the key one way only")
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise UserError(f"{variable}: {path} does not exist") from None
    except UnicodeDecodeError:
        raise UserError(f"{variable}: {path} is not UTF-8 text") from None
    except OSError as exc:
        raise UserError(f"{variable}: cannot read {path} ({exc.strerror})") from None
    if not value:
        raise UserError(f"{variable}: {path} is empty")
    return value


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


def port_number(text: str) -> int:
    """``text`` as a TCP port; ValueError stating the rule (the CLI's options use it too)."""
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError("must be a port number between 1 and 65535")
    return int(text)


def service_port_number(text: str, who: str = "serve only") -> int:
    """``text`` as a server's port: a TCP port, or 0 (``ANY_PORT``) for the server to pick
    one (``who`` says which servers may)."""
    if text.isdigit() and int(text) == ANY_PORT:
        return ANY_PORT
    try:
        return port_number(text)
    except ValueError:
        raise ValueError(
            f"must be a port number between 1 and 65535, or 0 for any free port ({who})"
        ) from None


def listening_port_number(text: str) -> int:
    """The dashboard's ``--port``: a TCP port, or 0 for any free port (it says which)."""
    return service_port_number(text, "the dashboard names the one it takes")


def job_count(text: str) -> int:
    """``text`` as a number of models to trade at once; ValueError stating the rule."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_JOBS:
        raise ValueError(f"must be a whole number from 1 to {MAX_JOBS}")
    return int(text)


def _checked(env: Mapping[str, str], name: str, default: int, check: Callable[[str], int]) -> int:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        return check(raw)
    except ValueError as exc:
        raise UserError(f"{name} {exc}, got {raw!r}") from None


def _port(env: Mapping[str, str], name: str, default: int) -> int:
    return _checked(env, name, default, port_number)


def _client_hosts(env: Mapping[str, str]) -> dict[str, str]:
    every = _text(env, "SERVICE_CLIENT_HOST") or "127.0.0.1"
    return {name: _text(env, variable) or every for name, variable in HOST_VARIABLES.items()}


def services_named(text: str) -> tuple[str, ...]:
    """``--only``'s value (names separated by commas) as service names in the table's order;
    ValueError naming the unknown ones."""
    names = {item.strip() for item in text.split(",") if item.strip()}
    unknown = sorted(names - set(SERVICE_NAMES))
    if unknown or not names:
        raise ValueError(
            f"names no service ({', '.join(unknown) or 'empty'}): give one or more of "
            f"{', '.join(SERVICE_NAMES)}, separated by commas"
        )
    return tuple(name for name in SERVICE_NAMES if name in names)


def _allowed_hosts(env: Mapping[str, str]) -> frozenset[str]:
    raw = _text(env, "AI_TRADER_ALLOWED_HOSTS") or ""
    names = set()
    for item in re.split(r"[,\s]+", raw.strip()):
        if not item:
            continue
        name = item.lower().removeprefix("[").removesuffix("]")
        if not _HOST_NAME.fullmatch(name) and not _is_ip(name):
            raise UserError(
                f"AI_TRADER_ALLOWED_HOSTS: {item!r} is not a host name (give names without "
                "ports or schemes, separated by commas)"
            )
        names.add(name)
    return LOOPBACK_NAMES | names


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def _search_provider(env: Mapping[str, str]) -> str:
    raw = _text(env, "SEARCH_PROVIDER")
    if raw is None:
        return JINA
    if raw not in SEARCH_PROVIDERS:
        raise UserError(f"SEARCH_PROVIDER must be {' or '.join(SEARCH_PROVIDERS)}, got {raw!r}")
    return raw


def _jobs(env: Mapping[str, str]) -> int:
    return _checked(env, "AGENT_JOBS", DEFAULT_JOBS, job_count)


def config_overrides(env: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """The config keys the environment overrides, by section (blank variables are unset)."""
    overrides: dict[str, dict[str, str]] = {}
    for variable, section, key in CONFIG_OVERRIDES:
        value = _text(env, variable)
        if value is not None:
            overrides.setdefault(section, {})[key] = value
    return overrides


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read settings from ``env`` (the process environment by default)."""
    env = os.environ if env is None else env
    data_dir = Path(_text(env, "DATA_DIR") or "data").resolve()
    return Settings(
        data_dir=data_dir,
        # The original project spells it ALPHAADVANTAGE; accept the usual spelling too.
        alphavantage_api_key=secret(env, "ALPHAADVANTAGE_API_KEY")
        or secret(env, "ALPHAVANTAGE_API_KEY"),
        alphavantage_base_url=_text(env, "ALPHAVANTAGE_BASE_URL")
        or "https://www.alphavantage.co/query",
        # The free tier allows about five requests a minute.
        alphavantage_min_interval=_number(env, "ALPHAVANTAGE_MIN_INTERVAL", 12.0),
        jina_api_key=secret(env, "JINA_API_KEY"),
        jina_search_base_url=_text(env, "JINA_SEARCH_BASE_URL") or "https://s.jina.ai",
        jina_reader_base_url=_text(env, "JINA_READER_BASE_URL") or "https://r.jina.ai",
        search_provider=_search_provider(env),
        openai_api_key=secret(env, "OPENAI_API_KEY"),
        openai_api_base=_text(env, "OPENAI_API_BASE"),
        service_host=_text(env, "SERVICE_HOST") or "127.0.0.1",
        client_hosts=_client_hosts(env),
        ports={
            name: _checked(env, var, DEFAULT_PORTS[name], service_port_number)
            for name, var in PORT_VARIABLES.items()
        },
        ready_timeout=_number(env, "READY_TIMEOUT", 30.0),
        allowed_hosts=_allowed_hosts(env),
        agent_jobs=_jobs(env),
        config_overrides=config_overrides(env),
        dashboard_host=_text(env, "DASHBOARD_HOST") or "127.0.0.1",
        dashboard_port=_port(env, "DASHBOARD_PORT", DASHBOARD_PORT),
        tushare_token=secret(env, "TUSHARE_TOKEN"),
        tushare_base_url=_text(env, "TUSHARE_BASE_URL") or "http://api.tushare.pro",
        # A new account may call daily about 50 times a minute.
        tushare_min_interval=_number(env, "TUSHARE_MIN_INTERVAL", 1.5),
        environ=dict(env),
    )
