"""`flows top`: which flows run for nothing, fail, retry or take longest.

An admin chasing noisy flows needs the measured values next to each
other, with the uncertainty of the sampled ones (the unnecessary-run rate is measured on the
runs read with action detail, so it carries its Wilson interval), and the checks that fail
for each flow, so the table says what to fix and not only what is loud. It reads an
`Evidence` of the latest scan and the findings `auditor analyze` stored for it and returns
plain JSON-ready rows, which the CLI renders; `flow show` is in `flow_detail`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditor.checks.evidence import Evidence
from auditor.explore.common import check_by, checks_by_resource, environment_ids, rank, records

FLOW_KEY = ["environment_id", "flow_id"]

# Ranking of `flows top`: the value ranked on (descending), then the tie-breakers; last of
# all the environment and flow id, so equal counts list in a stable order (as the ground
# truth's `noisiest_flows` does).
FLOW_RANKINGS: dict[str, tuple[str, ...]] = {
    "noise": ("estimated_unnecessary_runs",),
    "failures": ("failed", "failure_rate"),
    "retries": ("retries", "retries_exhausted", "throttled"),
    "duration": ("p95_duration_ms",),
    "runs": ("runs",),
}


def _flow_table(evidence: Evidence) -> pd.DataFrame:
    """Every flow with runs or a definition, with the measured values `flows top` ranks on."""
    summary = evidence.run_summary
    facts = evidence.flows.loc[
        :, [*FLOW_KEY, "workflowid", "display_name", "enabled", "trigger_type"]
    ]
    unnecessary = evidence.action_results["unnecessary"]
    retries = (
        evidence.action_results["retries"]
        .groupby(FLOW_KEY)[["retried", "retries", "exhausted", "throttled"]]
        .sum()
        .rename(columns={"exhausted": "retries_exhausted"})
        .reset_index()
    )
    table = summary.merge(facts, on=FLOW_KEY, how="left").merge(
        unnecessary, on=FLOW_KEY, how="left"
    )
    table = table.merge(retries, on=FLOW_KEY, how="left")
    counts = ["retried", "retries", "retries_exhausted", "throttled"]
    table[counts] = table[counts].fillna(0).astype("int64")
    # Flows without sampled runs have no sample counts: NA, not 0 (0 would claim a measurement).
    table = table.astype({"sampled": "Int64", "unnecessary": "Int64"})
    extrapolated = table["extrapolated_unnecessary"].astype("Float64")
    # Without a run count to extrapolate to, the sample's own count is the estimate. Rounded
    # before ranking: 11 / 250 * 250 is 11.000000000000002, which must tie with 11.
    table["estimated_unnecessary_runs"] = extrapolated.fillna(
        table["unnecessary"].astype("Float64")
    ).round(1)
    table["display_name"] = table["display_name"].fillna(table["flow_id"])
    table["environment"] = table["environment_id"].map(evidence.environment_names)
    table["environment"] = table["environment"].fillna(table["environment_id"])
    return table.rename(
        columns={
            "display_name": "name",
            "sampled": "sampled_runs",
            "unnecessary": "unnecessary_sampled",
            "rate": "unnecessary_rate",
            "rate_low": "unnecessary_rate_low",
            "rate_high": "unnecessary_rate_high",
            "duration_p95_ms": "p95_duration_ms",
        }
    )


TOP_COLUMNS = [
    "environment_id",
    "environment",
    "flow_id",
    "name",
    "enabled",
    "trigger_type",
    "runs",
    "runs_per_day",
    "finished",
    "failed",
    "failure_rate",
    "failure_streak",
    "sampled_runs",
    "unnecessary_sampled",
    "unnecessary_rate",
    "unnecessary_rate_low",
    "unnecessary_rate_high",
    "estimated_unnecessary_runs",
    "retried",
    "retries",
    "retries_exhausted",
    "throttled",
    "p95_duration_ms",
]


def flows_top(
    evidence: Evidence,
    findings: pd.DataFrame,
    by: str,
    environment: str | None = None,
    limit: int = 20,
) -> list[dict[str, Any]]:
    """The `limit` flows that rank highest `by` noise (estimated unnecessary runs), failures
    (failed runs), retries (retry attempts), duration (p95 run duration) or runs; flows with
    nothing to rank (no unnecessary run, no failure...) are left out.

    Each row has the measured values with the sample's interval and `failing_checks`: the
    ids of the checks whose stored finding fails for the flow or one of its actions.
    """
    check_by(by, FLOW_RANKINGS, "auditor flows top")
    table = _flow_table(evidence)
    envs = environment_ids(evidence, environment, "auditor environments")
    if envs is not None:
        table = table[table["environment_id"].isin(envs)]
    top = rank(table, FLOW_RANKINGS[by], ["environment_id", "flow_id"], limit)
    rows = records(top, TOP_COLUMNS)
    checks = checks_by_resource(findings, top, ("flow_id", "workflowid"))
    for position, (row, failing) in enumerate(zip(rows, checks, strict=True), start=1):
        row["rank"] = position
        row["failing_checks"] = failing
    return rows


__all__ = ["FLOW_KEY", "FLOW_RANKINGS", "flows_top"]
