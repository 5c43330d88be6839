"""`auditor analyze`: every check over the store, offline, with the findings stored per scan.

Reads only the store (design.md section 3): the frames of the analysis window (by default
the 7 days up to the latest scan's window end, so analysing later gives the same answer) and
of the chosen environments, then runs the check catalog and replaces the findings stored for
that scan. Reports (issue 6) and history read them back from the store.
"""

from __future__ import annotations

import difflib
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from auditor.checks import REGISTRY, Check, Finding, limits_for, run_checks, validate_thresholds
from auditor.checks.evidence import Evidence
from auditor.errors import UsageError
from auditor.frames import DEFAULT_WINDOW, Window, load_frames
from auditor.settings import Settings
from auditor.store import Store, StoreError


@dataclass(frozen=True)
class Analysis:
    """What one `analyze` found, for the CLI's summary."""

    scan_id: int
    window: Window
    environments: dict[str, str]  # id -> name, the environments analysed
    findings: list[Finding]
    rows: int  # event and configuration rows read from the store
    seconds: float


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


def resolve_environments(store: Store, wanted: Sequence[str]) -> list[str] | None:
    """Environment ids for names or ids given by the user; None = every environment."""
    if not wanted:
        return None
    known = store.frame("SELECT environment_id, display_name FROM environments")
    by_key: dict[str, str] = {}
    for env_id, name in zip(known["environment_id"], known["display_name"], strict=True):
        by_key[str(env_id).lower()] = str(env_id)
        if isinstance(name, str):
            by_key.setdefault(name.lower(), str(env_id))
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
) -> Analysis:
    """Runs the checks on the store's latest scan and stores the findings under it."""
    validate_thresholds(settings)
    started = time.perf_counter()
    with open_existing(settings) as store:
        scan = store.latest_scan()
        if scan is None:
            raise StoreError(
                f"the store {settings.store_path} holds no scan yet",
                hint="Run `auditor collect` first.",
            )
        env_ids = resolve_environments(store, environments)
        window = Window.last(window_length, scan.window_end)
        frames = load_frames(store, window=window, environments=env_ids)
        evidence = Evidence(frames)
        findings = run_checks(evidence, settings, checks)
        store.replace_findings(
            scan.scan_id,
            analyzed=datetime.now(UTC),
            window_start=window.start,
            window_end=window.end,
            environments=env_ids,
            thresholds={c.id: limits_for(c.meta, settings) for c in checks},
            findings=findings_frame(findings),
        )
    rows = sum(
        len(frames.table(name))
        for name in (
            "plugintracelogs",
            "asyncoperations",
            "flowruns",
            "flow_api_runs",
            "flow_run_actions",
            "flows",
            "workflows",
            "plugin_steps",
        )
    )
    return Analysis(
        scan_id=scan.scan_id,
        window=window,
        environments=evidence.environment_names,
        findings=findings,
        rows=rows,
        seconds=time.perf_counter() - started,
    )


__all__ = ["Analysis", "analyze", "findings_frame", "open_existing", "resolve_environments"]
