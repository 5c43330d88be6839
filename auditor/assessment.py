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
"""

from __future__ import annotations

import fnmatch
import logging
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from auditor.bulk import collection_paused
from auditor.checks import CHECKS, answer_checks
from auditor.checks.base import Finding
from auditor.errors import DefinitionError, UsageError
from auditor.resources import data_dir
from auditor.settings import decode_utf8, has_control, read_limited, shown
from auditor.terminal import clean

log = logging.getLogger(__name__)

VERDICTS = ("check", "do-not-check", "needs-review")
# Worst first: how verdicts combine across environments, and what `--fail-on` compares.
_RANK = {"check": 0, "needs-review": 1, "do-not-check": 2}


@dataclass(frozen=True)
class Answer:
    """One box of the question: paraphrase, the condition of its note, references, checks."""

    id: str
    title: str
    paraphrase: str
    condition: str
    references: tuple[str, ...]
    checks: tuple[str, ...]


@dataclass(frozen=True)
class Assessment:
    """The question and its answers, loaded from `reports/assessment.toml`."""

    question_id: str
    title: str
    summary: str
    url: str
    answers: tuple[Answer, ...]
    violation_severities: frozenset[str]


def _text(table: Mapping[str, Any], key: str, where: str) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise DefinitionError(f"reports/assessment.toml: {where}.{key} must be non-empty text")
    return value.strip()


def load_assessment(path: Path | None = None) -> Assessment:
    """Reads and validates the assessment data; the answer -> checks mapping is checked both
    ways by `answer_checks` (every check mapped, every mapping real)."""
    path = path or data_dir("reports") / "assessment.toml"
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise DefinitionError(f"{path} cannot be read: {exc}") from exc
    question = document.get("question", {})
    mapping = answer_checks(document, str(path))
    answers = []
    for i, ((answer_id, checks), raw) in enumerate(zip(mapping, document["answer"], strict=True)):
        where = f"answer[{i}]"
        refs = tuple(raw.get("references", ()))
        if not refs or not all(isinstance(r, str) and r.startswith("https://") for r in refs):
            raise DefinitionError(f"{path}: {where}.references must be https URLs")
        answers.append(
            Answer(
                id=answer_id,
                title=_text(raw, "title", where),
                paraphrase=_text(raw, "paraphrase", where),
                condition=_text(raw, "condition", where),
                references=refs,
                checks=checks,
            )
        )
    rollup = document.get("rollup", {})
    return Assessment(
        question_id=_text(question, "id", "question"),
        title=_text(question, "title", "question"),
        summary=" ".join(_text(question, "summary", "question").split()),
        url=_text(question, "url", "question"),
        answers=tuple(answers),
        violation_severities=frozenset(rollup.get("violation_severities", ("high", "medium"))),
    )


@cache
def assessment() -> Assessment:
    """The packaged assessment, loaded once."""
    return load_assessment()


# Mutelist ---------------------------------------------------------------------------------

# A mutelist names a few reviewed exceptions and may come with a pull request: these bound what
# a hostile one can cost (matching is entries x findings, and every text reaches the reports).
MAX_MUTE_ENTRIES = 1_000
MAX_MUTE_TEXT = 1_000
_MUTE_KEYS = ("check", "resource", "environment", "reason", "expires")
_MUTE_HINT = (
    "It is a TOML or YAML file with a list `mute` of {check, resource, reason, expires} and "
    "an optional environment."
)


@dataclass(frozen=True)
class MuteEntry:
    """Suppress findings of one check on matching resources, for a reason, until a date."""

    check_id: str
    resource: str  # resource id or name; shell-style wildcards allowed
    reason: str
    expires: date
    environment: str | None = None  # environment id or name; None = any

    def __post_init__(self) -> None:
        """Every field is short plain text and `expires` a date, whoever built the entry: a
        structure, a huge text or a control character never reaches matching or a report."""
        named = {"check": self.check_id, "resource": self.resource, "reason": self.reason}
        if self.environment is not None:
            named["environment"] = self.environment
        for name, value in named.items():
            if not isinstance(value, str) or not value.strip():
                raise ValueError(f"{name} must be non-empty text (quote it), got {shown(value)}")
            if len(value) > MAX_MUTE_TEXT:
                raise ValueError(f"{name} must be at most {MAX_MUTE_TEXT:,} characters")
            if has_control(value):
                raise ValueError(f"{name} must not hold control or invisible characters")
        # A datetime is a date too, but cannot be compared with one.
        if not isinstance(self.expires, date) or isinstance(self.expires, datetime):
            raise ValueError(f"expires must be a date like 2027-03-31, got {shown(self.expires)}")

    def matches(self, finding: Finding, environment_name: str | None) -> bool:
        if finding.check_id != self.check_id:
            return False
        if self.environment is not None and self.environment.lower() not in {
            (finding.environment_id or "").lower(),
            (environment_name or "").lower(),
        }:
            return False
        names = [finding.resource_id or "", finding.resource_name or ""]
        return any(fnmatch.fnmatchcase(n.lower(), self.resource.lower()) for n in names)


def load_mutelist(path: Path, *, today: date) -> list[MuteEntry]:
    """Entries of a YAML or TOML mutelist; expired entries are dropped with a warning.

    ```toml
    [[mute]]
    check = "flow-no-error-handling"
    resource = "Nightly export*"     # id or name, wildcards allowed
    environment = "Contoso Dev"      # optional
    reason = "Replaced in Q1; tracked in ADO 1234"
    expires = 2027-03-31
    ```

    The file is read as `auditor.toml` is (a regular file, at most 1 MB, UTF-8); YAML anchors
    and aliases are refused, and at most `MAX_MUTE_ENTRIES` entries are read.
    """
    document = _read_mutelist(path)
    raw = document.get("mute", []) if isinstance(document, dict) else None
    if not isinstance(raw, list):
        raise UsageError(f"the mutelist {path} needs a list named `mute`", hint=_MUTE_HINT)
    if len(raw) > MAX_MUTE_ENTRIES:
        raise UsageError(
            f"the mutelist {path} has {len(raw):,} entries; at most {MAX_MUTE_ENTRIES:,} are read",
            hint='Mute by wildcard (resource = "Nightly*") rather than entry by entry.',
        )
    entries = []
    for i, item in enumerate(raw):
        entry = _mute_entry(item, f"{path}: mute[{i}]")
        if entry.expires < today:
            log.warning(
                "mutelist entry %d (%s on %s) expired on %s and is ignored",
                i,
                entry.check_id,
                clean(entry.resource, 200),
                entry.expires.isoformat(),
            )
            continue
        entries.append(entry)
    return entries


def _read_mutelist(path: Path) -> Any:
    """The parsed document; every way a file can be wrong is one UsageError line."""
    try:
        text = decode_utf8(read_limited(path))
    except OSError as exc:
        raise UsageError(f"cannot read the mutelist {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise UsageError(f"the mutelist {path} {exc}", hint=_MUTE_HINT) from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.load(text, Loader=_MutelistLoader)  # noqa: S506 (a SafeLoader)
        return tomllib.loads(text)
    except RecursionError:
        problem = "is nested too deeply to read"
    except yaml.MarkedYAMLError as exc:
        problem = f"does not parse: {_yaml_problem(exc)}"
    except (yaml.YAMLError, ValueError) as exc:  # TOMLDecodeError, an integer too long
        problem = f"does not parse: {clean(exc, 200)}"
    raise UsageError(f"the mutelist {path} {problem}", hint=_MUTE_HINT)


class _MutelistLoader(yaml.SafeLoader):
    """YAML without anchors and aliases, and no deeper than a mutelist is.

    Aliases nested in aliases (a "billion laughs") are a few hundred bytes that expand to
    billions of nodes once anything walks them; a mutelist has no use for them."""

    max_depth = 8

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: int) -> yaml.Node | None:
        event: yaml.Event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise _refused("anchors and aliases (& and *) are not allowed", event)
        if self._depth >= self.max_depth:
            raise _refused(f"nested more than {self.max_depth} levels deep", event)
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _refused(problem: str, event: yaml.Event) -> yaml.YAMLError:
    mark = event.start_mark
    where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
    return yaml.composer.ComposerError(None, None, problem + where)


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """The problem and its position, without the quoted lines PyYAML adds (they would copy
    the file's text, whatever it holds, into the log)."""
    what = clean(exc.problem or exc.context or "invalid YAML", 200)
    mark = exc.problem_mark or exc.context_mark
    return f"{what} (line {mark.line + 1}, column {mark.column + 1})" if mark else what


def _mute_entry(item: Any, where: str) -> MuteEntry:
    if not isinstance(item, dict):
        raise UsageError(f"{where} must be a table of check, resource, reason, expires")
    unknown = [key for key in item if key not in _MUTE_KEYS]
    if unknown:
        raise UsageError(
            f"{where}: {shown(unknown[0], 60)} is not a key of an entry", hint=_MUTE_HINT
        )
    missing = [k for k in ("check", "resource", "reason", "expires") if not item.get(k)]
    if missing:
        raise UsageError(
            f"{where} lacks {', '.join(missing)}",
            hint="Every entry needs "
            "a reason and an expiry date, so that suppressions are reviewed.",
        )
    check = item["check"]
    if not isinstance(check, str) or check not in CHECKS:
        raise UsageError(
            f"{where}: unknown check id {shown(check, 80)}",
            hint="`auditor checks list` shows the check ids.",
        )
    expires = item["expires"]
    if isinstance(expires, str) and len(expires) <= 32:
        try:
            expires = date.fromisoformat(expires)
        except ValueError:
            raise UsageError(f"{where}: expires must be a date like 2027-03-31") from None
    try:
        if "environment" in item and item["environment"] is None:
            raise ValueError("environment must be non-empty text (leave it out for any)")
        return MuteEntry(
            check_id=check,
            resource=item["resource"],
            reason=item["reason"],
            expires=expires,
            environment=item.get("environment"),
        )
    except ValueError as exc:
        raise UsageError(f"{where}: {exc}", hint=_MUTE_HINT) from None


# Verdicts ---------------------------------------------------------------------------------


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


__all__ = [
    "VERDICTS",
    "Answer",
    "Assessment",
    "AssessmentResult",
    "Judged",
    "MuteEntry",
    "Verdict",
    "assess",
    "assessment",
    "fails_at",
    "load_assessment",
    "load_mutelist",
    "relevant",
]
