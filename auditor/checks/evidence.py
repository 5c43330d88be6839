"""The analysis of one set of frames, computed once and shared by every check.

Each analysis (docs/how-a-scan-runs.md, "What the analysis measures") runs the first time
a check asks for it, so a check run on a few frames built in a test only pays for what it
reads. Nothing here applies a threshold: checks do, with the limits they are given.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import pandas as pd

from auditor.analysis.actions import action_frames, effect_actions, expander_links, linked_flows
from auditor.analysis.block_signatures import block_signatures
from auditor.analysis.definitions import definition_frames
from auditor.analysis.flows import catch_paths, flow_facts
from auditor.analysis.job_owners import measured_owners, owner_stats
from auditor.analysis.jobs import JOB_CODES, job_stats_of, queue_latency_of
from auditor.analysis.plugins import (
    LOOP_DEPTH,
    NEAR_TIMEOUT_SHARE,
    SYNC_GUIDELINE_MS,
    TIMEOUT_MS,
    step_modes,
    step_stats,
    trace_coverage,
    unfiltered_update_steps,
)
from auditor.analysis.runs import flow_ids, run_summary, typed_runs
from auditor.analysis.statuses import RUN_VOCABULARIES
from auditor.engine.reducer import ActionReduction, JobReduction, Reducer, RunReduction
from auditor.engine.sources import ROW_TABLES
from auditor.frames import Frames, flow_definitions, typed

_KEY = ["environment_id", "flow_id"]

# Where a trace-log setting leaves the evidence, and how to fix it.
# https://learn.microsoft.com/power-apps/developer/data-platform/logging-tracing
TRACE_HINT = (
    "Set plug-in trace logging to All (Power Platform admin center > environment > Settings "
    "> Product > Features, or System Settings > Customization), wait a day, and scan again."
)
TRACE_ALL = "trace:all"  # every plug-in execution leaves a trace row
TRACE_FAILURES = "trace:failures"  # failed executions leave a trace row
SOURCES_BEYOND_QUERIES = (TRACE_ALL, TRACE_FAILURES)


@dataclass(frozen=True)
class Gap:
    """Why a check could not assess an environment: a source missing, and the fix."""

    source: str
    reason: str
    hint: str


class Evidence:
    """Frames plus every derived analysis frame the checks read.

    The row tables (flow runs, plug-in trace logs) are reduced by `reducer`, the engine that
    holds them (the store's DuckDB, a lake folder's DuckDB or Spark); without one, DuckDB
    reduces the frames' own rows in memory. Either way the same SQL runs.
    """

    def __init__(self, frames: Frames, reducer: Reducer | None = None) -> None:
        self.frames = frames
        self._reducer = reducer

    @cached_property
    def reducer(self) -> Reducer:
        """The engine over the row tables."""
        if self._reducer is not None:
            return self._reducer
        return Reducer.over_frames({t: self.frames.table(t) for t in ROW_TABLES})

    def reduce(self) -> None:
        """Runs every reduction of the row tables now, before any check: they are the
        analysis's reading of its rows, and a store that cannot be read fails here, as a
        whole, rather than as one check's error."""
        reductions = ("_run_reduction", "action_reduction", "job_reduction", "steps")
        for name in (*reductions, "_async_outcomes"):
            getattr(self, name)

    def sources_beyond_store(self) -> dict[str, str]:
        """Where the row tables came from, when any came from outside the store (a lake or
        an export folder): `<table>_from` -> the folder or `store`, and `rest_from` ->
        `store` (the trace setting, steps, definitions and the action samples'
        descriptions). Empty when every row came from the store: the coverage findings name
        a source only when it is not."""
        sources = self.reducer.sources
        if all(where in ("store", "memory") for where in sources.values()):
            return {}
        return {**{f"{t}_from": w for t, w in sorted(sources.items())}, "rest_from": "store"}

    def close(self) -> None:
        """Releases the reducer's engine (its Spark views, its Parquet copies)."""
        if "reducer" in self.__dict__:
            self.reducer.close()

    # Environments and coverage ------------------------------------------------------------

    @cached_property
    def environments(self) -> pd.DataFrame:
        """environment_id, name, has_dataverse: every environment in the frames."""
        envs = self.frames.environments
        out = pd.DataFrame(
            {
                "environment_id": envs["environment_id"].astype("str"),
                "name": envs["display_name"].fillna(envs["environment_id"]).astype("str"),
                "has_dataverse": envs["dataverse_url"].notna().astype(bool),
            }
        )
        known = set(out["environment_id"])
        # Rows of an environment the environments table lacks (a test, a damaged store).
        extra = sorted(
            {
                str(e)
                for name in ("scan_queries", "flows", "workflows", "plugin_steps", "organizations")
                for e in self.frames.table(name)["environment_id"].dropna()
            }
            - known
        )
        if extra:
            out = pd.concat(
                [out, pd.DataFrame({"environment_id": extra, "name": extra, "has_dataverse": True})]
            )
        return out.sort_values("environment_id", kind="stable").reset_index(drop=True)

    @cached_property
    def environment_names(self) -> dict[str, str]:
        return dict(
            zip(self.environments["environment_id"], self.environments["name"], strict=True)
        )

    def environment_name(self, environment_id: str) -> str:
        return self.environment_names.get(environment_id, environment_id)

    @cached_property
    def query_outcomes(self) -> dict[tuple[str, str], tuple[str, str | None, str | None]]:
        """(environment, query id) -> (status, reason, hint) of the query's latest outcome."""
        sq = self.frames.scan_queries
        return {
            (str(e), str(q)): (
                str(s),
                None if pd.isna(r) else str(r),
                None if pd.isna(h) else str(h),
            )
            for e, q, s, r, h in zip(
                sq["environment_id"],
                sq["query_id"],
                sq["status"],
                sq["reason"],
                sq["hint"],
                strict=True,
            )
        }

    @cached_property
    def traces_setting(self) -> dict[str, tuple[str, bool, bool]]:
        """environment -> (setting name, executions visible, failures visible)."""
        cov = self.trace_coverage
        return {
            str(e): (str(s), bool(x), bool(f))
            for e, s, x, f in zip(
                cov["environment_id"],
                cov["setting"],
                cov["executions_visible"],
                cov["failures_visible"],
                strict=True,
            )
        }

    def gaps(self, environment_id: str, needs: tuple[str, ...]) -> list[Gap]:
        """What of `needs` the store lacks for an environment (empty: all there)."""
        out: list[Gap] = []
        for source in needs:
            if source in SOURCES_BEYOND_QUERIES:
                setting, executions, failures = self.traces_setting.get(
                    environment_id, ("unknown", False, False)
                )
                seen = executions if source == TRACE_ALL else failures
                if not seen:
                    what = "executions and durations" if source == TRACE_ALL else "failures"
                    out.append(
                        Gap(
                            source,
                            f"plug-in trace logging is {setting}: {what} are unseen",
                            TRACE_HINT,
                        )
                    )
                continue
            status, reason, hint = self.query_outcomes.get(
                (environment_id, source),
                ("not-collected", "no scan has collected it", "Run `auditor collect`."),
            )
            if status == "collected":
                continue
            detail = f"{source} {status}" + (f": {reason}" if reason else "")
            out.append(Gap(source, detail, hint or "Run `auditor collect` again."))
        return out

    # Flow definitions ---------------------------------------------------------------------

    @cached_property
    def definitions(self) -> pd.DataFrame:
        return flow_definitions(self.frames)

    @cached_property
    def parsed(self) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
        """(triggers, actions, errors) of every flow definition."""
        return definition_frames(self.definitions)

    @property
    def triggers(self) -> pd.DataFrame:
        return self.parsed[0]

    @property
    def actions(self) -> pd.DataFrame:
        return self.parsed[1]

    @property
    def definition_errors(self) -> pd.DataFrame:
        return self.parsed[2]

    @cached_property
    def catch_paths(self) -> pd.DataFrame:
        return catch_paths(self.actions)

    @cached_property
    def flows(self) -> pd.DataFrame:
        """Per-flow facts (`analysis.flows.flow_facts`)."""
        return flow_facts(
            self.definitions, self.triggers, self.actions, self.definition_errors, self.catch_paths
        )

    def flow_names(self) -> pd.DataFrame:
        """environment_id, flow_id, display_name, enabled: to name flows in findings."""
        return self.flows.loc[:, [*_KEY, "display_name", "enabled"]]

    def blocks(self, length: int) -> pd.DataFrame:
        """Signatures of every `length` consecutive actions of a container."""
        return block_signatures(self.actions, min_length=length, max_length=length)

    # Runs and actions ---------------------------------------------------------------------

    @cached_property
    def _run_reduction(self) -> RunReduction:
        return self.reducer.runs(flow_ids(self.definitions), RUN_VOCABULARIES)

    @cached_property
    def runs(self) -> pd.DataFrame:
        """The runs read one by one: every failed run and every run sampled with action
        detail (`analysis.runs` shape). Counts and percentiles are in `run_summary`."""
        return typed_runs(self._run_reduction.kept)

    @cached_property
    def all_runs(self) -> pd.DataFrame:
        """Every run in the window (`auditor flow show` lists one flow's by day)."""
        return typed_runs(self.reducer.combined_runs(flow_ids(self.definitions), RUN_VOCABULARIES))

    @cached_property
    def run_days(self) -> pd.DataFrame:
        """day (YYYY-MM-DD, UTC), runs, failed: every flow's runs per day of their start."""
        days = self._run_reduction.days.sort_values("day").reset_index(drop=True)
        return days.astype({"day": "str", "runs": "int64", "failed": "int64"})

    @cached_property
    def run_summary(self) -> pd.DataFrame:
        days = max(self.frames.window.days, 1 / 24)
        return run_summary(
            self.runs, window_days=days, flows=self.definitions, stats=self._run_reduction.stats
        )

    @cached_property
    def action_reduction(self) -> ActionReduction:
        """The sampled runs' action rows reduced: per run the effect actions that ran, per
        action its retries and durations."""
        return self.reducer.actions(effect_actions(self.parsed[1]))

    @cached_property
    def action_results(self) -> dict[str, pd.DataFrame]:
        """classified, unnecessary, retries, durations, triggers (`analysis.actions`)."""
        return action_frames(
            self.frames,
            self.action_reduction,
            self.job_reduction.expanders,
            self.runs,
            self.run_summary,
            definitions=self.definitions,
            parsed=self.parsed,
        )

    # Plug-ins and system jobs -------------------------------------------------------------

    @cached_property
    def trace_coverage(self) -> pd.DataFrame:
        return trace_coverage(self.frames.organizations)

    @cached_property
    def steps(self) -> pd.DataFrame:
        """Per step: executions, failures, duration percentiles (`analysis.plugins`)."""
        reduced = self.reducer.step_traces(
            step_modes(self.frames.plugin_steps),
            sync_guideline_ms=SYNC_GUIDELINE_MS,
            near_timeout_ms=NEAR_TIMEOUT_SHARE * TIMEOUT_MS,
            loop_depth=LOOP_DEPTH,
        )
        return step_stats(self.frames.plugin_steps, reduced=reduced)

    def trace_owners_near(self, limit_ms: float) -> pd.DataFrame:
        """Per step (or plug-in type): executions, usable durations, those over `limit_ms`
        and the longest (`auditor.engine.reductions.trace_owners_near`)."""
        found = self._near.get(limit_ms)
        if found is None:
            found = self._near[limit_ms] = self.reducer.trace_owners_near(limit_ms)
        return found

    @cached_property
    def _near(self) -> dict[float, pd.DataFrame]:
        return {}

    @cached_property
    def unfiltered_steps(self) -> pd.DataFrame:
        return unfiltered_update_steps(self.frames.plugin_steps, self.steps)

    @cached_property
    def job_reduction(self) -> JobReduction:
        """The system jobs reduced (`auditor.engine.reductions`)."""
        return self.reducer.jobs(JOB_CODES)

    @cached_property
    def kept_jobs(self) -> pd.DataFrame:
        """The jobs read one by one: all but the succeeded and canceled (what is queued,
        waiting, running or stuck, and the failures), in the store's key order."""
        return typed(self.job_reduction.kept, "asyncoperations")

    def unlinked_expanders(self, limit: int) -> pd.DataFrame:
        """The first `limit` Expander jobs of each environment that name no known flow."""
        found = self.reducer.unlinked_expanders(JOB_CODES, linked_flows(self.definitions), limit)
        return typed(found, "asyncoperations")

    @cached_property
    def expanders(self) -> pd.DataFrame:
        """Expander jobs per environment and workflowid, each `linked` to a flow or not."""
        return expander_links(self.job_reduction.expanders, self.definitions)

    @cached_property
    def jobs(self) -> pd.DataFrame:
        return job_stats_of(self.job_reduction.by_type)

    @cached_property
    def job_owners(self) -> pd.DataFrame:
        """Per step or workflow: job outcomes; auto-deleting steps measured from traces."""
        coverage = self.trace_coverage
        trace_all = set(coverage.loc[coverage["executions_visible"], "environment_id"])
        return measured_owners(
            owner_stats(self.job_reduction.by_owner, self.job_reduction.kept),
            self.frames.plugin_steps,
            None,
            trace_all,
            outcomes=self._async_outcomes,
        )

    @cached_property
    def _async_outcomes(self) -> pd.DataFrame:
        return self.reducer.async_trace_outcomes()

    @cached_property
    def queue_latency(self) -> pd.Series:
        return queue_latency_of(self.job_reduction.queue_p95)


__all__ = ["TRACE_ALL", "TRACE_FAILURES", "Evidence", "Gap"]
