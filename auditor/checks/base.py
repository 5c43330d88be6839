"""What a check is and what it returns (docs/adding-a-check.md).

A check is one module with `META` (what it looks at, why, how to fix it, its thresholds) and
`run(evidence, limits) -> list[Finding]`. Checks read the analysis through `Evidence` and
never print, store or mention the answers' texts. Which answers a check decides is stated
once, in `reports/assessment.toml`; the registry copies it into `CheckMeta.answers`.

A finding's status is one of:
- `pass`: the resource was audited and meets the rule;
- `fail`: the rule is violated (the measured values and evidence rows say how);
- `not-assessed`: the data needed was not there (a query not collected, trace logging off,
  too few runs); the message says what is missing and how to get it;
- `error`: the resource's data could not be read (a definition that does not parse).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from auditor.checks.evidence import Evidence

STATUSES = ("pass", "fail", "not-assessed", "error")
SEVERITIES = ("high", "medium", "low")
ANSWERS = (
    "trigger-conditions",
    "return-results",
    "decomposed-steps",
    "reliable-service",
    "sufficient-performance",
)
Scalar = int | float | str | bool

# Evidence rows kept per finding: enough to show the pattern, bounded for a huge tenant.
MAX_EVIDENCE_ROWS = 20
MAX_TEXT = 500
# A message quotes tenant text (an error, a list of columns): cut, as values and names are.
MAX_MESSAGE = 4_000


@dataclass(frozen=True)
class Threshold:
    """A configurable limit: `[checks.<check id>] <name> = value` in auditor.toml."""

    name: str
    default: Scalar
    description: str
    unit: str = ""

    def coerce(self, value: Scalar) -> Scalar:
        """The configured value as the default's type; raises ValueError when it is not one."""
        if isinstance(self.default, bool):
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            return value
        if isinstance(self.default, int | float):
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"must be a number (default {self.default})")
            if not math.isfinite(value) or value < 0:
                raise ValueError("must be a finite number of at least 0")
            if isinstance(self.default, int) and not float(value).is_integer():
                raise ValueError(f"must be a whole number (default {self.default})")
            return int(value) if isinstance(self.default, int) else float(value)
        return str(value)


@dataclass(frozen=True)
class CheckMeta:
    """Everything about a check except its logic."""

    id: str
    title: str
    severity: str  # of a fail: high / medium / low (low = advice, not a violation)
    rationale: str
    remediation: str
    learn_url: str
    needs: tuple[str, ...]  # query ids (and trace:all / trace:failures) the check reads
    thresholds: tuple[Threshold, ...] = ()
    resource_kind: str = "flow"  # flow / step / job-owner / action / environment / query
    coverage: bool = False  # a coverage check: says what could not be seen
    # The answers it decides: set by the registry from reports/assessment.toml, never here.
    answers: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = set(self.answers) - set(ANSWERS)
        if unknown:
            raise ValueError(f"{self.id}: answers must be some of {ANSWERS}, got {self.answers}")
        if self.severity not in SEVERITIES:
            raise ValueError(f"{self.id}: severity must be one of {SEVERITIES}")
        names = [t.name for t in self.thresholds]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.id}: duplicate threshold names")


Limits = Mapping[str, Scalar]


@dataclass(frozen=True)
class Finding:
    """One check's verdict on one resource, with the measured values and evidence rows."""

    check_id: str
    status: str
    severity: str
    environment_id: str | None
    resource_kind: str
    resource_id: str | None
    resource_name: str | None
    message: str
    values: Mapping[str, Any] = field(default_factory=dict)
    evidence: tuple[Mapping[str, Any], ...] = ()

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"unknown finding status {self.status!r}")

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (the store's and the reports' shape)."""
        return {
            "check_id": self.check_id,
            "status": self.status,
            "severity": self.severity,
            "environment_id": self.environment_id,
            "resource_kind": self.resource_kind,
            "resource_id": self.resource_id,
            "resource_name": self.resource_name,
            "message": self.message,
            "values": dict(self.values),
            "evidence": [dict(row) for row in self.evidence],
        }


class Check:
    """A check module seen through its two names: `META` and `run`."""

    def __init__(self, meta: CheckMeta, run: Callable[[Evidence, Limits], list[Finding]]) -> None:
        self.meta = meta
        self.run = run

    @property
    def id(self) -> str:
        return self.meta.id


def rows(frame: pd.DataFrame) -> Iterator[Any]:
    """The frame's rows as named tuples (columns as attributes), untyped for the checks."""
    return frame.itertuples(index=False)


def per_flow(frame: pd.DataFrame) -> Callable[[Any, Any], pd.DataFrame]:
    """A lookup (environment_id, flow_id) -> that flow's rows of `frame`, grouped once:
    filtering the whole frame again for every flow costs O(flows x rows). Text columns are
    held as Python objects for the lookup: slicing an Arrow-backed column per flow costs a
    call into Arrow per column and flow, a third of the checks' time at scale large."""
    texts = [c for c, t in frame.dtypes.items() if isinstance(t, pd.StringDtype)]
    if texts:
        frame = frame.astype(dict.fromkeys(texts, object))
    groups = {
        (str(env), str(flow)): rows
        for (env, flow), rows in frame.groupby(["environment_id", "flow_id"], sort=False)
    }
    empty = frame.iloc[0:0]
    return lambda env, flow: groups.get((str(env), str(flow)), empty)


def plain(value: Any) -> Any:
    """A JSON-ready copy of a value from a frame: NA -> None, numpy scalars -> Python."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if len(value) <= MAX_TEXT else value[: MAX_TEXT - 1] + "…"
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else round(value, 6)
    if isinstance(value, pd.Timestamp | datetime):
        return None if pd.isna(value) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    if hasattr(value, "item"):
        return plain(value.item())
    return str(value)


def evidence_rows(
    frame: pd.DataFrame, columns: Sequence[str], limit: int = MAX_EVIDENCE_ROWS
) -> tuple[dict[str, Any], ...]:
    """The first `limit` rows of `frame`, only `columns`, as plain dicts.

    Cut to `limit` rows first and read column by column: a check may ask this for thousands
    of flows, and reindexing and `to_dict` of a frame cost a millisecond each time."""
    part = frame.iloc[:limit]
    names = [str(c) for c in columns]
    values = [part[c].tolist() if c in part.columns else [None] * len(part) for c in columns]
    rows = zip(*values, strict=False)
    return tuple({n: plain(v) for n, v in zip(names, row, strict=True)} for row in rows)


def make(
    meta: CheckMeta,
    status: str,
    message: str,
    *,
    environment_id: Any = None,
    resource_id: Any = None,
    resource_name: Any = None,
    resource_kind: str | None = None,
    values: Mapping[str, Any] | None = None,
    evidence: Iterable[Mapping[str, Any]] = (),
) -> Finding:
    """A finding of `meta`'s check, with its severity and every value made plain.

    A check may make 200,000 findings: values that `plain` returns as they are (None, short
    text, whole numbers, booleans) are kept without calling it, and the fields are passed by
    position (a third faster than by keyword, for ten)."""
    return Finding(
        meta.id,  # check_id
        status,
        meta.severity,
        _plain_id(environment_id),
        resource_kind or meta.resource_kind,
        _plain_id(resource_id),
        _plain_id(resource_name),
        message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…",
        {
            k if type(k) is str else str(k): (
                v
                if type(v) in _PLAIN_AS_IS or (type(v) is str and len(v) <= MAX_TEXT)
                else plain(v)
            )
            for k, v in values.items()
        }
        if values
        else {},
        tuple(evidence),
    )


# The types whose values `plain` returns unchanged, whatever the value. Exact types only: a
# subclass goes through `plain`, as do numpy's and pandas' scalars.
_PLAIN_AS_IS = frozenset({type(None), bool, int})


def _plain_id(value: Any) -> Any:
    """`plain(value)` for an id or a name, without the call for the usual short text."""
    if type(value) is str and len(value) <= MAX_TEXT:
        return value
    return plain(value)


def fmt(value: Any, digits: int = 0) -> str:
    """A number for a message: thousands separated, NA as "n/a"."""
    value = plain(value)
    if value is None:
        return "n/a"
    if isinstance(value, int | float):
        return f"{value:,.{digits}f}"
    return str(value)


def pct(value: Any) -> str:
    """A share for a message, e.g. 0.234 -> "23.4 %"."""
    value = plain(value)
    return "n/a" if value is None else f"{100 * float(value):.1f} %"
