"""Where the reductions' rows come from: the store, an `auditor export` folder, or a lake
folder laid out as Link to Microsoft Fabric or Azure Synapse Link export Dataverse.

Every source gives the engine the same relations (`ROW_TABLES`), with the store's column
names and types and cut to the analysis window and environments by the store's own rule
(`auditor.store.reads.TIME_COLUMNS`), so one SQL text serves them all.

A lake folder holds one folder per Dataverse table, named by its logical name (`flowrun`,
`plugintracelog`), either directly (one environment) or under a folder per environment id.
Each table is Delta (a `_delta_log` folder: its live files are read, never every file in
the folder) or plain Parquet. Dataverse's columns are kept (the store uses the same logical
names) but for a few renames, and a lake's own rows are cleaned as Microsoft documents:
- deleted rows: both links soft-delete, flagging the row with `IsDelete` ("If True this
  record is deleted"), spelt `isDeleted` on other pages; either spelling is read
  (https://learn.microsoft.com/power-apps/maker/data-platform/azure-synapse-link-select-fno-data#working-with-data-and-metadata;
  https://learn.microsoft.com/power-apps/maker/data-platform/fabric-link-faq). In an
  append-only export a delete is a new row whose body is empty (same page): such a marker is
  dropped. A deleted row that keeps its data is kept (see `_dataverse_rows`: for these log
  tables a delete is retention, inferred).
- versions: in append-only data take "the latest row per Id by versionnumber and
  SinkModifiedOn" (https://learn.microsoft.com/power-apps/maker/data-platform/export-data-lake-faq).
  Fabric's Delta tables are merged in place, where this changes nothing.
"""

# Relations and column names are made here from the lake's schema and the store's
# tables; values are literals made by `auditor.engine.dialect`.
# ruff: noqa: S608

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from auditor.engine.dialect import text, texts, timestamp
from auditor.engine.engines import DuckDBEngine, Engine, SparkEngine, write_parquet
from auditor.errors import UsageError
from auditor.frames import Window, dtypes
from auditor.store import TABLES, Store
from auditor.store.reads import KEPT_UNFINISHED, TIME_COLUMNS

# The row tables the reductions read (the rest of the analysis reads the store's frames).
# `flow_run_actions` follows `flow_api_runs`: an action belongs to the window of its run.
ROW_TABLES: tuple[str, ...] = (
    "flow_api_runs",
    "flow_run_actions",
    "flowruns",
    "plugintracelogs",
    "asyncoperations",
)


@dataclass(frozen=True)
class LakeTable:
    """How a store table appears in a Dataverse lake export."""

    logical_name: str  # the Dataverse table, and the lake folder's name
    id_column: str
    renames: Mapping[str, str] = field(default_factory=dict)  # lake column -> store column


# Dataverse tables by logical name; the store keeps their column logical names except where
# renamed. flowrun's `workflow` is its lookup to the flow (the Web API's `_workflow_value`,
# stored as `workflow_ref`):
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/flowrun
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/plugintracelog
# https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation
# (whether a link can export `asyncoperation` no page states: read when the lake has it).
LAKE_TABLES: dict[str, LakeTable] = {
    "flowruns": LakeTable("flowrun", "flowrunid", {"workflow": "workflow_ref"}),
    "plugintracelogs": LakeTable("plugintracelog", "plugintracelogid"),
    "asyncoperations": LakeTable("asyncoperation", "asyncoperationid"),
}

_DELETE_FLAGS = ("isdelete", "isdeleted")
_SPARK_TYPES = {"VARCHAR": "STRING"}  # DuckDB reads STRING as VARCHAR too


@dataclass
class Placed:
    """Where each relation's rows came from (`store`, or a folder), for the coverage."""

    sources: dict[str, str] = field(default_factory=dict)
    temporary: list[Path] = field(default_factory=list)

    def cleanup(self) -> None:
        for folder in self.temporary:
            shutil.rmtree(folder, ignore_errors=True)
        self.temporary.clear()


def window_condition(
    table: str, window: Window, environments: Sequence[str] | None, runs: str = "flow_api_runs"
) -> str:
    """The store's rule for a table's rows in a window (`Reads.window_rows`), as literals,
    over the table named `rows_in`. An action is in the window when its run (in `runs`, a
    relation of flow API runs) is."""
    conditions = ["TRUE"]
    if environments is not None:
        conditions.append(f"environment_id IN {texts(environments)}" if environments else "FALSE")
    if table == "flow_run_actions":
        start, end = timestamp(window.start), timestamp(window.end)
        conditions.append(
            f"EXISTS (SELECT 1 FROM {runs} r WHERE r.environment_id = rows_in.environment_id"
            " AND r.flow_name = rows_in.flow_name AND r.run_name = rows_in.run_name"
            f" AND (r.start_time IS NULL OR (r.start_time >= {start} AND r.start_time <= {end})))"
        )
    if table in TIME_COLUMNS:
        time = TIME_COLUMNS[table]
        kept = f" OR {KEPT_UNFINISHED[table]}" if table in KEPT_UNFINISHED else ""
        start, end = timestamp(window.start), timestamp(window.end)
        conditions.append(f"({time} IS NULL OR ({time} >= {start} AND {time} <= {end}){kept})")
    return " AND ".join(conditions)


def place_rows(
    engine: Engine,
    store: Store | None,
    window: Window,
    environments: Sequence[str] | None,
    lake: Path | None = None,
) -> Placed:
    """Gives the engine every relation of `ROW_TABLES`: from the lake where it holds the
    table, else from the store."""
    placed = Placed()
    from_lake = _lake_tables(engine, lake, environments, store) if lake is not None else {}
    for table in ROW_TABLES:
        if table in from_lake:
            relation, where = from_lake[table]
            # The runs an action's window is read from: placed before it (see ROW_TABLES).
            runs = engine.relations.get("flow_api_runs", "flow_api_runs")
            condition = window_condition(table, window, environments, runs)
            engine.relations[table] = f"(SELECT * FROM {relation} rows_in WHERE {condition})"
            placed.sources[table] = where
        elif store is not None:
            condition = window_condition(table, window, environments)
            engine.relations[table] = _store_relation(engine, store, table, condition, placed)
            placed.sources[table] = "store"
        else:
            raise UsageError(
                f"the lake {lake} has no {table} table and no store was given",
                hint="Run with --store, or add the table to the lake folder.",
            )
    return placed


def _store_relation(
    engine: Engine, store: Store, table: str, condition: str, placed: Placed
) -> str:
    """The store's rows of a table: read in place by DuckDB when the engine is a connection
    to the store; otherwise fetched once (the store reads no other file, so the engine
    cannot reach it) and handed over as Arrow (DuckDB) or a Parquet copy (Spark)."""
    query = f'SELECT * FROM "{table}" rows_in WHERE {condition}'
    if isinstance(engine, DuckDBEngine) and engine.in_store:
        return f"({query})"
    # A copy leaves out what no reduction reads (a trace's message block can be a megabyte).
    kept = ", ".join(f'"{c}"' for c in dtypes(table))
    rows = store.arrow_rows(f'SELECT {kept} FROM "{table}" rows_in WHERE {condition}')
    if isinstance(engine, DuckDBEngine):
        return engine.add_arrow(table, rows)
    folder = Path(tempfile.mkdtemp(prefix=f"auditor-{table}-"))
    placed.temporary.append(folder)
    target = folder / f"{table}.parquet"
    write_parquet(rows, target)
    return engine.parquet(table, [str(target)])


def _lake_tables(
    engine: Engine, lake: Path, environments: Sequence[str] | None, store: Store | None
) -> dict[str, tuple[str, str]]:
    """table -> (relation in store shape, where it came from) for each table the lake has."""
    if not lake.is_dir():
        raise UsageError(f"the lake folder {lake} does not exist", hint="Give a folder.")
    found: dict[str, tuple[str, str]] = {}
    for table in ROW_TABLES:
        exported = lake / f"{table}.parquet"  # `auditor export`: store names and columns
        if exported.is_file():
            relation = engine.parquet(table, [str(exported)])
            found[table] = (_store_shape(engine, table, relation), f"export {exported}")
            continue
        spec = LAKE_TABLES.get(table)
        if spec is None:
            continue
        folders = _environment_folders(lake, spec.logical_name, environments, store)
        if not folders:
            continue
        parts = [
            _dataverse_rows(engine, table, spec, env, folder) for env, folder in folders.items()
        ]
        union = " UNION ALL ".join(f"SELECT * FROM {p} part" for p in parts)
        names = ", ".join(f"{env}: {folder}" for env, folder in folders.items())
        found[table] = (f"({union})", f"lake {names}")
    return found


def _environment_folders(
    lake: Path, logical_name: str, environments: Sequence[str] | None, store: Store | None
) -> dict[str, Path]:
    """environment id -> the folder of a Dataverse table in the lake."""
    direct = lake / logical_name
    if direct.is_dir():
        wanted = list(environments) if environments is not None else _store_environments(store)
        if len(wanted) != 1:
            raise UsageError(
                f"the lake folder {lake} holds one environment's tables but the analysis"
                f" covers {len(wanted)} environments",
                hint="Put each environment's tables under <lake>/<environment id>/, or analyse"
                " one environment with --environment.",
            )
        return {wanted[0]: direct}
    out = {}
    for child in sorted(lake.iterdir()):
        if (child / logical_name).is_dir() and (environments is None or child.name in environments):
            out[child.name] = child / logical_name
    return out


def _store_environments(store: Store | None) -> list[str]:
    return sorted(store.environment_names()) if store is not None else []


def _table_files(folder: Path) -> list[str]:
    """The live Parquet files of a lake table folder: from its Delta log when it has one."""
    if (folder / "_delta_log").is_dir():
        from deltalake import DeltaTable

        table = DeltaTable(str(folder))
        features = set(table.protocol().reader_features or [])
        if "deletionVectors" in features:
            raise UsageError(
                f"the Delta table {folder} uses deletion vectors, which this reader cannot apply",
                hint="Run the analysis with --engine spark in a Fabric or Synapse notebook,"
                " whose Spark reads Delta itself.",
            )
        return [str(uri) for uri in table.file_uris()]
    files = sorted(
        str(path)
        for path in folder.rglob("*.parquet")
        if not any(part.startswith(("_", ".")) for part in path.relative_to(folder).parts)
    )
    if not files:
        raise UsageError(
            f"the lake table {folder} has neither a Delta log nor Parquet files",
            hint="Azure Synapse Link's CSV export is not read: use Link to Microsoft Fabric,"
            " or Synapse Link's Delta Lake option.",
        )
    return files


def _dataverse_rows(engine: Engine, table: str, spec: LakeTable, env: str, folder: Path) -> str:
    """One environment's lake table in store shape: delete markers dropped, then the latest
    version of each row.

    A delete marker is a row flagged deleted that has no time (`TIME_COLUMNS`): what an
    append-only export writes for a delete, whose body is empty. A row flagged deleted that
    still has its data (Fabric's tables are merged in place) is kept. Inferred, not
    documented: for these log tables a delete is Dataverse's retention removing the record
    (plug-in trace logs after 24 hours, flow runs after their time to live, system jobs
    cleaned up), not a sign the execution did not happen, so a week of a lake holds more
    than the table itself does.
    Retention: trace logs are deleted after 24 hours
    (https://learn.microsoft.com/power-apps/developer/data-platform/logging-tracing), flow
    runs after `flowruntimetoliveinseconds`, 28 days by default
    (https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata), system
    jobs by bulk deletion, or at once when a step auto-deletes its successful jobs
    (https://learn.microsoft.com/power-platform/admin/manage-storage-asyncoperation-base-table).
    """
    relation = engine.delta(table, folder) if (folder / "_delta_log").is_dir() else None
    if relation is None:
        relation = engine.parquet(table, _table_files(folder))
    columns = {c.lower(): c for c in engine.columns(relation)}
    renamed = {store: lake for lake, store in spec.renames.items()}
    select = _store_columns(engine, table, columns, renamed, env)
    store_columns = ", ".join(name for name, _ in TABLES[table].columns)
    flag = next((columns[c] for c in _DELETE_FLAGS if c in columns), None)
    select.append(
        f"coalesce(CAST({_quote(engine, flag)} AS BOOLEAN), FALSE) AS auditor_deleted"
        if flag
        else "FALSE AS auditor_deleted"
    )
    versions = [columns[c] for c in ("versionnumber", "sinkmodifiedon") if c in columns]
    # The export's `Id` first: a delete marker carries it, not the table's own key column.
    identity = columns.get("id") or columns.get(spec.id_column)
    for i, column in enumerate(versions):
        select.append(f"{_quote(engine, column)} AS auditor_version_{i}")
    select.append(f"{_quote(engine, identity)} AS auditor_id" if identity else "NULL AS auditor_id")
    shaped = f"SELECT {', '.join(select)} FROM {relation} lake_rows"
    marker = f"auditor_deleted AND {TIME_COLUMNS[table]} IS NULL"
    unmarked = f"SELECT * FROM ({shaped}) shaped WHERE NOT ({marker})"
    if not versions or identity is None:
        return f"(SELECT {store_columns} FROM ({unmarked}) unmarked)"
    order = ", ".join(f"auditor_version_{i} DESC NULLS LAST" for i in range(len(versions)))
    ranked = (
        f"SELECT *, row_number() OVER (PARTITION BY auditor_id ORDER BY {order})"
        f" AS auditor_rank FROM ({unmarked}) unmarked"
    )
    return f"(SELECT {store_columns} FROM ({ranked}) ranked WHERE auditor_rank = 1)"


def _store_shape(engine: Engine, table: str, relation: str) -> str:
    """An exported table (store names) with exactly the store's columns."""
    columns = {c.lower(): c for c in engine.columns(relation)}
    select = _store_columns(engine, table, columns, {}, None)
    return f"(SELECT {', '.join(select)} FROM {relation} exported)"


def _store_columns(
    engine: Engine,
    table: str,
    columns: Mapping[str, str],
    renamed: Mapping[str, str],
    env: str | None,
) -> list[str]:
    """The SELECT list giving a lake table the store's columns, in the store's order: each
    from the lake column of its name (matched case-insensitively; `renamed`: store name ->
    lake name), null when the lake has none; `env`, when given, as `environment_id`."""
    select = []
    for name, sql_type in TABLES[table].columns:
        if name == "environment_id" and env is not None:
            select.append(f"{text(env)} AS environment_id")
            continue
        source = columns.get(renamed.get(name, name).lower())
        if source is None:
            select.append(f"CAST(NULL AS {_SPARK_TYPES.get(sql_type, sql_type)}) AS {name}")
        else:
            select.append(f"{_quote(engine, source)} AS {name}")
    return select


def _quote(engine: Engine, name: str) -> str:
    if isinstance(engine, SparkEngine):
        return "`" + name.replace("`", "``") + "`"
    return '"' + name.replace('"', '""') + '"'
