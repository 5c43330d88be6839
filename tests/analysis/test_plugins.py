"""Plug-in step statistics on small hand-made frames shaped like the store's tables."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from auditor.analysis.plugins import (
    COVERAGE_DTYPES,
    STEP_STATS_COLUMNS,
    UNFILTERED_DTYPES,
    depth_distribution,
    step_stats,
    trace_coverage,
    unfiltered_update_steps,
)
from auditor.store import TABLES

ENV = "env-1"
FAULT = "Exception type: System.ServiceModel.FaultException\r\nMessage: Credit limit exceeded"


def _frame(table: str, rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """A frame with every column of a store table; what a row does not say is null."""
    return pd.DataFrame(list(rows), columns=list(TABLES[table].names()))


def step(stepid: str, **values: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "environment_id": ENV,
        "stepid": stepid,
        "name": f"Contoso.Plugins.{stepid}: Update of account",
        "stage": 20,
        "mode": 0,
        "filteringattributes": "creditlimit",
        "statecode": 0,
        "customizationlevel": 1,
        "message_name": "Update",
        "primary_entity": "account",
    }
    return {**row, **values}


def traces_of(
    stepid: str | None, durations: Sequence[float | None], **values: Any
) -> list[dict[str, Any]]:
    return [
        {
            "environment_id": ENV,
            "plugintracelogid": f"{stepid}-{i}",
            "pluginstepid": stepid,
            "mode": 0,
            "depth": 1,
            "performanceexecutionduration": duration,
            **values,
        }
        for i, duration in enumerate(durations)
    ]


def stats_of(steps: list[dict[str, Any]], traces: list[dict[str, Any]], **kw: Any) -> pd.DataFrame:
    return step_stats(_frame("plugin_steps", steps), _frame("plugintracelogs", traces), **kw)


def one(stats: pd.DataFrame, stepid: str | None) -> pd.Series:
    mine = stats[stats["stepid"].isna()] if stepid is None else stats[stats["stepid"] == stepid]
    assert len(mine) == 1
    return mine.iloc[0]


def test_a_fast_step_is_counted_with_numpy_linear_percentiles() -> None:
    durations = [12, 40, 7, 300, 95, 18, 1200, 64]
    row = one(stats_of([step("fast")], traces_of("fast", durations)), "fast")
    assert row["executions"] == 8
    assert row["failures"] == 0
    assert row["failure_rate"] == 0
    for column, q in (("p50_ms", 50), ("p95_ms", 95), ("p99_ms", 99)):
        assert row[column] == pytest.approx(np.percentile(durations, q, method="linear"))
    assert row["max_ms"] == 1200
    assert row["sync_over_guideline"] == 0
    assert row["near_timeout"] == 0
    assert row["known_step"]
    assert row["name"] == "Contoso.Plugins.fast: Update of account"


def test_a_slow_synchronous_step_is_over_the_guideline_and_near_the_timeout() -> None:
    durations = [1500, 2500, 3000, 110_000, 2000]
    row = one(stats_of([step("slow")], traces_of("slow", durations)), "slow")
    assert row["sync_over_guideline"] == 3  # 2000 is not over 2000
    assert row["near_timeout"] == 1  # over 108 s
    stricter = one(
        stats_of([step("slow")], traces_of("slow", durations), sync_guideline_ms=1000), "slow"
    )
    assert stricter["sync_over_guideline"] == 5


def test_asynchronous_executions_are_not_held_to_the_synchronous_guideline() -> None:
    traces = traces_of("a", [5000, 6000], mode=1) + traces_of("a", [7000], mode=None)
    row = one(stats_of([step("a", mode=1)], traces), "a")
    assert row["executions"] == 3
    assert row["sync_over_guideline"] == 0  # trace mode 1, and the step's mode 1 for the null


def test_a_trace_without_mode_takes_the_mode_of_its_step() -> None:
    row = one(stats_of([step("s", mode=0)], traces_of("s", [5000], mode=None)), "s")
    assert row["sync_over_guideline"] == 1


def test_failures_are_rows_with_exception_details_not_blank_ones() -> None:
    traces = (
        traces_of("f", [10], exceptiondetails=FAULT)
        + traces_of("f", [10], exceptiondetails="  \r\n")
        + traces_of("f", [10, 10])
    )
    row = one(stats_of([step("f")], traces), "f")
    assert (row["executions"], row["failures"]) == (4, 1)
    assert row["failure_rate"] == 0.25


def test_null_and_unreadable_durations_count_as_executions_but_not_in_percentiles() -> None:
    traces = traces_of("n", [100, None, 300, None])
    traces[3]["performanceexecutionduration"] = "not a number"
    row = one(stats_of([step("n")], traces), "n")
    assert row["executions"] == 4
    assert row["timed_executions"] == 2
    assert row["p50_ms"] == 200
    assert row["max_ms"] == 300
    untimed = one(stats_of([step("u")], traces_of("u", [None, None])), "u")
    assert untimed["executions"] == 2
    assert np.isnan(untimed["p95_ms"])


def test_a_registered_step_without_traces_has_zero_executions() -> None:
    row = one(stats_of([step("idle")], []), "idle")
    assert row["executions"] == 0
    assert np.isnan(row["failure_rate"])
    assert np.isnan(row["p95_ms"])
    assert pd.isna(row["max_depth"])


def test_traces_of_unknown_steps_are_kept_with_null_step_columns() -> None:
    traces = traces_of("ghost", [10, 20]) + traces_of(None, [30], operationtype=2)
    stats = stats_of([step("known")], traces)
    ghost = one(stats, "ghost")
    assert ghost["executions"] == 2
    assert not ghost["known_step"]
    assert pd.isna(ghost["name"])
    assert pd.isna(ghost["stage"])
    no_step = one(stats, None)
    assert no_step["executions"] == 1
    assert set(stats["stepid"].dropna()) == {"ghost", "known"}


def test_steps_of_two_environments_do_not_mix() -> None:
    steps = [step("s"), {**step("s"), "environment_id": "env-2"}]
    traces = traces_of("s", [10, 20]) + [
        {**t, "environment_id": "env-2"} for t in traces_of("s", [99])
    ]
    stats = stats_of(steps, traces)
    by_env = stats.set_index("environment_id")["executions"]
    assert by_env.to_dict() == {ENV: 2, "env-2": 1}


def test_depth_shows_nesting_and_loops() -> None:
    traces = [
        *traces_of("d", [10, 10], depth=1),
        *traces_of("d", [10], depth=2),
        *traces_of("d", [10, 10], depth=8),
        *traces_of("d", [10], depth=None),
    ]
    row = one(stats_of([step("d")], traces), "d")
    assert row["max_depth"] == 8
    assert row["nested_executions"] == 3
    assert row["loop_executions"] == 2
    flat = one(stats_of([step("d")], traces_of("d", [10], depth=1)), "d")
    assert (flat["nested_executions"], flat["loop_executions"]) == (0, 0)
    distribution = depth_distribution(_frame("plugintracelogs", traces))
    counts = dict(zip(distribution["depth"], distribution["executions"], strict=True))
    assert counts[1] == 2
    assert counts[2] == 1
    assert counts[8] == 2
    assert distribution["depth"].isna().sum() == 1


def test_unknown_enum_values_are_kept_not_guessed() -> None:
    steps = [step("odd", mode=7, stage=99)]
    row = one(stats_of(steps, traces_of("odd", [5000], mode=7)), "odd")
    assert (row["mode"], row["stage"]) == (7, 99)
    assert row["sync_over_guideline"] == 0  # only mode 0 is synchronous


def test_a_one_megabyte_exception_is_one_failure_and_fast() -> None:
    huge = FAULT + "x" * 1_000_000
    traces = traces_of("big", [10] * 20, exceptiondetails=huge, messageblock=huge)
    started = time.perf_counter()
    row = one(stats_of([step("big")], traces), "big")
    assert row["failures"] == 20
    assert time.perf_counter() - started < 2


def test_empty_inputs_give_typed_empty_frames() -> None:
    stats = stats_of([], [])
    assert tuple(stats.columns) == STEP_STATS_COLUMNS
    assert stats.empty
    assert stats["executions"].dtype == "int64"
    unfiltered = unfiltered_update_steps(_frame("plugin_steps", []), stats)
    assert list(unfiltered.columns) == list(UNFILTERED_DTYPES)


def test_unfiltered_update_steps_are_the_enabled_custom_ones_busiest_first() -> None:
    steps = [
        step("filtered"),
        step("quiet", filteringattributes=None),
        step("busy", filteringattributes=""),
        step("commas", filteringattributes=" , "),
        step("disabled", filteringattributes=None, statecode=1),
        step("system", filteringattributes=None, customizationlevel=0),
        step("create", filteringattributes=None, message_name="Create"),
        step("idle", filteringattributes=None),
    ]
    traces = [
        *traces_of("quiet", [10]),
        *traces_of("busy", [10] * 5),
        *traces_of("commas", [1] * 3),
    ]
    steps_frame = _frame("plugin_steps", steps)
    stats = step_stats(steps_frame, _frame("plugintracelogs", traces))
    found = unfiltered_update_steps(steps_frame, stats)
    assert found["stepid"].tolist() == ["busy", "commas", "quiet", "idle"]
    assert found["executions"].tolist() == [5, 3, 1, 0]


def test_filtered_update_steps_are_not_reported() -> None:
    steps_frame = _frame("plugin_steps", [step("a"), step("b", filteringattributes="name,x")])
    stats = step_stats(steps_frame, _frame("plugintracelogs", traces_of("a", [1])))
    assert unfiltered_update_steps(steps_frame, stats).empty


def test_trace_coverage_says_what_each_setting_lets_us_see() -> None:
    orgs = _frame(
        "organizations",
        [
            {"environment_id": f"env-{value}", "plugintracelogsetting": value}
            for value in (0, 1, 2, 7, None)
        ],
    )
    coverage = trace_coverage(orgs).set_index("environment_id")
    assert list(coverage.reset_index().columns) == list(COVERAGE_DTYPES)
    assert coverage.loc["env-2", "setting"] == "All"
    assert coverage.loc["env-2", "executions_visible"]
    assert coverage.loc["env-1", "setting"] == "Exception"
    assert coverage.loc["env-1", "failures_visible"]
    assert not coverage.loc["env-1", "executions_visible"]
    assert coverage.loc["env-0", "setting"] == "Off"
    assert not coverage.loc["env-0", "failures_visible"]
    assert "no trace rows" in str(coverage.loc["env-0", "evidence"])
    for unknown in ("env-7", "env-None"):
        assert coverage.loc[unknown, "setting"] == "unknown"
        assert not coverage.loc[unknown, "executions_visible"]
