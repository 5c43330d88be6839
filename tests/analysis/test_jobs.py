"""System-job statistics on small hand-made frames shaped like the store's asyncoperations."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import pytest

from auditor.analysis.job_owners import OWNER_STATS_COLUMNS, job_stats_by_owner
from auditor.analysis.jobs import (
    ERROR_DTYPES,
    JOB_STATS_COLUMNS,
    job_stats,
    normalise_messages,
    queue_latency_p95,
    recurring_errors,
)
from auditor.store import TABLES

ENV = "env-1"
T0 = pd.Timestamp("2026-11-10T08:00:00Z")
STEP = "11111111-2222-3333-4444-555555555555"
FLOW = "99999999-8888-7777-6666-555555555555"


def job(n: int, *, wait_s: float = 10, run_s: float = 2, **values: Any) -> dict[str, Any]:
    """A completed, succeeded async plug-in job of STEP, created n minutes after T0."""
    created = T0 + pd.Timedelta(minutes=n)
    started = created + pd.Timedelta(seconds=wait_s)
    row: dict[str, Any] = {
        "environment_id": ENV,
        "asyncoperationid": f"job-{n:04d}",
        "name": "Contoso.Plugins.Sync: Update of account",
        "operationtype": 1,
        "statecode": 3,
        "statuscode": 30,
        "retrycount": 0,
        "createdon": created,
        "startedon": started,
        "completedon": started + pd.Timedelta(seconds=run_s),
        "owningextensionid": STEP,
    }
    return {**row, **values}


def failed(n: int, message: str | None = "Credit limit exceeded.", **values: Any) -> dict[str, Any]:
    return job(n, statuscode=31, message=message, **values)


def frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    out = pd.DataFrame(list(rows), columns=list(TABLES["asyncoperations"].names()))
    for column in ("createdon", "startedon", "completedon", "postponeuntil"):
        out[column] = pd.to_datetime(out[column], utc=True)
    return out


def one(stats: pd.DataFrame, **where: Any) -> pd.Series:
    mask = pd.Series(True, index=stats.index)
    for column, value in where.items():
        mask &= stats[column].isna() if value is None else stats[column] == value
    assert int(mask.sum()) == 1, stats
    return stats[mask].iloc[0]


def test_queue_latency_and_run_time_percentiles_are_numpy_linear() -> None:
    waits = [1, 5, 9, 30, 120, 7, 3]
    runs = [0.5, 2, 4, 1, 8, 3, 2]
    stats = job_stats(
        frame([job(i, wait_s=w, run_s=r) for i, (w, r) in enumerate(zip(waits, runs, strict=True))])
    )
    row = one(stats, operationtype=1)
    assert row["operation"] == "async plug-in"
    assert row["jobs"] == 7
    for q in (50, 95, 99):
        expected = np.percentile(np.array(waits) * 1000, q, method="linear")
        assert row[f"queue_latency_p{q}_ms"] == pytest.approx(expected)
        expected_run = np.percentile(np.array(runs) * 1000, q, method="linear")
        assert row[f"run_time_p{q}_ms"] == pytest.approx(expected_run)
    assert row["queue_latency_max_ms"] == 120_000
    assert row["clipped_durations"] == 0


def test_states_failures_and_retries_are_counted() -> None:
    rows = [
        job(0),
        job(1),
        failed(2, retrycount=3),
        failed(3, message="   "),
        job(4, statecode=1, statuscode=10, retrycount=1, completedon=None),  # waiting retry
        job(5, statecode=0, statuscode=0, startedon=None, completedon=None),  # queued
        job(6, statecode=2, statuscode=20, completedon=None),  # running
        job(7, statuscode=32, startedon=None, completedon=None),  # canceled
        job(8, statuscode=77),  # not a documented status
    ]
    row = one(job_stats(frame(rows)), operationtype=1)
    assert row["jobs"] == 9
    assert (row["succeeded"], row["failed"], row["failed_without_message"]) == (2, 2, 1)
    assert (row["canceled"], row["suspended"], row["waiting"]) == (1, 1, 2)
    assert (row["in_progress"], row["unknown_status"]) == (1, 1)
    # Outcomes are per completed job (statecode 3): the queued, waiting and running jobs have
    # none yet, so they are neither failures nor successes.
    assert row["completed"] == 6
    assert row["failure_rate"] == pytest.approx(2 / 6)
    assert (row["retried"], row["max_retrycount"]) == (2, 3)
    assert row["retried_share"] == pytest.approx(2 / 9)


def test_a_healthy_type_has_no_failures_and_no_retries() -> None:
    row = one(job_stats(frame([job(0), job(1)])), operationtype=1)
    assert (row["failed"], row["retried"], row["unknown_status"]) == (0, 0, 0)
    assert row["failure_rate"] == 0


def test_operation_types_are_separate_and_unknown_ones_kept() -> None:
    rows = [
        job(0),
        job(1, operationtype=10, owningextensionid=None, workflowactivationid=FLOW),
        job(2, operationtype=79, owningextensionid=None, workflowactivationid=FLOW),
        job(3, operationtype=4242),
        job(4, operationtype=None),
    ]
    stats = job_stats(frame(rows))
    labels = dict(zip(stats["operationtype"].astype("object"), stats["operation"], strict=True))
    assert labels[1] == "async plug-in"
    assert labels[10] == "workflow"
    assert labels[79] == "flow trigger"
    assert labels[4242] == "other"
    assert stats["jobs"].sum() == 5


def test_a_start_before_creation_is_clipped_to_zero_and_reported() -> None:
    rows = [job(0, wait_s=-30), job(1, wait_s=10), job(2, wait_s=20)]
    row = one(job_stats(frame(rows)), operationtype=1)
    assert row["clipped_durations"] == 1
    assert row["queue_latency_p50_ms"] == 10_000
    assert row["queue_latency_max_ms"] == 20_000
    p95 = queue_latency_p95(frame(rows))
    assert p95[ENV] == pytest.approx(np.percentile([0, 10_000, 20_000], 95, method="linear"))
    two = one(job_stats(frame(rows[:2])), operationtype=1)
    assert two["queue_latency_p50_ms"] == 5_000  # between 0 and 10 s, not between -30 and 10


def test_queue_latency_p95_takes_only_completed_async_plugin_jobs() -> None:
    waits = [10, 20, 30, 40, 50]
    rows = [
        *(job(i, wait_s=w) for i, w in enumerate(waits)),
        job(10, wait_s=9999, statecode=1, statuscode=10),  # not completed
        job(11, wait_s=9999, operationtype=10),  # not a plug-in job
        job(12, statuscode=32, startedon=None),  # canceled before starting
        {**job(13, wait_s=5), "environment_id": "env-2"},
    ]
    p95 = queue_latency_p95(frame(rows))
    assert p95[ENV] == pytest.approx(np.percentile(np.array(waits) * 1000, 95, method="linear"))
    assert p95["env-2"] == 5000
    assert "env-3" not in p95.index  # no jobs: absent, not zero
    assert queue_latency_p95(frame([])).empty


def test_by_owner_separates_steps_and_workflows_and_keeps_orphans() -> None:
    other = "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee"
    rows = [
        job(0),
        job(1),
        job(5, name="A rarer name"),  # the commonest name is the step's, not the first
        job(2, owningextensionid=other, name="Other: Create of lead"),
        job(3, owningextensionid=None),
        job(4, operationtype=79, owningextensionid=None, workflowactivationid=FLOW, name="Flow"),
    ]
    stats = job_stats_by_owner(frame(rows))
    assert tuple(stats.columns) == OWNER_STATS_COLUMNS
    assert one(stats, owner_id=STEP)["jobs"] == 3
    assert one(stats, owner_id=STEP)["name"] == job(0)["name"]
    assert one(stats, owner_id=STEP)["owner_kind"] == "step"
    assert one(stats, owner_id=other)["name"] == "Other: Create of lead"
    assert one(stats, owner_id=None)["jobs"] == 1
    flow = one(stats, owner_id=FLOW)
    assert (flow["owner_kind"], flow["operation"]) == ("workflow", "flow trigger")


def test_failure_streaks_follow_creation_then_id_order() -> None:
    # Ids out of time order, and two jobs created at the same instant: id breaks the tie.
    rows = [
        failed(5, asyncoperationid="z"),
        failed(1, asyncoperationid="c"),
        failed(2, asyncoperationid="b"),
        job(3, asyncoperationid="a"),
        failed(4, asyncoperationid="y1"),
        {**failed(4, asyncoperationid="y0"), "statuscode": 30},
        failed(6, asyncoperationid="d"),
    ]
    row = one(job_stats_by_owner(frame(rows)), owner_id=STEP)
    # order: c F, b F, a ok, y0 ok, y1 F, z F, d F -> longest 3, current 3
    assert row["max_failure_streak"] == 3
    assert row["current_failure_streak"] == 3
    healthy = one(job_stats_by_owner(frame([failed(0), job(1)])), owner_id=STEP)
    assert (healthy["max_failure_streak"], healthy["current_failure_streak"]) == (1, 0)


def test_recurring_errors_cluster_messages_with_ids_and_numbers_masked() -> None:
    rows = [
        failed(0, message="Record 0b6f1c3e-1111-4222-8333-444455556666 not found (404)."),
        failed(1, message="Record {7A6F1C3E-1111-4222-8333-444455556666} not found (500)."),
        failed(2, message="Record 12ab34cd-0000-4000-8000-000000000000 not found (404)."),
        failed(3, message="Credit limit exceeded."),
        failed(4, message=None),
        job(5, message="not a failure 0b6f1c3e-1111-4222-8333-444455556666"),
    ]
    errors = recurring_errors(frame(rows))
    assert list(errors.columns) == list(ERROR_DTYPES)
    top = errors.iloc[0]
    assert top["error"] == "Record <guid> not found (<n>)."
    assert (top["count"], top["rank"]) == (3, 1)
    assert errors["count"].tolist() == [3, 1]
    owner = one(job_stats_by_owner(frame(rows)), owner_id=STEP)
    assert owner["top_error"] == "Record <guid> not found (<n>)."
    assert (owner["top_error_count"], owner["error_clusters"]) == (3, 2)
    assert owner["failed_without_message"] == 1
    assert len(recurring_errors(frame(rows), top=1)) == 1


def test_an_owner_without_failures_has_no_error_clusters() -> None:
    owner = one(job_stats_by_owner(frame([job(0), job(1)])), owner_id=STEP)
    assert owner["error_clusters"] == 0
    assert pd.isna(owner["top_error"])
    assert recurring_errors(frame([job(0)])).empty


def test_normalised_messages_keep_words_with_digits_and_blank_is_missing() -> None:
    messages = pd.Series(
        [
            "Field cr4f1_amount at 12:03:30 was 1,234.5 (0x80040265)",
            "   ",
            None,
            "請求書番号 42 が重複しています。",
        ]
    )
    out = normalise_messages(messages).tolist()
    assert out[0] == "Field cr4f1_amount at <n> was <n> (<hex>)"
    assert pd.isna(out[1])
    assert pd.isna(out[2])
    assert out[3] == "請求書番号 <n> が重複しています。"


def test_one_megabyte_messages_are_clustered_quickly_on_their_beginning() -> None:
    huge = "Timeout calling https://erp.example/api " + "7" * 1_000_000
    rows = [failed(i, message=huge + str(i)) for i in range(30)]
    started = time.perf_counter()
    errors = recurring_errors(frame(rows))
    stats = job_stats_by_owner(frame(rows))
    assert time.perf_counter() - started < 3
    assert errors["count"].tolist() == [30]
    assert len(errors.iloc[0]["example"]) == 300
    assert one(stats, owner_id=STEP)["max_failure_streak"] == 30


def test_unreadable_values_become_missing_not_errors() -> None:
    rows = [
        job(0, retrycount="many", statuscode="x", createdon="yesterday"),
        job(1, wait_s=4),
    ]
    data = frame([job(1)])
    data = pd.concat([data, pd.DataFrame([rows[0]])], ignore_index=True)
    row = one(job_stats(data), operationtype=1)
    assert row["jobs"] == 2
    assert row["unknown_status"] == 1
    assert row["queue_latency_max_ms"] == 10_000  # the unreadable creation time is skipped
    assert row["max_retrycount"] == 0


def test_empty_input_gives_typed_empty_frames() -> None:
    empty = frame([])
    stats = job_stats(empty)
    assert tuple(stats.columns) == JOB_STATS_COLUMNS
    assert stats.empty
    assert job_stats_by_owner(empty).empty
    assert recurring_errors(empty).empty
