"""`auditor config`: the resolved configuration and where each value came from."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import SET_UP, JsonOpt
from auditor.cli.output import print_json
from auditor.cli.render_lists import print_config
from auditor.settings import Credentials, Settings

commands = typer.Typer()


@commands.command("config", rich_help_panel=SET_UP)
@handles_errors
def show_config(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """Show the resolved configuration and where each value came from (secrets hidden)."""
    settings = cli_context(ctx).settings()
    rows, secrets = setting_rows(settings), secret_states(settings.credentials)
    if as_json:
        print_json({"settings": rows, "secrets": secrets})
    else:
        print_config(rows, secrets, settings.config_file)


def setting_rows(settings: Settings) -> list[dict[str, Any]]:
    """Every setting but the secrets, as JSON values, with where it came from."""
    rows = []
    for item in fields(Settings):
        if item.name in ("sources", "credentials"):
            continue
        value = getattr(settings, item.name)
        if item.name == "environments":
            value = [vars(env) for env in value]
        rows.append(
            {
                "key": item.name,
                "value": value
                if isinstance(value, int | float | bool | list | dict)
                else (None if value is None else str(value)),
                "source": settings.sources.get(item.name, "default"),
            }
        )
    return rows


def secret_states(creds: Credentials) -> dict[str, str]:
    """Whether each secret is set, never its value."""
    return {
        "AZURE_CLIENT_SECRET": "set" if creds.client_secret else "not set",
        "AZURE_CLIENT_CERTIFICATE_PATH": str(creds.certificate_path or "not set"),
        "AZURE_CLIENT_CERTIFICATE_PASSWORD": "set" if creds.certificate_password else "not set",
    }
