"""Performance is judged continuously only when the tenant is scanned regularly."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, make
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="coverage-scan-history",
    title="Too few scans to evaluate performance continuously",
    severity="low",
    rationale=(
        "Sufficient performance is a trend, not a snapshot: one scan shows this week's "
        "durations but not whether they are getting worse. Regular scans give the history "
        "that `auditor history` compares."
    ),
    remediation="Schedule `auditor scan` (daily or weekly), for example in a pipeline or cron.",
    learn_url="https://learn.microsoft.com/power-platform/well-architected/reliability/background-jobs",
    needs=(),
    thresholds=(Threshold("min_scans_30d", 3, "completed scans in the last 30 days", "scans"),),
    resource_kind="environment",
    coverage=True,
)

_COUNTED = ("completed", "partial")


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment: scans of the store that ended in the 30 days up to the window end
    (a scan covers every environment it was asked for; the count is the store's)."""
    wanted = int(limits["min_scans_30d"])
    end = pd.Timestamp(evidence.frames.window.end)
    scans = evidence.frames.scans
    recent = scans[
        scans["status"].isin(_COUNTED).fillna(False)
        & (scans["window_end"] >= end - timedelta(days=30)).fillna(False)
        & (scans["window_end"] <= end).fillna(False)
    ]
    count = len(recent)
    out = []
    for env in evidence.environments["environment_id"]:
        out.append(
            make(
                META,
                "pass" if count >= wanted else "not-assessed",
                f"{count} scan(s) in the last 30 days (at least {wanted} to judge a trend)",
                environment_id=env,
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={"scans_30d": count, "min_scans_30d": wanted},
            )
        )
    return out
