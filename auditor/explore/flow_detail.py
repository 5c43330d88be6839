"""`flow show`: everything the store says about one flow, to open it in the portal.

Apart from `flows top` (in `flows`) because one flow's page reads far more than the ranking:
its trigger and filters, actions, runs per day, failures and their causes, slow and retried
actions and sampled unnecessary runs. It reads an `Evidence` of the latest scan and the
findings `auditor analyze` stored for it and returns plain JSON-ready data, which the CLI
renders.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from auditor.analysis.actions import TRIGGER_LINK
from auditor.analysis.runs import error_clusters
from auditor.checks.evidence import Evidence
from auditor.explore.common import (
    environment_ids,
    findings_for,
    one_match,
    records,
    to_change,
    unknown_name,
    value,
)
from auditor.explore.flows import FLOW_KEY

# What `flow show` reports of each retried action, in the order the table shows it.
RETRY_COLUMNS = (
    "retried",
    "retries",
    "recovered",
    "exhausted",
    "throttled",
    "server_errors",
    "timeouts",
)


# subscriptionRequest/message and /scope of the Dataverse trigger.
# https://learn.microsoft.com/power-automate/dataverse/create-update-delete-trigger
DATAVERSE_MESSAGES: Mapping[int, str] = {
    1: "Create",
    2: "Delete",
    3: "Update",
    4: "Create or Update",
    5: "Create or Delete",
    6: "Update or Delete",
    7: "Create, Update or Delete",
}
DATAVERSE_SCOPES: Mapping[int, str] = {
    1: "User",
    2: "Business Unit",
    3: "Parent: Child business unit",
    4: "Organization",
}

SAMPLE_RUNS = 5  # unnecessary runs listed by id in `flow show`
SLOWEST_ACTIONS = 5
TOP_ERRORS = 3


def _conditions(text: Any) -> list[str]:
    """The trigger conditions from their JSON list; text that is not one is shown as is."""
    if not isinstance(text, str) or not text.strip():
        return []
    try:
        parsed = json.loads(text)
    except ValueError:
        return [text]
    return [str(c) for c in parsed] if isinstance(parsed, list) else [str(parsed)]


def find_flow(evidence: Evidence, name_or_id: str, environment: str | None = None) -> pd.Series:
    """The flow a user named: its flow id or workflowid, else its display name (any case).

    A name several flows share is refused with their ids, so the user can pick one.
    """
    flows = evidence.flows
    runs = evidence.run_summary
    # Flows with runs but no definition are still flows a user may name.
    extra = runs.loc[
        ~pd.MultiIndex.from_frame(runs[FLOW_KEY]).isin(pd.MultiIndex.from_frame(flows[FLOW_KEY])),
        FLOW_KEY,
    ]
    table = pd.concat([flows, extra], ignore_index=True)
    envs = environment_ids(evidence, environment, "auditor environments")
    if envs is not None:
        table = table[table["environment_id"].isin(envs)]
    wanted = name_or_id.strip().lower()
    by_id = table[
        table["flow_id"].astype("str").str.lower().eq(wanted)
        | table["workflowid"].astype("str").str.lower().eq(wanted)
    ]
    matches = (
        by_id
        if not by_id.empty
        else table[table["display_name"].astype("str").str.strip().str.lower().eq(wanted)]
    )
    if matches.empty:
        candidates = [str(n) for n in table["display_name"].dropna()]
        raise unknown_name("flow", name_or_id, candidates, "auditor flows top --by runs")
    return one_match(matches, evidence, "flow", "flow_id", name_or_id)


def _one(frame: pd.DataFrame, environment_id: str, flow_id: str) -> pd.DataFrame:
    return frame[(frame["environment_id"] == environment_id) & (frame["flow_id"] == flow_id)]


def _trigger(triggers: pd.DataFrame) -> dict[str, Any] | None:
    if triggers.empty:
        return None
    row = records(triggers.head(1))[0]
    out: dict[str, Any] = {
        "name": row["trigger_name"],
        "type": row["type"],
        "kind": row["kind"],
        "connector": row["connector"],
        "operation": row["operation"],
        "conditions": _conditions(row["conditions_json"]),
        "recurrence": (
            f"every {row['recurrence_interval'] or 1} {row['recurrence_frequency']}"
            if row["recurrence_frequency"]
            else None
        ),
        "split_on": row["split_on"],
        "concurrency_runs": row["concurrency_runs"],
        "is_event": row["is_event"],
        "fires_on_update": row["fires_on_update"],
        "invoked": row["is_invoked"],
        "triggers_in_definition": row["trigger_count"],
        "dataverse": None,
    }
    if row["is_dataverse"]:
        message, scope = row["dataverse_message"], row["dataverse_scope"]
        out["dataverse"] = {
            "message": message,
            "message_name": DATAVERSE_MESSAGES.get(message) if isinstance(message, int) else None,
            "table": row["dataverse_entity"],
            "scope": scope,
            "scope_name": DATAVERSE_SCOPES.get(scope) if isinstance(scope, int) else None,
            "filtering_attributes": row["filtering_attributes"],
            "filter_expression": row["filter_expression"],
            "run_as": row["run_as"],
        }
    return out


def _actions(evidence: Evidence, environment_id: str, flow_id: str) -> dict[str, Any]:
    actions = _one(evidence.actions, environment_id, flow_id)
    facts = _one(evidence.flows, environment_id, flow_id)
    fact = records(facts)[0] if not facts.empty else {}
    external = actions[actions["is_external_call"].astype(bool)].rename(
        columns={"action_name": "action", "retry_policy_type": "retry_policy"}
    )
    external = external.assign(retry_policy=external["retry_policy"].fillna("default"))
    paths = _one(evidence.catch_paths, environment_id, flow_id)
    return {
        "count": len(actions),
        "max_depth": int(actions["depth"].max()) if not actions.empty else 0,
        "effect_actions": [
            str(a) for a in actions.loc[actions["is_effect"].astype(bool), "action_name"]
        ],
        "response_actions": fact.get("response_actions", 0),
        "called_by_flows": fact.get("called_by", 0),
        "external_calls": records(
            external,
            [
                "action",
                "type",
                "connector",
                "operation",
                "method",
                "retry_policy",
                "retry_count",
                "retry_interval",
            ],
        ),
        "catch_paths": records(
            paths, ["catch_action", "scope_path", "members", "reports_failure", "member_names"]
        ),
    }


def _daily(runs: pd.DataFrame, evidence: Evidence) -> dict[str, Any]:
    """Runs and failed runs per 24 hours of the window, the last bucket ending at its end,
    so no bucket is a partial day and a sparkline shows the trend, not the calendar."""
    window = evidence.frames.window
    days = max(1, math.ceil(window.days - 1e-9))
    end = pd.Timestamp(window.end)
    age = (end - runs["start_time"]).dt.total_seconds() // 86400
    bucket = (days - 1 - age).where((age >= 0) & (age < days))
    frame = pd.DataFrame({"bucket": bucket, "failed": runs["failed"].astype(bool)}).dropna()
    per = frame.groupby("bucket")["failed"].agg(["size", "sum"])
    per = per.reindex(range(days), fill_value=0)
    starts = [end - pd.Timedelta(days=days - i) for i in range(days)]
    return {
        "day_starts": [s.isoformat() for s in starts],
        "runs": [int(v) for v in per["size"]],
        "failed": [int(v) for v in per["sum"]],
    }


def _unnecessary(evidence: Evidence, environment_id: str, flow_id: str) -> dict[str, Any] | None:
    summary = _one(evidence.action_results["unnecessary"], environment_id, flow_id)
    if summary.empty:
        return None
    out = records(summary)[0]
    out.pop("environment_id")
    out.pop("flow_id")
    classified = _one(evidence.action_results["classified"], environment_id, flow_id)
    noisy = classified[classified["unnecessary"].fillna(False).astype(bool)]
    runs = _one(evidence.runs, environment_id, flow_id)[["run_name", "start_time", "status"]]
    noisy = noisy.merge(runs, on="run_name", how="left").sort_values(
        ["start_time", "run_name"], ascending=[False, True], na_position="last", kind="stable"
    )
    out["estimated_unnecessary_runs"] = out.pop("extrapolated_unnecessary")
    out["example_runs"] = records(noisy.head(SAMPLE_RUNS), ["run_name", "start_time", "status"])
    return out


def _trigger_executions(triggers: pd.DataFrame) -> dict[str, Any] | None:
    """The flow's CallbackRegistration Expander jobs against its runs. Which flow a job runs
    is inferred (`analysis.actions.TRIGGER_LINK`; no Microsoft page names the column), so
    the figures carry `link_inferred` and `link` (the rule), and zero executions may mean
    the rule is wrong."""
    if triggers.empty:
        return None
    row = records(
        triggers,
        [
            "trigger_executions",
            "runs",
            "executions_without_run",
            "runs_per_execution",
            "link_inferred",
        ],
    )[0]
    row["link"] = TRIGGER_LINK
    return row


def flow_show(
    evidence: Evidence,
    findings: pd.DataFrame,
    name_or_id: str,
    environment: str | None = None,
) -> dict[str, Any]:
    """Everything the store says about one flow: its trigger and filters, actions, runs per
    day, failures and their causes, slow and retried actions, sampled unnecessary runs (by
    run id, to open in the portal), its findings and what to change for each failing check."""
    flow = find_flow(evidence, name_or_id, environment)
    env, flow_id = str(flow["environment_id"]), str(flow["flow_id"])
    workflowid = value(flow.get("workflowid"))
    summary = _one(evidence.run_summary, env, flow_id)
    runs = _one(evidence.all_runs, env, flow_id)
    run_facts = records(summary)[0] if not summary.empty else {}
    durations = _one(evidence.action_results["durations"], env, flow_id)
    retries = _one(evidence.action_results["retries"], env, flow_id)
    retries = retries[(retries["retried"] > 0) | (retries["throttled"] > 0)].sort_values(
        ["retries", "throttled", "action_name"], ascending=[False, False, True], kind="stable"
    )
    triggers = _one(evidence.action_results["triggers"], env, flow_id)
    found = findings_for(findings, env, [flow_id, str(workflowid or "")])
    return {
        "flow": {
            "environment_id": env,
            "environment": evidence.environment_name(env),
            "flow_id": flow_id,
            "workflowid": workflowid,
            "name": value(flow.get("display_name")) or flow_id,
            "state": value(flow.get("state")),
            "enabled": value(flow.get("enabled")),
            "definition_read": value(flow.get("parsed")),
        },
        "window": {
            "start": evidence.frames.window.start.isoformat(),
            "end": evidence.frames.window.end.isoformat(),
        },
        "trigger": _trigger(_one(evidence.triggers, env, flow_id)),
        "actions": _actions(evidence, env, flow_id),
        "runs": {
            "source": run_facts.get("source"),
            "runs": run_facts.get("runs", 0),
            "finished": run_facts.get("finished", 0),
            "failed": run_facts.get("failed", 0),
            "cancelled": run_facts.get("cancelled", 0),
            "failure_rate": run_facts.get("failure_rate"),
            "runs_per_day": run_facts.get("runs_per_day"),
            "failure_streak": run_facts.get("failure_streak", 0),
            "p50_duration_ms": run_facts.get("duration_p50_ms"),
            "p95_duration_ms": run_facts.get("duration_p95_ms"),
            "p99_duration_ms": run_facts.get("duration_p99_ms"),
            "max_duration_ms": run_facts.get("duration_max_ms"),
            "daily": _daily(runs, evidence),
        },
        "trigger_executions": _trigger_executions(triggers),
        "error_clusters": records(
            error_clusters(runs, top=TOP_ERRORS),
            ["cluster", "error_code", "count", "first_seen", "last_seen", "example"],
        ),
        "slowest_actions": records(
            durations.sort_values(["p95_ms", "action_name"], ascending=[False, True], kind="stable")
            .head(SLOWEST_ACTIONS)
            .rename(columns={"action_name": "action"}),
            ["action", "executions", "p50_ms", "p95_ms", "max_ms"],
        ),
        "retries": records(
            retries.rename(columns={"action_name": "action"}),
            ["action", "executions", *RETRY_COLUMNS],
        ),
        "unnecessary": _unnecessary(evidence, env, flow_id),
        "findings": found,
        "to_change": to_change(found),
    }


__all__ = ["DATAVERSE_MESSAGES", "RETRY_COLUMNS", "find_flow", "flow_show"]
