"""A catch that neither ends the run Failed nor reports the failure reports it as success."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, evidence_rows, make, per_flow, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-handled-failure-succeeds",
    title="Handled failure reported as success",
    severity="high",
    rationale=(
        "When a catch (what runs only because a step failed or timed out) swallows the error "
        "and the run ends normally, its status is Succeeded: run history, alerts and callers "
        "all see success although the work failed. An empty catch, a catch that reports "
        "nothing, Terminate Succeeded or a 2xx Response after a failure all do this."
    ),
    remediation=(
        "End each catch with Terminate (status Failed, with the error code and message), "
        "or report the failure: a Response with an error status, a notification or a log "
        "record."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/coding-guidelines/error-handling",
    needs=("workflows", "flows"),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Each enabled flow with a catch or an empty catch (`analysis.failure_paths`): fail when
    one lets the run end Succeeded without reporting, or reports success on failure."""
    flows = evidence.flows
    chosen = flows[flows["enabled"] & (flows["catch_paths"] > 0)]
    paths = evidence.catch_paths
    judged = paths[paths["kind"].isin(["catch", "empty"]) & ~paths["reported_above"]]
    silent = judged[
        ~(judged["reports_failure"].astype(bool) & ~judged["success_on_failure"].astype(bool))
    ]
    silent_of = per_flow(silent)
    out = []
    for row in rows(chosen):
        mine = silent_of(row.environment_id, row.flow_id)
        failing = row.silent_catch_paths > 0
        if failing:
            first = mine.iloc[0]
            if first["kind"] == "empty":
                why = "is empty"
            elif bool(first["success_on_failure"]):
                why = f"reports success ({first['how']})"
            else:
                why = "reports nothing"
            message = (
                f"{row.silent_catch_paths} of {row.catch_paths} catch(es) let the run end "
                f"Succeeded: '{first['catch_display']}' (after '{first['guarded_display']}' "
                f"fails) {why}"
            )
        else:
            message = f"all {row.catch_paths} catch(es) report the failure"
        out.append(
            make(
                META,
                "fail" if failing else "pass",
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name,
                values={
                    "catch_paths": row.catch_paths,
                    "silent_catch_paths": row.silent_catch_paths,
                },
                evidence=evidence_rows(
                    mine, ["catch_action", "guarded_action", "kind", "how", "member_names"]
                ),
            )
        )
    return out
