"""Findings -> the five verdicts, per environment and for the scope (docs/how-a-scan-runs.md,
"Assess").

The question, its answers and which checks decide each answer are data
(`reports/assessment.toml`). The roll-up, per environment and answer:

1. a violation decides: a finding of a mapped check that fails with a violation severity
   (high or medium) makes the answer `do-not-check`;
2. otherwise coverage: a mapped check `not-assessed` or in `error` there (a query denied or
   not collected, trace logging off, a definition unreadable), or nothing audited at all,
   makes it `needs-review`, with the reasons and the fixes;
3. otherwise `check`.

No data is never `check`. For the whole scope, any environment's `do-not-check` wins, then
any `needs-review`. Findings suppressed by a mutelist entry count for nothing but stay
listed, marked as suppressed with the entry's reason.

The answers come from `auditor.assessment.spec`, the entries from `auditor.assessment.mutelist`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from auditor.assessment.mutelist import MuteEntry
from auditor.assessment.spec import Answer, Assessment, assessment
from auditor.bulk import collection_paused
from auditor.checks import CHECKS
from auditor.checks.base import Finding

VERDICTS = ("check", "do-not-check", "needs-review")
# Worst first: how verdicts combine across environments, and what `--fail-on` compares.
_RANK = {"check": 0, "needs-review": 1, "do-not-check": 2}


@dataclass(frozen=True)
class Judged:
    """A finding with its suppression, as the assessment and the reports see it."""

    finding: Finding
    suppressed_by: str | None = None  # the mutelist entry's reason


@dataclass(frozen=True)
class Verdict:
    """One answer's verdict for one environment (or the scope), with what decided it."""

    answer_id: str
    verdict: str
    reasons: tuple[str, ...]
    fixes: tuple[str, ...]
    findings: tuple[int, ...]  # indexes into AssessmentResult.findings behind the verdict
    coverage: Mapping[str, Mapping[str, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class AssessmentResult:
    """Every verdict, per environment and for the scope, with the judged findings."""

    findings: tuple[Judged, ...]
    environments: Mapping[str, str]  # id -> name, in report order
    by_environment: Mapping[str, tuple[Verdict, ...]]
    scope: tuple[Verdict, ...]

    def worst(self) -> str:
        """The worst verdict of the scope ("check" when nothing is wrong)."""
        return max((v.verdict for v in self.scope), key=_RANK.__getitem__, default="check")


def fails_at(verdict: str, threshold: str) -> bool:
    """Whether a verdict is at or above `--fail-on` (do-not-check or needs-review)."""
    return _RANK[verdict] >= _RANK[threshold]


# The check whose findings are about one query: they bear only on the answers reading it.
_QUERY_GAP = "coverage-query-not-collected"


def relevant(finding: Finding, answer: Answer) -> bool:
    """Whether a finding bears on an answer: its check is mapped there, and a finding about
    one query matters only to answers whose checks read that query."""
    if finding.check_id not in answer.checks:
        return False
    query = finding.values.get("query") if finding.check_id == _QUERY_GAP else None
    if query is None:
        return True
    return any(query in CHECKS[c].meta.needs for c in answer.checks)


def _coverage(judged: Iterable[Judged]) -> dict[str, dict[str, int]]:
    """Per resource kind: resources audited (pass or fail) and not assessed."""
    out: dict[str, dict[str, set[str]]] = {}
    for j in judged:
        f = j.finding
        if f.resource_kind in ("environment", "query", "check") and f.status == "pass":
            continue
        kind = out.setdefault(f.resource_kind, {"audited": set(), "not_assessed": set()})
        key = f"{f.environment_id}/{f.resource_id}"
        bucket = "audited" if f.status in ("pass", "fail") else "not_assessed"
        kind[bucket].add(key)
    return {
        kind: {"audited": len(v["audited"]), "not_assessed": len(v["not_assessed"] - v["audited"])}
        for kind, v in sorted(out.items())
    }


def _verdict(
    answer: Answer, indexes: Sequence[int], judged: Sequence[Judged], severities: frozenset[str]
) -> Verdict:
    """The verdict of an answer from the judged findings at `indexes` (those bearing on it)."""
    violations: list[int] = []
    gaps: list[int] = []
    audited = False
    for i in indexes:  # the findings not suppressed, gone through once
        j = judged[i]
        if j.suppressed_by is not None:
            continue
        status = j.finding.status
        if status == "fail":
            audited = True
            if j.finding.severity in severities:
                violations.append(i)
        elif status == "pass":
            audited = True
        elif status in ("not-assessed", "error"):
            gaps.append(i)
    coverage = _coverage(judged[i] for i in indexes)
    if violations:
        deciding = [judged[i] for i in violations]
        return Verdict(
            answer.id,
            "do-not-check",
            _reasons(deciding),
            _fixes(deciding),
            tuple(violations),
            coverage,
        )
    if gaps or not audited:
        deciding = [judged[i] for i in gaps]
        reasons = _reasons(deciding) if gaps else ("nothing was found to audit for this answer",)
        return Verdict(answer.id, "needs-review", reasons, _fixes(deciding), tuple(gaps), coverage)
    return Verdict(
        answer.id, "check", ("no violation found; everything mapped was audited",), (), (), coverage
    )


def _reasons(items: Sequence[Judged]) -> tuple[str, ...]:
    """One line per check: how many resources, and the first message."""
    first: dict[str, Finding] = {}
    count: dict[str, int] = {}
    for j in items:
        check_id = j.finding.check_id
        if check_id in count:
            count[check_id] += 1
        else:
            first[check_id], count[check_id] = j.finding, 1
    out = []
    for check_id, finding in first.items():
        title = CHECKS[check_id].meta.title
        name = finding.resource_name or finding.resource_id or ""
        more = f" (and {count[check_id] - 1} more)" if count[check_id] > 1 else ""
        out.append(f"{title}: {name}: {finding.message}{more}")
    return tuple(out)


def _fixes(items: Sequence[Judged]) -> tuple[str, ...]:
    fixes: dict[str, None] = {}
    for j in items:
        f = j.finding
        hints = f.values.get("hints")
        if isinstance(hints, list) and hints:
            for hint in hints:
                fixes[str(hint)] = None
        elif isinstance(f.values.get("hint"), str):
            fixes[str(f.values["hint"])] = None
        else:
            fixes[CHECKS[f.check_id].meta.remediation] = None
    return tuple(fixes)


def _judged(
    findings: Iterable[Finding], environments: Mapping[str, str], mutelist: Sequence[MuteEntry]
) -> list[Judged]:
    """Each finding with the reason of the first mutelist entry that suppresses it. Only the
    entries of a finding's check can match it: without a mutelist nothing is matched."""
    if not mutelist:
        return [Judged(finding) for finding in findings]
    entries: dict[str, list[MuteEntry]] = {}
    for entry in mutelist:
        entries.setdefault(entry.check_id, []).append(entry)
    judged = []
    for finding in findings:
        candidates = entries.get(finding.check_id, ())
        name = environments.get(finding.environment_id or "") if candidates else None
        match = next((m for m in candidates if m.matches(finding, name)), None)
        judged.append(Judged(finding, match.reason if match else None))
    return judged


def _answers_of(finding: Finding, spec: Assessment) -> list[int]:
    """The positions in `spec.answers` of the answers a finding bears on."""
    return [k for k, answer in enumerate(spec.answers) if relevant(finding, answer)]


def assess(
    findings: Iterable[Finding],
    environments: Mapping[str, str],
    *,
    mutelist: Sequence[MuteEntry] = (),
    definition: Assessment | None = None,
) -> AssessmentResult:
    """The verdicts of every answer per environment and for the scope.

    The findings are gone through once: each goes to the answers it bears on (found once per
    check, and per query for a query gap) in its environment, or in every environment when
    it has none, in the order of the findings. A lint of 200,000 steps has 200,000 findings."""
    with collection_paused():
        return _assess(findings, environments, mutelist, definition or assessment())


def _assess(
    findings: Iterable[Finding],
    environments: Mapping[str, str],
    mutelist: Sequence[MuteEntry],
    spec: Assessment,
) -> AssessmentResult:
    judged = _judged(findings, environments, mutelist)
    envs = list(environments)
    # Per environment and answer: the indexes of the findings bearing on it, in order.
    mine: dict[str, list[list[int]]] = {env: [[] for _ in spec.answers] for env in envs}
    everywhere = list(mine.values())
    by_check: dict[str, list[int]] = {}  # answer positions of a check's findings
    by_query: dict[Any, list[int]] = {}  # of a query gap's, by its query
    for i, j in enumerate(judged):
        f = j.finding
        if f.check_id == _QUERY_GAP:
            query = f.values.get("query")
            try:
                answers = by_query.get(query)
            except TypeError:  # a query that is not text: judged on its own
                answers = _answers_of(f, spec)
            else:
                if answers is None:
                    answers = by_query[query] = _answers_of(f, spec)
        else:
            answers = by_check.get(f.check_id)
            if answers is None:
                answers = by_check[f.check_id] = _answers_of(f, spec)
        if not answers:
            continue
        if f.environment_id is None:
            for lists in everywhere:
                for k in answers:
                    lists[k].append(i)
        elif (own := mine.get(f.environment_id)) is not None:
            for k in answers:
                own[k].append(i)
    by_env: dict[str, tuple[Verdict, ...]] = {
        env: tuple(
            _verdict(a, mine[env][k], judged, spec.violation_severities)
            for k, a in enumerate(spec.answers)
        )
        for env in envs
    }
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
        named = [
            f"{environments[e]}: {reason}"
            for e, v in zip(environments, verdicts, strict=True)
            if v.verdict == worst.verdict
            for reason in v.reasons
        ]
        findings_behind = tuple(
            i for v in verdicts if v.verdict == worst.verdict for i in v.findings
        )
        fixes = tuple(
            dict.fromkeys(f for v in verdicts if v.verdict == worst.verdict for f in v.fixes)
        )
        scope.append(
            replace(
                worst,
                reasons=tuple(named),
                fixes=fixes,
                findings=findings_behind,
                coverage=coverage,
            )
        )
    return AssessmentResult(tuple(judged), dict(environments), by_env, tuple(scope))
