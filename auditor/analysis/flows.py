"""Per-flow facts from the parsed definitions: size, response and error-handling paths.

The definition checks (design.md section 7) ask questions about a whole flow: is it enabled,
how big and deep is it, is it invoked by an app, an HTTP caller or a parent flow, does it
answer its caller, and what happens when an action fails. A *catch path* is the platform's
way to handle a failure: an action whose `runAfter` lists Failed or TimedOut, everything
nested in it, and every action of the same container that runs after it
(https://learn.microsoft.com/azure/logic-apps/error-exception-handling). A catch path that
neither ends the run with Terminate Failed nor sends a Response hides the failure: the run
ends Succeeded and nobody learns that the work was not done
(https://learn.microsoft.com/power-automate/guidance/coding-guidelines/error-handling).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

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
    "catch_paths": "int64",
    "reporting_catch_paths": "int64",  # holding a Response or a Terminate Failed
    "silent_catch_paths": "int64",  # holding neither: a handled failure ends Succeeded
    "retry_none_external": "int64",  # connector / HTTP actions with retryPolicy none
}

CATCH_PATH_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "catch_action": "str",
    "scope_path": "str",
    "members": "int64",
    "reports_failure": "bool",
    "member_names": "str",  # comma-separated, shortened
}

_MEMBER_LIST_CHARS = 300


def _reports_failure(row: Mapping[str, object]) -> bool:
    kind = str(row.get("type") or "").lower()
    if kind == "response":
        return True
    return kind == "terminate" and str(row.get("terminate_status") or "").lower() == "failed"


def _flow_catch_paths(rows: list[dict[str, Any]]) -> list[dict[str, object]]:
    """Catch paths of one flow's action rows (action names are unique in a definition)."""
    by_name = {str(r["action_name"]): r for r in rows}
    containers: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        containers.setdefault(str(r["scope_path"] if pd.notna(r["scope_path"]) else ""), []).append(
            r
        )
    paths: list[dict[str, object]] = []
    for scope, members in containers.items():
        names = {str(r["action_name"]) for r in members}
        successors: dict[str, list[str]] = {n: [] for n in names}
        for r in members:
            for pred in json.loads(str(r["run_after"]) or "{}"):
                if pred in successors:
                    successors[pred].append(str(r["action_name"]))
        for r in members:
            if not bool(r["runs_after_failure"]):
                continue
            start = str(r["action_name"])
            seen, todo = {start}, [start]
            while todo:
                for nxt in successors[todo.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            prefixes = tuple(f"{scope}/{n}" if scope else n for n in seen)
            nested = [
                a
                for a in rows
                if isinstance(a["scope_path"], str)
                and any(
                    a["scope_path"] == p or a["scope_path"].startswith(p + "/") for p in prefixes
                )
            ]
            path = [by_name[n] for n in sorted(seen)] + nested
            listed = ", ".join(str(a["action_name"]) for a in path)
            paths.append(
                {
                    "environment_id": r["environment_id"],
                    "flow_id": r["flow_id"],
                    "catch_action": start,
                    "scope_path": scope,
                    "members": len(path),
                    "reports_failure": any(_reports_failure(a) for a in path),
                    "member_names": listed[:_MEMBER_LIST_CHARS],
                }
            )
    return paths


def catch_paths(actions: pd.DataFrame) -> pd.DataFrame:
    """One row per catch action of every flow, with whether its path reports the failure."""
    catching = actions.loc[actions["runs_after_failure"].astype(bool), _KEY].drop_duplicates()
    rows: list[dict[str, object]] = []
    if not catching.empty:
        flows = actions.merge(catching, on=_KEY, how="inner")
        # One to_dict for every flow, split by flow in Python: a to_dict per flow costs about
        # a millisecond each, most of this function's time with a thousand flows.
        by_flow: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in flows.to_dict("records"):
            r = {str(k): v for k, v in record.items()}
            key = (r["environment_id"], r["flow_id"])
            if pd.notna(key[0]) and pd.notna(key[1]):  # as groupby: null keys form no group
                by_flow.setdefault(key, []).append(r)
        for key in sorted(by_flow):  # groupby(sort=True)'s order
            rows.extend(_flow_catch_paths(by_flow[key]))
    frame = pd.DataFrame(rows, columns=list(CATCH_PATH_DTYPES))
    return frame.astype(CATCH_PATH_DTYPES)


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
    )
    path_counts = (
        paths.assign(silent=~paths["reports_failure"].astype(bool))
        .groupby(_KEY)
        .agg(
            catch_paths=("catch_action", "size"),
            reporting_catch_paths=("reports_failure", "sum"),
            silent_catch_paths=("silent", "sum"),
        )
    )
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
    out = out.join(per_flow, on=_KEY).join(path_counts, on=_KEY)
    out["workflow_key"] = out["workflowid"].astype("str").str.lower()
    out = out.merge(called, on=["environment_id", "workflow_key"], how="left").drop(
        columns="workflow_key"
    )
    counts = [
        "action_count",
        "max_depth",
        "response_actions",
        "called_by",
        "catch_paths",
        "reporting_catch_paths",
        "silent_catch_paths",
        "retry_none_external",
    ]
    out[counts] = out[counts].fillna(0)
    out["invoked_by_trigger"] = out["invoked_by_trigger"].astype("boolean").fillna(False)
    out["invoked"] = out["invoked_by_trigger"].astype(bool) | (out["called_by"] > 0)
    out = out.loc[:, list(FLOW_FACT_DTYPES)].astype(FLOW_FACT_DTYPES)
    return out.sort_values(_KEY, kind="stable").reset_index(drop=True)


__all__ = ["CATCH_PATH_DTYPES", "FLOW_FACT_DTYPES", "catch_paths", "flow_facts"]
