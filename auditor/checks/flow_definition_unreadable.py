"""A flow definition that cannot be parsed cannot be audited: say so, per flow."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, make, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-definition-unreadable",
    title="Flow definition not readable",
    severity="medium",
    rationale=(
        "The trigger, response, error-handling and structure checks read the flow's "
        "definition. A definition that is missing or does not parse leaves that flow "
        "unaudited; it is listed so that it is not mistaken for a pass."
    ),
    remediation=(
        "Open the flow in the designer and save it again, or export it and check the JSON; "
        "if the definition is fine, report the parse error to the auditor's maintainers."
    ),
    learn_url="https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language",
    needs=(),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """An `error` finding per flow whose definition did not parse (or is missing); a pass for
    each parsed one."""
    flows = evidence.flows
    errors = evidence.definition_errors.set_index(["environment_id", "flow_id"])["error"]
    texts = evidence.definitions.set_index(["environment_id", "flow_id"])["definition_text"]
    out = []
    for row in rows(flows):
        key = (row.environment_id, row.flow_id)
        if row.parsed:
            status, message = "pass", "definition parsed"
        elif key in texts.index and not isinstance(texts.loc[key], str):
            # Before the parse error: the parser reports a missing text as "empty".
            status, message = "error", "no definition was collected for this flow"
        elif key in errors.index:
            status, message = "error", f"definition does not parse: {errors.loc[key]}"
        else:
            continue
        out.append(
            make(
                META,
                status,
                message,
                environment_id=row.environment_id,
                resource_id=row.flow_id,
                resource_name=row.display_name
                if isinstance(row.display_name, str)
                else row.flow_id,
            )
        )
    return out
