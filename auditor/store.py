"""The local store: one DuckDB file holding everything the collectors fetched.

Design.md section 5. Every data table has typed columns (timestamps as `TIMESTAMP` holding
UTC, GUIDs as lower-case text without braces, durations as `BIGINT` milliseconds), the
environment id, and its natural key as `PRIMARY KEY`. A page of rows is upserted in one
transaction together with its checkpoint, so a process killed at any instant leaves either
both or neither: a resumed scan continues from the checkpoint and, because writes are
idempotent upserts, ends with the rows an uninterrupted scan would have.

Tenant data is untrusted. Values are coerced column by column to the declared types and a
value that does not fit becomes NULL instead of failing the page.

The schema is versioned in `meta`. `MIGRATIONS[v]` upgrades a store from version `v - 1` to
`v`; a store of an older version is migrated when opened, a newer or unknown one is refused
with a `StoreError` saying what to do.

The file is checked before DuckDB writes to it: its first bytes must be DuckDB's header (a
SQLite database, an empty or a text file is named as such), and an existing file is opened
read-only first, so a damaged file, another program's database or a newer store is refused
unchanged. DuckDB never installs or loads an extension for the store, and a read-write store
reads and writes no file but its own. A DuckDB error meaning the file is damaged or cannot be
written, wherever it happens, becomes a `StoreDamaged` or `StoreUnwritable` (the first is kept
in `Store.failure`, so a caller that swallowed it can still tell). The store, its write-ahead
log and the folders created for it are owner-only: they hold tenant telemetry.
"""

from __future__ import annotations

import codecs
import errno
import json
import math
import os
import re
import stat
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from auditor import __version__
from auditor.errors import AuditorError, WriteError
from auditor.files import private_dir
from auditor.terminal import clean

SCHEMA_VERSION = 5

SCAN_STATUSES = ("running", "completed", "partial", "failed")
QUERY_STATUSES = ("collected", "partial", "not-collected")
SQL_TYPES = frozenset({"VARCHAR", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMP"})


class StoreError(AuditorError):
    """The store cannot be opened, upgraded or written."""

    exit_code = 3
    default_hint = (
        "Check the --store path (or AUDITOR_STORE); to start afresh, collect into a new store, "
        "e.g. --store new.duckdb."
    )


class StoreDamaged(StoreError):
    """The store file is corrupt: a checksum does not match, or DuckDB cannot read it."""

    default_hint = (
        "Restore the store from a copy, or collect into a new store, e.g. --store new.duckdb."
    )


class StoreUnwritable(StoreError):
    """A write to the store failed: the disk is full, a file size limit, a read-only disk."""

    default_hint = (
        "Free disk space (or raise the file size limit), or move the store to a disk with room "
        "(--store); what was stored before is kept, and running the command again continues "
        "from there."
    )


class _AlreadyOpen(StoreError):
    """This process has the store open already, with other settings."""


@dataclass(frozen=True)
class TableSpec:
    """A table as data: its columns with their SQL types, and its natural key."""

    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...]
    # Text columns holding GUIDs: stored lower-case and without braces so ids from different
    # APIs join.
    guids: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        names = self.names()
        unknown = [c for c in (*self.key, *self.guids) if c not in names]
        bad_types = [t for _, t in self.columns if t not in SQL_TYPES]
        if unknown or bad_types or len(set(names)) != len(names):
            raise ValueError(f"invalid table spec: {unknown or bad_types or names}")

    def names(self) -> tuple[str, ...]:
        """The column names, in table order."""
        return tuple(name for name, _ in self.columns)


def _spec(
    columns: str, key: tuple[str, ...], guids: tuple[str, ...] = (), *, env: bool = True
) -> TableSpec:
    """Builds a spec from "name TYPE, name TYPE" text, to keep the tables below readable."""
    pairs = [tuple(part.split()) for part in columns.split(",") if part.strip()]
    cols = tuple((name, sql_type) for name, sql_type in pairs)
    if env:
        cols = (("environment_id", "VARCHAR"), *cols)
    return TableSpec(columns=cols, key=key, guids=guids)


_ENV = "environment_id"

TABLES: dict[str, TableSpec] = {
    "environments": _spec(
        "display_name VARCHAR, sku VARCHAR, dataverse_url VARCHAR, discovered_by VARCHAR",
        (_ENV,),
    ),
    "organizations": _spec(
        "organizationid VARCHAR, name VARCHAR, plugintracelogsetting INTEGER,"
        " flowruntimetoliveinseconds BIGINT",
        (_ENV, "organizationid"),
        ("organizationid",),
    ),
    "workflows": _spec(
        "workflowid VARCHAR, workflowidunique VARCHAR, name VARCHAR, category INTEGER,"
        " type INTEGER, statecode INTEGER, statuscode INTEGER, ismanaged BOOLEAN,"
        " primaryentity VARCHAR, modernflowtype INTEGER, clientdata VARCHAR,"
        " createdon TIMESTAMP, modifiedon TIMESTAMP, ownerid VARCHAR,"
        # Classic workflows (category 0), read by `auditor lint` from solution files.
        " mode INTEGER, triggeroncreate BOOLEAN, triggerondelete BOOLEAN,"
        " triggeronupdateattributelist VARCHAR",
        (_ENV, "workflowid"),
        ("workflowid", "workflowidunique", "ownerid"),
    ),
    "callbackregistrations": _spec(
        "callbackregistrationid VARCHAR, name VARCHAR, entityname VARCHAR, message INTEGER,"
        " scope INTEGER, filteringattributes VARCHAR, filterexpression VARCHAR, runas INTEGER,"
        " sdkmessagename VARCHAR, version INTEGER, createdon TIMESTAMP, modifiedon TIMESTAMP,"
        " ownerid VARCHAR",
        (_ENV, "callbackregistrationid"),
        ("callbackregistrationid", "ownerid"),
    ),
    "plugin_steps": _spec(
        "stepid VARCHAR, name VARCHAR, stage INTEGER, mode INTEGER, rank INTEGER,"
        " filteringattributes VARCHAR, asyncautodelete BOOLEAN, statecode INTEGER,"
        " statuscode INTEGER, ismanaged BOOLEAN, customizationlevel INTEGER,"
        " modifiedon TIMESTAMP, eventhandler_id VARCHAR, message_name VARCHAR,"
        " primary_entity VARCHAR, plugintype_id VARCHAR, plugintype_typename VARCHAR,"
        " plugintype_name VARCHAR, assembly_name VARCHAR, assembly_version VARCHAR,"
        " isolationmode INTEGER, sourcetype INTEGER, isworkflowactivity BOOLEAN",
        (_ENV, "stepid"),
        ("stepid", "eventhandler_id", "plugintype_id"),
    ),
    "plugintracelogs": _spec(
        "plugintracelogid VARCHAR, typename VARCHAR, messagename VARCHAR,"
        " primaryentity VARCHAR, mode INTEGER, operationtype INTEGER, depth INTEGER,"
        " correlationid VARCHAR, requestid VARCHAR, pluginstepid VARCHAR,"
        " performanceexecutionstarttime TIMESTAMP, performanceexecutionduration BIGINT,"
        " performanceconstructorduration BIGINT, exceptiondetails VARCHAR,"
        " messageblock VARCHAR, issystemcreated BOOLEAN, createdon TIMESTAMP",
        (_ENV, "plugintracelogid"),
        ("plugintracelogid", "correlationid", "requestid", "pluginstepid"),
    ),
    "asyncoperations": _spec(
        "asyncoperationid VARCHAR, name VARCHAR, operationtype INTEGER, statecode INTEGER,"
        " statuscode INTEGER, messagename VARCHAR, primaryentitytype VARCHAR,"
        " correlationid VARCHAR, requestid VARCHAR, depth INTEGER, retrycount INTEGER,"
        " errorcode BIGINT, message VARCHAR, friendlymessage VARCHAR, createdon TIMESTAMP,"
        " startedon TIMESTAMP, completedon TIMESTAMP, postponeuntil TIMESTAMP,"
        " executiontimespan DOUBLE, owningextensionid VARCHAR, workflowactivationid VARCHAR,"
        " regardingobjectid VARCHAR, modifiedon TIMESTAMP",
        (_ENV, "asyncoperationid"),
        (
            "asyncoperationid",
            "correlationid",
            "requestid",
            "owningextensionid",
            "workflowactivationid",
            "regardingobjectid",
        ),
    ),
    "flowruns": _spec(
        "flowrunid VARCHAR, name VARCHAR, workflow_ref VARCHAR, workflowid VARCHAR,"
        " workflowname VARCHAR, status VARCHAR, starttime TIMESTAMP, endtime TIMESTAMP,"
        " duration BIGINT, triggertype VARCHAR, errorcode VARCHAR, errormessage VARCHAR,"
        " parentrunid VARCHAR, isprimary INTEGER, clienttrackingid VARCHAR,"
        " createdon TIMESTAMP",
        (_ENV, "flowrunid"),
        ("flowrunid", "workflow_ref", "workflowid"),
    ),
    "flowevents": _spec(
        "floweventid VARCHAR, name VARCHAR, eventtype VARCHAR, eventcode VARCHAR,"
        " eventcontent VARCHAR, level VARCHAR, parentobjectlogicalname VARCHAR,"
        " parentobjectid VARCHAR, createdon TIMESTAMP",
        (_ENV, "floweventid"),
        ("floweventid", "parentobjectid"),
    ),
    # `flow_name` is the flow's stable key: its Dataverse workflowid when it has one (a
    # solution flow), else its name in the flow API (`api_name`, used in that API's URLs).
    # Runs, actions and samples are keyed by it, so history does not split if a name changes.
    "flows": _spec(
        "flow_name VARCHAR, display_name VARCHAR, state VARCHAR, created_time TIMESTAMP,"
        " last_modified_time TIMESTAMP, workflowid VARCHAR, suspension_reason VARCHAR,"
        " trigger_type VARCHAR, definition VARCHAR, api_name VARCHAR",
        (_ENV, "flow_name"),
        ("workflowid",),
    ),
    "flow_api_runs": _spec(
        "flow_name VARCHAR, run_name VARCHAR, start_time TIMESTAMP, end_time TIMESTAMP,"
        " status VARCHAR, code VARCHAR, error_code VARCHAR, error_message VARCHAR,"
        " trigger_name VARCHAR, client_tracking_id VARCHAR",
        (_ENV, "flow_name", "run_name"),
    ),
    "flow_run_actions": _spec(
        "flow_name VARCHAR, run_name VARCHAR, action_name VARCHAR, status VARCHAR,"
        " code VARCHAR, start_time TIMESTAMP, end_time TIMESTAMP, error_code VARCHAR,"
        " error_message VARCHAR, retry_count INTEGER, retry_codes VARCHAR,"
        " retry_history VARCHAR, repetition_count INTEGER",
        (_ENV, "flow_name", "run_name", "action_name"),
    ),
    "action_samples": TableSpec(
        columns=(
            ("scan_id", "INTEGER"),
            (_ENV, "VARCHAR"),
            ("flow_name", "VARCHAR"),
            ("runs_in_window", "INTEGER"),
            ("failed_in_window", "INTEGER"),
            ("sampled", "INTEGER"),
            ("sampled_failed", "INTEGER"),
        ),
        key=("scan_id", _ENV, "flow_name"),
    ),
}

# Bookkeeping of the store itself and of scans; not tenant data, so not in TABLES.
BOOKKEEPING: dict[str, TableSpec] = {
    "meta": _spec("key VARCHAR, value VARCHAR", ("key",), env=False),
    "scans": _spec(
        "scan_id INTEGER, started TIMESTAMP, ended TIMESTAMP, status VARCHAR,"
        " window_start TIMESTAMP, window_end TIMESTAMP, arguments VARCHAR",
        ("scan_id",),
        env=False,
    ),
    "scan_queries": _spec(
        "scan_id INTEGER, environment_id VARCHAR, query_id VARCHAR, status VARCHAR,"
        " rows BIGINT, requests BIGINT, retries BIGINT, throttled BIGINT, reason VARCHAR,"
        " hint VARCHAR",
        ("scan_id", _ENV, "query_id"),
        env=False,
    ),
    "checkpoints": _spec(
        "scan_id INTEGER, environment_id VARCHAR, query_id VARCHAR, unit VARCHAR,"
        " next_link VARCHAR, done BOOLEAN, rows BIGINT, pages INTEGER",
        ("scan_id", _ENV, "query_id", "unit"),
        env=False,
    ),
    "watermarks": _spec(
        "environment_id VARCHAR, query_id VARCHAR, value TIMESTAMP",
        (_ENV, "query_id"),
        env=False,
    ),
    # `auditor analyze`: what was analysed for a scan, and the findings (design.md section 7).
    "analyses": _spec(
        "scan_id INTEGER, analyzed TIMESTAMP, window_start TIMESTAMP, window_end TIMESTAMP,"
        " environments VARCHAR, thresholds VARCHAR, auditor_version VARCHAR",
        ("scan_id",),
        env=False,
    ),
    "findings": _spec(
        "scan_id INTEGER, seq INTEGER, check_id VARCHAR, status VARCHAR, severity VARCHAR,"
        " environment_id VARCHAR, resource_kind VARCHAR, resource_id VARCHAR,"
        " resource_name VARCHAR, message VARCHAR, measured VARCHAR, evidence VARCHAR",
        ("scan_id", "seq"),
        env=False,
    ),
}

FINDING_COLUMNS = BOOKKEEPING["findings"].names()

Migration = Callable[[duckdb.DuckDBPyConnection], None]
# version -> function upgrading a store from version - 1, run inside the opening transaction.
# Tables new in a version need no migration: missing tables are created after migrating.
MIGRATIONS: dict[int, Migration] = {
    # 2: the analyses and findings tables, which `_create_tables` adds after the migration.
    2: lambda connection: None,
    # 3: the trigger columns of classic workflows.
    3: lambda connection: _add_columns(
        connection,
        "workflows",
        "mode INTEGER, triggeroncreate BOOLEAN, triggerondelete BOOLEAN,"
        " triggeronupdateattributelist VARCHAR",
    ),
    # 4: flows keyed by their workflowid where they have one (api_name keeps the API's name).
    4: lambda connection: _key_flows_by_workflowid(connection),
    # 5: system jobs keep their latest state, read by modifiedon.
    5: lambda connection: _add_columns(connection, "asyncoperations", "modifiedon TIMESTAMP"),
}


def _key_flows_by_workflowid(connection: duckdb.DuckDBPyConnection) -> None:
    """Store schema 4: a solution flow's rows move from its flow API name to its workflowid."""
    _add_columns(connection, "flows", "api_name VARCHAR")
    connection.execute("UPDATE flows SET api_name = flow_name")
    for table in ("flow_api_runs", "flow_run_actions", "action_samples"):
        connection.execute(
            f'UPDATE "{table}" AS t SET flow_name = lower(f.workflowid) FROM flows f'  # noqa: S608
            " WHERE f.environment_id = t.environment_id AND f.flow_name = t.flow_name"
            " AND f.workflowid IS NOT NULL"
        )
    connection.execute(
        "UPDATE flows SET flow_name = lower(workflowid) WHERE workflowid IS NOT NULL"
    )


def _add_columns(connection: duckdb.DuckDBPyConnection, table: str, columns: str) -> None:
    """Add the columns ("name TYPE, ...") a newer schema has to an existing table."""
    for column in columns.split(","):
        connection.execute(f'ALTER TABLE "{table}" ADD COLUMN IF NOT EXISTS {column.strip()}')


class _KeyExists(Exception):
    """A page holds a key that is already stored: write it again, replacing."""


@dataclass(frozen=True)
class Checkpoint:
    """How far one unit (a time window, a flow, ...) of one query got in one scan."""

    next_link: str | None
    done: bool
    rows: int
    pages: int


@dataclass(frozen=True)
class ScanInfo:
    """One scan as recorded in `scans`; datetimes are timezone-aware UTC."""

    scan_id: int
    started: datetime
    ended: datetime | None
    status: str
    window_start: datetime
    window_end: datetime
    arguments: dict[str, Any]


class Store:
    """An open store. One connection, guarded by a lock, so threads may share it."""

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection, read_only: bool):
        self.path = path
        self.read_only = read_only
        self._con = connection
        self._lock = threading.RLock()
        self._closed = False
        # The first failure meaning the file is damaged or cannot be written, kept even when
        # a caller turned it into something else (a query's outcome, say).
        self.failure: StoreError | None = None
        # Called with that first failure, from whichever thread met it.
        self.on_failure: Callable[[StoreError], None] | None = None
        self._private = False  # holds `_PrivateFiles` until closed

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False, files_in: Path | None = None) -> Store:
        """Opens (creating or migrating it when allowed) the store at `path`.

        An existing file is checked before DuckDB may write to it (see the module docstring).
        `files_in` is the one folder DuckDB may write files into (an export's `COPY ... TO`);
        without it a read-write store touches no file but its own, and a read-only one keeps
        DuckDB's file access, which `auditor export` writes through.
        """
        path = Path(path)
        exists = _check_location(path, read_only=read_only)
        if exists:
            _check_header(path)
            if not read_only:
                cls._check_before_writing(path)
        else:
            _create_folder(path.parent)
        store = cls._connected(path, read_only=read_only, files_in=files_in)
        try:
            store._run("SET TimeZone = 'UTC'")
            if not read_only:
                _owner_only(path)
            store._prepare()
        except BaseException:
            store.close()
            raise
        return store

    @classmethod
    def _check_before_writing(cls, path: Path) -> None:
        """Opens an existing file read-only to refuse a damaged file, another program's
        database or a store this auditor cannot upgrade before DuckDB may write to it."""
        try:
            probe = cls._connected(path, read_only=True, files_in=None, external=False)
        except _AlreadyOpen:
            return  # open in this process already, so it was checked when first opened
        with probe:
            probe._version()

    @classmethod
    def _connected(
        cls, path: Path, *, read_only: bool, files_in: Path | None, external: bool | None = None
    ) -> Store:
        """A store on a new connection, owner-only files (see `_PrivateFiles`) until closed."""
        _PrivateFiles.acquire()
        try:
            connection = _connect(path, read_only=read_only, files_in=files_in, external=external)
        except BaseException:
            _PrivateFiles.release()
            raise
        store = cls(path, connection, read_only)
        store._private = True
        return store

    def _prepare(self) -> None:
        """Creates the schema of a new store, checks and migrates an existing one."""
        version = self._version()
        if version is None:
            if self.read_only:
                raise StoreError(
                    f"{self.path} is an empty database, not an auditor store",
                    hint="Run `auditor collect` to fill it.",
                )
            with self._transaction():
                self._create_tables()
                self._set_meta("schema_version", str(SCHEMA_VERSION))
                self._set_meta("created_with", f"auditor {__version__}")
            return
        if version == SCHEMA_VERSION:
            return
        if self.read_only:
            raise StoreError(
                f"{self.path} has store schema {version} and needs upgrading to "
                f"{SCHEMA_VERSION}, which a read-only open cannot do",
                hint="Run `auditor collect` with this store once; it upgrades the file.",
            )
        try:
            with self._transaction():
                for step in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[step](self._con)
                    self._set_meta("schema_version", str(step))
                self._create_tables()
                self._set_meta("migrated_with", f"auditor {__version__}")
        except duckdb.Error as exc:
            raise StoreError(
                f"upgrading {self.path} from store schema {version} failed: {clean(exc, 300)}",
                hint="The file is unchanged. Collect into a new store, e.g. --store new.duckdb.",
            ) from exc

    def _version(self) -> int | None:
        """The store schema of the file, None for an empty database; a StoreError for a file
        that is not an auditor store, or one this auditor can neither read nor upgrade."""
        tables = {
            row[0]
            for row in self._run(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
            )
        }
        if not tables:
            return None
        version = self._schema_version(tables)
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer auditor (store schema {version}; this "
                f"auditor reads schema {SCHEMA_VERSION})",
                hint="Upgrade the auditor (pip install -U pp-telemetry-auditor), or collect into "
                "a new store, e.g. --store new.duckdb.",
            )
        if any(step not in MIGRATIONS for step in range(version + 1, SCHEMA_VERSION + 1)):
            raise StoreError(
                f"{self.path} has store schema {version}, which this auditor cannot upgrade to "
                f"{SCHEMA_VERSION}",
                hint="Collect into a new store, e.g. --store new.duckdb; the old auditor "
                "version can still read the old file.",
            )
        return version

    def _schema_version(self, tables: set[str]) -> int:
        hint = "Point --store at an auditor store, or at a new file, e.g. --store new.duckdb."
        not_ours = StoreError(
            f"{self.path} is a DuckDB database but not an auditor store", hint=hint
        )
        if "meta" not in tables:
            raise not_ours
        # An auditor store holds tables only. A view, a macro (which may shadow a built-in
        # function the auditor calls) or a computed column would run SQL the file brought.
        found = self._run(_FOREIGN_OBJECTS)
        if found:
            raise StoreError(
                f"{self.path} is a DuckDB database but not an auditor store (it holds "
                f"{found[0][0]}, which an auditor store never has)",
                hint=hint,
            )
        try:
            rows = self._run("SELECT value FROM meta WHERE key = 'schema_version'")
            return int(rows[0][0])
        except (duckdb.Error, IndexError, TypeError, ValueError):
            raise not_ours from None

    def _create_tables(self) -> None:
        for name, spec in (*BOOKKEEPING.items(), *TABLES.items()):
            columns = ", ".join(f'"{c}" {t}' for c, t in spec.columns)
            key = ", ".join(f'"{c}"' for c in spec.key)
            self._run(f'CREATE TABLE IF NOT EXISTS "{name}" ({columns}, PRIMARY KEY ({key}))')

    def _set_meta(self, key: str, value: str) -> None:
        self._run("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, value])

    def close(self) -> None:
        """Writes what DuckDB's log holds into the file and closes the connection; safe to
        call twice. A failure after an earlier one of the same kind is not raised again."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            earlier = self.failure
            try:
                self._finish()
            except StoreError:
                if earlier is None:
                    raise
            finally:
                if self._private:
                    _PrivateFiles.release()

    def _finish(self) -> None:
        try:
            if not self.read_only and self.failure is None:
                self._checkpoint()
        finally:
            with self._guard():
                self._con.close()

    def _checkpoint(self) -> None:
        """DuckDB checkpoints when closing too, but says nothing when that fails (a full
        disk): the log is kept and the next open tries again. Only a failure of the file is
        raised; any other (a transaction of another connection) leaves it to DuckDB."""
        try:
            self._con.execute("CHECKPOINT")
        except duckdb.Error as exc:
            failure = self._failed(exc)
            if failure is not None:
                raise failure from exc

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- scans ---------------------------------------------------------------------------

    def begin_scan(
        self,
        *,
        window_start: datetime,
        window_end: datetime,
        arguments: Mapping[str, Any],
        started: datetime,
    ) -> int:
        """Records a new running scan and returns its id (1, 2, ...)."""
        text = json.dumps(dict(arguments), sort_keys=True, default=str)
        with self._transaction():
            scan_id = int(self._run("SELECT coalesce(max(scan_id), 0) + 1 FROM scans")[0][0])
            self._run(
                "INSERT INTO scans VALUES (?, ?, NULL, 'running', ?, ?, ?)",
                [scan_id, _naive(started), _naive(window_start), _naive(window_end), text],
            )
        return scan_id

    def finish_scan(self, scan_id: int, *, status: str, ended: datetime) -> None:
        """Sets the final status (completed, partial or failed) and end time of a scan."""
        _check_choice("scan status", status, SCAN_STATUSES)
        with self._transaction():
            self.scan(scan_id)
            self._run(
                "UPDATE scans SET status = ?, ended = ? WHERE scan_id = ?",
                [status, _naive(ended), scan_id],
            )

    def scan(self, scan_id: int) -> ScanInfo:
        """The scan with this id; `StoreError` when there is none."""
        rows = self._run(f"{_SCAN_SELECT} WHERE scan_id = ?", [scan_id])
        if not rows:
            raise StoreError(
                f"no scan {scan_id} in {self.path}",
                hint="Omit the scan id to use the latest scan.",
            )
        return _scan_info(rows[0])

    def latest_scan(self) -> ScanInfo | None:
        """The most recent scan, whatever its status."""
        rows = self._run(f"{_SCAN_SELECT} ORDER BY scan_id DESC LIMIT 1")
        return _scan_info(rows[0]) if rows else None

    def unfinished_scan(self) -> ScanInfo | None:
        """The most recent scan still marked running (killed or in progress), to resume."""
        rows = self._run(f"{_SCAN_SELECT} WHERE status = 'running' ORDER BY scan_id DESC LIMIT 1")
        return _scan_info(rows[0]) if rows else None

    def last_completed_window_end(self, environment_id: str) -> datetime | None:
        """Where the next scan of an environment starts: the end of the window of the latest
        completed or partial scan that collected something there (an environment that was
        not collected at all in a scan keeps the earlier start, so no window is lost)."""
        rows = self._run(
            "SELECT s.window_end FROM scans s WHERE s.status IN ('completed', 'partial')"
            " AND EXISTS (SELECT 1 FROM scan_queries q WHERE q.scan_id = s.scan_id"
            " AND q.environment_id = ? AND q.status <> 'not-collected')"
            " ORDER BY s.scan_id DESC LIMIT 1",
            [environment_id],
        )
        return _aware(rows[0][0]) if rows else None

    def record_query(
        self,
        *,
        scan_id: int,
        environment_id: str,
        query_id: str,
        status: str,
        rows: int,
        requests: int,
        retries: int,
        throttled: int,
        reason: str | None = None,
        hint: str | None = None,
    ) -> None:
        """Records (or replaces) the outcome of one query in one environment of a scan."""
        _check_choice("query status", status, QUERY_STATUSES)
        with self._transaction():
            self._run(
                "INSERT OR REPLACE INTO scan_queries VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    scan_id,
                    environment_id,
                    query_id,
                    status,
                    rows,
                    requests,
                    retries,
                    throttled,
                    reason,
                    hint,
                ],
            )

    def scan_queries(self, scan_id: int) -> pd.DataFrame:
        """The per-environment, per-query outcomes of a scan, ordered by environment and query."""
        return self.frame(
            "SELECT * FROM scan_queries WHERE scan_id = ? ORDER BY environment_id, query_id",
            [scan_id],
        )

    # --- analyses and findings ----------------------------------------------------------

    def replace_findings(
        self,
        scan_id: int,
        *,
        analyzed: datetime,
        window_start: datetime,
        window_end: datetime,
        environments: Sequence[str] | None,
        thresholds: Mapping[str, Any],
        findings: pd.DataFrame,
    ) -> None:
        """Stores one analysis of a scan and its findings, replacing an earlier analysis of
        the same scan in one transaction (`findings` has `FINDING_COLUMNS` but scan_id and
        seq, with `measured` and `evidence` as JSON text)."""
        frame = findings.reindex(
            columns=[c for c in FINDING_COLUMNS if c not in ("scan_id", "seq")]
        )
        frame.insert(0, "seq", range(1, len(frame) + 1))
        frame.insert(0, "scan_id", scan_id)
        with self._transaction(f"storing the findings of scan {scan_id}"):
            self._run("DELETE FROM findings WHERE scan_id = ?", [scan_id])
            self._run("DELETE FROM analyses WHERE scan_id = ?", [scan_id])
            self._run(
                "INSERT INTO analyses VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    scan_id,
                    _naive(analyzed),
                    _naive(window_start),
                    _naive(window_end),
                    json.dumps(list(environments)) if environments is not None else None,
                    json.dumps(thresholds, sort_keys=True),
                    __version__,
                ],
            )
            if not frame.empty:
                with self._guard():
                    self._con.register("_auditor_findings", frame)
                try:
                    self._run("INSERT INTO findings SELECT * FROM _auditor_findings")
                finally:
                    with self._guard():
                        self._con.unregister("_auditor_findings")

    def findings(self, scan_id: int) -> pd.DataFrame:
        """The stored findings of a scan, in the order they were found (empty if none)."""
        return self.frame("SELECT * FROM findings WHERE scan_id = ? ORDER BY seq", [scan_id])

    def analysed_scans(self) -> list[int]:
        """Scans that have stored findings, oldest first."""
        return [int(r[0]) for r in self._run("SELECT scan_id FROM analyses ORDER BY scan_id")]

    # --- pages and checkpoints -----------------------------------------------------------

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
    ) -> int:
        """Upserts one page of rows and advances its checkpoint in one transaction.

        Rows are coerced to the table's types; within the page the last row with a key wins,
        and across pages a newer row replaces the stored one. `watermark`, when given, is
        set in the same transaction. Returns the number of rows written.
        """
        spec = _table_spec(table)
        frame = _page_frame(table, spec, rows, environment_id, scan_id)

        def attempt(replace: bool) -> None:
            with self._transaction(f"writing a page of {query_id} into {table}"):
                self._insert(table, spec, frame, replace=replace)
                self._put_checkpoint(
                    scan_id, environment_id, query_id, unit, next_link, done, len(frame), add=True
                )
                if watermark is not None:
                    self._put_watermark(environment_id, query_id, watermark)

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
        spec = _table_spec(table)
        frame = _page_frame(table, spec, rows, environment_id, scan_id)
        extra_table, extra_rows = also if also is not None else (table, [])
        extra_spec = _table_spec(extra_table)
        extra = _page_frame(extra_table, extra_spec, extra_rows, environment_id, scan_id)
        with (
            self._page_view(frame),
            self._page_view(extra, "_auditor_extra"),
            self._transaction(f"writing {len(units)} units into {table}"),
        ):
            # INSERT OR REPLACE: a batch is one commit for hundreds of units, and a resumed
            # scan may rewrite the rows of a unit it had not marked done.
            self._insert(table, spec, frame, replace=True)
            self._insert(extra_table, extra_spec, extra, replace=True, view="_auditor_extra")
            for query_id, unit, count in units:
                self._put_checkpoint(
                    scan_id, environment_id, query_id, unit, None, True, count, add=False
                )
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
        spec = _table_spec(table)
        frame = _page_frame(table, spec, rows, environment_id, scan_id)
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
        return _aware(rows[0][0]) if rows and rows[0][0] is not None else None

    def set_watermark(self, environment_id: str, query_id: str, value: datetime) -> None:
        """Sets the watermark of a query in an environment (naive datetimes are UTC)."""
        with self._transaction():
            self._put_watermark(environment_id, query_id, value)

    def _put_watermark(self, environment_id: str, query_id: str, value: datetime) -> None:
        self._run(
            "INSERT OR REPLACE INTO watermarks VALUES (?, ?, ?)",
            [environment_id, query_id, _naive(value)],
        )

    # --- reading -------------------------------------------------------------------------

    def count(self, table: str, environment_id: str | None = None) -> int:
        """Rows in a table, optionally of one environment."""
        spec = TABLES.get(table) or BOOKKEEPING.get(table)
        if spec is None:
            raise ValueError(f"unknown table {table!r}")
        sql = f'SELECT count(*) FROM "{table}"'  # noqa: S608 - a name from TABLES
        if environment_id is None:
            return int(self._run(sql)[0][0])
        if _ENV not in spec.names():
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

    def frame(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Runs a query and returns its result with timestamps as timezone-aware UTC."""
        # Reading: a failed write here is a file the query writes (an export), not the store.
        with self._lock, self._guard(writing=False):
            result = self._con.execute(sql, list(params)).df()
        for column in result.columns:
            dtype = result[column].dtype
            if isinstance(dtype, pd.DatetimeTZDtype):
                result[column] = result[column].dt.tz_convert("UTC")
            elif isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.datetime64):
                result[column] = result[column].dt.tz_localize("UTC")
        return result

    # --- plumbing ------------------------------------------------------------------------

    def _run(self, sql: str, params: Sequence[object] | None = None) -> list[tuple[Any, ...]]:
        """Runs one statement and fetches its whole result (DuckDB 2 keeps a connection busy
        until the result of `execute` is consumed)."""
        with self._lock, self._guard():
            return self._con.execute(sql, list(params) if params is not None else None).fetchall()

    @contextmanager
    def _guard(self, *, writing: bool = True) -> Iterator[None]:
        """DuckDB's errors meaning the file is damaged or cannot be written become a
        `StoreDamaged` or `StoreUnwritable`, the first kept in `failure`; others pass as they
        are (a duplicate key, say, which the caller handles)."""
        try:
            yield
        except duckdb.Error as exc:
            failure = self._failed(exc, writing=writing)
            if failure is None:
                raise
            raise failure from exc

    def _failed(self, exc: duckdb.Error, *, writing: bool = True) -> StoreError | None:
        failure = _store_failure(self.path, exc, writing=writing)
        if failure is not None and self.failure is None:
            self.failure = failure
            if self.on_failure is not None:
                self.on_failure(failure)
        return failure

    @contextmanager
    def _transaction(self, doing: str | None = None) -> Iterator[None]:
        """One transaction: committed when the block ends, rolled back if anything raises."""
        with self._lock:
            with self._guard():
                self._con.begin()
            try:
                yield
                self._con.commit()
            except BaseException as exc:
                # The failure being handled is the one to report, not a failed rollback.
                with suppress(duckdb.Error):
                    self._con.rollback()
                failure = self._failed(exc) if isinstance(exc, duckdb.Error) else None
                if failure is not None:
                    raise failure from exc
                if isinstance(exc, duckdb.Error) and doing:
                    raise StoreError(
                        f"{doing} failed: {clean(exc, 300)}",
                        hint="Nothing of it was stored; running again resumes from the last "
                        "checkpoint. Check free disk space and that no other program writes "
                        "to the store.",
                    ) from exc
                raise


# --- coercion: untrusted values to the declared column types, column-wise --------------------

_PLAIN = (int, float, str)
_BRACED_GUID = re.compile(r"\{([0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12})\}")
_LIMITS = {"INTEGER": (-(2**31), 2**31 - 1), "BIGINT": (-(2**63), 2**63 - 1)}
_BOOLEAN_TYPES = (bool, int, float, str, np.bool_)
_BOOLEANS: dict[Any, bool] = {
    True: True,  # also matches 1 and 1.0
    False: False,  # also matches 0 and 0.0
    "true": True,
    "false": False,
    "True": True,
    "False": False,
    "TRUE": True,
    "FALSE": False,
    "1": True,
    "0": False,
}


def _table_spec(table: str) -> TableSpec:
    spec = TABLES.get(table)
    if spec is None:
        raise ValueError(f"unknown data table {table!r}; known: {', '.join(TABLES)}")
    return spec


def _page_frame(
    table: str,
    spec: TableSpec,
    rows: Sequence[Mapping[str, Any]],
    environment_id: str,
    scan_id: int,
) -> pd.DataFrame:
    """The rows as a frame of the table's columns and types, deduplicated by key (last wins)."""
    fixed: dict[str, Any] = {_ENV: environment_id, "scan_id": scan_id}
    data: dict[str, Any] = {}
    for name, sql_type in spec.columns:
        if name in fixed:
            values: list[Any] = [fixed[name]] * len(rows)
        else:
            values = [row.get(name) for row in rows]
        data[name] = _COERCE[sql_type](values, name in spec.guids)
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    if frame.empty:
        return frame
    missing = frame[list(spec.key)].isna()
    if missing.to_numpy().any():
        column = next(c for c in spec.key if missing[c].any())
        raise StoreError(
            f"{int(missing.any(axis=1).sum())} row(s) for {table} have no {column}, part of "
            "the table's key",
            hint="The query must select every key column; this is a bug in the query "
            "definitions, please report it.",
        )
    return frame.drop_duplicates(subset=list(spec.key), keep="last", ignore_index=True)


def _text(values: list[Any], guid: bool) -> pd.Series:
    out = [v if v is None or type(v) is str else _to_text(v) for v in values]
    present = [v for v in out if v is not None]
    try:
        "".join(present).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (from "\ud800" in JSON) cannot be stored as UTF-8: escape them.
        out = [
            v if v is None else v.encode("utf-8", "backslashreplace").decode("utf-8") for v in out
        ]
    if guid:
        out = [v if v is None else _guid(v) for v in out]
    return pd.Series(out, dtype=object)


def _guid(value: str) -> str:
    """A GUID as the Web API writes it: lower case, and without the braces of "{GUID}", the
    form of exports and older APIs, which would otherwise never join the same id unbraced."""
    lowered = value.lower()
    if lowered.startswith("{"):
        match = _BRACED_GUID.fullmatch(lowered)
        if match:
            return match.group(1)
    return lowered


def _to_text(value: Any) -> str | None:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _number(values: list[Any]) -> pd.Series:
    # bool is an int subclass, but True is not a count: only exact int, float and str pass,
    # and numpy numbers (a caller may build rows from a frame) as plain ones.
    cleaned = [
        v if type(v) in _PLAIN else (None if v is None else _numpy_number(v)) for v in values
    ]
    return pd.to_numeric(
        pd.Series(cleaned, dtype=object), errors="coerce", dtype_backend="numpy_nullable"
    )


def _numpy_number(value: Any) -> int | float | None:
    if isinstance(value, np.integer | np.floating):
        return value.item()
    return None


def _integer(sql_type: str) -> Callable[[list[Any], bool], pd.Series]:
    low, high = _LIMITS[sql_type]

    def coerce(values: list[Any], guid: bool) -> pd.Series:
        numbers = _number(values)
        if str(numbers.dtype) == "Int64":
            fits = (numbers >= low) & (numbers <= high)
        else:
            whole = numbers.astype("Float64")
            # Not integral, infinite or out of range: NULL rather than a wrong number.
            fits = (whole % 1 == 0) & (whole >= low) & (whole < float(high) + 1)
        return numbers.where(fits.fillna(False).astype(bool)).astype("Int64")

    return coerce


def _double(values: list[Any], guid: bool) -> pd.Series:
    return _number(values).astype("Float64")


def _boolean(values: list[Any], guid: bool) -> pd.Series:
    out = [_BOOLEANS.get(v) if type(v) in _BOOLEAN_TYPES else None for v in values]
    return pd.Series(out, dtype="boolean")


def _timestamp(values: list[Any], guid: bool) -> pd.Series:
    # Only text starting with a digit (ISO 8601) or datetimes: pandas would read "now" and
    # "today" as times too, and numbers as epoch offsets.
    cleaned = [
        v if (type(v) is str and v[:1].isdigit()) or isinstance(v, datetime) else None
        for v in values
    ]
    parsed = pd.to_datetime(
        pd.Series(cleaned, dtype=object), utc=True, errors="coerce", format="ISO8601"
    )
    return parsed.dt.tz_convert(None).astype("datetime64[us]")


_COERCE: dict[str, Callable[[list[Any], bool], pd.Series]] = {
    "VARCHAR": _text,
    "INTEGER": _integer("INTEGER"),
    "BIGINT": _integer("BIGINT"),
    "DOUBLE": _double,
    "BOOLEAN": _boolean,
    "TIMESTAMP": _timestamp,
}


# --- small helpers -------------------------------------------------------------------------

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
_SCAN_SELECT = (
    "SELECT scan_id, started, ended, status, window_start, window_end, arguments FROM scans"
)


def _scan_info(row: tuple[Any, ...]) -> ScanInfo:
    scan_id, started, ended, status, window_start, window_end, arguments = row
    try:
        parsed = json.loads(arguments) if arguments else {}
    except ValueError:
        parsed = {}
    return ScanInfo(
        scan_id=int(scan_id),
        started=_aware(started),
        ended=_aware(ended) if ended is not None else None,
        status=str(status),
        window_start=_aware(window_start),
        window_end=_aware(window_end),
        arguments=parsed if isinstance(parsed, dict) else {},
    )


def _naive(value: datetime) -> datetime:
    """UTC without tzinfo, as a DuckDB TIMESTAMP holds it; a naive value is taken as UTC."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


def _aware(value: datetime) -> datetime:
    """A TIMESTAMP read back from DuckDB, marked as the UTC it holds."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{what} must be one of {', '.join(choices)}, got {value!r}")


# --- opening safely ---------------------------------------------------------------------------

# DuckDB never installs or loads an extension for the store: a file it does not recognise
# (a SQLite database) would otherwise make it download a reader for it from the internet.
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
# A DuckDB file starts with a checksum (8 bytes) and the magic bytes "DUCK"
# (https://duckdb.org/docs/stable/internals/storage).
_MAGIC_AT = 8
_MAGIC = b"DUCK"
_HEADER_BYTES = 4096
_KINDS = (
    (b"SQLite format 3\x00", "a SQLite database"),
    (b"PAR1", "a Parquet file"),
    (b"PK\x03\x04", "a ZIP archive"),
)
# What an auditor store never holds: SQL that came with the file.
_FOREIGN_OBJECTS = (
    "SELECT 'a view' FROM duckdb_views() WHERE NOT internal AND NOT temporary"
    " UNION ALL SELECT 'a macro' FROM duckdb_functions() WHERE NOT internal"
    " AND function_type IN ('macro', 'table_macro')"
    " UNION ALL SELECT 'a computed or default column' FROM duckdb_columns()"
    " WHERE NOT internal AND column_default IS NOT NULL"
    " UNION ALL SELECT 'a CHECK constraint' FROM duckdb_constraints()"
    " WHERE constraint_type = 'CHECK' LIMIT 1"
)


def _check_location(path: Path, *, read_only: bool) -> bool:
    """Whether a store file exists at `path`; a StoreError for a folder, a device or a pipe,
    or a missing store that a read-only open cannot create."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise StoreError(
                f"{path} is a symbolic link to a file that does not exist; the auditor does not "
                "create a store through a link",
                hint="Remove the link, or give the path of the store itself with --store.",
            ) from None
        if read_only:
            raise StoreError(
                f"no store at {path}; run auditor collect first",
                hint="Run `auditor collect`, or point --store (AUDITOR_STORE) at an existing "
                "store.",
            ) from None
        return False
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(mode):
        raise StoreError(
            f"{path} is a directory, not a store file",
            hint="Give the path of a .duckdb file, e.g. --store auditor-data/auditor.duckdb.",
        )
    if not stat.S_ISREG(mode):
        raise StoreError(
            f"{path} is not a regular file (a device, a pipe or a socket), not a DuckDB store",
            hint="Give the path of a .duckdb file, e.g. --store auditor-data/auditor.duckdb.",
        )
    return True


def _check_header(path: Path) -> None:
    """Reads the first bytes of an existing file: a StoreError, naming what the file looks
    like, when it is not a DuckDB file. Nothing is written."""
    try:
        # Non-blocking: a pipe put at the path meanwhile must not hang the open.
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            head = os.read(handle, _HEADER_BYTES)
        finally:
            os.close(handle)
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc.strerror or exc}") from exc
    if head[_MAGIC_AT : _MAGIC_AT + len(_MAGIC)] == _MAGIC:
        return
    raise StoreError(
        f"{path} is {_kind(head)}, not a DuckDB store",
        hint="--store must name an auditor store (a .duckdb file); the file was not changed. "
        "Move it away or choose another path, e.g. --store new.duckdb.",
    )


def _kind(head: bytes) -> str:
    """What the first bytes of a file that is not a DuckDB file look like."""
    if not head:
        return "an empty file"
    for magic, kind in _KINDS:
        if head.startswith(magic):
            return kind
    try:
        # Incremental: a character cut at the end of what was read is not an error.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "a file without a DuckDB header"
    return "a text file" if "\x00" not in text else "a file without a DuckDB header"


def _create_folder(folder: Path) -> None:
    """The folder of a new store: an existing one is used as it is, a missing one is made
    owner-only (0700)."""
    if folder.is_dir():
        return
    try:
        private_dir(folder)
    except WriteError as exc:
        raise StoreError(
            f"cannot create the folder of the store: {exc.message}",
            hint="Choose a writable location with --store or AUDITOR_STORE.",
        ) from exc


def _connect(
    path: Path, *, read_only: bool, files_in: Path | None, external: bool | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the store. DuckDB reads and writes no other file, unless
    `files_in` names the one folder it may write into (an export's `COPY ... TO`)."""
    config = dict(_CONFIG)
    allow = bool(external)
    if not allow and files_in is None:
        config["enable_external_access"] = False
    try:
        connection = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.Error as exc:
        raise _open_error(path, exc, writing=not read_only) from exc
    if files_in is not None:
        folder = str(Path(files_in).absolute()).replace("'", "''").rstrip("/") + "/"
        try:
            # Only this way round: DuckDB takes no new folders once external access is off.
            connection.execute(f"SET allowed_directories = ['{folder}']")
            connection.execute("SET enable_external_access = false")
        except duckdb.Error as exc:
            connection.close()
            raise _open_error(path, exc, writing=not read_only) from exc
    return connection


def _owner_only(path: Path) -> None:
    """The store and its write-ahead log readable by their owner only (a store made by an
    earlier auditor followed the umask)."""
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            mode = os.stat(file).st_mode
            if stat.S_IMODE(mode) & 0o077:
                os.chmod(file, stat.S_IMODE(mode) & 0o700)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(
                f"cannot make the store {file} owner-only: {exc.strerror or exc}",
                hint="Check that you own the store file, or collect into a new store with --store.",
            ) from exc


class _PrivateFiles:
    """While a store is open, files the process creates are owner-only (umask 077): DuckDB
    creates the write-ahead log and its temporary files itself, with the umask's mode, and
    they hold tenant telemetry. Counted, so the last store closed restores the umask."""

    _lock = threading.Lock()
    _open = 0
    _saved = 0

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            if cls._open == 0:
                cls._saved = os.umask(0o077)
                os.umask(cls._saved | 0o077)
            cls._open += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._open -= 1
            if cls._open == 0:
                os.umask(cls._saved)


# --- DuckDB's errors, as the store's --------------------------------------------------------

# The operating system's reasons a write fails for want of room or permission.
_WRITE_FAILED = re.compile(
    "|".join(
        re.escape(os.strerror(code))
        for code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES)
    )
)
_DAMAGE = re.compile(r"corrupt|checksum|could not read", re.IGNORECASE)
_CHECKSUM_AT = re.compile(r"checksum.*? in block at location (\d+)")
_SHORT_AT = re.compile(r"Could not read enough bytes.*?read (\d+) bytes from location (\d+)")


def _store_failure(path: Path, exc: duckdb.Error, *, writing: bool) -> StoreError | None:
    """The StoreError for a DuckDB error meaning the file is damaged or cannot be written;
    None for any other error. `writing`: the statement wrote to the store (a read that
    fails for want of room is writing some other file)."""
    text = str(exc)
    # DuckDB stops using a database after a failed checkpoint or a corrupt read: "fatal".
    fatal = isinstance(exc, duckdb.FatalException)
    reason = _WRITE_FAILED.search(text)
    if reason:
        # Without a write to the store, it is a file the query writes, or the store's access
        # rights when opening it: not the store's failure.
        if writing or fatal:
            return StoreUnwritable(f"the store {clean(path)} cannot be written ({reason.group(0)})")
        return None
    damaged = isinstance(exc, duckdb.SerializationException | duckdb.InternalException)
    if fatal or damaged or _DAMAGE.search(text):
        return StoreDamaged(f"the store {clean(path)} is damaged ({_damage(text)})")
    return None


def _damage(text: str) -> str:
    """DuckDB's account of the damage, short and on one line."""
    checksum = _CHECKSUM_AT.search(text)
    if checksum:
        return f"a checksum does not match, in the block at byte {checksum.group(1)}"
    short = _SHORT_AT.search(text)
    if short:
        size, at = short.groups()
        return f"the file is cut short: no {size} bytes at byte {at}"
    first = text.strip().splitlines()[0] if text.strip() else "DuckDB could not read it"
    return clean(re.sub(r' ?"[^"]*"', "", first), 200)  # the path is said already


def _open_error(path: Path, exc: duckdb.Error, *, writing: bool) -> StoreError:
    """Says why DuckDB could not open the file, and what to do about it."""
    text = str(exc)
    if "different configuration" in text:
        return _AlreadyOpen(
            f"the store {path} is already open in this process, with other settings",
            hint="Open the store once and share it; this is a bug in the auditor, please "
            "report it.",
        )
    if re.search(r"\block on file|conflicting lock", text, re.IGNORECASE):
        pid = re.search(r"\(PID (\d+)\)", text)
        return StoreError(
            f"the store {path} is in use by another process"
            + (f" (PID {pid.group(1)})" if pid else ""),
            hint="Wait for the other auditor (collect or report) to finish, or use another "
            "--store.",
        )
    failure = _store_failure(path, exc, writing=writing)
    if failure is not None:
        return failure
    if "not a valid DuckDB database" in text:
        return StoreError(
            f"{path} is not a DuckDB store",
            hint="--store must name an auditor store (a .duckdb file); move this file away or "
            "choose another path, e.g. --store new.duckdb.",
        )
    if "version" in text.lower():
        return StoreError(
            f"{path} was written by a different DuckDB version: {clean(text, 300)}",
            hint="Upgrade the auditor, or collect into a new store, e.g. --store new.duckdb.",
        )
    return StoreError(f"cannot open the store {path}: {clean(text, 300)}")
