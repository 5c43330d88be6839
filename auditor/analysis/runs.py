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

import numpy as np
import pandas as pd

from auditor.analysis.common import percentiles
from auditor.analysis.statuses import DATAVERSE_FLOWRUN, FLOW_API, RUN_VOCABULARIES, RunVocabulary
from auditor.frames import Frames, flow_definitions

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


def _lowered(status: pd.Series) -> pd.Series:
    """Statuses in lower case, missing ones left missing (statuses match case-insensitively)."""
    return status.astype("string").str.lower()


def _among(lowered: pd.Series, words: frozenset[str]) -> pd.Series:
    return lowered.isin(words).fillna(False).astype(bool)


def _status_flags(
    status: pd.Series, end_time: pd.Series, vocabulary: RunVocabulary
) -> tuple[pd.Series, ...]:
    """finished, failed, cancelled per run, read with the vocabulary of the run's source.

    A run without an end time has no outcome. With an end time, a flow API run is finished
    unless its status says it is still going (or is missing); a Dataverse run only when its
    status is a final one, since that table records runs once they have ended.
    """
    lowered = _lowered(status)
    if vocabulary.final is None:
        final = status.notna().astype(bool) & ~_among(lowered, vocabulary.unfinished)
    else:
        final = _among(lowered, vocabulary.final)
    finished = (end_time.notna().astype(bool) & final).astype(bool)
    failed = finished & _among(lowered, vocabulary.failed)
    cancelled = finished & _among(lowered, vocabulary.cancelled)
    return finished, failed, cancelled


def _unknown_status(runs: pd.DataFrame) -> pd.Series:
    """Runs whose status is missing or not in the vocabulary of their source."""
    lowered = _lowered(runs["status"])
    known = pd.Series(False, index=runs.index, dtype=bool)
    for source, vocabulary in RUN_VOCABULARIES.items():
        known |= (runs["source"] == source).fillna(False).astype(bool) & _among(
            lowered, vocabulary.known
        )
    return ~known


def _duration_ms(start: pd.Series, end: pd.Series) -> pd.Series:
    ms = (end - start).dt.total_seconds() * 1000
    # A negative duration is a clock error, not a fast run.
    return ms.where(ms >= 0).astype("Float64")


def api_runs(flow_api_runs: pd.DataFrame) -> pd.DataFrame:
    """The flow API's runs in the common run shape."""
    runs = flow_api_runs
    finished, failed, cancelled = _status_flags(runs["status"], runs["end_time"], FLOW_API)
    out = pd.DataFrame(
        {
            "environment_id": runs["environment_id"],
            "flow_id": runs["flow_name"],
            "run_name": runs["run_name"],
            "start_time": runs["start_time"],
            "end_time": runs["end_time"],
            "status": runs["status"],
            "error_code": runs["error_code"],
            "error_message": runs["error_message"],
            "duration_ms": _duration_ms(runs["start_time"], runs["end_time"]),
            "finished": finished,
            "failed": failed,
            "cancelled": cancelled,
            "source": "flow-api",
        },
        index=runs.index,
    )
    return out.astype(RUN_DTYPES).reset_index(drop=True)


def dataverse_runs(flowruns: pd.DataFrame, definitions: pd.DataFrame) -> pd.DataFrame:
    """Dataverse `flowruns` in the common run shape, keyed by the flow API's flow id.

    A run's flow is found through its workflowid; one the definitions do not know keeps the
    workflowid as its flow id.
    """
    ids = definitions.loc[definitions["workflowid"].notna(), ["environment_id", "workflowid"]]
    ids = ids.assign(flow_id=definitions["flow_id"]).drop_duplicates(
        ["environment_id", "workflowid"]
    )
    workflow = flowruns["workflowid"].fillna(flowruns["workflow_ref"])
    keyed = pd.DataFrame(
        {"environment_id": flowruns["environment_id"], "workflowid": workflow},
        index=flowruns.index,
    ).merge(ids, on=["environment_id", "workflowid"], how="left")
    keyed.index = flowruns.index
    flow_id = keyed["flow_id"].fillna(keyed["workflowid"])
    finished, failed, cancelled = _status_flags(
        flowruns["status"], flowruns["endtime"], DATAVERSE_FLOWRUN
    )
    measured = _duration_ms(flowruns["starttime"], flowruns["endtime"])
    stated = flowruns["duration"].astype("Float64")
    out = pd.DataFrame(
        {
            "environment_id": flowruns["environment_id"],
            "flow_id": flow_id,
            "run_name": flowruns["name"].fillna(flowruns["flowrunid"]),
            "start_time": flowruns["starttime"],
            "end_time": flowruns["endtime"],
            "status": flowruns["status"],
            "error_code": flowruns["errorcode"],
            "error_message": flowruns["errormessage"],
            "duration_ms": measured.fillna(stated.where(stated >= 0)),
            "finished": finished,
            "failed": failed,
            "cancelled": cancelled,
            "source": "dataverse",
        },
        index=flowruns.index,
    )
    out = out[out["flow_id"].notna()]
    return out.astype(RUN_DTYPES).reset_index(drop=True)


def combined_runs(
    flow_api_runs: pd.DataFrame,
    flowruns: pd.DataFrame | None = None,
    definitions: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Every flow's runs from the flow API, or from Dataverse for flows the API gave none."""
    api = api_runs(flow_api_runs)
    if flowruns is None or flowruns.empty or definitions is None:
        return api
    dv = dataverse_runs(flowruns, definitions)
    covered = pd.MultiIndex.from_frame(api[_KEY].drop_duplicates())
    dv = dv[~pd.MultiIndex.from_frame(dv[_KEY]).isin(covered)]
    if dv.empty:
        return api
    if api.empty:
        return dv.reset_index(drop=True)
    return pd.concat([api, dv], ignore_index=True).astype(RUN_DTYPES)


def runs_from_frames(frames: Frames) -> pd.DataFrame:
    """`combined_runs` over the loaded frames."""
    return combined_runs(frames.flow_api_runs, frames.flowruns, flow_definitions(frames))


def failure_streaks(runs: pd.DataFrame) -> pd.Series:
    """Longest run of consecutive Failed runs per flow (runs ordered by start, then name).

    An unfinished run has no outcome yet, so it ends a streak, as in the ground truth.
    """
    if runs.empty:
        return pd.Series(dtype="int64", index=pd.MultiIndex.from_arrays([[], []], names=_KEY))
    ordered = runs.sort_values([*_KEY, "start_time", "run_name"], kind="stable")
    failed = ordered["failed"].to_numpy(dtype=bool)
    breaks = np.cumsum(~failed)
    streak = (
        pd.DataFrame(
            {
                "environment_id": ordered["environment_id"].to_numpy(),
                "flow_id": ordered["flow_id"].to_numpy(),
                "block": breaks,
                "failed": failed.astype(np.int64),
            }
        )
        .groupby([*_KEY, "block"], sort=False)["failed"]
        .sum()
    )
    return streak.groupby(level=[0, 1]).max().astype("int64")


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
) -> pd.DataFrame:
    """Per flow: outcome counts and rates, runs per day, longest failure streak, duration
    percentiles (finished runs, linear: `common.percentiles`) and the top error cluster.

    `flows` (environment_id, flow_id), when given, adds flows without runs as zero rows, so a
    silent flow is visible rather than missing; runs of a flow it lacks (no definition was
    collected) are kept, not dropped.
    """
    if window_days <= 0:
        raise ValueError("window_days must be positive")
    grouped = runs.groupby(_KEY, sort=True)
    counts = grouped.agg(
        source=("source", "first"),
        runs=("run_name", "size"),
        finished=("finished", "sum"),
        failed=("failed", "sum"),
        cancelled=("cancelled", "sum"),
    )
    bare = runs["failed"] & runs["error_message"].isna()
    counts["failed_without_message"] = bare.groupby([runs[k] for k in _KEY]).sum()
    odd = _unknown_status(runs)
    counts["unknown_status"] = odd.groupby([runs[k] for k in _KEY]).sum()
    durations = runs.loc[runs["finished"] & runs["duration_ms"].notna(), [*_KEY, "duration_ms"]]
    durations = durations.astype({"duration_ms": "float64"})
    if not durations.empty:
        by_flow = durations.groupby(_KEY)["duration_ms"]
        levels = {"duration_p50_ms": 0.5, "duration_p95_ms": 0.95, "duration_p99_ms": 0.99}
        counts = counts.join(percentiles(by_flow, levels, maximum="duration_max_ms"))
    counts = counts.join(failure_streaks(runs).rename("failure_streak"))
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
