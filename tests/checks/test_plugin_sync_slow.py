"""plugin-sync-slow: a synchronous step with >= 20 timed executions and p95 > 2,000 ms."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from auditor.checks import Finding
from auditor.settings import Settings
from tests.checks.builders import (
    END,
    ENV,
    frames,
    run,
    statuses,
)

CHECK = "plugin-sync-slow"

# 20 durations whose linear p95 is v[18] + 0.05 * (v[19] - v[18]).
AT_LIMIT = [100] * 18 + [2000, 2000]
ABOVE = [100] * 18 + [2000, 2020]


def step(step_id: str, mode: int = 0) -> dict[str, Any]:
    """A registered step: mode 0 synchronous, 1 asynchronous."""
    return {
        "environment_id": ENV,
        "stepid": step_id,
        "name": f"Contoso.Plugins.{step_id}: Update of account",
        "mode": mode,
        "stage": 40,
        "message_name": "Update",
        "primary_entity": "account",
    }


def traces(step_id: str, durations: Sequence[int | None]) -> list[dict[str, Any]]:
    """One trace row per execution of the step, with its duration in ms."""
    return [
        {
            "environment_id": ENV,
            "plugintracelogid": f"{step_id}-trace-{i:03d}",
            "pluginstepid": step_id,
            "performanceexecutionduration": ms,
            "performanceexecutionstarttime": END - timedelta(minutes=i + 1),
            "depth": 1,
        }
        for i, ms in enumerate(durations)
    ]


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_p95_exactly_at_the_limit_passes_and_above_it_fails() -> None:
    found = by_id(
        run(
            CHECK,
            frames(
                plugin_steps=[step("at"), step("above")],
                plugintracelogs=[*traces("at", AT_LIMIT), *traces("above", ABOVE)],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {"at": "pass", "above": "fail"}
    assert found["at"].values["p95_ms"] == 2000
    expected = float(np.percentile(ABOVE, 95, method="linear"))
    assert expected == pytest.approx(2001)
    above = found["above"]
    assert above.values["p95_ms"] == pytest.approx(expected)
    assert above.values["executions"] == 20
    assert above.values["max_ms"] == 2020
    assert above.values["over_2s"] == 1
    assert (above.values["message"], above.values["table"]) == ("Update", "account")
    assert above.resource_kind == "step"
    assert above.resource_name == "Contoso.Plugins.above: Update of account"


def test_a_step_with_fewer_timed_executions_than_the_minimum_is_not_judged() -> None:
    """Rows without a duration are executions, but not timed ones."""
    found = run(
        CHECK,
        frames(plugin_steps=[step("few")], plugintracelogs=traces("few", [9000] * 19 + [None])),
    )
    assert statuses(found) == {"few": "pass"}
    assert found[0].values["executions"] == 19
    assert "not judged" in found[0].message


def test_asynchronous_steps_and_steps_that_did_not_run_are_not_judged() -> None:
    found = run(
        CHECK,
        frames(
            plugin_steps=[step("async", mode=1), step("idle")],
            plugintracelogs=traces("async", [9000] * 20),
        ),
    )
    assert found == []


def test_thresholds_from_settings_flip_the_verdict() -> None:
    data = frames(
        plugin_steps=[step("above"), step("small")],
        plugintracelogs=[*traces("above", ABOVE), *traces("small", [3000] * 10)],
    )
    assert statuses(run(CHECK, data)) == {"above": "fail", "small": "pass"}
    lenient = Settings(thresholds={CHECK: {"sync_p95_ms": 2001}})
    assert statuses(run(CHECK, data, lenient)) == {"above": "pass", "small": "pass"}
    fewer = Settings(thresholds={CHECK: {"min_executions": 10}})
    assert statuses(run(CHECK, data, fewer)) == {"above": "fail", "small": "fail"}
