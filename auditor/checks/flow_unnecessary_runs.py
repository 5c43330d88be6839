"""Flows whose runs mostly change nothing: a trigger condition should have stopped them."""

from __future__ import annotations

import pandas as pd

from auditor.checks.base import CheckMeta, Finding, Limits, Threshold, fmt, make, pct, rows
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="flow-unnecessary-runs",
    title="High unnecessary-run rate",
    severity="high",
    rationale=(
        "A run is unnecessary when it ends without any action that changes something (all "
        "writes, calls and responses skipped or never reached). Many such runs mean the "
        "trigger fires for events the flow does not need: a trigger condition or filter "
        "would stop them before they cost a run."
    ),
    remediation=(
        "Move the flow's first If/Switch test into a trigger condition (or the Dataverse "
        "trigger's Filter rows), so the run never starts when it would do nothing."
    ),
    learn_url="https://learn.microsoft.com/power-automate/guidance/planning/optimize-power-automate-use-cases",
    needs=("flows", "flow_runs", "flow_run_actions"),
    thresholds=(
        Threshold("min_runs", 20, "runs in the window before a flow is judged", "runs"),
        Threshold(
            "unnecessary_run_rate", 0.5, "share of runs that changed nothing above which it fails"
        ),
    ),
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Per flow with runs: the estimated unnecessary runs (sample rate x finished runs) over
    all runs in the window, against the threshold; the Wilson interval is in the values."""
    min_runs = float(limits["min_runs"])
    threshold = float(limits["unnecessary_run_rate"])
    summary = evidence.run_summary
    summary = summary[summary["runs"] > 0]
    rates = evidence.action_results["unnecessary"]
    merged = summary.merge(rates, on=["environment_id", "flow_id"], how="left").merge(
        evidence.flow_names(), on=["environment_id", "flow_id"], how="left"
    )
    out = []
    for row in rows(merged):
        name = row.display_name if isinstance(row.display_name, str) else row.flow_id
        common = {
            "environment_id": row.environment_id,
            "resource_id": row.flow_id,
            "resource_name": name,
        }
        if row.runs < min_runs:
            out.append(
                make(
                    META,
                    "pass",
                    f"{row.runs} runs in the window (fewer than {fmt(min_runs)}): "
                    "too few to be noisy",
                    values={"runs": row.runs},
                    **common,
                )
            )
            continue
        sampled = 0 if pd.isna(row.sampled) else int(row.sampled)
        if sampled == 0:
            out.append(
                make(
                    META,
                    "not-assessed",
                    f"{row.runs} runs but none read with action detail (or no definition); "
                    "collect with --action-sample above 0",
                    values={"runs": row.runs},
                    **common,
                )
            )
            continue
        extrapolated = row.extrapolated_unnecessary
        estimated = float(row.unnecessary if pd.isna(extrapolated) else extrapolated)
        share = estimated / row.runs
        values = {
            "runs": row.runs,
            "runs_per_day": row.runs_per_day,
            "sampled": sampled,
            "unnecessary_sampled": row.unnecessary,
            "rate": row.rate,
            "rate_low": row.rate_low,
            "rate_high": row.rate_high,
            "estimated_unnecessary": round(estimated, 1),
            "unnecessary_share": share,
            "threshold": threshold,
        }
        verdict = "fail" if share > threshold else "pass"
        out.append(
            make(
                META,
                verdict,
                f"{fmt(estimated)} of {fmt(row.runs)} runs changed nothing ({pct(share)}; "
                f"sample {row.unnecessary}/{sampled}, 95 % interval {pct(row.rate_low)} to "
                f"{pct(row.rate_high)}); threshold {pct(threshold)}",
                values=values,
                **common,
            )
        )
    return out
