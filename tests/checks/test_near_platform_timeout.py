"""near-platform-timeout: any plug-in execution longer than 108,000 ms (90 % of 2 min)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from auditor.checks import Finding
from auditor.settings import Settings
from tests.checks.builders import (
    END,
    ENV,
    frames,
    run,
    statuses,
)

CHECK = "near-platform-timeout"


def step(step_id: str) -> dict[str, Any]:
    return {"environment_id": ENV, "stepid": step_id, "name": f"Step {step_id}", "mode": 0}


def traces(
    step_id: str | None, durations: Sequence[int | None], typename: str | None = None
) -> list[dict[str, Any]]:
    """Trace rows of a step; without one, of a plug-in type (a custom workflow activity)."""
    return [
        {
            "environment_id": ENV,
            "plugintracelogid": f"{step_id or typename}-trace-{i:03d}",
            "pluginstepid": step_id,
            "typename": typename,
            "performanceexecutionduration": ms,
            "performanceexecutionstarttime": END - timedelta(minutes=i + 1),
        }
        for i, ms in enumerate(durations)
    ]


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_one_execution_above_the_limit_fails_and_exactly_at_it_passes() -> None:
    found = by_id(
        run(
            CHECK,
            frames(
                plugin_steps=[step("at"), step("above")],
                plugintracelogs=[
                    *traces("at", [100, 108_000, None]),
                    *traces("above", [100, 200, 108_001]),
                ],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {"at": "pass", "above": "fail"}
    above = found["above"]
    assert above.values == {
        "executions": 3,
        "near_timeout": 1,
        "max_ms": 108_001,
        "threshold_ms": 108_000,
    }
    assert above.resource_name == "Step above"
    assert above.severity == "high"
    assert "1 of 3 executions" in above.message
    assert found["at"].values["near_timeout"] == 0
    assert found["at"].values["max_ms"] == 108_000


def test_a_step_not_registered_is_named_by_its_id() -> None:
    """Trace rows of a step we did not read (not custom, deleted) still count."""
    found = run(CHECK, frames(plugintracelogs=traces("unknown", [110_000])))
    assert statuses(found) == {"unknown": "fail"}
    assert found[0].resource_name == "unknown"


def test_executions_without_a_step_id_count_by_plug_in_type() -> None:
    """The rule is any trace row above the limit: custom workflow activities have no step,
    so they are named by their plug-in type."""
    found = run(
        CHECK,
        frames(
            plugin_steps=[step("s")],
            plugintracelogs=[
                *traces("s", [100]),
                *traces(None, [100, 115_000], typename="Contoso.Activities.SendMail"),
                *traces(None, [100], typename="Contoso.Activities.Audit"),
                *traces(None, [120_500]),
            ],
        ),
    )
    assert statuses(found) == {
        "s": "pass",
        "Contoso.Activities.SendMail": "fail",
        "Contoso.Activities.Audit": "pass",
        None: "fail",
    }
    mail = by_id(found)["Contoso.Activities.SendMail"]
    assert mail.resource_kind == "plugin-type"
    assert (mail.values["executions"], mail.values["near_timeout"]) == (2, 1)
    assert by_id(found)[None].resource_name == "(no step or type)"


def test_the_limit_from_settings_flips_the_verdict() -> None:
    data = frames(plugin_steps=[step("s")], plugintracelogs=traces("s", [100_000, 108_000]))
    assert statuses(run(CHECK, data)) == {"s": "pass"}
    strict = Settings(thresholds={CHECK: {"near_timeout_ms": 99_999}})
    found = run(CHECK, data, strict)
    assert statuses(found) == {"s": "fail"}
    assert found[0].values["near_timeout"] == 2
    lenient = Settings(thresholds={CHECK: {"near_timeout_ms": 120_000}})
    data = frames(plugin_steps=[step("s")], plugintracelogs=traces("s", [110_000]))
    assert statuses(run(CHECK, data, lenient)) == {"s": "pass"}


def test_executions_without_a_usable_duration_are_counted_in_the_message() -> None:
    """Null and negative durations prove nothing about the limit: the message says how many
    there were, so a not-assessed (or a pass on the rest) explains itself."""
    found = by_id(
        run(
            CHECK,
            frames(
                plugin_steps=[step("untimed"), step("partly")],
                plugintracelogs=[
                    *traces("untimed", [None, -5_000]),
                    *traces("partly", [100, None, -1]),
                ],
            ),
        )
    )
    assert found["untimed"].status == "not-assessed"
    assert "2 without a usable duration (missing or negative)" in found["untimed"].message
    assert found["partly"].status == "pass"
    assert "2 without a usable duration" in found["partly"].message
