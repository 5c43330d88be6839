"""The facts of each answer read from the flows and their runs, with the few Dataverse rows
beside them (custom Update steps, failed system jobs): one function per answer, each
returning its facts in the truth's key order.

Apart from the runs and the steps and jobs they read: these steps only apply the rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from auditor.sim.model import SimEnvironment
from auditor.sim.truth.flow_facts import FlowFacts
from auditor.sim.truth.frames import query_rows
from auditor.sim.truth.runs import RunMetrics
from auditor.sim.truth.thresholds import THRESHOLDS


def trigger_condition_facts(
    env: SimEnvironment,
    tables: Mapping[str, pd.DataFrame],
    enabled: set[str],
    facts: Mapping[str, FlowFacts],
    metrics: RunMetrics,
) -> dict[str, Any]:
    """Unfiltered Update steps and triggers, gated and self-triggering flows, noisy flows."""
    t = THRESHOLDS
    per_flow = metrics.per_flow
    f: dict[str, Any] = {}
    steps = tables.get("sdkmessageprocessingsteps", pd.DataFrame())
    messages = tables.get("sdkmessages", pd.DataFrame())
    if env.has_dataverse:
        msg_name = dict(zip(messages["sdkmessageid"], messages["name"], strict=True))
        step_msg = steps["_sdkmessageid_value"].map(msg_name)
        live_custom = (steps["customizationlevel"] == 1) & (steps["statecode"] == 0)
        unfiltered = live_custom & (step_msg == "Update") & steps["filteringattributes"].isna()
        f["unfiltered_update_steps"] = sorted(
            steps.loc[unfiltered.fillna(False), "sdkmessageprocessingstepid"].tolist()
        )
    else:
        f["unfiltered_update_steps"] = []
    f["unfiltered_dataverse_update_triggers"] = sorted(
        n
        for n in enabled
        if facts[n].dataverse
        and facts[n].dv_message in (3, 4, 6, 7)
        and not facts[n].dv_filtered
        and not facts[n].conditions
    )
    f["gated_event_triggers"] = sorted(n for n in enabled if facts[n].gated)
    f["self_triggering_flows"] = sorted(n for n in enabled if facts[n].updates_own_trigger)
    f["noisy_flows"] = sorted(
        n
        for n, m in per_flow.items()
        if m["runs"] >= t["min_runs"]
        and m["unnecessary_runs"] / m["runs"] > t["unnecessary_run_rate"]
    )
    return f


def return_result_facts(
    env: SimEnvironment,
    tables: Mapping[str, pd.DataFrame],
    flows: pd.DataFrame,
    runs: pd.DataFrame,
    enabled: set[str],
    facts: Mapping[str, FlowFacts],
    metrics: RunMetrics,
) -> dict[str, Any]:
    """Invoked flows without a response, swallowed failures, failures without a message."""
    failed = metrics.failed
    f: dict[str, Any] = {}
    called = set().union(*(facts[n].child_refs for n in enabled)) if enabled else set()
    wid = dict(zip(flows["name"], flows["workflowid"], strict=True))
    invoked = [
        n
        for n in enabled
        if (
            facts[n].trigger_type.lower() == "request"
            and facts[n].trigger_kind.lower()
            in ("http", "powerapp", "powerappv2", "skills", "virtualagent")
        )
        or (wid[n] is not None and wid[n] in called)
    ]
    f["invoked_flows_without_response"] = sorted(n for n in invoked if not facts[n].has_response)
    f["flows_reporting_handled_failure_as_success"] = sorted(
        n for n in enabled if facts[n].swallowing
    )
    n_failed = int(failed.sum())
    bare = int((failed & runs["error_message"].isna().to_numpy()).sum()) if len(runs) else 0
    f["failed_runs"] = n_failed
    f["failed_runs_without_message"] = bare
    jobs = tables.get("asyncoperations", pd.DataFrame())
    if env.has_dataverse:
        jobs = query_rows("asyncoperations", jobs)
        failed_jobs = jobs[jobs["statuscode"] == 31]
        f["failed_jobs"] = len(failed_jobs)
        f["failed_jobs_without_message"] = int(failed_jobs["message"].isna().sum())
    else:
        f["failed_jobs"] = 0
        f["failed_jobs_without_message"] = 0
    return f


def decomposed_step_facts(enabled: set[str], facts: Mapping[str, FlowFacts]) -> dict[str, Any]:
    """Monolithic flows and action sequences repeated across flows."""
    t = THRESHOLDS
    f: dict[str, Any] = {}
    f["monolithic_flows"] = sorted(
        n
        for n in enabled
        if facts[n].count > t["max_actions"] or facts[n].depth - 1 > t["max_depth"]
    )
    window_flows: dict[tuple[str, ...], set[str]] = {}
    for n in enabled:
        for w in facts[n].windows:
            window_flows.setdefault(w, set()).add(n)
    repeated = sorted(
        w for w, fl in window_flows.items() if len(fl) >= t["repeated_sequence_flows"]
    )
    f["repeated_sequences"] = [list(w) for w in repeated]
    f["flows_with_repeated_sequences"] = sorted(
        set().union(*(window_flows[w] for w in repeated)) if repeated else set()
    )
    return f


def reliable_flow_facts(
    enabled: set[str], facts: Mapping[str, FlowFacts], metrics: RunMetrics
) -> dict[str, Any]:
    """Flows failing often or in streaks, actions exhausting retries, calls without a retry
    policy or an error path."""
    t = THRESHOLDS
    per_flow, streaks, exhausted = metrics.per_flow, metrics.streaks, metrics.exhausted
    f: dict[str, Any] = {}
    f["high_failure_flows"] = sorted(
        n
        for n, m in per_flow.items()
        if m["runs"] >= t["min_runs"] and m["failed_runs"] / m["runs"] > t["failure_rate"]
    )
    f["failure_streak_flows"] = sorted(n for n, s in streaks.items() if s >= t["failure_streak"])
    f["exhausted_retry_actions"] = sorted(
        f"{fl}/{a}" for (fl, a), c in exhausted.items() if c >= t["exhausted_retry_runs"]
    )
    f["no_retry_without_error_path"] = sorted(
        n for n in enabled if facts[n].no_retry and not facts[n].has_catch
    )
    return f


def slow_flow_action_facts(metrics: RunMetrics) -> dict[str, Any]:
    """Flow actions whose p95 duration is above `action_p95_ms`."""
    t = THRESHOLDS
    action_p95 = metrics.action_p95
    return {
        "slow_flow_actions": sorted(
            f"{fl}/{a}" for (fl, a), p in action_p95.items() if p > t["action_p95_ms"]
        )
    }
