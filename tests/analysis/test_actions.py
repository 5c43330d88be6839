"""Unnecessary runs, Wilson intervals, retries, durations and trigger executions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from auditor.analysis import actions, runs
from auditor.analysis.jobs import reduce_jobs
from auditor.engine.reducer import ActionReduction, Reducer
from auditor.frames import typed

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENV = "env"


def definition(*rows: tuple[str, str, bool]) -> pd.DataFrame:
    """(flow, action, is_effect) rows of a definition action frame."""
    return pd.DataFrame(
        {
            "environment_id": ENV,
            "flow_id": [r[0] for r in rows],
            "action_name": [r[1] for r in rows],
            "is_effect": [r[2] for r in rows],
        }
    )


def results(*rows: tuple[str, str, str, str | None]) -> pd.DataFrame:
    """(flow, run, action, status) rows of flow_run_actions."""
    frame = pd.DataFrame(
        {
            "environment_id": ENV,
            "flow_name": [r[0] for r in rows],
            "run_name": [r[1] for r in rows],
            "action_name": [r[2] for r in rows],
            "status": [r[3] for r in rows],
            "start_time": T0,
            "end_time": T0 + timedelta(seconds=2),
        }
    )
    return typed(frame, "flow_run_actions")


def reduced(acts: pd.DataFrame, defs: pd.DataFrame | None = None) -> ActionReduction:
    """The action rows reduced by DuckDB in memory, as the analysis reduces them."""
    effects = actions.effect_actions(defs if defs is not None else definition())
    reducer = Reducer.over_frames({"flow_run_actions": acts})
    try:
        return reducer.actions(effects)
    finally:
        reducer.close()


def finished_runs(*keys: tuple[str, str], running: tuple[str, ...] = ()) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "environment_id": ENV,
            "flow_name": [k[0] for k in keys],
            "run_name": [k[1] for k in keys],
            "start_time": T0,
            "end_time": [None if k[1] in running else T0 for k in keys],
            "status": ["Running" if k[1] in running else "Succeeded" for k in keys],
        }
    )
    return runs.api_runs(typed(frame, "flow_api_runs"))


def test_a_run_is_unnecessary_when_every_effect_was_skipped_or_absent() -> None:
    defs = definition(("f", "Get", False), ("f", "Create", True), ("f", "Send", True))
    acts = results(
        ("f", "r1", "Get", "Succeeded"),
        ("f", "r1", "Create", "Skipped"),  # Send absent: unnecessary
        ("f", "r2", "Get", "Succeeded"),
        ("f", "r2", "Send", "Succeeded"),  # an effect ran
        ("f", "r3", "Create", "Skipped"),
        ("f", "r3", "Send", "Skipped"),  # unnecessary
        ("f", "r4", "Unknown_action", "Succeeded"),  # unknown names are not effects
        ("f", "r5", "Send", "Running"),  # still going: not classified
    )
    all_runs = finished_runs(*((("f", f"r{i}")) for i in range(1, 7)), running=("r5",))
    classified = actions.classify_runs(reduced(acts, defs).sampled, defs, all_runs)
    classified = classified.set_index("run_name")
    assert classified["unnecessary"].to_dict() == {
        "r1": True,
        "r2": False,
        "r3": True,
        "r4": True,
    }  # r6 has no actions: not sampled
    summary = actions.unnecessary_summary(
        classified.reset_index(),
        pd.DataFrame({"environment_id": [ENV], "flow_id": ["f"], "finished": [100]}),
    ).iloc[0]
    assert (summary["sampled"], summary["unnecessary"]) == (4, 3)
    assert summary["rate"] == 0.75
    assert summary["extrapolated_unnecessary"] == 75
    assert summary["rate_low"] < 0.75 < summary["rate_high"]


def test_runs_of_a_flow_without_definition_are_not_classified() -> None:
    defs = definition(("f", "Create", True))
    classified = actions.classify_runs(
        reduced(results(("g", "r1", "Create", "Skipped")), defs).sampled,
        defs,
        finished_runs(("g", "r1")),
    )
    assert classified["unnecessary"].isna().all()
    assert actions.unnecessary_summary(classified).empty


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = actions.wilson_interval(pd.Series([0, 5, 10]), pd.Series([10, 10, 0]))
    assert low[0] == 0
    assert high[0] == pytest.approx(0.2775, abs=1e-4)
    assert low[1] == pytest.approx(0.2366, abs=1e-4)
    assert high[1] == pytest.approx(0.7634, abs=1e-4)
    assert pd.isna(low[2])
    assert pd.isna(high[2])


def test_retries_recovered_exhausted_and_codes() -> None:
    acts = results(
        ("f", "r1", "Call", "Succeeded"),
        ("f", "r2", "Call", "Failed"),
        ("f", "r3", "Call", "Succeeded"),
    )
    acts["retry_count"] = pd.array([2, 3, None], dtype="Int64")
    acts["retry_codes"] = pd.Series(
        ["TooManyRequests,429", "InternalServerError,503,RequestTimeout", None], dtype="str"
    )
    acts["code"] = pd.Series([None, "TooManyRequests", "OK"], dtype="str")
    row = actions.typed_summary(reduced(acts).retries, actions.RETRY_DTYPES).iloc[0]
    assert (row["executions"], row["retried"], row["retries"], row["attempts"]) == (3, 2, 5, 7)
    assert (row["recovered"], row["exhausted"]) == (1, 1)
    assert (row["throttled"], row["server_errors"], row["timeouts"]) == (3, 2, 1)


def test_durations_skip_skipped_and_null_times() -> None:
    acts = results(
        ("f", "r1", "A", "Succeeded"),
        ("f", "r2", "A", "Skipped"),
        ("f", "r3", "A", "Succeeded"),
        ("f", "r4", "A", "Weird"),
    )
    acts.loc[2, "end_time"] = pd.NaT
    acts.loc[3, "end_time"] = T0 + timedelta(seconds=4)
    row = actions.typed_summary(reduced(acts).durations, actions.DURATION_DTYPES).iloc[0]
    assert row["executions"] == 2
    assert row["p50_ms"] == 3000
    assert row["max_ms"] == 4000


def test_trigger_executions_against_runs_for_dataverse_flows_only() -> None:
    jobs = pd.DataFrame(
        {
            "environment_id": ENV,
            "operationtype": pd.array([79, 79, 79, 1], dtype="Int64"),
            "workflowactivationid": ["wa", "wa", "wa", "wa"],
        }
    )
    defs = pd.DataFrame({"environment_id": ENV, "flow_id": ["a", "b"], "workflowid": ["WA", "wb"]})
    triggers = pd.DataFrame(
        {"environment_id": ENV, "flow_id": ["a", "b"], "is_dataverse": [True, False]}
    )
    counts = pd.DataFrame({"environment_id": ENV, "flow_id": ["a", "b"], "runs": [1, 9]})
    out = actions.trigger_executions(reduce_jobs(jobs).expanders, defs, triggers, counts)
    assert list(out["flow_id"]) == ["a"]
    row = out.iloc[0]
    assert (row["trigger_executions"], row["runs"], row["executions_without_run"]) == (3, 1, 2)


def test_only_a_code_name_or_three_digits_counts() -> None:
    acts = results(("f", "r1", "Call", "Failed"))
    acts["retry_count"] = pd.array([5], dtype="Int64")
    acts["retry_codes"] = pd.Series(
        [" 429 ,429.0,5000,50,serviceunavailable,4o8,x503"], dtype="str"
    )
    row = actions.typed_summary(reduced(acts).retries, actions.RETRY_DTYPES).iloc[0]
    assert (row["throttled"], row["server_errors"], row["timeouts"]) == (1, 1, 0)
