"""plugin-update-unfiltered: an enabled custom Update step needs filtering attributes."""

from __future__ import annotations

import gc
from datetime import timedelta
from typing import Any

import pytest

from auditor.checks import plugin_update_unfiltered
from auditor.checks.base import MAX_MESSAGE
from tests.checks.builders import END, ENV, frames, run, statuses

CHECK = "plugin-update-unfiltered"


def step(
    stepid: str,
    filtering: str | None = None,
    *,
    message: str = "Update",
    statecode: int = 0,
    customizationlevel: int = 1,
    env: str = ENV,
) -> dict[str, Any]:
    """A `plugin_steps` row: enabled, custom, synchronous post-operation on account."""
    return {
        "environment_id": env,
        "stepid": stepid,
        "name": f"Step {stepid}",
        "message_name": message,
        "primary_entity": "account",
        "mode": 0,
        "stage": 40,
        "statecode": statecode,
        "customizationlevel": customizationlevel,
        "filteringattributes": filtering,
    }


def traces(stepid: str, count: int, env: str = ENV) -> list[dict[str, Any]]:
    """`count` trace rows of one step inside the window, 100 ms apart in duration."""
    return [
        {
            "environment_id": env,
            "plugintracelogid": f"{stepid}-trace-{i}",
            "pluginstepid": stepid,
            "performanceexecutionstarttime": END - timedelta(hours=1 + i),
            "performanceexecutionduration": 100 * (i + 1),
            "createdon": END - timedelta(hours=1 + i),
        }
        for i in range(count)
    ]


def test_unfiltered_update_step_fails_with_its_executions() -> None:
    """The measured cost of an unfiltered step is what makes the finding actionable."""
    found = run(
        CHECK,
        frames(
            plugin_steps=[step("bare"), step("filtered", "name,telephone1")],
            plugintracelogs=[*traces("bare", 3), *traces("filtered", 2)],
        ),
    )
    assert statuses(found) == {"bare": "fail", "filtered": "pass"}
    bare = next(f for f in found if f.resource_id == "bare")
    assert bare.values["executions"] == 3
    assert bare.values["table"] == "account"
    filtered = next(f for f in found if f.resource_id == "filtered")
    assert filtered.values["filtering_attributes"] == "name,telephone1"


def test_attribute_list_of_only_commas_filters_nothing() -> None:
    """An empty or comma-only attribute list still runs on every update."""
    found = run(CHECK, frames(plugin_steps=[step("commas", " , ,"), step("empty", "")]))
    assert statuses(found) == {"commas": "fail", "empty": "fail"}
    assert all(f.values["executions"] == 0 for f in found)


def test_message_name_is_compared_case_insensitively() -> None:
    """Stored message names may differ in case or carry blanks; they are still Update."""
    found = run(CHECK, frames(plugin_steps=[step("lower", message=" update ")]))
    assert statuses(found) == {"lower": "fail"}


def test_only_enabled_custom_update_steps_are_judged() -> None:
    """Disabled, system and non-Update steps are outside the rule: no finding at all."""
    found = run(
        CHECK,
        frames(
            plugin_steps=[
                step("disabled", statecode=1),
                step("system", customizationlevel=0),
                step("create", message="Create"),
                step("judged", "name"),
            ]
        ),
    )
    assert statuses(found) == {"judged": "pass"}


def test_a_huge_attribute_list_reaches_the_message_cut() -> None:
    """The message quotes the tenant's list; 20,000 columns must not make a 400 kB finding."""
    columns = ",".join(f"cr4f1_attribute{i}" for i in range(20_000))
    found = run(CHECK, frames(plugin_steps=[step("wide", columns)]))
    assert statuses(found) == {"wide": "pass"}
    assert found[0].message.startswith("Update step on account filters on cr4f1_attribute0,")
    assert len(found[0].message) == MAX_MESSAGE
    assert found[0].message.endswith("…")


def test_the_findings_are_made_with_the_collector_held_off_and_left_as_it_was(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200,000 steps make 200,000 findings: the collector waits until they are made."""
    seen = []
    real = plugin_update_unfiltered.make

    def spying(*args: Any, **kwargs: Any) -> Any:
        seen.append(gc.isenabled())
        return real(*args, **kwargs)

    monkeypatch.setattr(plugin_update_unfiltered, "make", spying)
    found = run(CHECK, frames(plugin_steps=[step("s1"), step("s2", "name")]))
    assert statuses(found) == {"s1": "fail", "s2": "pass"}
    assert seen == [False, False]
    assert gc.isenabled()
