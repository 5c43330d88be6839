"""With trace logging Off, plug-in failures leave no detail to judge."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, make
from auditor.checks.evidence import TRACE_HINT, Evidence

META = CheckMeta(
    id="coverage-trace-failures",
    title="Plug-in trace logging Off",
    answers=("return-results",),
    severity="medium",
    rationale=(
        "Whether plug-in failures carry a message and a trace can only be seen in the plug-in "
        "trace log; with the setting Off, no failure is logged."
    ),
    remediation=TRACE_HINT,
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/logging-tracing",
    needs=("organizations",),
    resource_kind="environment",
    coverage=True,
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment with Dataverse: not-assessed when failures are not logged."""
    cov = evidence.trace_coverage.set_index("environment_id")
    out = []
    for env in evidence.environments["environment_id"]:
        if env not in cov.index:
            continue
        row = cov.loc[env]
        out.append(
            make(
                META,
                "pass" if row["failures_visible"] else "not-assessed",
                f"plug-in trace logging is {row['setting']}: {row['evidence']}",
                environment_id=env,
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={"setting": row["setting"]},
            )
        )
    return out
