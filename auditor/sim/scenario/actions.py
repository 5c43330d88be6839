"""A run's action results, rendered on demand when the flow API is asked for them."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd

from auditor.sim.flow_runs import THROTTLE_MESSAGE, ActionResult, RunResult, execute, run_span
from auditor.sim.model import SimEnvironment, SimTenant
from auditor.sim.names import guid_list
from auditor.sim.scenario.columns import iso7


@lru_cache(maxsize=4096)
def _parsed(definition: str, plan: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return json.loads(definition), json.loads(plan)


@lru_cache(maxsize=16384)
def _played(definition: str, plan: str, outcome: int, retry: int, variant: int) -> RunResult:
    """The definition played for one intended outcome, once per distinct play: runs of a flow
    share a handful of them. The result is only read."""
    parsed, parsed_plan = _parsed(definition, plan)
    return execute(parsed, parsed_plan, outcome, retry, variant)


def _to_ns(value: Any) -> int:
    return int(pd.Timestamp(value).value)


def render_actions(
    tenant: SimTenant,
    env: SimEnvironment,
    flow: Mapping[str, Any],
    run: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """The run's action results, keyed by action name, as `$expand=properties/actions` shows.

    Shape: Logic Apps `WorkflowRunAction` properties (https://learn.microsoft.com/rest/api/logic/workflowrunactions/get,
    https://learn.microsoft.com/rest/api/logic/workflowrunactions/get). Deterministic: the
    statuses come from playing the flow's definition for the run's intended outcome, the times
    from the run's start and end, the ids from the run's `_sim_seed`.
    """
    del tenant, env  # the flow and run rows carry everything needed
    result = _played(
        str(flow["definition"]),
        str(flow["_sim_plan"]),
        int(run["_sim_outcome"]),
        int(run["_sim_retry"]),
        int(run["_sim_variant"]),
    )
    start = _to_ns(run["start_time"])
    end = _to_ns(run["end_time"])
    rng = np.random.Generator(np.random.PCG64(int(run["_sim_seed"])))
    client = str(run["client_tracking_id"])
    total = run_span(result) or 1.0
    length = max(end - start, 1000)
    scale = length * 0.97 / total
    out: dict[str, dict[str, Any]] = {}
    cursor = float(start + length * 0.02)  # the trigger takes the first moments
    # Every id of the run in one draw: the same ids, in the same order, as one draw per
    # action (the generator's bytes are a single stream), at one numpy call per run.
    ids = iter(guid_list(rng, sum(_ids_needed(r) for r in result.actions)))
    for r in result.actions:
        cursor = _layout(r, cursor, scale, ids, client, out)
    return out


def _ids_needed(r: ActionResult) -> int:
    """Ids an action and its children take: a tracking id, two per retry."""
    return 1 + 2 * r.retries + sum(_ids_needed(c) for c in r.children)


def _layout(
    r: ActionResult,
    cursor: float,
    scale: float,
    ids: Iterator[str],
    client: str,
    out: dict[str, dict[str, Any]],
) -> float:
    begin = cursor
    tracking = next(ids)
    retry_ids = [next(ids) for _ in range(2 * r.retries)]
    entry: dict[str, Any] = {}
    if r.status == "Skipped":
        finish = begin
        inner = begin
    else:
        inner = begin + r.weight * scale * (0.5 if r.children else 1.0)
        finish = inner
    out[r.name] = entry  # parents before children, as the engine lists them
    for c in r.children:
        finish = _layout(c, finish, scale, ids, client, out)
    if r.status != "Skipped" and r.children:
        finish += r.weight * scale * 0.5
    entry["startTime"] = iso7(int(begin // 100 * 100))
    entry["endTime"] = iso7(int(finish // 100 * 100))
    entry["correlation"] = {"actionTrackingId": tracking, "clientTrackingId": client}
    entry["status"] = r.status
    entry["code"] = r.code
    if r.error is not None:
        entry["error"] = {"code": r.error[0], "message": r.error[1]}
    if r.retries:
        # RetryHistory: startTime, endTime, code, clientRequestId, serviceRequestId, error
        # (https://learn.microsoft.com/javascript/api/@azure/arm-logic/retryhistory); the
        # code as a status name is inferred (the page says only "the status code").
        slot = (inner - begin) / (r.retries + 1)
        history = []
        for i in range(r.retries):
            s = begin + i * slot
            history.append(
                {
                    "startTime": iso7(int(s // 100 * 100)),
                    "endTime": iso7(int((s + slot * 0.3) // 100 * 100)),
                    "code": r.retry_code or "TooManyRequests",
                    "clientRequestId": retry_ids[2 * i],
                    "serviceRequestId": retry_ids[2 * i + 1],
                    "error": {"error": {"code": "429", "message": THROTTLE_MESSAGE}},
                }
            )
        entry["retryHistory"] = history
    if r.repetitions is not None and r.status != "Skipped":
        entry["repetitionCount"] = r.repetitions
    return finish
