"""Run outcomes, streaks, durations and error clusters on small frames."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd

from auditor.analysis import runs
from auditor.frames import typed

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENV = "env"


def api(*rows: tuple[str, str, int, str | None, str | None]) -> pd.DataFrame:
    """(flow, run, minute, status, message) rows; a run lasts one second unless Running."""
    frame = pd.DataFrame(
        {
            "environment_id": ENV,
            "flow_name": [r[0] for r in rows],
            "run_name": [r[1] for r in rows],
            "start_time": [T0 + timedelta(minutes=r[2]) for r in rows],
            "end_time": [
                None if r[3] == "Running" else T0 + timedelta(minutes=r[2], seconds=1) for r in rows
            ],
            "status": [r[3] for r in rows],
            "error_message": [r[4] for r in rows],
        }
    )
    return typed(frame, "flow_api_runs")


def summary(frame: pd.DataFrame) -> pd.DataFrame:
    return runs.run_summary(runs.api_runs(frame), window_days=7).set_index("flow_id")


def test_outcomes_count_finished_runs_and_streaks_break_on_success() -> None:
    frame = api(
        ("a", "r1", 1, "Failed", "x"),
        ("a", "r2", 2, "Failed", "x"),
        ("a", "r3", 3, "Succeeded", None),
        ("a", "r4", 4, "Failed", "x"),
        ("a", "r5", 5, "Cancelled", None),
        ("a", "r6", 6, "Running", None),
        ("b", "r1", 1, "Succeeded", None),
    )
    out = summary(frame)
    a = out.loc["a"]
    assert (a["runs"], a["finished"], a["failed"], a["cancelled"]) == (6, 5, 3, 1)
    assert a["failure_rate"] == 3 / 5
    assert a["failure_streak"] == 2
    assert out.loc["b", "failure_streak"] == 0
    assert out.loc["b", "failure_rate"] == 0
    assert a["runs_per_day"] == 6 / 7
    assert a["duration_p50_ms"] == 1000


def test_streak_orders_by_start_then_name_and_running_breaks_it() -> None:
    frame = api(
        ("a", "r2", 1, "Failed", None),
        ("a", "r1", 1, "Succeeded", None),  # same start, earlier name: first
        ("a", "r3", 2, "Failed", None),
        ("a", "r4", 3, "Running", None),
        ("a", "r5", 4, "Failed", None),
    )
    assert summary(frame).loc["a", "failure_streak"] == 2


def test_unknown_statuses_and_missing_times_do_not_raise() -> None:
    frame = api(("a", "r1", 1, "Exploded", None), ("a", "r2", 2, None, None))
    frame.loc[0, "end_time"] = pd.NaT
    out = summary(frame)
    assert (out.loc["a", "runs"], out.loc["a", "failed"]) == (2, 0)
    assert pd.isna(out.loc["a", "duration_p95_ms"])
    assert pd.isna(out.loc["a", "failure_rate"])


def test_messages_are_normalised_clustered_and_truncated() -> None:
    guid = "0f8fad5b-d9cb-469f-a165-70867728950e"
    frame = api(
        ("a", "r1", 1, "Failed", f"Record {guid} not found after 3 tries"),
        (
            "a",
            "r2",
            2,
            "Failed",
            "Record 1f8fad5b-d9cb-469f-a165-70867728950e not found after 5 tries",
        ),
        ("a", "r3", 3, "Failed", "x" * 1_000_000),
        ("a", "r4", 4, "Failed", None),
    )
    clusters = runs.error_clusters(runs.api_runs(frame), top=2, length=50)
    assert list(clusters["rank"]) == [1, 2]
    assert clusters.iloc[0]["cluster"] == "Record <guid> not found after <n> tries"
    assert clusters.iloc[0]["count"] == 2
    assert len(clusters.iloc[1]["cluster"]) <= 50
    out = summary(frame)
    assert out.loc["a", "error_clusters"] == 3
    assert out.loc["a", "failed_without_message"] == 1


def test_dataverse_runs_fill_in_for_flows_without_flow_api_runs() -> None:
    definitions = pd.DataFrame(
        {"environment_id": [ENV, ENV], "flow_id": ["a", "b"], "workflowid": ["wa", "wb"]}
    )
    flowruns = typed(
        pd.DataFrame(
            {
                "environment_id": ENV,
                "flowrunid": ["1", "2", "3"],
                "name": ["x1", "x2", "x3"],
                "workflowid": ["wa", "wb", "wz"],
                "status": ["Failed", "Failed", "Succeeded"],
                "starttime": [T0] * 3,
                "endtime": [T0 + timedelta(seconds=2)] * 3,
            }
        ),
        "flowruns",
    )
    combined = runs.combined_runs(api(("a", "r1", 1, "Succeeded", None)), flowruns, definitions)
    out = runs.run_summary(combined, window_days=1).set_index("flow_id")
    assert out.loc["a", "source"] == "flow-api"
    assert out.loc["a", "failed"] == 0  # the API's runs win over Dataverse's for flow a
    assert out.loc["b", "source"] == "dataverse"
    assert out.loc["b", "failed"] == 1
    assert out.loc["wz", "runs"] == 1  # an unknown workflow keeps its id
    env = runs.environment_summary(out.reset_index())
    assert env.loc[0, "dataverse_fallback_flows"] == 2
    assert env.loc[0, "failed"] == 1


def test_flows_without_runs_get_zero_rows() -> None:
    flows = pd.DataFrame({"environment_id": [ENV, ENV], "flow_id": ["a", "silent"]})
    out = runs.run_summary(
        runs.api_runs(api(("a", "r1", 1, "Failed", "boom"))), window_days=7, flows=flows
    ).set_index("flow_id")
    assert out.loc["silent", "runs"] == 0
    assert pd.isna(out.loc["silent", "failure_rate"])
    assert out.loc["a", "top_error"] == "boom"
