"""`auditor collect` and `auditor environments`: read the tenant into the store."""

from __future__ import annotations

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import (
    SCAN,
    ActionSampleOpt,
    AllEnvironmentsOpt,
    ConcurrencyOpt,
    EnvironmentsOpt,
    FreshOpt,
    JsonOpt,
    ResumeOpt,
    SinceOpt,
    StoreOpt,
)
from auditor.cli.output import print_json
from auditor.cli.pipeline import collect_options, run_collect
from auditor.cli.render_lists import print_environments

commands = typer.Typer()


@commands.command(rich_help_panel=SCAN)
@handles_errors
def collect(
    ctx: typer.Context,
    environment: EnvironmentsOpt = None,
    all_environments: AllEnvironmentsOpt = False,
    since: SinceOpt = None,
    action_sample: ActionSampleOpt = 50,
    resume: ResumeOpt = True,
    fresh: FreshOpt = False,
    store: StoreOpt = None,
    max_concurrency: ConcurrencyOpt = None,
) -> None:
    """Collect flows, runs, plug-in steps, trace logs and system jobs into the store."""
    state = cli_context(ctx)
    settings = state.settings(
        store_path=store, max_concurrency=max_concurrency, all_environments=all_environments or None
    )
    options = collect_options(environment, since, action_sample, fresh or not resume)
    run_collect(settings, options, quiet=state.quiet)


@commands.command("environments", rich_help_panel=SCAN)
@handles_errors
def list_environments(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List the environments a scan would collect, with their Dataverse URLs."""
    import asyncio

    from auditor import collect as collecting

    found = asyncio.run(collecting.list_environments(cli_context(ctx).settings()))
    if as_json:
        print_json([vars(e) for e in found])
    else:
        print_environments(found)
