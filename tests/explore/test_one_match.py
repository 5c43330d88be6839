"""A name shared by flows or steps in several environments is refused with each one listed."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pandas as pd
import pytest

from auditor.errors import UsageError
from auditor.explore.common import one_match

EVIDENCE: Any = SimpleNamespace(environment_names={"e1": "Contoso Dev", "e2": "Contoso Prod"})


def test_one_row_is_returned() -> None:
    matches = pd.DataFrame({"environment_id": ["e1"], "stepid": ["s1"]})
    assert one_match(matches, EVIDENCE, "plug-in step", "stepid", "Sync")["stepid"] == "s1"


@pytest.mark.parametrize(
    ("kind", "column", "message", "hint"),
    [
        ("flow", "flow_id", "2 flows are named 'Sync'", "Give the flow id"),
        ("plug-in step", "stepid", "2 plug-in steps are named 'Sync'", "Give the step id"),
    ],
)
def test_a_shared_name_lists_each_environment_and_id(
    kind: str, column: str, message: str, hint: str
) -> None:
    matches = pd.DataFrame({"environment_id": ["e1", "e2"], column: ["a", "b"]})
    with pytest.raises(UsageError) as raised:
        one_match(matches, EVIDENCE, kind, column, "Sync")
    assert str(raised.value) == f"{message} (Contoso Dev: a; Contoso Prod: b)"
    assert raised.value.hint == f"{hint}, or add --env with the environment's name."
