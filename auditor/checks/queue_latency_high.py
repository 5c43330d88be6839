"""Async jobs that wait long in the queue delay everything that depends on them."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, fmt, make
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="queue-latency-high",
    title="High system-job queue latency",
    severity="medium",
    rationale=(
        "Queue latency (started - created) of asynchronous plug-in jobs measures how far the "
        "async service is behind. Long waits mean the environment's background work is more "
        "than its capacity, or jobs are blocked behind a few slow ones."
    ),
    remediation=(
        "Find the job types that dominate the queue, remove unnecessary async work (unfiltered "
        "steps, noisy workflows), and delete completed jobs routinely."
    ),
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/asynchronous-service",
    needs=("asyncoperations",),
    thresholds=(
        Threshold("queue_latency_p95_ms", 600_000, "p95 wait of async plug-in jobs", "ms"),
    ),
    resource_kind="environment",
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment: p95 queue latency of completed async plug-in jobs."""
    limit = float(limits["queue_latency_p95_ms"])
    p95 = evidence.queue_latency
    by_type = evidence.jobs
    async_jobs = by_type[by_type["operationtype"].eq(1).fillna(False)].set_index("environment_id")[
        "jobs"
    ]
    out = []
    for env in evidence.environments["environment_id"]:
        common = {
            "environment_id": env,
            "resource_id": env,
            "resource_name": evidence.environment_name(env),
        }
        if env not in p95.index:
            queued = int(async_jobs.get(env, 0))
            out.append(
                make(
                    META,
                    "not-assessed" if queued else "pass",
                    f"{queued} asynchronous plug-in jobs, none completed: no wait to measure"
                    if queued
                    else "no asynchronous plug-in job in the window: nothing waits in the queue",
                    values={"async_plugin_jobs": queued},
                    **common,
                )
            )
            continue
        value = float(p95[env])
        out.append(
            make(
                META,
                "fail" if value > limit else "pass",
                f"p95 queue latency {fmt(value / 1000, 1)} s (limit {fmt(limit / 1000)} s)",
                values={"queue_latency_p95_ms": value, "threshold_ms": limit},
                **common,
            )
        )
    return out
