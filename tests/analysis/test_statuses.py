"""Run statuses are read with the vocabulary of their source, on small hand-made frames.

Dataverse `flowruns` write Success / Failed / Cancelled
(https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata), the flow API
the Logic Apps WorkflowStatus words; a successful Dataverse run must not be counted as an
undocumented status, and a word neither source writes must be.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from auditor.analysis import runs, statuses
from auditor.frames import typed

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENV = "env"
DEFINITIONS = pd.DataFrame({"environment_id": [ENV], "flow_id": ["flow-a"], "workflowid": ["wa"]})


def flowruns(*rows: tuple[str | None, bool]) -> pd.DataFrame:
    """Dataverse runs of workflow `wa`: (status, ended) rows, one minute apart."""
    frame = pd.DataFrame(
        {
            "environment_id": ENV,
            "flowrunid": [f"fr{i}" for i in range(len(rows))],
            "name": [f"run{i}" for i in range(len(rows))],
            "workflowid": "wa",
            "status": [r[0] for r in rows],
            "starttime": [T0 + timedelta(minutes=i) for i in range(len(rows))],
            "endtime": [
                T0 + timedelta(minutes=i, seconds=5) if r[1] else None for i, r in enumerate(rows)
            ],
        }
    )
    return typed(frame, "flowruns")


def api(*rows: tuple[str | None, bool]) -> pd.DataFrame:
    """Flow API runs of flow `flow-a`: (status, ended) rows, one minute apart."""
    frame = pd.DataFrame(
        {
            "environment_id": ENV,
            "flow_name": "flow-a",
            "run_name": [f"run{i}" for i in range(len(rows))],
            "start_time": [T0 + timedelta(minutes=i) for i in range(len(rows))],
            "end_time": [
                T0 + timedelta(minutes=i, seconds=5) if r[1] else None for i, r in enumerate(rows)
            ],
            "status": [r[0] for r in rows],
        }
    )
    return typed(frame, "flow_api_runs")


def dataverse(*rows: tuple[str | None, bool]) -> pd.DataFrame:
    return runs.dataverse_runs(flowruns(*rows), DEFINITIONS)


def summary_of(frame: pd.DataFrame) -> pd.Series:
    out = runs.run_summary(frame, window_days=1)
    assert len(out) == 1
    return out.iloc[0]


def flags(frame: pd.DataFrame) -> list[tuple[bool, bool, bool]]:
    return [
        (bool(f), bool(x), bool(c))
        for f, x, c in zip(frame["finished"], frame["failed"], frame["cancelled"], strict=True)
    ]


def test_dataverse_documented_statuses_are_known_with_their_outcomes() -> None:
    frame = dataverse(("Success", True), ("Failed", True), ("Cancelled", True))
    assert list(frame["source"]) == ["dataverse"] * 3
    assert flags(frame) == [(True, False, False), (True, True, False), (True, False, True)]
    row = summary_of(frame)
    assert row["unknown_status"] == 0
    assert (row["runs"], row["finished"], row["failed"], row["cancelled"]) == (3, 3, 1, 1)
    assert row["failure_rate"] == pytest.approx(1 / 3)


def test_dataverse_statuses_match_case_insensitively() -> None:
    frame = dataverse(("SUCCESS", True), ("failed", True), ("cancelled", True))
    assert flags(frame) == [(True, False, False), (True, True, False), (True, False, True)]
    assert summary_of(frame)["unknown_status"] == 0


def test_dataverse_succeeded_is_accepted_as_an_observed_alias() -> None:
    frame = dataverse(("Succeeded", True), ("Success", True))
    assert flags(frame) == [(True, False, False), (True, False, False)]
    row = summary_of(frame)
    assert (row["unknown_status"], row["finished"], row["failed"]) == (0, 2, 0)
    # Accepted, but labelled for what it is: observed, not Microsoft's word.
    assert statuses.DATAVERSE_FLOWRUN.standing("Succeeded") == "alias"
    assert statuses.DATAVERSE_FLOWRUN.standing("success") == "documented"


def test_a_dataverse_run_without_an_end_time_is_not_finished() -> None:
    frame = dataverse(("Failed", False), ("Success", False))
    assert flags(frame) == [(False, False, False), (False, False, False)]
    assert summary_of(frame)["unknown_status"] == 0


@pytest.mark.parametrize("word", ["Exploded", "Running", "Canceled", None])
def test_a_word_flowrun_does_not_document_is_unknown_and_no_outcome(word: str | None) -> None:
    """Only a final status ends a Dataverse run; any other word (the flow API's in-progress
    words included, which flowruns never write) is counted, not read as an outcome."""
    frame = dataverse((word, True), ("Success", True))
    assert flags(frame)[0] == (False, False, False)
    row = summary_of(frame)
    assert (row["runs"], row["finished"], row["unknown_status"]) == (2, 1, 1)


def test_a_made_up_word_is_unknown_in_the_flow_api_too() -> None:
    frame = runs.api_runs(api(("Exploded", True), ("Succeeded", True)))
    row = summary_of(frame)
    assert (row["runs"], row["failed"], row["unknown_status"]) == (2, 0, 1)


def test_dataverse_success_is_not_a_flow_api_word() -> None:
    """Each source is read with its own words: "Success" from the flow API is undocumented."""
    row = summary_of(runs.api_runs(api(("Success", True))))
    assert row["unknown_status"] == 1


def test_flow_api_rows_keep_their_semantics() -> None:
    frame = runs.api_runs(
        api(
            ("Succeeded", True),
            ("Failed", True),
            ("FAILED", True),
            ("Cancelled", True),
            ("Canceled", True),  # a spelling the flow API has always been read with
            ("TimedOut", True),  # a WorkflowStatus, but not counted as Failed
            ("Running", False),
            ("Running", True),  # an end time does not end a run that says it is running
            ("Exploded", True),  # ended, with an undocumented word: finished, no outcome
            (None, True),
        )
    )
    assert list(frame["source"]) == ["flow-api"] * 10
    assert flags(frame) == [
        (True, False, False),
        (True, True, False),
        (True, True, False),
        (True, False, True),
        (True, False, True),
        (True, False, False),
        (False, False, False),
        (False, False, False),
        (True, False, False),
        (False, False, False),
    ]
    row = summary_of(frame)
    assert (row["runs"], row["finished"], row["failed"], row["cancelled"]) == (10, 7, 2, 2)
    assert row["unknown_status"] == 2  # Exploded and the missing status


def test_a_mixed_summary_reads_each_flow_with_its_own_source() -> None:
    """Flow a from the flow API, flow b from Dataverse: the same words mean different things."""
    definitions = pd.DataFrame(
        {"environment_id": [ENV, ENV], "flow_id": ["flow-a", "flow-b"], "workflowid": ["wa", "wb"]}
    )
    dv = flowruns(("Success", True), ("Succeeded", True), ("Failed", True))
    dv["workflowid"] = "wb"
    combined = runs.combined_runs(api(("Success", True), ("Succeeded", True)), dv, definitions)
    out = runs.run_summary(combined, window_days=1).set_index("flow_id")
    assert out.loc["flow-a", "source"] == "flow-api"
    assert out.loc["flow-a", "unknown_status"] == 1  # "Success" is Dataverse's word
    assert out.loc["flow-b", "source"] == "dataverse"
    assert out.loc["flow-b", "unknown_status"] == 0
    assert (out.loc["flow-b", "finished"], out.loc["flow-b", "failed"]) == (3, 1)


def test_each_run_source_has_a_vocabulary_with_its_page() -> None:
    assert set(statuses.RUN_VOCABULARIES) == {"flow-api", "dataverse"}
    for vocabulary in statuses.RUN_VOCABULARIES.values():
        assert vocabulary.page.startswith("https://learn.microsoft.com/")
        assert not vocabulary.documented & vocabulary.aliases
        assert vocabulary.failed | vocabulary.cancelled | vocabulary.succeeded <= vocabulary.known
        assert all(w == w.lower() for w in vocabulary.known | vocabulary.unfinished)
    assert statuses.FLOW_API.documented == statuses.WORKFLOW_STATUS
    assert len(statuses.WORKFLOW_STATUS) == 13


def test_asyncoperation_choices_are_the_documented_ones() -> None:
    """StateCode and StatusCode choices of the asyncoperation table reference page."""
    assert dict(statuses.ASYNC_STATES) == {
        0: "Ready",
        1: "Suspended",
        2: "Locked",
        3: "Completed",
    }
    assert dict(statuses.ASYNC_STATUSES) == {
        0: "Waiting For Resources",
        10: "Waiting",
        20: "In Progress",
        21: "Pausing",
        22: "Canceling",
        30: "Succeeded",
        31: "Failed",
        32: "Canceled",
    }
    assert (statuses.READY, statuses.SUSPENDED, statuses.LOCKED, statuses.COMPLETED) == (
        0,
        1,
        2,
        3,
    )
    assert (
        statuses.WAITING_FOR_RESOURCES,
        statuses.WAITING,
        statuses.IN_PROGRESS,
        statuses.PAUSING,
        statuses.CANCELING,
        statuses.SUCCEEDED,
        statuses.FAILED,
        statuses.CANCELED,
    ) == (0, 10, 20, 21, 22, 30, 31, 32)
    assert set(statuses.ASYNC_STATUS_STATE) == set(statuses.ASYNC_STATUSES)
    assert set(statuses.ASYNC_STATUS_STATE.values()) == set(statuses.ASYNC_STATES)
    assert statuses.ASYNC_STATUS_STATE[statuses.FAILED] == statuses.COMPLETED
