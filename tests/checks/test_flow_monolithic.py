"""flow-monolithic: an enabled flow fails above `max_actions` actions (any depth, trigger
excluded) or above `max_depth` levels of nesting (a top-level action has depth 1)."""

from __future__ import annotations

from typing import Any

import pytest

from auditor.settings import Settings
from tests.checks.builders import ENV, QUERY_IDS, flow, frames, query_outcomes, run, statuses

CHECK = "flow-monolithic"


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


def nested(depth: int) -> dict[str, Any]:
    """Scopes nested so that the innermost Compose is at `depth` (`depth` actions)."""
    inner: dict[str, Any] = {"Innermost": {"type": "Compose", "inputs": "x"}}
    for level in range(depth - 1, 0, -1):
        inner = {f"Scope_{level}": {"type": "Scope", "actions": inner}}
    return inner


def branches(innermost: dict[str, Any]) -> dict[str, Any]:
    """If (else) > Switch (case) > Foreach > Until > `innermost`: depth 4 plus its own.

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


def outcomes_without(query: str) -> list[dict[str, Any]]:
    """Every query collected except `query`, which was not."""
    others = [q for q in QUERY_IDS if q != query]
    return [
        *query_outcomes(queries=others),
        *query_outcomes(status="not-collected", queries=[query], reason="skipped"),
    ]


def test_action_count_at_the_limit_passes_above_it_fails() -> None:
    """The rule is "above": 60 actions pass, 61 fail."""
    found = run(CHECK, frames(flows=[flow("sixty", chain(60)), flow("sixty-one", chain(61))]))
    assert statuses(found) == {"sixty": "pass", "sixty-one": "fail"}
    values = {f.resource_id: f.values for f in found}
    assert values["sixty"] == {"actions": 60, "max_depth": 1}
    assert values["sixty-one"] == {"actions": 61, "max_depth": 1}


def test_depth_at_the_limit_passes_above_it_fails() -> None:
    """Five levels pass, six fail, however few the actions."""
    found = run(CHECK, frames(flows=[flow("five", nested(5)), flow("six", nested(6))]))
    assert statuses(found) == {"five": "pass", "six": "fail"}
    values = {f.resource_id: f.values for f in found}
    assert values["five"] == {"actions": 5, "max_depth": 5}
    assert values["six"] == {"actions": 6, "max_depth": 6}


def test_branches_cases_and_loops_count_and_nest() -> None:
    """Actions in else branches, Switch cases and defaults and loops count; each level
    of If / Switch / Foreach / Until adds one to the depth."""
    found = run(
        CHECK,
        frames(
            flows=[
                flow("deep-5", branches({"Leaf": {"type": "Compose"}})),
                flow(
                    "deep-6",
                    branches({"Wrap": {"type": "Scope", "actions": {"Leaf": {"type": "Compose"}}}}),
                ),
            ]
        ),
    )
    assert statuses(found) == {"deep-5": "pass", "deep-6": "fail"}
    values = {f.resource_id: f.values for f in found}
    # Condition, Then x2, Which, Else x1, Loop, Until, Leaf, Two x2, Default x1 = 11.
    assert values["deep-5"] == {"actions": 11, "max_depth": 5}
    assert values["deep-6"] == {"actions": 12, "max_depth": 6}


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
    actions = {**chain(55), **nested(6)}  # 61 actions, depth 6
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


def test_flows_not_collected_is_not_assessed_not_pass() -> None:
    """A pass needs the definitions read; a fail seen anyway stays."""
    found = run(
        CHECK,
        frames(
            flows=[flow("small", chain(3)), flow("big", chain(61))],
            scan_queries=outcomes_without("flows"),
        ),
    )
    assert statuses(found) == {"big": "fail", ENV: "not-assessed"}
