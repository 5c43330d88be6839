"""Per-flow facts from the parsed definitions: size, responses and failure branches.

The definition checks (docs/adding-a-check.md) ask questions about a whole flow: is it enabled,
how big and deep is it, is it invoked by an app, an HTTP caller or a parent flow, does it
answer its caller, and what happens when an action fails. What happens on a failure is the
model of `failure_paths`: failure branches found from the `runAfter` statuses of each edge,
each a catch (reporting the failure or not), failure used as data, or an empty catch.
"""

from __future__ import annotations

import pandas as pd

from auditor.analysis.failure_paths import BRANCH_DTYPES, branches_frame
from auditor.analysis.flow_graph import FlowGraph, ancestors, flow_rows, reacted

_KEY = ["environment_id", "flow_id"]

FLOW_FACT_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "workflowid": "str",
    "display_name": "str",
    "state": "str",
    "enabled": "bool",  # state Started
    "parsed": "bool",  # the definition was read and parsed
    "trigger_type": "str",
    "trigger_kind": "str",
    "action_count": "int64",  # every action at any depth, the trigger excluded
    "max_depth": "int64",  # 1 = only top-level actions, 0 = no action
    "response_actions": "int64",
    "invoked_by_trigger": "bool",  # Request trigger of kind Http / PowerApp / PowerAppV2
    "called_by": "int64",  # flows of the environment calling this one as a child flow
    "invoked": "bool",
    "failure_branches": "int64",  # every failure branch, failures used as data included
    "catch_paths": "int64",  # catches and empty catches (failure_paths)
    "reporting_catch_paths": "int64",  # catches that report the failure, none as success
    "silent_catch_paths": "int64",  # the others: the run ends Succeeded, or answers success
    "retry_none_external": "int64",  # connector / HTTP / child-flow calls with retry none
    "retry_none_unreacted": "int64",  # ... whose failure nothing reacts to
    "external_calls": "int64",
}

CATCH_PATH_DTYPES = BRANCH_DTYPES


def catch_paths(actions: pd.DataFrame) -> pd.DataFrame:
    """One row per failure branch of every flow (`failure_paths.branches_frame`)."""
    return branches_frame(actions)


def retry_none_unreacted(actions: pd.DataFrame) -> pd.DataFrame:
    """External calls with retry policy none whose failure nothing reacts to: no failure
    branch or tolerating edge on the call or on a container holding it."""
    policy = actions["retry_policy_type"].astype("str").str.lower().eq("none").fillna(False)
    none = actions[actions["is_external_call"].astype(bool) & policy]
    columns = ["environment_id", "flow_id", "action_name", "display_name", "type", "operation"]
    if none.empty:
        return pd.DataFrame(columns=columns)
    keys = none.loc[:, _KEY].drop_duplicates()
    rows_of = flow_rows(actions.merge(keys, on=_KEY, how="inner"))
    found = []
    for rows in rows_of.values():
        graph = FlowGraph(rows)
        handled = reacted(graph)
        for row in rows:
            name = str(row["action_name"])
            if not (bool(row["is_external_call"]) and str(row["retry_policy_type"]) == "none"):
                continue
            chain = [name, *(n.name for n in ancestors(graph, graph.nodes[name]))]
            if not handled & set(chain):
                found.append({c: row[c] for c in columns})
    return pd.DataFrame(found, columns=columns)


def flow_facts(
    definitions: pd.DataFrame,
    triggers: pd.DataFrame,
    actions: pd.DataFrame,
    errors: pd.DataFrame,
    paths: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """One row per flow of `frames.flow_definitions`, with the facts the checks read.

    `triggers`, `actions` and `errors` are `definitions.definition_frames` of the same flows;
    `paths` is `catch_paths(actions)` (computed when not given).
    """
    paths = catch_paths(actions) if paths is None else paths
    out = definitions.loc[:, [*_KEY, "workflowid", "display_name", "state"]].copy()
    out["enabled"] = out["state"].astype("str").str.lower().eq("started").fillna(False)
    has_text = definitions["definition_text"].notna()
    failed = pd.MultiIndex.from_frame(out[_KEY]).isin(pd.MultiIndex.from_frame(errors[_KEY]))
    out["parsed"] = has_text.to_numpy() & ~failed
    trig = triggers.drop_duplicates(_KEY).set_index(_KEY)
    acts = actions.assign(
        is_response=actions["type"].astype("str").str.lower().eq("response").fillna(False),
        retry_none=(
            actions["is_external_call"].astype(bool)
            & actions["retry_policy_type"].astype("str").str.lower().eq("none").fillna(False)
        ),
    )
    per_flow = acts.groupby(_KEY).agg(
        action_count=("action_name", "size"),
        max_depth=("depth", "max"),
        response_actions=("is_response", "sum"),
        retry_none_external=("retry_none", "sum"),
        external_calls=("is_external_call", "sum"),
    )
    judged = paths["kind"].isin(["catch", "empty"])
    good = judged & paths["reports_failure"].astype(bool) & ~paths["success_on_failure"]
    # A silent inner catch whose container's failure an outer catch reports is not silent.
    judged = judged & ~(~good & paths["reported_above"].astype(bool))
    path_counts = (
        paths.assign(judged=judged, good=good, silent=judged & ~good)
        .groupby(_KEY)
        .agg(
            failure_branches=("catch_action", "size"),
            catch_paths=("judged", "sum"),
            reporting_catch_paths=("good", "sum"),
            silent_catch_paths=("silent", "sum"),
        )
    )
    unreacted = retry_none_unreacted(actions).groupby(_KEY).size().rename("retry_none_unreacted")
    # A Workflow action names its child by workflowid; count distinct calling flows.
    calls = actions.loc[
        actions["child_flow_id"].notna(), ["environment_id", "flow_id", "child_flow_id"]
    ]
    called = (
        calls.drop_duplicates()
        .groupby(["environment_id", "child_flow_id"])
        .size()
        .rename("called_by")
        .reset_index()
        .rename(columns={"child_flow_id": "workflow_key"})
    )
    out = out.join(trig[["type", "kind", "is_invoked"]], on=_KEY).rename(
        columns={"type": "trigger_type", "kind": "trigger_kind", "is_invoked": "invoked_by_trigger"}
    )
    out = out.join(per_flow, on=_KEY).join(path_counts, on=_KEY).join(unreacted, on=_KEY)
    out["workflow_key"] = out["workflowid"].astype("str").str.lower()
    out = out.merge(called, on=["environment_id", "workflow_key"], how="left").drop(
        columns="workflow_key"
    )
    counts = [
        "action_count",
        "max_depth",
        "response_actions",
        "called_by",
        "failure_branches",
        "catch_paths",
        "reporting_catch_paths",
        "silent_catch_paths",
        "retry_none_external",
        "retry_none_unreacted",
        "external_calls",
    ]
    out[counts] = out[counts].fillna(0)
    out["invoked_by_trigger"] = out["invoked_by_trigger"].astype("boolean").fillna(False)
    out["invoked"] = out["invoked_by_trigger"].astype(bool) | (out["called_by"] > 0)
    out = out.loc[:, list(FLOW_FACT_DTYPES)].astype(FLOW_FACT_DTYPES)
    return out.sort_values(_KEY, kind="stable").reset_index(drop=True)


__all__ = [
    "CATCH_PATH_DTYPES",
    "FLOW_FACT_DTYPES",
    "catch_paths",
    "flow_facts",
    "retry_none_unreacted",
]
