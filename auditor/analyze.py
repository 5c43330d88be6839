"""`auditor analyze`: every check over the store, offline, with the findings stored per scan.

Reads only the store (docs/architecture.md): the view of the latest scan (`scan_view`), whose
frames cover the analysis window (by default the 7 days up to the scan's window end, so
analysing later gives the same answer) and the chosen environments, then runs the check
catalog and replaces the findings stored for that scan. Reports (`auditor report`) and history read
them back from the store.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from auditor.checks import REGISTRY, Check, Finding, limits_for, run_checks, validate_thresholds
from auditor.frames import DEFAULT_WINDOW, Window
from auditor.scan_view import ScanView, open_scan
from auditor.settings import Settings
from auditor.store import Store, StoreError


@dataclass(frozen=True)
class Analysis:
    """What one `analyze` found, for the CLI's summary."""

    scan_id: int
    window: Window
    environments: dict[str, str]  # id -> name, the environments analysed
    findings: list[Finding]
    rows: int  # event and configuration rows measured
    seconds: float
    engine: str = "duckdb"  # what reduced the row tables
    sources: dict[str, str] = field(default_factory=dict)  # row table -> where it was read


def open_existing(
    settings: Settings, *, read_only: bool = False, files_in: Path | None = None
) -> Store:
    """The configured store; a clear error when it does not exist yet. `files_in`: the one
    folder DuckDB may write files into (see `Store.open`)."""
    path = settings.store_path
    if not path.exists():
        raise StoreError(
            f"no store at {path}",
            hint="Run `auditor collect` first (or point --store / AUDITOR_STORE at a store).",
        )
    return Store.open(path, read_only=read_only, files_in=files_in)


def findings_frame(findings: Sequence[Finding]) -> pd.DataFrame:
    """Findings as store rows: values and evidence as JSON text."""
    rows = []
    for f in findings:
        data = f.as_dict()
        data["measured"] = json.dumps(data.pop("values"), ensure_ascii=False, allow_nan=False)
        data["evidence"] = json.dumps(data["evidence"], ensure_ascii=False, allow_nan=False)
        rows.append(data)
    columns = [
        "check_id",
        "status",
        "severity",
        "environment_id",
        "resource_kind",
        "resource_id",
        "resource_name",
        "message",
        "measured",
        "evidence",
    ]
    return pd.DataFrame(rows, columns=columns)


def analyze(
    settings: Settings,
    *,
    window_length: timedelta = DEFAULT_WINDOW,
    environments: Sequence[str] = (),
    checks: Sequence[Check] = REGISTRY,
    engine: str = "duckdb",
    lake: Path | None = None,
) -> Analysis:
    """Runs the checks on the store's latest scan and stores the findings under it.

    The row tables are reduced by `engine` (duckdb, spark) where they are: in the store, or
    in the `lake` folder for the tables it holds (`auditor.engine.sources`).
    """
    validate_thresholds(settings)
    started = time.perf_counter()
    # A store opened for writing reads no other file (`Store.open`); a lake or Spark's
    # Parquet copies need file access, so the analysis then reads a read-only store and
    # the findings are written after it is closed.
    apart = lake is not None or engine != "duckdb"
    with open_existing(settings, read_only=apart) as store:
        scan = store.latest_scan()
        if scan is None:
            raise StoreError(
                f"the store {settings.store_path} holds no scan yet",
                hint="Run `auditor collect` first.",
            )
        view = open_scan(
            store,
            scan,
            window=window_length,
            environments=environments,
            engine=engine,
            lake=lake,
        )
        try:
            findings = run_checks(view.evidence, settings, checks)
            measured = view.evidence.reducer.row_counts()
            sources = view.evidence.reducer.sources
            names = view.evidence.environment_names
        finally:
            view.evidence.close()
        if not apart:
            _store_findings(store, view, settings, checks, findings)
    if apart:
        with open_existing(settings) as store:
            _store_findings(store, view, settings, checks, findings)
    rows = sum(measured.values()) + sum(
        len(view.frames.table(name)) for name in ("flows", "workflows", "plugin_steps")
    )
    return Analysis(
        scan_id=scan.scan_id,
        window=view.window,
        environments=names,
        findings=findings,
        rows=rows,
        seconds=time.perf_counter() - started,
        engine=engine,
        sources=sources,
    )


def _store_findings(
    store: Store,
    view: ScanView,
    settings: Settings,
    checks: Sequence[Check],
    findings: Sequence[Finding],
) -> None:
    store.replace_findings(
        view.scan.scan_id,
        analyzed=datetime.now(UTC),
        window_start=view.window.start,
        window_end=view.window.end,
        environments=view.environments,
        thresholds={c.id: limits_for(c.meta, settings) for c in checks},
        findings=findings_frame(findings),
    )


__all__ = ["Analysis", "analyze", "findings_frame", "open_existing"]
