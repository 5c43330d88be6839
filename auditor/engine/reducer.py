"""One set of rows on one engine, and the reductions the analysis asks of it.

A `Reducer` is made over the store (DuckDB reads the tables in place), over a lake or
export folder (DuckDB or Spark), or over frames already in memory (tests, `auditor lint`,
the investigation commands), so that every path runs the same SQL. The analysis gives it
what it knows in pandas (the flows' keys, the steps' modes, the sampled runs) as small
relations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.engine import reductions
from auditor.engine.engines import DuckDBEngine, Engine, SparkEngine, local_spark
from auditor.engine.reductions import JobCodes, Vocabulary
from auditor.engine.sources import ROW_TABLES, Placed, place_rows
from auditor.errors import UsageError
from auditor.frames import Window, dtypes, empty_frame
from auditor.store import Store


@dataclass(frozen=True)
class RunReduction:
    """The flow runs reduced: per-flow statistics, per-day counts and the rows kept."""

    stats: pd.DataFrame
    days: pd.DataFrame
    kept: pd.DataFrame


@dataclass(frozen=True)
class ActionReduction:
    """The sampled runs' action rows reduced: per run, the effect actions that ran; per
    action, its retries and its durations."""

    sampled: pd.DataFrame
    retries: pd.DataFrame
    durations: pd.DataFrame


@dataclass(frozen=True)
class JobReduction:
    """The system jobs reduced: counts and percentiles per operation type and per owner, the
    p95 queue latency per environment, Expander jobs per workflow, and the jobs read one by
    one (`kept`: all but the succeeded and canceled), each in key order."""

    by_type: pd.DataFrame
    by_owner: pd.DataFrame
    queue_p95: pd.DataFrame
    expanders: pd.DataFrame
    kept: pd.DataFrame


class Reducer:
    """Runs the reductions of `auditor.engine.reductions` on an engine's relations."""

    def __init__(self, engine: Engine, placed: Placed | None = None) -> None:
        self.engine = engine
        self.placed = placed if placed is not None else Placed()

    # Construction --------------------------------------------------------------------------

    @classmethod
    def over_frames(cls, frames: Mapping[str, pd.DataFrame]) -> Reducer:
        """DuckDB in memory over pandas frames, the row tables given the store's dtypes (as
        `load_frames` gives them); a row table not given is empty."""
        engine = DuckDBEngine()
        for table in ROW_TABLES:
            frame = frames.get(table)
            engine.add_frame(
                table, _coerced(frame, table) if frame is not None else empty_frame(table)
            )
        return cls(engine, Placed({t: "memory" for t in ROW_TABLES}))

    @classmethod
    def over_store(
        cls,
        store: Store | None,
        window: Window,
        environments: Sequence[str] | None,
        *,
        engine: str = "duckdb",
        lake: Path | None = None,
        spark: Any = None,
    ) -> Reducer:
        """The rows of a window from the lake where it holds them, else from the store."""
        if engine == "duckdb":
            # The store's connection reads no other file: a lake is read in memory.
            if store is not None and lake is None:
                chosen: Engine = DuckDBEngine(store.engine_cursor(), guard=store.engine_guard)
            else:
                chosen = DuckDBEngine()
        elif engine == "spark":
            chosen = SparkEngine(spark if spark is not None else _spark_session())
        else:
            raise UsageError(f"--engine takes duckdb or spark; got {engine!r}")
        try:
            placed = place_rows(chosen, store, window, environments, lake)
        except BaseException:
            chosen.close()
            raise
        return cls(chosen, placed)

    def close(self) -> None:
        """Releases the engine's views and any Parquet copied for it."""
        self.engine.close()
        self.placed.cleanup()

    @property
    def sources(self) -> dict[str, str]:
        """Where each row table came from: `store`, `memory`, or a lake or export folder."""
        return dict(self.placed.sources)

    # Small relations from pandas -----------------------------------------------------------

    def _relation(self, name: str, frame: pd.DataFrame) -> str:
        self.engine.add_frame(name, frame)
        return self.engine.relations[name]

    # Runs ----------------------------------------------------------------------------------

    def _combined(self, flow_ids: pd.DataFrame, vocabularies: Mapping[str, Vocabulary]) -> str:
        rel = dict(self.engine.relations)
        rel["flow_ids"] = self._relation("flow_ids", flow_ids)
        sql = reductions.combined_runs(
            self.engine.dialect, rel, vocabularies["flow-api"], vocabularies["dataverse"]
        )
        return f"({sql})"

    def combined_runs(
        self, flow_ids: pd.DataFrame, vocabularies: Mapping[str, Vocabulary]
    ) -> pd.DataFrame:
        """Every run of every flow, in the store's key order."""
        combined = self._combined(flow_ids, vocabularies)
        return _in_key_order(self.engine.frame(f"SELECT * FROM {combined} runs_in"))  # noqa: S608

    def runs(self, flow_ids: pd.DataFrame, vocabularies: Mapping[str, Vocabulary]) -> RunReduction:
        """Per-flow statistics, per-day counts and the failed and sampled runs."""
        combined = self._combined(flow_ids, vocabularies)
        actions = self.engine.relations["flow_run_actions"]
        d = self.engine.dialect
        return RunReduction(
            stats=self.engine.frame(reductions.run_stats(d, combined)),
            days=self.engine.frame(reductions.run_days(combined)),
            kept=_in_key_order(self.engine.frame(reductions.kept_runs(combined, actions))),
        )

    def run_stats_of(self, runs: pd.DataFrame) -> pd.DataFrame:
        """`reductions.run_stats` over runs already in pandas (`analysis.runs.run_summary`)."""
        relation = self._relation("runs", runs)
        return self.engine.frame(reductions.run_stats(self.engine.dialect, relation))

    # Flow run actions ----------------------------------------------------------------------

    def actions(self, effects: pd.DataFrame) -> ActionReduction:
        """The sampled runs with the `effects` actions (environment_id, flow_id, action_name)
        that ran in each, and per action its retries and durations; each in key order."""
        actions = self.engine.relations["flow_run_actions"]
        d = self.engine.dialect
        by_action = ["environment_id", "flow_id", "action_name"]
        sampled = reductions.sampled_runs(actions, self._relation("effects", effects))
        return ActionReduction(
            sampled=_sorted(self.engine.frame(sampled), ["environment_id", "flow_id", "run_name"]),
            retries=_sorted(self.engine.frame(reductions.action_retries(d, actions)), by_action),
            durations=_sorted(
                self.engine.frame(reductions.action_durations(d, actions)), by_action
            ),
        )

    # System jobs --------------------------------------------------------------------------

    def jobs(self, codes: JobCodes) -> JobReduction:
        """Every reduction of the system jobs but `unlinked_expanders`."""
        jobs = self.engine.relations["asyncoperations"]
        d = self.engine.dialect
        owner = ["environment_id", "operationtype", "owner_id"]
        return JobReduction(
            by_type=_sorted(
                self.engine.frame(reductions.job_stats(d, jobs, codes)),
                ["environment_id", "operationtype"],
            ),
            by_owner=_sorted(self.engine.frame(reductions.job_owners(d, jobs, codes)), owner),
            queue_p95=_sorted(
                self.engine.frame(reductions.queue_latency_p95(d, jobs, codes)), ["environment_id"]
            ),
            expanders=_sorted(
                self.engine.frame(reductions.expander_counts(jobs, codes)),
                ["environment_id", "workflowid"],
            ),
            kept=_sorted(
                self.engine.frame(reductions.kept_jobs(jobs, codes)),
                ["environment_id", "asyncoperationid"],
            ),
        )

    def unlinked_expanders(self, codes: JobCodes, linked: pd.DataFrame, limit: int) -> pd.DataFrame:
        """The first `limit` Expander jobs of each environment, in id order, that name none of
        the flows of `linked` (environment_id, workflowid: lower case)."""
        found = self.engine.frame(
            reductions.unlinked_expanders(
                self.engine.relations["asyncoperations"],
                self._relation("linked_flows", linked),
                codes,
                limit,
            )
        )
        return _sorted(found.drop(columns="auditor_rank"), ["environment_id", "asyncoperationid"])

    # Plug-in trace logs --------------------------------------------------------------------

    def step_traces(
        self,
        step_modes: pd.DataFrame,
        *,
        sync_guideline_ms: float,
        near_timeout_ms: float,
        loop_depth: int,
    ) -> pd.DataFrame:
        """Per step: executions, failures, durations and depths of its trace rows."""
        return self.engine.frame(
            reductions.step_traces(
                self.engine.dialect,
                self.engine.relations["plugintracelogs"],
                self._relation("step_modes", step_modes),
                sync_guideline_ms=sync_guideline_ms,
                near_timeout_ms=near_timeout_ms,
                loop_depth=loop_depth,
            )
        )

    def trace_depths(self) -> pd.DataFrame:
        return self.engine.frame(reductions.trace_depths(self.engine.relations["plugintracelogs"]))

    def trace_owners_near(self, limit_ms: float) -> pd.DataFrame:
        return self.engine.frame(
            reductions.trace_owners_near(self.engine.relations["plugintracelogs"], limit_ms)
        )

    def async_trace_outcomes(self) -> pd.DataFrame:
        return self.engine.frame(
            reductions.async_trace_outcomes(
                self.engine.dialect, self.engine.relations["plugintracelogs"]
            )
        )

    def row_counts(self) -> dict[str, int]:
        """Rows of each row table in the window (what the analysis measured)."""
        out = {}
        for table in ROW_TABLES:
            found = self.engine.frame(
                f"SELECT count(*) AS n FROM {self.engine.relations[table]} counted"  # noqa: S608
            )
            out[table] = int(found["n"].iloc[0])
        return out


def _coerced(frame: pd.DataFrame, table: str) -> pd.DataFrame:
    """A row table built in memory in the store's columns, read as the store would hold it:
    what is not a number or a time becomes null (tenant data is untrusted), numbers are
    floats (the SQL casts them anyway), so the engine sees one type per column."""
    out: dict[str, pd.Series] = {}
    for name, dtype in dtypes(table).items():
        if name in frame.columns:
            column = frame[name]
        else:
            column = pd.Series([None] * len(frame), index=frame.index, dtype=object)
        if dtype in ("Int64", "Float64"):
            out[name] = pd.to_numeric(column, errors="coerce").astype("float64")
        elif dtype.startswith("datetime64"):
            times = pd.to_datetime(column, utc=True, errors="coerce")
            out[name] = times.astype("datetime64[us, UTC]")
        elif dtype == "boolean":
            out[name] = column.map(lambda v: v if isinstance(v, bool) else None).astype("boolean")
        else:
            out[name] = column.astype("str").where(column.notna())
    return pd.DataFrame(out, index=frame.index)


def _sorted(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Rows by their keys, nulls last (an engine returns groups in any order)."""
    return frame.sort_values(keys, kind="stable", na_position="last").reset_index(drop=True)


def _in_key_order(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs as the store lists them: flow API runs by flow and name, then Dataverse runs by
    flowrunid (the error clusters keep the first message of each cluster in this order)."""
    ordered = runs.sort_values(
        ["sort_0", "environment_id", "sort_1", "sort_2"], kind="stable", na_position="last"
    )
    return ordered.drop(columns=["sort_0", "sort_1", "sort_2"]).reset_index(drop=True)


def _spark_session() -> Any:
    """The active Spark session (a notebook's), else a local one."""
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise UsageError(
            "--engine spark needs PySpark, which is not installed",
            hint='Install it with `pip install "auditor[spark]"` (and a Java runtime), or run'
            " in a Fabric or Synapse notebook.",
        ) from exc
    active = SparkSession.getActiveSession()
    return active if active is not None else local_spark()
