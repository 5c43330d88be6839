"""The engines that run the reductions: DuckDB embedded (the default) and Spark.

An engine knows its SQL dialect, the relations a source gave it (name -> table name or
parenthesised query), and how to add a small pandas frame (the flows' keys, the steps'
modes) as one more relation. Results come back as pandas frames.
"""

from __future__ import annotations

import contextlib
import itertools
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any, Protocol

import duckdb
import pandas as pd

from auditor.engine.dialect import DUCKDB, SPARK, Dialect

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

    import pyarrow as pa

ENGINES = ("duckdb", "spark")


class Engine(Protocol):
    """What the reducer needs of an engine."""

    dialect: Dialect
    relations: dict[str, str]

    def add_frame(self, name: str, frame: pd.DataFrame) -> None:
        """Makes a pandas frame the relation `name`."""

    def parquet(self, name: str, files: Sequence[str]) -> str:
        """A relation to put after FROM that reads the Parquet files of table `name`."""

    def delta(self, name: str, folder: Path) -> str | None:
        """A relation reading a Delta table through the engine's own Delta reader, or None
        when the engine has none (the source then reads the table's live Parquet files)."""

    def columns(self, relation: str) -> list[str]:
        """The column names of a relation."""

    def frame(self, sql: str) -> pd.DataFrame:
        """The result of a query, as a pandas frame."""

    def close(self) -> None:
        """Releases what the engine made for this reducer."""


_names = itertools.count()


def _unique(name: str) -> str:
    """A relation name no other reducer in this process uses (Spark views are per session)."""
    return f"auditor_{name}_{next(_names)}"


class DuckDBEngine:
    """DuckDB over the store (a cursor of its connection) or an in-memory database.

    The session's time zone is UTC, so a timestamp with a zone (pandas, Parquet) is cut into
    days and compared with the window's bounds in UTC, as the store's naive UTC ones are.
    """

    dialect = DUCKDB

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection | None = None,
        relations: Mapping[str, str] | None = None,
        guard: Callable[[], AbstractContextManager[None]] = contextlib.nullcontext,
    ) -> None:
        self.in_store = connection is not None  # a connection to the store's database
        self.connection = connection if connection is not None else _in_memory().cursor()
        self._guard = guard
        self.connection.execute("SET TimeZone = 'UTC'")
        self.relations = dict(relations or {})
        self._views: list[str] = []

    def add_frame(self, name: str, frame: pd.DataFrame) -> None:
        view = _unique(name)
        self.connection.register(view, frame)
        self._views.append(view)
        self.relations[name] = view

    def add_arrow(self, name: str, rows: pa.Table) -> str:
        """Makes an Arrow table a relation; returns its name."""
        view = _unique(name)
        self.connection.register(view, rows)
        self._views.append(view)
        return view

    def parquet(self, name: str, files: Sequence[str]) -> str:
        return f"read_parquet({_list(files)}, union_by_name = true)"

    def delta(self, name: str, folder: Path) -> str | None:
        return None  # DuckDB's delta extension is a download; deltalake lists the files

    def columns(self, relation: str) -> list[str]:
        with self._guard():
            rows = self.connection.execute(f"DESCRIBE SELECT * FROM {relation}").fetchall()  # noqa: S608
        return [str(row[0]) for row in rows]

    def frame(self, sql: str) -> pd.DataFrame:
        with self._guard():
            return self.connection.execute(sql).df()

    def close(self) -> None:
        for view in self._views:
            self.connection.unregister(view)
        self._views.clear()
        self.connection.close()


def write_parquet(rows: pa.Table, target: Path) -> None:
    """An Arrow table as a Parquet file (written by DuckDB in memory, as `auditor export`)."""
    connection = _in_memory().cursor()
    try:
        connection.register("rows_to_write", rows)
        quoted = str(target).replace("'", "''")
        connection.execute(f"COPY rows_to_write TO '{quoted}' (FORMAT parquet)")
    finally:
        connection.close()


_MEMORY: list[duckdb.DuckDBPyConnection] = []


def _in_memory() -> duckdb.DuckDBPyConnection:
    """The process's one in-memory DuckDB database: each database reserves its own memory
    (about 200 MB of address space here), so reducers over frames share one, each through a
    connection of its own."""
    if not _MEMORY:
        _MEMORY.append(
            duckdb.connect(
                config={"autoinstall_known_extensions": False, "autoload_known_extensions": False}
            )
        )
    return _MEMORY[0]


class SparkEngine:
    """Spark SQL in a session: local mode on a laptop or CI, a cluster in production.

    Small frames go in through `createDataFrame`; Parquet files through `spark.read`; results
    come back through `toPandas` (Arrow when the session allows it). The session's time zone
    must be UTC (`spark.sql.session.timeZone`), checked here, so days are UTC days.
    """

    dialect = SPARK

    def __init__(self, session: Any) -> None:
        zone = session.conf.get("spark.sql.session.timeZone")
        if zone not in ("UTC", "Etc/UTC", "Z", "+00:00"):
            raise ValueError(
                f"the Spark session's time zone is {zone}; set spark.sql.session.timeZone"
                " to UTC so that days and windows are UTC"
            )
        self.session = session
        self.relations: dict[str, str] = {}
        self._views: list[str] = []

    def add_frame(self, name: str, frame: pd.DataFrame) -> None:
        view = _unique(name)
        schema, rows = _spark_rows(frame)
        self.session.createDataFrame(rows, schema).createOrReplaceTempView(view)
        self._views.append(view)
        self.relations[name] = view

    def parquet(self, name: str, files: Sequence[str]) -> str:
        view = _unique(name)
        self.session.read.option("mergeSchema", "true").parquet(*files).createOrReplaceTempView(
            view
        )
        self._views.append(view)
        return view

    def delta(self, name: str, folder: Path) -> str | None:
        # Fabric and Synapse Spark sessions carry Delta Lake (runtime-1-3: Delta Lake 3.2);
        # a plain local session has no Delta reader.
        extensions = str(self.session.conf.get("spark.sql.extensions", "") or "")
        if "DeltaSparkSessionExtension" not in extensions:
            return None
        view = _unique(name)
        self.session.read.format("delta").load(str(folder)).createOrReplaceTempView(view)
        self._views.append(view)
        return view

    def columns(self, relation: str) -> list[str]:
        return list(self.session.sql(f"SELECT * FROM {relation} LIMIT 0").columns)  # noqa: S608

    def frame(self, sql: str) -> pd.DataFrame:
        """Collected rows, not `toPandas`: its Arrow path depends on the pandas version in the
        session's Python. Timestamps travel as microseconds since the epoch, since
        `collect` would give local times of the driver's time zone."""
        from pyspark.sql import types

        data = self.session.sql(sql)
        times = [f.name for f in data.schema.fields if isinstance(f.dataType, types.TimestampType)]
        if times:
            data = data.selectExpr(
                *(f"unix_micros(`{c}`) AS `{c}`" if c in times else f"`{c}`" for c in data.columns)
            )
        frame = pd.DataFrame.from_records(
            [tuple(row) for row in data.collect()], columns=list(data.columns)
        )
        for column in times:
            frame[column] = pd.to_datetime(frame[column], unit="us", utc=True)
        return frame

    def close(self) -> None:
        for view in self._views:
            self.session.catalog.dropTempView(view)
        self._views.clear()


def _spark_rows(frame: pd.DataFrame) -> tuple[Any, list[tuple[Any, ...]]]:
    """A Spark schema from the frame's dtypes and its rows with None for missing values:
    Spark infers no type from a column of nulls, and reads neither `pd.NA` nor NaT."""
    from pyspark.sql import types

    fields = []
    for column, dtype in frame.dtypes.items():
        if pd.api.types.is_bool_dtype(dtype):
            kind: Any = types.BooleanType()
        elif pd.api.types.is_integer_dtype(dtype):
            kind = types.LongType()
        elif pd.api.types.is_float_dtype(dtype):
            kind = types.DoubleType()
        elif pd.api.types.is_datetime64_any_dtype(dtype):
            kind = types.TimestampType()
        else:
            kind = types.StringType()
        fields.append(types.StructField(str(column), kind, nullable=True))
    plain = frame.astype(object).where(frame.notna(), None)
    rows = [tuple(row) for row in plain.itertuples(index=False, name=None)]
    return types.StructType(fields), rows


def local_spark(app: str = "auditor", cores: int | None = None) -> Any:
    """A local-mode Spark session bound to loopback, in UTC, without its web UI."""
    from pyspark.sql import SparkSession

    master = f"local[{cores}]" if cores else "local[*]"
    return (
        SparkSession.builder.master(master)
        .appName(app)
        .config("spark.ui.enabled", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", "8")
        .getOrCreate()
    )


def _list(files: Sequence[str]) -> str:
    return "[" + ", ".join("'" + _local(f).replace("'", "''") + "'" for f in files) + "]"


def _local(uri: str) -> str:
    """A local path for a `file://` URI (what deltalake lists for a local table)."""
    return uri.removeprefix("file://") if uri.startswith("file:///") else uri
