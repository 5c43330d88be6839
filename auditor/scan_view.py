"""One scan as the analysis, the reports and the investigation commands see it.

The chain "pick the window and environments of a scan, load its frames, build the evidence,
read the stored findings" is written here once. A view has one of two windows:

- a fresh one, `window` long up to the scan's window end (the tenant's clock at that scan),
  for environments the user names: what `auditor analyze` judges, and what the
  investigation commands look at;
- the one `auditor analyze` stored with the scan, with its environments and the findings it
  stored: what a report renders and `auditor history` compares.

Picking the scan stays with the caller (the latest, or one the user named), which says in
its own words what to do when there is none. `auditor lint` does not use a view: its frames
come from files, not from a scan, and its findings are computed, not stored.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pandas as pd

from auditor.checks.base import Finding
from auditor.checks.evidence import Evidence
from auditor.engine.reducer import Reducer
from auditor.engine.sources import ROW_TABLES
from auditor.errors import UsageError
from auditor.frames import Frames, Window, load_frames
from auditor.store import FINDING_COLUMNS, ScanInfo, Store, StoreError


@dataclass(frozen=True)
class AnalysedScan:
    """A scan with the window and environments `auditor analyze` judged, and the findings it
    stored (rows of the store's `findings` table, in the order they were found)."""

    scan: ScanInfo
    window: Window
    environments: list[str] | None  # None: every environment
    findings: pd.DataFrame

    def finding_list(self) -> list[Finding]:
        """The stored findings as `Finding`s."""
        return findings_of(self.findings)


@dataclass(frozen=True)
class ScanView(AnalysedScan):
    """A scan's window with its frames and the evidence the checks read."""

    frames: Frames
    evidence: Evidence


def open_analysis(store: Store, scan: ScanInfo) -> AnalysedScan:
    """What `auditor analyze` stored for a scan; a StoreError when it was not analysed."""
    stored = store.analysis(scan.scan_id)
    if stored is None:
        raise StoreError(
            f"scan {scan.scan_id} has not been analysed",
            hint="Run `auditor analyze` (it analyses the latest scan), then report on it.",
        )
    return AnalysedScan(
        scan=scan,
        window=Window(stored.window_start, stored.window_end),
        environments=stored.environments,
        findings=store.findings(scan.scan_id),
    )


def open_scan(
    store: Store,
    scan: ScanInfo,
    *,
    window: timedelta | None = None,
    environments: Sequence[str] = (),
    engine: str | None = "duckdb",
    lake: Path | None = None,
) -> ScanView:
    """The view of a scan: with `window`, a fresh window that long up to the scan's window
    end, of the `environments` named (names or ids; none: all) and without findings;
    without it, the window, environments and findings `auditor analyze` stored.

    With an `engine` (duckdb, spark) the row tables stay where they are (the store, or the
    `lake` folder where it holds them) and are reduced there; the view's evidence then
    needs the store open. Without one, every row is loaded into pandas (the investigation
    commands, which list rows, and outlive the store).
    """
    if window is None:
        analysed = open_analysis(store, scan)
    else:
        analysed = AnalysedScan(
            scan=scan,
            window=Window.last(window, scan.window_end),
            environments=resolve_environments(store, environments),
            findings=pd.DataFrame(
                columns=list(FINDING_COLUMNS)
            ),  # stored ones judged another window
        )
    if engine is None:
        frames = load_frames(store, window=analysed.window, environments=analysed.environments)
        evidence = Evidence(frames)
    else:
        frames = load_frames(
            store, window=analysed.window, environments=analysed.environments, skip=ROW_TABLES
        )
        store.release_cache()
        reducer = Reducer.over_store(
            store, analysed.window, analysed.environments, engine=engine, lake=lake
        )
        evidence = Evidence(frames, reducer)
        try:
            evidence.reduce()
        except BaseException:
            evidence.close()
            raise
        store.release_cache()
    return ScanView(
        scan=analysed.scan,
        window=analysed.window,
        environments=analysed.environments,
        findings=analysed.findings,
        frames=frames,
        evidence=evidence,
    )


def resolve_environments(store: Store, wanted: Sequence[str]) -> list[str] | None:
    """Environment ids for names or ids given by the user; None = every environment."""
    if not wanted:
        return None
    by_key: dict[str, str] = {}
    for env_id, name in store.environment_names().items():
        by_key[env_id.lower()] = env_id
        if name is not None:
            by_key.setdefault(name.lower(), env_id)
    out = []
    for item in wanted:
        found = by_key.get(item.strip().lower())
        if found is None:
            close = difflib.get_close_matches(item.lower(), list(by_key), n=3)
            raise UsageError(
                f"no environment {item!r} in the store"
                + (f"; did you mean {', '.join(close)}?" if close else ""),
                hint="`auditor environments` lists them; give a display name or an id.",
            )
        out.append(found)
    return out


def findings_of(rows: pd.DataFrame) -> list[Finding]:
    """Stored findings rows as `Finding`s (`measured` and `evidence` are JSON text)."""
    out = []
    for row in rows.to_dict("records"):
        out.append(
            Finding(
                check_id=str(row["check_id"]),
                status=str(row["status"]),
                severity=str(row["severity"]),
                environment_id=None
                if pd.isna(row["environment_id"])
                else str(row["environment_id"]),
                resource_kind=str(row["resource_kind"]),
                resource_id=None if pd.isna(row["resource_id"]) else str(row["resource_id"]),
                resource_name=None if pd.isna(row["resource_name"]) else str(row["resource_name"]),
                message=str(row["message"]),
                values=json.loads(row["measured"]) if isinstance(row["measured"], str) else {},
                evidence=tuple(json.loads(row["evidence"]))
                if isinstance(row["evidence"], str)
                else (),
            )
        )
    return out


__all__ = [
    "AnalysedScan",
    "ScanView",
    "findings_of",
    "open_analysis",
    "open_scan",
    "resolve_environments",
]
