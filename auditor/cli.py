"""The `auditor` command line: options -> Settings -> library call -> output -> exit code.

Exit codes: 0 all good; 1 a verdict at or above `--fail-on`; 2 usage or configuration error;
3 authentication or collection failure. An `AuditorError` prints one line and its hint; the
traceback only with `--debug`.
"""

from __future__ import annotations

import functools
import json
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from auditor import __version__
from auditor.errors import AuditorError, UsageError
from auditor.logs import configure_logging
from auditor.settings import Settings, load_settings

P = ParamSpec("P")
R = TypeVar("R")

err = Console(stderr=True, highlight=False)
out = Console(highlight=False)

app = typer.Typer(
    name="auditor",
    help="Audit the background jobs of a Power Platform tenant: cloud flows, Dataverse "
    "plug-ins and system jobs, against the Well-Architected question "
    '"How do you implement background jobs?".',
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)
sim_app = typer.Typer(
    help="The simulated tenant: a local HTTPS server that speaks the tenant's APIs.",
    no_args_is_help=True,
)
app.add_typer(sim_app, name="sim", rich_help_panel="Simulated tenant")

SETUP = "Set up"


@dataclass
class _State:
    config: Path | None = None
    debug: bool = False
    flags: dict[str, Any] = field(default_factory=dict)

    def settings(self, **flags: Any) -> Settings:
        return load_settings({"config": self.config, **self.flags, **flags})


_state = _State()


def _report(exc: AuditorError) -> None:
    if _state.debug:
        traceback.print_exception(exc, file=sys.stderr)
    # Messages can carry tenant text and TOML keys like [auth]: never read them as markup.
    err.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
    err.print(f"[dim]hint:[/] {escape(exc.hint)}", soft_wrap=True)


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn an AuditorError into one line, a hint and the documented exit code."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except AuditorError as exc:
            _report(exc)
            raise typer.Exit(exc.exit_code) from None

    return wrapper


def _version(value: bool) -> None:
    if value:
        out.print(f"auditor {__version__}")
        raise typer.Exit()


@app.callback()
def options(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="auditor.toml to use (default: AUDITOR_CONFIG, ./auditor.toml)."
        ),
    ] = None,
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")
    ] = 0,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="Errors only, for schedulers.")
    ] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """Options shared by every command."""
    _state.config = config
    _state.debug = debug
    configure_logging(verbose + (2 if debug else 0), quiet=quiet)


@app.command(rich_help_panel=SETUP)
@handles_errors
def login() -> None:
    """Sign in with a device code and keep the token cache (owner-only file) for later scans."""
    from auditor.auth import device_code_login

    settings = _state.settings()
    who = device_code_login(settings, show=lambda message: err.print(message))
    out.print(
        f"Signed in as {who}. Token cache: {settings.token_cache_path} (owner read/write only)."
    )


@app.command("config", rich_help_panel=SETUP)
@handles_errors
def show_config(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Show the resolved configuration and where each value came from (secrets hidden)."""
    settings = _state.settings()
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
    creds = settings.credentials
    secrets = {
        "AZURE_CLIENT_SECRET": "set" if creds.client_secret else "not set",
        "AZURE_CLIENT_CERTIFICATE_PATH": str(creds.certificate_path or "not set"),
        "AZURE_CLIENT_CERTIFICATE_PASSWORD": "set" if creds.certificate_password else "not set",
    }
    if as_json:
        out.print_json(json.dumps({"settings": rows, "secrets": secrets}, default=str))
        return
    from rich.table import Table

    table = Table(
        "setting", "value", "from", title=f"Configuration ({settings.config_file or 'no file'})"
    )
    for row in rows:
        table.add_row(str(row["key"]), str(row["value"]), str(row["source"]))
    for name, state in secrets.items():
        table.add_row(name, state, "environment")
    out.print(table)


@sim_app.command("serve")
@handles_errors
def sim_serve(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
    seed: Annotated[int, typer.Option(help="Seed of the generated tenant.")] = 7,
    scale: Annotated[str, typer.Option(help="tiny, small, medium or large.")] = "small",
    latency_ms: Annotated[float, typer.Option(help="Latency added to every API request.")] = 0.0,
    faults: Annotated[
        str,
        typer.Option(
            help="Fault rates, e.g. 429=0.1,503=0.05,reset=0.02,timeout=0.01,badjson=0.005."
        ),
    ] = "",
    ca_out: Annotated[
        Path, typer.Option(help="Folder for ca.pem, auditor.toml and env (the client's files).")
    ] = Path("auditor-sim"),
    token_lifetime: Annotated[int, typer.Option(help="Token lifetime in seconds.")] = 3600,
    max_concurrent: Annotated[
        int, typer.Option(help="Service protection: concurrent requests per client.")
    ] = 52,
    deny: Annotated[
        list[str] | None,
        typer.Option(
            help="ENV:ENTITYSET answered with 403 (repeatable), e.g. dev:plugintracelogs."
        ),
    ] = None,
) -> None:
    """Serve the simulated tenant over HTTPS until stopped (Ctrl-C)."""
    from auditor.sim.faults import parse_faults
    from auditor.sim.model import SCALES, SimOptions
    from auditor.sim.scenario import generate
    from auditor.sim.server import SimServer

    if scale not in SCALES:
        raise UsageError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    try:
        fault_rates = parse_faults(faults)
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}") from None
    denied = set()
    for item in deny or []:
        env, sep, table = item.partition(":")
        if not sep or not env or not table:
            raise UsageError(f"--deny takes ENV:ENTITYSET, got {item!r}")
        denied.add((env, table))
    options = SimOptions(
        seed=seed,
        scale=scale,
        latency_ms=latency_ms,
        faults=fault_rates,
        token_lifetime_s=token_lifetime,
        max_concurrent=max_concurrent,
        deny=frozenset(denied),
    )
    tenant = generate(seed, scale)
    server = SimServer(tenant, options, port=port)
    base_url = server.start()
    try:
        ca_out.mkdir(parents=True, exist_ok=True)
        server.write_client_files(ca_out)
        out.print(f"Simulated tenant (seed {seed}, scale {scale}) at {base_url}")
        out.print(f"Client files in {ca_out.resolve()}: ca.pem, auditor.toml, env")
        out.print(
            f"Use it:  set -a; . {ca_out / 'env'}; set +a; "
            f"auditor <command> --config {ca_out / 'auditor.toml'}",
            soft_wrap=True,
        )
        out.print("Press Ctrl-C to stop.")
        _wait_for_interrupt()
    finally:
        server.stop()


def _wait_for_interrupt() -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass


@sim_app.command("truth")
@handles_errors
def sim_truth(
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the JSON.")],
    seed: Annotated[int, typer.Option(help="Seed of the generated tenant.")] = 7,
    scale: Annotated[str, typer.Option(help="tiny, small, medium or large.")] = "small",
) -> None:
    """Write the ground truth of a simulated tenant: row counts, verdicts, key metrics."""
    from auditor.sim.model import SCALES
    from auditor.sim.truth import write_truth

    if scale not in SCALES:
        raise UsageError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    write_truth(seed, scale, out_file)
    out.print(f"Ground truth of seed {seed}, scale {scale} written to {out_file}")


def main() -> None:
    """Entry point of the `auditor` console script."""
    app()
