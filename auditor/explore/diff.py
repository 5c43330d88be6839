"""`auditor diff`: the findings that appeared, disappeared or changed between two analysed
scans. Apart from `history` because it compares the stored findings row by row, matched by
check, environment and resource, where `history` compares figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from auditor.errors import UsageError
from auditor.explore.common import analysed, environment_names, row_dicts
from auditor.store import Store

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
    names = environment_names(store)
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
        return tuple(_diff_row(r, names) for r in row_dicts(picked))

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


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


__all__ = ["FindingsDiff", "diff", "parse_scan"]
