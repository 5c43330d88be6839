"""coverage-trace-executions: plug-in executions and durations are seen only when trace
logging is All (plugintracelogsetting 2)."""

from __future__ import annotations

from collections.abc import Sequence

from auditor.checks import Finding
from tests.checks.builders import (
    ENV,
    environment,
    frames,
    organization,
    run,
    statuses,
)

CHECK = "coverage-trace-executions"


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_all_passes_exception_and_off_are_not_assessed() -> None:
    """Only All logs every execution; Exception logs failures, Off nothing."""
    envs = [environment("env-all"), environment("env-exc"), environment("env-off")]
    found = by_id(
        run(
            CHECK,
            frames(
                environments=envs,
                organizations=[
                    organization("env-all", trace=2),
                    organization("env-exc", trace=1),
                    organization("env-off", trace=0),
                ],
            ),
        )
    )
    assert {k: f.status for k, f in found.items()} == {
        "env-all": "pass",
        "env-exc": "not-assessed",
        "env-off": "not-assessed",
    }
    assert {k: f.values["setting"] for k, f in found.items()} == {
        "env-all": "All",
        "env-exc": "Exception",
        "env-off": "Off",
    }
    assert "durations" in found["env-exc"].message
    assert found["env-exc"].resource_kind == "environment"


def test_an_undocumented_setting_is_not_assessed() -> None:
    """A value the auditor does not know proves nothing about what is logged."""
    found = run(CHECK, frames(organizations=[organization(trace=7)]))
    assert statuses(found) == {ENV: "not-assessed"}
    assert found[0].values["setting"] == "unknown"
