"""Plug-in steps, async jobs and classic background workflows at `now`: failing async steps
and workflows and their streaks of failed jobs, slow synchronous steps, executions near the
timeout and the async queue latency (reliable-service and sufficient-performance).

Apart because it reads only Dataverse tables, never a flow.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditor.sim.model import SimEnvironment
from auditor.sim.truth.frames import max_streak, ns, p95, query_rows
from auditor.sim.truth.thresholds import THRESHOLDS


def step_and_job_facts(
    env: SimEnvironment, tables: dict[str, pd.DataFrame], trace_setting: int | None
) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The facts, in the truth's key order, and the metrics per custom step (name,
    executions, p95 of performanceexecutionduration)."""
    t = THRESHOLDS
    f: dict[str, Any] = {}
    steps = tables.get("sdkmessageprocessingsteps", pd.DataFrame())
    step_metrics: dict[str, dict[str, Any]] = {}
    f["failing_async_steps"] = []
    f["failure_streak_steps"] = []
    f["slow_sync_steps"] = []
    f["near_timeout_executions"] = 0
    queue_p95: float | None = None
    f["unmeasured_autodelete_steps"] = []
    f["failing_workflows"] = []
    f["failure_streak_workflows"] = []
    if env.has_dataverse:
        jobs = query_rows("asyncoperations", tables.get("asyncoperations", pd.DataFrame()))
        # Outcomes per completed job (statecode 3), in creation order. A step that deletes its
        # successful jobs (asyncautodelete) is judged by its asynchronous trace rows when
        # trace logging is All, and cannot be judged otherwise (its jobs are its failures).
        autodelete = set(
            steps.loc[
                steps["asyncautodelete"].fillna(False).astype(bool) & (steps["mode"] == 1),
                "sdkmessageprocessingstepid",
            ].astype(str)
        )
        op1 = jobs[(jobs["operationtype"] == 1) & (jobs["statecode"] == 3)]
        outcomes: dict[str, npt.NDArray[np.bool_]] = {}
        owner = op1["_owningextensionid_value"].to_numpy().astype(str)
        status = op1["statuscode"].to_numpy(dtype=np.int64, na_value=0)
        o = np.lexsort(
            (op1["asyncoperationid"].to_numpy().astype(str), ns(op1["createdon"]), owner)
        )
        for sid in dict.fromkeys(owner[o].tolist()):
            if sid not in autodelete:
                outcomes[sid] = status[o][owner[o] == sid] == 31
        traced = tables["plugintracelogs"]
        traced = traced[traced["mode"] == 1]
        t_owner = traced["pluginstepid"].to_numpy().astype(str)
        t_fail = traced["exceptiondetails"].notna().to_numpy()
        t_order = np.lexsort(
            (
                traced["plugintracelogid"].to_numpy().astype(str),
                ns(traced["performanceexecutionstarttime"]),
                t_owner,
            )
        )
        for sid in sorted(autodelete):
            if trace_setting == 2:
                outcomes[sid] = t_fail[t_order][t_owner[t_order] == sid]
            else:
                f["unmeasured_autodelete_steps"].append(sid)
        for sid, fails in outcomes.items():
            if len(fails) >= t["min_jobs"] and fails.mean() > t["async_failure_rate"]:
                f["failing_async_steps"].append(sid)
            if max_streak(fails) >= t["failure_streak"]:
                f["failure_streak_steps"].append(sid)
        # Classic background workflows (operationtype 10): completed jobs per workflow.
        op10 = jobs[(jobs["operationtype"] == 10) & (jobs["statecode"] == 3)]
        wf = op10["_workflowactivationid_value"].to_numpy().astype(str)
        wf_status = op10["statuscode"].to_numpy(dtype=np.int64, na_value=0)
        w_order = np.lexsort(
            (op10["asyncoperationid"].to_numpy().astype(str), ns(op10["createdon"]), wf)
        )
        for wid in dict.fromkeys(wf[w_order].tolist()):
            fails = wf_status[w_order][wf[w_order] == wid] == 31
            if len(fails) >= t["min_jobs"] and fails.mean() > t["async_failure_rate"]:
                f["failing_workflows"].append(wid)
            if max_streak(fails) >= t["failure_streak"]:
                f["failure_streak_workflows"].append(wid)
        done = op1[(op1["statecode"] == 3) & op1["startedon"].notna() & op1["createdon"].notna()]
        latency = (ns(done["startedon"]) - ns(done["createdon"])) / 1e6
        queue_p95 = p95(latency.astype(np.float64))
        traces = tables["plugintracelogs"]
        dur = traces["performanceexecutionduration"].to_numpy(dtype=np.float64, na_value=np.nan)
        f["near_timeout_executions"] = int((dur > t["near_timeout_ms"]).sum())
        by_step = traces["pluginstepid"].to_numpy().astype(str)
        custom = steps[steps["customizationlevel"] == 1]
        for sid, name, mode in zip(
            custom["sdkmessageprocessingstepid"], custom["name"], custom["mode"], strict=True
        ):
            values = dur[by_step == sid]
            p = p95(values)
            step_metrics[str(sid)] = {"name": str(name), "executions": len(values), "p95_ms": p}
            if (
                mode == 0
                and len(values) >= t["min_executions"]
                and p is not None
                and p > t["sync_p95_ms"]
            ):
                f["slow_sync_steps"].append(str(sid))
    f["failing_async_steps"].sort()
    f["failure_streak_steps"].sort()
    f["slow_sync_steps"].sort()
    f["queue_latency_p95_ms"] = queue_p95
    return f, step_metrics
