"""The report writers: one model (`model.build_report`), five formats (docs/how-a-scan-runs.md,
"Report").

`write_reports` renders the chosen formats into an output folder: `report.md`,
`report.html`, `report.json`, `report.sarif` and `evidence/*.csv`. Each renderer escapes
tenant text for its own format; the model holds it raw.

The files hold tenant telemetry and `--out` may be a folder of a pull request's checkout, so
they are written through `auditor.files`: owner-only, never through a link, and all or
nothing. Every file is written in full to a temporary name first and the set is renamed into
place only once all of them are complete, so a failure (a full disk, a link where the
evidence folder should be) leaves the previous reports as they were, and a reader never sees
new reports beside old ones.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

from auditor.errors import UsageError
from auditor.files import atomic_open, private_dir, write_error

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
    """Writes each format into `out` (created owner-only), all or nothing; returns the files
    written. Everything is rendered before the first file is opened."""
    from auditor.report import csv_evidence

    texts = {fmt: render_format(model, fmt) for fmt in formats if fmt != "csv"}
    evidence = csv_evidence.plan(model) if "csv" in formats else []
    out = Path(out)
    private_dir(out)
    folder = private_dir(out / "evidence") if evidence else out
    written: list[Path] = []
    # Each temporary is renamed into place when the stack closes, once every file is
    # complete; an error on the way discards them all and leaves the files as they were.
    with contextlib.ExitStack() as stack:
        for fmt in formats:
            if fmt != "csv":
                path = out / FILE_NAMES[fmt]
                with _complete(stack, path) as handle:
                    handle.write(texts[fmt])
                written.append(path)
                continue
            for name, header, rows in evidence:
                path = folder / name
                with _complete(stack, path, newline="") as handle:
                    csv_evidence.write_rows(handle, header, rows)
                written.append(path)
    return written


@contextlib.contextmanager
def _complete(
    stack: contextlib.ExitStack[bool | None], path: Path, newline: str | None = None
) -> Iterator[IO[str]]:
    """A handle on the temporary of `path`, flushed and synced when the block ends, so a full
    disk shows here and not while the set is renamed; the rename waits for `stack`."""
    handle = stack.enter_context(atomic_open(path, newline=newline))
    try:
        yield handle
        handle.flush()
        os.fsync(handle.fileno())
    except OSError as exc:
        raise write_error(path, exc) from exc


__all__ = ["FORMATS", "parse_formats", "render_format", "render_json", "write_reports"]
