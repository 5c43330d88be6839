"""`auditor lint PATH...`: the static checks over exported solutions, for pull requests and
build pipelines (no tenant, no network).

Without `--out`, the report in the one format asked for (SARIF by default) goes to stdout,
for a pipeline to upload; the summary goes to stderr, so stdout stays a clean document.
With `--out`, the formats are written to that folder as `auditor report` writes them.
When the files spend the reading budget of a run (see `auditor.lint.inputs`), one `warning:`
line on stderr says where reading stopped; the report is partial and says so too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

PathsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Unpacked solution folders, solution .zip files, legacy flow packages or flow "
        "definition .json files.",
        metavar="PATH",
        show_default=False,
    ),
]
OutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="Folder for the reports; without it, one format goes to stdout."
    ),
]
FormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="md,html,json,sarif (default: sarif to stdout; all four with --out).",
    ),
]
FailOnOpt = Annotated[
    str | None,
    typer.Option(help="Exit 1 when a verdict is at or above: do-not-check or needs-review."),
]
MutelistOpt = Annotated[
    Path | None,
    typer.Option(help="Findings to suppress: TOML or YAML entries (as for `auditor report`)."),
]
LINT_FORMATS = ("md", "html", "json", "sarif")


def register(app: typer.Typer) -> None:
    """Adds `lint` to the `auditor` app (imported here: auditor.cli imports this)."""
    from auditor.cli import ANALYSE, handles_errors

    app.command("lint", rich_help_panel=ANALYSE)(handles_errors(lint_command))


def lint_command(
    paths: PathsArg,
    out_dir: OutOpt = None,
    formats: FormatOpt = None,
    fail_on: FailOnOpt = None,
    mutelist: MutelistOpt = None,
) -> None:
    """Audit exported solutions offline: flow triggers, responses, error handling, retries,
    plug-in step filters; the parts that need telemetry are needs-review."""
    from datetime import UTC, datetime

    from auditor.assessment import fails_at, load_mutelist
    from auditor.cli import _check_fail_on, _state, err
    from auditor.errors import UsageError
    from auditor.lint.run import lint
    from auditor.report import render_format, write_reports
    from auditor.terminal import markup

    _check_fail_on(fail_on)
    chosen = _formats(formats, to_stdout=out_dir is None)
    entries = load_mutelist(mutelist, today=datetime.now(UTC).date()) if mutelist else []
    if out_dir is None and len(chosen) != 1:
        raise UsageError(
            "without --out, lint writes one format to stdout",
            hint="Give one --format (md, html, json or sarif), or --out DIR for several.",
        )
    result = lint(paths, _state.settings(), mutelist=entries)
    model = result.model
    if out_dir is None:
        typer.echo(render_format(model, chosen[0]), nl=False)
    else:
        written = write_reports(model, out_dir, chosen)
        if not _state.quiet:
            err.print("Reports: " + ", ".join(markup(p) for p in written), soft_wrap=True)
    if not _state.quiet:
        # Every finding, also those the report left out (at most 1,000 per check and status).
        totals = model["finding_counts"]
        counts = {s: sum(c["findings"] for c in totals if c["status"] == s) for s in _STATUSES}
        inputs = result.inputs
        err.print(
            f"Linted {inputs.files:,} file(s): {len(inputs.flows):,} flow(s), "
            f"{len(inputs.steps):,} plug-in step(s), {len(inputs.workflows):,} classic "
            f"workflow(s) in {result.seconds:.2f}s; "
            + ", ".join(f"{n:,} {s}" for s, n in counts.items())
            + f". Verdict: {model['verdict']}.",
            soft_wrap=True,
        )
    if result.inputs.unread:  # one line, even with --quiet: the report is not complete
        err.print(f"[yellow]warning:[/] {markup(result.inputs.unread)}", soft_wrap=True)
    if fail_on and fails_at(model["verdict"], fail_on):
        raise typer.Exit(1)


_STATUSES = ("fail", "error", "not-assessed", "pass")


def _formats(text: str | None, *, to_stdout: bool) -> tuple[str, ...]:
    """The formats asked for: sarif alone by default to stdout, all four with --out."""
    from auditor.errors import UsageError
    from auditor.report import parse_formats

    if text is None:
        return ("sarif",) if to_stdout else LINT_FORMATS
    chosen = LINT_FORMATS if text.strip().lower() == "all" else parse_formats(text)
    extra = [f for f in chosen if f not in LINT_FORMATS]
    if extra:
        raise UsageError(
            f"lint does not write {', '.join(extra)}",
            hint="--format takes md, html, json or sarif (lint has no evidence rows for CSV).",
        )
    return chosen
