"""`auditor lint PATH...`: the static checks over exported solutions, for pull requests and
build pipelines (no tenant, no network).

Without `--out`, the report in the one format asked for (SARIF by default) goes to stdout,
for a pipeline to upload; the summary goes to stderr, so stdout stays a clean document.
With `--out`, the formats are written to that folder as `auditor report` writes them.
When the files spend the reading budget of a run (see `auditor.lint.limits`), one `warning:`
line on stderr says where reading stopped; the report is partial and says so too.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import ANALYSE, FailOnOpt, check_fail_on
from auditor.cli.output import err
from auditor.cli.render_runs import print_lint_summary
from auditor.errors import UsageError
from auditor.terminal import markup

if TYPE_CHECKING:
    from auditor.report.document import Report

PathsArg = Annotated[
    list[Path],
    typer.Argument(
        help="Unpacked solution folders, solution .zip files, legacy flow packages or flow "
        "definition .json files.",
        metavar="PATH",
        show_default=False,
    ),
]
LintOutOpt = Annotated[
    Path | None,
    typer.Option(
        "--out", "-o", help="Folder for the reports; without it, one format goes to stdout."
    ),
]
LintFormatOpt = Annotated[
    str | None,
    typer.Option(
        "--format",
        "-f",
        help="md,html,json,sarif (default: sarif to stdout; all four with --out).",
    ),
]
LintMutelistOpt = Annotated[
    Path | None,
    typer.Option(help="Findings to suppress: TOML or YAML entries (as for `auditor report`)."),
]
LINT_FORMATS = ("md", "html", "json", "sarif")

commands = typer.Typer()


@commands.command("lint", rich_help_panel=ANALYSE)
@handles_errors
def lint_command(
    ctx: typer.Context,
    paths: PathsArg,
    out_dir: LintOutOpt = None,
    formats: LintFormatOpt = None,
    fail_on: FailOnOpt = None,
    mutelist: LintMutelistOpt = None,
) -> None:
    """Audit exported solutions offline: flow triggers, responses, error handling, retries,
    plug-in step filters; the parts that need telemetry are needs-review."""
    from auditor.assessment import fails_at
    from auditor.lint.run import lint

    check_fail_on(fail_on)
    chosen = lint_formats(formats, to_stdout=out_dir is None)
    state = cli_context(ctx)
    result = lint(paths, state.settings(), mutelist=muted(mutelist))
    write_lint_reports(result.model, out_dir, chosen, quiet=state.quiet)
    if not state.quiet:
        print_lint_summary(result)
    if result.inputs.unread:  # one line, even with --quiet: the report is not complete
        err.print(f"[yellow]warning:[/] {markup(result.inputs.unread)}", soft_wrap=True)
    if fail_on and fails_at(result.model.verdict, fail_on):
        raise typer.Exit(1)


def lint_formats(text: str | None, *, to_stdout: bool) -> tuple[str, ...]:
    """The formats asked for: sarif alone by default to stdout, all four with --out; one
    format only to stdout."""
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
    if to_stdout and len(chosen) != 1:
        raise UsageError(
            "without --out, lint writes one format to stdout",
            hint="Give one --format (md, html, json or sarif), or --out DIR for several.",
        )
    return chosen


def muted(mutelist: Path | None) -> list[Any]:
    """The mutelist's entries still in force today (none without --mutelist)."""
    from auditor.assessment import load_mutelist

    return load_mutelist(mutelist, today=datetime.now(UTC).date()) if mutelist else []


def write_lint_reports(
    model: Report, out_dir: Path | None, chosen: tuple[str, ...], *, quiet: bool
) -> None:
    """One format to stdout, or each format to a file in `out_dir` (listed on stderr)."""
    from auditor.report import render_format, write_reports

    if out_dir is None:
        typer.echo(render_format(model, chosen[0]), nl=False)
        return
    written = write_reports(model, out_dir, chosen)
    if not quiet:
        err.print("Reports: " + ", ".join(markup(p) for p in written), soft_wrap=True)
