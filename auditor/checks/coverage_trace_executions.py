"""Without trace logging All, plug-in executions, durations and slow successes are unseen."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, make
from auditor.checks.evidence import TRACE_HINT, Evidence

META = CheckMeta(
    id="coverage-trace-executions",
    title="Plug-in trace logging not All",
    severity="medium",
    rationale=(
        "Plug-in durations and execution counts come from the plug-in trace log, which holds "
        "every execution only when the environment's trace setting is All; with Exception "
        "only failures are logged, with Off nothing."
    ),
    remediation=TRACE_HINT,
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/logging-tracing",
    needs=("organizations",),
    resource_kind="environment",
    coverage=True,
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment with Dataverse: not-assessed unless the setting is All."""
    return trace_setting_findings(META, evidence, "executions_visible")


def trace_setting_findings(meta: CheckMeta, evidence: Evidence, visible: str) -> list[Finding]:
    """Per environment with an organization row: pass when the trace-log setting makes the
    `visible` evidence ("executions_visible" / "failures_visible") complete."""
    cov = evidence.trace_coverage.set_index("environment_id")
    out = []
    for env in evidence.environments["environment_id"]:
        if env not in cov.index:
            continue  # no organization row: the runner reports the query as not collected
        row = cov.loc[env]
        out.append(
            make(
                meta,
                "pass" if row[visible] else "not-assessed",
                f"plug-in trace logging is {row['setting']}: {row['evidence']}",
                environment_id=env,
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={"setting": row["setting"], **evidence.sources_beyond_store()},
            )
        )
    return out
