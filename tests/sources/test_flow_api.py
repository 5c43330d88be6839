"""Flow API rows: flattening, the action sample, scheduled flows."""

from __future__ import annotations

import json
import random
from datetime import timedelta

from auditor.sources.flow_api import recurrence_interval
from auditor.sources.flow_api_rows import action_rows, choose_sample, flow_row, run_row


def test_the_sample_takes_every_failed_run_first_then_a_seeded_draw() -> None:
    runs = [(f"r{i:03}", "Failed" if i % 10 == 0 else "Succeeded") for i in range(200)]
    runs += [("running", "Running")]
    sample, failed = choose_sample(runs, 50, random.Random("scan-1"))
    assert failed == 20
    assert {f"r{i:03}" for i in range(0, 200, 10)} <= set(sample)
    assert len(sample) == 50
    assert "running" not in sample  # a run in progress has no final action results
    again, _ = choose_sample(list(reversed(runs)), 50, random.Random("scan-1"))
    assert again == sample  # the same sample when a killed scan resumes
    other, _ = choose_sample(runs, 50, random.Random("scan-2"))
    assert other != sample


def test_more_failures_than_the_sample_are_drawn_among_failures() -> None:
    runs = [(f"f{i}", "Failed") for i in range(80)] + [("ok", "Succeeded")]
    sample, failed = choose_sample(runs, 50, random.Random(1))
    assert (len(sample), failed) == (50, 50)
    assert "ok" not in sample
    assert choose_sample([], 50, random.Random(1)) == ([], 0)


def test_action_rows_keep_status_error_and_retry_history() -> None:
    body = {
        "properties": {
            "actions": {
                "Get_items": {
                    "status": "Succeeded",
                    "code": "OK",
                    "startTime": "2026-11-15T10:00:00.1234567Z",
                    "endTime": "2026-11-15T10:00:09.0000000Z",
                    "retryHistory": [
                        {
                            "startTime": "x",
                            "code": "TooManyRequests",
                            "clientRequestId": "a",
                            "error": {"error": {"code": "429", "message": "Rate limit"}},
                        },
                        {"startTime": "y", "code": "TooManyRequests", "clientRequestId": "b"},
                    ],
                },
                "Send_mail": {
                    "status": "Failed",
                    "code": "BadRequest",
                    "error": {"code": "InvalidRecipient", "message": "<b>no</b> such user"},
                },
                "broken": "not an object",
            }
        }
    }
    rows = {row["action_name"]: row for row in action_rows("flow", "run", body)}
    assert set(rows) == {"Get_items", "Send_mail"}
    assert rows["Get_items"]["retry_count"] == 2
    assert rows["Get_items"]["retry_codes"] == "TooManyRequests"
    assert json.loads(rows["Get_items"]["retry_history"])[0]["clientRequestId"] == "a"
    assert rows["Send_mail"]["error_code"] == "InvalidRecipient"
    assert rows["Send_mail"]["retry_count"] == 0
    assert rows["Send_mail"]["retry_history"] is None


def test_action_rows_accept_the_list_form_and_survive_garbage() -> None:
    listed = {"properties": {"actions": [{"name": "A", "properties": {"status": "Skipped"}}]}}
    assert action_rows("f", "r", listed)[0]["status"] == "Skipped"
    for body in ({}, {"properties": None}, {"properties": {"actions": 5}}, {"properties": []}):
        assert action_rows("f", "r", body) == []  # type: ignore[arg-type]


def test_run_and_flow_rows() -> None:
    run = run_row(
        "flow",
        {
            "name": "0858CU1",
            "properties": {
                "startTime": "2026-11-15T10:00:00Z",
                "endTime": "",
                "status": "Running",
                "error": None,
                "trigger": {"name": "manual"},
                "correlation": {"clientTrackingId": "abc"},
            },
        },
    )
    assert run["end_time"] is None
    assert (run["trigger_name"], run["client_tracking_id"]) == ("manual", "abc")
    flow = flow_row(
        {
            "name": "f-1",
            "properties": {
                "displayName": "<script>x</script>",
                "state": "Started",
                "workflowEntityId": "w-1",
                "definitionSummary": {"triggers": [{"type": "Recurrence"}]},
                "definition": {"triggers": {}},
            },
        }
    )
    assert flow["workflowid"] == "w-1"
    assert flow["trigger_type"] == "Recurrence"
    assert json.loads(flow["definition"]) == {"triggers": {}}
    assert flow_row({"name": "x", "properties": "junk"})["display_name"] is None


def test_recurrence_interval_of_scheduled_flows() -> None:
    def clientdata(recurrence: object) -> str:
        trigger = {"type": "Recurrence", "recurrence": recurrence}
        return json.dumps({"properties": {"definition": {"triggers": {"t": trigger}}}})

    assert recurrence_interval(clientdata({"frequency": "Hour", "interval": 4})) == timedelta(
        hours=4
    )
    assert recurrence_interval(clientdata({"frequency": "Day"})) == timedelta(days=1)
    assert recurrence_interval(clientdata({"frequency": "Fortnight", "interval": 1})) is None
    assert recurrence_interval(clientdata({"frequency": "Hour", "interval": -1})) is None
    assert recurrence_interval('{"recurrence": ') is None
    assert recurrence_interval("") is None
