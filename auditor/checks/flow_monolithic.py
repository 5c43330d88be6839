"""Very large or deeply nested flows are hard to test, reuse and recover.

Nesting is counted as the designer shows it: the containers (scope, condition, switch, Apply
to each, Do until) around the deepest action, so a top-level action is at 0 and an action
inside one scope at 1 (R-NESTING in tests/corpus/README.md). The flow facts count an action's
`depth` from 1 at top level (`analysis.flows`, `max_depth`), so the designer's nesting is
`max(max_depth - 1, 0)`. The threshold (`max_depth`, 5 levels) is a design limit below the
platform's: at most 8 nesting levels ("Action nesting depth",
https://learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config), which the message
names when a flow exceeds the threshold.
"""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, make, rows
from auditor.checks.evidence import Evidence

# The platform's maximum of nested containers ("Action nesting depth"):
# https://learn.microsoft.com/azure/logic-apps/logic-apps-limits-and-config
PLATFORM_MAX_NESTING = 8


def designer_nesting(max_depth: int) -> int:
    """Containers around the deepest action, from `max_depth` (top-level action = 1)."""
    return max(int(max_depth) - 1, 0)


META = CheckMeta(
    id="flow-monolithic",
    title="Monolithic flow",
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
        Threshold(
            "max_depth",
            5,
            "containers nested around an action, as the designer shows them",
            "levels",
        ),
    ),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow whose definition was read: size and nesting against the limits."""
    max_actions = int(limits["max_actions"])
    max_depth = int(limits["max_depth"])
    flows = evidence.flows
    out = []
    for row in rows(flows[flows["enabled"] & flows["parsed"]]):
        nesting = designer_nesting(row.max_depth)
        problems = []
        if row.action_count > max_actions:
            problems.append(f"{row.action_count} actions (limit {max_actions})")
        if nesting > max_depth:
            platform = (
                f"above the platform maximum of {PLATFORM_MAX_NESTING}"
                if nesting > PLATFORM_MAX_NESTING
                else f"platform maximum {PLATFORM_MAX_NESTING}"
            )
            problems.append(
                f"containers nested {nesting} levels deep around an action "
                f"(limit {max_depth}; {platform})"
            )
        out.append(
            make(
                META,
                "fail" if problems else "pass",
                "; ".join(problems)
                if problems
                else f"{row.action_count} actions, containers nested {nesting} "
                f"level{'' if nesting == 1 else 's'} deep",
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={"actions": row.action_count, "max_depth": nesting},
            )
        )
    return out
