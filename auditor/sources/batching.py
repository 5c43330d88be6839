"""Rows of finished units written to the sink in batches, and running units to the end.

Apart from `flow_api`, which uses them, because they know nothing of any API: only the
`Sink` protocol's `write_units`.
"""

from __future__ import annotations

import asyncio
from typing import Any

from auditor.sources.base import Row, Sink


class UnitBatch:
    """Rows of finished units, written to the sink together once there are enough.

    Each unit (a flow) is marked done in the same transaction as its rows (and, for action
    samples, the sample's description), so an interrupted scan resumes exactly as with one
    transaction per unit, at a fraction of the commits.
    """

    def __init__(
        self, sink: Sink, table: str, also: str | None = None, rows: int = 5000, units: int = 200
    ) -> None:
        self.sink = sink
        self.table = table
        self.also = also
        self.max_rows = rows
        self.max_units = units
        self.rows: list[Row] = []
        self.also_rows: list[Row] = []
        self.units: list[tuple[str, str, int]] = []

    async def add(
        self, query_id: str, unit: str, rows: list[Row], also: list[Row] | None = None
    ) -> int:
        """Keep a finished unit; returns the rows written if this filled the batch."""
        self.rows.extend(rows)
        self.also_rows.extend(also or [])
        self.units.append((query_id, unit, len(rows)))
        if len(self.rows) >= self.max_rows or len(self.units) >= self.max_units:
            return await self.flush()
        return 0

    async def flush(self) -> int:
        """Write what is kept (nothing to do when empty)."""
        if not self.units:
            return 0
        rows, also, units = self.rows, self.also_rows, self.units
        self.rows, self.also_rows, self.units = [], [], []
        extra = (self.also, also) if self.also is not None else None
        return await self.sink.write_units(self.table, rows, units, extra)


async def run_all(tasks: Any) -> None:
    """Run every task; when any failed, raise the first failure after all have ended."""
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]
