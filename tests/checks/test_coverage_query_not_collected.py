"""coverage-query-not-collected: one finding per environment and query, from the latest
outcome of each query."""

from __future__ import annotations

from collections.abc import Sequence

from auditor.checks import Finding
from tests.checks.builders import ENV, QUERY_IDS, environment, frames, query_outcomes, run

CHECK = "coverage-query-not-collected"


def by_id(found: Sequence[Finding]) -> dict[str | None, Finding]:
    return {f.resource_id: f for f in found}


def test_collected_queries_pass_and_others_are_not_assessed() -> None:
    """Partial counts as not collected: part of the resources were not audited."""
    kept = [q for q in QUERY_IDS if q not in ("flows", "plugintracelogs")]
    found = by_id(
        run(
            CHECK,
            frames(
                scan_queries=[
                    *query_outcomes(queries=kept),
                    *query_outcomes(
                        status="not-collected",
                        queries=["flows"],
                        reason="403 Forbidden",
                        hint="Grant the Power Automate admin permission.",
                    ),
                    *query_outcomes(status="partial", queries=["plugintracelogs"]),
                ]
            ),
        )
    )
    assert len(found) == len(QUERY_IDS)
    statuses_ = {k: f.status for k, f in found.items()}
    assert statuses_[f"{ENV}/flows"] == "not-assessed"
    assert statuses_[f"{ENV}/plugintracelogs"] == "not-assessed"
    assert {s for k, s in statuses_.items() if str(k).split("/")[1] in kept} == {"pass"}
    denied = found[f"{ENV}/flows"]
    assert denied.values == {
        "query": "flows",
        "status": "not-collected",
        "rows": 1,
        "reason": "403 Forbidden",
        "hint": "Grant the Power Automate admin permission.",
    }
    assert denied.message == "flows: not-collected: 403 Forbidden"
    assert denied.resource_kind == "query"
    assert denied.resource_name == "Contoso: flows"
    assert found[f"{ENV}/flows"].environment_id == ENV
    assert found[f"{ENV}/workflows"].message == "workflows: collected, 1 rows"


def test_one_finding_per_environment_and_query() -> None:
    found = run(
        CHECK,
        frames(
            environments=[environment(), environment("env-2", "Fabrikam")],
            scan_queries=[
                *query_outcomes(queries=["flows"]),
                *query_outcomes("env-2", "not-collected", ["flows"]),
            ],
        ),
    )
    assert [(f.resource_id, f.status) for f in found] == [
        (f"{ENV}/flows", "pass"),
        ("env-2/flows", "not-assessed"),
    ]
    assert found[1].values["reason"] is None


def test_no_query_outcome_no_finding() -> None:
    """A store without scan outcomes has nothing to report per query."""
    assert run(CHECK, frames(scan_queries=[])) == []
