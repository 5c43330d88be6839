"""The local store: one DuckDB file holding everything the collectors fetched, and every SQL
statement the auditor runs on it.

The tables are described in docs/data-model.md. The store is a package of small parts:
`schema` (the tables as data and the migrations), `coerce` (untrusted values to the declared
column types), `file_checks` and `connection` (opening the file safely, transactions,
DuckDB's failures as the store's errors), and the reads and writes callers use by name:
`scans` (scans, query outcomes, analyses, findings), `pages` (pages with their checkpoints,
watermarks), `reads` (the environments, the rows of an analysis window, counts),
`correlations` (`auditor trace`), `export` (`auditor export`) and `sink` (what the
collectors write through). No caller runs SQL of its own: each read is a named method
returning typed values or frames.
"""

from __future__ import annotations

from auditor.store.correlations import CorrelationReads
from auditor.store.errors import StoreDamaged, StoreError, StoreUnwritable
from auditor.store.export import Exports
from auditor.store.pages import Checkpoint, PageWrites
from auditor.store.reads import Reads
from auditor.store.scans import AnalysisRecord, ScanInfo, ScanRecords
from auditor.store.schema import (
    BOOKKEEPING,
    FINDING_COLUMNS,
    MIGRATIONS,
    QUERY_STATUSES,
    SCAN_STATUSES,
    SCHEMA_VERSION,
    TABLES,
    TableSpec,
)
from auditor.store.times import aware, naive


class Store(ScanRecords, PageWrites, Reads, CorrelationReads, Exports):
    """An open store. One connection, guarded by a lock, so threads may share it; open it
    with `Store.open`."""


__all__ = [
    "BOOKKEEPING",
    "FINDING_COLUMNS",
    "MIGRATIONS",
    "QUERY_STATUSES",
    "SCAN_STATUSES",
    "SCHEMA_VERSION",
    "TABLES",
    "AnalysisRecord",
    "Checkpoint",
    "ScanInfo",
    "Store",
    "StoreDamaged",
    "StoreError",
    "StoreUnwritable",
    "TableSpec",
    "aware",
    "naive",
]
