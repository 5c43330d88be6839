"""The runs of an environment's flows, as the flow API lists them.

A run's status comes from playing its definition for the run's intended outcome
(`flow_runs.execute`), and `actions.render_actions` plays the same definition to build the
action results, so a Failed run always has a Failed action and an unnecessary run has its
effect actions Skipped. Some Dataverse-triggered runs join a plug-in chain's correlation id.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from auditor.sim.flow_runs import (
    CANCEL,
    FAIL,
    NO_RETRY,
    NOOP,
    OK,
    RETRY_EXHAUSTED,
    RETRY_RECOVERED,
    ActionResult,
    RunResult,
    execute,
    run_span,
)
from auditor.sim.names import guids, run_names
from auditor.sim.scenario.columns import END_NS, I64, NOW_NS, NS, OBJ, START_NS, frame_of, objs, ts
from auditor.sim.scenario.state import EnvBuild, Flow


def build_runs(b: EnvBuild) -> None:
    """Every flow's runs, then the child flows' runs their parents' executed calls started."""
    rng = b.r_runs
    parts: list[dict[str, Any]] = []
    calls: dict[str, list[tuple[str, str, int]]] = {}  # child wid -> (parent run, ctid, t)
    by_wid = {f.workflowid: f for f in b.flows if f.workflowid}
    span = END_NS - START_NS
    for fi, flow in enumerate(b.flows):
        if not flow.runs:
            continue
        n = flow.runs
        # Offsets in 100 ns ticks (float64 cannot hold epoch nanoseconds exactly).
        if flow.spec.trigger == "recurrence":
            ticks = (np.arange(n) + 0.5 + rng.uniform(-0.02, 0.02, n)) * (span / 100 / n)
        else:
            ticks = rng.uniform(0, span / 100, n)
        t = START_NS + np.sort(np.round(ticks).astype(np.int64)) * 100
        ctid = np.full(n, None, dtype=object)
        if flow.chain and len(b.chain_ns):
            extra = b.chain_ns + rng.integers(20, 120, size=len(b.chain_ns)) * NS
            t = np.concatenate([t, extra + rng.integers(0, NS // 100, len(extra)) * 100])
            ctid = np.concatenate([ctid, b.chain_corr])
            order = np.argsort(t, kind="stable")
            t, ctid = t[order], ctid[order]
            n = len(t)
        outcome, retry, variant = _outcomes(b, flow, t)
        parts.append(_run_part(b, fi, flow, t, outcome, retry, variant, ctid, None))
        _collect_calls(flow, parts[-1], calls)
    for fi, flow in enumerate(b.flows):
        if flow.spec.role != "child-flow" or flow.workflowid not in calls:
            continue
        got = sorted(calls[flow.workflowid], key=lambda c: (c[2], c[0]))
        t = np.array([c[2] for c in got], dtype=np.int64)
        t = t + rng.integers(10, 30, size=len(t)) * (NS // 10)
        n = len(t)
        ctid = np.array([c[1] for c in got], dtype=object)
        parents = np.array([c[0] for c in got], dtype=object)
        zeros = np.zeros(n, dtype=np.int64)
        flow.runs = n
        parts.append(_run_part(b, fi, flow, t, zeros, zeros, zeros, ctid, parents))
    del by_wid
    _assemble_runs(b, parts)


def _outcomes(b: EnvBuild, flow: Flow, t: I64) -> tuple[I64, I64, I64]:
    rng = b.r_runs
    n = len(t)
    outcome = np.zeros(n, dtype=np.int64)
    perm = rng.permutation(n)
    k_fail = round(flow.fail * n)
    k_noop = round(flow.noop * n)
    k_cancel = round(flow.cancel * n)
    outcome[perm[:k_fail]] = FAIL
    outcome[perm[k_fail : k_fail + k_noop]] = NOOP
    outcome[perm[k_fail + k_noop : k_fail + k_noop + k_cancel]] = CANCEL
    visible = int(np.sum(t < NOW_NS - 3600 * NS))
    if flow.streak and visible > flow.streak * 2:
        s = int(rng.integers(0, max(1, int(visible * 0.8) - flow.streak)))
        outcome[s : s + flow.streak] = FAIL
    retry = np.zeros(n, dtype=np.int64)
    plan = flow.built.plan if flow.built else {}
    if plan.get("throttle"):
        ok = np.flatnonzero(outcome == OK)
        k = round(flow.recovered * n)
        retry[rng.permutation(ok)[:k]] = RETRY_RECOVERED
        if flow.exhausted:
            early = np.flatnonzero((t < NOW_NS - 3600 * NS) & (retry == 0) & (outcome != CANCEL))
            pick = rng.permutation(early)[: flow.exhausted]
            outcome[pick] = FAIL
            retry[pick] = RETRY_EXHAUSTED
    variant = rng.integers(0, 6, size=n).astype(np.int64)
    # The variant only matters for failures, recovered retries and Switch cases; fold it
    # away elsewhere so a flow has few distinct (outcome, retry, variant) keys.
    if not plan.get("switch"):
        variant = np.where((outcome == FAIL) | (retry > 0), variant, 0)
    return outcome, retry, variant


def _lut(flow: Flow, keys: I64) -> dict[int, RunResult]:
    assert flow.built is not None
    out: dict[int, RunResult] = {}
    for key in np.unique(keys).tolist():
        o, r, v = key // 100, (key // 10) % 10, key % 10
        out[key] = execute(flow.built.definition, flow.built.plan, o, r, v)
    return out


def _run_part(
    b: EnvBuild,
    fi: int,
    flow: Flow,
    t: I64,
    outcome: I64,
    retry: I64,
    variant: I64,
    ctid: OBJ,
    parents: OBJ | None,
) -> dict[str, Any]:
    rng = b.r_runs
    n = len(t)
    keys = outcome * 100 + retry * 10 + variant
    lut = _lut(flow, keys)
    ukeys = np.array(sorted(lut), dtype=np.int64)
    pos = np.searchsorted(ukeys, keys)
    status = np.array([lut[k].status for k in ukeys.tolist()], dtype=object)[pos]
    code = np.array([lut[k].code for k in ukeys.tolist()], dtype=object)[pos]
    ecode = np.array([lut[k].error_code for k in ukeys.tolist()], dtype=object)[pos]
    emsg = np.array([lut[k].error_message for k in ukeys.tolist()], dtype=object)[pos]
    if b.messy:
        # 40 % of the failed runs in the messy environment carry no error detail.
        failed_rows = np.flatnonzero(status == "Failed")
        bare = rng.permutation(failed_rows)[: round(0.4 * len(failed_rows))]
        code[bare], ecode[bare], emsg[bare] = None, None, None
    # A run lasts as long as what it executed: a no-op run is short, retries add time.
    assert flow.built is not None
    ok_span = run_span(execute(flow.built.definition, flow.built.plan, OK, NO_RETRY, 0)) or 1.0
    factor = np.array([min(20.0, max(0.05, run_span(lut[k]) / ok_span)) for k in ukeys.tolist()])[
        pos
    ]
    dur_s = flow.seconds * factor * np.exp(rng.normal(0, 0.35, n))
    dur_s = np.where(outcome == CANCEL, rng.uniform(7200, 21600, n), dur_s)
    dur = np.round(dur_s * 1e7).astype(np.int64) * 100
    names = run_names(rng, t // 100)
    is_dv = flow.spec.trigger == "dataverse" and flow.workflowid is not None
    ctid = ctid.copy()
    missing = np.array([c is None for c in ctid.tolist()], dtype=bool)
    if is_dv:
        ctid[missing] = guids(rng, int(missing.sum()))
    else:
        ctid[missing] = np.array(names, dtype=object)[missing]
    return {
        "flow": fi,
        "t": t,
        "dur": dur,
        "status": status,
        "code": code,
        "ecode": ecode,
        "emsg": emsg,
        "names": np.array(names, dtype=object),
        "ctid": ctid,
        "outcome": outcome,
        "retry": retry,
        "variant": variant,
        "seed": rng.integers(0, 2**62, size=n, dtype=np.int64),
        "parent": parents if parents is not None else np.full(n, None, dtype=object),
        "lut": lut,
        "keys": keys,
    }


def _collect_calls(
    flow: Flow, part: dict[str, Any], calls: dict[str, list[tuple[str, str, int]]]
) -> None:
    if not flow.child_calls:
        return
    lut: dict[int, RunResult] = part["lut"]
    for key, res in lut.items():
        executed = _executed_names(res.actions)
        wids = [w for a, w in flow.child_calls.items() if a in executed]
        if not wids:
            continue
        rows = np.flatnonzero(part["keys"] == key)
        for i in rows.tolist():
            for w in wids:
                calls.setdefault(w, []).append(
                    (str(part["names"][i]), str(part["ctid"][i]), int(part["t"][i]))
                )


def _assemble_runs(b: EnvBuild, parts: list[dict[str, Any]]) -> None:
    flows = b.flows
    fl_names = np.array([f.name for f in flows], dtype=object)
    triggers = np.array([f.built.trigger_name if f.built else "" for f in flows], dtype=object)

    def cat(key: str) -> Any:
        if not parts:
            return np.zeros(0, dtype=np.int64 if key in ("t", "dur") else object)
        return np.concatenate([p[key] for p in parts])

    fidx = (
        np.concatenate([np.full(len(p["t"]), p["flow"]) for p in parts])
        if parts
        else (np.zeros(0, dtype=np.int64))
    )
    t, dur = cat("t").astype(np.int64), cat("dur").astype(np.int64)
    order = np.lexsort((cat("names").astype(str), t)) if len(t) else np.zeros(0, np.int64)
    fidx, t, dur = fidx[order], t[order], dur[order]

    def pick(key: str) -> Any:
        return cat(key)[order]

    b.runs = frame_of(
        {
            "flow_name": objs(fl_names[fidx]),
            "name": objs(pick("names")),
            "start_time": ts(t),
            "end_time": ts(t + dur),
            "status": objs(pick("status")),
            "code": objs(pick("code")),
            "error_code": objs(pick("ecode")),
            "error_message": objs(pick("emsg")),
            "trigger_name": objs(triggers[fidx]),
            "client_tracking_id": objs(pick("ctid")),
            "_sim_outcome": pd.Series(pick("outcome").astype(np.int64)),
            "_sim_retry": pd.Series(pick("retry").astype(np.int64)),
            "_sim_variant": pd.Series(pick("variant").astype(np.int64)),
            "_sim_seed": pd.Series(pick("seed").astype(np.int64)),
            "_sim_parent_run": objs(pick("parent")),
        }
    )
    b.run_flow_idx = fidx


def _executed_names(results: list[ActionResult]) -> set[str]:
    out: set[str] = set()
    for r in results:
        if r.status != "Skipped":
            out.add(r.name)
        out |= _executed_names(r.children)
    return out
