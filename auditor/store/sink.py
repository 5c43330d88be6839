"""The `Sink` the collectors write through: one environment of one scan, backed by the store.

Pages go to the store from a worker thread (a page's coercion and transaction take
milliseconds that would otherwise stall every request in flight); what a resumed scan needs
(where each unit stopped, the queries already collected) is read once, when the sink is made.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from auditor.sources.base import COLLECTED, FlowActivity, ResumePoint
from auditor.store.times import naive

if TYPE_CHECKING:
    from auditor.store import Store


class RowProgress(Protocol):
    """Where the sink reports the rows a query read."""

    def rows(self, environment: str, query_id: str, count: int) -> None:
        """Rows read by a query."""


class StoreSink:
    """The `Sink` of one environment in one scan, backed by the store."""

    def __init__(self, store: Store, scan_id: int, environment: str, progress: RowProgress) -> None:
        self.store = store
        self.scan_id = scan_id
        self.environment = environment
        self._progress = progress
        self.dataverse_collected: set[str] = set()  # Dataverse queries collected in this run
        self._finished = {
            str(row.query_id)
            for row in store.scan_queries(scan_id).itertuples()
            if row.environment_id == environment and row.status == COLLECTED
        }
        # Where an interrupted run of this scan stopped, read once: asking the store per
        # unit from the event loop would wait on the lock while a worker thread writes.
        stopped = store._frame(
            "SELECT query_id, unit, next_link, done FROM checkpoints"
            " WHERE scan_id = ? AND environment_id = ?",
            [scan_id, environment],
        )
        self._resume = {
            (str(q), str(u)): ResumePoint(n if isinstance(n, str) else None, bool(d))
            for q, u, n, d in zip(
                stopped["query_id"],
                stopped["unit"],
                stopped["next_link"],
                stopped["done"],
                strict=True,
            )
        }

    def _stop_if_failed(self) -> None:
        """Once the store failed (full, damaged), every query stops at its next use of it,
        before asking the tenant for more."""
        if self.store.failure is not None:
            raise self.store.failure

    def resume_point(self, query_id: str, unit: str) -> ResumePoint | None:
        self._stop_if_failed()
        return self._resume.get((query_id, unit))

    def units(self, query_id: str) -> dict[str, ResumePoint]:
        self._stop_if_failed()
        return {unit: point for (query, unit), point in self._resume.items() if query == query_id}

    async def write(
        self,
        query_id: str,
        unit: str,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        next_link: str | None,
        done: bool,
        plan: Sequence[str] = (),
    ) -> int:
        self._stop_if_failed()
        # In a worker thread: a page's coercion and transaction take milliseconds that would
        # otherwise stall every request in flight (the store serialises its own access).
        return await asyncio.to_thread(
            functools.partial(
                self.store.write_page,
                scan_id=self.scan_id,
                environment_id=self.environment,
                query_id=query_id,
                unit=unit,
                table=table,
                rows=rows,
                next_link=next_link,
                done=done,
                plan=plan,
            )
        )

    async def write_units(
        self,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        units: Sequence[tuple[str, str, int]],
        also: tuple[str, Sequence[Mapping[str, Any]]] | None = None,
    ) -> int:
        self._stop_if_failed()
        return await asyncio.to_thread(
            functools.partial(
                self.store.write_units,
                scan_id=self.scan_id,
                environment_id=self.environment,
                table=table,
                rows=rows,
                units=units,
                also=also,
            )
        )

    async def replace(self, query_id: str, table: str, rows: Sequence[Mapping[str, Any]]) -> int:
        self._stop_if_failed()
        return await asyncio.to_thread(
            functools.partial(
                self.store.replace_environment_table,
                scan_id=self.scan_id,
                environment_id=self.environment,
                query_id=query_id,
                table=table,
                rows=rows,
            )
        )

    def watermark(self, query_id: str) -> datetime | None:
        self._stop_if_failed()
        return self.store.watermark(self.environment, query_id)

    def finished(self, query_id: str) -> bool:
        return query_id in self._finished

    def runs(self, start: datetime, end: datetime) -> dict[str, list[tuple[str, str]]]:
        self._stop_if_failed()
        frame = self.store._frame(
            "SELECT r.flow_name, r.run_name, r.status FROM flow_api_runs r"
            " WHERE r.environment_id = ? AND r.start_time >= ? AND r.start_time < ?"
            " AND NOT EXISTS (SELECT 1 FROM flow_run_actions a WHERE a.environment_id ="
            " r.environment_id AND a.flow_name = r.flow_name AND a.run_name = r.run_name)"
            " ORDER BY r.flow_name, r.run_name",
            [self.environment, naive(start), naive(end)],
        )
        found: dict[str, list[tuple[str, str]]] = {}
        for flow, run, status in zip(
            frame["flow_name"], frame["run_name"], frame["status"], strict=True
        ):
            found.setdefault(str(flow), []).append((str(run), str(status)))
        return found

    def flow_activity(self, start: datetime, end: datetime) -> FlowActivity:
        self._stop_if_failed()
        window = [self.environment, naive(start), naive(end)]
        # Solution flows that ran: Dataverse run history (ingested minutes after a run ends),
        # the Dataverse trigger jobs (created when the trigger fires, no lag), and flows whose
        # stored runs reach into the start of the window (they were running just before).
        active = self.store._frame(
            "SELECT DISTINCT lower(coalesce(workflow_ref, workflowid)) AS id FROM flowruns"
            " WHERE environment_id = ? AND createdon >= ? AND createdon < ?"
            " UNION SELECT DISTINCT lower(workflowactivationid) FROM asyncoperations"
            " WHERE environment_id = ? AND operationtype = 79 AND createdon >= ? AND createdon < ?"
            " UNION SELECT DISTINCT lower(f.workflowid) FROM flow_api_runs r JOIN flows f"
            " ON f.environment_id = r.environment_id AND f.flow_name = r.flow_name"
            " WHERE r.environment_id = ? AND r.start_time >= ? AND r.start_time < ?",
            [*window, *window, *window],
        )
        running = self.store._frame(
            "SELECT flow_name, min(start_time) AS since FROM flow_api_runs"
            " WHERE environment_id = ? AND status = 'Running' GROUP BY flow_name",
            [self.environment],
        )
        gaps = self.store._frame(
            "SELECT count(*) AS n FROM flowevents WHERE environment_id = ?"
            " AND eventtype = 'FlowRunIngestion' AND createdon >= ? AND createdon < ?",
            window,
        )
        stored = self.store._frame(
            "SELECT flow_name, last_modified_time, definition FROM flows"
            " WHERE environment_id = ? AND workflowid IS NULL",
            [self.environment],
        )
        last = self.store._frame(
            "SELECT flow_name, max(start_time) AS latest FROM flow_api_runs"
            " WHERE environment_id = ? GROUP BY flow_name",
            [self.environment],
        )
        solution = self.store._frame(
            "SELECT lower(workflowid) AS id, clientdata FROM workflows WHERE environment_id = ?",
            [self.environment],
        )
        return FlowActivity(
            active_workflows=frozenset(str(v) for v in active["id"].dropna()),
            running_since={
                str(f): s.to_pydatetime()
                for f, s in zip(running["flow_name"], running["since"], strict=True)
            },
            ingestion_gaps=bool(gaps["n"].iloc[0]),
            definitions={
                str(f): (
                    None if pd.isna(m) else m.to_pydatetime(),
                    d if isinstance(d, str) else None,
                )
                for f, m, d in zip(
                    stored["flow_name"],
                    stored["last_modified_time"],
                    stored["definition"],
                    strict=True,
                )
            },
            flowruns_collected="flowruns" in self.dataverse_collected,
            last_run={
                str(f): t.to_pydatetime()
                for f, t in zip(last["flow_name"], last["latest"], strict=True)
                if not pd.isna(t)
            },
            solution_definitions={
                str(i): c
                for i, c in zip(solution["id"], solution["clientdata"], strict=True)
                if isinstance(c, str)
            },
        )

    def progress(self, query_id: str, rows: int) -> None:
        self._progress.rows(self.environment, query_id, rows)
