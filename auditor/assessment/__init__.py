"""Findings -> the five verdicts, per environment and for the scope (docs/how-a-scan-runs.md,
"Assess").

Three parts: the question and its answers, data loaded from `reports/assessment.toml`
(`spec`); the mutelist, reviewed exceptions read from a file that may come with a pull
request (`mutelist`); and the roll-up of findings into verdicts (`verdicts`). The names the
reports, `lint`, `explore` and the commands use are re-exported here, the package's surface.
"""

from __future__ import annotations

from auditor.assessment.mutelist import MuteEntry, load_mutelist
from auditor.assessment.spec import Answer, Assessment, assessment, load_assessment
from auditor.assessment.verdicts import (
    VERDICTS,
    AssessmentResult,
    Judged,
    Verdict,
    assess,
    fails_at,
    relevant,
)

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
