"""The run configuration: the original AI-Trader JSON keys, validated.

The rules:

* Errors name the offending key (``models.0.signature: field required``) in one line.
* An unknown key is an error, never ignored: a key this version does not read (a trading
  cost, say) would otherwise leave figures published as if it applied.
* Keys of upstream's configs that this version reads but does not use are accepted with the
  one value that means what this version does (``agent_type: BaseAgent``), and listed once
  as ignored (``RunConfig.ignored``); any other value is an error.
* ``market`` (``us``, ``cn``, ``crypto``) and ``frequency`` (``daily``, ``hourly``) name the
  market the run trades, ``us`` and ``daily`` when left out. Here they are names; which
  names exist is the market package's to say (``market.markets.market_for``, asked by
  ``run`` before anything is written: an unknown one is a one-line error). A config that
  sets no ``agent_config.initial_cash`` starts with the market's cash.
* A model's API key never stands in a config: ``api_key_env`` names the environment
  variable that holds it (``openai_api_key``, upstream's way, is refused, saying so).
* ``AGENT_MAX_STEP``, ``INIT_DATE`` and ``END_DATE`` override the file; the settings read them
  (they read all of the environment) and hand them over as ``overrides``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from ai_trader.context import valid_signature
from ai_trader.costs import MAX_BPS, MAX_MIN_COMMISSION, Costs, Pricing
from ai_trader.errors import UserError, problems

BUILTIN_PREFIX = "builtin/"
# Far above any sensible starting cash, and small enough that sums stay exact to the cent.
MAX_INITIAL_CASH = 1e12


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# Upstream's keys this version reads and does not use, with the value each must have.
UPSTREAM_ONLY = {"agent_type": "BaseAgent"}
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")


def _upstream_value(key: str, value: object) -> object:
    wanted = UPSTREAM_ONLY[key]
    if value is not None and value != wanted:
        raise ValueError(f"{value!r} is not what this version runs: it runs {key} {wanted!r} only")
    return value


# A cost is a plain number (strict: "1" or true is not one), never negative or infinite.
_COST: dict[str, Any] = {"strict": True, "ge": 0, "allow_inf_nan": False}
Bps = Annotated[float, Field(le=MAX_BPS, **_COST)]


class DateRange(_Section):
    init_date: date
    end_date: date

    @model_validator(mode="after")
    def _ordered(self) -> DateRange:
        if self.end_date < self.init_date:
            raise ValueError("end_date is before init_date")
        return self


class PricingConfig(_Section):
    """A model's prices, dollars per million tokens (``usage`` states how they apply)."""

    input_per_million: Annotated[float, Field(**_COST)]
    output_per_million: Annotated[float, Field(**_COST)]
    cached_input_per_million: Annotated[float, Field(**_COST)] | None = None

    @property
    def pricing(self) -> Pricing:
        return Pricing(
            self.input_per_million, self.output_per_million, self.cached_input_per_million
        )


class ModelEntry(_Section):
    name: str
    basemodel: str
    signature: str
    enabled: bool = True
    openai_base_url: str | None = None
    api_key_env: str | None = None  # the environment variable that holds this model's key
    openai_api_key: object = None  # upstream's key in the config: always refused
    pricing: PricingConfig | None = None
    # Sampling, sent to the API only when set (and part of each request's recorded key).
    temperature: Annotated[float, Field(strict=True, ge=0, le=2, allow_inf_nan=False)] | None = None
    top_p: Annotated[float, Field(strict=True, gt=0, le=1, allow_inf_nan=False)] | None = None
    seed: Annotated[int, Field(strict=True)] | None = None
    max_tokens: Annotated[int, Field(strict=True, gt=0)] | None = None
    # Recorded responses (agent.responses): off, record, or replay with no network.
    responses: Literal["off", "record", "replay"] = "off"
    responses_from: str | None = None  # replay from this responses folder, not the book's
    # Stop this model before a day that would pass it (see the runner's budget check).
    max_cost_usd: Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _budget_needs_prices(self) -> ModelEntry:
        if self.max_cost_usd is not None and self.pricing is None and not self.builtin:
            raise ValueError(
                "max_cost_usd needs pricing (input_per_million and output_per_million) "
                "to count dollars"
            )
        return self

    @field_validator("api_key_env")
    @classmethod
    def _variable_name(cls, value: str | None) -> str | None:
        if value is not None and not _VARIABLE.fullmatch(value):
            raise ValueError("must be the name of an environment variable, e.g. DEEPSEEK_API_KEY")
        return value

    @field_validator("openai_api_key")
    @classmethod
    def _no_key_here(cls, value: object) -> object:
        if value is not None:
            raise ValueError(
                "a key never goes in a config: put it in an environment variable and "
                "name that variable in api_key_env"
            )
        return value

    @field_validator("signature")
    @classmethod
    def _safe_signature(cls, value: str) -> str:
        # The signature names a folder: keep it to one plain path component.
        if not valid_signature(value):
            raise ValueError(
                "must be 1 to 128 letters, digits, '.', '_' or '-' (it names a folder)"
            )
        return value

    @property
    def builtin(self) -> bool:
        return self.basemodel.startswith(BUILTIN_PREFIX)

    @property
    def sampling(self) -> dict[str, float | int]:
        """The sampling parameters this entry sets, as the API names them."""
        names = ("temperature", "top_p", "seed", "max_tokens")
        return {name: value for name in names if (value := getattr(self, name)) is not None}


class AgentConfig(_Section):
    max_steps: Annotated[int, Field(gt=0)] = 30
    max_retries: Annotated[int, Field(ge=0)] = 3
    base_delay: Annotated[float, Field(ge=0)] = 1.0
    initial_cash: Annotated[float, Field(gt=0, le=MAX_INITIAL_CASH, allow_inf_nan=False)] = 10000.0
    # How long one model request may take: a model on a CPU reading a long prompt needs more.
    request_timeout: Annotated[float, Field(gt=0, le=3600, allow_inf_nan=False)] = 120.0


class TradingConfig(_Section):
    """The run's trading costs (``costs`` states the rules); every one 0 by default."""

    commission_bps: Bps = 0.0
    min_commission: Annotated[float, Field(le=MAX_MIN_COMMISSION, **_COST)] = 0.0
    slippage_bps: Bps = 0.0

    @property
    def costs(self) -> Costs:
        return Costs(self.commission_bps, self.min_commission, self.slippage_bps)


class LogConfig(_Section):
    # None: DATA_DIR/agent_data (the settings decide where data lives). A relative path
    # is taken from the working directory, as in the original.
    log_path: str | None = None


class RunConfig(_Section):
    date_range: DateRange
    models: list[ModelEntry]
    agent_config: AgentConfig = AgentConfig()
    trading: TradingConfig = TradingConfig()
    log_config: LogConfig = LogConfig()
    agent_type: str | None = None  # upstream's; see UPSTREAM_ONLY
    market: Annotated[str, Field(strict=True, min_length=1)] | None = None  # None: us
    frequency: Annotated[str, Field(strict=True, min_length=1)] | None = None  # None: daily

    @field_validator("agent_type")
    @classmethod
    def _upstream(cls, value: str | None, info: ValidationInfo) -> str | None:
        _upstream_value(str(info.field_name), value)
        return value

    @property
    def ignored(self) -> list[str]:
        """The upstream keys the file set that this version does not use."""
        return [key for key in UPSTREAM_ONLY if getattr(self, key) is not None]

    # A field validator, not a model validator, so the error names the key ("models: ...").
    @field_validator("models")
    @classmethod
    def _models(cls, models: list[ModelEntry]) -> list[ModelEntry]:
        if not any(m.enabled for m in models):
            raise ValueError("no model is enabled")
        signatures = [m.signature for m in models if m.enabled]
        if len(set(signatures)) != len(signatures):
            raise ValueError("two enabled models share a signature")
        return models

    @property
    def enabled_models(self) -> list[ModelEntry]:
        return [m for m in self.models if m.enabled]

    def log_path(self, default: Path) -> Path:
        """Where the books live: the config's log_path, else ``default``."""
        given = self.log_config.log_path
        return Path(given).expanduser().resolve() if given else default


def _describe(error: ValidationError) -> str:
    found = problems(error)
    first = error.errors(include_url=False)[0]
    if first["type"] == "extra_forbidden":
        # pydantic says "Extra inputs are not permitted": say what it means for a run.
        where = ".".join(str(part) for part in first["loc"])
        found[0] = f"{where}: unknown key (this version does not read it; remove it)"
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    return f"{found[0]}{more}"


Overrides = Mapping[str, Mapping[str, str]]  # section -> key -> value, from the settings


def _overrides(raw: dict[str, object], overrides: Overrides) -> dict[str, object]:
    for section, values in overrides.items():
        section_value = raw.get(section, {})
        if not isinstance(section_value, dict):
            raise UserError(f"config: {section} must be an object")
        raw[section] = {**section_value, **values}
    return raw


def parse_config(raw: object, source: str, overrides: Overrides | None = None) -> RunConfig:
    """The validated config; ``overrides`` (``Settings.config_overrides``) replace keys."""
    if not isinstance(raw, dict):
        raise UserError(f"config {source}: expected a JSON object at the top level")
    raw = _overrides(dict(raw), overrides or {})
    try:
        return RunConfig.model_validate(raw)
    except ValidationError as exc:
        raise UserError(f"config {source}: {_describe(exc)}") from None


def _no_constants(name: str) -> object:
    # json.loads accepts NaN and Infinity, which are not JSON and never a sensible setting.
    raise ValueError(f"{name} is not a JSON value")


def load_config(path: Path, overrides: Overrides | None = None) -> RunConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserError(f"config {path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise UserError(f"config {path}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise UserError(f"config {path}: cannot read it ({exc.strerror})") from None
    try:
        raw = json.loads(text, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise UserError(f"config {path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except ValueError as exc:
        raise UserError(f"config {path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise UserError(f"config {path}: nested too deeply to be a config") from None
    return parse_config(raw, str(path), overrides)
