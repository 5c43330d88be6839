"""`auditor export`: a table of the store copied by DuckDB into a CSV or Parquet file."""

from __future__ import annotations

from pathlib import Path

from auditor.store.connection import StoreConnection
from auditor.store.schema import BOOKKEEPING, TABLES


class Exports(StoreConnection):
    """Copies of whole tables into files (DuckDB's `COPY ... TO`)."""

    def copy_table(self, table: str, path: Path, fmt: str) -> int:
        """Writes `table`, ordered by its key, into the file at `path` as `fmt` (csv or
        parquet) and returns the rows written. DuckDB's and the system's errors pass as
        they are: the caller names the file the user asked for."""
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
        # In place: by default DuckDB writes an existing target to a new file of its own (mode
        # from the umask) and renames that over it.
        options += ", USE_TMP_FILE false"
        order = ", ".join(f'"{c}"' for c in spec.key)
        target = str(path).replace("'", "''")
        sql = (
            f'COPY (SELECT {columns} FROM "{table}" ORDER BY {order})'  # noqa: S608 - names from TABLES
            f" TO '{target}' ({options})"
        )
        # COPY answers with the number of rows it wrote.
        result = self._frame(sql)
        return int(result.to_numpy()[0][0])
