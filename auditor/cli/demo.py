"""`auditor demo`: the whole job on the built-in simulated tenant, no tenant needed."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from auditor.cli.context import cli_context
from auditor.cli.exits import handles_errors
from auditor.cli.options import SCAN, OutOpt, ScaleOpt, check_scale
from auditor.cli.output import err, out
from auditor.cli.pipeline import (
    collect_options,
    report_options,
    run_analyze,
    run_collect,
    run_report,
)
from auditor.errors import UsageError
from auditor.files import private_dir
from auditor.settings import Settings, load_settings
from auditor.terminal import markup

# The demo samples fewer runs per flow than a scan (50): it shows the whole job in well
# under a minute; the estimates' intervals are wider, the verdicts of the simulated tenant
# the same.
DEMO_ACTION_SAMPLE = 20

commands = typer.Typer()


@commands.command(rich_help_panel=SCAN)
@handles_errors
def demo(
    ctx: typer.Context,
    out_dir: OutOpt = Path("auditor-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the simulated tenant.")] = 7,
    scale: ScaleOpt = "small",
    action_sample: Annotated[
        int, typer.Option(help="Runs per flow read with action detail.")
    ] = DEMO_ACTION_SAMPLE,
) -> None:
    """Scan the built-in simulated tenant end to end and write its reports (no tenant needed).

    The simulator is started on a free loopback port with its own CA; the scan signs in with
    MSAL and talks HTTPS to it exactly as to a tenant. The simulator runs in a child process
    of this command, on its own CPU core, so that serving and collecting do not take turns
    on one interpreter (the demo takes half the time). The store is kept in the output folder
    for `auditor analyze` / `report` to reuse.
    """
    check_scale(scale)
    quiet = cli_context(ctx).quiet
    if not quiet:
        err.print(f"Starting the simulated tenant (seed {seed}, scale {scale}) ...")
    scan_simulated(out_dir, seed, scale, action_sample, quiet=quiet)
    out.print(
        f"Demo done: open {markup(out_dir / 'report.html')}; the store is "
        f"{markup(out_dir / 'store.duckdb')} (try `auditor analyze --store` on it).",
        soft_wrap=True,
    )


def start_simulator(folder: Path, seed: int, scale: str) -> subprocess.Popen[str]:
    """The simulator serving from a child process, its client files in `folder`."""
    from auditor.sim.launch import serve_process

    try:
        process, _url = serve_process(folder, seed=seed, scale=scale)
    except RuntimeError as exc:
        raise UsageError(f"the simulated tenant did not start: {exc}") from None
    return process


def demo_settings(folder: Path, out_dir: Path) -> Settings:
    """Settings for the simulator's client files, every environment, a new store in `out_dir`
    and none of the machine's tenant settings (the demo is offline)."""
    from auditor.sim.launch import client_environment

    private_dir(out_dir)
    store = out_dir / "store.duckdb"
    store.unlink(missing_ok=True)
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "AZURE_"))}
    environ["AZURE_CLIENT_SECRET"] = client_environment(folder)["AZURE_CLIENT_SECRET"]
    flags = {"config": folder / "auditor.toml", "store_path": store, "all_environments": True}
    return load_settings(flags, environ=environ)


def scan_simulated(
    out_dir: Path, seed: int, scale: str, action_sample: int, *, quiet: bool
) -> None:
    """Collect (a fresh scan) from the simulator in a child process, analyse the last 7 days,
    write every report; the simulator is stopped however the scan ends."""
    from auditor.sim.launch import stopped_after

    with (
        tempfile.TemporaryDirectory(prefix="auditor-demo-") as name,
        stopped_after(start_simulator(Path(name), seed, scale)),
    ):
        settings = demo_settings(Path(name), out_dir)
        run_collect(settings, collect_options(None, None, action_sample, True), quiet=quiet)
        run_analyze(settings, "7d", None, quiet=quiet)
        run_report(settings, "latest", report_options(out_dir, "all", None, None), quiet=quiet)
