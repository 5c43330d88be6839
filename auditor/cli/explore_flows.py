"""`auditor flows top`, `flow show`, `plugins top`, `plugin show`: the investigation commands.

Thin, as every command: options -> Settings -> `auditor.explore` -> a rich table for people
or `--json` for machines. They read the store only, so they work offline on a copy of a
scheduled scan's store.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import (
    INVESTIGATE,
    JsonOpt,
    OneEnvironmentOpt,
    StoreOpt,
    WindowOpt,
    duration,
)
from auditor.cli.output import out, print_json
from auditor.cli.render_explore import window_title
from auditor.cli.render_flows import render_flow, render_flows_top
from auditor.cli.render_plugins import render_plugin, render_plugins_top

if TYPE_CHECKING:
    import pandas as pd

    from auditor.checks.evidence import Evidence

LimitOpt = Annotated[int, typer.Option(min=1, help="Rows to show.")]

flows_app = typer.Typer(help="Rank cloud flows by what they cost.", no_args_is_help=True)
flow_app = typer.Typer(help="One cloud flow in detail.", no_args_is_help=True)
plugins_app = typer.Typer(help="Rank plug-in steps by what they cost.", no_args_is_help=True)
plugin_app = typer.Typer(help="One plug-in step in detail.", no_args_is_help=True)
commands = typer.Typer()
commands.add_typer(flows_app, name="flows", rich_help_panel=INVESTIGATE)
commands.add_typer(flow_app, name="flow", rich_help_panel=INVESTIGATE)
commands.add_typer(plugins_app, name="plugins", rich_help_panel=INVESTIGATE)
commands.add_typer(plugin_app, name="plugin", rich_help_panel=INVESTIGATE)


def load(
    ctx: typer.Context, store: Path | None, window: str, env: str | None
) -> tuple[Evidence, pd.DataFrame]:
    """The stored findings (checked first: it is cheap and names a missing analysis) and the
    evidence of the latest scan's window, for one environment when `env` is given."""
    from auditor.explore.common import load_evidence, stored_findings

    settings = cli_context(ctx).settings(store_path=store)
    length = duration(window, "--window")
    findings = stored_findings(settings)
    evidence = load_evidence(settings, window=length, environments=[env] if env else ())
    return evidence, findings


def emit(as_json: bool, data: Any, render: Callable[[], None]) -> None:
    """`data` as JSON for machines, or the table `render` prints for people."""
    if as_json:
        print_json(data)
    else:
        render()


@flows_app.command("top")
@handles_errors
def flows_top(
    ctx: typer.Context,
    by: Annotated[str, typer.Option(help="noise, failures, retries, duration or runs.")] = "noise",
    env: OneEnvironmentOpt = None,
    limit: LimitOpt = 20,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    window: WindowOpt = "7d",
) -> None:
    """The flows that run most for nothing, fail, retry or take longest, with their
    measured values and the checks that fail for each."""
    from auditor.explore.common import check_by
    from auditor.explore.flows import FLOW_RANKINGS
    from auditor.explore.flows import flows_top as top

    check_by(by, FLOW_RANKINGS, "auditor flows top")
    evidence, findings = load(ctx, store, window, env)
    rows = top(evidence, findings, by, limit=limit)
    emit(as_json, rows, lambda: render_flows_top(out, rows, by, window_title(evidence)))


@flow_app.command("show")
@handles_errors
def flow_show(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The flow's display name or id.")],
    env: OneEnvironmentOpt = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    window: WindowOpt = "7d",
) -> None:
    """One flow: trigger and filters, actions, runs per day, failures, slow and retried
    actions, sampled unnecessary runs, findings and what to change."""
    from auditor.explore.flow_detail import flow_show as show

    evidence, findings = load(ctx, store, window, env)
    data = show(evidence, findings, name)
    emit(as_json, data, lambda: render_flow(out, data))


@plugins_app.command("top")
@handles_errors
def plugins_top(
    ctx: typer.Context,
    by: Annotated[
        str, typer.Option(help="executions, failures, duration or unfiltered.")
    ] = "executions",
    env: OneEnvironmentOpt = None,
    limit: LimitOpt = 20,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    window: WindowOpt = "7d",
) -> None:
    """The plug-in steps that run most, fail, take longest, or run on every update of
    their table (unfiltered), with their system jobs and failing checks."""
    from auditor.explore.common import check_by
    from auditor.explore.plugins import PLUGIN_RANKINGS
    from auditor.explore.plugins import plugins_top as top

    check_by(by, PLUGIN_RANKINGS, "auditor plugins top")
    evidence, findings = load(ctx, store, window, env)
    rows = top(evidence, findings, by, limit=limit)
    emit(as_json, rows, lambda: render_plugins_top(out, rows, by, window_title(evidence)))


@plugin_app.command("show")
@handles_errors
def plugin_show(
    ctx: typer.Context,
    step: Annotated[str, typer.Argument(help="The step's name or id.")],
    env: OneEnvironmentOpt = None,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
    window: WindowOpt = "7d",
) -> None:
    """One plug-in step: registration, executions, durations, depth, system jobs,
    findings and what to change."""
    from auditor.explore.plugins import plugin_show as show

    evidence, findings = load(ctx, store, window, env)
    data = show(evidence, findings, step)
    emit(as_json, data, lambda: render_plugin(out, data))
