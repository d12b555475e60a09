"""The official MCP conformance suite's server scenarios, every one, against each service.

The scenarios that call the suite's own reference tools, resources or prompts do not apply
to these tool-only services: they are listed with the reason, never counted as passed.
Every other scenario must pass.
"""

from __future__ import annotations

import json

import pytest

from conformance.commands import (
    CAPABILITY_SCENARIOS,
    FAIL,
    NOT_APPLICABLE_SCENARIOS,
    PASS,
    SESSION_SCENARIOS,
    applicability,
    conformance_list_argv,
    conformance_server_argv,
    parse_scenario_list,
    scenario_of_result_dir,
    scenario_verdict,
)
from conformance.conftest import NOT_APPLICABLE as SKIPPED_KEY
from conformance.conftest import SERVICE_PORTS, MainStack, Report, Tools
from conformance.mcp_http import Connection, Session, error_of, result_of

pytestmark = pytest.mark.conformance


@pytest.fixture(scope="session")
def scenarios(tools: Tools) -> list[str]:
    done = tools.run(conformance_list_argv(tools.node, tools.suite), timeout=120)
    names = parse_scenario_list(done.stdout)
    assert done.returncode == 0, f"`conformance list --server` failed: {done.stderr}"
    assert names, f"`conformance list --server` listed no server scenario: {done.stdout}"
    return names


def declared_capabilities(port: int) -> tuple[dict, bool]:
    """The capabilities an initialize reply declares, and whether it issued a session id."""
    session = Session(Connection(port))
    try:
        reply = session.initialize()
        result = result_of(reply)
        assert result is not None, f"initialize: {error_of(reply)}"
        issues_sessions = reply.session_id is not None
        session.close()
        return result.get("capabilities") or {}, issues_sessions
    finally:
        session.conn.close()


def test_the_not_applicable_list_names_only_scenarios_of_the_pinned_suite(
    scenarios: list[str], report: Report
) -> None:
    stale = sorted(set(NOT_APPLICABLE_SCENARIOS) - set(scenarios))
    stale += sorted(set(CAPABILITY_SCENARIOS) - set(scenarios))
    stale += sorted(set(SESSION_SCENARIOS) - set(scenarios))
    if stale:
        report("conformance N/A list", "-", FAIL, f"names scenarios the suite lacks: {stale}")
    else:
        report("conformance N/A list", "-", PASS, f"the suite has {len(scenarios)} scenarios")

    assert not stale


@pytest.mark.parametrize("service", list(SERVICE_PORTS))
def test_every_applicable_scenario_of_the_suite_passes(
    main_stack: MainStack,
    tools: Tools,
    scenarios: list[str],
    service: str,
    report: Report,
    tmp_path,
    pytestconfig: pytest.Config,
) -> None:
    capabilities, issues_sessions = declared_capabilities(main_stack.ports[service])
    done = tools.run(
        conformance_server_argv(tools.node, tools.suite, main_stack.url(service), tmp_path),
        timeout=600,
    )
    results: dict[str, list] = {}
    for folder in tmp_path.iterdir():
        name = scenario_of_result_dir(folder.name)
        if name and (folder / "checks.json").is_file():
            results[name] = json.loads((folder / "checks.json").read_text(encoding="utf-8"))

    passed, failed, skipped = [], [], []
    for name in scenarios:
        reason = applicability(name, capabilities, issues_sessions)
        if name not in results:
            if reason is None:
                failed.append(f"{name}: no result (suite exit {done.returncode})")
            continue
        verdict = scenario_verdict(results[name])
        if reason is not None:
            pytestconfig.stash[SKIPPED_KEY][name] = reason
            skipped.append(name)
        elif verdict.verdict == PASS:
            passed.append(name)
        else:
            failed.append(f"{name}: {verdict.detail}")
    applicable = len(passed) + len(failed)
    detail = f"{len(passed)}/{applicable} applicable scenarios passed, {len(skipped)} N/A"
    if failed:
        detail += "; failed: " + " | ".join(failed)
    if passed:
        detail += "; passed: " + ", ".join(passed)
    report("conformance suite", service, FAIL if failed or not passed else PASS, detail)

    assert not failed, detail
    assert passed, detail
