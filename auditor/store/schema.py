"""The store's schema as data: its tables, their columns and keys, and the migrations.

Every data table has typed columns (timestamps as `TIMESTAMP` holding UTC, GUIDs as
lower-case text without braces, durations as `BIGINT` milliseconds), the environment id, and
its natural key as `PRIMARY KEY`.

The schema is versioned in `meta`. `MIGRATIONS[v]` upgrades a store from version `v - 1` to
`v`; a store of an older version is migrated when opened, a newer or unknown one is refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import duckdb

SCHEMA_VERSION = 5

SCAN_STATUSES = ("running", "completed", "partial", "failed")
QUERY_STATUSES = ("collected", "partial", "not-collected")
SQL_TYPES = frozenset({"VARCHAR", "INTEGER", "BIGINT", "DOUBLE", "BOOLEAN", "TIMESTAMP"})


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
    # `auditor analyze`: what was analysed for a scan, and the findings (docs/data-model.md).
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
    # 2: the analyses and findings tables, which `create_statements` adds after the migration.
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


def create_statements() -> list[str]:
    """The statements creating the tables a store lacks (all of them in a new store)."""
    statements = []
    for name, spec in (*BOOKKEEPING.items(), *TABLES.items()):
        columns = ", ".join(f'"{c}" {t}' for c, t in spec.columns)
        key = ", ".join(f'"{c}"' for c in spec.key)
        statements.append(f'CREATE TABLE IF NOT EXISTS "{name}" ({columns}, PRIMARY KEY ({key}))')
    return statements


def table_spec(table: str) -> TableSpec:
    """The spec of a data table; a ValueError naming the known ones for any other name."""
    spec = TABLES.get(table)
    if spec is None:
        raise ValueError(f"unknown data table {table!r}; known: {', '.join(TABLES)}")
    return spec
