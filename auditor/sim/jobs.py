"""System jobs over time: what `asyncoperations` shows of each job at the tenant's clock.

The generator decides each job's whole life (created, started, ended, its final state); the
served table is that life seen at `SimTenant.now`, rebuilt whenever the clock moves, so a job
queued or in progress at one scan is finished at the next, exactly as a tenant shows it.

The documented life cycle (System Job table reference, StateCode and StatusCode choices:
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation,
MicrosoftDocs/powerapps-docs powerapps-docs/developer/data-platform/reference/entities/
asyncoperation.md; transitions: https://learn.microsoft.com/power-apps/developer/data-platform/
asynchronous-service):
- created, not started: statecode 0 Ready / statuscode 0 Waiting For Resources;
- started, not ended: 2 Locked / 20 In Progress;
- ended: 3 Completed / 30 Succeeded, 31 Failed or 32 Canceled (a canceled job never started);
- postponed for a retry, or a workflow waiting on a condition or timeout: 1 Suspended /
  10 Waiting, with `postponeuntil` when it will be picked up again (here it then completes);
- `modifiedon` is the time of the latest of these changes (a system column of every table).
A step or workflow with `asyncautodelete` has its successfully completed jobs deleted at once
("causes all successfully completed jobs to be deleted immediately after completion":
https://learn.microsoft.com/power-platform/admin/manage-storage-asyncoperation-base-table):
such a job is not served once it has succeeded.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

# The generator's plan of each job, kept beside the served columns.
PLAN_COLUMNS = (
    "_sim_state",  # final statecode
    "_sim_status",  # final statuscode
    "_sim_started",  # when it starts (NaT: never, a cancelled job)
    "_sim_ended",  # when it ends, or (waiting jobs) when it starts waiting
    "_sim_autodelete",  # its step or workflow deletes successful jobs
)
READY, SUSPENDED, LOCKED, COMPLETED = 0, 1, 2, 3
WAITING_FOR_RESOURCES, WAITING, IN_PROGRESS = 0, 10, 20
SUCCEEDED = 30
_NAT = np.iinfo(np.int64).min


def _ns(series: pd.Series) -> npt.NDArray[np.int64]:
    return series.to_numpy(dtype="datetime64[ns]").view(np.int64)


def jobs_at(plan: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    """The served `asyncoperations` rows of every job at `now` (rows created later are kept;
    the server hides them by `createdon`)."""
    now_ns = int(pd.Timestamp(now).value)
    created = _ns(plan["createdon"])
    started = _ns(plan["_sim_started"])
    ended = _ns(plan["_sim_ended"])
    state = plan["_sim_state"].to_numpy(dtype=np.int64, na_value=0)
    status = plan["_sim_status"].to_numpy(dtype=np.int64, na_value=0)
    # A waiting job moves back to Ready at `postponeuntil` and is picked up: here it then
    # completes, successfully, a second after (asynchronous-service: "postponeuntil").
    postpone = _ns(plan["postponeuntil"])
    resumed = (state == SUSPENDED) & (postpone != _NAT) & (postpone + 1_000_000_000 <= now_ns)
    state = np.where(resumed, COMPLETED, state)
    status = np.where(resumed, SUCCEEDED, status)
    ended = np.where(resumed, postpone + 1_000_000_000, ended)
    has_start = started != _NAT
    queued = ~has_start | (started > now_ns)
    # A cancelled job never starts: it waits for resources until it is cancelled.
    queued &= ~((state == COMPLETED) & ~has_start & (ended <= now_ns))
    running = ~queued & has_start & (ended > now_ns)
    done = ~queued & ~running
    out = plan.copy()
    out["statecode"] = pd.array(np.select([queued, running], [READY, LOCKED], state), dtype="Int64")
    out["statuscode"] = pd.array(
        np.select([queued, running], [WAITING_FOR_RESOURCES, IN_PROGRESS], status), dtype="Int64"
    )
    waiting = done & (state == SUSPENDED)
    shown_start = has_start & ~queued
    shown_end = done & ~waiting
    out["startedon"] = _times(np.where(shown_start, started, _NAT))
    out["completedon"] = _times(np.where(shown_end, ended, _NAT))
    out["modifiedon"] = _times(
        np.select([queued, running], [created, started], ended).astype(np.int64)
    )
    out["postponeuntil"] = out["postponeuntil"].where(pd.Series(waiting, index=out.index))
    final_failure = done & (status != SUCCEEDED)
    for column in ("message", "friendlymessage"):
        out[column] = out[column].where(pd.Series(final_failure, index=out.index))
    out["errorcode"] = out["errorcode"].where(pd.Series(final_failure, index=out.index))
    out["executiontimespan"] = out["executiontimespan"].where(pd.Series(shown_end, index=out.index))
    autodelete = plan["_sim_autodelete"].to_numpy(dtype=bool, na_value=False)
    deleted = done & (status == SUCCEEDED) & autodelete
    kept: pd.DataFrame = out.loc[~deleted].reset_index(drop=True)
    return kept


def _times(ns: npt.NDArray[np.int64]) -> pd.Series:
    """UTC timestamps from int64 nanoseconds (the int64 minimum is NaT)."""
    return pd.Series(ns.astype(np.int64).view("datetime64[ns]")).dt.tz_localize("UTC")
