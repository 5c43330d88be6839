"""The coverage rule, held once for every check: no data is never a pass.

For each check of the registry and each source in its `META.needs`, an environment where
that source is missing (a query not collected or partial, plug-in trace logging too low to
show what the check reads) gets exactly one `not-assessed` finding of that check saying what
is missing and how to get it; the check's passes there are dropped and its fails are kept (a
violation seen in partial data is still a violation); other environments are untouched. The
per-check tests test what a check decides, not this rule again."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from auditor.checks import REGISTRY, Check, Finding, limits_for, make, run_check
from auditor.checks.evidence import TRACE_ALL, TRACE_FAILURES, Evidence
from auditor.frames import Frames
from auditor.settings import Settings
from tests.checks.builders import (
    ENV,
    QUERY_IDS,
    environment,
    frames,
    organization,
    outcomes_without,
    query_outcomes,
)

# Trace logging at Off (0) shows nothing; at Exception (1) failures but no executions.
TRACE_LEVEL = {TRACE_ALL: 1, TRACE_FAILURES: 0}

OTHER = "env-2"  # an environment with everything collected

NEEDS = [
    pytest.param(check, need, id=f"{check.id}-{need}")
    for check in REGISTRY
    for need in check.meta.needs
]
# A query is missing when not collected or partial; trace logging has a level, not a status.
GAPS = [
    pytest.param(check, need, status, id=f"{check.id}-{need}-{status}")
    for check in REGISTRY
    for need in check.meta.needs
    for status in (["not-collected"] if need in TRACE_LEVEL else ["not-collected", "partial"])
]


def missing(need: str) -> Frames:
    """Frames of one environment where only `need` is missing, and no rows at all."""
    if need in TRACE_LEVEL:
        return frames(organizations=[organization(trace=TRACE_LEVEL[need])])
    return frames(scan_queries=outcomes_without(need))


def missing_in_one_of_two(need: str, status: str) -> Frames:
    """Two environments: in ENV `need` is missing (as `status` says), in OTHER all is there."""
    both = {"environments": [environment(), environment(OTHER, "Fabrikam")]}
    if need in TRACE_LEVEL:
        return frames(
            **both, organizations=[organization(trace=TRACE_LEVEL[need]), organization(OTHER)]
        )
    outcomes = [
        *query_outcomes(queries=[q for q in QUERY_IDS if q != need]),
        *query_outcomes(status=status, queries=[need], reason="throttled"),
        *query_outcomes(OTHER),
    ]
    return frames(**both, scan_queries=outcomes)


def findings(check: Check, frames_: Frames) -> list[Finding]:
    return run_check(check, Evidence(frames_), limits_for(check.meta, Settings()))


def expected_gap(
    found: Sequence[Finding], check: Check, need: str, status: str = "not-collected"
) -> Finding:
    """The one not-assessed finding of ENV's, naming what is missing."""
    (gap,) = [f for f in found if f.status == "not-assessed" and f.environment_id == ENV]
    assert gap.check_id == check.id
    assert (gap.environment_id, gap.resource_kind, gap.resource_id) == (ENV, "environment", ENV)
    what = "plug-in trace logging is" if need in TRACE_LEVEL else f"{need} {status}"
    assert what in gap.message, gap.message
    assert gap.values["missing"], gap.values
    assert gap.values["hints"], gap.values
    return gap


@pytest.mark.parametrize(("check", "need"), NEEDS)
def test_a_missing_source_makes_the_environment_not_assessed(check: Check, need: str) -> None:
    """The check on its own code path: no pass, no error, one not-assessed finding."""
    found = findings(check, missing(need))
    assert [f.status for f in found] == ["not-assessed"], [(f.status, f.message) for f in found]
    expected_gap(found, check, need)


@pytest.mark.parametrize(("check", "need", "status"), GAPS)
def test_a_missing_source_drops_passes_and_keeps_fails(
    check: Check, need: str, status: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever the check finds there, its passes and own not-assessed findings give way to
    the gap and its fails stay; in the environment that has everything, all stays."""

    def found_everything(evidence: Evidence, limits: object) -> list[Finding]:
        return [
            make(check.meta, kind, f"{kind} message", environment_id=env, resource_id=kind)
            for env in (ENV, OTHER)
            for kind in ("pass", "fail", "not-assessed")
        ]

    monkeypatch.setattr(check, "run", found_everything)
    found = findings(check, missing_in_one_of_two(need, status))
    assert [(f.environment_id, f.status, f.resource_id) for f in found] == [
        (ENV, "fail", "fail"),
        (OTHER, "pass", "pass"),
        (OTHER, "fail", "fail"),
        (OTHER, "not-assessed", "not-assessed"),
        (ENV, "not-assessed", ENV),
    ]
    gap = expected_gap(found, check, need, status)
    assert gap is found[-1]


@pytest.mark.parametrize("check", [c for c in REGISTRY if c.meta.needs], ids=lambda c: c.id)
def test_with_every_source_there_nothing_is_blocked(
    check: Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side: with every query collected and trace logging All, the check's passes
    stand."""

    def passes(evidence: Evidence, limits: object) -> list[Finding]:
        return [make(check.meta, "pass", "fine", environment_id=ENV, resource_id="r")]

    monkeypatch.setattr(check, "run", passes)
    assert [f.status for f in findings(check, frames())] == ["pass"]
