"""The pure parts of `nox -s conformance` (tests/conformance): command lines, parsers, verdicts.

The session itself needs Docker and the npm tools; these pieces do not, so they are held
to their behaviour here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from conformance.commands import (
    FAIL,
    PASS,
    Row,
    applicability,
    conformance_list_argv,
    conformance_server_argv,
    describe_change,
    format_table,
    inspector_call_argv,
    inspector_list_argv,
    interpolated_names,
    package_bin,
    parse_docker_time,
    parse_inspector,
    parse_scenario_list,
    probes_after,
    result_text,
    run_meta,
    scenario_of_result_dir,
    scenario_verdict,
    structured,
    tally,
)
from conformance.mcp_http import parse_body, request_headers

REPO = Path(__file__).resolve().parents[2]

# `conformance list` output of the pinned suite, abridged.
LISTING = """Server scenarios (test against a server):
  - server-initialize [2025-06-18,2025-11-25]
  - tools-call-error [2025-06-18,2025-11-25]
  - dns-rebinding-protection [2025-11-25]

Client scenarios (test against a client):
  - initialize [2025-06-18,2025-11-25]
  - auth/metadata-default [2025-11-25]
"""


# --------------------------------------------------------------------------- command lines


def test_run_meta_puts_the_context_under_the_ai_trader_run_key() -> None:
    assert run_meta("sig", "2025-10-16", "agent_data", "ab" * 16) == {
        "ai-trader/run": {
            "signature": "sig",
            "today": "2025-10-16",
            "books": "agent_data",
            "token": "ab" * 16,
        }
    }


def test_inspector_call_sends_arguments_as_json_and_the_context_as_tool_metadata() -> None:
    argv = inspector_call_argv(
        "node", "insp.js", "http://127.0.0.1:1/mcp", "buy",
        {"symbol": "\u0131ntc", "amount": True}, run_meta("s", "2025-10-16", "d", "t"),
    )  # fmt: skip

    assert argv[:4] == ["node", "insp.js", "--cli", "http://127.0.0.1:1/mcp"]
    assert argv[argv.index("--method") + 1] == "tools/call"
    assert argv[argv.index("--tool-name") + 1] == "buy"
    # Sent verbatim: a bool stays a bool, the dotless i stays itself.
    assert json.loads(argv[argv.index("--tool-args-json") + 1]) == {
        "symbol": "\u0131ntc",
        "amount": True,
    }
    key, _, value = argv[argv.index("--tool-metadata") + 1].partition("=")
    assert key == "ai-trader/run"
    assert json.loads(value) == {
        "signature": "s",
        "today": "2025-10-16",
        "books": "d",
        "token": "t",
    }
    assert argv[-2:] == ["--format", "json"]


def test_inspector_call_without_a_context_sends_no_metadata() -> None:
    argv = inspector_call_argv("node", "i.js", "http://127.0.0.1:1/mcp", "add", {"a": 1})

    assert "--tool-metadata" not in argv
    assert "--metadata" not in argv


def test_inspector_list_asks_for_the_strict_schema_lint() -> None:
    argv = inspector_list_argv("node", "i.js", "http://127.0.0.1:1/mcp")

    assert argv[argv.index("--method") + 1] == "tools/list"
    assert "--strict" in argv


def test_the_suite_runs_every_server_scenario_into_the_given_folder() -> None:
    argv = conformance_server_argv("node", "c.js", "http://127.0.0.1:1/mcp", Path("/out"))

    assert argv[:3] == ["node", "c.js", "server"]
    assert argv[argv.index("--suite") + 1] == "all"
    assert argv[argv.index("--output-dir") + 1] == "/out"
    assert conformance_list_argv("node", "c.js") == ["node", "c.js", "list", "--server"]


def test_package_bin_reads_the_executable_a_package_declares(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"name": "x", "bin": {"x": "dist/x.js"}}))

    assert package_bin(tmp_path, "x") == tmp_path / "dist" / "x.js"
    with pytest.raises(LookupError, match="no executable 'y'"):
        package_bin(tmp_path, "y")


def test_interpolated_names_lists_every_variable_the_compose_file_substitutes() -> None:
    names = interpolated_names((REPO / "docker-compose.yml").read_text())

    assert {"AI_TRADER_BIND", "AI_TRADER_TRADE_PORT", "JINA_API_KEY", "AI_TRADER_IMAGE"} <= names
    assert interpolated_names("a: ${X:-1} ${Y-} $${Z}") == {"X", "Y", "Z"}


# ------------------------------------------------------------------------------ the suite


def test_the_scenario_list_keeps_the_server_section_only() -> None:
    assert parse_scenario_list(LISTING) == [
        "server-initialize",
        "tools-call-error",
        "dns-rebinding-protection",
    ]


@pytest.mark.parametrize(
    ("folder", "scenario"),
    [
        ("server-tools-call-error-2026-11-27T18-42-24-115Z", "tools-call-error"),
        ("server-server-sse-polling-2026-11-27T18-42-24-115Z", "server-sse-polling"),
        ("server-ping-2026-01-02T03-04-05-006Z", "ping"),
        ("client-initialize-2026-01-02T03-04-05-006Z", None),
        ("server-ping", None),
    ],
)
def test_a_result_folder_names_its_scenario(folder: str, scenario: str | None) -> None:
    assert scenario_of_result_dir(folder) == scenario


def test_a_failed_check_fails_the_scenario_and_says_why() -> None:
    verdict = scenario_verdict(
        [
            {"name": "LocalhostHostAccepted", "status": "SUCCESS"},
            {"name": "DNSRebindingRejected", "status": "FAILURE", "errorMessage": "got 200"},
        ]
    )

    assert verdict.verdict == FAIL
    assert verdict.detail == "DNSRebindingRejected: got 200"


def test_a_scenario_that_decided_nothing_is_not_a_pass() -> None:
    verdict = scenario_verdict([{"name": "StreamClosed", "status": "INFO"}])

    assert verdict.verdict == FAIL
    assert "decided no check" in verdict.detail


def test_warnings_are_reported_but_do_not_fail_a_scenario() -> None:
    verdict = scenario_verdict([{"status": "SUCCESS"}, {"status": "WARNING"}])

    assert verdict.verdict == PASS
    assert verdict.detail == "1 check(s) passed, 1 warning(s)"


def test_scenarios_calling_the_suites_reference_tools_do_not_apply() -> None:
    assert applicability("tools-call-image", {}) == (
        "calls the suite's reference tool test_image_content"
    )
    assert "test://static-text" in (applicability("resources-read-text", {}) or "")


def test_the_logging_scenario_applies_only_to_a_server_that_declares_logging() -> None:
    assert applicability("logging-set-level", {"tools": {}}) == (
        "needs the logging capability, which the server does not declare"
    )
    assert applicability("logging-set-level", {"logging": {}}) is None


def test_a_scenario_nobody_classified_applies() -> None:
    assert applicability("dns-rebinding-protection", {}) is None
    assert applicability("some-new-scenario", {}) is None


# -------------------------------------------------------------------------- the Inspector


def test_a_successful_call_is_read_from_stdout() -> None:
    stdout = '{"result":{"content":[{"type":"text","text":"3.0"}],"isError":false}}'

    outcome = parse_inspector(0, stdout, "")

    assert outcome.is_error is False
    assert outcome.describe() == "isError false: '3.0'"


def test_a_tool_error_keeps_its_result_although_the_cli_exits_5() -> None:
    stdout = '{"result":{"content":[{"type":"text","text":"unknown symbol"}],"isError":true}}'
    stderr = '{"error":{"code":"tool_is_error","message":"Tool \'buy\' returned isError:true."}}'

    outcome = parse_inspector(5, stdout, stderr)

    assert outcome.is_error is True
    assert outcome.describe() == "isError true: 'unknown symbol'"


def test_an_inspector_failure_is_read_from_its_error_envelope() -> None:
    stderr = (
        '{"error":{"code":"unreachable","message":"fetch failed",'
        '"cause":"connect ECONNREFUSED 127.0.0.1:1"}}'
    )

    outcome = parse_inspector(4, "", stderr)

    assert outcome.is_error is None
    assert outcome.describe() == (
        "Inspector exit 4: unreachable: fetch failed (connect ECONNREFUSED 127.0.0.1:1)"
    )


def test_output_that_is_not_json_is_reported_by_its_last_line() -> None:
    outcome = parse_inspector(1, "", "Error: something\nbroke badly\n")

    assert outcome.describe() == "Inspector exit 1: broke badly"


def test_result_text_joins_the_text_blocks_on_one_shortened_line() -> None:
    result = {"content": [{"type": "text", "text": "a\n  b"}, {"type": "image"}]}

    assert result_text(result) == "a b"
    assert result_text({"content": [{"type": "text", "text": "x" * 50}]}, limit=10) == (
        "xxxxxxxxx…"
    )


def test_structured_prefers_structured_content_then_json_text() -> None:
    assert structured({"structuredContent": {"result": 3}}) == {"result": 3}
    assert structured({"content": [{"type": "text", "text": '{"a": 1}'}]}) == {"a": 1}
    assert structured({"content": [{"type": "text", "text": "plain"}]}) is None


# ------------------------------------------------------------------------ the book, the flood


def test_an_identical_book_is_unchanged() -> None:
    assert describe_change((b"x", None), (b"x", None)) == "the book is unchanged"


def test_a_new_staged_trade_is_named() -> None:
    first = {"date": "2025-10-16", "this_action": {"action": "buy", "symbol": "EA", "amount": 1}}
    second = {**first, "this_action": {"action": "sell", "symbol": "EA", "amount": 1}}
    before = (json.dumps(first) + "\n").encode()
    after = before + (json.dumps(second) + "\n").encode()

    assert describe_change((b"x", None), (b"x", before)) == "pending.jsonl changed (+buy EA 1)"
    assert describe_change((b"x", before), (b"x", after)) == "pending.jsonl changed (+sell EA 1)"


def test_docker_timestamps_with_nanoseconds_are_read() -> None:
    when = parse_docker_time("2026-11-27T18:42:24.306123456Z")

    assert when == datetime(2026, 11, 27, 18, 42, 24, 306123, tzinfo=UTC)
    assert parse_docker_time("2026-11-27T18:42:24+00:00") == when.replace(microsecond=0)
    with pytest.raises(ValueError, match="not a Docker timestamp"):
        parse_docker_time("yesterday")


def test_only_health_probes_started_after_the_moment_count() -> None:
    log = [
        {"Start": "2026-11-27T18:42:20.0Z", "ExitCode": 0},
        {"Start": "2026-11-27T18:42:30.0Z", "ExitCode": 1},
    ]

    later = probes_after(log, datetime(2026, 11, 27, 18, 42, 25, tzinfo=UTC))

    assert [p["ExitCode"] for p in later] == [1]


# ----------------------------------------------------------------------------- raw MCP


def test_a_json_reply_is_parsed_as_json() -> None:
    assert parse_body("application/json", b'{"id": 1}') == {"id": 1}


def test_an_sse_reply_gives_its_last_data_event() -> None:
    raw = b'event: message\ndata: {"id": 0}\n\nevent: message\ndata: {"id": 1}\n\n'

    assert parse_body("text/event-stream", raw) == {"id": 1}
    assert parse_body("text/event-stream", b"") is None


def test_requests_carry_the_loopback_host_unless_told_otherwise() -> None:
    assert request_headers(8002)["Host"] == "127.0.0.1:8002"
    foreign = request_headers(8002, host="evil.example:8002", origin="http://evil.example:8002")
    assert foreign["Host"] == "evil.example:8002"
    assert foreign["Origin"] == "http://evil.example:8002"
    assert "Origin" not in request_headers(8002)


# ------------------------------------------------------------------------------ the table


def test_the_table_has_one_line_per_row_under_a_header() -> None:
    rows = [Row("a", "math", PASS, "ok"), Row("longer check", "-", FAIL, "why")]

    lines = format_table(rows).splitlines()

    assert lines[0].split() == ["check", "service", "verdict", "detail"]
    assert lines[2] == "a             math     PASS     ok"
    assert lines[3] == "longer check  -        FAIL     why"
    assert tally(rows) == "1 PASS, 1 FAIL"


def test_a_long_detail_wraps_under_its_column() -> None:
    text = format_table([Row("c", "s", PASS, "word " * 40)], width=30)
    first, second = text.splitlines()[2:4]

    assert second.index("word") == first.index("word")
    assert all(len(line) <= 60 for line in text.splitlines()[2:])


def test_a_session_scenario_is_not_applicable_only_to_a_stateless_server() -> None:
    assert applicability("server-sse-multiple-streams", {}, issues_sessions=False) == (
        "opens several streams on one session; the server is stateless (issues no session id)"
    )
    assert applicability("server-sse-multiple-streams", {}, issues_sessions=True) is None
