"""One action row of a flow definition: what the action is, calls, reads and writes.

Each action of the tree becomes one row (type, connector operation, runAfter, retry policy,
child flow, response, variables and expressions it reads, its content key for repeated
blocks); `definition_tree` walks the nested containers and calls `action_row` for each.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from auditor.analysis.definition_effects import CONNECTOR_TYPES, is_effect
from auditor.analysis.definition_values import (
    as_int,
    as_object,
    as_text,
    connector_of,
    display_name,
    json_text,
    kind_of,
    lower_text,
    nonempty,
    shorten,
    target_of,
)

# Column names and dtypes of the action frame, declared once. Strings are pandas' "str"
# (missing = NaN), optional integers are nullable "Int64".
ACTION_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "action_name": "str",
    "display_name": "str",  # the name the designer shows: the definition's key, _ as spaces
    "type": "str",
    "kind": "str",
    "connector": "str",
    "operation": "str",
    "method": "str",  # upper case; Http and legacy ApiConnection actions
    "parent": "str",  # the containing action, NaN at top level
    "scope_path": "str",  # "" at top level, else e.g. "Scope_1/If_2/else"
    "branch": "str",  # then / else / <case name> / default
    "depth": "int64",  # 1 = top level
    "order": "int64",  # 1-based position in the scope, in runAfter order
    "run_after": "str",  # JSON {predecessor: [lower-case statuses]}
    "runs_after_failure": "bool",
    "retry_policy_type": "str",  # default / none / fixed / exponential; NaN = default
    "retry_count": "Int64",
    "retry_interval": "str",
    "child_flow_id": "str",  # lower-case workflowid of the called child flow
    "response_kind": "str",
    "response_status_code": "Int64",
    "terminate_status": "str",
    "terminate_has_error": "bool",
    "foreach_concurrency": "Int64",
    "is_loop": "bool",
    "is_scope_like": "bool",
    "is_effect": "bool",
    "is_external_call": "bool",
    "timeout": "str",
    "note": "str",  # what was odd about the action (runAfter cycle, unknown predecessor...)
    "target": "str",  # the table (Dataverse entityName) or "site|list" (SharePoint) it acts on
    "written_columns": "str",  # comma-separated item/<column> parameters of a write
    "variable_name": "str",  # the variable an Initialize / Set / Append action names
    "references": "str",  # comma-separated actions its inputs read (body('X'), outputs('X'))
    "reads_trigger": "bool",  # its inputs (or condition) read trigger data
    "reads_variables": "str",  # comma-separated variables its inputs (or condition) read
    "foreach_source": "str",  # the expression an Apply to each iterates
    "expression": "str",  # a Condition's expression, as compact JSON
    "response_status": "str",  # a Response's statusCode as written (number or expression)
    "response_status_field": "bool",  # a Response body carries a status field
    # Operation and parameter shape, for repeated blocks; a container's includes its content.
    "content_key": "str",
    "holds_external_call": "bool",  # it or an action nested in it is an external call
    "top": "Int64",  # the $top a list operation asks for (Top Count), NaN when none
}

ACTION_COLUMNS: tuple[str, ...] = tuple(ACTION_DTYPES)

SCOPE_LIKE_TYPES = frozenset({"scope", "if", "switch", "foreach", "until"})
LOOP_TYPES = frozenset({"foreach", "until"})
FAILURE_STATUSES = frozenset({"failed", "timedout"})
# Expression references: the actions an input reads, trigger data, variables.
# https://learn.microsoft.com/azure/logic-apps/workflow-definition-language-functions-reference
_REFERENCE = re.compile(
    r"\b(?:body|outputs|items|actions|result|iterationIndexes)\(\s*'((?:[^']|'')*)'\s*\)",
    re.IGNORECASE,
)
_VARIABLE_READ = re.compile(r"\bvariables\(\s*'((?:[^']|'')*)'\s*\)", re.IGNORECASE)
_TRIGGER_READ = re.compile(r"\btrigger(?:Body|Outputs)?\(\s*\)", re.IGNORECASE)
# Response body keys that tell the caller how the run went (R-REPORT in tests/corpus). The
# answer asks for "a well defined and documented status indicator"; which key names count as
# one is the auditor's reading (inferred), not a platform rule.
STATUS_FIELD_WORDS = ("status", "success", "succeeded", "error", "result", "outcome")
STATUS_FIELD_NAMES = frozenset({"code", "ok", "failed"})
_MAX_EXPRESSION = 2000


def _status_field(body: Any) -> bool:
    if not isinstance(body, dict):
        return False
    for key in body:
        lowered = str(key).lower()
        if lowered in STATUS_FIELD_NAMES or any(word in lowered for word in STATUS_FIELD_WORDS):
            return True
    return False


def _variable_name(type_l: str, inputs: Mapping[str, Any]) -> str | None:
    if type_l == "initializevariable":
        variables = inputs.get("variables")
        first = variables[0] if isinstance(variables, list) and variables else {}
        return nonempty(as_object(first).get("name"))
    if type_l.endswith("variable"):
        return nonempty(inputs.get("name"))
    return None


def _content_key(
    type_l: str,
    connector: str | None,
    operation: str | None,
    inputs: Mapping[str, Any],
    target: str | None,
    variable: str | None,
) -> str:
    """What an action does, without its name: a renamed copy has the same key."""
    params = as_object(inputs.get("parameters"))
    if params:
        shape = ",".join(sorted(str(k) for k in params))
    else:
        shape = ",".join(sorted(str(k) for k in inputs if k != "host"))
    method = lower_text(inputs.get("method")).upper()
    parts = [type_l, (connector or "").lower(), (operation or "").lower(), method, shape]
    parts += [target or "", (variable or "").lower()]
    return "|".join(parts)


def _run_after(action: Mapping[str, Any]) -> dict[str, list[str]]:
    """runAfter with statuses lower-cased: real exports contain "SUCCEEDED"."""
    # https://learn.microsoft.com/azure/logic-apps/error-exception-handling
    raw = action.get("runAfter")
    out: dict[str, list[str]] = {}
    if not isinstance(raw, dict):
        return out
    for pred, statuses in raw.items():
        items = statuses if isinstance(statuses, list) else [statuses]
        out[as_text(pred) or ""] = [s.lower() for s in (as_text(x) for x in items) if s is not None]
    return out


@dataclass(frozen=True)
class Place:
    """Where a container sits in the tree."""

    parent: str | None
    scope_path: str
    branch: str | None
    depth: int


def action_row(
    name: str,
    action: Any,
    position: int,
    notes: list[str],
    place: Place,
    refs: Mapping[str, Any],
    ids: tuple[str, str],
) -> dict[str, Any]:
    act = as_object(action)
    if not isinstance(action, dict):
        notes.append(f"action is not an object (it is {kind_of(action)})")
    typ = as_text(act.get("type"))
    type_l = (typ or "").lower()
    kind = as_text(act.get("kind"))
    inputs = as_object(act.get("inputs"))
    host = as_object(inputs.get("host"))
    # Connector actions that send a raw request ("Send an HTTP request to SharePoint") carry
    # the method among their parameters (`parameters/method`, inferred from exported flows).
    method = as_text(inputs.get("method")) or as_text(
        as_object(inputs.get("parameters")).get("parameters/method")
    )
    run_after = _run_after(act)
    policy_raw = inputs.get("retryPolicy")
    policy = as_object(policy_raw)
    policy_type = as_text(policy.get("type"))
    child = None
    if type_l == "workflow":
        child = as_text(host.get("workflowReferenceName"))
        if child is None:  # the Logic Apps form: host.workflow.id
            workflow_id = as_text(as_object(host.get("workflow")).get("id")) or ""
            child = workflow_id.rstrip("/").rsplit("/", 1)[-1] or None
    concurrency = None
    if type_l == "foreach":
        concurrency = as_int(
            as_object(as_object(act.get("runtimeConfiguration")).get("concurrency")).get(
                "repetitions"
            )
        )
        if concurrency is None and "sequential" in lower_text(act.get("operationOptions")):
            concurrency = 1
    connector = connector_of(host, refs) if type_l != "workflow" else None
    operation = as_text(host.get("operationId"))
    params = as_object(inputs.get("parameters"))
    target = target_of(connector, params, as_text(inputs.get("path"))) if connector else None
    variable = _variable_name(type_l, inputs)
    read_text = json_text([act.get("inputs"), act.get("foreach"), act.get("expression")])
    references = sorted({ref.replace("''", "'") for ref in _REFERENCE.findall(read_text)})
    written = [str(k)[len("item/") :] for k in params if str(k).startswith("item/")]
    if (
        not written
        and isinstance(inputs.get("body"), dict)
        and method
        and method.upper()
        in (
            "PATCH",
            "POST",
            "PUT",
        )
    ):
        written = [str(k) for k in inputs["body"]]  # legacy ApiConnection writes a body
    status_raw = inputs.get("statusCode")
    row: dict[str, Any] = {
        "environment_id": ids[0],
        "flow_id": ids[1],
        "action_name": as_text(name),
        "display_name": display_name(name),
        "type": typ,
        "kind": kind,
        "connector": connector,
        "operation": operation,
        "method": method.strip().upper() if method else None,
        "parent": as_text(place.parent),
        "scope_path": as_text(place.scope_path),
        "branch": place.branch,
        "depth": place.depth,
        "order": position,
        "run_after": json.dumps(run_after),
        "runs_after_failure": any(
            status in FAILURE_STATUSES for statuses in run_after.values() for status in statuses
        ),
        "retry_policy_type": policy_type.lower() if policy_type else None,
        "retry_count": as_int(policy.get("count")),
        "retry_interval": nonempty(policy.get("interval")),
        "child_flow_id": child.lower() if child else None,
        "response_kind": (kind or "Http") if type_l == "response" else None,
        "response_status_code": as_int(inputs.get("statusCode")) if type_l == "response" else None,
        "terminate_status": as_text(inputs.get("runStatus")) if type_l == "terminate" else None,
        "terminate_has_error": type_l == "terminate" and inputs.get("runError") is not None,
        "foreach_concurrency": concurrency,
        "is_loop": type_l in LOOP_TYPES,
        "is_scope_like": type_l in SCOPE_LIKE_TYPES,
        "is_effect": False,
        # A child-flow call (Workflow) runs over HTTP and has a retry policy like a connector.
        # https://learn.microsoft.com/power-automate/create-child-flows
        "is_external_call": connector is not None
        or type_l in CONNECTOR_TYPES
        or type_l in ("http", "httpwebhook", "workflow"),
        "timeout": nonempty(as_object(act.get("limit")).get("timeout")),
        "note": shorten("; ".join(notes)) if notes else None,
        "target": target,
        "written_columns": ",".join(written) or None,
        "variable_name": variable,
        "references": ",".join(references) or None,
        "reads_trigger": bool(_TRIGGER_READ.search(read_text)),
        "reads_variables": ",".join(sorted(set(_VARIABLE_READ.findall(read_text)))) or None,
        "foreach_source": shorten(json_text(act["foreach"]), _MAX_EXPRESSION)
        if type_l == "foreach" and "foreach" in act
        else None,
        "expression": shorten(json_text(act["expression"]), _MAX_EXPRESSION)
        if type_l in ("if", "until") and "expression" in act
        else None,
        "response_status": shorten(str(status_raw), 100)
        if type_l == "response" and isinstance(status_raw, str | int)
        else None,
        "response_status_field": type_l == "response" and _status_field(inputs.get("body")),
        "content_key": _content_key(type_l, connector, operation, inputs, target, variable),
        # "Row count" / "Top Count" of List rows / Get items ($top), which caps the rows returned
        # https://learn.microsoft.com/power-automate/dataverse/list-rows ; legacy actions put it
        # in their query (inferred from legacy exports).
        "top": as_int(params.get("$top", as_object(inputs.get("queries")).get("$top"))),
    }
    row["is_effect"] = is_effect(row)
    return row
