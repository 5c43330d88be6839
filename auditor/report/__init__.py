"""The report writers: one model (`model.build_report`), five formats (design.md section 8).

`write_reports` renders the chosen formats into an output folder: `report.md`,
`report.html`, `report.json`, `report.sarif` and `evidence/*.csv`. Each renderer escapes
tenant text for its own format; the model holds it raw.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from auditor.errors import UsageError

FORMATS = ("md", "html", "json", "sarif", "csv")


def parse_formats(text: str) -> tuple[str, ...]:
    """`md,html` -> ("md", "html"); "all" or empty = every format; unknown ones refused."""
    wanted = [part.strip().lower() for part in text.split(",") if part.strip()]
    if not wanted or wanted == ["all"]:
        return FORMATS
    unknown = [w for w in wanted if w not in FORMATS]
    if unknown:
        raise UsageError(
            f"unknown report format(s): {', '.join(unknown)}",
            hint=f"--format takes a comma-separated list of {', '.join(FORMATS)}.",
        )
    return tuple(f for f in FORMATS if f in wanted)


def render_json(model: dict[str, Any]) -> str:
    """`report.json`: the model itself (schema: reports/report.schema.json)."""
    return json.dumps(model, indent=2, ensure_ascii=False, allow_nan=False) + "\n"


FILE_NAMES = {
    "md": "report.md",
    "html": "report.html",
    "json": "report.json",
    "sarif": "report.sarif",
}


def render_format(model: dict[str, Any], fmt: str) -> str:
    """One report (md, html, json or sarif) as text."""
    from auditor.report import html, markdown, sarif

    renderers: dict[str, Callable[[dict[str, Any]], str]] = {
        "md": markdown.render,
        "html": html.render,
        "json": render_json,
        "sarif": sarif.render,
    }
    return renderers[fmt](model)


def write_reports(model: dict[str, Any], out: Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Writes each format into `out` (created); returns the files written."""
    from auditor.report import csv_evidence

    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for fmt in formats:
        if fmt == "csv":
            written.extend(csv_evidence.write(model, out))
            continue
        path = out / FILE_NAMES[fmt]
        path.write_text(render_format(model, fmt), encoding="utf-8")
        written.append(path)
    return written


__all__ = ["FORMATS", "parse_formats", "render_format", "render_json", "write_reports"]
