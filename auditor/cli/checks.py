"""`auditor checks list`: the check catalog with the thresholds this configuration sets."""

from __future__ import annotations

from typing import Any

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import ANALYSE, JsonOpt
from auditor.cli.output import print_json
from auditor.cli.render_lists import print_checks
from auditor.settings import Settings

checks_app = typer.Typer(help="The check catalog.", no_args_is_help=True)
commands = typer.Typer()
commands.add_typer(checks_app, name="checks", rich_help_panel=ANALYSE)


@checks_app.command("list")
@handles_errors
def checks_list(ctx: typer.Context, as_json: JsonOpt = False) -> None:
    """List every check with its id, answers, severity and thresholds (with this config)."""
    rows = catalog(cli_context(ctx).settings())
    if as_json:
        print_json(rows)
    else:
        print_checks(rows)


def catalog(settings: Settings) -> list[dict[str, Any]]:
    """Every check's metadata, its thresholds as `settings` sets them (validated first)."""
    from auditor.checks import REGISTRY, limits_for, validate_thresholds

    validate_thresholds(settings)
    rows: list[dict[str, Any]] = []
    for check in REGISTRY:
        meta = check.meta
        limits = limits_for(meta, settings)
        rows.append(
            {
                "id": meta.id,
                "title": meta.title,
                "answers": list(meta.answers),
                "severity": meta.severity,
                "coverage": meta.coverage,
                "needs": list(meta.needs),
                "thresholds": [
                    {
                        "name": t.name,
                        "value": limits[t.name],
                        "default": t.default,
                        "unit": t.unit,
                        "description": t.description,
                    }
                    for t in meta.thresholds
                ],
                "learn_url": meta.learn_url,
            }
        )
    return rows
