"""A hostile corpus for the simulated tenant: broken and malicious records, each with the
finding it must produce.

Tenant data is untrusted (docs/architecture.md, rule 7 and "Quality bars"): a definition
that does not parse, a run or job in a state nobody documented, a duration that is null or
negative, a message of a megabyte, markup and spreadsheet formulas in names. Each case here
is rows added to the frames of the simulated tenant before it is served, so they reach the
auditor through the same HTTPS APIs, collector, store, analysis and renderers as real data.
Every case names the finding(s) that must then say something about its records, so a
failure names the case.

Rows follow the frames' conventions (auditor/sim/model.py): Dataverse logical names, lower-case
GUIDs, UTC timestamps, nullable integers. A case is placed where the real API would carry it:
an unparsable definition of a solution flow arrives as Dataverse `workflows.clientdata` text;
the flow API serves `properties.definition` as JSON, so there a broken definition is a list,
a string or null. Ids are derived from the case id (uuid5), so expectations can name them.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from auditor.checks.base import MAX_TEXT
from auditor.sim import scenario
from auditor.sim.model import SimEnvironment, SimTenant
from auditor.sim.server import RenderActions
from tests.checks.builders import catching, connector_action, dataverse_trigger, nested_scopes

Row = dict[str, Any]

NOW: datetime = scenario.NOW
TARGET_SLUG = "contoso-production"  # every case lives in the messy environment
ENVIRONMENT = "<environment>"  # an expected resource id: the target environment's id
KIB = 1 << 10
MIB = 1 << 20

SCRIPT = "<script>alert(1)</script>"
IMG = "<img src=x onerror=alert(1)>"
SVG = "<svg onload=alert(1)>"
LINK = '<a href="javascript:alert(1)">click</a>'
HYPERLINK = '=HYPERLINK("http://evil.example","x")'
CMD = "+cmd|' /C calc'!A0"
AT_SUM = "@SUM(1)"
MINUS = "-2+3"
CONTROL = "nul\x00bell\x07esc\x1b[31m del\x7f"
BIDI = "\u202eevil\u202c"
# Markup the HTML and Markdown must never show as elements, and formulas no CSV cell may start.
INJECTED_TAGS = ("script", "img", "svg", "a")
FORMULAS = (HYPERLINK, CMD, AT_SUM, MINUS)

# Ids the simulated organisation shares: the Update message (well known,
# sim/scenario/plugins.py), and a plug-in type and assembly added once for the hostile steps.
UPDATE_MESSAGE = "20bebb1b-ea3e-db11-86a7-000a3a5473e8"
_NAMESPACE = uuid.UUID("6f1d7a52-3c1b-4b7e-9a55-0d6c1f0e2a11")


def ident(case_id: str, part: str) -> str:
    """A stable lower-case GUID for one record of a case."""
    return str(uuid.uuid5(_NAMESPACE, f"{case_id}/{part}"))


PLUGIN_TYPE = ident("support", "plugintype")
ASSEMBLY = ident("support", "assembly")


def _at(hours: float) -> pd.Timestamp:
    """A moment `hours` before the tenant's "now": inside the scan and analysis windows."""
    return pd.Timestamp(NOW - timedelta(hours=hours))


# Expectations -------------------------------------------------------------------------------

JUDGED = ("pass", "fail")


@dataclass(frozen=True)
class Expect:
    """A finding the case must produce: one finding of `check_id` about `resource_id`, with a
    status among `statuses`, `phrase` in its message (any case), when given exactly `name` as
    its resource name, and `evidence` as a value of one of its evidence rows."""

    check_id: str
    resource_id: str
    statuses: tuple[str, ...]
    phrase: str = ""
    name: str | None = None
    evidence: str | None = None


@dataclass(frozen=True)
class Case:
    """Hostile rows (by frame: `flows` and `runs` of the flow API, else Dataverse entity sets)
    and the findings they must produce."""

    id: str
    kind: str  # definition | run | action | trace | job | step | name
    rows: Mapping[str, Sequence[Row]]
    expect: tuple[Expect, ...]
    # The action results the flow API serves for every run of the case's flow.
    actions: Mapping[str, Any] = field(default_factory=dict)
    # A new display name for the target environment.
    environment_name: str | None = None

    @property
    def flow(self) -> str:
        """The id of the case's flow (if it has one)."""
        return ident(self.id, "flow")


# Rows ---------------------------------------------------------------------------------------


def definition(actions: Mapping[str, Any], trigger: Mapping[str, Any] | None = None) -> Row:
    """A workflow definition (the flow API's `properties.definition`)."""
    return {
        "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/"
        "2016-06-01/workflowdefinition.json#",
        "contentVersion": "1.0.0.0",
        "triggers": {"manual": dict(trigger or {"type": "Request", "kind": "Button"})},
        "actions": dict(actions),
    }


SIMPLE = definition({"Update_row": connector_action()})


def api_flow(
    case_id: str,
    display: str,
    definition_text: str,
    workflowid: str | None = None,
) -> Row:
    """A `flows` row (the flow API); `definition_text` is `properties.definition` as JSON."""
    return {
        "name": ident(case_id, "flow"),
        "display_name": display,
        "state": "Started",
        "created_time": _at(24 * 60),
        "last_modified_time": _at(24 * 30),
        "workflowid": workflowid,
        "definition": definition_text,
        "connection_references": "{}",
        "_sim_role": "hostile",
        "_sim_plan": "{}",
    }


def solution_flow(case_id: str, display: str, clientdata: str) -> dict[str, list[Row]]:
    """A solution flow: listed by the flow API, its definition in `workflows.clientdata`."""
    workflowid = ident(case_id, "workflow")
    return {
        "flows": [api_flow(case_id, display, "{}", workflowid)],
        "workflows": [
            {
                "workflowid": workflowid,
                "workflowidunique": ident(case_id, "workflowunique"),
                "name": display,
                "category": 5,
                "type": 1,
                "statecode": 1,
                "statuscode": 2,
                "ismanaged": False,
                "primaryentity": "none",
                "modernflowtype": 0,
                "clientdata": clientdata,
                "createdon": _at(24 * 60),
                "modifiedon": _at(24 * 30),
                "_ownerid_value": ident("support", "owner"),
            }
        ],
    }


def run_name(case_id: str, index: int) -> str:
    """A run id in the flow API's shape: digits ending in `CU<n>`."""
    digits = uuid.uuid5(_NAMESPACE, f"{case_id}/run/{index}").int % 10**20
    return f"08584{digits:020d}CU{index % 30 + 1:02d}"


def api_run(
    case_id: str,
    index: int,
    status: str,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | str | None = "auto",
    error_code: str | None = None,
    error_message: str | None = None,
) -> Row:
    """A `runs` row (the flow API) of the case's flow: one minute long, an hour apart."""
    begin = start if start is not None else _at(2 + index)
    name = run_name(case_id, index)
    return {
        "flow_name": ident(case_id, "flow"),
        "name": name,
        "start_time": begin,
        "end_time": begin + timedelta(minutes=1) if isinstance(end, str) else end,
        "status": status,
        "code": None,
        "error_code": error_code,
        "error_message": error_message,
        "trigger_name": "manual",
        "client_tracking_id": name,
        "_sim_outcome": 0,
        "_sim_retry": 0,
        "_sim_variant": 0,
        "_sim_seed": index,
        "_sim_parent_run": None,
    }


def flow_with_runs(
    case_id: str, display: str, runs: Sequence[Row], document: Row = SIMPLE
) -> dict[str, list[Row]]:
    """A flow outside solutions with a readable definition, and these runs."""
    return {"flows": [api_flow(case_id, display, json.dumps(document))], "runs": list(runs)}


def step(
    case_id: str,
    name: str,
    *,
    stage: int = 20,
    mode: int = 0,
    filtering: str | None = "name",
    entity: str = "account",
) -> dict[str, list[Row]]:
    """An enabled custom Update step (and its message filter)."""
    filter_id = ident(case_id, "filter")
    return {
        "sdkmessageprocessingsteps": [
            {
                "sdkmessageprocessingstepid": ident(case_id, "step"),
                "name": name,
                "stage": stage,
                "mode": mode,
                "rank": 1,
                "filteringattributes": filtering,
                "asyncautodelete": False,
                "statecode": 0,
                "statuscode": 1,
                "ismanaged": False,
                "customizationlevel": 1,
                "modifiedon": _at(24 * 30),
                "_eventhandler_value": PLUGIN_TYPE,
                "_sdkmessageid_value": UPDATE_MESSAGE,
                "_sdkmessagefilterid_value": filter_id,
                "_plugintypeid_value": PLUGIN_TYPE,
            }
        ],
        "sdkmessagefilters": [
            {
                "sdkmessagefilterid": filter_id,
                "primaryobjecttypecode": entity,
                "_sdkmessageid_value": UPDATE_MESSAGE,
                "name": f"Update {entity}",
            }
        ],
    }


def trace(case_id: str, index: int, duration: int | None = 150, **values: Any) -> Row:
    """A plug-in trace log of the case's step, an hour apart; `values` override columns."""
    start = _at(3 + index)
    ended = start + timedelta(milliseconds=duration if duration and duration > 0 else 0)
    row: Row = {
        "plugintracelogid": ident(case_id, f"trace{index}"),
        "typename": "Contoso.Plugins.Hostile",
        "messagename": "Update",
        "primaryentity": "account",
        "mode": 0,
        "operationtype": 1,
        "depth": 1,
        "correlationid": ident(case_id, f"correlation{index}"),
        "requestid": ident(case_id, f"request{index}"),
        "pluginstepid": ident(case_id, "step"),
        "performanceexecutionstarttime": start,
        "performanceexecutionduration": duration,
        "performanceconstructorduration": 0,
        "exceptiondetails": None,
        "messageblock": "Entered Contoso.Plugins.Hostile.Execute()",
        "issystemcreated": False,
        "createdon": min(ended, _at(0.5)).floor("s"),
    }
    return row | values


def traces(case_id: str, count: int, duration: int | None = 150, **values: Any) -> list[Row]:
    """`count` trace logs of the case's step, all alike."""
    return [trace(case_id, i, duration, **values) for i in range(count)]


def job(case_id: str, index: int, statuscode: int | None = 30, **values: Any) -> Row:
    """A completed async plug-in system job of the case's step that waited 1 s and ran 2 s."""
    created = _at(4 + index).floor("s")
    row: Row = {
        "asyncoperationid": ident(case_id, f"job{index}"),
        "name": f"Contoso.Plugins.Hostile: {case_id}",
        "operationtype": 1,
        "statecode": 3,
        "statuscode": statuscode,
        "messagename": "Update",
        "primaryentitytype": "account",
        "correlationid": ident(case_id, f"correlation{index}"),
        "requestid": ident(case_id, f"request{index}"),
        "depth": 1,
        "retrycount": 0,
        "errorcode": -2147220891 if statuscode == 31 else None,
        "message": None,
        "friendlymessage": None,
        "createdon": created,
        "startedon": created + timedelta(seconds=1),
        "completedon": created + timedelta(seconds=3),
        "modifiedon": created + timedelta(seconds=3),  # the latest state change: completion
        "postponeuntil": None,
        "executiontimespan": None,
        "_owningextensionid_value": ident(case_id, "step"),
        "_workflowactivationid_value": None,
        "_regardingobjectid_value": ident(case_id, f"record{index}"),
    }
    return row | values


def jobs(case_id: str, count: int, statuscode: int | None = 30, **values: Any) -> list[Row]:
    """`count` system jobs of the case's step, all alike."""
    return [job(case_id, i, statuscode, **values) for i in range(count)]


def merge(*parts: Mapping[str, Sequence[Row]]) -> dict[str, list[Row]]:
    """Rows by table, from several parts."""
    out: dict[str, list[Row]] = {}
    for part in parts:
        for table, rows in part.items():
            out.setdefault(table, []).extend(rows)
    return out


SUPPORT_ROWS: dict[str, list[Row]] = {
    "pluginassemblies": [
        {
            "pluginassemblyid": ASSEMBLY,
            "name": "Contoso.Plugins.Hostile",
            "version": "6.6.6.0",
            "isolationmode": 2,
            "sourcetype": 0,
            "ismanaged": False,
        }
    ],
    "plugintypes": [
        {
            "plugintypeid": PLUGIN_TYPE,
            "typename": "Contoso.Plugins.Hostile",
            "name": "Contoso.Plugins.Hostile",
            "assemblyname": "Contoso.Plugins.Hostile",
            "isworkflowactivity": False,
            "_pluginassemblyid_value": ASSEMBLY,
        }
    ],
}


# Cases --------------------------------------------------------------------------------------


def flow_key(case_id: str, in_solution: bool = False) -> str:
    """The auditor's key of the case's flow: a solution flow's workflowid, else its name."""
    return ident(case_id, "workflow" if in_solution else "flow")


def unreadable(case_id: str, phrase: str, in_solution: bool = False) -> Expect:
    """The case's flow is reported unreadable, saying why."""
    return Expect("flow-definition-unreadable", flow_key(case_id, in_solution), ("error",), phrase)


def parsed(case_id: str, name: str | None = None, in_solution: bool = False) -> Expect:
    """The case's odd definition was still read."""
    return Expect(
        "flow-definition-unreadable", flow_key(case_id, in_solution), ("pass",), "parsed", name
    )


def _clientdata_case(case_id: str, clientdata: str, phrase: str) -> Case:
    return Case(
        case_id,
        "definition",
        solution_flow(case_id, f"Hostile {case_id}", clientdata),
        (unreadable(case_id, phrase, in_solution=True),),
    )


def _document(definition_: Any) -> str:
    """`clientdata` text: the solution's document around a definition."""
    return json.dumps({"properties": {"connectionReferences": {}, "definition": definition_}})


_DEEP_JSON = '{"a":' * 100_000 + "1" + "}" * 100_000
_HUGE_INT = '{"definition": {"triggers": {}, "actions": {}, "n": 1' + "0" * 5000 + "}}"

CLIENTDATA_CASES: tuple[Case, ...] = tuple(
    _clientdata_case(case_id, text, phrase)
    for case_id, text, phrase in (
        ("clientdata-invalid-json", "{not json", "not valid JSON"),
        ("clientdata-truncated-json", '{"properties": {"definition": {"triggers": {', "not valid"),
        ("clientdata-blank", " \r\n\t ", "empty"),
        ("clientdata-json-list", "[1, 2, 3]", "it is a list"),
        ("clientdata-json-number", "42", "it is a number"),
        ("clientdata-json-null", "null", "it is null"),
        ("clientdata-json-string", '"just text"', "it is a string"),
        ("clientdata-markup-not-json", SCRIPT + HYPERLINK, "not valid JSON"),
        ("clientdata-properties-not-object", '{"properties": "definition"}', "`properties`"),
        ("clientdata-empty-string", "", "empty"),
        ("clientdata-without-definition", '{"properties": {"displayName": "x"}}', "no `def"),
        ("clientdata-definition-null", _document(None), "no `definition`"),
        ("clientdata-definition-list", _document([{"triggers": {}}]), "it is a list"),
        ("clientdata-triggers-list", _document({"triggers": [{"type": "Request"}]}), "`triggers`"),
        (
            "clientdata-actions-string",
            _document({"triggers": {}, "actions": "Compose"}),
            "`actions` is not an object",
        ),
        (
            "clientdata-raw-control-character",
            '{"definition": {"actions": {"A\x00\x1b": {}}}}',
            "invalid control character",
        ),
        ("clientdata-nested-100000-deep", _DEEP_JSON, "nested too deeply"),
        ("clientdata-integer-5000-digits", _HUGE_INT, "not valid JSON"),
    )
)


CLIENTDATA_CASES += (
    Case(
        "clientdata-megabyte-definition",
        "definition",
        solution_flow(
            "clientdata-megabyte-definition",
            "Hostile clientdata-megabyte-definition",
            _document(definition({"Compose": {"type": "Compose", "inputs": IMG + "x" * MIB}})),
        ),
        (
            parsed("clientdata-megabyte-definition", in_solution=True),
            Expect(
                "flow-monolithic",
                flow_key("clientdata-megabyte-definition", in_solution=True),
                ("pass",),
                "1 actions",
            ),
        ),
    ),
    # A solution flow the flow API did not list: known by its workflowid only.
    Case(
        "clientdata-of-a-flow-the-api-did-not-list",
        "definition",
        {
            "workflows": solution_flow("clientdata-of-a-flow-the-api-did-not-list", IMG, "{")[
                "workflows"
            ]
        },
        (
            Expect(
                "flow-definition-unreadable",
                ident("clientdata-of-a-flow-the-api-did-not-list", "workflow"),
                ("error",),
                "not valid JSON",
                name=IMG,
            ),
        ),
    ),
)


def _api_case(case_id: str, text: str, *expect: Expect, display: str | None = None) -> Case:
    flow = api_flow(case_id, display or f"Hostile {case_id}", text)
    return Case(case_id, "definition", {"flows": [flow]}, expect)


def _dataverse_message(message: Any) -> Row:
    trigger = dataverse_trigger(3)
    trigger["inputs"]["parameters"]["subscriptionRequest/message"] = message
    return definition({"Update": connector_action()}, trigger)


def _flow(case_id: str) -> str:
    return ident(case_id, "flow")


API_DEFINITION_CASES: tuple[Case, ...] = (
    # The flow API serves `properties.definition` as JSON: whatever is not an object there
    # reaches the auditor as no definition at all.
    _api_case("api-definition-list", "[1, 2]", unreadable("api-definition-list", "no definition")),
    _api_case(
        "api-definition-string",
        json.dumps("{broken " + SCRIPT),
        unreadable("api-definition-string", "no definition"),
    ),
    _api_case("api-definition-null", "null", unreadable("api-definition-null", "no definition")),
    _api_case(
        "api-definition-without-triggers",
        json.dumps({"actions": {"Update_row": connector_action()}}),
        parsed("api-definition-without-triggers"),
    ),
    _api_case(
        "api-definition-without-actions",
        json.dumps({"triggers": {"manual": {"type": "Request", "kind": "Button"}}}),
        parsed("api-definition-without-actions"),
    ),
    _api_case(
        "api-trigger-of-unknown-type",
        json.dumps(definition({"A": connector_action()}, {"type": "QuantumEntanglement"})),
        parsed("api-trigger-of-unknown-type"),
        Expect("flow-monolithic", _flow("api-trigger-of-unknown-type"), JUDGED),
    ),
    _api_case(
        "api-run-after-upper-case",
        json.dumps(definition(catching(["FAILED", "TIMEDOUT"]))),
        parsed("api-run-after-upper-case"),
        Expect(
            "flow-no-error-handling",
            _flow("api-run-after-upper-case"),
            ("pass",),
            "report the failure",
        ),
    ),
    _api_case(
        "api-run-after-unknown-status",
        json.dumps(definition(catching(["Exploded", 42, None]))),
        parsed("api-run-after-unknown-status"),
        Expect("flow-no-error-handling", _flow("api-run-after-unknown-status"), JUDGED),
    ),
    _api_case(
        "api-run-after-unknown-action",
        json.dumps(definition({"A": connector_action(run_after={"Ghost": ["Failed"]})})),
        parsed("api-run-after-unknown-action"),
        Expect("flow-no-error-handling", _flow("api-run-after-unknown-action"), JUDGED),
    ),
    _api_case(
        "api-scopes-nested-200-deep",
        json.dumps(definition(nested_scopes(200))),
        parsed("api-scopes-nested-200-deep"),
        Expect(
            "flow-monolithic",
            _flow("api-scopes-nested-200-deep"),
            ("fail",),
            "nested 200 levels deep",
        ),
    ),
    _api_case(
        "api-megabyte-definition",
        json.dumps(definition({"Compose": {"type": "Compose", "inputs": SCRIPT + "x" * MIB}})),
        parsed("api-megabyte-definition"),
        Expect("flow-monolithic", _flow("api-megabyte-definition"), ("pass",), "1 actions"),
    ),
    _api_case(
        "api-dataverse-message-abc",
        json.dumps(_dataverse_message("abc")),
        parsed("api-dataverse-message-abc"),
        Expect(
            "flow-update-trigger-unfiltered",
            _flow("api-dataverse-message-abc"),
            ("not-assessed", "fail"),
            "not one of 1-7",
        ),
    ),
    _api_case(
        "api-hostile-action-names",
        json.dumps(
            definition(
                {
                    name: connector_action()
                    for name in (SCRIPT, IMG, HYPERLINK, CMD, AT_SUM, MINUS, BIDI)
                }
            )
        ),
        parsed("api-hostile-action-names"),
        Expect("flow-monolithic", _flow("api-hostile-action-names"), ("pass",), "7 actions"),
    ),
)


def _failure_rate(case_id: str, statuses: tuple[str, ...], phrase: str) -> Expect:
    return Expect("flow-failure-rate", ident(case_id, "flow"), statuses, phrase)


def _run_case(
    case_id: str, runs: Sequence[Row], *expect: Expect, kind: str = "run", **kw: Any
) -> Case:
    return Case(
        case_id,
        kind,
        flow_with_runs(case_id, f"Hostile {case_id}", runs),
        (parsed(case_id), *expect),
        **kw,
    )


HUGE_ERROR = IMG + " " + HYPERLINK + " " + "z" * (128 * KIB)

RUN_CASES: tuple[Case, ...] = (
    _run_case(
        "run-status-unknown",
        [api_run("run-status-unknown", i, "Exploded") for i in range(20)],
        _failure_rate("run-status-unknown", JUDGED, "20 with a missing or undocumented status"),
    ),
    _run_case(
        "run-status-lower-case",
        [api_run("run-status-lower-case", i, "failed") for i in range(20)],
        _failure_rate("run-status-lower-case", ("fail",), "20 of 20 runs failed"),
    ),
    _run_case(
        "run-without-end-time",
        [api_run("run-without-end-time", i, "Failed", end=None) for i in range(3)],
        _failure_rate("run-without-end-time", JUDGED, "of 3 runs"),
    ),
    _run_case(
        "run-ends-before-it-starts",
        [api_run("run-ends-before-it-starts", i, "Failed", end=_at(100 + i)) for i in range(20)],
        _failure_rate("run-ends-before-it-starts", ("fail",), "20 of 20 runs failed"),
    ),
    _run_case(
        "run-huge-markup-error",
        [
            api_run(
                "run-huge-markup-error",
                i,
                "Failed",
                error_code="ActionFailed",
                error_message=HUGE_ERROR,
            )
            for i in range(20)
        ],
        _failure_rate("run-huge-markup-error", ("fail",), "commonest error (20x): <img"),
    ),
    _run_case(
        "run-formula-control-and-bidi-error",
        [
            api_run(
                "run-formula-control-and-bidi-error",
                i,
                "Failed",
                error_code=SCRIPT,
                error_message=CMD + CONTROL + BIDI,
            )
            for i in range(20)
        ],
        _failure_rate("run-formula-control-and-bidi-error", ("fail",), "commonest error"),
    ),
)

HOSTILE_ACTIONS: dict[str, Any] = {
    SCRIPT: {
        "startTime": "2026-11-15T09:00:00.0000000Z",
        "endTime": "2026-11-15T08:00:00.0000000Z",  # ends before it starts
        "status": "Exploded",
        "code": IMG,
        "error": {"code": HYPERLINK, "message": CMD + " " + "w" * (64 * KIB)},
        "retryHistory": [
            {"code": "429", "startTime": "not a time"},
            "not an object",
            {"code": None, "error": {"error": {"code": AT_SUM, "message": BIDI}}},
        ],
        "repetitionCount": -1,
    },
    "Update_row": {
        "startTime": None,
        "endTime": "yesterday",
        "status": "Failed",
        "code": "BadRequest",
        "error": {"code": "BadRequest", "message": LINK},
        "retryHistory": {"not": "a list"},
    },
    MINUS: "not an object",
}

ACTION_CASES: tuple[Case, ...] = (
    _run_case(
        "action-results-hostile",
        [
            api_run(
                "action-results-hostile", i, "Failed", error_code="ActionFailed", error_message=LINK
            )
            for i in range(20)
        ],
        _failure_rate("action-results-hostile", ("fail",), "20 of 20 runs failed"),
        # The action that is not in the definition, with an unknown status and a retry
        # history of junk, is still counted as retried.
        Expect(
            "flow-retries-exhausted",
            ident("action-results-hostile", "flow"),
            JUDGED,
            "20 retried action executions",
        ),
        kind="action",
        actions=HOSTILE_ACTIONS,
    ),
)


def _timeout(case_id: str, statuses: tuple[str, ...], phrase: str = "") -> Expect:
    return Expect("near-platform-timeout", ident(case_id, "step"), statuses, phrase)


def _trace_case(case_id: str, rows: Sequence[Row], *expect: Expect, name: str = "") -> Case:
    return Case(
        case_id,
        "trace",
        merge(
            step(case_id, name or f"Contoso.Plugins.Hostile: {case_id}"), {"plugintracelogs": rows}
        ),
        expect,
    )


TRACE_CASES: tuple[Case, ...] = (
    _trace_case(
        "trace-null-durations",
        traces("trace-null-durations", 3, None),
        _timeout("trace-null-durations", ("not-assessed",), "3 without a usable duration"),
    ),
    _trace_case(
        "trace-negative-durations",
        traces("trace-negative-durations", 3, -5000),
        _timeout("trace-negative-durations", ("not-assessed",), "3 without a usable duration"),
    ),
    _trace_case(
        "trace-absurd-durations",
        traces("trace-absurd-durations", 3, 10**12),
        _timeout("trace-absurd-durations", ("fail",), "3 of 3"),
    ),
    _trace_case(
        "trace-unknown-mode-operationtype-and-depth",
        traces(
            "trace-unknown-mode-operationtype-and-depth", 3, mode=7, operationtype=12345, depth=-3
        ),
        _timeout("trace-unknown-mode-operationtype-and-depth", ("pass",), "0 of 3"),
    ),
    _trace_case(
        "trace-null-mode-and-start",
        traces(
            "trace-null-mode-and-start",
            3,
            mode=None,
            operationtype=None,
            performanceexecutionstarttime=None,
        ),
        _timeout("trace-null-mode-and-start", ("pass",), "0 of 3"),
    ),
    _trace_case(
        "trace-megabyte-markup-text",
        [
            trace(
                "trace-megabyte-markup-text",
                0,
                messageblock=SCRIPT + "m" * MIB,
                exceptiondetails="System.Exception: " + IMG + "e" * MIB,
            )
        ],
        _timeout("trace-megabyte-markup-text", ("pass",), "0 of 1"),
    ),
    _trace_case(
        "trace-formula-control-and-bidi-text",
        traces(
            "trace-formula-control-and-bidi-text",
            3,
            messageblock=HYPERLINK + CONTROL,
            exceptiondetails=CMD + BIDI,
            correlationid=AT_SUM,
        ),
        _timeout("trace-formula-control-and-bidi-text", ("pass",), "0 of 3"),
    ),
    Case(
        "trace-of-a-step-that-is-not-registered",
        "trace",
        {"plugintracelogs": traces("trace-of-a-step-that-is-not-registered", 3)},
        (
            Expect(
                "near-platform-timeout",
                ident("trace-of-a-step-that-is-not-registered", "step"),
                ("pass",),
                "0 of 3",
                name=ident("trace-of-a-step-that-is-not-registered", "step"),
            ),
        ),
    ),
    _trace_case(
        "trace-markup-type-without-step",
        traces("trace-markup-type-without-step", 3, 200_000, pluginstepid=None, typename=IMG),
        Expect("near-platform-timeout", IMG, ("fail",), "3 of 3", name=IMG),
    ),
    _trace_case(
        "trace-formula-type-without-step",
        traces("trace-formula-type-without-step", 3, pluginstepid=None, typename=HYPERLINK),
        Expect("near-platform-timeout", HYPERLINK, ("pass",), "0 of 3", name=HYPERLINK),
    ),
)


def _jobs_failing(case_id: str, statuses: tuple[str, ...], phrase: str = "") -> Expect:
    return Expect("system-jobs-failing", ident(case_id, "step"), statuses, phrase)


def _job_case(case_id: str, rows: Sequence[Row], *expect: Expect) -> Case:
    return Case(case_id, "job", {"asyncoperations": rows}, expect)


JOB_CASES: tuple[Case, ...] = (
    _job_case(
        "job-unknown-statuscode",
        jobs("job-unknown-statuscode", 20, 999),
        _jobs_failing("job-unknown-statuscode", JUDGED, "20 with a missing or undocumented"),
    ),
    _job_case(
        "job-unknown-statecode",
        jobs("job-unknown-statecode", 20, 31, statecode=7),
        _jobs_failing("job-unknown-statecode", ("fail",), "20 of 20"),
    ),
    _job_case(
        "job-without-start-and-end",
        jobs("job-without-start-and-end", 20, 31, startedon=None, completedon=None),
        _jobs_failing("job-without-start-and-end", ("fail",), "20 of 20"),
    ),
    _job_case(
        "job-ends-before-it-starts",
        [
            job("job-ends-before-it-starts", i, startedon=_at(3 + i), completedon=_at(90 + i))
            for i in range(20)
        ],
        _jobs_failing("job-ends-before-it-starts", ("pass",), "0 of 20"),
    ),
    _job_case(
        "job-huge-markup-message",
        jobs(
            "job-huge-markup-message",
            20,
            31,
            message=SCRIPT + " " + HYPERLINK + " " + "y" * (128 * KIB),
            friendlymessage=IMG,
        ),
        _jobs_failing("job-huge-markup-message", ("fail",), "commonest error (20x): <script>"),
    ),
    _job_case(
        "job-null-statuscode-and-retries",
        jobs("job-null-statuscode-and-retries", 20, statuscode=None, retrycount=-4, depth=None),
        _jobs_failing("job-null-statuscode-and-retries", JUDGED, "20 with a missing or undoc"),
    ),
    _job_case(
        "job-formula-name",
        jobs("job-formula-name", 3, 31, name=CMD + CONTROL, message=AT_SUM),
        Expect(
            "system-jobs-failing",
            ident("job-formula-name", "step"),
            JUDGED,
            "not judged",
            name=CMD + CONTROL,
        ),
    ),
    _job_case(
        "job-suspended-forever",
        jobs(
            "job-suspended-forever",
            1,
            10,
            statecode=1,
            createdon=_at(24 * 6).floor("s"),
            startedon=None,
            completedon=None,
            postponeuntil=_at(-24 * 365),
            message=SVG,
        ),
        # Waiting (statecode 1, statuscode 10) until a postponeuntil a year away is what the
        # platform documents for a postponed job: waiting, not stuck.
        Expect(
            "system-jobs-stuck", ENVIRONMENT, ("pass",), "waiting (postponed or on a condition)"
        ),
    ),
)


def _unfiltered(case_id: str, statuses: tuple[str, ...], phrase: str = "", **kw: Any) -> Expect:
    return Expect("plugin-update-unfiltered", ident(case_id, "step"), statuses, phrase, **kw)


STEP_CASES: tuple[Case, ...] = (
    Case(
        "step-unknown-stage-and-mode",
        "step",
        step("step-unknown-stage-and-mode", "Stage 99 mode 7", stage=99, mode=7),
        (_unfiltered("step-unknown-stage-and-mode", ("pass",), "filters on name"),),
    ),
    Case(
        "step-filtering-only-commas",
        "step",
        step("step-filtering-only-commas", "Commas", filtering=" , ,,"),
        (_unfiltered("step-filtering-only-commas", ("fail",), "no filtering attributes"),),
    ),
    Case(
        "step-filtering-empty-text",
        "step",
        step("step-filtering-empty-text", "Empty", filtering=""),
        (_unfiltered("step-filtering-empty-text", ("fail",), "no filtering attributes"),),
    ),
    Case(
        "step-filtering-markup",
        "step",
        step("step-filtering-markup", "Markup filter", filtering=SCRIPT + "," + HYPERLINK),
        (_unfiltered("step-filtering-markup", ("pass",), "filters on <script>"),),
    ),
    Case(
        "step-huge-filtering-attributes",
        "step",
        step(
            "step-huge-filtering-attributes",
            "Huge filter",
            filtering=",".join(f"cr4f1_attribute{i}" for i in range(20_000)),
        ),
        (_unfiltered("step-huge-filtering-attributes", ("pass",), "filters on cr4f1_attribute0"),),
    ),
    Case(
        "step-name-markup-control-bidi",
        "step",
        step("step-name-markup-control-bidi", SVG + CONTROL + BIDI),
        (
            _unfiltered(
                "step-name-markup-control-bidi", ("pass",), "filters on", name=SVG + CONTROL + BIDI
            ),
        ),
    ),
)

_NAMES: tuple[tuple[str, str], ...] = (
    ("name-script", "Sync " + SCRIPT),
    ("name-img", IMG + " intake"),
    ("name-javascript-link", LINK),
    ("name-hyperlink-formula", HYPERLINK),
    ("name-cmd-formula", CMD),
    ("name-at-formula", AT_SUM),
    ("name-minus-formula", MINUS),
    ("name-tab-and-carriage-return", "\tTabbed\rflow"),
    ("name-control-characters", CONTROL),
    ("name-bidi-override", BIDI + " invoice"),
    ("name-bidi-before-formula", "\u202e" + HYPERLINK),
    ("name-space-before-formula", "  " + CMD),
    ("name-full-width-formula", '\uff1dHYPERLINK("http://evil.example","x")'),
)
MEGABYTE_NAME = SCRIPT + "n" * MIB

NAME_CASES: tuple[Case, ...] = (
    *(
        Case(
            case_id,
            "name",
            {"flows": [api_flow(case_id, name, json.dumps(SIMPLE))]},
            (parsed(case_id, name),),
        )
        for case_id, name in _NAMES
    ),
    Case(
        "name-megabyte",
        "name",
        {"flows": [api_flow("name-megabyte", MEGABYTE_NAME, json.dumps(SIMPLE))]},
        # A finding names a resource in at most MAX_TEXT characters.
        (parsed("name-megabyte", MEGABYTE_NAME[: MAX_TEXT - 1] + "…"),),
    ),
    Case(
        "name-environment-markup-and-formula",
        "name",
        {},
        (
            Expect(
                "system-jobs-stuck",
                ENVIRONMENT,
                ("pass",),  # its jobs wait (postponed), which is not stuck
                name=HYPERLINK + " Contoso " + SCRIPT,
            ),
        ),
        environment_name=HYPERLINK + " Contoso " + SCRIPT,
    ),
)

CASES: tuple[Case, ...] = (
    *CLIENTDATA_CASES,
    *API_DEFINITION_CASES,
    *RUN_CASES,
    *ACTION_CASES,
    *TRACE_CASES,
    *JOB_CASES,
    *STEP_CASES,
    *NAME_CASES,
)


# Injection ----------------------------------------------------------------------------------


def target(tenant: SimTenant) -> SimEnvironment:
    env = tenant.environment(TARGET_SLUG)
    assert env is not None
    assert env.has_dataverse
    return env


def _like(values: pd.Series, dtype: Any) -> pd.Series:
    """`values` in the dtype of the frame's column (timestamps in UTC, nullable integers)."""
    if isinstance(dtype, pd.DatetimeTZDtype):
        return pd.to_datetime(values, utc=True).astype(dtype)
    if str(dtype) == "object":
        return values.astype(object).where(values.notna(), None)
    return values.astype(dtype)


def append(frame: pd.DataFrame, rows: Sequence[Row]) -> pd.DataFrame:
    """The frame with `rows` added, each column keeping its dtype; unknown columns are a bug."""
    unknown = {key for row in rows for key in row} - set(frame.columns)
    assert not unknown, f"columns not in the frame: {sorted(unknown)}"
    extra = pd.DataFrame(
        {column: pd.Series([row.get(column) for row in rows], dtype=object) for column in frame}
    )
    extra = pd.DataFrame({c: _like(extra[c], frame[c].dtype) for c in frame.columns})
    return pd.concat([frame, extra], ignore_index=True)


def inject(tenant: SimTenant, cases: Sequence[Case]) -> None:
    """Add every case's rows to the target environment's frames (before it is served)."""
    env = target(tenant)
    tables = merge(SUPPORT_ROWS, *(case.rows for case in cases))
    for table, rows in tables.items():
        if table == "flows":
            env.flows = append(env.flows, rows)
        elif table == "runs":
            env.runs = append(env.runs, rows)
        else:
            env.tables[table] = append(env.tables[table], rows)
    for case in cases:
        if case.environment_name is not None:
            env.display_name = case.environment_name


def render_actions(cases: Sequence[Case]) -> RenderActions:
    """The simulator's action results: the cases' own for their flows, else the scenario's."""
    hostile = {case.flow: case.actions for case in cases}

    def render(tenant: SimTenant, env: SimEnvironment, flow: Any, run: Any) -> Mapping[str, Any]:
        found = hostile.get(str(flow["name"]))
        if found is not None:
            return found
        return scenario.render_actions(tenant, env, flow, run)

    return render
