"""flow-monolithic: an enabled flow fails above `max_actions` actions (any depth, trigger
excluded) or above `max_depth` levels of nesting counted as the designer shows them: the
containers around the deepest action (a top-level action is at 0, one inside a scope at 1;
R-NESTING, tests/corpus/README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from auditor.settings import Settings
from tests.checks.builders import flow, frames, run, statuses

CHECK = "flow-monolithic"
CORPUS = Path(__file__).parents[1] / "corpus"


def chain(count: int, prefix: str = "Step") -> dict[str, Any]:
    """`count` Compose actions, each run after the previous one."""
    out: dict[str, Any] = {}
    for i in range(count):
        name = f"{prefix}_{i:03d}"
        out[name] = {
            "type": "Compose",
            "inputs": i,
            "runAfter": {f"{prefix}_{i - 1:03d}": ["Succeeded"]} if i else {},
        }
    return out


def nested(levels: int) -> dict[str, Any]:
    """`levels` Scopes nested around a Compose (`levels` + 1 actions, nesting `levels`)."""
    inner: dict[str, Any] = {"Innermost": {"type": "Compose", "inputs": "x"}}
    for level in range(levels, 0, -1):
        inner = {f"Scope_{level}": {"type": "Scope", "actions": inner}}
    return inner


def wrapped(levels: int, inner: dict[str, Any]) -> dict[str, Any]:
    """`inner` inside `levels` more Scopes."""
    for level in range(levels, 0, -1):
        inner = {f"Wrap_{level}": {"type": "Scope", "actions": inner}}
    return inner


def branches(innermost: dict[str, Any]) -> dict[str, Any]:
    """If (else) > Switch (case) > Foreach > Until > `innermost`: 4 containers around
    `innermost`'s actions, plus its own.

    Counted actions: the If, 2 in `then`, 1 in `else` besides the Switch, the Switch, the
    actions of its cases and default, the loops and `innermost`: 10 plus `innermost`'s.
    """
    until = {"type": "Until", "expression": "@true", "actions": innermost}
    loop = {"type": "Foreach", "foreach": "@body('x')", "actions": {"Until": until}}
    switch = {
        "type": "Switch",
        "expression": "@1",
        "cases": {
            "One": {"case": 1, "actions": {"Loop": loop}},
            "Two": {"case": 2, "actions": chain(2, "Two")},
        },
        "default": {"actions": chain(1, "Default")},
    }
    return {
        "Condition": {
            "type": "If",
            "expression": {"equals": [1, 1]},
            "actions": chain(2, "Then"),
            "else": {"actions": {"Which": switch, **chain(1, "Else")}},
        }
    }


def test_action_count_at_the_limit_passes_above_it_fails() -> None:
    """The rule is "above": 60 actions pass, 61 fail."""
    found = run(CHECK, frames(flows=[flow("sixty", chain(60)), flow("sixty-one", chain(61))]))
    assert statuses(found) == {"sixty": "pass", "sixty-one": "fail"}
    values = {f.resource_id: f.values for f in found}
    # Top-level actions only: no container around any of them.
    assert values["sixty"] == {"actions": 60, "max_depth": 0}
    assert values["sixty-one"] == {"actions": 61, "max_depth": 0}


def test_nesting_at_the_limit_passes_above_it_fails() -> None:
    """Five containers around an action pass, six fail, however few the actions; the message
    names the platform's maximum of 8 and says when a flow is beyond it."""
    found = run(
        CHECK,
        frames(flows=[flow("five", nested(5)), flow("six", nested(6)), flow("nine", nested(9))]),
    )
    assert statuses(found) == {"five": "pass", "six": "fail", "nine": "fail"}
    said = {f.resource_id: f for f in found}
    assert said["five"].values == {"actions": 6, "max_depth": 5}
    assert said["five"].message == "6 actions, containers nested 5 levels deep"
    assert said["six"].values == {"actions": 7, "max_depth": 6}
    assert said["six"].message == (
        "containers nested 6 levels deep around an action (limit 5; platform maximum 8)"
    )
    assert said["nine"].message == (
        "containers nested 9 levels deep around an action (limit 5; above the platform "
        "maximum of 8)"
    )


def test_one_scope_is_one_level() -> None:
    """An action inside one scope is nested 1 level; a top-level action 0."""
    found = run(CHECK, frames(flows=[flow("one", nested(1)), flow("flat", chain(1))]))
    assert {f.resource_id: f.values["max_depth"] for f in found} == {"one": 1, "flat": 0}


def test_branches_cases_and_loops_count_and_nest() -> None:
    """Actions in else branches, Switch cases and defaults and loops count; each level
    of If / Switch / Foreach / Until is one more container around the leaf."""
    leaf = {"Leaf": {"type": "Compose"}}
    found = run(
        CHECK,
        frames(
            flows=[
                flow("deep-4", branches(leaf)),
                flow("deep-5", branches(wrapped(1, leaf))),
                flow("deep-6", branches(wrapped(2, leaf))),
            ]
        ),
    )
    assert statuses(found) == {"deep-4": "pass", "deep-5": "pass", "deep-6": "fail"}
    values = {f.resource_id: f.values for f in found}
    # Condition, Then x2, Which, Else x1, Loop, Until, Leaf, Two x2, Default x1 = 11.
    assert values["deep-4"] == {"actions": 11, "max_depth": 4}
    assert values["deep-5"] == {"actions": 12, "max_depth": 5}
    assert values["deep-6"] == {"actions": 13, "max_depth": 6}


def test_actions_in_branches_count_against_max_actions() -> None:
    """With max_actions 11, the 11-action flow passes and one more action fails it."""
    settings = Settings(thresholds={CHECK: {"max_actions": 11}})
    found = run(
        CHECK,
        frames(
            flows=[
                flow("eleven", branches({"Leaf": {"type": "Compose"}})),
                flow("twelve", branches(chain(2, "Leaf"))),
            ]
        ),
        settings,
    )
    assert statuses(found) == {"eleven": "pass", "twelve": "fail"}


@pytest.mark.parametrize(
    ("thresholds", "verdict"),
    [({}, "fail"), ({"max_actions": 61, "max_depth": 6}, "pass"), ({"max_depth": 6}, "fail")],
)
def test_thresholds_from_settings_flip_the_verdict(
    thresholds: dict[str, int], verdict: str
) -> None:
    """`[checks.flow-monolithic]` max_actions and max_depth are both honoured."""
    actions = {**chain(54), **nested(6)}  # 61 actions, nesting 6
    settings = Settings(thresholds={CHECK: thresholds})
    found = run(CHECK, frames(flows=[flow("f", actions)]), settings)
    assert statuses(found) == {"f": verdict}
    assert found[0].values == {"actions": 61, "max_depth": 6}


def test_disabled_and_unreadable_flows_are_ignored() -> None:
    """Stopped flows are not judged; an unreadable one is flow-definition-unreadable's."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("stopped", chain(61), state="Stopped"),
                flow("broken", text="{not json"),
                flow("small", chain(3)),
            ]
        ),
    )
    assert statuses(found) == {"small": "pass"}


def test_flow_without_actions_passes() -> None:
    """A trigger alone is neither big nor deep."""
    found = run(CHECK, frames(flows=[flow("empty")]))
    assert statuses(found) == {"empty": "pass"}
    assert found[0].values == {"actions": 0, "max_depth": 0}


# Real flows of tests/corpus ----------------------------------------------------------------


def test_corpus_flow_nested_five_containers_deep_passes() -> None:
    """tests/corpus/pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/
    sourcecode/src/Workflows/CheckBrokenLinks-F171EA88-DB8A-EE11-8178-002248C6B93D.json,
    counted by hand along its deepest path:
    Check_page_version_number (If, 1) > then > Check_broken_link_item_status (If, 2) > then >
    Loop_through_possible_links (Foreach, 3) > Check_if_link_contains_a_title (If, 4) > then >
    Check_if_this_is_a_SharePoint_link (If, 5) > then > Get_link_content_-_file: the designer
    shows the action inside 5 containers. 24 actions. At the limit: it passes (counting the
    action itself as a level, 6, it used to fail)."""
    path = CORPUS / (
        "pnp__powerplatform-samples/samples/sharepoint-brokenlinks-checker/sourcecode/src/"
        "Workflows/CheckBrokenLinks-F171EA88-DB8A-EE11-8178-002248C6B93D.json"
    )
    found = run(CHECK, frames(flows=[flow("links", text=path.read_text("utf-8"))]))
    assert statuses(found) == {"links": "pass"}
    assert found[0].values == {"actions": 24, "max_depth": 5}
    assert found[0].message == "24 actions, containers nested 5 levels deep"


def test_corpus_flow_nested_eight_containers_deep_fails() -> None:
    """tests/corpus/microsoft__powercat-business-approvals-kit/BusinessApprovalKit/
    SolutionPackage/src/Workflows/BACorePublishProcess-D492106F-E56D-EC11-8F8E-000D3A09F61A.json,
    counted by hand along its deepest path:
    Publish_Version (Scope, 1) > Copy_Stage (Scope, 2) > Each_Stage (Foreach, 3) >
    Copy_Nodes (Scope, 4) > Each_Node (Foreach, 5) > Each_Approver (Foreach, 6) >
    If_Dynamic_Approver_Type_uses_Request_Data (If, 7) > then > If_Mapping_Does_not_Exist
    (If, 8) > then > Add_to_Dynamic_Approver_Runtime_Data_Map: 8 containers, the platform's
    maximum, above the limit of 5; and 61 actions, above 60."""
    path = CORPUS / (
        "microsoft__powercat-business-approvals-kit/BusinessApprovalKit/SolutionPackage/src/"
        "Workflows/BACorePublishProcess-D492106F-E56D-EC11-8F8E-000D3A09F61A.json"
    )
    found = run(CHECK, frames(flows=[flow("publish", text=path.read_text("utf-8"))]))
    assert statuses(found) == {"publish": "fail"}
    assert found[0].values == {"actions": 61, "max_depth": 8}
    assert found[0].message == (
        "61 actions (limit 60); containers nested 8 levels deep around an action "
        "(limit 5; platform maximum 8)"
    )
