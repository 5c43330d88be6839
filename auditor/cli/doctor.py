"""`auditor doctor`: sign-in and every permission a scan needs, checked before the first scan."""

from __future__ import annotations

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import SET_UP, AllEnvironmentsOpt, EnvironmentsOpt, JsonOpt
from auditor.cli.output import out, print_json

commands = typer.Typer()


@commands.command(rich_help_panel=SET_UP)
@handles_errors
def doctor(
    ctx: typer.Context,
    environment: EnvironmentsOpt = None,
    all_environments: AllEnvironmentsOpt = False,
    as_json: JsonOpt = False,
) -> None:
    """Check sign-in and every permission a scan needs: one cheap request per API and query.

    Run it before the first scan. Exit 0 when a scan has everything it needs (WARN and OFF
    rows do not fail it), 3 when something is MISSING. It never opens the store.
    """
    from auditor import doctor as preflight

    settings = cli_context(ctx).settings(all_environments=all_environments or None)
    found = preflight.run(settings, environment or ())
    if as_json:
        print_json(found.as_json())
    else:
        out.print(preflight.render(found))
    if not found.ok:
        raise typer.Exit(3)
