"""Pages of tenant rows with their checkpoints, in one transaction each, and watermarks.

A page of rows is upserted in one transaction together with its checkpoint, so a process
killed at any instant leaves either both or neither: a resumed scan continues from the
checkpoint and, because writes are idempotent upserts, ends with the rows an uninterrupted
scan would have.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from auditor.store.coerce import page_frame
from auditor.store.connection import StoreConnection
from auditor.store.schema import TableSpec, table_spec
from auditor.store.times import aware, naive


class _KeyExists(Exception):
    """A page holds a key that is already stored: write it again, replacing."""


@dataclass(frozen=True)
class Checkpoint:
    """How far one unit (a time window, a flow, ...) of one query got in one scan."""

    next_link: str | None
    done: bool
    rows: int
    pages: int


class PageWrites(StoreConnection):
    """Writing what the collectors fetched: pages, units, whole tables, and watermarks."""

    def write_page(
        self,
        *,
        scan_id: int,
        environment_id: str,
        query_id: str,
        unit: str,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        next_link: str | None,
        done: bool,
        watermark: datetime | None = None,
        plan: Sequence[str] = (),
    ) -> int:
        """Upserts one page of rows and advances its checkpoint in one transaction.

        Rows are coerced to the table's types; within the page the last row with a key wins,
        and across pages a newer row replaces the stored one. `watermark`, when given, is
        set in the same transaction, and so are the checkpoints of the units in `plan`
        (started, not done: the windows that take over from this unit). Returns the number
        of rows written.
        """
        spec = table_spec(table)
        frame = page_frame(table, spec, rows, environment_id, scan_id)

        def attempt(replace: bool) -> None:
            with self._transaction(f"writing a page of {query_id} into {table}"):
                self._insert(table, spec, frame, replace=replace)
                self._put_checkpoint(
                    scan_id, environment_id, query_id, unit, next_link, done, len(frame), add=True
                )
                if watermark is not None:
                    self._put_watermark(environment_id, query_id, watermark)
                if plan:
                    with self._guard():
                        self._con.executemany(
                            _PLAN_CHECKPOINT,
                            [[scan_id, environment_id, query_id, part] for part in plan],
                        )

        # Most pages hold only new keys, and a plain INSERT stays fast as the table grows
        # (INSERT OR REPLACE does not). A page with a known key (an overlapping incremental
        # fetch, a page repeated after a crash) rolls back and is written again, replacing.
        with self._page_view(frame):
            try:
                attempt(replace=False)
            except _KeyExists:
                attempt(replace=True)
        return len(frame)

    def write_units(
        self,
        *,
        scan_id: int,
        environment_id: str,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        units: Sequence[tuple[str, str, int]],
        also: tuple[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> int:
        """Upserts the rows of several finished units and marks each done, in one transaction.

        For many small units (the runs of one flow, one flow's action sample): one commit for
        hundreds of them instead of one each. `units` holds (query id, unit, rows of it);
        `also` is (table, rows) written in the same transaction (a sample's description goes
        with its rows). Returns the rows written into `table`.
        """
        spec = table_spec(table)
        frame = page_frame(table, spec, rows, environment_id, scan_id)
        extra_table, extra_rows = also if also is not None else (table, [])
        extra_spec = table_spec(extra_table)
        extra = page_frame(extra_table, extra_spec, extra_rows, environment_id, scan_id)
        # The units' checkpoints in one statement: one upsert each cost 3 ms, most of a
        # batch's write. A unit named twice keeps its last count, as upserts in turn would.
        done = pd.DataFrame(units, columns=["query_id", "unit", "rows"]).drop_duplicates(
            ["query_id", "unit"], keep="last"
        )
        done.insert(0, "environment_id", environment_id)
        done.insert(0, "scan_id", scan_id)
        with (
            self._page_view(frame),
            self._page_view(extra, "_auditor_extra"),
            self._page_view(done, "_auditor_units"),
            self._transaction(f"writing {len(units)} units into {table}"),
        ):
            # INSERT OR REPLACE: a batch is one commit for hundreds of units, and a resumed
            # scan may rewrite the rows of a unit it had not marked done.
            self._insert(table, spec, frame, replace=True)
            self._insert(extra_table, extra_spec, extra, replace=True, view="_auditor_extra")
            if not done.empty:
                self._run(_SET_UNITS_DONE)
        return len(frame)

    def replace_environment_table(
        self,
        *,
        scan_id: int,
        environment_id: str,
        query_id: str,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        unit: str = "all",
    ) -> int:
        """Replaces an environment's rows of a table read in full every scan.

        For configuration tables (workflows, steps, ...): deleting first means a flow or step
        removed from the tenant disappears from the store. The checkpoint is marked done in
        the same transaction. Returns the number of rows written.
        """
        spec = table_spec(table)
        frame = page_frame(table, spec, rows, environment_id, scan_id)
        params: list[object] = [environment_id]
        where = "environment_id = ?"
        if "scan_id" in spec.names():  # action_samples: only this scan's sample is replaced
            where = "environment_id = ? AND scan_id = ?"
            params = [*params, scan_id]
        with self._page_view(frame), self._transaction(f"replacing {table} of {environment_id}"):
            self._run(f'DELETE FROM "{table}" WHERE {where}', params)  # noqa: S608 - names from TABLES
            self._insert(table, spec, frame, replace=False)  # keys are unique after the delete
            self._put_checkpoint(
                scan_id, environment_id, query_id, unit, None, True, len(frame), add=False
            )
        return len(frame)

    def checkpoint(
        self, scan_id: int, environment_id: str, query_id: str, unit: str
    ) -> Checkpoint | None:
        """The checkpoint of one unit of a query in a scan, or None before its first page."""
        rows = self._run(
            "SELECT next_link, done, rows, pages FROM checkpoints"
            " WHERE scan_id = ? AND environment_id = ? AND query_id = ? AND unit = ?",
            [scan_id, environment_id, query_id, unit],
        )
        if not rows:
            return None
        next_link, done, count, pages = rows[0]
        return Checkpoint(next_link=next_link, done=bool(done), rows=int(count), pages=int(pages))

    def _insert(
        self,
        table: str,
        spec: TableSpec,
        frame: pd.DataFrame,
        *,
        replace: bool,
        view: str = "_auditor_page",
    ) -> None:
        """Inserts the page registered as `view` (keys unique within it); `_KeyExists` when a
        key is already stored and `replace` is off."""
        if frame.empty:
            return
        columns = ", ".join(f'"{c}"' for c in spec.names())
        casts = ", ".join(f'CAST("{c}" AS {t})' for c, t in spec.columns)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        sql = f'{verb} INTO "{table}" ({columns}) SELECT {casts} FROM {view}'  # noqa: S608
        try:
            self._run(sql)
        except duckdb.ConstraintException as exc:
            # Keys are never NULL here (checked before), so this is a duplicate key.
            raise _KeyExists from exc

    @contextmanager
    def _page_view(self, frame: pd.DataFrame, view: str = "_auditor_page") -> Iterator[None]:
        """Makes the frame readable as `view`, outside any transaction (unregistering inside
        an aborted transaction would fail)."""
        with self._lock:
            with self._guard():
                self._con.register(view, frame)
            try:
                yield
            finally:
                with self._guard():
                    self._con.unregister(view)

    def _put_checkpoint(
        self,
        scan_id: int,
        environment_id: str,
        query_id: str,
        unit: str,
        next_link: str | None,
        done: bool,
        rows: int,
        *,
        add: bool,
    ) -> None:
        # add: a page adds its rows to the unit's total; a full replacement sets it.
        self._run(
            _ADD_CHECKPOINT if add else _SET_CHECKPOINT,
            [scan_id, environment_id, query_id, unit, next_link, done, rows],
        )

    # --- watermarks ----------------------------------------------------------------------

    def watermark(self, environment_id: str, query_id: str) -> datetime | None:
        """The newest timestamp collected for a query in an environment (UTC), or None."""
        rows = self._run(
            "SELECT value FROM watermarks WHERE environment_id = ? AND query_id = ?",
            [environment_id, query_id],
        )
        return aware(rows[0][0]) if rows and rows[0][0] is not None else None

    def set_watermark(self, environment_id: str, query_id: str, value: datetime) -> None:
        """Sets the watermark of a query in an environment (naive datetimes are UTC)."""
        with self._transaction():
            self._put_watermark(environment_id, query_id, value)

    def _put_watermark(self, environment_id: str, query_id: str, value: datetime) -> None:
        self._run(
            "INSERT OR REPLACE INTO watermarks VALUES (?, ?, ?)",
            [environment_id, query_id, naive(value)],
        )


_ADD_CHECKPOINT = (
    "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, 1)"
    " ON CONFLICT (scan_id, environment_id, query_id, unit) DO UPDATE SET"
    " next_link = excluded.next_link, done = excluded.done,"
    " rows = checkpoints.rows + excluded.rows, pages = checkpoints.pages + 1"
)
_SET_CHECKPOINT = (
    "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?, ?, 1)"
    " ON CONFLICT (scan_id, environment_id, query_id, unit) DO UPDATE SET"
    " next_link = excluded.next_link, done = excluded.done, rows = excluded.rows, pages = 1"
)
_SET_UNITS_DONE = (
    "INSERT INTO checkpoints SELECT CAST(scan_id AS INTEGER), environment_id, query_id, unit,"
    " NULL, true, CAST(rows AS BIGINT), 1 FROM _auditor_units"
    " ON CONFLICT (scan_id, environment_id, query_id, unit) DO UPDATE SET"
    " next_link = excluded.next_link, done = excluded.done, rows = excluded.rows, pages = 1"
)
_PLAN_CHECKPOINT = (
    "INSERT INTO checkpoints VALUES (?, ?, ?, ?, NULL, false, 0, 0) ON CONFLICT DO NOTHING"
)
