"""`auditor export`: the store's tables as files, for Power BI, Fabric or Spark (design.md
section 5).

One file per table, written by DuckDB itself (`COPY ... TO`), so a million rows never pass
through Python and Parquet needs no extra library. The tables are the tenant data
(`auditor.store.TABLES`) and what the scans made of it: `scans`, `scan_queries` (what each
scan could and could not collect: coverage belongs with the data), `analyses` and
`findings`. Timestamps are UTC: Parquet marks them so (`TIMESTAMP WITH TIME ZONE`), CSV
writes them as ISO 8601 with a `Z`.

The files are raw data for data tools, exactly as stored. CSV values are not neutralised
against spreadsheet formula injection (tenant text such as `=HYPERLINK(...)` stays as it
is): open them in a data tool, not a spreadsheet. The evidence CSVs of `auditor report` are
the ones made safe for spreadsheets.

Files are first written under a temporary name and renamed once every table is written, so
a failed export leaves no half-written set behind.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from auditor.errors import UsageError
from auditor.explore.common import require_scan
from auditor.store import BOOKKEEPING, TABLES, Store

EXPORT_TABLES: tuple[str, ...] = (*TABLES, "scans", "scan_queries", "analyses", "findings")
FORMATS = ("parquet", "csv")


@dataclass(frozen=True)
class Exported:
    """One file written: its table, path and row count."""

    table: str
    path: Path
    rows: int


def export(
    store: Store, out_dir: Path, fmt: str = "parquet", tables: Sequence[str] = ()
) -> list[Exported]:
    """Writes each of `tables` (default: every exportable one) to `out_dir/<table>.<fmt>`."""
    if fmt not in FORMATS:
        raise UsageError(
            f"--format takes parquet or csv; got {fmt!r}",
            hint="Parquet keeps the column types (Power BI, Fabric, Spark); CSV is plain text.",
        )
    chosen = _tables(tables)
    require_scan(store)
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(
            f"cannot create the folder {out_dir}: {exc.strerror or exc}",
            hint="Choose a writable folder with --out.",
        ) from exc
    written: list[tuple[Exported, Path]] = []
    try:
        for table in chosen:
            final = out_dir / f"{table}.{fmt}"
            partial = out_dir / f".{table}.{fmt}.partial"
            rows = _copy(store, table, partial, fmt)
            written.append((Exported(table, final, rows), partial))
        for done, partial in written:
            os.replace(partial, done.path)
    except BaseException:
        for _, partial in written:
            partial.unlink(missing_ok=True)
        raise
    return [done for done, _ in written]


def _tables(wanted: Sequence[str]) -> list[str]:
    """The tables asked for, in store order; an unknown name is a usage error."""
    if not wanted:
        return list(EXPORT_TABLES)
    names = [w.strip().lower() for w in wanted]
    for given, name in zip(wanted, names, strict=True):
        if name not in EXPORT_TABLES:
            close = difflib.get_close_matches(name, EXPORT_TABLES, n=3, cutoff=0.5)
            raise UsageError(
                f"no table {given!r} in the store"
                + (f"; did you mean {', '.join(map(repr, close))}?" if close else ""),
                hint=f"Tables: {', '.join(EXPORT_TABLES)}. Omit --table to export them all.",
            )
    return [t for t in EXPORT_TABLES if t in names]


def _copy(store: Store, table: str, path: Path, fmt: str) -> int:
    spec = TABLES.get(table) or BOOKKEEPING[table]
    if fmt == "parquet":
        # Marked as UTC (the store's session time zone is UTC, so nothing shifts).
        columns = ", ".join(
            f'CAST("{c}" AS TIMESTAMPTZ) AS "{c}"' if t == "TIMESTAMP" else f'"{c}"'
            for c, t in spec.columns
        )
        options = "FORMAT parquet"
    else:
        columns = ", ".join(f'"{c}"' for c in spec.names())
        options = "FORMAT csv, HEADER, TIMESTAMPFORMAT '%Y-%m-%dT%H:%M:%S.%fZ'"
    order = ", ".join(f'"{c}"' for c in spec.key)
    target = str(path).replace("'", "''")
    sql = (
        f'COPY (SELECT {columns} FROM "{table}" ORDER BY {order})'  # noqa: S608 - names from TABLES
        f" TO '{target}' ({options})"
    )
    try:
        # COPY answers with the number of rows it wrote.
        result = store.frame(sql)
    except duckdb.Error as exc:
        raise UsageError(
            f"writing {path.name.removeprefix('.').removesuffix('.partial')} failed: {exc}",
            hint="Check that the --out folder is writable and has free space.",
        ) from exc
    return int(result.to_numpy()[0][0])


__all__ = ["EXPORT_TABLES", "FORMATS", "Exported", "export"]
