"""`auditor history` and `auditor diff`: how the tenant changes from scan to scan.

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

from auditor.analysis.runs import runs_from_frames
from auditor.assessment import assess, assessment, fails_at
from auditor.errors import UsageError
from auditor.explore.common import require_scan
from auditor.frames import Frames, Window
from auditor.scan_view import open_analysis, resolve_environments
from auditor.store import Store, StoreError

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
    names = _environment_names(store)
    if environment is not None:
        env_id = (resolve_environments(store, [environment]) or [environment])[0]
        env_name = names.get(env_id, env_id)
    scans = analysed(store)
    answers = tuple(a.id for a in assessment().answers)
    rows = [_figures(store, scan_id, env_id, answers, names) for scan_id in scans]
    return History(env_id, env_name, answers, tuple(with_trends(rows, tolerance)))


def analysed(store: Store) -> list[int]:
    """The analysed scans, oldest first; a clear error when there is none."""
    scans = store.analysed_scans()
    if not scans:
        latest = require_scan(store)
        raise StoreError(
            f"no scan in {store.path} has been analysed (the latest is scan {latest})",
            hint="Run `auditor analyze`: it analyses the latest scan and stores its findings.",
        )
    return scans


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
    plugin = pd.to_numeric(traces["performanceexecutionduration"], errors="coerce").astype(
        "float64"
    )
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


# --- diff ----------------------------------------------------------------------------------

KEY = ("check_id", "environment_id", "resource_id")


@dataclass(frozen=True)
class FindingsDiff:
    """What changed in the findings from scan A to scan B."""

    scan_a: int
    scan_b: int
    appeared: tuple[dict[str, Any], ...]  # fail in B, not in A
    disappeared: tuple[dict[str, Any], ...]  # fail in A, not in B
    changed: tuple[dict[str, Any], ...]  # in both, status or message changed otherwise

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "scan_a": self.scan_a,
            "scan_b": self.scan_b,
            "appeared": list(self.appeared),
            "disappeared": list(self.disappeared),
            "changed": list(self.changed),
        }


def parse_scan(store: Store, text: str) -> int:
    """A scan given on the command line: a number, `latest` or `previous` (analysed ones)."""
    scans = analysed(store)
    value = text.strip().lower()
    if value in ("latest", "previous"):
        if value == "previous" and len(scans) < 2:
            raise UsageError("there is no previous analysed scan", hint=_scans_hint(scans))
        return scans[-1] if value == "latest" else scans[-2]
    if not value.isdigit():
        raise UsageError(
            f"a scan is a number, latest or previous; got {text!r}", hint=_scans_hint(scans)
        )
    scan_id = int(value)
    if scan_id not in scans:
        what = "has not been analysed" if store.has_scan(scan_id) else "is not in the store"
        raise UsageError(f"scan {scan_id} {what}", hint=_scans_hint(scans))
    return scan_id


def _scans_hint(scans: Sequence[int]) -> str:
    return (
        f"Analysed scans: {', '.join(map(str, scans))}; `auditor history` lists them with "
        "their dates."
    )


def diff(store: Store, scan_a: int, scan_b: int) -> FindingsDiff:
    """Findings that appeared, disappeared or changed between two analysed scans, matched by
    check, environment and resource."""
    scans = analysed(store)
    for scan_id in (scan_a, scan_b):
        if scan_id not in scans:
            raise UsageError(f"scan {scan_id} has not been analysed", hint=_scans_hint(scans))
    names = _environment_names(store)
    a = _keyed(store.findings(scan_a))
    b = _keyed(store.findings(scan_b))
    both = a.merge(b, on=[*KEY, "occurrence"], how="outer", suffixes=("_a", "_b"))
    fail_a = both["status_a"] == "fail"
    fail_b = both["status_b"] == "fail"
    appeared = fail_b & ~fail_a
    disappeared = fail_a & ~fail_b
    present = both["status_a"].notna() & both["status_b"].notna()
    changed = (
        present
        & ~appeared
        & ~disappeared
        & (
            (both["status_a"] != both["status_b"])
            | (both["message_a"].fillna("") != both["message_b"].fillna(""))
        )
    )

    def records(mask: pd.Series) -> tuple[dict[str, Any], ...]:
        picked = both[mask.fillna(False).astype(bool)].sort_values(
            ["check_id", "environment_id", "resource_id"], kind="stable", na_position="first"
        )
        return tuple(_diff_row(r, names) for r in _records(picked))

    return FindingsDiff(scan_a, scan_b, records(appeared), records(disappeared), records(changed))


def _keyed(findings: pd.DataFrame) -> pd.DataFrame:
    frame = findings.loc[
        :,
        [
            *KEY,
            "status",
            "severity",
            "resource_kind",
            "resource_name",
            "message",
        ],
    ].copy()
    for column in KEY:
        frame[column] = frame[column].astype("str").where(frame[column].notna(), "")
    # A key seen twice in a scan pairs up in order rather than multiplying.
    frame["occurrence"] = frame.groupby(list(KEY), sort=False).cumcount()
    return frame


def _diff_row(row: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    def pick(column: str) -> Any:
        for side in ("_b", "_a"):
            value = row.get(column + side)
            if isinstance(value, str):
                return value
        return None

    env = str(row["environment_id"]) or None
    status_a, status_b = _str(row.get("status_a")), _str(row.get("status_b"))
    return {
        "check_id": row["check_id"],
        "environment_id": env,
        "environment": names.get(env or "", env),
        "resource_kind": pick("resource_kind"),
        "resource_id": str(row["resource_id"]) or None,
        "resource_name": pick("resource_name"),
        "severity": pick("severity"),
        "status_a": status_a,
        "status_b": status_b,
        # For a changed finding: whether its status moved, or only its message.
        "change": "status" if status_a != status_b else "message",
        "message_a": _str(row.get("message_a")),
        "message_b": _str(row.get("message_b")),
    }


# --- small helpers -------------------------------------------------------------------------


def _environment_names(store: Store) -> dict[str, str]:
    return {e: n if n is not None else e for e, n in store.environment_names().items()}


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


__all__ = [
    "METRICS",
    "FindingsDiff",
    "History",
    "ScanFigures",
    "analysed",
    "diff",
    "durations_p95",
    "format_metric",
    "history",
    "parse_scan",
    "trend",
    "with_trends",
]
