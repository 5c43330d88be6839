"""The system jobs that are not plug-in executions, and the asyncoperations table of them all.

Classic background workflows (operationtype 10) and one CallbackRegistration Expander job
(operationtype 79) per Dataverse trigger execution, whose `correlationid` equals the run's
`client_tracking_id` and whose `_workflowactivationid_value` is the flow's workflowid (both
our documented inference for linking); flows with trigger conditions also have jobs that
started no run.
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auditor.sim.jobs import jobs_at
from auditor.sim.names import guid, guids
from auditor.sim.scenario.columns import (
    END_NS,
    NAT,
    NOW,
    NS,
    START_NS,
    bools,
    const,
    frame_of,
    ints,
    masked,
    objs,
    secs,
    ts,
)
from auditor.sim.scenario.executions import error_texts, exception_details
from auditor.sim.scenario.plugins import assembly
from auditor.sim.scenario.state import EnvBuild


def build_classic_jobs(b: EnvBuild) -> None:
    """A few classic background-workflow jobs (operationtype 10) with their activity traces."""
    rng = b.r_jobs
    m = max(3, b.sc.executions // 400)
    created = secs(rng.integers(START_NS, END_NS, size=m).astype(np.int64))
    started = created + rng.integers(1, 30, size=m) * NS
    completed = started + rng.integers(1, 20, size=m) * NS
    u = rng.random(m)
    failed = u < 0.1
    # A background workflow waiting on a timeout (a "Wait" step): 1 Suspended / 10
    # Waiting until `postponeuntil`, its normal state, not a stuck job.
    # https://learn.microsoft.com/power-apps/developer/data-platform/asynchronous-service
    waits = ~failed & (u > 0.9)
    wf = guid(rng)
    corr = guids(rng, m)
    msgs = error_texts(b, m, rng)
    b.job_parts.append(
        {
            "asyncoperationid": guids(rng, m),
            "name": np.full(m, "Send welcome e-mail (classic)", dtype=object),
            "operationtype": np.full(m, 10),
            "_sim_state": np.where(waits, 1, 3),
            "_sim_status": np.select([waits, failed], [10, 31], 30),
            "messagename": np.full(m, "Create", dtype=object),
            "primaryentitytype": np.full(m, "contact", dtype=object),
            "correlationid": corr,
            "requestid": guids(rng, m),
            "depth": np.ones(m, dtype=np.int64),
            "retrycount": np.zeros(m, dtype=np.int64),
            "errorcode": np.where(failed, -2147220970, 0),
            "errorcode_null": ~failed,
            "message": masked(failed, msgs),
            "friendlymessage": masked(failed, "The workflow failed."),
            "createdon": created,
            "_sim_started": started,
            "_sim_ended": completed,
            "postponeuntil": np.where(waits, completed + 3 * 86_400 * NS, NAT),
            "_sim_autodelete": np.zeros(m, dtype=bool),
            "owning": np.full(m, None, dtype=object),
            "activation": np.full(m, wf, dtype=object),
        }
    )
    setting = b.profile.trace_setting
    keep = (
        np.zeros(m, dtype=bool)
        if setting == 0
        else (failed if setting == 1 else np.ones(m, dtype=bool))
    )
    k = int(keep.sum())
    if k:
        dur = ((completed - started) // 1_000_000)[keep]
        exc = np.full(k, None, dtype=object)
        for j, i in enumerate(np.flatnonzero(failed[keep]).tolist()):
            exc[i] = exception_details(
                str(msgs[keep][i]), guid(rng), int(started[keep][i]), "SendWelcomeMail"
            )
            del j
        name = f"{assembly(b.profile)}.SendWelcomeMail"
        b.pending_traces.append(
            frame_of(
                {
                    "plugintracelogid": objs(guids(rng, k)),
                    "typename": const(name, k),
                    "messagename": const("Create", k),
                    "primaryentity": const("contact", k),
                    "mode": ints(np.ones(k, dtype=np.int64)),
                    "operationtype": ints(np.full(k, 2)),  # 2 Workflow Activity
                    "depth": ints(np.ones(k, dtype=np.int64)),
                    "correlationid": objs(corr[keep]),
                    "requestid": objs(guids(rng, k)),
                    "pluginstepid": const(None, k),
                    "performanceexecutionstarttime": ts(started[keep]),
                    "performanceexecutionduration": ints(dur),
                    "performanceconstructorduration": ints(np.zeros(k, dtype=np.int64)),
                    "exceptiondetails": objs(exc),
                    "messageblock": const(f"Entered {name}.Execute()\r\nSending mail", k),
                    "issystemcreated": bools(np.zeros(k, dtype=bool)),
                    "createdon": ts(completed[keep]),
                }
            )
        )


def build_trigger_jobs(b: EnvBuild) -> None:
    """One CallbackRegistration Expander job per Dataverse trigger execution."""
    rng = b.r_jobs
    runs = b.runs
    flows = b.flows
    fidx = b.run_flow_idx
    dv = np.array(
        [f.spec.trigger == "dataverse" and f.workflowid is not None for f in flows], dtype=bool
    )
    sel = np.flatnonzero(dv[fidx]) if len(fidx) else np.zeros(0, dtype=np.int64)
    start = (
        runs["start_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[sel]
        if len(sel)
        else (np.zeros(0, dtype=np.int64))
    )
    gap = rng.integers(2, 40, size=len(sel)) * NS
    completed = secs(start)
    started = completed - (gap // NS // 2) * NS
    created = completed - gap
    corr = runs["client_tracking_id"].to_numpy()[sel]
    f_sel = fidx[sel]
    # Trigger executions that found the trigger condition false: a job, no run.
    extra_f: list[int] = []
    for i, f in enumerate(flows):
        if dv[i] and f.false_trigger_ratio and f.runs:
            extra_f.extend([i] * round(f.runs * f.false_trigger_ratio))
    ef = np.array(extra_f, dtype=np.int64)
    ecreated = secs(rng.integers(START_NS, END_NS, size=len(ef)).astype(np.int64))
    estarted = ecreated + rng.integers(1, 20, size=len(ef)) * NS
    ecompleted = estarted + NS
    allf = np.concatenate([f_sel, ef])
    m = len(allf)
    names = np.array([f.display for f in flows], dtype=object)
    wids = np.array([f.workflowid for f in flows], dtype=object)
    msgs = np.array(
        [{1: "Create", 2: "Delete", 3: "Update"}.get(f.spec.dv_message, "Update") for f in flows],
        dtype=object,
    )
    ents = np.array([f.spec.dv_entity for f in flows], dtype=object)
    b.job_parts.append(
        {
            "asyncoperationid": guids(rng, m),
            "name": names[allf],
            "operationtype": np.full(m, 79),  # CallbackRegistration Expander Operation
            "_sim_state": np.full(m, 3),
            "_sim_status": np.full(m, 30),
            "messagename": msgs[allf],
            "primaryentitytype": ents[allf],
            "correlationid": np.concatenate([corr, guids(rng, len(ef))]),
            "requestid": guids(rng, m),
            "depth": np.ones(m, dtype=np.int64),
            "retrycount": np.zeros(m, dtype=np.int64),
            "errorcode": np.zeros(m, dtype=np.int64),
            "errorcode_null": np.ones(m, dtype=bool),
            "message": np.full(m, None, dtype=object),
            "friendlymessage": np.full(m, None, dtype=object),
            "createdon": np.concatenate([created, ecreated]),
            "_sim_started": np.concatenate([started, estarted]),
            "_sim_ended": np.concatenate([completed, ecompleted]),
            "postponeuntil": np.full(m, NAT, dtype=np.int64),
            "_sim_autodelete": np.zeros(m, dtype=bool),
            "owning": np.full(m, None, dtype=object),
            "activation": wids[allf],
        }
    )


def build_job_table(b: EnvBuild) -> None:
    """Every system job's plan, the served table at `NOW` and the sorted trace logs."""
    parts = b.job_parts
    cols = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
    order = np.lexsort((cols["asyncoperationid"].astype(str), cols["createdon"]))
    c = {k: v[order] for k, v in cols.items()}
    started, completed = c["_sim_started"].astype(np.int64), c["_sim_ended"].astype(np.int64)
    span = np.where(
        (started != NAT) & (completed != NAT), (completed - started) / NS / 60.0, np.nan
    )
    n = len(order)
    # Each job's whole life; the served table is it seen at the tenant's clock.
    b.job_plan = frame_of(
        {
            "asyncoperationid": objs(c["asyncoperationid"]),
            "name": objs(c["name"]),
            "operationtype": ints(c["operationtype"]),
            "statecode": ints(c["_sim_state"]),
            "statuscode": ints(c["_sim_status"]),
            "messagename": objs(c["messagename"]),
            "primaryentitytype": objs(c["primaryentitytype"]),
            "correlationid": objs(c["correlationid"]),
            "requestid": objs(c["requestid"]),
            "depth": ints(c["depth"]),
            "retrycount": ints(c["retrycount"]),
            "errorcode": ints(c["errorcode"], c["errorcode_null"]),
            "message": objs(c["message"]),
            "friendlymessage": objs(c["friendlymessage"]),
            "createdon": ts(c["createdon"]),
            "startedon": ts(started),
            "completedon": ts(completed),
            "modifiedon": ts(completed),
            "postponeuntil": ts(c["postponeuntil"]),
            # Unit undocumented; we store minutes (https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation).
            "executiontimespan": pd.Series(pd.array(np.round(span, 2), dtype="Float64")),
            "_owningextensionid_value": objs(c["owning"]),
            "_workflowactivationid_value": objs(c["activation"]),
            "_regardingobjectid_value": objs(guids(b.r_jobs, n)),
            "_sim_state": ints(c["_sim_state"]),
            "_sim_status": ints(c["_sim_status"]),
            "_sim_started": ts(started),
            "_sim_ended": ts(completed),
            "_sim_autodelete": bools(c["_sim_autodelete"].astype(bool)),
        }
    )
    b.tables["asyncoperations"] = jobs_at(b.job_plan, pd.Timestamp(NOW))
    traces = pd.concat(b.pending_traces, ignore_index=True)
    created = traces["createdon"].to_numpy(dtype="datetime64[ns]").view(np.int64)
    ids = traces["plugintracelogid"].to_numpy().astype(str)
    b.tables["plugintracelogs"] = traces.iloc[np.lexsort((ids, created))].reset_index(drop=True)
