"""Dataverse's flow-run table loses runs under load; flowevents says when."""

from __future__ import annotations

import json

from auditor.checks.base import CheckMeta, Finding, Limits, evidence_rows, make
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="coverage-flow-run-ingestion",
    title="Flow-run ingestion gaps (flowevents)",
    severity="medium",
    rationale=(
        "Solution flows' run history in Dataverse (flowrun) is ingested asynchronously and can "
        "drop runs under load; Dataverse records each loss as a flowevent. Failure rates "
        "computed from flowrun alone are then incomplete."
    ),
    remediation=(
        "Read run history from the flow API as well (apis.flow_enabled = true, with the "
        "Power Automate admin permission), which lists every run whatever Dataverse kept."
    ),
    learn_url="https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata",
    needs=("flowevents",),
    resource_kind="environment",
    coverage=True,
)

_LOSS_CODES = ("IngestionRateDataLoss",)


def _lost(content: object) -> int:
    try:
        value = json.loads(str(content)).get("lostRunCount", 0)
        return int(value) if isinstance(value, int | float) else 0
    except (ValueError, AttributeError):
        return 0


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per environment: ingestion-loss events in the window, and whether the flow API's run
    history (collected) makes up for them."""
    events = evidence.frames.flowevents
    losses = events[events["eventcode"].isin(_LOSS_CODES).fillna(False)]
    out = []
    for env in evidence.environments["environment_id"]:
        mine = losses[losses["environment_id"] == env]
        covered = not evidence.gaps(env, ("flow_runs",))
        lost = int(sum(_lost(c) for c in mine["eventcontent"]))
        if mine.empty:
            status, message = "pass", "no flow-run ingestion loss reported in the window"
        elif covered:
            status = "pass"
            message = (
                f"{len(mine)} ingestion-loss events ({lost} runs missing from flowrun); run "
                "history was read from the flow API, which is complete"
            )
        else:
            status = "not-assessed"
            message = (
                f"{len(mine)} ingestion-loss events: {lost} runs are missing from flowrun and "
                "the flow API was not read, so failure rates are incomplete"
            )
        out.append(
            make(
                META,
                status,
                message,
                environment_id=env,
                resource_id=env,
                resource_name=evidence.environment_name(env),
                values={
                    "events": len(mine),
                    "lost_runs": lost,
                    "flow_api_runs": covered,
                    **evidence.sources_beyond_store(),
                },
                evidence=evidence_rows(
                    mine, ["eventcode", "parentobjectid", "createdon", "eventcontent"]
                ),
            )
        )
    return out
