"""Flows outside solutions are only visible through the flow API."""

from __future__ import annotations

from auditor.checks.base import CheckMeta, Finding, Limits, make
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="coverage-flows-outside-solutions",
    title="Flows outside solutions not visible without the flow API",
    severity="medium",
    rationale=(
        "Dataverse's workflow table holds only solution-aware flows; flows created outside a "
        "solution (often most of them) appear only in the flow API. Without it, the flows the "
        "definition and run checks audit are a subset of the environment's flows."
    ),
    remediation=(
        "Turn the flow API on (apis.flow_enabled = true) and register the app as a Power "
        "Platform management application (a person: the Power Platform administrator role), "
        "or move the flows into solutions."
    ),
    learn_url="https://learn.microsoft.com/power-automate/overview-solution-flows",
    needs=(),
    resource_kind="environment",
    coverage=True,
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment: pass when the flow API's flow list was collected and plausible.

    A list that holds none of the cloud flows Dataverse holds was not read as an administrator
    (the maker route lists only the caller's flows, none for an app; solution flows appear only
    with `include=includeSolutionCloudFlows`): that is not-assessed, never a pass.
    """
    flows = evidence.definitions
    listed = evidence.frames.flows
    # `auditor lint` reads solution files: they are the whole inventory, with no flow API list
    # to doubt (its environment says it was discovered by "lint").
    envs = evidence.frames.environments
    from_files = set(envs.loc[envs["discovered_by"].eq("lint"), "environment_id"].astype(str))
    out = []
    for env in evidence.environments["environment_id"]:
        gaps = evidence.gaps(env, ("flows",))
        mine = flows[flows["environment_id"] == env]
        solution = int(mine["workflowid"].notna().sum())
        api = listed[listed["environment_id"] == env]
        api_solution = int(api["workflowid"].notna().sum())
        if gaps:
            status = "not-assessed"
            message = (
                f"the flow API was not read ({gaps[0].reason}): only {solution} solution flows "
                "are visible; flows outside solutions were not audited"
            )
        elif solution and not api_solution and env not in from_files:
            status = "not-assessed"
            what = "no flows" if api.empty else f"{len(api)} flows and none of them"
            message = (
                f"the flow API returned {what} of the {solution} cloud flows Dataverse holds: "
                "check the app registration (a management application, read through the admin "
                "routes); flows outside solutions may be missing"
            )
        else:
            status = "pass"
            message = f"the flow API listed {len(api)} flows ({api_solution} in solutions)"
        out.append(
            make(
                META,
                status,
                message,
                environment_id=env,
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={
                    "flows": len(mine),
                    "solution_flows": solution,
                    "listed_by_flow_api": len(api),
                },
            )
        )
    return out
