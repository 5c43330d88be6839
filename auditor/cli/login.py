"""`auditor login`: a device-code sign-in whose token cache later scans reuse."""

from __future__ import annotations

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import SET_UP
from auditor.cli.output import err, out

commands = typer.Typer()


@commands.command(rich_help_panel=SET_UP)
@handles_errors
def login(ctx: typer.Context) -> None:
    """Sign in with a device code and keep the token cache (owner-only file) for later scans."""
    from auditor.auth import device_code_login

    settings = cli_context(ctx).settings()
    who = device_code_login(settings, show=lambda message: err.print(message))
    out.print(
        f"Signed in as {who}. Token cache: {settings.token_cache_path} (owner read/write only)."
    )
