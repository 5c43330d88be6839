"""Very large or deeply nested flows are hard to test, reuse and recover."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-monolithic",
    title="Monolithic flow",
    answers=("decomposed-steps",),
    severity="medium",
    rationale=(
        "A flow with very many actions, or scopes nested many levels deep, does several jobs "
        "at once: one failing step fails all of them, it cannot be retried in part, and "
        "changes are risky."
    ),
    remediation=(
        "Split the flow into child flows (Run a Child Flow) or separate flows, each doing one "
        "step of the process; flatten nested conditions with Switch or early Terminate."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/coding-guidelines/use-child-flows",
    needs=("workflows", "flows"),
    thresholds=(
        Threshold("max_actions", 60, "actions in one flow, at any depth", "actions"),
        Threshold("max_depth", 5, "nesting depth of scopes, conditions and loops", "levels"),
    ),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow whose definition was read: size and depth against the limits."""
    max_actions = int(limits["max_actions"])
    max_depth = int(limits["max_depth"])
    flows = evidence.flows
    out = []
    for row in rows(flows[flows["enabled"] & flows["parsed"]]):
        problems = []
        if row.action_count > max_actions:
            problems.append(f"{row.action_count} actions (limit {max_actions})")
        if row.max_depth > max_depth:
            problems.append(f"nesting depth {row.max_depth} (limit {max_depth})")
        out.append(
            make(
                META,
                "fail" if problems else "pass",
                "; ".join(problems)
                if problems
                else f"{row.action_count} actions, nesting depth {row.max_depth}",
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={"actions": row.action_count, "max_depth": row.max_depth},
            )
        )
    return out
