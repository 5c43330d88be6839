"""Apply to each loops that call connectors one item at a time.

Power Automate runs an Apply to each sequentially unless its concurrency control is on
(`runtimeConfiguration.concurrency.repetitions`, default 1, up to 50): a loop that calls a
connector or HTTP endpoint per item then takes items x call latency, and over large inputs
runs for hours or hits the action timeouts (design.md A5, "sequential loops over large
inputs"). Loops that set variables are left out: they must run one item at a time.
https://learn.microsoft.com/power-automate/limits-and-config#concurrency-looping-and-debatching-limits
"""

from __future__ import annotations

import pandas as pd

from auditor.checks.base import (
    CheckMeta,
    Finding,
    Limits,
    evidence_rows,
    make,
    per_flow,
    rows,
)
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-sequential-loop",
    title="Sequential loop calling a connector per item",
    answers=("sufficient-performance",),
    severity="low",
    rationale=(
        "An Apply to each without concurrency control processes one item at a time; when its "
        "body calls a connector or HTTP endpoint, the loop's duration grows with every item "
        "and large inputs make the job slow or time out."
    ),
    remediation=(
        "Turn on concurrency control for the loop (Settings > Concurrency control, degree "
        "up to 50) when the items are independent, or replace per-item calls with a batch "
        "(a filtered List rows, a Dataverse $batch, a child flow per chunk)."
    ),
    learn_url="https://learn.microsoft.com/power-automate/limits-and-config#concurrency-looping-and-debatching-limits",
    needs=("workflows", "flows"),
)

# Loops that change variables must stay sequential (parallel iterations would race).
VARIABLE_ACTIONS = frozenset(
    {
        "setvariable",
        "incrementvariable",
        "decrementvariable",
        "appendtoarrayvariable",
        "appendtostringvariable",
    }
)


def _path(scope_path: object, name: object) -> str:
    prefix = scope_path if isinstance(scope_path, str) and scope_path else ""
    return f"{prefix}/{name}" if prefix else str(name)


def _foreach(actions: pd.DataFrame) -> pd.Series:
    return actions["type"].astype("str").str.lower().eq("foreach").fillna(False)


def sequential_loops(actions: pd.DataFrame) -> pd.DataFrame:
    """Foreach loops without concurrency whose body calls out and sets no variable, with the
    number of external calls inside (`calls`)."""
    concurrency = actions["foreach_concurrency"]
    loops = actions[_foreach(actions) & (concurrency.isna() | concurrency.le(1))]
    of_flow = per_flow(actions)
    found = []
    for loop in rows(loops):
        inside = _path(loop.scope_path, loop.action_name)
        flow_actions = of_flow(loop.environment_id, loop.flow_id)
        paths = flow_actions["scope_path"].astype("str")
        mine = flow_actions[(paths.eq(inside) | paths.str.startswith(inside + "/")).fillna(False)]
        types = set(mine["type"].astype("str").str.lower())
        calls = int(mine["is_external_call"].sum())
        if calls and not types & VARIABLE_ACTIONS:
            found.append(
                {
                    "environment_id": loop.environment_id,
                    "flow_id": loop.flow_id,
                    "action_name": loop.action_name,
                    "foreach_concurrency": loop.foreach_concurrency,
                    "calls": calls,
                }
            )
    columns = ["environment_id", "flow_id", "action_name", "foreach_concurrency", "calls"]
    return pd.DataFrame(found, columns=columns)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with a loop: fail (low) when a loop calls out one item at a time."""
    flows = evidence.flows
    actions = evidence.actions
    looping = actions[_foreach(actions)].loc[:, ["environment_id", "flow_id"]].drop_duplicates()
    chosen = flows[flows["enabled"]].merge(looping, on=["environment_id", "flow_id"])
    slow = sequential_loops(actions[actions["flow_id"].isin(chosen["flow_id"])])
    out = []
    for row in rows(chosen):
        mine = slow[
            (slow["environment_id"] == row.environment_id) & (slow["flow_id"] == row.flow_id)
        ]
        if mine.empty:
            message = "its loops run concurrently or make no external call per item"
        else:
            names = ", ".join(mine["action_name"].astype(str).head(5))
            message = (
                f"{len(mine)} loop(s) call a connector once per item, one item at a time ({names})"
            )
        out.append(
            make(
                META,
                "pass" if mine.empty else "fail",
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={"sequential_loops": len(mine)},
                evidence=evidence_rows(mine, ["action_name", "foreach_concurrency", "calls"]),
            )
        )
    return out
