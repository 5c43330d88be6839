"""The scans and what was made of them: the scan records, each query's outcome, and the
analyses with their findings (`auditor analyze`)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd

from auditor import __version__
from auditor.store.connection import StoreConnection
from auditor.store.errors import StoreError
from auditor.store.schema import FINDING_COLUMNS, QUERY_STATUSES, SCAN_STATUSES
from auditor.store.times import aware, naive


@dataclass(frozen=True)
class ScanInfo:
    """One scan as recorded in `scans`; datetimes are timezone-aware UTC."""

    scan_id: int
    started: datetime
    ended: datetime | None
    status: str
    window_start: datetime
    window_end: datetime
    arguments: dict[str, Any]


@dataclass(frozen=True)
class AnalysisRecord:
    """What `auditor analyze` analysed for a scan: its window (timezone-aware UTC) and its
    environments (None: every environment)."""

    scan_id: int
    window_start: datetime
    window_end: datetime
    environments: list[str] | None


class ScanRecords(StoreConnection):
    """The store's scans, their queries' outcomes, analyses and findings."""

    def begin_scan(
        self,
        *,
        window_start: datetime,
        window_end: datetime,
        arguments: Mapping[str, Any],
        started: datetime,
    ) -> int:
        """Records a new running scan and returns its id (1, 2, ...)."""
        text = json.dumps(dict(arguments), sort_keys=True, default=str)
        with self._transaction():
            scan_id = int(self._run("SELECT coalesce(max(scan_id), 0) + 1 FROM scans")[0][0])
            self._run(
                "INSERT INTO scans VALUES (?, ?, NULL, 'running', ?, ?, ?)",
                [scan_id, naive(started), naive(window_start), naive(window_end), text],
            )
        return scan_id

    def finish_scan(self, scan_id: int, *, status: str, ended: datetime) -> None:
        """Sets the final status (completed, partial or failed) and end time of a scan."""
        _check_choice("scan status", status, SCAN_STATUSES)
        with self._transaction():
            self.scan(scan_id)
            self._run(
                "UPDATE scans SET status = ?, ended = ? WHERE scan_id = ?",
                [status, naive(ended), scan_id],
            )

    def scan(self, scan_id: int) -> ScanInfo:
        """The scan with this id; `StoreError` when there is none."""
        rows = self._run(f"{_SCAN_SELECT} WHERE scan_id = ?", [scan_id])
        if not rows:
            raise StoreError(
                f"no scan {scan_id} in {self.path}",
                hint="Omit the scan id to use the latest scan.",
            )
        return _scan_info(rows[0])

    def latest_scan(self) -> ScanInfo | None:
        """The most recent scan, whatever its status."""
        rows = self._run(f"{_SCAN_SELECT} ORDER BY scan_id DESC LIMIT 1")
        return _scan_info(rows[0]) if rows else None

    def unfinished_scan(self) -> ScanInfo | None:
        """The most recent scan still marked running (killed or in progress), to resume."""
        rows = self._run(f"{_SCAN_SELECT} WHERE status = 'running' ORDER BY scan_id DESC LIMIT 1")
        return _scan_info(rows[0]) if rows else None

    def last_completed_window_end(self, environment_id: str) -> datetime | None:
        """Where the next scan of an environment starts: the end of the window of the latest
        completed or partial scan that collected something there (an environment that was
        not collected at all in a scan keeps the earlier start, so no window is lost)."""
        rows = self._run(
            "SELECT s.window_end FROM scans s WHERE s.status IN ('completed', 'partial')"
            " AND EXISTS (SELECT 1 FROM scan_queries q WHERE q.scan_id = s.scan_id"
            " AND q.environment_id = ? AND q.status <> 'not-collected')"
            " ORDER BY s.scan_id DESC LIMIT 1",
            [environment_id],
        )
        return aware(rows[0][0]) if rows else None

    def record_query(
        self,
        *,
        scan_id: int,
        environment_id: str,
        query_id: str,
        status: str,
        rows: int,
        requests: int,
        retries: int,
        throttled: int,
        reason: str | None = None,
        hint: str | None = None,
    ) -> None:
        """Records (or replaces) the outcome of one query in one environment of a scan."""
        _check_choice("query status", status, QUERY_STATUSES)
        with self._transaction():
            self._run(
                "INSERT OR REPLACE INTO scan_queries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    scan_id,
                    environment_id,
                    query_id,
                    status,
                    rows,
                    requests,
                    retries,
                    throttled,
                    reason,
                    hint,
                ],
            )

    def scan_queries(self, scan_id: int) -> pd.DataFrame:
        """The per-environment, per-query outcomes of a scan, ordered by environment and query."""
        return self._frame(
            "SELECT * FROM scan_queries WHERE scan_id = ? ORDER BY environment_id, query_id",
            [scan_id],
        )

    # --- analyses and findings ----------------------------------------------------------

    def replace_findings(
        self,
        scan_id: int,
        *,
        analyzed: datetime,
        window_start: datetime,
        window_end: datetime,
        environments: Sequence[str] | None,
        thresholds: Mapping[str, Any],
        findings: pd.DataFrame,
    ) -> None:
        """Stores one analysis of a scan and its findings, replacing an earlier analysis of
        the same scan in one transaction (`findings` has `FINDING_COLUMNS` but scan_id and
        seq, with `measured` and `evidence` as JSON text)."""
        frame = findings.reindex(
            columns=[c for c in FINDING_COLUMNS if c not in ("scan_id", "seq")]
        )
        frame.insert(0, "seq", range(1, len(frame) + 1))
        frame.insert(0, "scan_id", scan_id)
        with self._transaction(f"storing the findings of scan {scan_id}"):
            self._run("DELETE FROM findings WHERE scan_id = ?", [scan_id])
            self._run("DELETE FROM analyses WHERE scan_id = ?", [scan_id])
            self._run(
                "INSERT INTO analyses VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    scan_id,
                    naive(analyzed),
                    naive(window_start),
                    naive(window_end),
                    json.dumps(list(environments)) if environments is not None else None,
                    json.dumps(thresholds, sort_keys=True),
                    __version__,
                ],
            )
            if not frame.empty:
                with self._guard():
                    self._con.register("_auditor_findings", frame)
                try:
                    self._run("INSERT INTO findings SELECT * FROM _auditor_findings")
                finally:
                    with self._guard():
                        self._con.unregister("_auditor_findings")

    def findings(self, scan_id: int) -> pd.DataFrame:
        """The stored findings of a scan, in the order they were found (empty if none)."""
        return self._frame("SELECT * FROM findings WHERE scan_id = ? ORDER BY seq", [scan_id])

    def analysed_scans(self) -> list[int]:
        """Scans that have stored findings, oldest first."""
        return [int(r[0]) for r in self._run("SELECT scan_id FROM analyses ORDER BY scan_id")]

    def analysis(self, scan_id: int) -> AnalysisRecord | None:
        """The window and environments `auditor analyze` stored for a scan; None when the
        scan was not analysed."""
        rows = self._run(
            "SELECT window_start, window_end, environments FROM analyses WHERE scan_id = ?",
            [scan_id],
        )
        if not rows:
            return None
        start, end, environments = rows[0]
        return AnalysisRecord(
            scan_id=scan_id,
            window_start=aware(start),
            window_end=aware(end),
            environments=json.loads(environments) if isinstance(environments, str) else None,
        )

    def has_scan(self, scan_id: int) -> bool:
        """Whether the store holds a scan with this id, whatever its status."""
        return bool(self._run("SELECT 1 FROM scans WHERE scan_id = ?", [scan_id]))


_SCAN_SELECT = (
    "SELECT scan_id, started, ended, status, window_start, window_end, arguments FROM scans"
)


def _scan_info(row: tuple[Any, ...]) -> ScanInfo:
    scan_id, started, ended, status, window_start, window_end, arguments = row
    try:
        parsed = json.loads(arguments) if arguments else {}
    except ValueError:
        parsed = {}
    return ScanInfo(
        scan_id=int(scan_id),
        started=aware(started),
        ended=aware(ended) if ended is not None else None,
        status=str(status),
        window_start=aware(window_start),
        window_end=aware(window_end),
        arguments=parsed if isinstance(parsed, dict) else {},
    )


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, got {value!r}")
