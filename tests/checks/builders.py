"""Small frames for check tests: one environment, every query collected, trace logging All.

Each test states only the rows that matter; `frames()` fills in the rest, so a check sees a
store shaped exactly like a collected one.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.checks import CHECKS, Finding, limits_for, run_check
from auditor.checks.evidence import Evidence
from auditor.frames import Frames, Window
from auditor.settings import Settings
from auditor.sources import dataverse, flow_api

ENV = "env-1"
END = datetime(2026, 11, 15, 12, tzinfo=UTC)
WINDOW = Window(END - timedelta(days=7), END)
QUERY_IDS = (*dataverse.QUERIES, *flow_api.QUERIES)


def environment(
    env: str = ENV, name: str = "Contoso", *, dataverse_url: bool = True
) -> dict[str, Any]:
    return {
        "environment_id": env,
        "display_name": name,
        "dataverse_url": f"https://{env}.crm.dynamics.com" if dataverse_url else None,
    }


def query_outcomes(
    env: str = ENV, status: str = "collected", queries: Sequence[str] = QUERY_IDS, **reason: Any
) -> list[dict[str, Any]]:
    return [
        {"scan_id": 1, "environment_id": env, "query_id": q, "status": status, "rows": 1, **reason}
        for q in queries
    ]


def organization(env: str = ENV, trace: int = 2) -> dict[str, Any]:
    return {"environment_id": env, "organizationid": f"org-{env}", "plugintracelogsetting": trace}


def frames(**tables: Sequence[Mapping[str, Any]] | pd.DataFrame) -> Frames:
    """Frames of one environment (unless `environments` is given) with every query collected
    in scan 1 and trace logging All, plus the rows given per table."""
    given = {
        k: pd.DataFrame(list(v)) if not isinstance(v, pd.DataFrame) else v
        for k, v in tables.items()
    }
    given.setdefault("environments", pd.DataFrame([environment()]))
    envs = list(given["environments"]["environment_id"])
    given.setdefault("scan_queries", pd.DataFrame([r for e in envs for r in query_outcomes(e)]))
    given.setdefault("organizations", pd.DataFrame([organization(e) for e in envs]))
    given.setdefault(
        "scans",
        pd.DataFrame(
            [
                {
                    "scan_id": 1,
                    "status": "completed",
                    "started": END,
                    "ended": END,
                    "window_start": WINDOW.start,
                    "window_end": END,
                }
            ]
        ),
    )
    return Frames.from_frames(WINDOW, scan_id=1, **given)


def definition(
    actions: Mapping[str, Any] | None = None, trigger: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A flow definition in the flow API's `properties` shape."""
    return {
        "properties": {
            "definition": {
                "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#",
                "triggers": {"manual": dict(trigger or {"type": "Request", "kind": "Button"})},
                "actions": dict(actions or {}),
            }
        }
    }


def flow(
    flow_id: str,
    actions: Mapping[str, Any] | None = None,
    trigger: Mapping[str, Any] | None = None,
    *,
    state: str = "Started",
    workflowid: str | None = None,
    env: str = ENV,
    text: str | None = None,
) -> dict[str, Any]:
    """A row of the `flows` table (the flow API's list) holding the definition."""
    return {
        "environment_id": env,
        "flow_name": flow_id,
        "display_name": f"Flow {flow_id}",
        "state": state,
        "workflowid": workflowid,
        "definition": text if text is not None else json.dumps(definition(actions, trigger)),
    }


def dataverse_trigger(message: int = 3, **parameters: Any) -> dict[str, Any]:
    """The Dataverse 'When a row is added, modified or deleted' trigger."""
    return {
        "type": "OpenApiConnectionWebhook",
        "inputs": {
            "host": {
                "apiId": "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps",
                "connectionName": "shared_commondataserviceforapps",
                "operationId": "SubscribeWebhookTrigger",
            },
            "parameters": {
                "subscriptionRequest/message": message,
                "subscriptionRequest/entityname": "account",
                "subscriptionRequest/scope": 4,
                **{f"subscriptionRequest/{k}": v for k, v in parameters.items()},
            },
        },
    }


def connector_action(
    operation: str = "UpdateRecord",
    api: str = "shared_commondataserviceforapps",
    run_after: Mapping[str, Sequence[str]] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An OpenApiConnection action of a connector operation."""
    inputs: dict[str, Any] = {
        "host": {"apiId": f"/providers/Microsoft.PowerApps/apis/{api}", "operationId": operation}
    }
    if "retryPolicy" in extra:
        inputs["retryPolicy"] = extra.pop("retryPolicy")
    return {
        "type": "OpenApiConnection",
        "inputs": inputs,
        "runAfter": dict(run_after or {}),
        **extra,
    }


def run(check_id: str, frames_: Frames, settings: Settings | None = None) -> list[Finding]:
    """One check's findings, through the runner (coverage applied), default thresholds."""
    check = CHECKS[check_id]
    return run_check(check, Evidence(frames_), limits_for(check.meta, settings or Settings()))


def statuses(found: Sequence[Finding]) -> dict[str | None, str]:
    """resource id -> status."""
    return {f.resource_id: f.status for f in found}


def nested_scopes(levels: int) -> dict[str, Any]:
    """`levels` Scopes, each the only action of the one around it."""
    inner: dict[str, Any] = {"Compose": {"type": "Compose", "inputs": "deep", "runAfter": {}}}
    for level in range(levels, 0, -1):
        inner = {f"Scope_{level}": {"type": "Scope", "actions": inner, "runAfter": {}}}
    return inner


def catching(run_after: Any) -> dict[str, Any]:
    """A try action and a Terminate Failed that runs after it with `run_after` as given."""
    return {
        "Try": connector_action("UpdateRecord"),
        "Catch": {
            "type": "Terminate",
            "inputs": {"runStatus": "Failed", "runError": {"message": "failed"}},
            "runAfter": {"Try": run_after},
        },
    }


CORPUS = Path(__file__).resolve().parents[1] / "corpus"


def corpus_flow(flow_id: str, path: str) -> dict[str, Any]:
    """A `flows` row holding a real definition of tests/corpus, byte for byte."""
    return flow(flow_id, text=(CORPUS / path).read_text(encoding="utf-8"))


def outcomes_without(query: str) -> list[dict[str, Any]]:
    """Every query collected except `query`, which was not."""
    others = [q for q in QUERY_IDS if q != query]
    return [
        *query_outcomes(queries=others),
        *query_outcomes(status="not-collected", queries=[query], reason="skipped"),
    ]


def after(action: Mapping[str, Any], run_after: Mapping[str, Sequence[str]]) -> dict[str, Any]:
    """The action, run after the given predecessors and statuses."""
    return {**action, "runAfter": {k: list(v) for k, v in run_after.items()}}


def read_as_data() -> dict[str, Any]:
    """A lookup whose failure sets a flag that a later action reads: failure used as data."""
    return {
        "Init_found": {
            "type": "InitializeVariable",
            "inputs": {"variables": [{"name": "found", "type": "boolean", "value": True}]},
            "runAfter": {},
        },
        "Get_item": after(connector_action("GetItem"), {"Init_found": ["Succeeded"]}),
        "Not_found": after(
            {"type": "SetVariable", "inputs": {"name": "found", "value": False}},
            {"Get_item": ["Failed"]},
        ),
        "Use_flag": after(
            {"type": "Compose", "inputs": "@variables('found')"},
            {"Not_found": ["Succeeded", "Skipped"]},
        ),
    }
