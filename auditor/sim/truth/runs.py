"""Flow runs at `now`: each finished run's outcome (failed, unnecessary), the longest streak
of failed runs per flow, and per action the runs that exhausted its retries and its p95
duration.

Apart because it is the only step that plays definitions (`render_actions`) to look inside
runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditor.sim.model import SimEnvironment, SimTenant
from auditor.sim.scenario import render_actions
from auditor.sim.truth.flow_facts import FlowFacts
from auditor.sim.truth.frames import max_streak, ns


def _run_analysis(
    tenant: SimTenant, env: SimEnvironment, runs: pd.DataFrame, facts: dict[str, FlowFacts]
) -> tuple[npt.NDArray[np.bool_], dict[tuple[str, str], int], dict[tuple[str, str], float]]:
    """Unnecessary flag per run, exhausted-retry counts and action p95 per (flow, action).

    Action results depend only on (flow, outcome, retry, variant), with times scaled to the
    run; so one rendered run per group gives the statuses and each action's share of the run
    duration for the whole group.
    """
    unnecessary = np.zeros(len(runs), dtype=bool)
    exhausted: dict[tuple[str, str], int] = {}
    durations: dict[tuple[str, str], list[npt.NDArray[np.float64]]] = {}
    if runs.empty:
        return unnecessary, exhausted, {}
    flows = env.flows.set_index("name", drop=False)
    start = ns(runs["start_time"])
    length = (ns(runs["end_time"]) - start).astype(np.float64)
    keys = ["flow_name", "_sim_outcome", "_sim_retry", "_sim_variant"]
    positions = np.arange(len(runs))
    for key, idx in runs.assign(_pos=positions).groupby(keys, sort=True)["_pos"]:
        rows = idx.to_numpy()
        flow_name = str(key[0])
        flow = flows.loc[flow_name]
        first = runs.iloc[int(rows[0])]
        actions = render_actions(
            tenant,
            env,
            {str(k): v for k, v in flow.items()},
            {str(k): v for k, v in first.items()},
        )
        effects = facts[flow_name].effects
        ran = [n for n in effects if n in actions and actions[n]["status"] != "Skipped"]
        unnecessary[rows] = not ran
        run_len = max(float(length[rows[0]]), 1.0)
        for name, result in actions.items():
            if result.get("retryHistory") and result["status"] == "Failed":
                exhausted[(flow_name, name)] = exhausted.get((flow_name, name), 0) + len(rows)
            if result["status"] == "Skipped":
                continue
            a_len = float(
                pd.Timestamp(result["endTime"]).value - pd.Timestamp(result["startTime"]).value
            )
            share = a_len / run_len
            durations.setdefault((flow_name, name), []).append(length[rows] * share / 1e6)
    p95 = {
        k: float(np.percentile(np.concatenate(v), 95, method="linear"))
        for k, v in durations.items()
    }
    return unnecessary, exhausted, p95


@dataclass(frozen=True)
class RunMetrics:
    """What the rules read of an environment's listed runs."""

    failed: npt.NDArray[np.bool_]  # per run: finished with status Failed
    per_flow: dict[str, dict[str, Any]]  # flow name -> display name and run counts
    streaks: dict[str, int]  # flow name -> longest streak of failed runs
    exhausted: dict[tuple[str, str], int]  # (flow, action) -> runs that exhausted its retries
    action_p95: dict[tuple[str, str], float]  # (flow, action) -> p95 duration (ms)


def run_metrics(
    tenant: SimTenant,
    env: SimEnvironment,
    runs: pd.DataFrame,
    facts: dict[str, FlowFacts],
    now_ns: int,
) -> RunMetrics:
    """Outcomes, counts per flow, failure streaks and action metrics of the listed `runs`."""
    flows = env.flows
    # A run still going at "now" is listed as Running: only finished runs have an outcome.
    finished = (ns(runs["end_time"]) <= now_ns) if len(runs) else np.zeros(0, dtype=bool)
    unnecessary = np.zeros(len(runs), dtype=bool)
    done = runs[finished].reset_index(drop=True)
    done_unnecessary, exhausted, action_p95 = _run_analysis(tenant, env, done, facts)
    unnecessary[np.flatnonzero(finished)] = done_unnecessary
    failed = (
        ((runs["status"] == "Failed").to_numpy() & finished)
        if len(runs)
        else np.zeros(0, dtype=bool)
    )
    per_flow: dict[str, dict[str, Any]] = {}
    run_flow = runs["flow_name"].to_numpy().astype(str) if len(runs) else np.zeros(0, dtype=str)
    order = (
        np.lexsort((runs["name"].to_numpy().astype(str), ns(runs["start_time"]), run_flow))
        if len(runs)
        else np.zeros(0, dtype=np.int64)
    )
    streaks: dict[str, int] = {}
    sorted_flow = run_flow[order]
    sorted_failed = failed[order]
    bounds = (
        np.flatnonzero(np.r_[True, sorted_flow[1:] != sorted_flow[:-1], True])
        if len(sorted_flow)
        else np.zeros(0, dtype=np.int64)
    )
    for lo, hi in pairwise(bounds):
        streaks[str(sorted_flow[lo])] = max_streak(sorted_failed[lo:hi])
    for name, display in zip(flows["name"], flows["display_name"], strict=True):
        mine = run_flow == name
        per_flow[str(name)] = {
            "display_name": str(display),
            "runs": int(mine.sum()),
            "failed_runs": int((failed & mine).sum()),
            "unnecessary_runs": int((unnecessary & mine).sum()),
        }
    return RunMetrics(failed, per_flow, streaks, exhausted, action_p95)
