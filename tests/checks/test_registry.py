"""The check catalog holds together: every check module is registered under its own name,
once, and decides at least one known answer.

Adding a check means: the module in auditor/checks/, its line in `_MODULES` (in report
order), its id in the `checks` lists of reports/assessment.toml. These tests say which one
was forgotten."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

import pytest

from auditor import checks
from auditor.checks import CHECKS, REGISTRY, answer_checks
from auditor.checks.base import ANSWERS
from auditor.errors import DefinitionError
from auditor.resources import data_dir

PACKAGE = Path(checks.__file__).resolve().parent


def check_modules() -> list[str]:
    """The modules of auditor/checks/ that define both `META` and `run`, read from source
    (an unregistered module is imported by nothing)."""
    found = []
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)} | {
            t.id
            for n in tree.body
            if isinstance(n, ast.Assign | ast.AnnAssign)
            for t in (n.targets if isinstance(n, ast.Assign) else [n.target])
            if isinstance(t, ast.Name)
        }
        if {"META", "run"} <= names:
            found.append(path.stem)
    return found


def test_every_check_module_is_registered() -> None:
    registered = {m.__name__.rsplit(".", 1)[-1] for m in checks._MODULES}
    missing = sorted(set(check_modules()) - registered)
    assert not missing, (
        f"check module(s) not in _MODULES of auditor/checks/__init__.py: {', '.join(missing)}"
    )


def test_each_id_is_its_module_name() -> None:
    expected = {m: m.__name__.rsplit(".", 1)[-1].replace("_", "-") for m in checks._MODULES}
    wrong = [
        f"{m.__name__}: META.id is {m.META.id!r}, expected {name!r}"
        for m, name in expected.items()
        if m.META.id != name
    ]
    assert not wrong, "\n".join(wrong)


def test_ids_are_unique() -> None:
    ids = [c.id for c in REGISTRY]
    assert len(set(ids)) == len(ids), sorted({i for i in ids if ids.count(i) > 1})


def test_every_check_decides_a_known_answer() -> None:
    unmapped = [c.id for c in REGISTRY if not c.meta.answers]
    unknown = [f"{c.id}: {a}" for c in REGISTRY for a in c.meta.answers if a not in ANSWERS]
    assert not unmapped, f"check(s) mapped to no answer: {', '.join(unmapped)}"
    assert not unknown, f"check(s) mapped to an unknown answer: {', '.join(unknown)}"


def test_the_registry_is_in_report_order() -> None:
    """`_MODULES` order is the order of `checks list`, of the findings and of SARIF rules."""
    assert list(CHECKS) == [m.META.id for m in checks._MODULES]
    assert [c.id for c in REGISTRY] == [m.META.id for m in checks._MODULES]


def test_the_answers_of_a_check_are_the_assessment_mapping() -> None:
    """META.answers is derived from reports/assessment.toml, in the order of the answers."""
    path = data_dir("reports") / "assessment.toml"
    mapping = answer_checks(tomllib.loads(path.read_text(encoding="utf-8")), str(path))
    for check in REGISTRY:
        assert check.meta.answers == tuple(a for a, ids in mapping if check.id in ids)


def document(**changes: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The packaged assessment's answers, with the `checks` lists of some replaced."""
    path = data_dir("reports") / "assessment.toml"
    answers = tomllib.loads(path.read_text(encoding="utf-8"))["answer"]
    return {"answer": [{**a, "checks": changes.get(a["id"], a["checks"])} for a in answers]}


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        (
            {"return-results": ["flow-invoked-no-response", "flow-no-such-check"]},
            "answer 'return-results' maps unknown check\\(s\\): flow-no-such-check",
        ),
        ({"decomposed-steps": []}, "answer 'decomposed-steps' maps no check"),
        (
            {"sufficient-performance": ["plugin-sync-slow"]},
            "check\\(s\\) mapped to no answer: near-platform-timeout, flow-action-slow",
        ),
    ],
)
def test_a_wrong_mapping_is_a_definition_error_naming_it(
    changed: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(DefinitionError, match=message):
        answer_checks(document(**changed), "assessment.toml")


def test_an_unknown_answer_is_a_definition_error_naming_it() -> None:
    doc = document()
    doc["answer"].append({"id": "fast-enough", "checks": ["plugin-sync-slow"]})
    with pytest.raises(DefinitionError, match="answer\\[5\\] 'fast-enough' is not an answer"):
        answer_checks(doc, "assessment.toml")
