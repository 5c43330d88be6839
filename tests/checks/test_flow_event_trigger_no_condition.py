"""flow-event-trigger-no-condition: a connector event trigger needs a trigger condition."""

from __future__ import annotations

from typing import Any

import pytest

from tests.checks.builders import (
    ENV,
    QUERY_IDS,
    dataverse_trigger,
    flow,
    frames,
    query_outcomes,
    run,
    statuses,
)

CHECK = "flow-event-trigger-no-condition"
CONDITION = {"expression": "@contains(triggerOutputs()?['body/subject'], 'Invoice')"}


def email_trigger(
    conditions: list[dict[str, Any]] | None = None, kind: str = "OpenApiConnectionNotification"
) -> dict[str, Any]:
    """Office 365 Outlook 'When a new email arrives (V3)'."""
    trigger: dict[str, Any] = {
        "type": kind,
        "inputs": {
            "host": {
                "apiId": "/providers/Microsoft.PowerApps/apis/shared_office365",
                "connectionName": "shared_office365",
                "operationId": "OnNewEmailV3",
            },
            "parameters": {"folderPath": "Inbox"},
        },
    }
    if conditions is not None:
        trigger["conditions"] = conditions
    return trigger


def polling_trigger() -> dict[str, Any]:
    """SharePoint 'When an item is created or modified', a polling OpenApiConnection."""
    return {
        "type": "OpenApiConnection",
        "recurrence": {"frequency": "Minute", "interval": 5},
        "inputs": {
            "host": {
                "apiId": "/providers/Microsoft.PowerApps/apis/shared_sharepointonline",
                "operationId": "GetOnUpdatedItems",
            }
        },
    }


def outcomes_without(query: str) -> list[dict[str, Any]]:
    """Every query collected except `query`, which was not."""
    others = [q for q in QUERY_IDS if q != query]
    return [
        *query_outcomes(queries=others),
        *query_outcomes(status="not-collected", queries=[query], reason="skipped"),
    ]


def test_event_trigger_without_condition_fails_with_condition_passes() -> None:
    """Every new email starts a run unless a condition admits only the useful ones."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("bare", trigger=email_trigger()),
                flow("guarded", trigger=email_trigger([CONDITION])),
                flow("polling", trigger=polling_trigger()),
            ]
        ),
    )
    assert statuses(found) == {"bare": "fail", "guarded": "pass", "polling": "fail"}
    by_id = {f.resource_id: f for f in found}
    assert by_id["bare"].values["conditions"] == 0
    assert by_id["bare"].values["connector"] == "shared_office365"
    assert by_id["bare"].values["operation"] == "OnNewEmailV3"
    assert by_id["guarded"].values["conditions"] == 1


@pytest.mark.parametrize(
    "kind",
    ["OpenApiConnection", "OpenApiConnectionWebhook", "OpenApiConnectionNotification"],
)
def test_every_connector_trigger_type_is_an_event(kind: str) -> None:
    """Polling, webhook and notification triggers all start a run per event."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("bare", trigger=email_trigger(kind=kind)),
                flow("guarded", trigger=email_trigger([CONDITION], kind=kind)),
            ]
        ),
    )
    assert statuses(found) == {"bare": "fail", "guarded": "pass"}
    assert {f.values["trigger_type"] for f in found} == {kind}


def test_empty_condition_list_is_no_condition() -> None:
    """`conditions: []` (or a blank expression) admits every event."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("empty", trigger=email_trigger([])),
                flow("blank", trigger=email_trigger([{"expression": " "}])),
            ]
        ),
    )
    assert statuses(found) == {"empty": "fail", "blank": "fail"}


def test_request_recurrence_and_dataverse_triggers_are_not_judged() -> None:
    """Called and scheduled flows are not events; the Dataverse trigger has its own check."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("button"),
                flow("http", trigger={"type": "Request", "kind": "Http"}),
                flow(
                    "schedule",
                    trigger={"type": "Recurrence", "recurrence": {"frequency": "Day"}},
                ),
                flow("dataverse", trigger=dataverse_trigger(3)),
            ]
        ),
    )
    assert found == []


def test_trigger_type_is_compared_case_insensitively() -> None:
    """`recurrence` in lower case is still a schedule, not an event."""
    found = run(
        CHECK,
        frames(flows=[flow("schedule", trigger={"type": "recurrence"})]),
    )
    assert found == []


def test_disabled_flow_is_ignored() -> None:
    """A stopped flow receives no events."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("stopped", trigger=email_trigger(), state="Stopped"),
                flow("started", trigger=email_trigger()),
            ]
        ),
    )
    assert statuses(found) == {"started": "fail"}


def test_flows_not_collected_is_not_assessed_not_pass() -> None:
    """A pass needs the flow definitions to have been read."""
    found = run(
        CHECK,
        frames(
            flows=[flow("guarded", trigger=email_trigger([CONDITION]))],
            scan_queries=outcomes_without("flows"),
        ),
    )
    assert statuses(found) == {ENV: "not-assessed"}
