"""What every investigation command needs: the store, the analysis, names users can type."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from datetime import timedelta
from typing import Any

import pandas as pd

from auditor.analyze import open_existing
from auditor.checks import CHECKS
from auditor.checks.base import plain
from auditor.checks.evidence import Evidence
from auditor.errors import UsageError
from auditor.frames import DEFAULT_WINDOW
from auditor.scan_view import open_scan
from auditor.settings import Settings
from auditor.store import Store, StoreError


def require_scan(store: Store) -> int:
    """The latest scan id; a clear error for an empty store."""
    scan = store.latest_scan()
    if scan is None:
        raise StoreError(
            f"the store {store.path} holds no scan yet",
            hint="Run `auditor collect` (or `auditor scan`) first.",
        )
    return scan.scan_id


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


def environment_names(store: Store) -> dict[str, str]:
    """Every stored environment's display name by id; its id where it has no name."""
    return {e: n if n is not None else e for e, n in store.environment_names().items()}


def row_dicts(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as dicts with the values pandas gives (NA stays NA), unlike `records`."""
    return [{str(k): v for k, v in row.items()} for row in frame.to_dict("records")]


def load_evidence(
    settings: Settings,
    *,
    window: timedelta = DEFAULT_WINDOW,
    environments: Iterable[str] = (),
) -> Evidence:
    """The analysis of the latest scan's window (read-only), as `auditor analyze` sees it."""
    with open_existing(settings, read_only=True) as store:
        scan = store.scan(require_scan(store))
        view = open_scan(store, scan, window=window, environments=list(environments), engine=None)
    return view.evidence


def unknown_name(kind: str, name: str, candidates: Iterable[str], command: str) -> UsageError:
    """`no flow 'Nightly exprot'; did you mean ...?` with the closest names."""
    pool = sorted({c for c in candidates if c})
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.5)
    if not close:
        lowered = name.lower()
        close = [c for c in pool if lowered in c.lower()][:3]
    return UsageError(
        f"no {kind} {name!r} in the store"
        + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""),
        hint=f"`{command}` lists them.",
    )


def one_match(
    matches: pd.DataFrame, evidence: Evidence, kind: str, id_column: str, name: str
) -> pd.Series:
    """The one row of `matches`; a UsageError listing each environment and id when a name
    is shared (`matches` is not empty)."""
    if len(matches) > 1:
        names = evidence.environment_names
        listed = "; ".join(
            f"{names.get(str(e), str(e))}: {i}"
            for e, i in zip(matches["environment_id"], matches[id_column], strict=True)
        )
        raise UsageError(
            f"{len(matches)} {kind}s are named {name!r} ({listed})",
            hint=f"Give the {kind.split()[-1]} id, or add --env with the environment's name.",
        )
    return matches.iloc[0]


# Shared by flows and plug-ins -------------------------------------------------------------


def value(item: Any) -> Any:
    """A JSON-ready value (NA -> None, numpy -> Python); text is kept whole, unlike in a
    finding's evidence, because a machine reading `--json` wants the filter it asked for."""
    return item if isinstance(item, str) else plain(item)


def records(frame: pd.DataFrame, columns: list[str] | None = None) -> list[dict[str, Any]]:
    """Rows as JSON-ready dicts, optionally a subset of the columns."""
    part = frame if columns is None else frame.reindex(columns=columns)
    return [{str(k): value(v) for k, v in row.items()} for row in part.to_dict("records")]


def stored_findings(settings: Settings) -> pd.DataFrame:
    """The findings `auditor analyze` stored for the latest scan; a clear error when that
    scan was not analysed (the investigation names failing checks, it does not run them)."""
    with open_existing(settings, read_only=True) as store:
        scan_id = require_scan(store)
        if scan_id not in store.analysed_scans():
            raise StoreError(
                f"scan {scan_id} of the store {store.path} has not been analysed yet",
                hint="Run `auditor analyze` (or `auditor scan`) first.",
            )
        return store.findings(scan_id)


def environment_ids(evidence: Evidence, environment: str | None, command: str) -> set[str] | None:
    """The environment ids an `--env` name or id selects (None: all); unknown -> UsageError."""
    if environment is None:
        return None
    wanted = environment.strip().lower()
    names = evidence.environment_names
    found = {e for e, n in names.items() if wanted in (e.lower(), str(n).lower())}
    if not found:
        raise unknown_name("environment", environment, [*names.values(), *names], command)
    return found


def failing_checks(findings: pd.DataFrame) -> pd.DataFrame:
    """environment_id, resource_id (lower case), check_id of the stored `fail` findings.

    An action finding (`<flow id>/<action>`) counts for its flow, so both the action's id
    and the flow id are keys.
    """
    failed = findings.loc[
        findings["status"] == "fail", ["environment_id", "resource_id", "check_id"]
    ]
    failed = failed.dropna(subset=["resource_id"]).astype("str")
    parent = failed.assign(resource_id=failed["resource_id"].str.split("/", n=1).str[0])
    both = pd.concat([failed, parent], ignore_index=True)
    both["resource_id"] = both["resource_id"].str.lower()
    return both.drop_duplicates().reset_index(drop=True)


def checks_by_resource(
    findings: pd.DataFrame, keys: pd.DataFrame, id_columns: tuple[str, ...]
) -> list[list[str]]:
    """For each row of `keys` (environment_id and the `id_columns`), the sorted ids of the
    checks that fail for it: a finding matches when its resource id equals one of them."""
    failing = failing_checks(findings)
    out: list[list[str]] = [[] for _ in range(len(keys))]
    if failing.empty or keys.empty:
        return out
    positions = keys.reset_index(drop=True).assign(_pos=range(len(keys)))
    matched = []
    for column in id_columns:
        ids = positions[["environment_id", column, "_pos"]].dropna(subset=[column])
        ids = ids.assign(resource_id=ids[column].astype("str").str.lower())
        matched.append(
            ids.merge(failing, on=["environment_id", "resource_id"])[["_pos", "check_id"]]
        )
    pairs = pd.concat(matched).drop_duplicates()
    for pos, group in pairs.groupby("_pos"):
        out[int(str(pos))] = sorted(group["check_id"].astype("str"))
    return out


def findings_for(
    findings: pd.DataFrame, environment_id: str, resource_ids: list[str]
) -> list[dict[str, Any]]:
    """The stored findings of one resource (or its actions), worst first, with the fix for
    each failing check: the check's remediation and its Learn page."""
    ids = {r.lower() for r in resource_ids if r}
    if findings.empty or not ids:
        return []
    resource = findings["resource_id"].astype("str").str.lower()
    mine = findings[
        (findings["environment_id"] == environment_id)
        & (resource.isin(ids) | resource.str.split("/", n=1).str[0].isin(ids))
    ]
    order = {"fail": 0, "error": 1, "not-assessed": 2, "pass": 3}
    mine = mine.assign(_order=mine["status"].map(order).fillna(4)).sort_values(
        ["_order", "check_id", "resource_id"], kind="stable"
    )
    out = []
    for row in records(
        mine, ["check_id", "status", "severity", "resource_kind", "resource_id", "message"]
    ):
        check = CHECKS.get(str(row["check_id"]))
        row["title"] = check.meta.title if check else None
        if row["status"] == "fail" and check is not None:
            row["remediation"] = check.meta.remediation
            row["learn_url"] = check.meta.learn_url
        out.append(row)
    return out


def to_change(found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per failing check: what to change and where Microsoft documents it."""
    seen: dict[str, dict[str, Any]] = {}
    for f in found:
        if f["status"] == "fail" and f["check_id"] not in seen and "remediation" in f:
            seen[f["check_id"]] = {
                "check_id": f["check_id"],
                "title": f["title"],
                "remediation": f["remediation"],
                "learn_url": f["learn_url"],
            }
    return list(seen.values())


def rank(frame: pd.DataFrame, by: tuple[str, ...], ties: list[str], limit: int) -> pd.DataFrame:
    """The `limit` rows with the largest positive `by[0]`, ties broken by the other `by`
    columns (descending) and then `ties` (ascending), so the order is stable."""
    first = pd.to_numeric(frame[by[0]], errors="coerce").astype("float64")
    chosen = frame[first.fillna(0) > 0]
    chosen = chosen.assign(
        **{
            f"_r{i}": pd.to_numeric(chosen[c], errors="coerce").astype("float64")
            for i, c in enumerate(by)
        }
    )
    keys = [f"_r{i}" for i in range(len(by))]
    ordered = chosen.sort_values(
        [*keys, *ties],
        ascending=[False] * len(keys) + [True] * len(ties),
        na_position="last",
        kind="stable",
    )
    return ordered.drop(columns=keys).head(max(limit, 0)).reset_index(drop=True)


def check_by(by: str, choices: Mapping[str, Any], command: str) -> None:
    """Refuses an unknown `--by` before the store is read, naming the choices."""
    if by not in choices:
        raise UsageError(
            f"--by takes one of {', '.join(choices)}; got {by!r}",
            hint=f"For example `{command} --by {next(iter(choices))}`.",
        )


__all__ = [
    "analysed",
    "check_by",
    "checks_by_resource",
    "environment_ids",
    "environment_names",
    "failing_checks",
    "findings_for",
    "load_evidence",
    "rank",
    "records",
    "require_scan",
    "row_dicts",
    "stored_findings",
    "to_change",
    "unknown_name",
    "value",
]
