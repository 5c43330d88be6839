"""Plug-in steps: executions, failures, durations and depth from the plug-in trace log.

The trace log has no stage, rank or step name; those come from joining `pluginstepid` to the
step registration (`sdkmessageprocessingstepid`), as Plugin Trace Viewer does
(https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/plugintracelog,
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep).
The join is a full one: a registered step with no trace row is reported with zero executions
(it may be idle, or logging may be off), and trace rows of a step we did not read (not
custom, deleted, or no step at all, like workflow activities) are kept under their
`pluginstepid` with the step columns null, so no execution goes uncounted.

Durations are `performanceexecutionduration` in milliseconds; a null or negative one (no
measurement, or a clock error rather than a fast run) counts as an execution but is left out
of the percentiles, which are numpy's "linear" ones. The 2-second guideline for synchronous
plug-ins and the 2-minute limit of a message operation come from
https://learn.microsoft.com/power-apps/developer/data-platform/best-practices/business-logic/
and https://learn.microsoft.com/power-apps/developer/data-platform/analyze-performance .
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from auditor.analysis.common import number, typed
from auditor.engine.reducer import Reducer
from auditor.frames import empty_frame

_KEYS = ["environment_id", "stepid"]

# The defaults of `step_stats` (its docstring gives the sources).
SYNC_GUIDELINE_MS = 2000.0
TIMEOUT_MS = 120_000.0
NEAR_TIMEOUT_SHARE = 0.9
LOOP_DEPTH = 8
_STEP_COLUMNS = ["name", "message_name", "primary_entity", "mode", "stage"]

# Column names and dtypes of the frames this module returns, declared once. Strings are
# pandas' "str" (missing = NaN), optional integers nullable "Int64", percentiles float (NaN
# when a step has no duration to rank).
STEP_STATS_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "stepid": "str",  # NaN for trace rows without a pluginstepid
    "known_step": "bool",  # the step is in plugin_steps
    "name": "str",
    "message_name": "str",
    "primary_entity": "str",
    "mode": "Int64",  # 0 synchronous, 1 asynchronous
    "stage": "Int64",  # 10 pre-validation, 20 pre-operation, 40 post-operation
    "executions": "int64",  # trace rows
    "failures": "int64",  # trace rows with exception details
    "failure_rate": "float64",  # NaN without executions
    "timed_executions": "int64",  # trace rows with a duration
    "p50_ms": "float64",
    "p95_ms": "float64",
    "p99_ms": "float64",
    "max_ms": "float64",
    "sync_over_guideline": "int64",  # synchronous executions above the guideline
    "near_timeout": "int64",  # executions above near_timeout_share of the limit
    "max_depth": "Int64",
    "nested_executions": "int64",  # depth > 1: called from another plug-in or flow
    "loop_executions": "int64",  # depth >= loop_depth: the platform's loop detection zone
}
STEP_STATS_COLUMNS = tuple(STEP_STATS_DTYPES)

DEPTH_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "stepid": "str",
    "depth": "Int64",
    "executions": "int64",
}

UNFILTERED_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "stepid": "str",
    "name": "str",
    "primary_entity": "str",
    "mode": "Int64",
    "stage": "Int64",
    "executions": "int64",
    "failures": "int64",
    "p95_ms": "float64",
}

COVERAGE_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "plugintracelogsetting": "Int64",
    "setting": "str",  # Off / Exception / All / unknown
    "executions_visible": "bool",  # every execution leaves a trace row
    "failures_visible": "bool",  # failed executions leave a trace row
    "evidence": "str",  # what the trace log can and cannot show, for the reader
}

# plugintracelogsetting values, https://learn.microsoft.com/power-apps/developer/data-platform/logging-tracing
TRACE_SETTINGS: Mapping[int, tuple[str, bool, bool, str]] = {
    0: (
        "Off",
        False,
        False,
        "no trace rows: plug-in executions, durations and failure details are unseen",
    ),
    1: (
        "Exception",
        False,
        True,
        "failures only: durations, execution counts and slow successes are unseen",
    ),
    2: ("All", True, True, "every execution: counts, durations and failures are complete"),
}
_UNKNOWN_SETTING = (
    "unknown",
    False,
    False,
    "setting not read or not a documented value: the trace evidence cannot be judged",
)


def _present(series: pd.Series) -> pd.Series:
    """Whether a text column holds something other than null or blanks."""
    text = series.astype("str")
    return (text.notna() & (text.str.strip() != "")).astype(bool)


def _registered(steps: pd.DataFrame) -> pd.DataFrame:
    """The registered steps with their keys as text, the last row of a repeated one."""
    return (
        steps.reindex(columns=[*_KEYS, *_STEP_COLUMNS])
        .astype({"environment_id": "str", "stepid": "str"})
        .dropna(subset=["stepid"])
        .drop_duplicates(_KEYS, keep="last")
    )


def step_modes(steps: pd.DataFrame) -> pd.DataFrame:
    """(environment_id, stepid, mode) of each registered step: a trace row without a mode
    takes its step's."""
    frame = _registered(steps)
    return pd.DataFrame(
        {
            "environment_id": frame["environment_id"],
            "stepid": frame["stepid"],
            "mode": number(frame["mode"]),
        }
    ).reset_index(drop=True)


def step_stats(
    steps: pd.DataFrame,
    traces: pd.DataFrame | None = None,
    *,
    reduced: pd.DataFrame | None = None,
    sync_guideline_ms: float = SYNC_GUIDELINE_MS,
    timeout_ms: float = TIMEOUT_MS,
    near_timeout_share: float = NEAR_TIMEOUT_SHARE,
    loop_depth: int = LOOP_DEPTH,
) -> pd.DataFrame:
    """One row per step and environment: how often it ran, failed, how long and how deep.

    `steps` has the columns of the store's `plugin_steps`. The trace rows are reduced per
    step where they are (`auditor.engine.reductions.step_traces`): `reduced` is that
    reduction, made by the caller's engine with the same thresholds; without it, `traces`
    (the columns of `plugintracelogs`) are reduced by DuckDB here. Synchronous is the trace
    row's `mode`, or the step's when the row has none. Thresholds: `sync_guideline_ms`
    (synchronous plug-ins should finish within 2 s), `near_timeout_share` of `timeout_ms`
    (the 2-minute limit), `loop_depth` (Dataverse stops a chain at depth 8 by default).
    """
    step_frame = _registered(steps)
    if reduced is None:
        reducer = Reducer.over_frames(
            {"plugintracelogs": traces if traces is not None else empty_frame("plugintracelogs")}
        )
        try:
            reduced = reducer.step_traces(
                step_modes(steps),
                sync_guideline_ms=sync_guideline_ms,
                near_timeout_ms=near_timeout_share * timeout_ms,
                loop_depth=loop_depth,
            )
        finally:
            reducer.close()
    measured = reduced.astype({"environment_id": "str", "stepid": "str"})
    merged = step_frame.assign(known_step=True).merge(measured, on=_KEYS, how="outer", sort=False)
    zero = [
        "executions",
        "failures",
        "timed_executions",
        "sync_over_guideline",
        "near_timeout",
        "nested_executions",
        "loop_executions",
    ]
    merged[zero] = merged[zero].fillna(0)
    merged["known_step"] = merged["known_step"].fillna(False).astype(bool)
    executions = merged["executions"].astype("float64")
    merged["failure_rate"] = merged["failures"] / executions.where(executions > 0)
    merged["max_depth"] = merged["max_depth"].astype("float64").round()
    merged[["mode", "stage"]] = merged[["mode", "stage"]].apply(number).round()
    ordered = merged.sort_values(
        ["environment_id", "executions", "stepid"],
        ascending=[True, False, True],
        na_position="last",
        kind="stable",
    )
    return typed(ordered, STEP_STATS_DTYPES)


def depth_distribution(traces: pd.DataFrame) -> pd.DataFrame:
    """Executions per step and depth: how deep chains go, to find loops and long cascades."""
    reducer = Reducer.over_frames({"plugintracelogs": traces})
    try:
        counts = reducer.trace_depths()
    finally:
        reducer.close()
    counts = counts.sort_values(["environment_id", "stepid", "depth"], na_position="last")
    return typed(counts, DEPTH_DTYPES)


def unfiltered_update_steps(steps: pd.DataFrame, stats: pd.DataFrame) -> pd.DataFrame:
    """Enabled custom Update steps without filtering attributes, busiest first.

    Such a step runs on every update of its table, whatever changed
    (https://learn.microsoft.com/power-apps/developer/data-platform/best-practices/business-logic/include-filtering-attributes-plugin-registration);
    its executions (from `step_stats`) say how much that costs. An attribute list of only
    commas and blanks filters nothing, so it counts as empty.
    """
    steps = steps.reindex(
        columns=[*_KEYS, *_STEP_COLUMNS, "statecode", "customizationlevel", "filteringattributes"]
    )
    attributes = steps["filteringattributes"].astype("str").str.replace(",", "", regex=False)
    message = steps["message_name"].astype("str").str.strip().str.lower()
    chosen = steps[
        (number(steps["statecode"]) == 0)
        & (number(steps["customizationlevel"]) == 1)
        & (message == "update").fillna(False).astype(bool)
        & ~_present(attributes)
    ].astype({"environment_id": "str", "stepid": "str"})
    measured = stats.reindex(columns=[*_KEYS, "executions", "failures", "p95_ms"]).astype(
        {"environment_id": "str", "stepid": "str"}
    )
    merged = chosen.merge(measured, on=_KEYS, how="left")
    merged[["executions", "failures"]] = merged[["executions", "failures"]].fillna(0)
    merged[["mode", "stage"]] = merged[["mode", "stage"]].apply(number).round()
    ordered = merged.sort_values(
        ["executions", "environment_id", "name", "stepid"],
        ascending=[False, True, True, True],
        kind="stable",
    )
    return typed(ordered, UNFILTERED_DTYPES)


def trace_coverage(organizations: pd.DataFrame) -> pd.DataFrame:
    """Per environment, the trace-log setting and what it lets the trace evidence show.

    Not being able to see is a result: with Off no trace row exists, with Exception only
    failures are logged, so zero executions or a low p95 prove nothing there.
    """
    setting = number(organizations["plugintracelogsetting"])
    known = setting.where(setting.isin(list(TRACE_SETTINGS)))
    facts = {
        field: known.map({k: v[i] for k, v in TRACE_SETTINGS.items()}).where(
            known.notna(), _UNKNOWN_SETTING[i]
        )
        for i, field in enumerate(["setting", "executions_visible", "failures_visible", "evidence"])
    }
    out = pd.DataFrame(
        {
            "environment_id": organizations["environment_id"].astype("str"),
            "plugintracelogsetting": setting.round(),
            **facts,
        }
    ).drop_duplicates("environment_id", keep="last")
    return typed(out.sort_values("environment_id", kind="stable"), COVERAGE_DTYPES)
