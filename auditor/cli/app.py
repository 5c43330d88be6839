"""The `auditor` app: the global options and every command group, wired in one place.

This is the only module that knows every command module; each of those imports from
`context`, `options`, `output`, `exits`, `pipeline` and the renderers only, never from here
or from another command module, so the CLI has one direction.
"""

from __future__ import annotations

import signal

import typer

from auditor.cli import (
    analyze,
    checks,
    collect,
    config,
    demo,
    doctor,
    explore_flows,
    explore_history,
    lint,
    login,
    report,
    scan,
    sim,
)
from auditor.cli.context import CliContext
from auditor.cli.exits import terminate
from auditor.cli.global_options import NOTE, GlobalOptionsGroup, note_in_help
from auditor.cli.options import ConfigOpt, DebugOpt, QuietOpt, VerboseOpt, VersionOpt
from auditor.logs import configure_logging

app = typer.Typer(
    name="auditor",
    cls=GlobalOptionsGroup,
    help="Audit the background jobs of a Power Platform tenant: cloud flows, Dataverse "
    "plug-ins and system jobs, against the Well-Architected question "
    '"How do you implement background jobs?".',
    epilog=NOTE,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)

# The order here is the order of `auditor --help` within each panel.
for module in (
    login,
    config,
    collect,
    doctor,
    analyze,
    report,
    scan,
    demo,
    explore_history,
    lint,
    sim,
    checks,
    explore_flows,
):
    note_in_help(module.commands)
    app.add_typer(module.commands)


@app.callback()
def options(
    ctx: typer.Context,
    config: ConfigOpt = None,
    verbose: VerboseOpt = 0,
    quiet: QuietOpt = False,
    debug: DebugOpt = False,
    version: VersionOpt = False,
) -> None:
    """Options shared by every command."""
    ctx.obj = CliContext(config=config, debug=debug, quiet=quiet)
    configure_logging(verbose + (2 if debug else 0), quiet=quiet)


def main() -> None:
    """Entry point of the `auditor` console script."""
    signal.signal(signal.SIGTERM, terminate)
    app()
