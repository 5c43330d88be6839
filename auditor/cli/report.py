"""`auditor report`: the reports of an analysed scan, from the store alone."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import ANALYSE, FailOnOpt, FormatOpt, MutelistOpt, OutOpt, StoreOpt
from auditor.cli.pipeline import report_options, run_report

commands = typer.Typer()


@commands.command(rich_help_panel=ANALYSE)
@handles_errors
def report(
    ctx: typer.Context,
    scan: Annotated[str, typer.Option(help="Scan number, or latest.")] = "latest",
    out_dir: OutOpt = Path("auditor-report"),
    formats: FormatOpt = "all",
    mutelist: MutelistOpt = None,
    fail_on: FailOnOpt = None,
    store: StoreOpt = None,
) -> None:
    """Write the reports of an analysed scan: md, html, json, sarif and evidence CSVs."""
    state = cli_context(ctx)
    settings = state.settings(store_path=store)
    run_report(
        settings, scan, report_options(out_dir, formats, mutelist, fail_on), quiet=state.quiet
    )
