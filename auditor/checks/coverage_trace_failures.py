"""With trace logging Off, plug-in failures leave no detail to judge."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits
from auditor.checks.coverage_trace_executions import trace_setting_findings
from auditor.checks.evidence import TRACE_HINT, Evidence

META = CheckMeta(
    id="coverage-trace-failures",
    title="Plug-in trace logging Off",
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
    return trace_setting_findings(META, evidence, "failures_visible")
