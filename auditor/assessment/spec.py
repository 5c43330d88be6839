"""The question and its answers, loaded from `reports/assessment.toml`: which checks decide
each answer, and which severities count as a violation. Data, so kept apart from the roll-up
that reads it (`auditor.assessment.verdicts`)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from auditor.checks import answer_checks
from auditor.errors import DefinitionError
from auditor.resources import data_dir


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
