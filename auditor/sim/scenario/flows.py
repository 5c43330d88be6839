"""The flows of an environment: their names, rates, definitions and the flow API's frame."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from auditor.sim.flow_builder import build_flow
from auditor.sim.flow_runs import children_of
from auditor.sim.flow_spec import FlowSpec
from auditor.sim.names import FLOW_NAMES, HOSTILE, guid
from auditor.sim.scenario.columns import END_NS, NS, START_NS, frame_of, objs, ts
from auditor.sim.scenario.flow_cast import COND_MAIL, COND_SP, Plan, cast, filler_spec
from auditor.sim.scenario.state import EnvBuild, Flow


def _display(b: EnvBuild, used: set[str], hostile_share: float) -> str:
    """A name not used yet in the environment, some with hostile text for the renderers."""
    rng = b.r_flows
    base = FLOW_NAMES[int(rng.integers(0, len(FLOW_NAMES)))]
    if rng.random() < hostile_share:
        base = f"{base} {HOSTILE[int(rng.integers(0, len(HOSTILE)))]}"
    name, i = base, 1
    while name in used:
        i += 1
        name = f"{base} ({i})"
    used.add(name)
    return name


def build_flows(b: EnvBuild) -> None:
    """The cast and the fillers, their run counts and rates, then their definitions."""
    rng = b.r_flows
    used: set[str] = set()
    hostile_share = 0.15 if b.messy else 0.05
    plans: list[Plan] = []
    child_ids: list[str] = []
    if not b.profile.has_dataverse:
        for i in range(b.sc.nodv_flows):
            trig = ("sharepoint", "recurrence", "button", "outlook")[i % 4]
            conds = {"sharepoint": (COND_SP,), "outlook": (COND_MAIL,)}.get(trig, ())
            spec = FlowSpec(role="teams-flow", trigger=trig, conditions=conds, max_container=4)
            plans.append((spec, {"fail": 0.03, "solution": 0.0}, None))
        pre_ids = [guid(rng) for _ in plans]
    else:
        plans = cast(b)
        # Workflow ids of child flows are needed before their parents are built.
        pre_ids = [guid(rng) for _ in plans]
        child_ids = [
            wid
            for (spec, _, _), wid in zip(plans, pre_ids, strict=True)
            if spec.role == "child-flow"
        ]
        for _ in range(max(0, b.sc.flows - len(plans))):
            spec, rates = filler_spec(b, child_ids)
            if rng.random() < 0.2:
                rates["solution"] = 0.0
            if rng.random() < (0.05 if b.messy else 0.03):
                rates["stopped"] = 1.0
            plans.append((spec, rates, None))
            pre_ids.append(guid(rng))
    mean = b.sc.runs
    weights = rng.lognormal(0.0, 1.0, size=len(plans))
    weights = weights / weights.mean()
    for (spec, rates, display), wid in zip(plans, pre_ids, strict=True):
        solution = b.profile.has_dataverse and rates.get("solution", 1.0) > 0.5
        if spec.role != "child-flow" and child_ids and rates.get("child"):
            spec = replace(spec, children=(child_ids[0],))
        flow = Flow(
            name=guid(rng),
            display=display or _display(b, used, hostile_share),
            workflowid=wid if solution else None,
            spec=spec,
        )
        used.add(flow.display)
        flow.state = "Stopped" if rates.get("stopped") else "Started"
        w = float(weights[len(b.flows)])
        n = round(mean * w * rates.get("runs_factor", 1.0))
        n = max(n, int(rates.get("runs_min", 3)), 3)
        flow.runs = 0 if flow.state != "Started" or spec.role == "child-flow" else n
        flow.noop = rates.get("noop", 0.0)
        flow.fail = rates.get("fail", 0.0)
        flow.streak = int(rates.get("streak", 0))
        flow.exhausted = int(rates.get("exhausted", 0))
        flow.recovered = rates.get("recovered", 0.0)
        flow.cancel = rates.get("cancel", 0.0)
        flow.false_trigger_ratio = rates.get("false_trigger", 0.0)
        flow.chain = bool(rates.get("chain"))
        flow.seconds = rates.get("seconds", float(rng.uniform(2.0, 20.0)))
        if spec.trigger == "recurrence" and flow.runs:
            minutes = max(5, int((END_NS - START_NS) / NS / 60 / flow.runs))
            flow.spec = replace(spec, recurrence_minutes=minutes)
        flow.created_ns = START_NS - int(rng.integers(10, 400)) * 86_400 * NS
        flow.modified_ns = flow.created_ns + int(rng.integers(0, 9)) * 86_400 * NS
        b.flows.append(flow)
    for flow in b.flows:
        flow.built = build_flow(b.r_defs, flow.spec, flow.workflowid is not None)
        for name, action in walk(flow.built.definition.get("actions") or {}):
            if action.get("type") == "Workflow":
                flow.child_calls[name] = str(action["inputs"]["host"]["workflowReferenceName"])


def flows_frame(b: EnvBuild) -> pd.DataFrame:
    """The flow API's view of the flows (`SimEnvironment.flows`)."""
    fl = b.flows
    return frame_of(
        {
            "name": objs([f.name for f in fl]),
            "display_name": objs([f.display for f in fl]),
            "state": objs([f.state for f in fl]),
            "created_time": ts(np.array([f.created_ns for f in fl], dtype=np.int64)),
            "last_modified_time": ts(np.array([f.modified_ns for f in fl], dtype=np.int64)),
            "workflowid": objs([f.workflowid for f in fl]),
            "definition": objs(
                [json.dumps(f.built.definition if f.built else {}, ensure_ascii=False) for f in fl]
            ),
            "connection_references": objs(
                [
                    json.dumps(f.built.connection_references if f.built else {}, ensure_ascii=False)
                    for f in fl
                ]
            ),
            "_sim_role": objs([f.spec.role for f in fl]),
            "_sim_plan": objs(
                [json.dumps(f.built.plan if f.built else {}, sort_keys=True) for f in fl]
            ),
        }
    )


def walk(actions: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every action with its name, parents before their children."""
    out: list[tuple[str, Mapping[str, Any]]] = []
    for name, action in actions.items():
        out.append((name, action))
        for kids in children_of(action):
            out.extend(walk(kids))
    return out
