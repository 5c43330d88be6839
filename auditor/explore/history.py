"""`auditor history`: how the tenant changes from scan to scan.

Where each figure of a scan comes from, and why:

- **Verdicts, failure rate, unnecessary runs** come from the findings `auditor analyze`
  stored with the scan (no mutelist applied). Those are frozen when the scan is analysed,
  while the store's data moves on: configuration tables (flows, steps, definitions) are
  replaced by every collection and a flow's action sample by its latest one, so recomputing
  an old scan today would judge old runs by today's flows. The failure rate is the failed
  runs over all runs added up from `flow-failure-rate`; unnecessary runs are the estimates
  of `flow-unnecessary-runs` added up; both are exactly what the verdicts rested on.
- **p95 durations** are recomputed from the store's rows over the window (and environments)
  each scan analysed: the findings carry p95s of single steps and actions, never one of all
  plug-in executions or all flow runs, and percentiles cannot be added up. A finished
  execution's duration never changes, so this is what the scan saw, plus any rows of that
  window collected later. Flow runs are taken as the analysis takes them (the flow API's,
  or Dataverse's for flows the API gave none); the percentile is numpy's linear one.

Trends compare each scan with the one before it: an arrow per figure (a change under
`tolerance`, relative, is →) and a regression where a verdict got worse or a figure rose by
more than the tolerance (all four figures are better lower).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import pandas as pd

from auditor.analysis.common import number
from auditor.analysis.runs import runs_from_frames
from auditor.assessment import assess, assessment, fails_at
from auditor.explore.common import analysed, environment_names, require_scan
from auditor.frames import Frames, Window
from auditor.scan_view import open_analysis, resolve_environments
from auditor.store import Store

TOLERANCE = 0.10  # relative change below which a figure is steady
METRICS: tuple[tuple[str, str], ...] = (
    ("failure_rate", "flow failure rate"),
    ("unnecessary_runs", "unnecessary runs"),
    ("plugin_p95_ms", "plug-in p95"),
    ("flow_p95_ms", "flow run p95"),
)
UP, DOWN, STEADY = "↑", "↓", "→"


@dataclass(frozen=True)
class ScanFigures:
    """One row of the history."""

    scan_id: int
    time: datetime  # the scan's window end: the tenant's clock when it was collected
    status: str
    window_start: datetime
    window_end: datetime
    verdicts: Mapping[str, str | None]  # answer id -> verdict (None: not analysed there)
    runs: int | None
    failed_runs: int | None
    failure_rate: float | None
    unnecessary_runs: float | None
    plugin_p95_ms: float | None
    flow_p95_ms: float | None
    trends: Mapping[str, str] = field(default_factory=dict)  # metric -> arrow
    regressions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "scan_id": self.scan_id,
            "time": self.time.isoformat(),
            "status": self.status,
            "window": {"start": self.window_start.isoformat(), "end": self.window_end.isoformat()},
            "verdicts": dict(self.verdicts),
            "runs": self.runs,
            "failed_runs": self.failed_runs,
            "failure_rate": _round(self.failure_rate),
            "unnecessary_runs": _round(self.unnecessary_runs),
            "plugin_p95_ms": _round(self.plugin_p95_ms),
            "flow_p95_ms": _round(self.flow_p95_ms),
            "trends": dict(self.trends),
            "regressions": list(self.regressions),
        }


@dataclass(frozen=True)
class History:
    """Every analysed scan, oldest first, for the scope or one environment."""

    environment_id: str | None
    environment: str | None
    answers: tuple[str, ...]
    scans: tuple[ScanFigures, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "environment_id": self.environment_id,
            "environment": self.environment,
            "answers": list(self.answers),
            "scans": [s.as_dict() for s in self.scans],
        }


def history(
    store: Store, environment: str | None = None, *, tolerance: float = TOLERANCE
) -> History:
    """The figures of every analysed scan with trends against the scan before."""
    require_scan(store)
    env_id: str | None = None
    env_name: str | None = None
    names = environment_names(store)
    if environment is not None:
        env_id = (resolve_environments(store, [environment]) or [environment])[0]
        env_name = names.get(env_id, env_id)
    scans = analysed(store)
    answers = tuple(a.id for a in assessment().answers)
    rows = [_figures(store, scan_id, env_id, answers, names) for scan_id in scans]
    return History(env_id, env_name, answers, tuple(with_trends(rows, tolerance)))


def _figures(
    store: Store,
    scan_id: int,
    env_id: str | None,
    answers: Sequence[str],
    names: Mapping[str, str],
) -> ScanFigures:
    analysed = open_analysis(store, store.scan(scan_id))
    scan, window, findings = analysed.scan, analysed.window, analysed.findings
    envs = list(analysed.environments) if analysed.environments is not None else list(names)
    # Environments a finding names but the environments table lacks still count.
    for extra in findings["environment_id"].dropna().astype("str"):
        if extra not in envs:
            envs.append(extra)
    result = assess(analysed.finding_list(), {e: names.get(e, e) for e in envs})
    if env_id is None:
        verdicts: dict[str, str | None] = {v.answer_id: v.verdict for v in result.scope}
        mine = findings
        scope = envs
    elif env_id in result.by_environment:
        verdicts = {v.answer_id: v.verdict for v in result.by_environment[env_id]}
        mine = findings[findings["environment_id"] == env_id]
        scope = [env_id]
    else:  # that scan did not analyse the environment
        verdicts = dict.fromkeys(answers)
        mine = findings.iloc[0:0]
        scope = []
    runs, failed = (
        _sum(mine, "flow-failure-rate", "runs"),
        _sum(mine, "flow-failure-rate", "failed"),
    )
    plugin_p95, flow_p95 = durations_p95(store, window, scope)
    return ScanFigures(
        scan_id=scan_id,
        time=scan.window_end,
        status=scan.status,
        window_start=window.start,
        window_end=window.end,
        verdicts=verdicts,
        runs=None if runs is None else int(runs),
        failed_runs=None if failed is None else int(failed),
        failure_rate=failed / runs if runs and failed is not None else None,
        unnecessary_runs=_sum(mine, "flow-unnecessary-runs", "estimated_unnecessary"),
        plugin_p95_ms=plugin_p95,
        flow_p95_ms=flow_p95,
    )


def _sum(findings: pd.DataFrame, check_id: str, key: str) -> float | None:
    """A measured value of a check's findings added up; None when no finding measured it."""
    values = [
        value
        for text in findings.loc[findings["check_id"] == check_id, "measured"]
        if isinstance(text, str)
        for value in [json.loads(text).get(key)]
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    ]
    return float(sum(values)) if values else None


def durations_p95(
    store: Store, window: Window, environments: Sequence[str]
) -> tuple[float | None, float | None]:
    """(p95 of every plug-in execution, p95 of every finished flow run) in the window, ms."""
    if not environments:
        return None, None
    rows = store.duration_rows(window.start, window.end, environments)
    traces = rows["plugintracelogs"]
    plugin = number(traces["performanceexecutionduration"])
    # Only what times runs and maps them to flows is read: no definitions, no messages.
    frames = Frames.from_frames(
        window,
        flow_api_runs=rows["flow_api_runs"],
        flowruns=rows["flowruns"],
        flows=rows["flows"],
        workflows=rows["workflows"],
    )
    runs = runs_from_frames(frames)
    timed = runs.loc[runs["finished"] & runs["duration_ms"].notna(), "duration_ms"]
    return _p95(plugin[plugin >= 0]), _p95(timed.astype("float64"))


def _p95(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.quantile(0.95)) if not values.empty else None


def with_trends(rows: Sequence[ScanFigures], tolerance: float = TOLERANCE) -> list[ScanFigures]:
    """The rows with arrows and regressions against the row before each."""
    out: list[ScanFigures] = []
    for k, row in enumerate(rows):
        if k == 0:
            out.append(row)
            continue
        before = rows[k - 1]
        trends: dict[str, str] = {}
        regressions: list[str] = []
        for metric, label in METRICS:
            old, new = getattr(before, metric), getattr(row, metric)
            arrow = trend(old, new, tolerance)
            if arrow is None:
                continue
            trends[metric] = arrow
            if arrow == UP:
                regressions.append(
                    f"{label} {format_metric(metric, old)} → {format_metric(metric, new)}"
                )
        for answer, verdict in row.verdicts.items():
            old_verdict = before.verdicts.get(answer)
            if (
                verdict
                and old_verdict
                and verdict != old_verdict
                and fails_at(verdict, old_verdict)
            ):
                regressions.append(f"{answer} {old_verdict} → {verdict}")
        out.append(replace(row, trends=trends, regressions=tuple(regressions)))
    return out


def trend(old: float | None, new: float | None, tolerance: float = TOLERANCE) -> str | None:
    """↑, ↓ or → from `old` to `new`; None when either is unknown."""
    if old is None or new is None:
        return None
    change = new - old
    scale = max(abs(old), abs(new))
    if scale == 0 or abs(change) <= tolerance * scale:
        return STEADY
    return UP if change > 0 else DOWN


def format_metric(metric: str, value: float | None) -> str:
    """A figure as people read it: a percentage, a count or a duration."""
    if value is None:
        return "-"
    if metric == "failure_rate":
        return f"{value:.1%}"
    if metric == "unnecessary_runs":
        return f"{value:,.0f}"
    if value < 1000:
        return f"{value:.0f} ms"
    if value < 60_000:
        return f"{value / 1000:.1f} s"
    if value < 3_600_000:
        return f"{value / 60_000:.1f} min"
    return f"{value / 3_600_000:.1f} h"


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


__all__ = [
    "METRICS",
    "History",
    "ScanFigures",
    "durations_p95",
    "format_metric",
    "history",
    "trend",
    "with_trends",
]
