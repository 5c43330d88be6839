"""`auditor trace`, `history`, `diff` and `export`: investigation over time, from the store.

Thin, as every command: options -> Settings -> `auditor.explore` -> a rich table for people
or `--json` for machines. They open the store read-only, so they work offline and beside a
running scan's copy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import INVESTIGATE, JsonOpt, OneEnvironmentOpt, StoreOpt
from auditor.cli.output import out, print_json
from auditor.cli.render_history import print_export, render_diff, render_history, render_trace

if TYPE_CHECKING:
    from auditor.store import Store

commands = typer.Typer()


def open_store(ctx: typer.Context, store: Path | None, files_in: Path | None = None) -> Store:
    """The store, read-only; DuckDB may write files only into `files_in` (an export)."""
    from auditor.analyze import open_existing

    settings = cli_context(ctx).settings(store_path=store)
    return open_existing(settings, read_only=True, files_in=files_in)


@commands.command("trace", rich_help_panel=INVESTIGATE)
@handles_errors
def trace_command(
    ctx: typer.Context,
    correlation_id: Annotated[
        str,
        typer.Argument(
            help="A correlation id (plug-in trace, system job) or a flow run's client tracking id."
        ),
    ],
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Everything the store holds for one correlation id: plug-in chain, system jobs, flow runs."""
    from auditor.explore.timeline import trace

    with open_store(ctx, store) as opened:
        found = trace(opened, correlation_id)
    if as_json:
        print_json(found.as_dict())
    else:
        render_trace(out, found)


@commands.command("history", rich_help_panel=INVESTIGATE)
@handles_errors
def history_command(
    ctx: typer.Context,
    env: OneEnvironmentOpt = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Per analysed scan: verdicts, failure rate, unnecessary runs, p95s and their trends."""
    from auditor.explore.history import history

    with open_store(ctx, store) as opened:
        found = history(opened, env)
    if as_json:
        print_json(found.as_dict())
    else:
        render_history(out, found)


@commands.command("diff", rich_help_panel=INVESTIGATE)
@handles_errors
def diff_command(
    ctx: typer.Context,
    scan_a: Annotated[str, typer.Argument(help="The earlier scan: a number, or previous.")],
    scan_b: Annotated[str, typer.Argument(help="The later scan: a number, or latest.")],
    limit: Annotated[int, typer.Option(min=1, help="Findings shown per section.")] = 20,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Findings that appeared, disappeared or changed from one analysed scan to another."""
    from auditor.explore.diff import diff, parse_scan

    with open_store(ctx, store) as opened:
        changes = diff(opened, parse_scan(opened, scan_a), parse_scan(opened, scan_b))
    if as_json:
        print_json(changes.as_dict())
    else:
        render_diff(out, changes, limit)


@commands.command("export", rich_help_panel=INVESTIGATE)
@handles_errors
def export_command(
    ctx: typer.Context,
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="parquet (typed; Power BI, Fabric, Spark) or csv.")
    ] = "parquet",
    out_dir: Annotated[
        Path, typer.Option("--out", "-o", help="Folder the files are written to.")
    ] = Path("auditor-export"),
    table: Annotated[
        list[str] | None,
        typer.Option("--table", "-t", help="Only this table (repeatable); default: all."),
    ] = None,
    store: StoreOpt = None,
) -> None:
    """Write the store's tables, one file each, for Power BI, Fabric or Spark."""
    from auditor.explore.export import export

    with open_store(ctx, store, files_in=out_dir) as opened:
        written = export(opened, out_dir, fmt.strip().lower(), table or ())
    print_export(written, fmt, out_dir)
