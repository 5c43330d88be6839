"""The report as typed data: frozen dataclasses, built once (`auditor.report.model`),
serialised once (`Report.to_json`, which is `report.json`), read back by `Report.from_json`.

Every renderer reads these attributes, so a field renamed or dropped is a type error in the
renderer, not a `KeyError` in a user's scan. The open-ended parts stay mappings on purpose:
a finding's `values` and `evidence` rows are each check's own (documented per check), and a
verdict's `coverage` counts what each answer's checks audited.

Field order is the order of `report.json`'s keys (`reports/report.schema.json`); a field
marked `FLATTEN` is written into its parent object, one marked `OMIT_NONE` is left out when
it has no value (a scan's `inputs`, a finding's `location`: lint only).
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, TypeVar, Union, get_args, get_origin, get_type_hints

FLATTEN = {"flatten": True}
OMIT_NONE = {"omit_none": True}

Row = Mapping[str, Any]  # an evidence or values row: each check's own columns


class ReportDataError(ValueError):
    """A document that is not a report model (a key missing or of the wrong shape)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Generator:
    name: str
    version: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Question:
    """The Well-Architected question the report answers (`reports/assessment.toml`)."""

    id: str
    title: str
    summary: str
    url: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    start: str  # ISO 8601, UTC
    end: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ScannedEnvironment:
    id: str
    name: str
    has_dataverse: bool


@dataclass(frozen=True, slots=True, kw_only=True)
class Scan:
    """What was judged: a tenant scan (`kind` "scan") or exported files (`kind` "lint",
    with the `inputs` given)."""

    kind: str
    id: int
    status: str
    inputs: tuple[str, ...] | None = field(default=None, metadata=OMIT_NONE)
    window: Window
    environments: tuple[ScannedEnvironment, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Judgement:
    """One verdict with its reasons, fixes, what its checks covered, and its findings (as
    indexes into `Report.findings`)."""

    verdict: str
    reasons: tuple[str, ...]
    fixes: tuple[str, ...]
    coverage: Mapping[str, Mapping[str, int]]
    findings: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvironmentAnswer:
    environment_id: str
    environment: str
    judgement: Judgement = field(metadata=FLATTEN)


@dataclass(frozen=True, slots=True, kw_only=True)
class Answer:
    """One box of the question: checked, not checked, or needs review, for the scope and per
    environment (in the order of `Scan.environments`)."""

    id: str
    title: str
    paraphrase: str
    condition: str
    references: tuple[str, ...]
    checks: tuple[str, ...]
    judgement: Judgement = field(metadata=FLATTEN)
    environments: tuple[EnvironmentAnswer, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """Where a lint finding is: the file, the zip member, the line (none in a scan)."""

    file: str
    member: str | None
    line: int | None


@dataclass(frozen=True, slots=True, kw_only=True)
class ReportFinding:
    """A finding as reported: the check's own fields plus its title, answers, suppression
    and Learn page. Tenant text (`resource_name`, `message`, evidence) is raw here; each
    renderer escapes it for its format."""

    index: int
    check_id: str
    title: str
    answers: tuple[str, ...]
    relevant_answers: tuple[str, ...]  # the answers this finding bears on
    status: str
    severity: str
    environment_id: str | None
    environment: str | None
    resource_kind: str
    resource_id: str | None
    resource_name: str | None
    message: str
    values: Row
    evidence: tuple[Row, ...]
    suppressed: bool
    suppression_reason: str | None
    learn_url: str | None
    remediation: str | None
    location: Location | None = field(default=None, metadata=OMIT_NONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class FindingCount:
    """How many findings a check had with a status, and how many the report left out."""

    check_id: str
    status: str
    findings: int
    left_out: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueryCoverage:
    """One query of one environment: collected, or why not and what to do."""

    environment_id: str
    query_id: str
    status: str
    rows: int | None
    reason: str | None
    hint: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceCoverage:
    environment_id: str
    setting: str | None
    evidence: str | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Coverage:
    queries: tuple[QueryCoverage, ...]
    trace_logging: tuple[TraceCoverage, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class DayRuns:
    day: str
    runs: int
    failed: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowStep:
    environment: str
    name: str
    executions: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class SlowFlow:
    environment: str
    name: str
    runs: int
    p50_ms: float | None
    p95_ms: float | None
    p99_ms: float | None
    max_ms: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class NoisyFlow:
    environment: str
    name: str
    finished_runs: int | None
    estimated_unnecessary: float | None
    rate: float | None
    rate_low: float | None
    rate_high: float | None
    sampled: int


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueLatency:
    environment: str
    p95_ms: float | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Charts:
    """The figures the HTML report draws, worst first."""

    runs_per_day: tuple[DayRuns, ...]
    slowest_steps: tuple[SlowStep, ...]
    slowest_flows: tuple[SlowFlow, ...]
    noisy_flows: tuple[NoisyFlow, ...]
    queue_latency: tuple[QueueLatency, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """The report of one scan or lint: every format is rendered from this."""

    schema_version: int
    generator: Generator
    generated: str  # ISO 8601, UTC
    question: Question
    scan: Scan
    verdict: str
    answers: tuple[Answer, ...]
    findings: tuple[ReportFinding, ...]
    finding_counts: tuple[FindingCount, ...]
    coverage: Coverage
    charts: Charts

    def to_json(self) -> dict[str, Any]:
        """The JSON document (`report.json`), keys in field order."""
        data: dict[str, Any] = _to_data(self)
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Report:
        """The model of a `report.json` document; `ReportDataError` names what is wrong."""
        return _from_data(cls, data, "report")


_PLAIN = (str, int, float, bool, type(None))


def _to_data(value: Any) -> Any:
    if isinstance(value, _PLAIN):  # most values: checked first, as a report has thousands
        return value
    if isinstance(value, dict):
        return {key: _to_data(item) for key, item in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in fields(value):
            item = getattr(value, f.name)
            if f.metadata.get("flatten"):
                out.update(_to_data(item))
            elif item is not None or not f.metadata.get("omit_none"):
                out[f.name] = _to_data(item)
        return out
    if isinstance(value, tuple | list):
        return [_to_data(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _to_data(item) for key, item in value.items()}
    return value


_T = TypeVar("_T")


_HINTS: dict[type[Any], dict[str, Any]] = {}


def _hints(cls: type[Any]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = get_type_hints(cls)
    return _HINTS[cls]


def _from_data(cls: type[_T], data: Any, where: str) -> _T:
    if not isinstance(data, Mapping):
        raise ReportDataError(f"{where}: expected an object, found {type(data).__name__}")
    hints = _hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        if f.metadata.get("flatten"):
            values[f.name] = _from_data(hints[f.name], data, where)
        elif f.name in data:
            values[f.name] = _convert(hints[f.name], data[f.name], f"{where}.{f.name}")
        elif not f.metadata.get("omit_none"):
            raise ReportDataError(f"{where}: `{f.name}` is missing")
    return cls(**values)


def _convert(hint: Any, value: Any, where: str) -> Any:
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        if value is None:
            return None
        (inner,) = [arg for arg in get_args(hint) if arg is not type(None)]
        return _convert(inner, value, where)
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ReportDataError(f"{where}: expected a list, found {type(value).__name__}")
        item = get_args(hint)[0]
        return tuple(_convert(item, v, f"{where}[{k}]") for k, v in enumerate(value))
    if is_dataclass(hint):
        return _from_data(hint, value, where)  # type: ignore[arg-type]
    return value  # str, int, bool, float and each check's own mappings: kept as they are


__all__ = [
    "Answer",
    "Charts",
    "Coverage",
    "DayRuns",
    "EnvironmentAnswer",
    "FindingCount",
    "Generator",
    "Judgement",
    "Location",
    "NoisyFlow",
    "QueryCoverage",
    "QueueLatency",
    "Report",
    "ReportDataError",
    "ReportFinding",
    "Row",
    "Scan",
    "ScannedEnvironment",
    "SlowFlow",
    "SlowStep",
    "TraceCoverage",
    "Window",
]
