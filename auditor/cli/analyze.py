"""`auditor analyze`: every check on the store, offline; the findings stored with the scan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import ANALYSE, EnvironmentsOpt, StoreOpt, WindowOpt
from auditor.cli.pipeline import run_analyze

commands = typer.Typer()


@commands.command(rich_help_panel=ANALYSE)
@handles_errors
def analyze(
    ctx: typer.Context,
    window: WindowOpt = "7d",
    environment: EnvironmentsOpt = None,
    store: StoreOpt = None,
    worst: Annotated[int, typer.Option(help="Failing resources named per check.")] = 3,
    engine: Annotated[
        str,
        typer.Option(
            help="What reduces the run and trace rows: duckdb (embedded) or spark (PySpark:"
            " the notebook's session, or a local one)."
        ),
    ] = "duckdb",
    lake: Annotated[
        Path | None,
        typer.Option(
            help="A folder of Dataverse tables as Link to Fabric or Synapse Link export them"
            " (flowrun, plugintracelog; Delta or Parquet), or an `auditor export` folder:"
            " its rows are read instead of the store's.",
            file_okay=False,
        ),
    ] = None,
) -> None:
    """Run every check on the store (offline) and store the findings with the latest scan."""
    state = cli_context(ctx)
    settings = state.settings(store_path=store)
    run_analyze(
        settings, window, environment, quiet=state.quiet, worst=worst, engine=engine, lake=lake
    )
