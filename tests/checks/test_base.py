"""`make`: a finding with every value made plain, whatever the value's type."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from auditor.checks.base import MAX_MESSAGE, MAX_TEXT, CheckMeta, Finding, make, plain

META = CheckMeta(
    id="plugin-update-unfiltered",
    title="t",
    answers=("trigger-conditions",),
    severity="high",
    rationale="r",
    remediation="f",
    learn_url="https://learn.microsoft.com/",
    needs=(),
    resource_kind="step",
)


class Text(str):
    """A str subclass: not JSON-ready as it is, `plain` makes it a str."""


class Whole(int):
    """An int subclass, likewise."""


VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -5,
    10**30,
    1.5,
    float("nan"),
    float("inf"),
    "",
    "x",
    "y" * MAX_TEXT,
    "y" * (MAX_TEXT + 1),
    Text("s"),
    Whole(3),
    np.int64(4),
    np.float64("nan"),
    np.bool_(True),
    pd.NA,
    pd.NaT,
    pd.Timestamp("2024-01-01", tz="UTC"),
    datetime(2024, 1, 1, tzinfo=UTC),
    date(2024, 1, 2),
    {"a": 1, 2: [1, np.int32(2)]},
    [1, "x"],
    (1,),
    b"bytes",
]


def plain_finding(status: str, message: str, **fields: Any) -> Finding:
    """The finding `make` stands for, built the slow, obvious way."""
    values = fields.get("values") or {}
    return Finding(
        check_id=META.id,
        status=status,
        severity=META.severity,
        environment_id=plain(fields.get("environment_id")),
        resource_kind=fields.get("resource_kind") or META.resource_kind,
        resource_id=plain(fields.get("resource_id")),
        resource_name=plain(fields.get("resource_name")),
        message=message if len(message) <= MAX_MESSAGE else message[: MAX_MESSAGE - 1] + "…",
        values={str(k): plain(v) for k, v in values.items()},
        evidence=tuple(fields.get("evidence", ())),
    )


def types(finding: Finding) -> list[Any]:
    """The types of every field and value: `make` must not keep a subclass `plain` changes."""
    return [type(getattr(finding, name)) for name in Finding.__dataclass_fields__] + [
        (type(k), type(v)) for k, v in finding.values.items()
    ]


@pytest.mark.parametrize("value", VALUES, ids=repr)
def test_make_makes_every_value_plain_as_plain_does(value: Any) -> None:
    for name in ("environment_id", "resource_id", "resource_name"):
        made, expected = (
            make(META, "fail", "m", **{name: value}),
            plain_finding("fail", "m", **{name: value}),
        )
        assert repr(made) == repr(expected)
        assert types(made) == types(expected)
    values = {"k": value, 1: value, Text("t"): value, 2.5: "v"}
    made = make(META, "pass", "m", values=values, evidence=[{"a": 1}])
    expected = plain_finding("pass", "m", values=values, evidence=[{"a": 1}])
    assert repr(made) == repr(expected)
    assert types(made) == types(expected)


@pytest.mark.parametrize("length", [MAX_MESSAGE, MAX_MESSAGE + 1])
def test_make_cuts_a_long_message_and_takes_the_checks_kind(length: int) -> None:
    made = make(META, "error", "x" * length, resource_kind="check", values=None)
    assert made == plain_finding("error", "x" * length, resource_kind="check")
    assert len(made.message) == min(length, MAX_MESSAGE)


def test_make_refuses_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="unknown finding status 'bogus'"):
        make(META, "bogus", "m")
