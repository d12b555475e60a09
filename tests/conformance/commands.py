"""Pure pieces of the conformance driver: command lines, parsers, verdicts and the table.

No Docker, no network, no subprocess here, so tests/unit checks every one of them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from ai_trader.layout import POSITION_NAME, STAGE_NAME

# The key under which the agent's client passes the run context in a tools/call's `_meta`.
RUN_META_KEY = "ai-trader/run"

PASS, FAIL, NOT_APPLICABLE = "PASS", "FAIL", "N/A"
ERROR = "ERROR"  # the check itself could not run: never a pass

# Server scenarios of the official suite that test features these tool-only services do not
# have: they call the suite's own reference tools, resources or prompts (which a server under
# test is meant to implement for the suite), so their verdicts say nothing about our tools.
REFERENCE_TOOL = "calls the suite's reference tool {}"
NOT_APPLICABLE_SCENARIOS: dict[str, str] = {
    "tools-call-simple-text": REFERENCE_TOOL.format("test_simple_text"),
    "tools-call-image": REFERENCE_TOOL.format("test_image_content"),
    "tools-call-audio": REFERENCE_TOOL.format("test_audio_content"),
    "tools-call-embedded-resource": REFERENCE_TOOL.format("test_embedded_resource"),
    "tools-call-mixed-content": REFERENCE_TOOL.format("test_multiple_content_types"),
    "tools-call-with-logging": REFERENCE_TOOL.format("test_tool_with_logging"),
    "tools-call-error": REFERENCE_TOOL.format("test_error_handling"),
    "tools-call-with-progress": REFERENCE_TOOL.format("test_tool_with_progress"),
    "tools-call-sampling": REFERENCE_TOOL.format("test_sampling"),
    "tools-call-elicitation": REFERENCE_TOOL.format("test_elicitation"),
    "json-schema-2020-12": "looks for the suite's reference tool json_schema_2020_12_tool",
    "elicitation-sep1034-defaults": REFERENCE_TOOL.format("test_elicitation_sep1034_defaults"),
    "elicitation-sep1330-enums": REFERENCE_TOOL.format("test_elicitation_sep1330_enums"),
    "server-sse-polling": REFERENCE_TOOL.format("test_reconnection"),
    "resources-read-text": "reads the suite's reference resource test://static-text",
    "resources-read-binary": "reads the suite's reference resource test://static-binary",
    "resources-templates-read": "reads the suite's reference template test://template/{id}/data",
    "resources-subscribe": "subscribes to the suite's reference resource test://watched-resource",
    "resources-unsubscribe": "unsubscribes from the suite's reference resource "
    "test://watched-resource",
    "prompts-get-simple": "gets the suite's reference prompt test_simple_prompt",
    "prompts-get-with-args": "gets the suite's reference prompt test_prompt_with_arguments",
    "prompts-get-embedded-resource": "gets the suite's reference prompt "
    "test_prompt_with_embedded_resource",
    "prompts-get-with-image": "gets the suite's reference prompt test_prompt_with_image",
    "completion-complete": "completes an argument of the suite's reference prompt "
    "test_prompt_with_arguments",
}
# Scenarios for an optional capability: they apply only when the server declares it in its
# initialize reply (the spec requires the method only from servers that do).
CAPABILITY_SCENARIOS: dict[str, str] = {"logging-set-level": "logging"}
# Scenarios about streams within one session: they apply only to a server that issues an
# Mcp-Session-Id (sessions are optional in streamable HTTP; these services are stateless,
# so a client has no session to open several streams on, or to flood).
SESSION_SCENARIOS: dict[str, str] = {
    "server-sse-multiple-streams": "opens several streams on one session",
}


# ------------------------------------------------------------------------ command lines

_INTERPOLATED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


def interpolated_names(compose_text: str) -> set[str]:
    """The variables a compose file substitutes (the run sets each one itself)."""
    return set(_INTERPOLATED.findall(compose_text))


def run_meta(signature: str, today: str, books: str, token: str) -> dict[str, Any]:
    """The run context the agent's client sends with each tool call: ``books`` is relative
    to the services' data folder, ``token`` that of the signature's lock."""
    context = {"signature": signature, "today": today, "books": books, "token": token}
    return {RUN_META_KEY: context}


def inspector_list_argv(node: str, inspector: str, url: str) -> list[str]:
    """`tools/list` through the Inspector CLI; --strict makes its schema lint decide too."""
    return [
        node, inspector, "--cli", url, "--transport", "http", "--method", "tools/list",
        "--strict", "--format", "json",
    ]  # fmt: skip


def inspector_call_argv(
    node: str,
    inspector: str,
    url: str,
    tool: str,
    arguments: Mapping[str, Any],
    meta: Mapping[str, Any] | None = None,
) -> list[str]:
    """`tools/call` through the Inspector CLI, with the run context as the call's `_meta`.

    --tool-args-json sends the arguments as JSON (a --tool-arg value would be a string);
    each --tool-metadata KEY=VALUE becomes `_meta[KEY]`, its value parsed as JSON.
    """
    argv = [
        node, inspector, "--cli", url, "--transport", "http", "--method", "tools/call",
        "--tool-name", tool, "--tool-args-json", json.dumps(arguments, ensure_ascii=False),
    ]  # fmt: skip
    for key, value in (meta or {}).items():
        argv += ["--tool-metadata", f"{key}={json.dumps(value, separators=(',', ':'))}"]
    return [*argv, "--format", "json"]


def conformance_list_argv(node: str, suite: str) -> list[str]:
    return [node, suite, "list", "--server"]


def conformance_server_argv(node: str, suite: str, url: str, output_dir: Path | str) -> list[str]:
    """Every server scenario the suite has (`--suite all`: the pending ones too)."""
    return [node, suite, "server", "--url", url, "--suite", "all", "--output-dir", str(output_dir)]


def package_bin(package_dir: Path, name: str) -> Path:
    """The script an npm package declares as its executable `name` (from its package.json)."""
    manifest = json.loads((package_dir / "package.json").read_text(encoding="utf-8"))
    declared = manifest.get("bin")
    script = declared if isinstance(declared, str) else (declared or {}).get(name)
    if not script:
        raise LookupError(f"{manifest.get('name', package_dir)} declares no executable {name!r}")
    return package_dir / script


# ----------------------------------------------------------------------- the conformance suite

_SCENARIO_LINE = re.compile(r"^\s*-\s+(?P<name>[A-Za-z0-9][\w./-]*)(?:\s+\[.*\])?\s*$")
_RESULT_DIR = re.compile(r"^server-(?P<name>.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$")


def parse_scenario_list(text: str) -> list[str]:
    """The server scenarios in `conformance list --server` output, in the order listed."""
    names: list[str] = []
    in_server = False
    for line in text.splitlines():
        if line.strip().lower().startswith("server scenarios"):
            in_server = True
            continue
        if in_server and line.strip() and not line.startswith((" ", "\t")):
            break  # the next section
        found = _SCENARIO_LINE.match(line) if in_server else None
        if found:
            names.append(found.group("name"))
    return names


def scenario_of_result_dir(name: str) -> str | None:
    """`server-<scenario>-<timestamp>` (the suite's --output-dir layout) -> the scenario."""
    found = _RESULT_DIR.match(name)
    return found.group("name") if found else None


@dataclass(frozen=True)
class Verdict:
    verdict: str
    detail: str


def scenario_verdict(checks: Sequence[Mapping[str, Any]]) -> Verdict:
    """PASS when the suite decided something and nothing failed; a warning is only reported."""
    failures = [c for c in checks if c.get("status") == "FAILURE"]
    successes = [c for c in checks if c.get("status") == "SUCCESS"]
    warnings = [c for c in checks if c.get("status") == "WARNING"]
    if failures:
        reasons = "; ".join(f"{c.get('name')}: {c.get('errorMessage') or '?'}" for c in failures)
        return Verdict(FAIL, reasons)
    if not successes:
        return Verdict(FAIL, f"the suite decided no check ({len(checks)} informational)")
    note = f", {len(warnings)} warning(s)" if warnings else ""
    return Verdict(PASS, f"{len(successes)} check(s) passed{note}")


def applicability(
    scenario: str, capabilities: Mapping[str, Any], issues_sessions: bool = True
) -> str | None:
    """None when the scenario applies to a tool-only server, else why it does not."""
    if scenario in NOT_APPLICABLE_SCENARIOS:
        return NOT_APPLICABLE_SCENARIOS[scenario]
    needed = CAPABILITY_SCENARIOS.get(scenario)
    if needed and needed not in capabilities:
        return f"needs the {needed} capability, which the server does not declare"
    if scenario in SESSION_SCENARIOS and not issues_sessions:
        return f"{SESSION_SCENARIOS[scenario]}; the server is stateless (issues no session id)"
    return None


# ----------------------------------------------------------------------- the Inspector CLI


@dataclass(frozen=True)
class InspectorOutcome:
    """What one Inspector CLI run produced: a JSON-RPC result, or its error envelope."""

    returncode: int
    result: dict[str, Any] | None
    error: str | None

    @property
    def is_error(self) -> bool | None:
        return None if self.result is None else self.result.get("isError") is True

    def describe(self) -> str:
        if self.result is None:
            return f"Inspector exit {self.returncode}: {self.error}"
        return f"isError {str(self.is_error).lower()}: {result_text(self.result)!r}"


def _last_json_object(text: str) -> dict[str, Any] | None:
    for line in reversed(text.strip().splitlines()):
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            return value
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def parse_inspector(returncode: int, stdout: str, stderr: str) -> InspectorOutcome:
    """Read `--format json` output: `{"result": ...}` on stdout, `{"error": ...}` on stderr."""
    out = _last_json_object(stdout)
    if out is not None and isinstance(out.get("result"), dict):
        return InspectorOutcome(returncode, out["result"], None)
    envelope = _last_json_object(stderr) or out or {}
    error = envelope.get("error")
    if isinstance(error, dict):
        message = f"{error.get('code', '?')}: {error.get('message', '?')}"
        if error.get("cause"):
            message += f" ({error['cause']})"
    else:
        tail = (stderr.strip() or stdout.strip()).splitlines()
        message = tail[-1][:200] if tail else "no output"
    return InspectorOutcome(returncode, None, message)


def result_text(result: Mapping[str, Any], limit: int = 120) -> str:
    """The text content of a tool result on one line, shortened."""
    parts = [
        str(block.get("text", ""))
        for block in result.get("content") or []
        if isinstance(block, dict) and block.get("type") == "text"
    ]
    text = " ".join(" ".join(parts).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def structured(result: Mapping[str, Any]) -> Any:
    """The structured content of a result, else its first text block read as JSON, else None."""
    if result.get("structuredContent") is not None:
        return result["structuredContent"]
    for block in result.get("content") or []:
        if isinstance(block, dict) and block.get("type") == "text":
            try:
                return json.loads(block.get("text", ""))
            except ValueError:
                return None
    return None


# ------------------------------------------------------------------------------- the book

# position.jsonl and the day's stage (position rows, one line a trade), as bytes
Snapshot = tuple[bytes | None, bytes | None]


def describe_change(before: Snapshot, after: Snapshot) -> str:
    """What changed in the book between two snapshots, in words."""
    if before == after:
        return "the book is unchanged"
    changed = []
    for name, old, new in zip((POSITION_NAME, STAGE_NAME), before, after, strict=True):
        if old == new:
            continue
        actions = []
        if new is not None and name == STAGE_NAME:
            old_rows = (old or b"").splitlines()
            for line in new.splitlines()[len(old_rows) :]:
                row = json.loads(line)
                act = row.get("this_action", {})
                actions.append(f"{act.get('action')} {act.get('symbol')} {act.get('amount')}")
        changed.append(f"{name} changed" + (f" (+{', '.join(actions)})" if actions else ""))
    return "; ".join(changed)


# ------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class Row:
    check: str
    service: str
    verdict: str
    detail: str


def format_table(rows: Sequence[Row], width: int = 80) -> str:
    """One plain-text table (check, service, verdict, detail); long details wrap in place."""
    headers = Row("check", "service", "verdict", "detail")
    check_w = max(len(r.check) for r in [headers, *rows])
    service_w = max(len(r.service) for r in [headers, *rows])
    verdict_w = max(len(r.verdict) for r in [headers, *rows])
    detail_w = max(30, width)
    indent = " " * (check_w + service_w + verdict_w + 6)

    def lines(row: Row) -> list[str]:
        words = row.detail.split() or [""]
        wrapped, current = [], ""
        for word in words:
            if current and len(current) + 1 + len(word) > detail_w:
                wrapped.append(current)
                current = word
            else:
                current = f"{current} {word}" if current else word
        wrapped.append(current)
        first = f"{row.check:<{check_w}}  {row.service:<{service_w}}  {row.verdict:<{verdict_w}}  "
        return [(first + wrapped[0]).rstrip(), *(indent + w for w in wrapped[1:])]

    rule = "-" * (check_w + service_w + verdict_w + 6 + detail_w)
    out = [*lines(headers), rule]
    for row in rows:
        out += lines(row)
    return "\n".join(out)


def tally(rows: Iterable[Row]) -> str:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row.verdict] = counts.get(row.verdict, 0) + 1
    order = [PASS, FAIL, ERROR, NOT_APPLICABLE]
    return ", ".join(f"{counts[v]} {v}" for v in order if v in counts)


# ------------------------------------------------------------------------------ the flood

_DOCKER_TIME = re.compile(
    r"^(?P<base>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(?P<frac>\d+))?(?P<zone>Z|[+-]\d{2}:\d{2})$"
)


def parse_docker_time(text: str) -> datetime:
    """A timestamp as `docker inspect` writes it (RFC 3339, nanoseconds) as an aware datetime."""
    found = _DOCKER_TIME.match(text.strip())
    if not found:
        raise ValueError(f"not a Docker timestamp: {text!r}")
    fraction = (found.group("frac") or "0")[:6].ljust(6, "0")
    zone = "+00:00" if found.group("zone") == "Z" else found.group("zone")
    return datetime.fromisoformat(f"{found.group('base')}.{fraction}{zone}")


def probes_after(log: Sequence[Mapping[str, Any]], moment: datetime) -> list[Mapping[str, Any]]:
    """The health probes in a container's State.Health.Log that started after `moment`."""
    return [entry for entry in log if parse_docker_time(str(entry["Start"])) > moment]
