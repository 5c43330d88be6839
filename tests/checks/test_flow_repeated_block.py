"""flow-repeated-block: the same `repeated_sequence_length` consecutive action signatures
(type + connector + operation, or the HTTP method; names ignored) in at least
`repeated_sequence_flows` enabled flows of one environment fail."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from auditor.settings import Settings
from tests.checks.builders import (
    ENV,
    QUERY_IDS,
    connector_action,
    environment,
    flow,
    frames,
    query_outcomes,
    run,
    statuses,
)

CHECK = "flow-repeated-block"
ENV2 = "env-2"

# The pasted block: read, compose, write, call, notify.
BLOCK: tuple[dict[str, Any], ...] = (
    connector_action("GetItem", api="shared_sharepointonline"),
    {"type": "Compose", "inputs": "@body('read')"},
    connector_action("UpdateRecord"),
    {"type": "Http", "inputs": {"method": "POST", "uri": "https://example.com/hook"}},
    connector_action("SendEmailV2", api="shared_office365"),
)


def sequence(
    steps: Sequence[Mapping[str, Any]], prefix: str, *, reverse_keys: bool = False
) -> dict[str, Any]:
    """The steps as one container, each run after the previous one; names carry `prefix`
    (copies get renamed). `reverse_keys` writes them in reverse dict order."""
    out: dict[str, Any] = {}
    for i, step in enumerate(steps):
        run_after = {f"{prefix}_{i - 1}": ["Succeeded"]} if i else {}
        out[f"{prefix}_{i}"] = {**step, "runAfter": run_after}
    if reverse_keys:
        out = dict(reversed(list(out.items())))
    return out


def with_step(index: int, step: Mapping[str, Any]) -> list[dict[str, Any]]:
    """BLOCK with one step replaced."""
    steps = [dict(s) for s in BLOCK]
    steps[index] = dict(step)
    return steps


def environment_finding(found: list[Any], env: str = ENV) -> Any:
    return next(f for f in found if f.resource_id == env)


def outcomes_without(query: str) -> list[dict[str, Any]]:
    """Every query collected except `query`, which was not."""
    others = [q for q in QUERY_IDS if q != query]
    return [
        *query_outcomes(queries=others),
        *query_outcomes(status="not-collected", queries=[query], reason="skipped"),
    ]


def test_block_in_three_flows_fails_in_two_passes() -> None:
    """Three copies make a child-flow candidate; two do not (at the default of 3)."""
    three = run(CHECK, frames(flows=[flow(f"f{i}", sequence(BLOCK, f"a{i}")) for i in range(3)]))
    assert [f.status for f in three] == ["fail"]
    assert three[0].resource_kind == "action-block"
    assert three[0].values == {"flows": 3, "length": 5}
    assert sorted(row["flow_id"] for row in three[0].evidence) == ["f0", "f1", "f2"]

    two = run(CHECK, frames(flows=[flow(f"f{i}", sequence(BLOCK, f"a{i}")) for i in range(2)]))
    assert statuses(two) == {ENV: "pass"}
    assert two[0].values == {"enabled_flows": 2}


def test_stopped_flows_do_not_count() -> None:
    """Only enabled flows hold live copies."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("f0", sequence(BLOCK, "a")),
                flow("f1", sequence(BLOCK, "b")),
                flow("f2", sequence(BLOCK, "c"), state="Stopped"),
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}
    assert found[0].values == {"enabled_flows": 2}


def test_copies_match_by_run_after_order_and_placement_not_names() -> None:
    """Renamed copies, written in another key order, inside a scope or between other
    actions, are the same block."""
    wrapped = {"Wrapper": {"type": "Scope", "actions": sequence(BLOCK, "inner")}}
    padded = sequence([{"type": "Compose"}, *BLOCK, {"type": "Terminate"}], "pad")
    found = run(
        CHECK,
        frames(
            flows=[
                flow("plain", sequence(BLOCK, "Step")),
                flow("reordered", sequence(BLOCK, "Other", reverse_keys=True)),
                flow("wrapped", wrapped),
                flow("padded", padded),
            ]
        ),
    )
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"flows": 4, "length": 5}


@pytest.mark.parametrize(
    "changed",
    [
        with_step(2, connector_action("CreateRecord")),
        with_step(3, {"type": "Http", "inputs": {"method": "GET", "uri": "https://x"}}),
        with_step(4, connector_action("SendEmailV2", api="shared_outlook")),
    ],
    ids=["operation", "http-method", "connector"],
)
def test_a_different_signature_breaks_the_block(changed: list[dict[str, Any]]) -> None:
    """CreateRecord is not UpdateRecord, GET is not POST, Outlook.com is not Office 365."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("f0", sequence(BLOCK, "a")),
                flow("f1", sequence(BLOCK, "b")),
                flow("f2", sequence(changed, "c")),
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}


def test_two_copies_in_one_flow_count_as_one_flow() -> None:
    """The rule counts flows holding the block, not copies."""
    twice = {
        "First": {"type": "Scope", "actions": sequence(BLOCK, "x")},
        "Second": {
            "type": "Scope",
            "actions": sequence(BLOCK, "y"),
            "runAfter": {"First": ["Succeeded"]},
        },
    }
    found = run(CHECK, frames(flows=[flow("f0", twice), flow("f1", sequence(BLOCK, "b"))]))
    assert statuses(found) == {ENV: "pass"}


def test_a_block_split_across_containers_is_not_consecutive() -> None:
    """Three actions at the top and two in a scope are not five consecutive actions."""
    split = {
        **sequence(BLOCK[:3], "top"),
        "Scope": {
            "type": "Scope",
            "actions": sequence(BLOCK[3:], "inner"),
            "runAfter": {"top_2": ["Succeeded"]},
        },
    }
    found = run(
        CHECK,
        frames(
            flows=[
                flow("f0", sequence(BLOCK, "a")),
                flow("f1", sequence(BLOCK, "b")),
                flow("f2", split),
            ]
        ),
    )
    assert statuses(found) == {ENV: "pass"}


def test_length_from_settings_flips_the_verdict() -> None:
    """Four shared actions are a block when `repeated_sequence_length` is 4, not at 5."""
    last_differs = with_step(4, {"type": "Compose"})
    data = frames(
        flows=[
            flow("f0", sequence(BLOCK, "a")),
            flow("f1", sequence(BLOCK, "b")),
            flow("f2", sequence(last_differs, "c")),
        ]
    )
    assert statuses(run(CHECK, data)) == {ENV: "pass"}
    found = run(CHECK, data, Settings(thresholds={CHECK: {"repeated_sequence_length": 4}}))
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"flows": 3, "length": 4}


def test_flow_count_from_settings_flips_the_verdict() -> None:
    """Two copies are too many when `repeated_sequence_flows` is 2."""
    data = frames(flows=[flow("f0", sequence(BLOCK, "a")), flow("f1", sequence(BLOCK, "b"))])
    assert statuses(run(CHECK, data)) == {ENV: "pass"}
    found = run(CHECK, data, Settings(thresholds={CHECK: {"repeated_sequence_flows": 2}}))
    assert [f.status for f in found] == ["fail"]
    assert found[0].values == {"flows": 2, "length": 5}


def test_copies_in_different_environments_do_not_add_up() -> None:
    """Each environment is its own catalog of flows: 2 + 1 copies are not 3."""
    found = run(
        CHECK,
        frames(
            environments=[environment(), environment(ENV2, "Fabrikam")],
            flows=[
                flow("f0", sequence(BLOCK, "a")),
                flow("f1", sequence(BLOCK, "b")),
                flow("f2", sequence(BLOCK, "c"), env=ENV2),
            ],
        ),
    )
    assert statuses(found) == {ENV: "pass", ENV2: "pass"}
    assert environment_finding(found, ENV2).values == {"enabled_flows": 1}


def test_flows_not_collected_is_not_assessed_not_pass() -> None:
    """No definitions read: no repeated block found proves nothing."""
    found = run(
        CHECK,
        frames(
            flows=[flow("f0", sequence(BLOCK, "a"))],
            scan_queries=outcomes_without("flows"),
        ),
    )
    assert statuses(found) == {ENV: "not-assessed"}
