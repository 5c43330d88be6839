"""`auditor export`: the store's tables as files, for Power BI, Fabric or Spark
(docs/data-model.md).

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

The files hold tenant telemetry, so they are written as every file of the auditor is
(`auditor.files`): the folder is made owner-only and refused if it is a link, a link or a
folder at a file's name is refused, and each table is copied into a temporary file created
owner-only (0600) beside it. The temporaries are renamed once every table is written, so a
failed export (a full disk) leaves the previous files or none, never a half-written set.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import stat
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from auditor.errors import UsageError, WriteError
from auditor.explore.common import require_scan
from auditor.files import private_dir, write_error
from auditor.store import TABLES, Store
from auditor.terminal import clean

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
    out_dir = private_dir(Path(out_dir))
    finals = [out_dir / f"{table}.{fmt}" for table in chosen]
    for final in finals:
        _refuse_non_file(final)
    partials: list[Path] = []
    done: list[Exported] = []
    try:
        for table, final in zip(chosen, finals, strict=True):
            partials.append(_temporary(final))
            done.append(Exported(table, final, _copy(store, table, partials[-1], final, fmt)))
        for item, partial in zip(done, partials, strict=True):
            try:
                os.replace(partial, item.path)  # replaces the file, never writes through
            except OSError as exc:
                raise write_error(item.path, exc) from exc
    except BaseException:
        for partial in partials:
            with contextlib.suppress(OSError):
                partial.unlink(missing_ok=True)
        raise
    return done


def _refuse_non_file(path: Path) -> None:
    """A link or a folder where a table's file goes is refused before anything is written: no
    earlier export made it, so it is not the export's to replace (a previous file is)."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return
    except OSError as exc:
        raise write_error(path, exc) from exc
    if stat.S_ISLNK(mode):
        raise WriteError(
            f"cannot write {path}: it is a symbolic link, and the auditor does not write "
            "through links",
            hint="Remove the link or choose another folder with --out.",
        )
    if not stat.S_ISREG(mode):
        raise WriteError(
            f"cannot write {path}: it is not a regular file",
            hint="Remove it or choose another folder with --out.",
        )


def _temporary(final: Path) -> Path:
    """An empty owner-only (0600) file beside `final`, made with O_EXCL so no link is
    followed; DuckDB writes into it in place (`USE_TMP_FILE false`), keeping its mode."""
    try:
        fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    except OSError as exc:
        raise write_error(final, exc) from exc
    os.close(fd)
    return Path(name)


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


def _copy(store: Store, table: str, path: Path, final: Path, fmt: str) -> int:
    """COPY of `table` into the file at `path`; errors name `final`, the file the user asked
    for."""
    try:
        return store.copy_table(table, path, fmt)
    except duckdb.Error as exc:  # IOException for a full disk; the SQL itself is ours
        raise _duckdb_write_error(final, exc) from exc
    except OSError as exc:
        raise write_error(final, exc) from exc


_ERRNO = re.compile(r'"errno"\s*:\s*"?(\d+)')


def _duckdb_write_error(final: Path, exc: duckdb.Error) -> WriteError:
    """DuckDB's IO errors carry the system's errno in a JSON fragment; with it the message
    and hint are the ones every other write failure gets, else DuckDB's text, one line."""
    found = _ERRNO.search(str(exc))
    if found:
        number = int(found.group(1))
        return write_error(final, OSError(number, os.strerror(number)))
    return WriteError(
        f"cannot write {final}: {clean(exc, 300)}",
        hint="Check that the --out folder is writable and has free space.",
    )


__all__ = ["EXPORT_TABLES", "FORMATS", "Exported", "export"]
