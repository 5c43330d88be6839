"""The flow API's answers as rows, and the choice of runs whose actions are read.

Pure functions of the JSON bodies, apart from `flow_api`, which sends the requests.
Shapes: the Logic Apps WorkflowRun and WorkflowRunAction schema
(https://learn.microsoft.com/rest/api/logic/workflowruns/get,
https://learn.microsoft.com/rest/api/logic/workflowrunactions/get), as the flow API returns them
to pnp/cli-microsoft365's flow commands.
"""

from __future__ import annotations

import json
import random
from typing import Any

from auditor.sources.base import Row, as_object

TERMINAL = frozenset({"Succeeded", "Failed", "Cancelled", "TimedOut", "Skipped", "Aborted"})


def _error(value: Any) -> tuple[Any, Any]:
    error = as_object(value)
    inner = as_object(error.get("error"))  # retryHistory wraps it: {"error": {"code", ...}}
    error = inner or error
    return error.get("code"), error.get("message")


def flow_row(item: Row) -> Row:
    """A flow of the list (or GET) response, flattened and keyed by its workflowid where it
    has one (`flow_name`), else by its name in the API (`api_name`)."""
    props = as_object(item.get("properties"))
    triggers = as_object(props.get("definitionSummary")).get("triggers")
    first = triggers[0] if isinstance(triggers, list) and triggers else {}
    definition = props.get("definition")
    name = item.get("name")
    workflow = props.get("workflowEntityId")
    return {
        "flow_name": workflow.lower() if isinstance(workflow, str) and workflow else name,
        "api_name": name,
        "display_name": props.get("displayName"),
        "state": props.get("state"),
        "created_time": props.get("createdTime"),
        "last_modified_time": props.get("lastModifiedTime"),
        "workflowid": workflow,
        "suspension_reason": props.get("flowSuspensionReason"),
        "trigger_type": as_object(first).get("type"),
        "definition": json.dumps(definition) if isinstance(definition, dict) else None,
    }


def run_row(flow_name: str, item: Row) -> Row:
    """A run of the runs list, flattened."""
    props = as_object(item.get("properties"))
    code, message = _error(props.get("error"))
    return {
        "flow_name": flow_name,
        "run_name": item.get("name"),
        "start_time": props.get("startTime"),
        "end_time": props.get("endTime") or None,
        "status": props.get("status"),
        "code": props.get("code"),
        "error_code": code,
        "error_message": message,
        "trigger_name": as_object(props.get("trigger")).get("name"),
        "client_tracking_id": as_object(props.get("correlation")).get("clientTrackingId"),
    }


def action_rows(flow_name: str, run_name: str, body: Row) -> list[Row]:
    """Every action of a run (`$expand=properties/actions`: a map keyed by action name)."""
    actions = as_object(body.get("properties")).get("actions")
    if isinstance(actions, list):  # the /actions list form: [{name, properties}]
        actions = {a.get("name"): a.get("properties") for a in actions if isinstance(a, dict)}
    rows: list[Row] = []
    for name, props in as_object(actions).items():
        if not isinstance(name, str) or not isinstance(props, dict):
            continue
        history = props.get("retryHistory")
        history = history if isinstance(history, list) else []
        codes = sorted({str(as_object(h).get("code")) for h in history if as_object(h).get("code")})
        code, message = _error(props.get("error"))
        rows.append(
            {
                "flow_name": flow_name,
                "run_name": run_name,
                "action_name": name,
                "status": props.get("status"),
                "code": props.get("code"),
                "start_time": props.get("startTime"),
                "end_time": props.get("endTime"),
                "error_code": code,
                "error_message": message,
                "retry_count": len(history),
                "retry_codes": ",".join(codes) or None,
                "retry_history": json.dumps(history) if history else None,
                "repetition_count": props.get("repetitionCount"),
            }
        )
    return rows


def choose_sample(
    runs: list[tuple[str, str]], size: int, rng: random.Random
) -> tuple[list[str], int]:
    """Up to `size` finished runs: every failed run first, then a random draw of the rest.

    Returns the chosen run names and how many of them failed.
    """
    finished = sorted((name, status) for name, status in runs if status in TERMINAL)
    failed = [name for name, status in finished if status == "Failed"]
    rest = [name for name, status in finished if status != "Failed"]
    chosen_failed = failed if len(failed) <= size else rng.sample(failed, size)
    room = size - len(chosen_failed)
    chosen_rest = rng.sample(rest, min(room, len(rest))) if room > 0 else []
    return sorted(chosen_failed + chosen_rest), len(chosen_failed)
