"""The trigger row of a flow definition: what starts the flow and how it is filtered.

One row per flow, from the definition's first trigger: its type and connector, the Dataverse
subscription (table, message, filtering attributes, filter expression), trigger conditions,
recurrence, concurrency and the connector's own event filters.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from auditor.analysis.definition_effects import CONNECTOR_TYPES
from auditor.analysis.definition_values import (
    as_int,
    as_object,
    as_text,
    connector_of,
    display_name,
    json_text,
    lower_text,
    nonempty,
    shorten,
    target_of,
)

# Column names and dtypes of the trigger frame, declared once. Strings are pandas' "str"
# (missing = NaN), optional integers are nullable "Int64".
TRIGGER_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "trigger_name": "str",
    "display_name": "str",  # the name the designer shows: the definition's key, _ as spaces
    "type": "str",
    "kind": "str",
    "connector": "str",  # API name, e.g. shared_commondataserviceforapps
    "operation": "str",  # operationId
    "is_dataverse": "bool",
    "dataverse_message": "Int64",  # 1..7
    "dataverse_entity": "str",
    "dataverse_scope": "Int64",
    "filtering_attributes": "str",
    "filter_expression": "str",
    "run_as": "Int64",
    "conditions": "object",  # list of expression strings
    "conditions_json": "str",
    "condition_count": "int64",
    "recurrence_frequency": "str",
    "recurrence_interval": "Int64",
    "split_on": "str",
    "concurrency_runs": "Int64",
    "is_event": "bool",
    "fires_on_update": "bool",
    "is_invoked": "bool",
    "has_filter": "bool",
    "has_conditions": "bool",
    "trigger_count": "int64",  # triggers in the definition; the first one is described
    # The connector's own event filters: the parameters set on the trigger that narrow the
    # events it fires on (folder, subject filter, form id, list, table...), comma-separated.
    "filter_parameters": "str",
    "target": "str",  # the table (Dataverse) or "site|list" (SharePoint) the trigger watches
}

TRIGGER_COLUMNS: tuple[str, ...] = tuple(TRIGGER_DTYPES)

DATAVERSE_API = "shared_commondataserviceforapps"
DATAVERSE_TRIGGER_OPERATION = "subscribewebhooktrigger"
# subscriptionRequest/message: 1 Create, 2 Delete, 3 Update, 4 Create or Update, 5 Create or
# Delete, 6 Update or Delete, 7 all three. The ones that include Update fire on every update
# that the filters let through.
# https://learn.microsoft.com/power-automate/dataverse/create-update-delete-trigger
DATAVERSE_MESSAGES = range(1, 8)
UPDATE_MESSAGES = frozenset({3, 4, 6, 7})

# Triggers started by something happening elsewhere (polling, webhook, notification), as
# opposed to a call (Request) or a schedule (Recurrence, SlidingWindow).
EVENT_TRIGGER_TYPES = CONNECTOR_TYPES | {"http", "httpwebhook"}
# Request triggers whose caller waits for the answer: an HTTP client, Power Apps (V1, V2),
# Copilot Studio (Skills) and Power Virtual Agents (VirtualAgent).
# https://learn.microsoft.com/power-automate/guidance/coding-guidelines/asychronous-flow-pattern
# The kind strings are inferred from exported flows (tests/corpus): the page names the
# callers, not the values of `kind`.
INVOKED_KINDS = frozenset({"http", "powerapp", "powerappv2", "skills", "virtualagent"})
UPDATE_WORDS = ("updated", "modified", "changed", "onupdate")
# Trigger parameters that shape what a trigger returns, not which events it fires on
# (inferred from the connectors' trigger parameters as exported flows set them).
NOT_FILTERS = frozenset(
    {
        *("includeattachments", "subscriptionrequest/runas", "subscriptionrequest/name"),
        *("subscriptionrequest/message", "subscriptionrequest/scope", "$top", "top"),
    }
)


def _default_value(value: Any) -> bool:
    """A trigger parameter value that narrows nothing: empty, false, "Any" or "All" (inferred:
    the connectors' defaults for options such as importance, as exported flows hold them)."""
    if value is None or value is False or value in ("", [], {}):
        return True
    return isinstance(value, str) and value.strip().lower() in ("any", "all")


def _conditions(value: Any) -> list[str]:
    """Trigger condition expressions; all must hold for a run to start."""
    # https://learn.microsoft.com/power-automate/customize-triggers
    items = value if isinstance(value, list) else [value] if isinstance(value, dict) else []
    out: list[str] = []
    for item in items:
        expression = item.get("expression") if isinstance(item, dict) else item
        if isinstance(expression, str):
            text = nonempty(expression)
            if text is not None:
                out.append(text)
        elif expression is not None:
            out.append(shorten(json_text(expression), 10_000))
    return out


def trigger_row(
    triggers: dict[str, Any], refs: Mapping[str, Any], flow_id: str, environment_id: str
) -> dict[str, Any] | None:
    if not triggers:
        return None
    name, trigger = next(iter(triggers.items()))
    trig = as_object(trigger)
    typ = as_text(trig.get("type"))
    type_l = (typ or "").lower()
    kind = as_text(trig.get("kind"))
    inputs = as_object(trig.get("inputs"))
    host = as_object(inputs.get("host"))
    connector = connector_of(host, refs)
    operation = as_text(host.get("operationId"))
    is_dataverse = (operation or "").lower() == DATAVERSE_TRIGGER_OPERATION and (
        connector or ""
    ).lower() == DATAVERSE_API
    message = entity = scope = filtering = expression = run_as = None
    if is_dataverse:
        params = as_object(inputs.get("parameters"))
        message = as_int(params.get("subscriptionRequest/message"))
        message = message if message in DATAVERSE_MESSAGES else None
        entity = nonempty(params.get("subscriptionRequest/entityname"))
        scope = as_int(params.get("subscriptionRequest/scope"))
        filtering = nonempty(params.get("subscriptionRequest/filteringattributes"))
        expression = nonempty(params.get("subscriptionRequest/filterexpression"))
        run_as = as_int(params.get("subscriptionRequest/runas"))
    conditions = _conditions(trig.get("conditions"))
    params = as_object(inputs.get("parameters"))
    filters = [
        str(key)
        for key, value in params.items()
        if str(key).lower() not in NOT_FILTERS and not _default_value(value)
    ]
    recurrence = as_object(trig.get("recurrence"))
    concurrency = as_int(
        as_object(as_object(trig.get("runtimeConfiguration")).get("concurrency")).get("runs")
    )
    if concurrency is None and "singleinstance" in lower_text(trig.get("operationOptions")):
        concurrency = 1
    is_event = type_l in EVENT_TRIGGER_TYPES
    if is_dataverse:
        fires_on_update = message in UPDATE_MESSAGES
    else:
        # Legacy polling triggers have no operationId; their path names the operation.
        hint = (operation or as_text(inputs.get("path")) or "").lower()
        fires_on_update = is_event and any(word in hint for word in UPDATE_WORDS)
    # A Request trigger without a kind is the plain HTTP request trigger.
    is_invoked = type_l == "request" and (kind is None or kind.lower() in INVOKED_KINDS)
    row: dict[str, Any] = {
        "environment_id": environment_id,
        "flow_id": flow_id,
        "trigger_name": as_text(name),
        "display_name": display_name(name),
        "type": typ,
        "kind": kind,
        "connector": connector,
        "operation": operation,
        "is_dataverse": is_dataverse,
        "dataverse_message": message,
        "dataverse_entity": entity,
        "dataverse_scope": scope,
        "filtering_attributes": filtering,
        "filter_expression": expression,
        "run_as": run_as,
        "conditions": conditions,
        "conditions_json": json.dumps(conditions),
        "condition_count": len(conditions),
        "recurrence_frequency": nonempty(recurrence.get("frequency")),
        "recurrence_interval": as_int(recurrence.get("interval")),
        "split_on": nonempty(trig.get("splitOn")),
        "concurrency_runs": concurrency,
        "is_event": is_event,
        "fires_on_update": bool(fires_on_update),
        "is_invoked": is_invoked,
        "has_filter": filtering is not None or expression is not None,
        "has_conditions": bool(conditions),
        "trigger_count": len(triggers),
        "filter_parameters": ",".join(filters) or None,
        "target": target_of(connector, params, as_text(inputs.get("path"))),
    }
    return row
