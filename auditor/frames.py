"""Typed frames from the store: one place for the analysis's column names and dtypes.

The analysis reads the store through `load_frames`, which has the store select the rows of
an analysis window and of the chosen environments (`Store.window_rows`, in DuckDB) and gives
every column the dtype its store type declares: timestamps timezone-aware UTC, integers
`Int64`, decimals `Float64`, text `str`, booleans `boolean`. The run and trace tables, which
hold millions of rows, are left out (`skip`) when an engine reduces them where they are
(`auditor.engine`); the investigation commands, which list rows, still load them.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from auditor.store import BOOKKEEPING, TABLES, Store

DEFAULT_WINDOW = timedelta(days=7)

# Store SQL type -> pandas dtype of the analysis frames.
PANDAS_TYPES: dict[str, str] = {
    "VARCHAR": "str",
    "INTEGER": "Int64",
    "BIGINT": "Int64",
    "DOUBLE": "Float64",
    "BOOLEAN": "boolean",
    "TIMESTAMP": "datetime64[us, UTC]",
}

# Columns left out by default: a trace's message block can be a megabyte of free text that
# no analysis reads, and reading it for a million rows would cost gigabytes.
SKIPPED_COLUMNS: dict[str, frozenset[str]] = {"plugintracelogs": frozenset({"messageblock"})}

# Frame name -> store table: the data tables, each query's latest outcome, the scans.
FRAME_TABLES: tuple[str, ...] = (
    "environments",
    "organizations",
    "workflows",
    "callbackregistrations",
    "plugin_steps",
    "plugintracelogs",
    "asyncoperations",
    "flowruns",
    "flowevents",
    "flows",
    "flow_api_runs",
    "flow_run_actions",
    "action_samples",
    "scan_queries",
    "scans",
)

FLOW_DEFINITION_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",  # the flow API's flow name; the workflowid when the API was not read
    "workflowid": "str",
    "display_name": "str",
    "state": "str",  # Started / Stopped / Suspended (flow API), or from workflow statecode
    "definition_text": "str",
    "source": "str",  # clientdata / flow-api: where the definition came from
    # The solution the flow came from, when the frames know it (`auditor lint` reads it from
    # the files); NA otherwise: a tenant scan does not collect it.
    "solution": "str",
}

# Columns a frame built in memory may carry beyond the store's: kept, typed, when present.
EXTRA_COLUMNS: dict[str, dict[str, str]] = {"workflows": {"solution": "str"}}


def _spec_columns(table: str) -> tuple[tuple[str, str], ...]:
    spec = TABLES.get(table) or BOOKKEEPING[table]
    return spec.columns


def dtypes(table: str, *, skipped: bool = True) -> dict[str, str]:
    """The pandas dtypes of a frame's columns, in store order."""
    drop = SKIPPED_COLUMNS.get(table, frozenset()) if skipped else frozenset()
    return {name: PANDAS_TYPES[sql] for name, sql in _spec_columns(table) if name not in drop}


def empty_frame(table: str) -> pd.DataFrame:
    """A frame of the table's columns and dtypes with no rows (for tests and gaps)."""
    return typed(pd.DataFrame(columns=list(dtypes(table))), table)


def typed(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """The frame with the declared dtypes; columns it lacks are added empty."""
    wanted = dtypes(table, skipped=False)
    out = {}
    index = frame.index
    for name, dtype in wanted.items():
        if name in frame.columns:
            out[name] = _cast(frame[name], dtype)
        elif name not in SKIPPED_COLUMNS.get(table, frozenset()):
            out[name] = pd.Series(pd.NA, index=index, dtype=_empty_dtype(dtype))
    for name, dtype in EXTRA_COLUMNS.get(table, {}).items():
        if name in frame.columns:
            out[name] = _cast(frame[name], dtype)
    return pd.DataFrame(out, index=index)


def _empty_dtype(dtype: str) -> Any:
    return pd.StringDtype(na_value=float("nan")) if dtype == "str" else dtype


def _cast(series: pd.Series, dtype: str) -> pd.Series:
    if series.dtype == dtype:  # already so (read through Arrow): no copy
        return series
    if dtype.startswith("datetime64"):
        values = pd.to_datetime(series, utc=True, errors="coerce")
        return values.astype("datetime64[us, UTC]")
    if dtype == "str":
        return series.astype("str").where(series.notna())
    return series.astype(dtype)  # type: ignore[call-overload, no-any-return]


@dataclass(frozen=True)
class Window:
    """The time the analysis covers: event rows from `start` up to and including `end`."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("window bounds must be timezone-aware")
        if self.end < self.start:
            raise ValueError("window end is before its start")

    @property
    def days(self) -> float:
        """The window's length in days (runs per day divide by it)."""
        return (self.end - self.start).total_seconds() / 86400

    @classmethod
    def last(cls, length: timedelta, end: datetime) -> Window:
        """The `length` up to `end`."""
        end = end.astimezone(UTC)
        return cls(end - length, end)


@dataclass(frozen=True)
class Frames:
    """The store's rows the analysis reads, one typed frame per table."""

    window: Window
    scan_id: int | None
    environments: pd.DataFrame
    organizations: pd.DataFrame
    workflows: pd.DataFrame
    callbackregistrations: pd.DataFrame
    plugin_steps: pd.DataFrame
    plugintracelogs: pd.DataFrame
    asyncoperations: pd.DataFrame
    flowruns: pd.DataFrame
    flowevents: pd.DataFrame
    flows: pd.DataFrame
    flow_api_runs: pd.DataFrame
    flow_run_actions: pd.DataFrame
    action_samples: pd.DataFrame
    scan_queries: pd.DataFrame
    scans: pd.DataFrame

    @classmethod
    def from_frames(
        cls,
        window: Window,
        scan_id: int | None = None,
        **frames: pd.DataFrame,
    ) -> Frames:
        """Frames built in memory (tests): missing tables are empty, all are typed."""
        unknown = set(frames) - set(FRAME_TABLES)
        if unknown:
            raise ValueError(f"unknown frame(s): {', '.join(sorted(unknown))}")
        typed_frames = {
            name: typed(frames[name], name) if name in frames else empty_frame(name)
            for name in FRAME_TABLES
        }
        return cls(window=window, scan_id=scan_id, **typed_frames)

    def table(self, name: str) -> pd.DataFrame:
        """The frame of a store table by name."""
        if name not in FRAME_TABLES:
            raise KeyError(name)
        frame: pd.DataFrame = getattr(self, name)
        return frame


assert {f.name for f in fields(Frames)} == {"window", "scan_id", *FRAME_TABLES}


def load_frames(
    store: Store,
    *,
    window: Window | None = None,
    environments: Sequence[str] | None = None,
    skip: Collection[str] = (),
) -> Frames:
    """Reads the analysis frames: event rows within the window, of the given environments.

    The default window is the 7 days up to the latest scan's window end (the tenant's clock
    at that scan), so a store analysed later gives the same answer. Tables in `skip` are
    left empty: an engine reduces their rows where they are (`auditor.engine`).
    """
    scan = store.latest_scan()
    if window is None:
        end = scan.window_end if scan is not None else datetime.now(UTC)
        window = Window.last(DEFAULT_WINDOW, end)
    rows = store.window_rows(
        window.start,
        window.end,
        environments,
        {table: list(dtypes(table)) for table in FRAME_TABLES if table not in skip},
    )
    loaded = {
        table: typed(rows[table], table) if table in rows else empty_frame(table)
        for table in FRAME_TABLES
    }
    scan_id = scan.scan_id if scan is not None else None
    return Frames(window=window, scan_id=scan_id, **loaded)


# Flow definitions ---------------------------------------------------------------------------

_STATECODES: Mapping[int, str] = {0: "Stopped", 1: "Started", 2: "Suspended"}


def flow_definitions(frames: Frames) -> pd.DataFrame:
    """One row per flow with its definition text, joining the flow API and `workflows`.

    Solution flows have their definition in `workflows.clientdata`; flows outside solutions
    are seen only by the flow API, whose `definition` holds it. A workflow the flow API did
    not list (the API was not read) still gets a row, keyed by its workflowid. `solution` is
    the workflows frame's `solution` where it has one (`auditor lint`), else NA.
    """
    flows = frames.flows
    workflows = frames.workflows
    # Classic workflows (category 0) have XAML, not a flow definition.
    workflows = workflows[workflows["category"].fillna(5).ne(0)]
    api = pd.DataFrame(
        {
            "environment_id": flows["environment_id"],
            "flow_id": flows["flow_name"],
            "workflowid": flows["workflowid"],
            "display_name": flows["display_name"],
            "state": flows["state"],
            "api_definition": flows["definition"],
        }
    )
    wf = pd.DataFrame(
        {
            "environment_id": workflows["environment_id"],
            "workflowid": workflows["workflowid"],
            "wf_name": workflows["name"],
            "wf_state": workflows["statecode"].map(_STATECODES).astype("str"),
            "clientdata": workflows["clientdata"],
            "solution": workflows["solution"]
            if "solution" in workflows
            else pd.Series(pd.NA, index=workflows.index, dtype=_empty_dtype("str")),
        }
    ).drop_duplicates(["environment_id", "workflowid"])
    merged = api.merge(wf, on=["environment_id", "workflowid"], how="outer", indicator=True)
    only_wf = merged["_merge"] == "right_only"
    merged["flow_id"] = merged["flow_id"].where(~only_wf, merged["workflowid"])
    merged["display_name"] = merged["display_name"].fillna(merged["wf_name"])
    merged["state"] = merged["state"].where(~only_wf, merged["wf_state"])
    has_clientdata = merged["clientdata"].notna()
    merged["definition_text"] = merged["clientdata"].where(has_clientdata, merged["api_definition"])
    merged["source"] = "clientdata"
    merged.loc[~has_clientdata & merged["api_definition"].notna(), "source"] = "flow-api"
    merged.loc[merged["definition_text"].isna(), "source"] = pd.NA
    out = merged.loc[:, list(FLOW_DEFINITION_DTYPES)].sort_values(
        ["environment_id", "flow_id"], kind="stable"
    )
    return out.reset_index(drop=True).astype(FLOW_DEFINITION_DTYPES)
