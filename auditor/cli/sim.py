"""`auditor sim serve` and `sim truth`: the simulated tenant, for trying auditor without one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from auditor.cli.exits import handles_errors
from auditor.cli.options import SIMULATED, ScaleOpt, SeedOpt, check_scale
from auditor.cli.output import out
from auditor.errors import UsageError
from auditor.files import private_dir
from auditor.terminal import markup

if TYPE_CHECKING:
    from auditor.sim.model import SimOptions

sim_app = typer.Typer(
    help="The simulated tenant: a local HTTPS server that speaks the tenant's APIs.",
    no_args_is_help=True,
)
commands = typer.Typer()
commands.add_typer(sim_app, name="sim", rich_help_panel=SIMULATED)

FaultsOpt = Annotated[
    str,
    typer.Option(help="Fault rates, e.g. 429=0.1,503=0.05,reset=0.02,timeout=0.01,badjson=0.005."),
]
CaOutOpt = Annotated[
    Path, typer.Option(help="Folder for ca.pem, auditor.toml and env (the client's files).")
]
DenyOpt = Annotated[
    list[str] | None,
    typer.Option(help="ENV:ENTITYSET answered with 403 (repeatable), e.g. dev:plugintracelogs."),
]
UnregisteredOpt = Annotated[
    bool,
    typer.Option(
        "--unregistered-app",
        help="The app is not registered as a Power Platform management app: the admin "
        "routes (environments list, flow admin API) answer 403.",
    ),
]


@sim_app.command("serve")
@handles_errors
def sim_serve(
    ctx: typer.Context,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1; 0 picks a free one.")] = 0,
    seed: SeedOpt = 7,
    scale: ScaleOpt = "small",
    latency_ms: Annotated[float, typer.Option(help="Latency added to every API request.")] = 0.0,
    faults: FaultsOpt = "",
    ca_out: CaOutOpt = Path("auditor-sim"),
    token_lifetime: Annotated[int, typer.Option(help="Token lifetime in seconds.")] = 3600,
    max_concurrent: Annotated[
        int, typer.Option(help="Service protection: concurrent requests per client.")
    ] = 52,
    max_requests: Annotated[
        int, typer.Option(help="Service protection: requests per client in 5 minutes.")
    ] = 6000,
    deny: DenyOpt = None,
    unregistered_app: UnregisteredOpt = False,
) -> None:
    """Serve the simulated tenant over HTTPS until stopped (Ctrl-C)."""
    from auditor.sim.launch import serving, wait_for_interrupt

    options = sim_options(ctx.params)
    with serving(options, port) as (server, base_url):
        private_dir(ca_out)
        server.write_client_files(ca_out)
        print_serving(options, base_url, ca_out)
        wait_for_interrupt()


def sim_options(params: dict[str, Any]) -> SimOptions:
    """The options of `sim serve` (typer's parsed parameters) as the simulator's, checked."""
    from auditor.sim.model import SimOptions

    check_scale(params["scale"])
    return SimOptions(
        seed=params["seed"],
        scale=params["scale"],
        latency_ms=params["latency_ms"],
        faults=parse_fault_rates(params["faults"]),
        token_lifetime_s=params["token_lifetime"],
        max_concurrent=params["max_concurrent"],
        max_requests=params["max_requests"],
        deny=parse_denied(params["deny"] or []),
        management_app=not params["unregistered_app"],
    )


def parse_fault_rates(text: str) -> dict[str, float]:
    from auditor.sim.faults import parse_faults

    try:
        return parse_faults(text)
    except ValueError as exc:
        raise UsageError(f"--faults: {exc}") from None


def parse_denied(items: list[str]) -> frozenset[tuple[str, str]]:
    """`--deny ENV:ENTITYSET` values as (environment, entity set) pairs."""
    denied = set()
    for item in items:
        env, sep, table = item.partition(":")
        if not sep or not env or not table:
            raise UsageError(f"--deny takes ENV:ENTITYSET, got {item!r}")
        denied.add((env, table))
    return frozenset(denied)


def print_serving(options: SimOptions, base_url: str, ca_out: Path) -> None:
    """Where the tenant is, where its client files are, and how to point auditor at it."""
    out.print(f"Simulated tenant (seed {options.seed}, scale {options.scale}) at {base_url}")
    out.print(f"Client files in {ca_out.resolve()}: ca.pem, auditor.toml, env")
    out.print(
        f"Use it:  set -a; . {ca_out / 'env'}; set +a; "
        f"auditor <command> --config {ca_out / 'auditor.toml'}",
        soft_wrap=True,
    )
    out.print("Press Ctrl-C to stop.")


@sim_app.command("truth")
@handles_errors
def sim_truth(
    ctx: typer.Context,
    out_file: Annotated[Path, typer.Option("--out", help="Where to write the JSON.")],
    seed: SeedOpt = 7,
    scale: ScaleOpt = "small",
) -> None:
    """Write the ground truth of a simulated tenant: row counts, verdicts, key metrics."""
    from auditor.sim.truth import write_truth

    check_scale(scale)
    write_truth(seed, scale, out_file)
    out.print(f"Ground truth of seed {seed}, scale {scale} written to {markup(out_file)}")
