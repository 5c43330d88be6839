"""coverage-trace-failures: plug-in failures are logged unless trace logging is Off."""

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

CHECK = "coverage-trace-failures"


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_off_is_not_assessed_exception_and_all_pass() -> None:
    """Exception is enough to see failures; only Off hides them."""
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
        "env-exc": "pass",
        "env-off": "not-assessed",
    }
    assert found["env-off"].values == {"setting": "Off"}
    assert found["env-exc"].values == {"setting": "Exception"}
    assert "Off" in found["env-off"].message


def test_a_missing_setting_is_not_assessed() -> None:
    """A null setting (column not read) is unknown, not Off and not a pass."""
    found = run(CHECK, frames(organizations=[{**organization(), "plugintracelogsetting": None}]))
    assert statuses(found) == {ENV: "not-assessed"}
    assert found[0].values["setting"] == "unknown"
