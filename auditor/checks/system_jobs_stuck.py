"""System jobs suspended or waiting for a long time: work that is neither done nor failed."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, evidence_rows, make
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="system-jobs-stuck",
    title="System jobs suspended or stuck waiting",
    answers=("reliable-service",),
    severity="low",
    rationale=(
        "A suspended job, or one waiting far longer than its peers, is work that will not "
        "finish on its own; suspended jobs also hold queue capacity until they are resumed "
        "or cancelled."
    ),
    remediation=(
        "Resume or cancel the jobs shown (Settings > System Jobs); find why they suspended "
        "(the message column) and fix it, and set up bulk deletion of old completed jobs."
    ),
    learn_url="https://learn.microsoft.com/power-platform/admin/manage-dataverse-asynchronous-service",
    needs=("asyncoperations",),
    thresholds=(
        Threshold("waiting_hours", 24, "a job waiting longer than this is stuck", "hours"),
    ),
    resource_kind="environment",
)

_SUSPENDED = 1
_WAITING = (0, 10)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment: jobs suspended, or waiting since before the window end minus the
    limit."""
    cutoff = evidence.frames.window.end - timedelta(hours=float(limits["waiting_hours"]))
    jobs = evidence.frames.asyncoperations
    suspended = jobs["statecode"].eq(_SUSPENDED).fillna(False)
    waiting = jobs["statuscode"].isin(_WAITING).fillna(False) & (
        jobs["createdon"] < pd.Timestamp(cutoff)
    ).fillna(False)
    stuck = jobs[suspended | waiting].sort_values("createdon", kind="stable")
    out = []
    for env in evidence.environments["environment_id"]:
        mine = stuck[stuck["environment_id"] == env]
        n_susp = int(suspended[jobs["environment_id"] == env].sum())
        n_wait = len(mine) - n_susp
        out.append(
            make(
                META,
                "fail" if len(mine) else "pass",
                f"{n_susp} suspended and {n_wait} long-waiting system jobs"
                if len(mine)
                else "no suspended or long-waiting system jobs",
                environment_id=env,
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={"suspended": n_susp, "waiting": n_wait},
                evidence=evidence_rows(
                    mine,
                    [
                        "asyncoperationid",
                        "name",
                        "operationtype",
                        "statuscode",
                        "createdon",
                        "message",
                    ],
                ),
            )
        )
    return out
