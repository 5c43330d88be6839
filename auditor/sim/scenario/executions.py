"""Plug-in executions: their trace logs and the system jobs of the asynchronous ones.

Async plug-in executions are system jobs (operationtype 1, `_owningextensionid_value` = the
step) and, when the trace setting allows, trace logs with the same correlation id; some
transactions chain three synchronous steps at depth 1, 2, 3 and an async job.
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/plugintracelog
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditor.sim.names import ERROR_MESSAGES, HOSTILE, guid, guids
from auditor.sim.scenario.columns import (
    END_NS,
    NAT,
    NOW_NS,
    NS,
    OBJ,
    START_NS,
    bools,
    frame_of,
    ints,
    iso7,
    masked,
    objs,
    secs,
    ts,
)
from auditor.sim.scenario.plugins import typename
from auditor.sim.scenario.state import EnvBuild, Step


def build_executions(b: EnvBuild) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Plug-in executions: trace rows (before the trace setting) and async jobs."""
    rng = b.r_exec
    live = [s for s in b.steps if s.custom == 1 and s.state == 0]
    w = np.array([s.weight for s in live])
    counts = np.maximum(np.round(w / w.sum() * b.sc.executions), 1).astype(np.int64)
    counts = np.maximum(counts, np.array([s.min_exec for s in live]))
    idx = np.repeat(np.arange(len(live)), counts)
    t = rng.integers(START_NS, END_NS, size=len(idx)).astype(np.int64)
    depth = np.ones(len(idx), dtype=np.int64)
    corr = guids(rng, len(idx))
    # Chains: one correlation id across three synchronous steps at depth 1, 2, 3 and an
    # async job (and, later, a Dataverse-triggered flow run).
    roles = [s.role for s in live]
    if all(r in roles for r in ("unfiltered-update", "chain-2", "slow-sync", "chain-async")):
        k = max(5, int(counts[roles.index("unfiltered-update")] * 0.05))
        k = min(k, 400)
        base = secs(np.sort(rng.integers(START_NS, NOW_NS - 3600 * NS, size=k)))
        ccorr = guids(rng, k)
        parts = [
            ("unfiltered-update", 0, 1),
            ("chain-2", 1, 2),
            ("slow-sync", 2, 3),
            ("chain-async", 3, 2),
        ]
        for role, offset, dep in parts:
            idx = np.concatenate([idx, np.full(k, roles.index(role))])
            t = np.concatenate([t, base + offset * NS])
            depth = np.concatenate([depth, np.full(k, dep, dtype=np.int64)])
            corr = np.concatenate([corr, ccorr])
        b.chain_ns, b.chain_corr = base + 3 * NS, ccorr
    n = len(idx)
    med = np.array([s.median_ms for s in live])[idx]
    sig = np.array([s.sigma for s in live])[idx]
    dur = np.maximum(1, np.round(med * np.exp(rng.normal(0, 1, n) * sig))).astype(np.int64)
    # A sync step's whole operation has a 2-minute limit; keep ordinary executions well
    # below the 90 % mark and add a few near it where the profile asks for them.
    dur = np.minimum(dur, 60_000)
    failp = np.array([s.fail for s in live])[idx]
    failed = rng.random(n) < failp
    order = np.lexsort((t, idx))
    idx, t, depth, dur = idx[order], t[order], depth[order], dur[order]
    corr, failed = corr[order], failed[order]
    starts = np.searchsorted(idx, np.arange(len(live)))
    for j, s in enumerate(live):
        lo, hi = int(starts[j]), int(starts[j] + np.sum(idx == j))
        if s.near_timeout and hi - lo > s.near_timeout:
            pick = lo + rng.choice(hi - lo, size=s.near_timeout, replace=False)
            # Keep them in the visible history.
            t[pick] = np.minimum(t[pick], NOW_NS - 7200 * NS)
            dur[pick] = rng.integers(110_000, 118_500, size=s.near_timeout)
        if s.streak and hi - lo > 2 * s.streak:
            before_now = int(np.sum(t[lo:hi] < NOW_NS - 3600 * NS))
            first = lo + int(rng.integers(0, max(1, before_now - s.streak)))
            failed[first : first + s.streak] = True
    mode = np.array([s.mode for s in live])[idx]
    # Async executions are system jobs; the trace starts when the job starts.
    queue_med, queue_sig = {"messy": (240.0, 1.1), "clean": (2.0, 0.8)}.get(
        b.profile.key, (20.0, 1.0)
    )
    latency = np.round(queue_med * np.exp(rng.normal(0, queue_sig, n)) * NS).astype(np.int64)
    created = secs(t)
    started = np.where(mode == 1, secs(created + latency), created)
    end = started + dur * 1_000_000
    ex = pd.DataFrame(
        {
            "step": idx,
            "created": created,
            "started": started,
            "end": end,
            "dur": dur,
            "failed": failed,
            "depth": depth,
            "mode": mode,
        }
    )
    ex["corr"] = pd.Series(corr, dtype=object)
    return ex, {"live": live}


def build_trace_and_jobs(b: EnvBuild) -> None:
    """Trace logs of the executions that ran and a system job per async one."""
    ex, info = build_executions(b)
    live: list[Step] = info["live"]
    rng = b.r_jobs
    n = len(ex)
    step_arr = ex["step"].to_numpy()
    failed = ex["failed"].to_numpy()
    mode = ex["mode"].to_numpy()
    # Async jobs' final states: most complete; a few wait for a retry (postponed) or are
    # cancelled before they start. What a scan sees at a given clock (queued, in
    # progress, finished, deleted) is `auditor.sim.jobs.jobs_at`.
    is_async = mode == 1
    state = np.full(n, 3, dtype=np.int64)
    status = np.where(failed, 31, 30).astype(np.int64)
    retry = np.where(failed, rng.integers(0, 4, size=n), 0).astype(np.int64)
    u = rng.random(n)
    created = ex["created"].to_numpy()
    started = ex["started"].to_numpy().copy()
    end = ex["end"].to_numpy()
    completed = secs(end + NS - 1)
    postpone = np.full(n, NAT, dtype=np.int64)
    waiting = is_async & (u < 0.01) & ~failed
    state[waiting], status[waiting] = 1, 10
    retry[waiting] = rng.integers(1, 4, size=int(waiting.sum()))
    postpone[waiting] = completed[waiting] + 300 * NS
    cancelled = is_async & (u >= 0.01) & (u < 0.015) & ~failed
    state[cancelled], status[cancelled] = 3, 32
    started = np.where(cancelled, NAT, started)
    # Trace rows: every execution that ran (its row appears when it ends).
    executed = ~cancelled
    _traces(b, ex, live, executed)
    a = np.flatnonzero(is_async)
    steps_arr = [live[i] for i in step_arr[a].tolist()]
    msgs = error_texts(b, len(a), rng)
    has_err = status[a] == 31
    m = len(a)
    jobs = {
        "asyncoperationid": guids(rng, m),
        "name": np.array([s.name for s in steps_arr], dtype=object),
        "operationtype": np.full(m, 1),
        "_sim_state": state[a],
        "_sim_status": status[a],
        "messagename": np.array([s.message for s in steps_arr], dtype=object),
        "primaryentitytype": np.array([s.entity for s in steps_arr], dtype=object),
        "correlationid": ex["corr"].to_numpy()[a],
        "requestid": guids(rng, m),
        "depth": ex["depth"].to_numpy()[a],
        "retrycount": retry[a],
        "errorcode": np.where(has_err, -2147220891, 0),
        "errorcode_null": ~has_err,
        "message": masked(has_err, msgs),
        "friendlymessage": masked(has_err, "An error occurred in a plug-in."),
        "createdon": created[a],
        "_sim_started": started[a],
        "_sim_ended": completed[a],
        "postponeuntil": postpone[a],
        "_sim_autodelete": np.array([s.mode == 1 and not b.messy for s in steps_arr]),
        "owning": np.array([s.sid for s in steps_arr], dtype=object),
        "activation": np.full(m, None, dtype=object),
    }
    b.job_parts = [jobs]


def error_texts(b: EnvBuild, n: int, rng: np.random.Generator) -> OBJ:
    """`n` error messages drawn from the pool (hostile ones in the messy profile)."""
    pool = list(ERROR_MESSAGES)
    if b.messy:
        pool += [f"Validation failed for {h}" for h in HOSTILE[:6]]
    return np.array(pool, dtype=object)[rng.integers(0, len(pool), size=n)]


def _traces(
    b: EnvBuild, ex: pd.DataFrame, live: list[Step], executed: npt.NDArray[np.bool_]
) -> None:
    rng = b.r_jobs
    setting = b.profile.trace_setting
    failed = ex["failed"].to_numpy()
    keep = executed & (failed if setting == 1 else np.ones(len(ex), dtype=bool))
    if setting == 0:
        keep[:] = False
    sub = ex[keep]
    n = len(sub)
    step_idx = sub["step"].to_numpy()
    typenames = np.array([typename(b.profile, s.type_index) for s in live], dtype=object)
    messages = np.array([s.message for s in live], dtype=object)
    entities = np.array([s.entity for s in live], dtype=object)
    sids = np.array([s.sid for s in live], dtype=object)
    f = sub["failed"].to_numpy()
    start = sub["started"].to_numpy()
    dur = sub["dur"].to_numpy()
    exc = np.full(n, None, dtype=object)
    fi = np.flatnonzero(f)
    texts = error_texts(b, len(fi), rng)
    acts = guids(rng, len(fi))
    for j, i in enumerate(fi.tolist()):
        exc[i] = exception_details(
            str(texts[j]), str(acts[j]), int(start[i]), str(typenames[step_idx[i]])
        )
    pool = _trace_pool(b, typenames)
    blocks = pool[step_idx % len(typenames), rng.integers(0, pool.shape[1], size=n)]
    cols: dict[str, pd.Series] = {
        "plugintracelogid": objs(guids(rng, n)),
        "typename": objs(typenames[step_idx]),
        "messagename": objs(messages[step_idx]),
        "primaryentity": objs(entities[step_idx]),
        "mode": ints(sub["mode"].to_numpy()),
        "operationtype": ints(np.ones(n, dtype=np.int64)),
        "depth": ints(sub["depth"].to_numpy()),
        "correlationid": objs(sub["corr"].to_numpy()),
        "requestid": objs(guids(rng, n)),
        "pluginstepid": objs(sids[step_idx]),
        "performanceexecutionstarttime": ts(secs(start)),
        "performanceexecutionduration": ints(dur),
        "performanceconstructorduration": ints(rng.integers(0, 6, size=n)),
        "exceptiondetails": objs(exc),
        "messageblock": objs(blocks),
        "issystemcreated": bools(np.zeros(n, dtype=bool)),
        "createdon": ts(secs(start + dur * 1_000_000)),
    }
    frame = frame_of(cols)
    b.pending_traces = [frame]


def _trace_pool(b: EnvBuild, typenames: OBJ) -> OBJ:
    rng = b.r_jobs
    size = 8
    pool = np.empty((len(typenames), size), dtype=object)
    for i, tn in enumerate(typenames.tolist()):
        for j in range(size):
            record = guid(rng)
            lines = [
                f"Entered {tn}.Execute(), Correlation Id: {guid(rng)}",
                f"Target record: {record}",
                "Validating attributes",
                f"Exiting {tn}.Execute()",
            ]
            if b.messy and j == 0:
                lines.insert(2, f"Customer note: {HOSTILE[i % len(HOSTILE)]}")
            if j == 1:
                lines.insert(2, "Überprüfung der Rechnungsnummer – 請求書番号を確認")
            pool[i, j] = "\r\n".join(lines)
    return pool


def exception_details(message: str, activity: str, start_ns: int, typename: str) -> str:
    """The OrganizationServiceFault text Dataverse writes to `exceptiondetails`.

    Shape from the PluginTraceLog example in Microsoft's ILogger article
    (https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/plugintracelog):
    https://learn.microsoft.com/power-apps/developer/data-platform/application-insights-ilogger
    """
    stamp = iso7(start_ns)
    xml_msg = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\r\n".join(
        [
            "Exception type: System.ServiceModel.FaultException`1"
            "[Microsoft.Xrm.Sdk.OrganizationServiceFault]",
            f"Message: {message}Detail: ",
            '<OrganizationServiceFault xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns="http://schemas.microsoft.com/xrm/2011/Contracts">',
            f"  <ActivityId>{activity}</ActivityId>",
            "  <ErrorCode>-2147220891</ErrorCode>",
            '  <ErrorDetails xmlns:d2p1="http://schemas.datacontract.org/2004/07/System.Collections'
            '.Generic">',
            "    <KeyValuePairOfstringanyType><d2p1:key>OperationStatus</d2p1:key>"
            '<d2p1:value xmlns:d4p1="http://www.w3.org/2001/XMLSchema" i:type="d4p1:int">0'
            "</d2p1:value></KeyValuePairOfstringanyType>",
            "  </ErrorDetails>",
            '  <HelpLink i:nil="true" />',
            f"  <Message>{xml_msg}</Message>",
            f"  <Timestamp>{stamp}</Timestamp>",
            "  <ExceptionRetriable>false</ExceptionRetriable>",
            "  <ExceptionSource>PluginExecution</ExceptionSource>",
            '  <InnerFault i:nil="true" />',
            "  <OriginalException>PluginExecution</OriginalException>",
            "  <TraceText>",
            f"Entered {typename}.Execute()",
            f"Exception: {xml_msg}",
            "</TraceText>",
            "</OrganizationServiceFault>",
        ]
    )
