"""flow-update-trigger-unfiltered: a Dataverse trigger firing on Update needs a filter."""

from __future__ import annotations

from typing import Any

import pytest

from tests.checks.builders import (
    dataverse_trigger,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "flow-update-trigger-unfiltered"
CONDITION = [{"expression": "@equals(triggerOutputs()?['body/statecode'], 0)"}]


def with_conditions(trigger: dict[str, Any], conditions: list[dict[str, Any]]) -> dict[str, Any]:
    """The trigger with trigger conditions (trigger Settings > Trigger conditions)."""
    return {**trigger, "conditions": conditions}


def test_update_trigger_without_any_filter_fails() -> None:
    """No columns, no Filter rows, no condition: every update of the table starts a run."""
    found = run(CHECK, frames(flows=[flow("bare", trigger=dataverse_trigger(3))]))
    assert statuses(found) == {"bare": "fail"}
    values = found[0].values
    assert values["message"] == 3
    assert values["table"] == "account"
    assert values["conditions"] == 0
    assert values["filtering_attributes"] is None
    assert values["filter_expression"] is None


def test_each_kind_of_filter_passes() -> None:
    """Filtering attributes, a filter expression and a trigger condition each suffice."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("columns", trigger=dataverse_trigger(3, filteringattributes="name")),
                flow("expression", trigger=dataverse_trigger(3, filterexpression="statecode eq 0")),
                flow("condition", trigger=with_conditions(dataverse_trigger(3), CONDITION)),
            ]
        ),
    )
    assert statuses(found) == {"columns": "pass", "expression": "pass", "condition": "pass"}
    by_id = {f.resource_id: f for f in found}
    assert by_id["columns"].values["filtering_attributes"] == "name"
    assert by_id["expression"].values["filter_expression"] == "statecode eq 0"
    assert by_id["condition"].values["conditions"] == 1


def test_empty_filter_values_do_not_count_as_a_filter() -> None:
    """A blank Select columns or an empty condition list filters nothing."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("blank", trigger=dataverse_trigger(3, filteringattributes="")),
                flow("no-conditions", trigger=with_conditions(dataverse_trigger(3), [])),
            ]
        ),
    )
    assert statuses(found) == {"blank": "fail", "no-conditions": "fail"}


@pytest.mark.parametrize("message", [1, 2, 5])
def test_messages_without_update_are_not_judged(message: int) -> None:
    """Create, Delete and Create-or-Delete do not fire on updates: outside this rule."""
    found = run(CHECK, frames(flows=[flow("f", trigger=dataverse_trigger(message))]))
    assert found == []


@pytest.mark.parametrize("message", [3, 4, 6, 7])
def test_every_message_including_update_is_judged(message: int) -> None:
    """Update alone or combined with Create / Delete fires on every update."""
    found = run(CHECK, frames(flows=[flow("f", trigger=dataverse_trigger(message))]))
    assert statuses(found) == {"f": "fail"}
    assert found[0].values["message"] == message


def test_disabled_flow_is_ignored() -> None:
    """A stopped flow starts no runs, whatever its trigger."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("stopped", trigger=dataverse_trigger(3), state="Stopped"),
                flow("started", trigger=dataverse_trigger(3)),
            ]
        ),
    )
    assert statuses(found) == {"started": "fail"}


def test_other_triggers_are_left_to_other_checks() -> None:
    """Request and non-Dataverse connector triggers are not this check's business."""
    email = {
        "type": "OpenApiConnection",
        "inputs": {
            "host": {
                "apiId": "/providers/Microsoft.PowerApps/apis/shared_office365",
                "operationId": "OnNewEmailV3",
            }
        },
    }
    found = run(CHECK, frames(flows=[flow("button"), flow("email", trigger=email)]))
    assert found == []
