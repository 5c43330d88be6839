"""`auditor scan`: collect, analyse and report in one go, as a scheduler runs it."""

from __future__ import annotations

from pathlib import Path

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import (
    SCAN,
    ActionSampleOpt,
    AllEnvironmentsOpt,
    ConcurrencyOpt,
    EnvironmentsOpt,
    FailOnOpt,
    FormatOpt,
    FreshOpt,
    MutelistOpt,
    OutOpt,
    SinceOpt,
    StoreOpt,
    WindowOpt,
)
from auditor.cli.pipeline import (
    collect_options,
    report_options,
    run_analyze,
    run_collect,
    run_report,
)

commands = typer.Typer()


@commands.command(rich_help_panel=SCAN)
@handles_errors
def scan(
    ctx: typer.Context,
    environment: EnvironmentsOpt = None,
    all_environments: AllEnvironmentsOpt = False,
    since: SinceOpt = None,
    action_sample: ActionSampleOpt = 50,
    fresh: FreshOpt = False,
    store: StoreOpt = None,
    max_concurrency: ConcurrencyOpt = None,
    window: WindowOpt = "7d",
    out_dir: OutOpt = Path("auditor-report"),
    formats: FormatOpt = "all",
    mutelist: MutelistOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Collect, analyse and report in one go: the scheduled tenant health scan."""
    wanted = report_options(out_dir, formats, mutelist, fail_on)
    state = cli_context(ctx)
    settings = state.settings(
        store_path=store, max_concurrency=max_concurrency, all_environments=all_environments or None
    )
    options = collect_options(environment, since, action_sample, fresh)
    run_collect(settings, options, quiet=state.quiet)
    run_analyze(settings, window, environment, quiet=state.quiet)
    run_report(settings, "latest", wanted, quiet=state.quiet)
