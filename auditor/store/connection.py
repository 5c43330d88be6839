"""An open store: its one DuckDB connection, opening and upgrading it, transactions, and
DuckDB's failures of the file turned into the store's errors.

An existing file is checked before DuckDB may write to it (`file_checks`) and opened
read-only first, so a damaged file, another program's database or a newer store is refused
unchanged. A DuckDB error meaning the file is damaged or cannot be written, wherever it
happens, becomes a `StoreDamaged` or `StoreUnwritable` (the first is kept in
`StoreConnection.failure`, so a caller that swallowed it can still tell).

`StoreConnection` holds the plumbing the store's reads and writes share; `auditor.store.Store`
adds them (`scans`, `pages`, `reads`, ...).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from auditor import __version__
from auditor.store import schema
from auditor.store.errors import AlreadyOpen, StoreError, store_failure
from auditor.store.file_checks import (
    FOREIGN_OBJECTS,
    PrivateFiles,
    check_header,
    check_location,
    connect,
    create_folder,
    owner_only,
)
from auditor.terminal import clean

# Arrow types read as pandas' own nullable types, so nothing goes through Python objects.
_ARROW_TYPES = {
    pa.string(): pd.StringDtype("pyarrow", na_value=np.nan),
    pa.large_string(): pd.StringDtype("pyarrow", na_value=np.nan),
    pa.int32(): pd.Int64Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.float64(): pd.Float64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


class StoreConnection:
    """An open store's connection, guarded by a lock, so threads may share it."""

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
        self._private = False  # holds `PrivateFiles` until closed

    # --- opening -----------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, read_only: bool = False, files_in: Path | None = None) -> Self:
        """Opens (creating or migrating it when allowed) the store at `path`.

        An existing file is checked before DuckDB may write to it (see the module docstring).
        `files_in` is the one folder DuckDB may write files into (an export's `COPY ... TO`);
        without it a read-write store touches no file but its own, and a read-only one keeps
        DuckDB's file access, which `auditor export` writes through.
        """
        path = Path(path)
        exists = check_location(path, read_only=read_only)
        if exists:
            check_header(path)
            if not read_only:
                cls._check_before_writing(path)
        else:
            create_folder(path.parent)
        store = cls._connected(path, read_only=read_only, files_in=files_in)
        try:
            store._run("SET TimeZone = 'UTC'")
            if not read_only:
                owner_only(path)
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
        except AlreadyOpen:
            return  # open in this process already, so it was checked when first opened
        with probe:
            probe._version()

    @classmethod
    def _connected(
        cls, path: Path, *, read_only: bool, files_in: Path | None, external: bool | None = None
    ) -> Self:
        """A store on a new connection, owner-only files (see `PrivateFiles`) until closed."""
        PrivateFiles.acquire()
        try:
            connection = connect(path, read_only=read_only, files_in=files_in, external=external)
        except BaseException:
            PrivateFiles.release()
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
                self._set_meta("schema_version", str(schema.SCHEMA_VERSION))
                self._set_meta("created_with", f"auditor {__version__}")
            return
        if version == schema.SCHEMA_VERSION:
            return
        if self.read_only:
            raise StoreError(
                f"{self.path} has store schema {version} and needs upgrading to "
                f"{schema.SCHEMA_VERSION}, which a read-only open cannot do",
                hint="Run `auditor collect` with this store once; it upgrades the file.",
            )
        try:
            with self._transaction():
                for step in range(version + 1, schema.SCHEMA_VERSION + 1):
                    schema.MIGRATIONS[step](self._con)
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
        if version > schema.SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer auditor (store schema {version}; this "
                f"auditor reads schema {schema.SCHEMA_VERSION})",
                hint="Upgrade the auditor (pip install -U pp-telemetry-auditor), or collect into "
                "a new store, e.g. --store new.duckdb.",
            )
        if any(
            step not in schema.MIGRATIONS for step in range(version + 1, schema.SCHEMA_VERSION + 1)
        ):
            raise StoreError(
                f"{self.path} has store schema {version}, which this auditor cannot upgrade to "
                f"{schema.SCHEMA_VERSION}",
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
        found = self._run(FOREIGN_OBJECTS)
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
        for statement in schema.create_statements():
            self._run(statement)

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
                    PrivateFiles.release()

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

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- plumbing ------------------------------------------------------------------------

    def _frame(self, sql: str, params: Sequence[Any] = (), *, arrow: bool = False) -> pd.DataFrame:
        """Runs a query of the store's own and returns its result with timestamps as
        timezone-aware UTC.

        With `arrow`, the result comes through Arrow (the analysis frames): text stays in
        Arrow arrays (pandas' "str", missing text NaN) rather than becoming a Python string
        per cell and then an Arrow array again, and integers, floats and booleans come as
        pandas' nullable types; half the load time of scale large."""
        # Reading: a failed write here is a file the query writes (an export), not the store.
        with self._lock, self._guard(writing=False):
            table = None
            if arrow:
                table = self._con.sql(sql, params=list(params) or None).to_arrow_table()
            if table is None or table.num_rows == 0:
                # An empty Arrow table becomes columns without a single chunk, which pandas
                # 3.1 cannot merge (pyarrow: "cannot construct ChunkedArray from empty
                # vector"): an empty result is read as before.
                result = self._con.execute(sql, list(params)).df()
            else:
                # One chunk per column, as pandas' own "str" arrays have (DuckDB hands over
                # up to a million rows per chunk: below that nothing is copied);
                # self_destruct frees each Arrow column once converted, so the rows are not
                # held twice at the peak.
                result = table.combine_chunks().to_pandas(
                    types_mapper=_ARROW_TYPES.get, self_destruct=True, split_blocks=True
                )
                del table
        for column in result.columns:
            dtype = result[column].dtype
            if isinstance(dtype, pd.DatetimeTZDtype):
                result[column] = result[column].dt.tz_convert("UTC")
            elif isinstance(dtype, np.dtype) and np.issubdtype(dtype, np.datetime64):
                result[column] = result[column].dt.tz_localize("UTC")
        return result

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
        failure = store_failure(self.path, exc, writing=writing)
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
