"""A hostile corpus through the analysis and every check: nothing raises, and a broken record
is reported as such while the rest of the tenant is still judged.

Tenant data is untrusted (docs/architecture.md, rule 7). A definition that does not parse must
become that flow's `error` finding saying why, never a crash and never a silent pass; a value
that is merely odd (an unknown enum, a null or negative duration, markup in a name) must not
stop the other flows, steps and jobs in the same frames from being judged. Every finding must
also survive `json.dumps`, since reports and the store write them as JSON.

Most cases are frames built in memory (`tests.checks.builders`); the `store-*` cases write
their rows through the Store API and read them back with `load_frames`, so the store's
coercion of bad values is part of what is proven.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from auditor.checks import Finding, run_checks
from auditor.checks.base import STATUSES
from auditor.checks.evidence import Evidence
from auditor.frames import Frames, load_frames
from auditor.settings import Settings
from auditor.store import Store
from tests.checks.builders import (
    END,
    ENV,
    QUERY_IDS,
    WINDOW,
    catching,
    connector_action,
    dataverse_trigger,
    environment,
    frames,
    nested_scopes,
    organization,
)
from tests.checks.builders import flow as flow_row

Row = dict[str, Any]

MB = 1 << 20
OTHER_ENV = "env-2"
GOOD_FLOW = "good-flow"
GOOD_STEP = "good-step"
ODD_STEP = "odd-step"
MARKUP = ("<script>alert(1)</script>", '=HYPERLINK("http://evil.example","x")', "[bold red]x[/]")
CONTROL = "nul\x00bell\x07esc\x1b[31mdel\x7f"
GUID = "A0B1C2D3-E4F5-4A6B-8C7D-9E0F1A2B3C4D"
# A finding is read by people and written into reports: a megabyte of tenant text must not
# reach it whole.
MAX_FINDING_JSON = 64 * 1024

# Store table -> the query id that collects it (the id `scan_queries` records).
QUERY_OF_TABLE = {"plugin_steps": "sdkmessageprocessingsteps", "flow_api_runs": "flow_runs"}


# Rows ---------------------------------------------------------------------------------------


def _at(hours: float) -> datetime:
    """A time inside the analysis window, `hours` before its end."""
    return END - timedelta(hours=hours)


def flow(flow_id: str, text: str | None = None, **kwargs: Any) -> Row:
    """A `flows` row; `text` is the definition as stored (anything, for the hostile cases)."""
    return flow_row(flow_id, text=text, **kwargs)


def defined(flow_id: str, document: Any, **kwargs: Any) -> Row:
    """A `flows` row whose definition is `document` written as JSON."""
    return flow_row(flow_id, text=json.dumps(document), **kwargs)


def bare(actions: Mapping[str, Any] | None = None, trigger: Any = None) -> dict[str, Any]:
    """A flow API document around a definition with these actions and one trigger."""
    return {
        "properties": {
            "definition": {
                "triggers": {"manual": trigger or {"type": "Request", "kind": "Button"}},
                "actions": dict(actions or {}),
            }
        }
    }


def api_run(flow_id: str, name: str, status: str = "Succeeded", hours: float = 2, **kw: Any) -> Row:
    """A flow API run that took one minute, `hours` before the window end."""
    row: Row = {
        "environment_id": ENV,
        "flow_name": flow_id,
        "run_name": name,
        "start_time": _at(hours),
        "end_time": _at(hours) + timedelta(minutes=1),
        "status": status,
    }
    if status == "Failed":
        row["error_code"] = "ActionFailed"
        row["error_message"] = "An action failed. No dependent actions succeeded."
    return row | kw


def step(stepid: str, **kw: Any) -> Row:
    """An enabled custom synchronous Update step with filtering attributes."""
    row: Row = {
        "environment_id": ENV,
        "stepid": stepid,
        "name": f"Contoso.Plugins: {stepid}",
        "stage": 20,
        "mode": 0,
        "filteringattributes": "name",
        "statecode": 0,
        "customizationlevel": 1,
        "message_name": "Update",
        "primary_entity": "account",
    }
    return row | kw


def trace(trace_id: str, stepid: str, duration: Any = 150, **kw: Any) -> Row:
    """A synchronous plug-in execution of the step, with its duration in ms."""
    row: Row = {
        "environment_id": ENV,
        "plugintracelogid": trace_id,
        "pluginstepid": stepid,
        "typename": "Contoso.Plugins.Validate",
        "messagename": "Update",
        "primaryentity": "account",
        "mode": 0,
        "depth": 1,
        "performanceexecutionstarttime": _at(3),
        "performanceexecutionduration": duration,
        "createdon": _at(3),
    }
    return row | kw


def job(job_id: str, owner: str, status: Any = 30, **kw: Any) -> Row:
    """A completed async plug-in system job that waited one second and ran two."""
    created = _at(4)
    row: Row = {
        "environment_id": ENV,
        "asyncoperationid": job_id,
        "name": f"Contoso.Plugins: {owner}",
        "operationtype": 1,
        "statecode": 3,
        "statuscode": status,
        "owningextensionid": owner,
        "createdon": created,
        "startedon": created + timedelta(seconds=1),
        "completedon": created + timedelta(seconds=3),
    }
    return row | kw


def baseline() -> dict[str, list[Row]]:
    """The healthy part of the tenant, present in every case: it must always be judged."""
    good = flow(
        GOOD_FLOW,
        actions={
            "List_rows": connector_action("ListRecords"),
            "Update_row": connector_action("UpdateRecord", run_after={"List_rows": ["Succeeded"]}),
        },
        trigger=dataverse_trigger(3, filteringattributes="name"),
    )
    return {
        "flows": [good],
        "flow_api_runs": [
            api_run(GOOD_FLOW, f"good-run-{i}", "Failed" if i == 0 else "Succeeded", hours=i + 1)
            for i in range(4)
        ],
        "plugin_steps": [step(GOOD_STEP)],
        "plugintracelogs": [trace(f"good-trace-{i}", GOOD_STEP) for i in range(3)],
        "asyncoperations": [job(f"good-job-{i}", GOOD_STEP) for i in range(3)],
    }


# (check id, resource id) that judge the healthy part: a pass or a fail, never an error.
BASELINE_JUDGED: tuple[tuple[str, str], ...] = (
    ("flow-definition-unreadable", GOOD_FLOW),
    ("flow-update-trigger-unfiltered", GOOD_FLOW),
    ("flow-monolithic", GOOD_FLOW),
    ("flow-no-error-handling", GOOD_FLOW),
    ("flow-failure-rate", GOOD_FLOW),
    ("operation-continually-failing", GOOD_FLOW),
    ("plugin-sync-slow", GOOD_STEP),
    ("near-platform-timeout", GOOD_STEP),
    ("system-jobs-failing", GOOD_STEP),
)


# Cases --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    """A finding the case must produce; `phrase` must appear in its message (any case)."""

    check_id: str
    resource_id: str
    status: str
    phrase: str = ""
    environment_id: str = ENV
    name: str | None = None  # the resource name, exactly as the tenant gave it


def broken(flow_id: str, why: str, environment_id: str = ENV) -> Expect:
    """The flow's definition is reported unreadable, saying `why`."""
    return Expect("flow-definition-unreadable", flow_id, "error", why, environment_id)


def readable(flow_id: str, environment_id: str = ENV) -> Expect:
    """The flow's odd definition was still read."""
    return Expect("flow-definition-unreadable", flow_id, "pass", "parsed", environment_id)


@dataclass(frozen=True)
class Case:
    """Hostile rows added to the baseline, and what the checks must say about them."""

    id: str
    rows: Mapping[str, Sequence[Row]]
    expect: tuple[Expect, ...] = ()
    judged: tuple[tuple[str, str], ...] = ()  # also judged: pass or fail
    never_pass: tuple[tuple[str, str], ...] = ()  # must not be reported as a pass
    silent: tuple[tuple[str, str], ...] = ()  # must say nothing about it
    # Baseline checks whose per-resource findings the case legitimately replaces.
    replaces: frozenset[str] = frozenset()
    environments: tuple[str, ...] = (ENV,)
    # What the analysis made of the rows: called with the shared Evidence and the case's
    # environment id.
    facts: Callable[[Evidence, str], None] | None = None


def _dataverse_message(message: Any) -> dict[str, Any]:
    trigger = dataverse_trigger(3)
    trigger["inputs"]["parameters"]["subscriptionRequest/message"] = message
    return bare({"Update": connector_action("UpdateRecord")}, trigger)


# What the analysis made of odd rows, checked on the shared Evidence. -------------------------


def _one(frame: pd.DataFrame, env: str, **match: Any) -> pd.Series:
    """The single row of `frame` in `env` whose columns equal `match`."""
    rows = frame[frame["environment_id"] == env]
    for column, value in match.items():
        rows = rows[rows[column] == value]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def _notes(phrase: str) -> Callable[[Evidence, str], None]:
    """Some action of the case's flow carries a note saying `phrase`."""

    def facts(evidence: Evidence, env: str) -> None:
        actions = evidence.actions
        notes = actions.loc[actions["environment_id"] == env, "note"].dropna()
        assert notes.str.contains(phrase, regex=False).any(), list(notes)

    return facts


def _unknown_message(evidence: Evidence, env: str) -> None:
    trigger = _one(evidence.triggers, env, flow_id="odd")
    assert trigger["is_dataverse"]
    assert pd.isna(trigger["dataverse_message"])


def _deep(evidence: Evidence, env: str) -> None:
    innermost = _one(evidence.actions, env, action_name="Compose")
    assert innermost["depth"] == 201
    assert innermost["scope_path"] == "/".join(f"Scope_{i}" for i in range(1, 201))


def _untimed(evidence: Evidence, env: str) -> None:
    step = _one(evidence.steps, env, stepid=ODD_STEP)
    assert (step["executions"], step["timed_executions"]) == (3, 0)
    assert pd.isna(step["p95_ms"])


def _unknown_status(evidence: Evidence, env: str) -> None:
    assert _one(evidence.jobs, env, operationtype=1)["unknown_status"] == 3


def _orphan_runs(evidence: Evidence, env: str) -> None:
    summary = _one(evidence.run_summary, env, flow_id="orphan-workflow")
    assert (summary["runs"], summary["failed"], summary["source"]) == (3, 3, "dataverse")


_DEEP_JSON = '{"a":' * 100_000 + "1" + "}" * 100_000
_HUGE_INT = '{"definition": {"triggers": {}, "actions": {}, "n": 1' + "0" * 5000 + "}}"

DEFINITION_CASES: tuple[Case, ...] = (
    Case("invalid-json", {"flows": [flow("bad", "{not json")]}, (broken("bad", "not valid JSON"),)),
    Case(
        "truncated-json",
        {"flows": [flow("bad", '{"properties": {"definition": {"triggers": {')]},
        (broken("bad", "not valid JSON"),),
    ),
    Case("empty-string", {"flows": [flow("bad", "")]}, (broken("bad", "empty"),)),
    Case("blank-text", {"flows": [flow("bad", " \n\t ")]}, (broken("bad", "empty"),)),
    Case(
        "json-array",
        {"flows": [flow("bad", "[1, 2, 3]")]},
        (broken("bad", "not a JSON object (it is a list)"),),
    ),
    Case(
        "json-scalar",
        {"flows": [flow("bad", '"just text"'), flow("nul", "null")]},
        (broken("bad", "it is a string"), broken("nul", "it is null")),
    ),
    Case(
        "properties-not-object",
        {"flows": [defined("bad", {"properties": "definition"})]},
        (broken("bad", "`properties` is not an object"),),
    ),
    Case(
        "missing-definition",
        {"flows": [defined("bad", {"properties": {"displayName": "x"}})]},
        (broken("bad", "no `definition`"),),
    ),
    Case(
        "definition-null",
        {"flows": [defined("bad", {"properties": {"definition": None}})]},
        (broken("bad", "no `definition`"),),
    ),
    Case(
        "definition-list",
        {"flows": [defined("bad", {"definition": [{"triggers": {}}]})]},
        (broken("bad", "`definition` is not an object (it is a list)"),),
    ),
    Case(
        "triggers-list",
        {"flows": [defined("bad", {"definition": {"triggers": [{"type": "Request"}]}})]},
        (broken("bad", "`triggers` is not an object (it is a list)"),),
    ),
    Case(
        "actions-string",
        {"flows": [defined("bad", {"definition": {"triggers": {}, "actions": "Compose"}})]},
        (broken("bad", "`actions` is not an object (it is a string)"),),
    ),
    Case(
        "raw-control-character-in-json",
        {"flows": [flow("bad", '{"definition": {"actions": {"A\x00\x1b": {}}}}')]},
        (broken("bad", "invalid control character"),),
    ),
    Case(
        "json-nested-100000-deep",
        {"flows": [flow("bad", _DEEP_JSON)]},
        (broken("bad", "nested too deeply"),),
    ),
    Case(
        "integer-literal-5000-digits",
        {"flows": [flow("bad", _HUGE_INT)]},
        (broken("bad", "not valid JSON"),),
    ),
    Case(
        "no-definition-collected",
        {"flows": [{"environment_id": ENV, "flow_name": "bad", "state": "Started"}]},
        (broken("bad", "no definition was collected"),),
    ),
    # Odd but readable: parsed, and judged by the definition checks.
    Case(
        "trigger-without-inputs",
        {"flows": [defined("odd", bare({"A": connector_action()}, {"type": "OpenApiConnection"}))]},
        (readable("odd"),),
        judged=(("flow-monolithic", "odd"), ("flow-no-error-handling", "odd")),
    ),
    Case(
        "trigger-is-a-string",
        {"flows": [defined("odd", bare({"A": connector_action()}, "when a row changes"))]},
        (readable("odd"),),
        judged=(("flow-monolithic", "odd"),),
    ),
    Case(
        "dataverse-message-abc",
        {"flows": [defined("odd", _dataverse_message("abc"))]},
        (readable("odd"),),
        judged=(("flow-monolithic", "odd"),),
        never_pass=(("flow-update-trigger-unfiltered", "odd"),),
        facts=_unknown_message,
    ),
    Case(
        "dataverse-message-99",
        {"flows": [defined("odd", _dataverse_message(99))]},
        (readable("odd"),),
        judged=(("flow-monolithic", "odd"),),
        never_pass=(("flow-update-trigger-unfiltered", "odd"),),
        facts=_unknown_message,
    ),
    Case(
        "unknown-action-types",
        {
            "flows": [
                defined(
                    "odd",
                    bare(
                        {
                            "Teleport": {"type": "QuantumTeleport", "runAfter": {}},
                            "Typeless": {"inputs": {}},
                            "Numeric": {"type": 42, "runAfter": {"Teleport": ["Succeeded"]}},
                        }
                    ),
                )
            ]
        },
        (readable("odd"), Expect("flow-monolithic", "odd", "pass", "3 actions")),
    ),
    Case(
        "actions-that-are-not-objects",
        {"flows": [defined("odd", bare({"Text": "just a string", "Number": 7, "Null": None}))]},
        (readable("odd"), Expect("flow-monolithic", "odd", "pass", "3 actions")),
        facts=_notes("action is not an object (it is a string)"),
    ),
    Case(
        "run-after-cycle",
        {
            "flows": [
                defined(
                    "odd",
                    bare(
                        {
                            "A": connector_action(run_after={"B": ["Succeeded"]}),
                            "B": connector_action(run_after={"A": ["Succeeded"]}),
                        }
                    ),
                )
            ]
        },
        (readable("odd"), Expect("flow-monolithic", "odd", "pass", "2 actions")),
        facts=_notes("runAfter cycle"),
    ),
    Case(
        "run-after-unknown-action",
        {"flows": [defined("odd", bare({"A": connector_action(run_after={"Ghost": ["Failed"]})}))]},
        (readable("odd"),),
        judged=(("flow-no-error-handling", "odd"),),
        facts=_notes("unknown action(s): Ghost"),
    ),
    Case(
        "run-after-upper-case",
        {"flows": [defined("odd", bare(catching(["FAILED", "TIMEDOUT"])))]},
        (readable("odd"), Expect("flow-no-error-handling", "odd", "pass", "report the failure")),
    ),
    Case(
        "run-after-bare-string",
        {"flows": [defined("odd", bare(catching("Failed")))]},
        (readable("odd"), Expect("flow-no-error-handling", "odd", "pass", "report the failure")),
    ),
    Case(
        "scopes-nested-200-deep",
        {"flows": [defined("odd", bare(nested_scopes(200)))]},
        (readable("odd"), Expect("flow-monolithic", "odd", "fail", "nested 200 levels deep")),
        facts=_deep,
    ),
    Case(
        "megabyte-string-in-action",
        {"flows": [defined("odd", bare({"Compose": {"type": "Compose", "inputs": "x" * MB}}))]},
        (readable("odd"), Expect("flow-monolithic", "odd", "pass", "1 actions")),
    ),
    Case(
        "escaped-nul-surrogate-and-bom",
        {
            "flows": [
                flow(
                    "odd",
                    "\ufeff"
                    + '{"definition": {"triggers": {"manual": {"type": "Request"}}, "actions":'
                    + ' {"A\\u0000\\ud800": {"type": "Compose", "inputs": "\\u001b[31m"}}}}',
                )
            ]
        },
        (readable("odd"),),
        judged=(("flow-monolithic", "odd"),),
    ),
    Case(
        "markup-and-control-characters-in-names",
        {
            "flows": [
                {
                    **defined(
                        f"odd-{i}",
                        bare({name: connector_action(), f"{name}_2": connector_action()}),
                    ),
                    "display_name": name,
                }
                for i, name in enumerate((*MARKUP, CONTROL))
            ]
        },
        tuple(
            Expect("flow-monolithic", f"odd-{i}", "pass", "2 actions", name=name)
            for i, name in enumerate((*MARKUP, CONTROL))
        ),
    ),
    Case(
        "duplicate-flow-ids-across-environments",
        {
            "flows": [
                defined("dup", bare({"A": connector_action()})),
                flow("dup", "{broken", env=OTHER_ENV),
            ]
        },
        (readable("dup"), broken("dup", "not valid JSON", OTHER_ENV)),
        judged=(("flow-monolithic", "dup"),),
        environments=(ENV, OTHER_ENV),
    ),
    Case(
        "guid-ids-in-odd-case-with-braces",
        {
            "flows": [defined("{" + GUID + "}", bare({"A": connector_action()}))],
            "workflows": [
                {
                    "environment_id": ENV,
                    "workflowid": "{" + GUID.lower() + "}",
                    "name": "Braced",
                    "statecode": 1,
                    "clientdata": "{broken",
                }
            ],
        },
        (readable("{" + GUID + "}"), broken("{" + GUID.lower() + "}", "not valid JSON")),
    ),
)


def _runs(flow_id: str, status: str, count: int = 3, **kw: Any) -> list[Row]:
    return [api_run(flow_id, f"{flow_id}-{i}", status, hours=i + 1, **kw) for i in range(count)]


def _odd_flow() -> Row:
    return defined("odd", bare({"A": connector_action()}))


RECORD_CASES: tuple[Case, ...] = (
    Case(
        "trace-null-durations",
        {
            "plugin_steps": [step(ODD_STEP)],
            "plugintracelogs": [trace(f"t{i}", ODD_STEP, None) for i in range(3)],
        },
        # Nothing timed: not a pass (not-assessed).
        never_pass=(("near-platform-timeout", ODD_STEP),),
        silent=(("plugin-sync-slow", ODD_STEP),),
        facts=_untimed,
    ),
    Case(
        "trace-negative-durations",
        {
            "plugin_steps": [step(ODD_STEP)],
            "plugintracelogs": [trace(f"t{i}", ODD_STEP, -5000) for i in range(3)],
        },
        # Nothing timed: not a pass (not-assessed).
        never_pass=(("near-platform-timeout", ODD_STEP),),
        silent=(("plugin-sync-slow", ODD_STEP),),  # nothing timed, nothing to rank
        facts=_untimed,
    ),
    Case(
        "trace-huge-durations",
        {
            "plugin_steps": [step(ODD_STEP)],
            "plugintracelogs": [trace(f"t{i}", ODD_STEP, 10**15) for i in range(3)],
        },
        (Expect("near-platform-timeout", ODD_STEP, "fail", "3 of 3"),),
        judged=(("plugin-sync-slow", ODD_STEP),),
    ),
    Case(
        "trace-megabyte-exception",
        {
            "plugin_steps": [step(ODD_STEP)],
            "plugintracelogs": [
                trace(f"t{i}", ODD_STEP, exceptiondetails="System.Exception: " + "x" * MB)
                for i in range(3)
            ],
        },
        judged=(("plugin-sync-slow", ODD_STEP), ("near-platform-timeout", ODD_STEP)),
    ),
    Case(
        "trace-mode-7-and-unknown-operationtype",
        {
            "plugin_steps": [step(ODD_STEP, mode=7, stage=99)],
            "plugintracelogs": [
                trace(f"t{i}", ODD_STEP, mode=7, operationtype=12345, depth=-3) for i in range(3)
            ],
        },
        judged=(("near-platform-timeout", ODD_STEP),),
    ),
    Case(
        "trace-setting-9",
        {"organizations": [organization(trace=9)]},
        (
            Expect("coverage-trace-executions", ENV, "not-assessed", "unknown"),
            Expect("plugin-sync-slow", ENV, "not-assessed", "trace logging is unknown"),
            Expect("near-platform-timeout", ENV, "not-assessed", "trace logging is unknown"),
        ),
        replaces=frozenset({"plugin-sync-slow", "near-platform-timeout"}),
    ),
    Case(
        "job-megabyte-message",
        {
            "asyncoperations": [
                job(f"j{i}", ODD_STEP, 31, message="Unexpected exception " + "y" * MB)
                for i in range(20)
            ]
        },
        (Expect("system-jobs-failing", ODD_STEP, "fail", "commonest error (20x)"),),
    ),
    Case(
        "job-unknown-status-999",
        {"asyncoperations": [job(f"j{i}", ODD_STEP, 999) for i in range(3)]},
        judged=(("system-jobs-failing", ODD_STEP),),
        facts=_unknown_status,
    ),
    Case(
        "job-unknown-operationtype-12345",
        {"asyncoperations": [job(f"j{i}", ODD_STEP, operationtype=12345) for i in range(3)]},
    ),
    Case(
        "job-ends-before-it-starts",
        {
            "asyncoperations": [
                job(f"j{i}", ODD_STEP, startedon=_at(10), completedon=_at(20)) for i in range(3)
            ]
        },
        judged=(("system-jobs-failing", ODD_STEP),),
    ),
    Case(
        "job-missing-timestamps",
        {
            "asyncoperations": [
                job(f"j{i}", ODD_STEP, 31, createdon=None, startedon=None, completedon=None)
                for i in range(3)
            ]
        },
        judged=(("system-jobs-failing", ODD_STEP),),
    ),
    Case(
        "flow-run-status-weird",
        {"flows": [_odd_flow()], "flow_api_runs": _runs("odd", "Weird")},
        judged=(("flow-failure-rate", "odd"),),
    ),
    Case(
        "flow-run-without-start-time",
        {"flows": [_odd_flow()], "flow_api_runs": _runs("odd", "Failed", start_time=None)},
        judged=(("flow-failure-rate", "odd"), ("operation-continually-failing", "odd")),
    ),
    Case(
        "flow-run-ends-before-it-starts",
        {"flows": [_odd_flow()], "flow_api_runs": _runs("odd", "Failed", end_time=_at(50))},
        judged=(("flow-failure-rate", "odd"),),
    ),
    Case(
        "flow-run-megabyte-markup-error",
        {
            "flows": [_odd_flow()],
            "flow_api_runs": _runs("odd", "Failed", 20, error_message=MARKUP[1] + "z" * MB),
        },
        (Expect("flow-failure-rate", "odd", "fail", "commonest error (20x): =HYPERLINK("),),
        judged=(("operation-continually-failing", "odd"),),
    ),
    Case(
        "dataverse-runs-of-a-flow-without-definition",
        {
            "flowruns": [
                {
                    "environment_id": ENV,
                    "flowrunid": f"fr-{i}",
                    "workflowid": "orphan-workflow",
                    "status": "Failed",
                    "starttime": _at(i + 1),
                    "endtime": _at(i + 1) + timedelta(seconds=5),
                    "errormessage": MARKUP[2],
                }
                for i in range(3)
            ]
        },
        judged=(("flow-failure-rate", "orphan-workflow"),),
        facts=_orphan_runs,
    ),
    Case(
        "actions-of-runs-that-do-not-exist",
        {
            "flows": [_odd_flow()],
            "flow_run_actions": [
                {
                    "environment_id": ENV,
                    "flow_name": flow_id,
                    "run_name": "no-such-run",
                    "action_name": "A",
                    "status": "Failed",
                    "retry_count": 4,
                    "retry_codes": "429,500,abc,",
                    "start_time": _at(2),
                    "end_time": _at(3),
                }
                for flow_id in ("odd", "no-such-flow")
            ],
        },
        (readable("odd"),),
    ),
    Case(
        "hostile-text-in-steps-and-jobs",
        {
            "plugin_steps": [step(ODD_STEP, name=CONTROL + MARKUP[0])],
            "plugintracelogs": [trace(f"t{i}", ODD_STEP, typename=MARKUP[1]) for i in range(3)],
            "asyncoperations": [
                job(f"j{i}", ODD_STEP, 31, name=MARKUP[2], message=CONTROL) for i in range(3)
            ],
        },
        judged=(("plugin-sync-slow", ODD_STEP), ("system-jobs-failing", ODD_STEP)),
    ),
)

IN_MEMORY_CASES = DEFINITION_CASES + RECORD_CASES


def _coerced_traces(evidence: Evidence, env: str) -> None:
    traces = evidence.frames.plugintracelogs
    traces = traces[traces["pluginstepid"].eq(ODD_STEP) & traces["environment_id"].eq(env)]
    traces = traces.set_index("plugintracelogid")
    durations = traces["performanceexecutionduration"]
    assert durations.isna().to_dict() == {
        **{"t1": True, "t2": True, "t3": False},
        **{"t4": True, "t5": False, "t6": False},
    }
    assert [durations[t] for t in ("t3", "t5", "t6")] == [-5, 1000, 150]
    assert traces["depth"].isna()["t4"]
    step = _one(evidence.steps, env, stepid=ODD_STEP)
    assert (step["mode"], step["executions"], step["failures"]) == (7, 6, 1)
    assert (step["timed_executions"], step["max_ms"]) == (2, 1000)  # -5 ms is not a time


def _coerced_jobs(evidence: Evidence, env: str) -> None:
    jobs = evidence.frames.asyncoperations
    jobs = jobs[jobs["environment_id"] == env].set_index("asyncoperationid")
    assert (jobs.loc["j1", "statuscode"], jobs.loc["j2", "operationtype"]) == (999, 12345)
    assert jobs["retrycount"].isna()["j2"]
    assert jobs["createdon"].isna()["j4"]
    assert jobs["statecode"].isna()["j5"]
    assert jobs.loc["j5", "errorcode"] == -2147220891
    owner = _one(evidence.job_owners, env, operationtype=1, owner_id=ODD_STEP)
    assert (owner["jobs"], owner["failed"], owner["unknown_status"]) == (4, 2, 1)
    assert owner["clipped_durations"] == 1  # j3 started before it was created


def _runs_kept_actions_dropped(evidence: Evidence, env: str) -> None:
    runs = evidence.all_runs
    runs = runs[runs["flow_id"].eq("odd") & runs["environment_id"].eq(env)].set_index("run_name")
    assert runs["start_time"].isna().to_dict() == {
        **{"r1": False, "r2": True, "r3": False},
        **{"r4": True, "r5": False},
    }
    assert runs["duration_ms"].isna()["r3"]  # it ended before it started
    summary = _one(evidence.run_summary, env, flow_id="odd")
    assert (summary["runs"], summary["failed"]) == (5, 4)
    # Actions belong to the window of their run: one with no run is not read at all.
    actions = evidence.frames.flow_run_actions
    assert actions[actions["environment_id"] == env].empty


def _one_flow_per_guid(evidence: Evidence, env: str) -> None:
    definitions = evidence.definitions
    row = _one(definitions[definitions["environment_id"] == env], env, workflowid=GUID.lower())
    assert (row["flow_id"], row["source"]) == ("braced", "clientdata")
    summary = _one(evidence.run_summary, env, flow_id="braced")
    assert (summary["runs"], summary["source"]) == (1, "dataverse")


STORE_CASES: tuple[Case, ...] = (
    Case(
        "store-broken-definitions",
        {
            "workflows": [
                {
                    "environment_id": ENV,
                    "workflowid": GUID,
                    "name": MARKUP[0],
                    "category": "modern flow",  # not an integer: NULL
                    "statecode": 1,
                    "clientdata": "{not json",
                    "createdon": "yesterday",  # not a timestamp: NULL
                },
                {
                    "environment_id": ENV,
                    "workflowid": "b0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d",
                    "statecode": "1",
                    "clientdata": {"properties": {"definition": None}},  # an object, not text
                },
            ],
            # An object where text belongs is stored as its JSON text.
            "flows": [flow("listed") | {"definition": [1, 2]}],
        },
        (
            Expect(
                "flow-definition-unreadable",
                GUID.lower(),
                "error",
                "not valid JSON",
                name=MARKUP[0],
            ),
            broken("b0b1c2d3-e4f5-4a6b-8c7d-9e0f1a2b3c4d", "no `definition`"),
            broken("listed", "it is a list"),
        ),
    ),
    Case(
        "store-bad-trace-values",
        {
            "plugin_steps": [step(ODD_STEP, mode="7", stage=True, statecode="zero")],
            "plugintracelogs": [
                trace("t1", ODD_STEP, "fast"),
                trace("t2", ODD_STEP, 10**30),
                trace("t3", ODD_STEP, -5),
                trace("t4", ODD_STEP, float("nan"), depth=1e300),
                trace("t5", ODD_STEP, "1e3", createdon="now", performanceexecutionstarttime=None),
                trace("t6", ODD_STEP, exceptiondetails="E" * MB, messageblock="M" * MB),
            ],
        },
        judged=(("near-platform-timeout", ODD_STEP),),
        facts=_coerced_traces,
    ),
    Case(
        "store-bad-job-values",
        {
            "asyncoperations": [
                job("j1", ODD_STEP, "999"),
                job("j2", ODD_STEP, operationtype=12345, retrycount=True),
                job("j3", ODD_STEP, 31, message="boom " * (MB // 5), startedon=_at(30)),
                job("j4", ODD_STEP, 31, createdon="soon", executiontimespan="inf"),
                job("j5", ODD_STEP, statecode=2**40, errorcode="-2147220891"),
            ]
        },
        judged=(("system-jobs-failing", ODD_STEP),),
        facts=_coerced_jobs,
    ),
    Case(
        "store-bad-runs-and-orphan-actions",
        {
            "flows": [_odd_flow()],
            "flow_api_runs": [
                api_run("odd", "r1", "Weird"),
                api_run("odd", "r2", "Failed", start_time=None),
                api_run("odd", "r3", "Failed", end_time=_at(90)),
                api_run("odd", "r4", "Failed", start_time="last tuesday"),
                api_run("odd", "r5", "Failed", error_message=CONTROL * 1000),
            ],
            "flow_run_actions": [
                {
                    "environment_id": ENV,
                    "flow_name": "odd",
                    "run_name": "no-such-run",
                    "action_name": "A",
                    "status": "Failed",
                    "retry_count": 10**12,  # not an INTEGER: NULL
                }
            ],
        },
        (readable("odd"),),
        judged=(("flow-failure-rate", "odd"), ("operation-continually-failing", "odd")),
        silent=(("flow-retries-exhausted", "odd"), ("flow-action-slow", "odd")),
        facts=_runs_kept_actions_dropped,
    ),
    Case(
        "store-hostile-text",
        {
            "flows": [
                {
                    **defined("odd", bare({"A\ud800": connector_action()})),
                    "display_name": CONTROL + MARKUP[0] + "\ud800",
                }
            ],
            "plugin_steps": [step(ODD_STEP, name=MARKUP[1] + CONTROL)],
            "plugintracelogs": [trace(f"t{i}", ODD_STEP) for i in range(3)],
        },
        (
            readable("odd"),
            # A lone surrogate cannot be stored as UTF-8: it is kept, escaped.
            Expect(
                "flow-monolithic", "odd", "pass", "1 actions", name=CONTROL + MARKUP[0] + "\\ud800"
            ),
            Expect("plugin-sync-slow", ODD_STEP, "pass", "not judged", name=MARKUP[1] + CONTROL),
        ),
    ),
    Case(
        "store-guids-in-odd-case-with-braces",
        {
            "flows": [
                defined("braced", bare({"A": connector_action()}), workflowid="{" + GUID + "}")
            ],
            "workflows": [
                {
                    "environment_id": ENV,
                    "workflowid": GUID.lower(),
                    "name": "Braced",
                    "statecode": 1,
                    "clientdata": json.dumps(bare({"A": connector_action()})),
                }
            ],
            "flowruns": [
                {
                    "environment_id": ENV,
                    "flowrunid": "{" + GUID + "}",
                    "workflowid": "{" + GUID + "}",
                    "status": "Succeeded",
                    "starttime": _at(1),
                    "endtime": _at(1) + timedelta(seconds=1),
                }
            ],
        },
        (readable("braced"),),
        judged=(("flow-monolithic", "braced"), ("flow-failure-rate", "braced")),
        silent=(("flow-monolithic", GUID.lower()),),  # one flow, not two
        facts=_one_flow_per_guid,
    ),
)


# Running and judging ------------------------------------------------------------------------
#
# Each case lives in an environment of its own (named after it), with its own copy of the
# baseline, and every case of a kind is analysed in one run of every check: per-environment
# checks (trace setting, coverage) stay per case, the run is quick, and each case's broken
# records sit next to everybody else's healthy ones.


def _environments(case: Case) -> dict[str, str]:
    """The environment ids a case's rows name -> the ones it is analysed in."""
    return {ENV: case.id, OTHER_ENV: f"{case.id}~2"}


def _rows(case: Case) -> dict[str, list[Row]]:
    """The baseline and the case's rows, in the case's own environment(s)."""
    envs = _environments(case)
    tables: dict[str, list[Row]] = defaultdict(list)
    for source in (baseline(), case.rows):
        for table, rows in source.items():
            for row in rows:
                tables[table].append(row | {"environment_id": envs[row["environment_id"]]})
    given = {r["environment_id"] for r in tables["organizations"]}
    case_envs = [envs[e] for e in case.environments]
    tables["organizations"] += [organization(e) for e in case_envs if e not in given]
    tables["environments"] = [environment(e, f"Contoso {e}") for e in case_envs]
    return tables


def _all_rows(cases: Sequence[Case]) -> dict[str, list[Row]]:
    tables: dict[str, list[Row]] = defaultdict(list)
    for case in cases:
        for table, rows in _rows(case).items():
            tables[table].extend(rows)
    return tables


def _write_store(path: Path, tables: Mapping[str, Sequence[Row]]) -> Store:
    """A store holding `tables` as one completed scan that collected every query."""
    store = Store.open(path)
    scan = store.begin_scan(
        window_start=WINDOW.start, window_end=WINDOW.end, arguments={}, started=END
    )
    for table, rows in tables.items():
        by_env: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            by_env[row["environment_id"]].append(row)
        query = QUERY_OF_TABLE.get(table, table)
        for env, env_rows in by_env.items():
            if table in ("flow_api_runs", "flow_run_actions"):
                # As the flow API source writes them: many finished units in one transaction.
                flows = sorted({str(r["flow_name"]) for r in env_rows})
                store.write_units(
                    scan_id=scan,
                    environment_id=env,
                    table=table,
                    rows=env_rows,
                    units=[(query, f, sum(r["flow_name"] == f for r in env_rows)) for f in flows],
                    also=(
                        ("action_samples", [{"flow_name": f, "sampled": 1} for f in flows])
                        if table == "flow_run_actions"
                        else None
                    ),
                )
            else:
                store.write_page(
                    scan_id=scan,
                    environment_id=env,
                    query_id=query,
                    unit="all",
                    table=table,
                    rows=env_rows,
                    next_link=None,
                    done=True,
                )
    for env in sorted({r["environment_id"] for r in tables["environments"]}):
        for query in QUERY_IDS:
            store.record_query(
                scan_id=scan,
                environment_id=env,
                query_id=query,
                status="collected",
                rows=1,
                requests=1,
                retries=0,
                throttled=0,
            )
    store.finish_scan(scan, status="completed", ended=END)
    return store


@dataclass(frozen=True)
class Analysed:
    """One run of every check, and the Evidence it read."""

    evidence: Evidence
    findings: list[Finding]


def _analyse(built: Frames) -> Analysed:
    evidence = Evidence(built)
    return Analysed(evidence, run_checks(evidence, Settings()))


@pytest.fixture(scope="module")
def in_memory() -> Analysed:
    """Every in-memory case analysed together, each in its environment."""
    tables = _all_rows(IN_MEMORY_CASES)
    return _analyse(frames(**{table: pd.DataFrame(rows) for table, rows in tables.items()}))


@pytest.fixture(scope="module")
def through_store(tmp_path_factory: pytest.TempPathFactory) -> Analysed:
    """Every store case written through the Store API, read back and analysed together."""
    path = tmp_path_factory.mktemp("hostile") / "auditor.duckdb"
    with _write_store(path, _all_rows(STORE_CASES)) as store:
        return _analyse(load_frames(store, window=WINDOW))


def _judge(case: Case, analysed: Analysed) -> None:
    """The assertions every case shares, on the findings of its environment(s)."""
    found = analysed.findings
    crashed = [f"{f.resource_id}: {f.message}" for f in found if f.resource_kind == "check"]
    assert not crashed, f"checks raised: {crashed}"
    envs = _environments(case)
    mine = [f for f in found if f.environment_id in {envs[e] for e in case.environments}]
    for f in mine:
        assert f.status in STATUSES
        text = json.dumps(f.as_dict(), allow_nan=False)
        assert len(text) < MAX_FINDING_JSON, f"{f.check_id} finding of {len(text)} chars"
    by_key: dict[tuple[str, str | None, str | None], list[Finding]] = defaultdict(list)
    for f in mine:
        by_key[(f.check_id, f.environment_id, f.resource_id)].append(f)

    def findings(check_id: str, resource_id: str, environment_id: str = ENV) -> list[Finding]:
        return by_key.get((check_id, envs[environment_id], resource_id), [])

    judged = [j for j in BASELINE_JUDGED if j[0] not in case.replaces] + list(case.judged)
    for check_id, resource_id in judged:
        got = findings(check_id, resource_id)
        assert got, f"{check_id} said nothing about {resource_id}"
        assert {f.status for f in got} <= {"pass", "fail"}, [f.message for f in got]
    for want in case.expect:
        resource_id = envs.get(want.resource_id, want.resource_id)  # environment findings
        got = findings(want.check_id, resource_id, want.environment_id)
        assert [f.status for f in got] == [want.status], (want, [f.as_dict() for f in got])
        assert want.phrase.lower() in got[0].message.lower(), (want, got[0].message)
        if want.name is not None:
            assert got[0].resource_name == want.name
    for check_id, resource_id in case.never_pass:
        got = findings(check_id, resource_id)
        assert "pass" not in {f.status for f in got}, [f.message for f in got]
    for check_id, resource_id in case.silent:
        assert not findings(check_id, resource_id), [
            f.message for f in findings(check_id, resource_id)
        ]
    if case.facts is not None:
        case.facts(analysed.evidence, envs[ENV])
    # A flow reported unreadable is not judged on the definition it does not have.
    for want in case.expect:
        if want.check_id == "flow-definition-unreadable" and want.status == "error":
            others = [
                f
                for (check_id, env, resource_id), fs in by_key.items()
                if (env, resource_id) == (envs[want.environment_id], want.resource_id)
                and check_id != want.check_id
                for f in fs
            ]
            assert all(f.status in ("error", "not-assessed") for f in others), [
                f.as_dict() for f in others
            ]


@pytest.mark.parametrize("case", IN_MEMORY_CASES, ids=lambda c: c.id)
def test_hostile_frames_are_reported_not_raised(case: Case, in_memory: Analysed) -> None:
    _judge(case, in_memory)


@pytest.mark.parametrize("case", STORE_CASES, ids=lambda c: c.id)
def test_hostile_rows_through_the_store_are_reported_not_raised(
    case: Case, through_store: Analysed
) -> None:
    _judge(case, through_store)


def test_the_corpus_is_large_and_its_ids_unique() -> None:
    ids = [c.id for c in (*IN_MEMORY_CASES, *STORE_CASES)]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 30


def test_a_broken_case_alone_is_reported_too() -> None:
    """The shared run could hide an interaction; one broken flow on its own says the same."""
    case = DEFINITION_CASES[0]
    _judge(case, _analyse(frames(**{t: pd.DataFrame(r) for t, r in _rows(case).items()})))
