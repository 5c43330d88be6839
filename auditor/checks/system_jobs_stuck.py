"""System jobs stuck: queued, running or overdue far longer than a job should take.

Waiting is not stuck. Statecode 1 (Suspended) has one status, 10 Waiting: a job postponed for
a retry (`postponeuntil`) or a background workflow waiting on a condition or a timeout, its
normal state (System Job reference, StateCode/StatusCode choices:
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation;
https://learn.microsoft.com/power-apps/developer/data-platform/asynchronous-service).
Stuck, here, is the documented states held past the threshold:
- 0 Waiting For Resources since its creation (a queue that does not drain: the documented
  symptom of too many CallbackRegistration Expander jobs,
  https://learn.microsoft.com/power-apps/developer/data-platform/bypass-power-automate-flows);
- 20 In Progress, 21 Pausing or 22 Canceling since it started (an asynchronous plug-in has
  two minutes, https://learn.microsoft.com/power-apps/developer/data-platform/analyze-performance);
- 10 Waiting with a `postponeuntil` that passed more than the threshold ago: due, yet not
  picked up (inferred: the documentation says the job resumes at that time, not what a late
  resume means).
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, evidence_rows, make
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="system-jobs-stuck",
    title="System jobs stuck waiting for resources, in progress or overdue",
    severity="low",
    rationale=(
        "A job waiting for resources or in progress far longer than a job takes is work that "
        "will not finish on its own, and it holds queue capacity. A job Waiting (postponed for "
        "a retry, or a workflow waiting on a condition or timeout) is normal until its "
        "postponeuntil has long passed."
    ),
    remediation=(
        "Look at the jobs shown (Settings > System Jobs): cancel or resume them, find why the "
        "queue does not drain (bulk operations starting many flow-trigger jobs, a plug-in "
        "that hangs), and set up bulk deletion of old completed jobs."
    ),
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/asynchronous-service",
    needs=("asyncoperations",),
    thresholds=(
        Threshold(
            "waiting_hours",
            24,
            "hours a job may wait for resources, run, or be overdue before it is stuck",
            "hours",
        ),
    ),
    resource_kind="environment",
)

_WAITING_FOR_RESOURCES = 0
_WAITING = 10
_RUNNING = (20, 21, 22)  # In Progress, Pausing, Canceling


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment: jobs held in a documented state past the threshold at the scan's end."""
    cutoff = pd.Timestamp(
        evidence.frames.window.end - timedelta(hours=float(limits["waiting_hours"]))
    )
    jobs = evidence.kept_jobs  # every job not settled: the stuck are among them
    status = jobs["statuscode"]
    queued = status.eq(_WAITING_FOR_RESOURCES).fillna(False) & (jobs["createdon"] < cutoff).fillna(
        False
    )
    since = (
        jobs["startedon"].fillna(jobs["modifiedon"]) if "modifiedon" in jobs else jobs["startedon"]
    )
    running = status.isin(_RUNNING).fillna(False) & (since < cutoff).fillna(False)
    overdue = status.eq(_WAITING).fillna(False) & (jobs["postponeuntil"] < cutoff).fillna(False)
    waiting = status.eq(_WAITING).fillna(False) & ~overdue
    stuck = jobs[queued | running | overdue].sort_values("createdon", kind="stable")
    out = []
    for env in evidence.environments["environment_id"]:
        mine = jobs["environment_id"] == env
        counts = {
            "waiting_for_resources": int((queued & mine).sum()),
            "in_progress": int((running & mine).sum()),
            "overdue": int((overdue & mine).sum()),
            "waiting": int((waiting & mine).sum()),
        }
        listed = stuck[stuck["environment_id"] == env]
        if len(listed):
            message = (
                f"{counts['waiting_for_resources']} waiting for resources, "
                f"{counts['in_progress']} in progress and {counts['overdue']} overdue past "
                f"{limits['waiting_hours']} h"
            )
        else:
            message = "no job stuck waiting for resources, in progress or overdue"
        if counts["waiting"]:
            message += f"; {counts['waiting']} waiting (postponed or on a condition), not stuck"
        out.append(
            make(
                META,
                "fail" if len(listed) else "pass",
                message,
                environment_id=env,
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values=counts,
                evidence=evidence_rows(
                    listed,
                    [
                        "asyncoperationid",
                        "name",
                        "operationtype",
                        "statuscode",
                        "createdon",
                        "startedon",
                        "postponeuntil",
                        "message",
                    ],
                ),
            )
        )
    return out
