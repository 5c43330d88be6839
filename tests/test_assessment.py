"""`assess`: the verdicts from findings, gone through once whatever their number.

The reference below is the roll-up as docs/how-a-scan-runs.md ("Assess") and `[rollup]` in
reports/assessment.toml state it, written the plain way
(every environment filters every finding, every answer asks `relevant` of each): `assess`
must give exactly its verdicts, reasons, fixes, coverage and finding indexes, in order."""

from __future__ import annotations

import gc
import random
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import date
from typing import Any

import pytest

from auditor import assessment
from auditor.assessment import (
    Answer,
    AssessmentResult,
    Judged,
    MuteEntry,
    Verdict,
    assess,
    relevant,
)
from auditor.assessment import verdicts as roll_up
from auditor.assessment.verdicts import _RANK, _coverage
from auditor.checks import CHECKS
from auditor.checks.base import Finding

QUERY_GAP = "coverage-query-not-collected"
FAR = date(2099, 1, 1)


def reference_verdict(
    answer: Answer, mine: Sequence[int], judged: Sequence[Judged], severities: frozenset[str]
) -> Verdict:
    """One answer's verdict, the plain way: a violation decides, else a gap or nothing
    audited asks for review, else check; reasons one line per check, fixes in order."""
    active = [i for i in mine if judged[i].suppressed_by is None]
    status = {i: judged[i].finding.status for i in mine}
    violations = [
        i for i in active if status[i] == "fail" and judged[i].finding.severity in severities
    ]
    gaps = [i for i in active if status[i] in ("not-assessed", "error")]
    audited = [i for i in active if status[i] in ("pass", "fail")]
    coverage = _coverage(judged[i] for i in mine)

    def reasons(items: list[int]) -> tuple[str, ...]:
        by_check: dict[str, list[Finding]] = {}
        for i in items:
            by_check.setdefault(judged[i].finding.check_id, []).append(judged[i].finding)
        return tuple(
            f"{CHECKS[c].meta.title}: {f[0].resource_name or f[0].resource_id or ''}: "
            f"{f[0].message}" + (f" (and {len(f) - 1} more)" if len(f) > 1 else "")
            for c, f in by_check.items()
        )

    def fixes(items: list[int]) -> tuple[str, ...]:
        out: dict[str, None] = {}
        for i in items:
            f = judged[i].finding
            hints, hint = f.values.get("hints"), f.values.get("hint")
            if isinstance(hints, list) and hints:
                out.update(dict.fromkeys(str(h) for h in hints))
            else:
                out[hint if isinstance(hint, str) else CHECKS[f.check_id].meta.remediation] = None
        return tuple(out)

    if violations:
        return Verdict(
            answer.id, "do-not-check", reasons(violations), fixes(violations),
            tuple(violations), coverage,
        )  # fmt: skip
    if gaps or not audited:
        why = reasons(gaps) if gaps else ("nothing was found to audit for this answer",)
        return Verdict(answer.id, "needs-review", why, fixes(gaps), tuple(gaps), coverage)
    return Verdict(
        answer.id, "check", ("no violation found; everything mapped was audited",), (), (), coverage
    )


def reference(
    findings: Sequence[Finding],
    environments: Mapping[str, str],
    mutelist: Sequence[MuteEntry] = (),
) -> AssessmentResult:
    spec = assessment.assessment()
    judged = []
    for finding in findings:
        name = environments.get(finding.environment_id or "")
        entry = next((m for m in mutelist if m.matches(finding, name)), None)
        judged.append(Judged(finding, entry.reason if entry else None))
    by_env: dict[str, tuple[Verdict, ...]] = {}
    for env in environments:
        mine = [i for i, j in enumerate(judged) if j.finding.environment_id in (env, None)]
        by_env[env] = tuple(
            reference_verdict(
                answer,
                [i for i in mine if relevant(judged[i].finding, answer)],
                judged,
                spec.violation_severities,
            )
            for answer in spec.answers
        )
    scope = []
    for k, answer in enumerate(spec.answers):
        verdicts = [by_env[e][k] for e in environments]
        if not verdicts:
            scope.append(
                Verdict(answer.id, "needs-review", ("no environment was analysed",), (), ())
            )
            continue
        worst = max(verdicts, key=lambda v: _RANK[v.verdict])
        coverage: dict[str, dict[str, int]] = {}
        for v in verdicts:
            for kind, counts in v.coverage.items():
                slot = coverage.setdefault(kind, {"audited": 0, "not_assessed": 0})
                for key, n in counts.items():
                    slot[key] += n
        same = [
            (e, v)
            for e, v in zip(environments, verdicts, strict=True)
            if v.verdict == worst.verdict
        ]
        scope.append(
            replace(
                worst,
                reasons=tuple(f"{environments[e]}: {r}" for e, v in same for r in v.reasons),
                fixes=tuple(dict.fromkeys(f for _, v in same for f in v.fixes)),
                findings=tuple(i for _, v in same for i in v.findings),
                coverage=coverage,
            )
        )
    return AssessmentResult(tuple(judged), dict(environments), by_env, tuple(scope))


def random_findings(rng: random.Random, environments: Sequence[str], n: int) -> list[Finding]:
    checks = [*CHECKS, *[QUERY_GAP] * 5]
    queries = ["sdkmessageprocessingsteps", "plugintracelogs", "flows", "workflows", None, ["x"]]
    out = []
    for _ in range(n):
        check = rng.choice(checks)
        values: dict[str, Any] = {}
        if check == QUERY_GAP or rng.random() < 0.1:
            values["query"] = rng.choice(queries)
        if rng.random() < 0.2:
            values["hints"] = rng.choice([[], ["h1", "h2"], ["h2"]])
        if rng.random() < 0.2:
            values["hint"] = rng.choice(["a hint", 1])
        out.append(
            Finding(
                check,
                rng.choice(["pass", "fail", "not-assessed", "error"]),
                rng.choice(["high", "medium", "low"]),
                rng.choice([*environments, None, "elsewhere"]),
                rng.choice(["flow", "step", "environment", "query", "check"]),
                rng.choice(["r1", "r2", "R3", None]),
                rng.choice(["Nightly A", "b", None]),
                f"message {rng.randrange(5)}",
                values,
            )
        )
    return out


@pytest.mark.parametrize("seed", range(40))
def test_assess_gives_the_verdicts_of_the_plain_roll_up(seed: int) -> None:
    rng = random.Random(seed)
    envs = rng.sample(["e1", "e2", "e3", "E4"], rng.randrange(0, 4))
    environments = {e: f"Env {e}" for e in envs}
    findings = random_findings(rng, envs, rng.randrange(0, 80))
    mutelist = [
        MuteEntry(
            rng.choice([*CHECKS]),
            rng.choice(["r*", "nightly*", "*", "b"]),
            f"why {k}",
            FAR,
            rng.choice([None, "e1", "Env e2"]),
        )
        for k in range(rng.choice([0, 0, 1, 3]))
    ]
    mutelist += [MuteEntry(f.check_id, "*", "all", FAR) for f in findings[: rng.randrange(0, 4)]]
    assert assess(findings, environments, mutelist=mutelist) == reference(
        findings, environments, mutelist
    )


def test_the_first_matching_entry_of_the_findings_check_suppresses_it() -> None:
    finding = Finding("flow-no-error-handling", "fail", "high", "e1", "flow", "f1", "Nightly", "m")
    entries = [
        MuteEntry("flow-retry-none-unhandled", "*", "another check", FAR),
        MuteEntry("flow-no-error-handling", "other*", "another flow", FAR),
        MuteEntry("flow-no-error-handling", "night*", "first match", FAR, "Env One"),
        MuteEntry("flow-no-error-handling", "*", "second match", FAR),
    ]
    result = assess([finding], {"e1": "Env One"}, mutelist=entries)
    assert [j.suppressed_by for j in result.findings] == ["first match"]


def test_relevance_is_asked_once_per_check_not_per_finding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """200,000 findings of one check in three environments: the answers a finding bears on
    are found once for its check (and once per query for a query gap), and each finding is
    gone through once, not once per environment."""
    asked = []
    real = roll_up.relevant

    def counting(finding: Finding, answer: Any) -> bool:
        asked.append(finding.check_id)
        return real(finding, answer)

    monkeypatch.setattr(roll_up, "relevant", counting)
    fail = Finding("plugin-update-unfiltered", "fail", "high", "e1", "step", "s", "S", "m")
    gaps = [
        Finding(QUERY_GAP, "not-assessed", "low", None, "query", q, q, "m", {"query": q})
        for q in ("plugintracelogs", "flows", "plugintracelogs")
    ]
    environments = {"e1": "One", "e2": "Two", "e3": "Three"}
    result = assess([fail] * 200_000 + gaps, environments)
    answers = len(assessment.assessment().answers)
    assert len(asked) == 3 * answers  # one check, two distinct queries
    (trigger,) = [v for v in result.by_environment["e1"] if v.answer_id == "trigger-conditions"]
    assert trigger.verdict == "do-not-check"
    assert len(trigger.findings) == 200_000
    assert trigger.reasons[0].endswith("(and 199999 more)")


def test_assess_leaves_the_collector_as_it_was() -> None:
    finding = Finding("plugin-update-unfiltered", "fail", "high", "e1", "step", "s", "S", "m")
    assess([finding], {"e1": "One"})
    assert gc.isenabled()
    gc.disable()
    try:
        assess([finding], {"e1": "One"})
        assert not gc.isenabled()
    finally:
        gc.enable()


# The roll-up as a table: findings of checks bearing on one answer (reliable-service) or not,
# per environment, and the verdicts they must give. A finding is (check, status, severity,
# environment, muted); `None` as environment is a finding about every environment.
MAPPED = "flow-failure-rate"  # decides reliable-service
ALSO = "system-jobs-stuck"  # decides reliable-service too
UNMAPPED = "flow-monolithic"  # decides decomposed-steps only
Row = tuple[str, str, str, str | None, bool]


def row(
    status: str,
    severity: str = "high",
    env: str | None = "e1",
    *,
    check: str = MAPPED,
    muted: bool = False,
) -> Row:
    return (check, status, severity, env, muted)


PRECEDENCE = [
    # One environment: a violation decides, then a gap or nothing audited, then check.
    ([], {"e1": "needs-review"}, "needs-review", "nothing audited"),
    ([row("pass")], {"e1": "check"}, "check", "a pass"),
    ([row("fail", "high")], {"e1": "do-not-check"}, "do-not-check", "a high fail"),
    ([row("fail", "medium")], {"e1": "do-not-check"}, "do-not-check", "a medium fail"),
    ([row("fail", "low")], {"e1": "check"}, "check", "a low fail is advice"),
    ([row("not-assessed")], {"e1": "needs-review"}, "needs-review", "not assessed"),
    ([row("error")], {"e1": "needs-review"}, "needs-review", "an error"),
    ([row("pass"), row("not-assessed")], {"e1": "needs-review"}, "needs-review", "gap > pass"),
    ([row("pass"), row("error", check=ALSO)], {"e1": "needs-review"}, "needs-review", "error"),
    ([row("not-assessed"), row("fail")], {"e1": "do-not-check"}, "do-not-check", "fail > gap"),
    ([row("fail", "low"), row("error")], {"e1": "needs-review"}, "needs-review", "low + gap"),
    # Suppressed findings count for nothing.
    ([row("pass"), row("fail", muted=True)], {"e1": "check"}, "check", "muted fail"),
    ([row("fail", muted=True)], {"e1": "needs-review"}, "needs-review", "only a muted fail"),
    ([row("pass"), row("not-assessed", muted=True)], {"e1": "check"}, "check", "muted gap"),
    # Only findings of checks mapped to the answer, in the environment or everywhere, count.
    ([row("fail", check=UNMAPPED)], {"e1": "needs-review"}, "needs-review", "unmapped check"),
    ([row("pass"), row("fail", env="gone")], {"e1": "check"}, "check", "another environment"),
    (
        [row("pass", env="e1"), row("pass", env="e2"), row("fail", env=None)],
        {"e1": "do-not-check", "e2": "do-not-check"},
        "do-not-check",
        "a fail about every environment",
    ),
    # Across environments: any do-not-check wins, then any needs-review, else check.
    (
        [row("pass", env="e1"), row("pass", env="e2")],
        {"e1": "check", "e2": "check"},
        "check",
        "all check",
    ),
    (
        [row("pass", env="e1"), row("fail", env="e2")],
        {"e1": "check", "e2": "do-not-check"},
        "do-not-check",
        "one do-not-check",
    ),
    (
        [row("not-assessed", env="e1"), row("pass", env="e2")],
        {"e1": "needs-review", "e2": "check"},
        "needs-review",
        "one needs-review",
    ),
    (
        [row("not-assessed", env="e1"), row("fail", env="e2"), row("pass", env="e3")],
        {"e1": "needs-review", "e2": "do-not-check", "e3": "check"},
        "do-not-check",
        "do-not-check over needs-review",
    ),
    ([row("fail", env=None)], {}, "needs-review", "no environment analysed"),
]


@pytest.mark.parametrize(
    ("rows", "per_environment", "scope"),
    [pytest.param(r, e, s, id=name) for r, e, s, name in PRECEDENCE],
)
def test_the_roll_up_precedence(
    rows: list[Row], per_environment: dict[str, str], scope: str
) -> None:
    findings = [
        Finding(check, status, severity, env, "flow", f"r{i}", f"Flow {i}", f"message {i}")
        for i, (check, status, severity, env, _) in enumerate(rows)
    ]
    mutelist = [
        MuteEntry(check, f"r{i}", "reviewed", FAR)
        for i, (check, _, _, _, muted) in enumerate(rows)
        if muted
    ]
    environments = {env: f"Env {env}" for env in per_environment}
    result = assess(findings, environments, mutelist=mutelist)

    def verdict(verdicts: Sequence[Verdict]) -> str:
        (one,) = [v for v in verdicts if v.answer_id == "reliable-service"]
        return one.verdict

    assert {e: verdict(v) for e, v in result.by_environment.items()} == per_environment
    assert verdict(result.scope) == scope
