"""One report model, from which every format is rendered (docs/how-a-scan-runs.md, "Report").

The model is typed (`auditor.report.document`): `report.json` is its one serialisation,
validated by `reports/report.schema.json`, and the renderers (Markdown, HTML, JSON, SARIF,
CSV and the terminal) only format it. It is built from the store alone: the scan, the
findings `auditor analyze` stored with it, the verdicts (`auditor.assessment`), and the
figures the charts draw, recomputed from the frames of the analysed window. Tenant text
(names, messages) is kept as it is here; each renderer escapes it for its format.
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
from auditor.report.document import (
    Answer,
    Charts,
    Coverage,
    DayRuns,
    EnvironmentAnswer,
    FindingCount,
    Generator,
    Judgement,
    NoisyFlow,
    QueryCoverage,
    Question,
    QueueLatency,
    Report,
    ReportFinding,
    Scan,
    ScannedEnvironment,
    SlowFlow,
    SlowStep,
    TraceCoverage,
    Window,
)
from auditor.scan_view import open_scan
from auditor.store import Store, StoreError

SCHEMA_VERSION = 1
CHART_ROWS = 10  # bars per chart: the worst offenders, not everything
# Findings kept per check and status. Files anyone can commit can hold 200,000 plug-in steps
# in a 500 KB zip: one finding each made 650 MB of reports. A reviewer reads the first
# hundreds; the verdicts and `finding_counts` are computed from every finding.
MAX_FINDINGS_PER_CHECK = 1_000


def _judgement(verdict: Verdict, kept: Mapping[int, int]) -> Judgement:
    """A verdict; its findings as indexes into the model's (kept) findings."""
    return Judgement(
        verdict=verdict.verdict,
        reasons=tuple(verdict.reasons),
        fixes=tuple(verdict.fixes),
        coverage={k: dict(v) for k, v in verdict.coverage.items()},
        findings=tuple(kept[i] for i in verdict.findings if i in kept),
    )


def bounded(
    findings: Sequence[Finding], limit: int | None = None
) -> tuple[dict[int, int], tuple[FindingCount, ...]]:
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
    counts = tuple(
        FindingCount(check_id=check, status=status, findings=n, left_out=max(0, n - limit))
        for (check, status), n in seen.items()
    )
    return kept, counts


def _findings(result: AssessmentResult, kept: Mapping[int, int]) -> tuple[ReportFinding, ...]:
    spec = assessment()
    out = []
    for original, index in kept.items():
        judged = result.findings[original]
        f = judged.finding
        meta = CHECKS[f.check_id].meta if f.check_id in CHECKS else None
        out.append(
            ReportFinding(
                index=index,
                check_id=f.check_id,
                title=meta.title if meta else f.check_id,
                answers=tuple(meta.answers) if meta else (),
                # The answers this finding bears on (a query gap only where a check reads it).
                relevant_answers=tuple(a.id for a in spec.answers if relevant(f, a)),
                status=f.status,
                severity=f.severity,
                environment_id=f.environment_id,
                environment=result.environments.get(f.environment_id or ""),
                resource_kind=f.resource_kind,
                resource_id=f.resource_id,
                resource_name=f.resource_name,
                message=f.message,
                values=dict(f.values),
                evidence=tuple(dict(r) for r in f.evidence),
                suppressed=judged.suppressed_by is not None,
                suppression_reason=judged.suppressed_by,
                learn_url=meta.learn_url if meta else None,
                remediation=meta.remediation if meta else None,
            )
        )
    return tuple(out)


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): plain(v) for k, v in row.items()} for row in frame.to_dict("records")]


def chart_data(evidence: Evidence, names: Mapping[str, str]) -> Charts:
    """The figures the HTML charts draw: runs and failures per day, the slowest steps and
    flows by p95, the noisiest flows, and queue latency per environment."""
    per_day = evidence.run_days
    flows = evidence.flow_names().set_index(["environment_id", "flow_id"])["display_name"]

    def flow_name(env: Any, flow_id: Any) -> str:
        name = flows.get((env, flow_id))
        return str(name) if isinstance(name, str) else str(flow_id)

    steps = evidence.steps
    # Steps only: trace rows without a step (workflow activities) have no name to chart.
    steps = steps[steps["p95_ms"].notna() & steps["stepid"].notna()]
    steps = steps.sort_values("p95_ms", ascending=False).head(CHART_ROWS)
    slowest_steps = tuple(
        SlowStep(
            environment=names.get(str(r.environment_id), str(r.environment_id)),
            name=r.name if isinstance(r.name, str) else str(r.stepid),
            executions=int(r.executions),
            p50_ms=plain(r.p50_ms),
            p95_ms=plain(r.p95_ms),
            p99_ms=plain(r.p99_ms),
            max_ms=plain(r.max_ms),
        )
        for r in rows(steps)
    )
    summary = evidence.run_summary
    timed = summary[summary["duration_p95_ms"].notna()].sort_values(
        "duration_p95_ms", ascending=False
    )
    slowest_flows = tuple(
        SlowFlow(
            environment=names.get(str(r.environment_id), str(r.environment_id)),
            name=flow_name(r.environment_id, r.flow_id),
            runs=int(r.runs),
            p50_ms=plain(r.duration_p50_ms),
            p95_ms=plain(r.duration_p95_ms),
            p99_ms=plain(r.duration_p99_ms),
            max_ms=plain(r.duration_max_ms),
        )
        for r in rows(timed.head(CHART_ROWS))
    )
    rates = evidence.action_results["unnecessary"]
    rates = rates[rates["extrapolated_unnecessary"].notna()].sort_values(
        "extrapolated_unnecessary", ascending=False
    )
    noisy = tuple(
        NoisyFlow(
            environment=names.get(str(r.environment_id), str(r.environment_id)),
            name=flow_name(r.environment_id, r.flow_id),
            finished_runs=plain(r.finished_runs),
            estimated_unnecessary=plain(r.extrapolated_unnecessary),
            rate=plain(r.rate),
            rate_low=plain(r.rate_low),
            rate_high=plain(r.rate_high),
            sampled=int(r.sampled),
        )
        for r in rows(rates.head(CHART_ROWS))
        if (r.extrapolated_unnecessary or 0) > 0
    )
    queue = tuple(
        QueueLatency(environment=names.get(str(env), str(env)), p95_ms=plain(value))
        for env, value in evidence.queue_latency.items()
    )
    per_day_rows = _records(per_day.sort_values("day")) if not per_day.empty else []
    return Charts(
        runs_per_day=tuple(DayRuns(**row) for row in per_day_rows),
        slowest_steps=slowest_steps,
        slowest_flows=slowest_flows,
        noisy_flows=noisy,
        queue_latency=queue,
    )


def build_report(
    store: Store,
    scan_id: int | None = None,
    *,
    mutelist: Sequence[MuteEntry] = (),
    generated: datetime | None = None,
    version: str = __version__,
) -> Report:
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
) -> Report:
    """The report model of findings over the frames they were judged on.

    `about` says what was judged: `kind` (`scan`, or `lint` for exported solution files),
    `id` and `status`, and for lint the `inputs` given. One model for both, so a tenant scan
    and a lint of the files that will be deployed to it read the same way in every format.
    """
    frames = evidence.frames
    window = frames.window
    names = evidence.environment_names
    result = assess(findings, names, mutelist=mutelist)
    kept, counts = bounded([judged.finding for judged in result.findings])
    spec = assessment()
    answers = tuple(
        Answer(
            id=answer.id,
            title=answer.title,
            paraphrase=answer.paraphrase,
            condition=answer.condition,
            references=tuple(answer.references),
            checks=tuple(answer.checks),
            judgement=_judgement(result.scope[k], kept),
            environments=tuple(
                EnvironmentAnswer(
                    environment_id=env,
                    environment=names[env],
                    judgement=_judgement(result.by_environment[env][k], kept),
                )
                for env in names
            ),
        )
        for k, answer in enumerate(spec.answers)
    )
    inputs = about.get("inputs")
    return Report(
        schema_version=SCHEMA_VERSION,
        generator=Generator(name="auditor", version=version),
        generated=(generated or datetime.now(UTC)).astimezone(UTC).isoformat(),
        question=Question(
            id=spec.question_id, title=spec.title, summary=spec.summary, url=spec.url
        ),
        scan=Scan(
            kind=str(about["kind"]),
            id=int(about["id"]),
            status=str(about["status"]),
            inputs=tuple(inputs) if inputs is not None else None,
            window=Window(start=window.start.isoformat(), end=window.end.isoformat()),
            environments=tuple(
                ScannedEnvironment(
                    id=str(r.environment_id), name=str(r.name), has_dataverse=bool(r.has_dataverse)
                )
                for r in rows(evidence.environments)
            ),
        ),
        verdict=result.worst(),
        answers=answers,
        findings=_findings(result, kept),
        finding_counts=counts,
        coverage=_coverage(evidence),
        charts=chart_data(evidence, names),
    )


def _coverage(evidence: Evidence) -> Coverage:
    """What each environment's queries collected, and its plug-in trace setting."""
    queries = evidence.frames.scan_queries.sort_values(["environment_id", "query_id"])
    columns = ["environment_id", "query_id", "status", "rows", "reason", "hint"]
    trace = evidence.trace_coverage.loc[:, ["environment_id", "setting", "evidence"]]
    return Coverage(
        queries=tuple(QueryCoverage(**row) for row in _records(queries.loc[:, columns])),
        trace_logging=tuple(TraceCoverage(**row) for row in _records(trace)),
    )


__all__ = [
    "MAX_FINDINGS_PER_CHECK",
    "SCHEMA_VERSION",
    "bounded",
    "build_report",
    "chart_data",
    "report_model",
]
