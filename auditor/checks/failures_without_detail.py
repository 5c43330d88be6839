"""Failures that carry no error code or message cannot be diagnosed or reported."""

from __future__ import annotations

import pandas as pd

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, fmt, make, pct
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="failures-without-detail",
    title="Failures without error detail",
    severity="medium",
    rationale=(
        "A failed run or system job without an error message tells its owner nothing: the "
        "failure cannot be triaged, alerted on by cause, or returned to the caller."
    ),
    remediation=(
        "End failure paths with Terminate Failed and a code and message (runError); in "
        "plug-ins, throw InvalidPluginExecutionException with a message and trace the context."
    ),
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/best-practices/business-logic/use-invalidpluginexecutionexception-plugin-workflow-activities",
    needs=("flow_runs", "asyncoperations"),
    thresholds=(
        Threshold(
            "missing_error_share", 0.2, "share of failures without a message above which it fails"
        ),
    ),
    resource_kind="environment",
)

_JOB_TYPES = (1, 10, 79)  # async plug-in, workflow, flow trigger (callback registration)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment: failed flow runs, and failed system jobs, without a message."""
    threshold = float(limits["missing_error_share"])
    runs = evidence.runs
    failed_runs = runs[runs["failed"]]
    run_counts = failed_runs.groupby("environment_id").agg(
        failed=("run_name", "size"), bare=("error_message", lambda s: int(s.isna().sum()))
    )
    jobs = evidence.jobs
    jobs = jobs[jobs["operationtype"].isin(_JOB_TYPES).fillna(False)]
    job_counts = jobs.groupby("environment_id").agg(
        failed=("failed", "sum"), bare=("failed_without_message", "sum")
    )
    out = []
    for env in evidence.environments["environment_id"]:
        for kind, counts, noun in (
            ("flow-runs", run_counts, "failed flow runs"),
            ("system-jobs", job_counts, "failed system jobs"),
        ):
            failed = int(counts["failed"].get(env, 0)) if not counts.empty else 0
            bare = int(counts["bare"].get(env, 0)) if not counts.empty else 0
            share = bare / failed if failed else 0.0
            status = "fail" if failed and share > threshold else "pass"
            message = (
                f"{fmt(bare)} of {fmt(failed)} {noun} have no error message ({pct(share)}; "
                f"threshold {pct(threshold)})"
                if failed
                else f"no {noun} in the window"
            )
            out.append(
                make(
                    META,
                    status,
                    message,
                    environment_id=env,
                    resource_kind=kind,
                    resource_id=f"{env}/{kind}",
                    resource_name=f"{evidence.environment_name(env)}: {noun}",
                    values={
                        "failed": failed,
                        "without_message": bare,
                        "share": share if failed else pd.NA,
                    },
                )
            )
    return out
