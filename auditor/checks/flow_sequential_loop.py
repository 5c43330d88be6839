"""Apply to each loops that call out one item at a time over a whole collection.

Power Automate runs an Apply to each sequentially unless its concurrency control is on
(`runtimeConfiguration.concurrency.repetitions`, default 1, up to 50): a loop that calls a
connector, an HTTP endpoint or a child flow per item then takes items x call latency, and
over large inputs runs for hours or hits the action timeouts (the answer
`sufficient-performance` in reports/assessment.toml; R-LOOP in tests/corpus/README.md).
https://learn.microsoft.com/power-automate/limits-and-config#concurrency-looping-and-debatching-limits

How large the input is, a definition says through what the loop iterates
(`auditor.analysis.loops`): a loop fails only when it is sequential, its body makes an
external call (child-flow `Workflow` calls included), it sets no variable (such loops must run
one item at a time: parallel iterations would race), and it iterates a `collection`: the
output of List rows, Get items, Get files, a search or query, an HTTP GET, or data or a
variable built from one. A sequential loop over one record's few children (a mail's
attachments, a trigger item's list, a record's child array), a split string, a fixed array or
an output the analysis cannot size passes, and the message says what it iterates.
"""

from __future__ import annotations

import pandas as pd

from auditor.analysis.loop_operations import COLLECTION, FIXED, RECORD_CHILDREN
from auditor.analysis.loops import loop_sources
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
    severity="low",
    rationale=(
        "An Apply to each without concurrency control processes one item at a time; when its "
        "body calls a connector, an HTTP endpoint or a child flow and it iterates a whole "
        "table, list or query result, the loop's duration grows with every row and large "
        "inputs make the job slow or time out."
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
EVIDENCE = [
    "action_name",
    "display_name",
    "foreach_concurrency",
    "calls",
    "kind",
    "source_action",
    "source_display_name",
    "source_operation",
    "fails",
]
_SHOWN = 5
# What a passing loop's kind says about its size, after "iterates <what>".
WHY_PASS = {
    RECORD_CHILDREN: "few items",
    FIXED: "few items",
}
WHY_UNKNOWN = "not a table, list or query result the analysis can see"


def _path(scope_path: object, name: object) -> str:
    prefix = scope_path if isinstance(scope_path, str) and scope_path else ""
    return f"{prefix}/{name}" if prefix else str(name)


def _foreach(actions: pd.DataFrame) -> pd.Series:
    return actions["type"].astype("str").str.lower().eq("foreach").fillna(False)


def sequential_loops(actions: pd.DataFrame) -> pd.DataFrame:
    """Foreach loops without concurrency whose body calls out (a connector, HTTP or a child
    flow) and sets no variable, with the number of such calls inside (`calls`)."""
    concurrency = actions["foreach_concurrency"]
    loops = actions[_foreach(actions) & (concurrency.isna() | concurrency.le(1))]
    # Only the columns read below: each flow's rows are sliced out once.
    of_flow = per_flow(
        actions.loc[:, ["environment_id", "flow_id", "scope_path", "type", "is_external_call"]]
    )
    found = []
    for loop in rows(loops):
        inside = _path(loop.scope_path, loop.action_name)
        flow_actions = of_flow(loop.environment_id, loop.flow_id)
        paths = flow_actions["scope_path"].astype("str")
        mine = flow_actions[(paths.eq(inside) | paths.str.startswith(inside + "/")).fillna(False)]
        types = mine["type"].astype("str").str.lower()
        calls = int((mine["is_external_call"].astype(bool) | types.eq("workflow")).sum())
        if calls and not set(types) & VARIABLE_ACTIONS:
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


def judged_loops(actions: pd.DataFrame, definitions: pd.DataFrame | None = None) -> pd.DataFrame:
    """`sequential_loops` with what each iterates (`loop_sources`: kind, source action and
    operation, description) and whether it fails (`fails`: it iterates a collection)."""
    slow = sequential_loops(actions)
    columns = [*slow.columns, "display_name", "kind", "source_action"]
    columns += ["source_display_name", "source_operation", "description", "fails"]
    if slow.empty:
        return pd.DataFrame(columns=columns)
    chosen = actions[actions["flow_id"].isin(slow["flow_id"])]
    sources = loop_sources(chosen, definitions).rename(columns={"source_kind": "kind"})
    out = slow.merge(sources, on=["environment_id", "flow_id", "action_name"], how="left")
    out["display_name"] = out["display_name"].fillna(out["action_name"].str.replace("_", " "))
    out["kind"] = out["kind"].fillna("unknown")
    out["fails"] = out["kind"].eq(COLLECTION)
    # Failing loops first: the first evidence row places the finding (auditor lint).
    out = out.sort_values("fails", ascending=False, kind="stable").reset_index(drop=True)
    return out.loc[:, columns]


def _said(loop: object) -> str:
    name = getattr(loop, "display_name", "?")
    what = getattr(loop, "description", None) or "an unnamed source"
    if getattr(loop, "fails", False):
        return f"{name} iterates {what}"
    why = WHY_PASS.get(str(getattr(loop, "kind", "")), WHY_UNKNOWN)
    return f"{name} iterates {what}: {why}"


def _listed(frame: pd.DataFrame) -> str:
    said = [_said(loop) for loop in rows(frame.head(_SHOWN))]
    more = len(frame) - _SHOWN
    return "; ".join(said) + (f"; and {more} more" if more > 0 else "")


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with a loop: fail (low) when a loop calls out one item at a time
    over a whole collection."""
    flows = evidence.flows
    actions = evidence.actions
    looping = actions[_foreach(actions)].loc[:, ["environment_id", "flow_id"]].drop_duplicates()
    chosen = flows[flows["enabled"]].merge(looping, on=["environment_id", "flow_id"])
    judged = judged_loops(actions[actions["flow_id"].isin(chosen["flow_id"])], evidence.definitions)
    of_flow = per_flow(judged)
    out = []
    for row in rows(chosen):
        mine = of_flow(row.environment_id, row.flow_id)
        failing = mine[mine["fails"].astype(bool)]
        if not failing.empty:
            message = (
                f"{len(failing)} sequential loop(s) call out once per item over a whole "
                f"table, list or query result: {_listed(failing)}"
            )
        elif not mine.empty:
            message = (
                f"its sequential loops that call out iterate no whole collection: {_listed(mine)}"
            )
        else:
            message = "its loops run concurrently, set variables or make no external call per item"
        operations = sorted({str(op) for op in failing["source_operation"].dropna()})
        out.append(
            make(
                META,
                "fail" if not failing.empty else "pass",
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={
                    "sequential_loops": len(failing),
                    "sequential_calling_loops": len(mine),
                    "source_operations": ",".join(operations),
                },
                evidence=evidence_rows(mine, EVIDENCE),
            )
        )
    return out
