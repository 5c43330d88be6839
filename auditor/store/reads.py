"""Typed reads: the environments, the rows of an analysis window, the rows history needs,
and counts.

The rows of a window are selected in DuckDB (so a million trace rows never pass through
Python one by one); `auditor.frames` gives them their dtypes. Tables that describe
configuration (flows, steps, ...) are read whole; event tables are cut to the window by
their time column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import TYPE_CHECKING, Any

import duckdb
import pandas as pd

from auditor.store.connection import StoreConnection
from auditor.store.schema import BOOKKEEPING, TABLES
from auditor.store.times import naive

if TYPE_CHECKING:
    import pyarrow as pa

# Event tables and the column placing a row in time (a SQL expression over the table).
TIME_COLUMNS: dict[str, str] = {
    "plugintracelogs": "coalesce(performanceexecutionstarttime, createdon)",
    "asyncoperations": "createdon",
    "flowruns": "starttime",
    "flowevents": "createdon",
    "flow_api_runs": "start_time",
}

# Rows kept whatever their time: a system job not yet completed (statecode 3) is still work
# in the queue, however long ago it was created; the stuck-jobs check needs it.
KEPT_UNFINISHED: dict[str, str] = {"asyncoperations": "statecode IS DISTINCT FROM 3"}

# Tables read their own way in `window_rows` rather than cut by environment and time.
_OWN_WAY = ("flow_run_actions", "action_samples", "scan_queries", "scans")


class Reads(StoreConnection):
    """What the analysis, the reports and the investigation commands read."""

    def environment_names(self) -> dict[str, str | None]:
        """Every stored environment's id and display name (None when it has none)."""
        rows = self._run("SELECT environment_id, display_name FROM environments")
        return {str(e): n if isinstance(n, str) else None for e, n in rows}

    def window_rows(
        self,
        start: datetime,
        end: datetime,
        environments: Sequence[str] | None,
        columns: Mapping[str, Sequence[str]],
    ) -> dict[str, pd.DataFrame]:
        """The given columns of each table: event rows from `start` up to and including
        `end`, of the given environments (None: all).

        Actions belong to the window of their run; each flow's latest action sample and each
        query's latest outcome per environment are read (a scan of some environments only
        does not make the others' data unknown); `scans` is read whole.
        """
        bounds = [naive(start), naive(end)]
        env_sql, env_params = _env_filter(environments)
        loaded: dict[str, pd.DataFrame] = {}
        for table, names in columns.items():
            if table not in TABLES and table not in BOOKKEEPING:
                raise ValueError(f"unknown table {table!r}")
            if table in _OWN_WAY:
                continue
            sql = f'SELECT {_select(names)} FROM "{table}" WHERE {env_sql}'  # noqa: S608 - names from TABLES
            params: list[Any] = list(env_params)
            if table in TIME_COLUMNS:
                # A row that cannot be placed in time is kept: dropping it would hide it.
                time = TIME_COLUMNS[table]
                kept = f" OR {KEPT_UNFINISHED[table]}" if table in KEPT_UNFINISHED else ""
                sql += f" AND ({time} IS NULL OR ({time} >= ? AND {time} <= ?){kept})"
                params += bounds
            # In key order: rows are stored in the order pages arrived, which differs from
            # scan to scan as environments are read side by side, and the reports list
            # findings and evidence in frame order.
            sql += f" ORDER BY {_key_order(table)}"
            loaded[table] = self._frame(sql, params, arrow=True)
        if "flow_run_actions" in columns:
            selected = ", ".join(f'a."{name}"' for name in columns["flow_run_actions"])
            loaded["flow_run_actions"] = self._frame(
                f"SELECT {selected} FROM flow_run_actions a"  # noqa: S608 - names from TABLES
                " WHERE EXISTS (SELECT 1 FROM flow_api_runs r"
                " WHERE r.environment_id = a.environment_id"
                " AND r.flow_name = a.flow_name AND r.run_name = a.run_name"
                " AND (r.start_time IS NULL OR (r.start_time >= ? AND r.start_time <= ?)))"
                f" AND {env_sql.replace('environment_id', 'a.environment_id')}"
                # A parallel join returns rows in any order; reports list evidence in frame
                # order.
                " ORDER BY a.environment_id, a.flow_name, a.run_name, a.action_name",
                [*bounds, *env_params],
                arrow=True,
            )
        if "action_samples" in columns:
            # The latest sample of each flow describes what its actions represent.
            loaded["action_samples"] = self._frame(
                f"SELECT {_select(columns['action_samples'])} FROM action_samples"  # noqa: S608
                f" WHERE {env_sql}"
                " QUALIFY row_number() OVER (PARTITION BY environment_id, flow_name"
                " ORDER BY scan_id DESC) = 1",
                env_params,
            )
        if "scan_queries" in columns:
            loaded["scan_queries"] = self._frame(
                f"SELECT {_select(columns['scan_queries'])} FROM scan_queries"  # noqa: S608
                f" WHERE {env_sql}"
                " QUALIFY row_number() OVER (PARTITION BY environment_id, query_id"
                " ORDER BY scan_id DESC) = 1",
                env_params,
            )
        if "scans" in columns:
            loaded["scans"] = self._frame(f"SELECT {_select(columns['scans'])} FROM scans")  # noqa: S608
        return loaded

    def engine_cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own to the store's database, for the reductions
        (`auditor.engine`), which read the tables in place; run its queries in
        `engine_guard`."""
        return self._con.cursor()

    def release_cache(self) -> None:
        """Hands back the memory DuckDB keeps caching the store's blocks once read (by
        default it may keep up to 80 % of the machine's memory): the analysis calls it once
        its frames are loaded and its rows reduced, so the pandas stages do not sit on top of
        a cache of rows it will not read again. Setting a small limit evicts what is not in
        use (observed with DuckDB 1.x, not documented); the default limit is then restored.
        Best effort: a limit that cannot be met leaves the cache as it was."""
        with self._lock:
            try:
                self._con.execute("SET memory_limit = '32MB'")
            except duckdb.Error:
                pass
            finally:
                self._con.execute("RESET memory_limit")

    def engine_guard(self) -> AbstractContextManager[None]:
        """Turns DuckDB's errors meaning the store is damaged into the store's errors, as
        for the store's own reads."""
        return self._guard(writing=False)

    def arrow_rows(self, query: str) -> pa.Table:
        """The rows of a query over the store as an Arrow table (for an engine that cannot
        read the store itself)."""
        with self._lock, self._guard(writing=False):
            return self._con.sql(query).to_arrow_table()

    def duration_rows(
        self, start: datetime, end: datetime, environments: Sequence[str]
    ) -> dict[str, pd.DataFrame]:
        """What times plug-in executions and flow runs in a window, and maps runs to flows:
        the durations of `plugintracelogs`, and `flow_api_runs`, `flowruns`, `flows` and
        `workflows` without definitions or messages (`auditor history`)."""
        params: list[Any] = [list(environments), naive(start), naive(end)]
        env_sql = "environment_id IN (SELECT unnest(?::VARCHAR[]))"

        def read(table: str, columns: str) -> pd.DataFrame:
            time = TIME_COLUMNS[table]
            return self._frame(
                f"SELECT {columns} FROM {table} WHERE {env_sql}"  # noqa: S608 - names from TIME_COLUMNS
                # As `window_rows`: a row that cannot be placed in time is kept; key order.
                f" AND ({time} IS NULL OR ({time} >= ? AND {time} <= ?))"
                f" ORDER BY {_key_order(table)}",
                params,
            )

        config = [list(environments)]
        return {
            "plugintracelogs": read("plugintracelogs", "performanceexecutionduration"),
            "flow_api_runs": read(
                "flow_api_runs",
                "environment_id, flow_name, run_name, start_time, end_time, status",
            ),
            "flowruns": read(
                "flowruns",
                "environment_id, flowrunid, name, workflow_ref, workflowid, status, starttime,"
                " endtime, duration",
            ),
            "flows": self._frame(
                f"SELECT environment_id, flow_name, display_name, state, workflowid FROM flows"  # noqa: S608
                f" WHERE {env_sql} ORDER BY {_key_order('flows')}",
                config,
            ),
            "workflows": self._frame(
                f"SELECT environment_id, workflowid, name, statecode FROM workflows"  # noqa: S608
                f" WHERE {env_sql} ORDER BY {_key_order('workflows')}",
                config,
            ),
        }

    def count(self, table: str, environment_id: str | None = None) -> int:
        """Rows in a table, optionally of one environment."""
        spec = TABLES.get(table) or BOOKKEEPING.get(table)
        if spec is None:
            raise ValueError(f"unknown table {table!r}")
        sql = f'SELECT count(*) FROM "{table}"'  # noqa: S608 - a name from TABLES
        if environment_id is None:
            return int(self._run(sql)[0][0])
        if "environment_id" not in spec.names():
            raise ValueError(f"table {table!r} has no environment_id")
        return int(self._run(f"{sql} WHERE environment_id = ?", [environment_id])[0][0])

    def table_counts(self) -> dict[str, dict[str, int]]:
        """Rows per data table and environment; every data table is present, empty or not."""
        counts: dict[str, dict[str, int]] = {}
        for table in TABLES:
            rows = self._run(
                f'SELECT environment_id, count(*) FROM "{table}" GROUP BY ALL ORDER BY ALL'  # noqa: S608
            )
            counts[table] = {str(env): int(n) for env, n in rows}
        return counts


def _key_order(table: str) -> str:
    """The table's natural key as an `ORDER BY` list."""
    spec = TABLES[table] if table in TABLES else BOOKKEEPING[table]
    return ", ".join(f'"{column}"' for column in spec.key)


def _select(names: Sequence[str]) -> str:
    return ", ".join(f'"{name}"' for name in names)


def _env_filter(environments: Sequence[str] | None) -> tuple[str, list[Any]]:
    if environments is None:
        return "TRUE", []
    if not environments:
        return "FALSE", []
    return "environment_id IN (SELECT unnest(?::VARCHAR[]))", [[str(e) for e in environments]]
