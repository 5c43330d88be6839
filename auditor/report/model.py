"""One report model, from which every format is rendered (docs/how-a-scan-runs.md, "Report").

The model is plain JSON-ready data: `report.json` is the model itself, validated by
`reports/report.schema.json`, and the Markdown, HTML, SARIF and CSV renderers only format
it. It is built from the store alone: the scan, the findings `auditor analyze` stored with it,
the verdicts (`auditor.assessment`), and the figures the charts draw, recomputed from the
frames of the analysed window. Tenant text (names, messages) is kept as it is here; each
renderer escapes it for its format.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd

from auditor import __version__
from auditor.assessment import (
    AssessmentResult,
    MuteEntry,
    Verdict,
    assess,
    assessment,
    relevant,
)
from auditor.checks import CHECKS
from auditor.checks.base import Finding, plain, rows
from auditor.checks.evidence import Evidence
from auditor.scan_view import open_scan
from auditor.store import Store, StoreError

SCHEMA_VERSION = 1
CHART_ROWS = 10  # bars per chart: the worst offenders, not everything
# Findings kept per check and status. Files anyone can commit can hold 200,000 plug-in steps
# in a 500 KB zip: one finding each made 650 MB of reports. A reviewer reads the first
# hundreds; the verdicts and `finding_counts` are computed from every finding.
MAX_FINDINGS_PER_CHECK = 1_000


def _verdict_data(verdict: Verdict, kept: Mapping[int, int]) -> dict[str, Any]:
    """A verdict; its findings as indexes into the model's (kept) findings."""
    return {
        "verdict": verdict.verdict,
        "reasons": list(verdict.reasons),
        "fixes": list(verdict.fixes),
        "coverage": {k: dict(v) for k, v in verdict.coverage.items()},
        "findings": [kept[i] for i in verdict.findings if i in kept],
    }


def bounded(
    findings: Sequence[Finding], limit: int | None = None
) -> tuple[dict[int, int], list[dict[str, Any]]]:
    """The findings a report lists: at most `limit` (`MAX_FINDINGS_PER_CHECK`) per check and
    status, the first ones (each check orders its findings worst or busiest first).

    Returns the kept findings (index in `findings` -> index in the report) and, per check and
    status in order of first appearance, how many findings there were and how many were
    left out, so every format can say so."""
    limit = MAX_FINDINGS_PER_CHECK if limit is None else limit
    kept: dict[int, int] = {}
    seen: dict[tuple[str, str], int] = {}
    for index, finding in enumerate(findings):
        key = (finding.check_id, finding.status)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] <= limit:
            kept[index] = len(kept)
    counts = [
        {"check_id": check, "status": status, "findings": n, "left_out": max(0, n - limit)}
        for (check, status), n in seen.items()
    ]
    return kept, counts


def _findings_data(result: AssessmentResult, kept: Mapping[int, int]) -> list[dict[str, Any]]:
    spec = assessment()
    out = []
    for original in kept:
        index, judged = kept[original], result.findings[original]
        f = judged.finding
        meta = CHECKS[f.check_id].meta if f.check_id in CHECKS else None
        out.append(
            {
                "index": index,
                "check_id": f.check_id,
                "title": meta.title if meta else f.check_id,
                "answers": list(meta.answers) if meta else [],
                # The answers this finding bears on (a query gap only where a check reads it).
                "relevant_answers": [a.id for a in spec.answers if relevant(f, a)],
                "status": f.status,
                "severity": f.severity,
                "environment_id": f.environment_id,
                "environment": result.environments.get(f.environment_id or ""),
                "resource_kind": f.resource_kind,
                "resource_id": f.resource_id,
                "resource_name": f.resource_name,
                "message": f.message,
                "values": dict(f.values),
                "evidence": [dict(r) for r in f.evidence],
                "suppressed": judged.suppressed_by is not None,
                "suppression_reason": judged.suppressed_by,
                "learn_url": meta.learn_url if meta else None,
                "remediation": meta.remediation if meta else None,
            }
        )
    return out


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def chart_data(evidence: Evidence, names: Mapping[str, str]) -> dict[str, Any]:
    """The figures the HTML charts draw: runs and failures per day, the slowest steps and
    flows by p95, the noisiest flows, and queue latency per environment."""
    runs = evidence.runs
    per_day = pd.DataFrame(columns=["day", "runs", "failed"])
    if not runs.empty:
        day = runs["start_time"].dt.strftime("%Y-%m-%d")
        per_day = (
            runs.assign(day=day)
            .groupby("day", dropna=True)
            .agg(runs=("run_name", "size"), failed=("failed", "sum"))
            .reset_index()
        )
    flows = evidence.flow_names().set_index(["environment_id", "flow_id"])["display_name"]

    def flow_name(env: Any, flow_id: Any) -> str:
        name = flows.get((env, flow_id))
        return str(name) if isinstance(name, str) else str(flow_id)

    steps = evidence.steps
    steps = steps[steps["p95_ms"].notna()].sort_values("p95_ms", ascending=False).head(CHART_ROWS)
    slowest_steps = [
        {
            "environment": names.get(str(r.environment_id), str(r.environment_id)),
            "name": r.name if isinstance(r.name, str) else str(r.stepid),
            "executions": int(r.executions),
            "p50_ms": plain(r.p50_ms),
            "p95_ms": plain(r.p95_ms),
            "p99_ms": plain(r.p99_ms),
            "max_ms": plain(r.max_ms),
        }
        for r in rows(steps)
    ]
    summary = evidence.run_summary
    timed = summary[summary["duration_p95_ms"].notna()].sort_values(
        "duration_p95_ms", ascending=False
    )
    slowest_flows = [
        {
            "environment": names.get(str(r.environment_id), str(r.environment_id)),
            "name": flow_name(r.environment_id, r.flow_id),
            "runs": int(r.runs),
            "p50_ms": plain(r.duration_p50_ms),
            "p95_ms": plain(r.duration_p95_ms),
            "p99_ms": plain(r.duration_p99_ms),
            "max_ms": plain(r.duration_max_ms),
        }
        for r in rows(timed.head(CHART_ROWS))
    ]
    rates = evidence.action_results["unnecessary"]
    rates = rates[rates["extrapolated_unnecessary"].notna()].sort_values(
        "extrapolated_unnecessary", ascending=False
    )
    noisy = [
        {
            "environment": names.get(str(r.environment_id), str(r.environment_id)),
            "name": flow_name(r.environment_id, r.flow_id),
            "finished_runs": plain(r.finished_runs),
            "estimated_unnecessary": plain(r.extrapolated_unnecessary),
            "rate": plain(r.rate),
            "rate_low": plain(r.rate_low),
            "rate_high": plain(r.rate_high),
            "sampled": int(r.sampled),
        }
        for r in rows(rates.head(CHART_ROWS))
        if (r.extrapolated_unnecessary or 0) > 0
    ]
    queue = [
        {"environment": names.get(str(env), str(env)), "p95_ms": plain(value)}
        for env, value in evidence.queue_latency.items()
    ]
    return {
        "runs_per_day": _records(per_day.sort_values("day")) if not per_day.empty else [],
        "slowest_steps": slowest_steps,
        "slowest_flows": slowest_flows,
        "noisy_flows": noisy,
        "queue_latency": queue,
    }


def build_report(
    store: Store,
    scan_id: int | None = None,
    *,
    mutelist: Sequence[MuteEntry] = (),
    generated: datetime | None = None,
    version: str = __version__,
) -> dict[str, Any]:
    """The report model of a scan (default: the latest) from the store alone."""
    scan = store.scan(scan_id) if scan_id is not None else store.latest_scan()
    if scan is None:
        raise StoreError(f"the store {store.path} holds no scan", hint="Run `auditor scan`.")
    view = open_scan(store, scan)
    about = {"kind": "scan", "id": scan.scan_id, "status": scan.status}
    return report_model(
        view.evidence,
        view.finding_list(),
        about,
        mutelist=mutelist,
        generated=generated,
        version=version,
    )


def report_model(
    evidence: Evidence,
    findings: Sequence[Finding],
    about: Mapping[str, Any],
    *,
    mutelist: Sequence[MuteEntry] = (),
    generated: datetime | None = None,
    version: str = __version__,
) -> dict[str, Any]:
    """The report model of findings over the frames they were judged on.

    `about` says what was judged: `kind` (`scan`, or `lint` for exported solution files),
    `id` and `status`, and for lint the `inputs` given. One model for both, so a tenant scan
    and a lint of the files that will be deployed to it read the same way in every format.
    """
    frames = evidence.frames
    window = frames.window
    envs = evidence.environments
    names = evidence.environment_names
    result = assess(findings, names, mutelist=mutelist)
    kept, counts = bounded([judged.finding for judged in result.findings])
    spec = assessment()
    answers = []
    for k, answer in enumerate(spec.answers):
        answers.append(
            {
                "id": answer.id,
                "title": answer.title,
                "paraphrase": answer.paraphrase,
                "condition": answer.condition,
                "references": list(answer.references),
                "checks": list(answer.checks),
                **_verdict_data(result.scope[k], kept),
                "environments": [
                    {
                        "environment_id": env,
                        "environment": names[env],
                        **_verdict_data(result.by_environment[env][k], kept),
                    }
                    for env in names
                ],
            }
        )
    queries = frames.scan_queries.sort_values(["environment_id", "query_id"])
    return {
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": "auditor", "version": version},
        "generated": (generated or datetime.now(UTC)).astimezone(UTC).isoformat(),
        "question": {
            "id": spec.question_id,
            "title": spec.title,
            "summary": spec.summary,
            "url": spec.url,
        },
        "scan": {
            **dict(about),
            "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
            "environments": [
                {
                    "id": str(r.environment_id),
                    "name": str(r.name),
                    "has_dataverse": bool(r.has_dataverse),
                }
                for r in rows(envs)
            ],
        },
        "verdict": result.worst(),
        "answers": answers,
        "findings": _findings_data(result, kept),
        "finding_counts": counts,
        "coverage": {
            "queries": _records(
                queries.loc[:, ["environment_id", "query_id", "status", "rows", "reason", "hint"]]
            ),
            "trace_logging": _records(
                evidence.trace_coverage.loc[:, ["environment_id", "setting", "evidence"]]
            ),
        },
        "charts": chart_data(evidence, names),
    }


__all__ = [
    "MAX_FINDINGS_PER_CHECK",
    "SCHEMA_VERSION",
    "bounded",
    "build_report",
    "chart_data",
    "report_model",
]
