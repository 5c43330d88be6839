"""One environment's truth at `now`: its visible frames and row counts, the facts of each
answer, the metrics and the verdicts, in the order the truth file lists them.

Apart from the steps it calls so that the order of the steps, and so of the facts' keys, is
in one place.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from auditor.sim.model import VISIBLE_BY, SimEnvironment, SimTenant
from auditor.sim.scenario import RUNS_VISIBLE_BY
from auditor.sim.truth.answer_facts import (
    decomposed_step_facts,
    reliable_flow_facts,
    return_result_facts,
    slow_flow_action_facts,
    trigger_condition_facts,
)
from auditor.sim.truth.flow_facts import FlowFacts
from auditor.sim.truth.frames import QUERY_SETS, ns, query_rows, visible
from auditor.sim.truth.runs import run_metrics
from auditor.sim.truth.steps_and_jobs import step_and_job_facts
from auditor.sim.truth.verdicts import verdicts_of

# Facts that list flows (by key).
_FLOW_FACTS = (
    "unfiltered_dataverse_update_triggers",
    "gated_event_triggers",
    "self_triggering_flows",
    "noisy_flows",
    "invoked_flows_without_response",
    "flows_reporting_handled_failure_as_success",
    "monolithic_flows",
    "flows_with_repeated_sequences",
    "high_failure_flows",
    "failure_streak_flows",
    "no_retry_without_error_path",
)


def _row_counts(
    env: SimEnvironment, tables: Mapping[str, pd.DataFrame], flows: pd.DataFrame, runs: pd.DataFrame
) -> dict[str, int]:
    """Rows a first scan stores per entity set, then the flow API's flows and runs."""
    row_counts: dict[str, int] = {}
    if env.has_dataverse:
        for entity_set in QUERY_SETS:
            row_counts[entity_set] = len(query_rows(entity_set, tables[entity_set]))
    row_counts["flows"] = len(flows)
    row_counts["flow_runs"] = len(runs)
    return row_counts


def _key_flows(
    flows: pd.DataFrame, f: dict[str, Any], per_flow: dict[str, dict[str, Any]]
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Rename the flows of the facts in place, and return the per-flow metrics by key and the
    ten noisiest flows."""
    # The auditor keys a flow by its Dataverse workflowid where it has one (a solution flow),
    # else by its flow API name: the truth names flows the same way.
    key = {
        str(n): (str(w).lower() if isinstance(w, str) and w else str(n))
        for n, w in zip(flows["name"], flows["workflowid"], strict=True)
    }
    per_flow = {key[n]: m for n, m in per_flow.items()}
    noisiest = sorted(
        (n for n, m in per_flow.items() if m["unnecessary_runs"] > 0),
        key=lambda n: (-per_flow[n]["unnecessary_runs"], n),
    )[:10]
    for name in _FLOW_FACTS:
        f[name] = sorted(key[n] for n in f[name])
    for name in ("exhausted_retry_actions", "slow_flow_actions"):
        f[name] = sorted(f"{key[fl]}/{a}" for fl, _, a in (x.partition("/") for x in f[name]))
    return per_flow, noisiest


def environment_truth(tenant: SimTenant, env: SimEnvironment, now_ns: int) -> dict[str, Any]:
    """The truth of one environment at `now_ns`: counts, facts, metrics and verdicts."""
    flows = env.flows
    runs = env.runs
    runs = runs[ns(runs[RUNS_VISIBLE_BY]) <= now_ns].reset_index(drop=True) if len(runs) else runs
    facts = {
        str(n): FlowFacts(json.loads(str(dfn)))
        for n, dfn in zip(flows["name"], flows["definition"], strict=True)
    }
    enabled = {str(n) for n, s in zip(flows["name"], flows["state"], strict=True) if s == "Started"}
    tables = {k: visible(v, VISIBLE_BY.get(k), now_ns) for k, v in env.tables.items()}
    trace_setting: int | None = None
    if env.has_dataverse:
        trace_setting = int(tables["organizations"]["plugintracelogsetting"].iloc[0])
    row_counts = _row_counts(env, tables, flows, runs)
    table_rows = {k: len(v) for k, v in sorted(tables.items())}

    metrics = run_metrics(tenant, env, runs, facts, now_ns)
    f: dict[str, Any] = {
        **trigger_condition_facts(env, tables, enabled, facts, metrics),
        **return_result_facts(env, tables, flows, runs, enabled, facts, metrics),
        **decomposed_step_facts(enabled, facts),
        **reliable_flow_facts(enabled, facts, metrics),
    }
    step_facts, step_metrics = step_and_job_facts(env, tables, trace_setting)
    f.update(step_facts)
    f.update(slow_flow_action_facts(metrics))
    per_flow, noisiest = _key_flows(flows, f, metrics.per_flow)
    queue_p95 = f["queue_latency_p95_ms"]
    verdicts, reasons = verdicts_of(env, trace_setting, f)
    return {
        "id": env.env_id,
        "name": env.display_name,
        "slug": env.slug,
        "has_dataverse": env.has_dataverse,
        "trace_setting": trace_setting,
        "row_counts": row_counts,
        "table_rows": table_rows,
        "verdicts": verdicts,
        "verdict_reasons": reasons,
        "metrics": {
            "queue_latency_p95_ms": queue_p95,
            "flows": per_flow,
            "steps": step_metrics,
            "noisiest_flows": noisiest,
        },
        "facts": f,
    }
