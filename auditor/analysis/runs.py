"""Flow runs: outcomes, failure streaks, durations and clustered error messages per flow.

The flow API's run list is the source (it covers flows in and outside solutions); flows it
has no runs for fall back to Dataverse `flowruns` (solution flows only, ingested with a
delay), and the result says which source each flow's figures come from. Definitions follow
`auditor.sim.truth`: `runs` counts every listed run, outcomes count finished runs only, a
failure streak is a run of consecutive Failed runs ordered by start time then name.

The two sources do not share their status words, so each run is read with the vocabulary of
its source (`auditor.analysis.statuses`), case-insensitively:
- flow API: Logic Apps `WorkflowStatus` (Succeeded, Failed, Cancelled, Running, ...); a run
  is finished when it has an end time and a status that is not an in-progress one;
- Dataverse `flowruns`: Success, Failed or Cancelled
  (https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata), plus the
  observed, undocumented alias Succeeded; a run is finished when it has an end time and one
  of these final statuses.
A status outside its source's vocabulary (or none) is counted in `unknown_status`, never read
as a success: reading Dataverse's "Success" with the flow API's words would report every
successful Dataverse run as undocumented.
"""

from __future__ import annotations

import pandas as pd

from auditor.analysis.common import typed
from auditor.analysis.statuses import RUN_VOCABULARIES
from auditor.engine.reducer import Reducer
from auditor.frames import Frames, empty_frame, flow_definitions

NO_DETAIL = "(no error detail)"

RUN_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "run_name": "str",
    "start_time": "datetime64[us, UTC]",
    "end_time": "datetime64[us, UTC]",
    "status": "str",
    "error_code": "str",
    "error_message": "str",
    "duration_ms": "Float64",
    "finished": "bool",
    "failed": "bool",
    "cancelled": "bool",
    "source": "str",  # flow-api / dataverse
    "known_status": "bool",  # the status is a word of its source's vocabulary
}

SUMMARY_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "source": "str",
    "runs": "int64",
    "finished": "int64",
    "failed": "int64",
    "cancelled": "int64",
    "failed_without_message": "int64",
    "unknown_status": "int64",  # a status missing or not in its source's vocabulary
    "failure_rate": "Float64",  # failed / finished
    "cancel_rate": "Float64",
    "runs_per_day": "Float64",
    "failure_streak": "int64",
    "duration_p50_ms": "Float64",
    "duration_p95_ms": "Float64",
    "duration_p99_ms": "Float64",
    "duration_max_ms": "Float64",
    "error_clusters": "int64",
    "top_error": "str",
    "top_error_count": "Int64",
}

CLUSTER_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "cluster": "str",  # the normalised message
    "error_code": "str",  # the most frequent code in the cluster
    "count": "int64",
    "rank": "int64",  # 1 = most frequent in the flow
    "first_seen": "datetime64[us, UTC]",
    "last_seen": "datetime64[us, UTC]",
    "example": "str",  # one original message, truncated
}

ENVIRONMENT_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flows": "int64",
    "flows_with_runs": "int64",
    "flows_failing": "int64",
    "runs": "int64",
    "finished": "int64",
    "failed": "int64",
    "cancelled": "int64",
    "failed_without_message": "int64",
    "failure_rate": "Float64",
    "dataverse_fallback_flows": "int64",
}

_KEY = ["environment_id", "flow_id"]

# What varies between two occurrences of the same error: ids, numbers, quoted values, URLs.
_MASKS: tuple[tuple[str, str], ...] = (
    (r"https?://\S+", "<url>"),
    (r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", "<guid>"),
    (r"\b\d{20,}[A-Za-z]{2}\d+\b", "<run>"),  # run names, e.g. 08588...CU27
    (r"\b[0-9a-fA-F]{16,}\b", "<id>"),
    (r"\b\d{4}-\d{2}-\d{2}[T ][\d:.]+Z?\b", "<time>"),
    (r"'[^']{1,200}'", "'<value>'"),
    (r"\b\d+(?:\.\d+)?\b", "<n>"),
    (r"\s+", " "),
)


def _empty(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


def normalise_messages(messages: pd.Series, *, length: int = 200) -> pd.Series:
    """Error messages with what varies between occurrences masked, so equal causes group.

    A message is cut before masking (a megabyte of text costs no more than `4 * length`
    characters of regex work) and after it, to `length`.
    """
    text = messages.astype("str").where(messages.notna()).str.slice(0, 4 * length)
    for pattern, replacement in _MASKS:
        text = text.str.replace(pattern, replacement, regex=True)
    return text.str.strip().str.slice(0, length)


def flow_ids(definitions: pd.DataFrame | None) -> pd.DataFrame:
    """(environment_id, workflowid, flow_id) of each flow with a workflowid: how a Dataverse
    run, which names its workflow, finds the flow API's flow id."""
    if definitions is None:
        return pd.DataFrame({c: pd.Series(dtype="str") for c in _FLOW_IDS})
    known = definitions.loc[definitions["workflowid"].notna(), _FLOW_IDS]
    return known.drop_duplicates(["environment_id", "workflowid"]).reset_index(drop=True)


_FLOW_IDS = ["environment_id", "workflowid", "flow_id"]


def combined_runs(
    flow_api_runs: pd.DataFrame,
    flowruns: pd.DataFrame | None = None,
    definitions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every flow's runs from the flow API, or from Dataverse for flows the API gave none
    (`auditor.engine.reductions.combined_runs`, run by DuckDB over the frames). Without
    `definitions` Dataverse runs cannot be placed and are left out."""
    dataverse = flowruns if flowruns is not None and definitions is not None else None
    frames = {"flow_api_runs": flow_api_runs}
    if dataverse is not None:
        frames["flowruns"] = dataverse
    reducer = Reducer.over_frames(frames)
    try:
        rows = reducer.combined_runs(flow_ids(definitions), RUN_VOCABULARIES)
    finally:
        reducer.close()
    return typed_runs(rows)


def typed_runs(rows: pd.DataFrame) -> pd.DataFrame:
    """Run rows from an engine in the common run shape (times UTC, whether the engine kept
    their zone or, like the store, holds them naive in UTC)."""
    rows = rows.reindex(columns=list(RUN_DTYPES))
    for column in ("start_time", "end_time"):
        rows[column] = pd.to_datetime(rows[column], utc=True)
    return typed(rows, RUN_DTYPES)


def api_runs(flow_api_runs: pd.DataFrame) -> pd.DataFrame:
    """The flow API's runs in the common run shape."""
    return combined_runs(flow_api_runs)


def dataverse_runs(flowruns: pd.DataFrame, definitions: pd.DataFrame) -> pd.DataFrame:
    """Dataverse `flowruns` in the common run shape, keyed by the flow API's flow id.

    A run's flow is found through its workflowid; one the definitions do not know keeps the
    workflowid as its flow id.
    """
    return combined_runs(empty_frame("flow_api_runs"), flowruns, definitions)


def runs_from_frames(frames: Frames) -> pd.DataFrame:
    """`combined_runs` over the loaded frames."""
    return combined_runs(frames.flow_api_runs, frames.flowruns, flow_definitions(frames))


def error_clusters(runs: pd.DataFrame, *, top: int = 3, length: int = 200) -> pd.DataFrame:
    """Each flow's most frequent causes of failure (finished Failed runs), `top` per flow."""
    failed = runs[runs["failed"]]
    if failed.empty:
        return _empty(CLUSTER_DTYPES)
    cluster = normalise_messages(failed["error_message"], length=length)
    cluster = cluster.where(cluster.notna() & (cluster != ""), failed["error_code"])
    cluster = cluster.fillna(NO_DETAIL)
    frame = pd.DataFrame(
        {
            "environment_id": failed["environment_id"],
            "flow_id": failed["flow_id"],
            "cluster": cluster,
            "error_code": failed["error_code"],
            "time": failed["start_time"],
            "example": failed["error_message"].astype("str").str.slice(0, length),
        }
    )
    keys = [*_KEY, "cluster"]
    grouped = frame.groupby(keys, sort=False, dropna=False)
    out = grouped.agg(
        count=("cluster", "size"),
        first_seen=("time", "min"),
        last_seen=("time", "max"),
        example=("example", "first"),
    )
    codes = frame.dropna(subset=["error_code"]).groupby([*keys, "error_code"]).size()
    if not codes.empty:
        best = codes.reset_index(name="n").sort_values(
            [*keys, "n", "error_code"], ascending=[True, True, True, False, True]
        )
        out = out.join(best.drop_duplicates(keys).set_index(keys)["error_code"])
    else:
        out["error_code"] = pd.NA
    out = out.reset_index().sort_values(
        [*_KEY, "count", "cluster"], ascending=[True, True, False, True], kind="stable"
    )
    out["rank"] = out.groupby(_KEY, sort=False).cumcount() + 1
    out = out[out["rank"] <= top]
    return out.loc[:, list(CLUSTER_DTYPES)].astype(CLUSTER_DTYPES).reset_index(drop=True)


def run_summary(
    runs: pd.DataFrame,
    *,
    window_days: float,
    flows: pd.DataFrame | None = None,
    top_errors: int = 3,
    message_length: int = 200,
    stats: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Per flow: outcome counts and rates, runs per day, longest failure streak, duration
    percentiles (finished runs, linear) and the top error cluster.

    `stats` are the per-flow statistics `auditor.engine.reductions.run_stats` made where the
    rows are; without them they are made by DuckDB from `runs`. `runs` must then hold every
    run; with them, the failed runs are enough (their messages are clustered here).
    `flows` (environment_id, flow_id), when given, adds flows without runs as zero rows, so a
    silent flow is visible rather than missing; runs of a flow it lacks (no definition was
    collected) are kept, not dropped.
    """
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    if stats is None:
        reducer = Reducer.over_frames({})
        try:
            stats = reducer.run_stats_of(runs.loc[:, list(RUN_DTYPES)])
        finally:
            reducer.close()
    counts = stats.set_index(_KEY).sort_index()
    clusters = error_clusters(runs, top=max(top_errors, 1), length=message_length)
    if not clusters.empty:
        first = clusters[clusters["rank"] == 1].set_index(_KEY)
        counts = counts.join(first["cluster"].rename("top_error"))
        counts = counts.join(first["count"].rename("top_error_count"))
        counts = counts.join(clusters.groupby(_KEY).size().rename("error_clusters"))
    out = counts.reset_index()
    if flows is not None and not flows.empty:
        known = flows.loc[:, _KEY].drop_duplicates()
        out = known.merge(out, on=_KEY, how="outer")
    for column, dtype in SUMMARY_DTYPES.items():
        if column not in out:
            out[column] = pd.NA
        if dtype == "int64":
            out[column] = out[column].fillna(0)
    finished = out["finished"].astype("Float64")
    out["failure_rate"] = out["failed"] / finished.where(finished > 0)
    out["cancel_rate"] = out["cancelled"] / finished.where(finished > 0)
    out["runs_per_day"] = out["runs"] / window_days
    out = out.loc[:, list(SUMMARY_DTYPES)].astype(SUMMARY_DTYPES)
    return out.sort_values(_KEY, kind="stable").reset_index(drop=True)


def environment_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """Per environment: flows, runs and failures added up from `run_summary`."""
    if summary.empty:
        return _empty(ENVIRONMENT_DTYPES)
    frame = summary.assign(
        has_runs=summary["runs"] > 0,
        failing=summary["failed"] > 0,
        fallback=summary["source"] == "dataverse",
    )
    out = frame.groupby("environment_id", sort=True).agg(
        flows=("flow_id", "size"),
        flows_with_runs=("has_runs", "sum"),
        flows_failing=("failing", "sum"),
        runs=("runs", "sum"),
        finished=("finished", "sum"),
        failed=("failed", "sum"),
        cancelled=("cancelled", "sum"),
        failed_without_message=("failed_without_message", "sum"),
        dataverse_fallback_flows=("fallback", "sum"),
    )
    finished = out["finished"].astype("Float64")
    out["failure_rate"] = out["failed"] / finished.where(finished > 0)
    out = out.reset_index()
    return out.loc[:, list(ENVIRONMENT_DTYPES)].astype(ENVIRONMENT_DTYPES)
