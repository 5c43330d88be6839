"""The `auditor` command line: options -> Settings -> library call -> output -> exit code.

Exit codes: 0 all good; 1 a verdict at or above `--fail-on`; 2 usage or configuration error;
3 authentication or collection failure. An `AuditorError` prints one line and its hint; the
traceback only with `--debug`.
"""

from __future__ import annotations

import functools
import json
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from auditor import __version__
from auditor.errors import AuditorError, Terminated, UsageError
from auditor.files import private_dir
from auditor.logs import configure_logging
from auditor.settings import Settings, load_settings
from auditor.terminal import clean, markup

if TYPE_CHECKING:
    from auditor.collect import CollectSummary
    from auditor.sources.base import QueryOutcome

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
    quiet: bool = False
    flags: dict[str, Any] = field(default_factory=dict)

    def settings(self, **flags: Any) -> Settings:
        return load_settings({"config": self.config, **self.flags, **flags})


_state = _State()


def _report(exc: AuditorError) -> None:
    if _state.debug:
        traceback.print_exception(exc, file=sys.stderr)
    # Messages can carry tenant text and TOML keys like [auth]: never read them as markup.
    err.print(f"[bold red]error:[/] {markup(exc.message)}", soft_wrap=True)
    err.print(f"[dim]hint:[/] {markup(exc.hint)}", soft_wrap=True)


_terminated = threading.Event()


def _terminate(signum: int, _frame: object) -> None:
    """SIGTERM (a scheduler stopping the job) is handled as Ctrl-C is: asyncio then cancels
    the collection's tasks in order, and every store transaction ends or rolls back."""
    _terminated.set()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A background job of a script starts with Ctrl-C ignored; SIGTERM must still stop it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.raise_signal(signal.SIGINT)


# Commands that collect: an interrupted one resumes where it stopped on the next run, since
# every page is stored with its checkpoint in one transaction.
_COLLECTING = frozenset({"collect", "scan", "demo"})


def _interrupted(command: str, exc: KeyboardInterrupt) -> int:
    """One line saying what an interrupt left behind; the exit code of the signal."""
    sigterm = _terminated.is_set() or isinstance(exc, Terminated)
    name, code = ("SIGTERM", 143) if sigterm else ("SIGINT", 130)
    if command in _COLLECTING:
        what = "every page collected so far is stored"
        hint = "Run the same command again: the scan resumes where it stopped."
    else:
        what = "no file was left half-written"
        hint = "Run the command again."
    err.print(f"[bold yellow]interrupted:[/] stopped by {name}; {what}.", soft_wrap=True)
    err.print(f"[dim]hint:[/] {hint}", soft_wrap=True)
    return code


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn an AuditorError into one line, a hint and the documented exit code; Ctrl-C and
    SIGTERM into one line saying whether the scan resumes, and 130 or 143."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except AuditorError as exc:
            _report(exc)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            if _state.debug:
                traceback.print_exception(exc, file=sys.stderr)
            raise typer.Exit(_interrupted(command.__name__, exc)) from None

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
    _state.quiet = quiet
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
        out.print_json(
            json.dumps({"settings": rows, "secrets": secrets}, default=str), ensure_ascii=True
        )
        return
    from rich.table import Table

    table = Table(
        "setting",
        "value",
        "from",
        title=f"Configuration ({markup(settings.config_file or 'no file')})",
    )
    for row in rows:
        table.add_row(markup(row["key"]), markup(row["value"]), markup(row["source"]))
    for name, state in secrets.items():
        table.add_row(name, markup(state), "environment")
    out.print(table)


COLLECT = "Scan"


def _duration(text: str, option: str = "--since") -> timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"{option} takes a duration such as 30d, 12h or 90m; got {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount)}.get(
        unit, timedelta(minutes=amount)
    )


class _CollectProgress:
    """Rows per environment and query while collecting; one line per query."""

    def __init__(self, progress: Progress) -> None:
        self.progress = progress
        self.tasks: dict[tuple[str, str], TaskID] = {}

    def _task(self, environment: str, query_id: str) -> TaskID:
        key = (environment, query_id)
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(
                f"{markup(environment, 36)} {query_id}", total=None
            )
        return self.tasks[key]

    def rows(self, environment: str, query_id: str, count: int) -> None:
        self.progress.advance(self._task(environment, query_id), count)

    def done(self, outcome: QueryOutcome) -> None:
        task = self._task(outcome.environment_id, outcome.query_id)
        stats = outcome.stats
        detail = f" [{outcome.status}, {stats.requests} pages"
        if stats.retries:
            detail += f", {stats.retries} retries"
        if stats.throttled:
            detail += f", {stats.throttled} throttled, {stats.throttle_wait_s:.0f}s waited"
        self.progress.update(
            task,
            description=f"{markup(outcome.environment_id, 36)} {outcome.query_id}{markup(detail)}]",
            total=max(outcome.rows, 1),
            completed=max(outcome.rows, 1),
        )


EnvironmentOpt = Annotated[
    list[str] | None,
    typer.Option("--environment", "-e", help="Environment name or id (repeatable)."),
]
AllEnvironmentsOpt = Annotated[bool, typer.Option(help="Every environment the admin API lists.")]
SinceOpt = Annotated[
    str | None,
    typer.Option(help="Read this far back (30d, 12h); default: since the last scan, first 7d."),
]
ActionSampleOpt = Annotated[
    int, typer.Option(help="Runs per flow read with action detail; 0 turns it off.")
]
ResumeOpt = Annotated[
    bool, typer.Option(help="Resume an interrupted scan (the default when there is one).")
]
FreshOpt = Annotated[bool, typer.Option(help="Abandon an interrupted scan and start a new one.")]
StoreOpt = Annotated[Path | None, typer.Option(help="The store file (AUDITOR_STORE).")]
ConcurrencyOpt = Annotated[int | None, typer.Option(help="Requests in flight per host, 1..50.")]
WindowOpt = Annotated[
    str, typer.Option(help="Analysis window up to the latest scan's end: 7d, 30d, 12h.")
]
OutOpt = Annotated[Path, typer.Option("--out", "-o", help="Folder the reports are written to.")]
FormatOpt = Annotated[
    str,
    typer.Option("--format", "-f", help="Comma-separated: md,html,json,sarif,csv (default all)."),
]
MutelistOpt = Annotated[
    Path | None,
    typer.Option(
        help="Findings to suppress: TOML or YAML entries of check, resource, reason, expires."
    ),
]
FailOnOpt = Annotated[
    str | None,
    typer.Option(help="Exit 1 when a verdict is at or above: do-not-check or needs-review."),
]


def _collect_options(
    environment: list[str] | None, since: str | None, action_sample: int, fresh: bool
) -> Any:
    from auditor import collect as collecting

    if action_sample < 0:
        raise UsageError("--action-sample must be 0 or more")
    return collecting.CollectOptions(
        environments=tuple(environment or ()),
        since=_duration(since) if since else None,
        action_sample=action_sample,
        fresh=fresh,
    )


def _run_collect(settings: Settings, options: Any) -> CollectSummary:
    """Collects with a progress display (none with --quiet) and prints the summary."""
    from auditor import collect as collecting

    if _state.quiet:
        summary = collecting.run(settings, options)
    else:
        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            TextColumn("{task.completed:>9,.0f} rows"),
            TimeElapsedColumn(),
            console=err,
            transient=True,
        ) as progress:
            summary = collecting.run(settings, options, _CollectProgress(progress))
    _print_collect_summary(summary, settings)
    if summary.status == "failed":
        raise typer.Exit(3)
    return summary


@app.command(rich_help_panel=COLLECT)
@handles_errors
def collect(
    environment: EnvironmentOpt = None,
    all_environments: AllEnvironmentsOpt = False,
    since: SinceOpt = None,
    action_sample: ActionSampleOpt = 50,
    resume: ResumeOpt = True,
    fresh: FreshOpt = False,
    store: StoreOpt = None,
    max_concurrency: ConcurrencyOpt = None,
) -> None:
    """Collect flows, runs, plug-in steps, trace logs and system jobs into the store."""
    settings = _state.settings(
        store_path=store, max_concurrency=max_concurrency, all_environments=all_environments or None
    )
    _run_collect(settings, _collect_options(environment, since, action_sample, fresh or not resume))


def _print_collect_summary(summary: CollectSummary, settings: Settings) -> None:
    from rich.table import Table

    stats = summary.stats
    warnings = [o for o in summary.outcomes if o.reason and not o.resumed]
    if not _state.quiet:
        table = Table(
            "environment",
            "query",
            "status",
            "rows",
            "requests",
            "retries",
            "429s",
            "waited",
            title=f"Scan {summary.scan_id}" + (" (resumed)" if summary.resumed else ""),
        )
        for result in summary.results:
            for o in result.outcomes:
                table.add_row(
                    markup(result.environment.display_name, 60),
                    o.query_id,
                    "resumed" if o.resumed else o.status,
                    f"{o.rows:,}",
                    f"{o.stats.requests:,}",
                    f"{o.stats.retries:,}",
                    f"{o.stats.throttled:,}",
                    f"{o.stats.throttle_wait_s:.0f}s",
                )
        out.print(table)
    names = {r.environment.id: r.environment.display_name for r in summary.results}
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for o in warnings:
        key = (o.environment_id, (o.reason or "").removeprefix("not attempted: "), o.hint or "")
        grouped.setdefault(key, []).append(o.query_id)
    for (environment_id, reason, hint), queries in grouped.items():
        err.print(
            f"[yellow]warning:[/] {markup(names.get(environment_id, environment_id), 60)} "
            f"({', '.join(queries)}): {markup(reason)}",
            soft_wrap=True,
        )
        if hint and not _state.quiet:
            err.print(f"  [dim]hint:[/] {markup(hint)}", soft_wrap=True)
    out.print(
        f"Scan {summary.scan_id} {summary.status}: {sum(o.rows for o in summary.outcomes):,} rows,"
        f" {stats.requests:,} requests, {stats.retries:,} retries, {stats.throttled:,} throttled"
        f" ({stats.throttle_wait_s:.0f}s waited), window {summary.window_start:%Y-%m-%d %H:%M}"
        f" to {summary.window_end:%Y-%m-%d %H:%M} UTC, {summary.seconds:.1f}s."
        f" Store: {markup(settings.store_path)}",
        soft_wrap=True,
    )


@app.command("environments", rich_help_panel=COLLECT)
@handles_errors
def list_environments(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List the environments a scan would collect, with their Dataverse URLs."""
    import asyncio

    from auditor import collect as collecting

    found = asyncio.run(collecting.list_environments(_state.settings()))
    if as_json:
        out.print_json(json.dumps([vars(e) for e in found]), ensure_ascii=True)
        return
    from rich.table import Table

    table = Table("name", "id", "type", "Dataverse URL", "from")
    for env in found:
        table.add_row(
            markup(env.display_name, 60),
            markup(env.id),
            markup(env.sku or ""),
            markup(env.dataverse_url or "(no Dataverse)"),
            env.discovered_by,
        )
    out.print(table)


@app.command(rich_help_panel=SETUP)
@handles_errors
def doctor(
    environment: EnvironmentOpt = None,
    all_environments: AllEnvironmentsOpt = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Check sign-in and every permission a scan needs: one cheap request per API and query.

    Run it before the first scan. Exit 0 when a scan has everything it needs (WARN and OFF
    rows do not fail it), 3 when something is MISSING. It never opens the store.
    """
    from auditor import doctor as preflight

    settings = _state.settings(all_environments=all_environments or None)
    found = preflight.run(settings, environment or ())
    if as_json:
        out.print_json(json.dumps(found.as_json()), ensure_ascii=True)
    else:
        out.print(preflight.render(found))
    if not found.ok:
        raise typer.Exit(3)


ANALYSE = "Analyse"
checks_app = typer.Typer(help="The check catalog.", no_args_is_help=True)
app.add_typer(checks_app, name="checks", rich_help_panel=ANALYSE)


@app.command(rich_help_panel=ANALYSE)
@handles_errors
def analyze(
    window: WindowOpt = "7d",
    environment: EnvironmentOpt = None,
    store: StoreOpt = None,
    worst: Annotated[int, typer.Option(help="Failing resources named per check.")] = 3,
) -> None:
    """Run every check on the store (offline) and store the findings with the latest scan."""
    settings = _state.settings(store_path=store)
    _run_analyze(settings, window, environment, worst)


def _run_analyze(
    settings: Settings, window: str, environment: list[str] | None, worst: int = 3
) -> None:
    from auditor.analyze import analyze as analysing

    result = analysing(
        settings,
        window_length=_duration(window, "--window"),
        environments=tuple(environment or ()),
    )
    if not _state.quiet:
        _print_analysis(result, worst)
    counts = {s: sum(f.status == s for f in result.findings) for s in _STATUSES}
    out.print(
        f"Scan {result.scan_id} analysed: {len(result.findings):,} findings ("
        + ", ".join(f"{n:,} {s}" for s, n in counts.items())
        + f") over {len(result.environments)} environment(s), window"
        f" {result.window.start:%Y-%m-%d %H:%M} to {result.window.end:%Y-%m-%d %H:%M} UTC,"
        f" {result.rows:,} rows in {result.seconds:.1f}s. Stored in {markup(settings.store_path)}",
        soft_wrap=True,
    )


_FAIL_ON = ("do-not-check", "needs-review")


def _check_fail_on(fail_on: str | None) -> None:
    if fail_on is not None and fail_on not in _FAIL_ON:
        raise UsageError(f"--fail-on takes do-not-check or needs-review; got {fail_on!r}")


def _run_report(
    settings: Settings,
    *,
    scan: str,
    out_dir: Path,
    formats: str,
    mutelist: Path | None,
    fail_on: str | None,
    generated: Any = None,
) -> None:
    """Writes the reports of a scan and prints the verdicts; exit 1 per --fail-on."""
    from datetime import UTC, datetime

    from auditor.analyze import open_existing
    from auditor.assessment import fails_at, load_mutelist
    from auditor.report import parse_formats, write_reports
    from auditor.report.model import build_report

    _check_fail_on(fail_on)
    chosen = parse_formats(formats)
    scan_id = None if scan == "latest" else _scan_id(scan)
    entries = load_mutelist(mutelist, today=datetime.now(UTC).date()) if mutelist else []
    with open_existing(settings, read_only=True) as store:
        model = build_report(store, scan_id, mutelist=entries, generated=generated)
    written = write_reports(model, out_dir, chosen)
    _print_verdicts(model)
    if not _state.quiet:
        files = sorted({str(p if p.parent == out_dir else p.parent) for p in written})
        out.print("Reports: " + ", ".join(markup(f) for f in files), soft_wrap=True)
    if fail_on and fails_at(model["verdict"], fail_on):
        raise typer.Exit(1)


def _scan_id(text: str) -> int:
    if not text.isdigit():
        raise UsageError(f"--scan takes a scan number or latest; got {text!r}")
    return int(text)


_VERDICT_STYLE = {"check": "green", "do-not-check": "red", "needs-review": "yellow"}


def _print_verdicts(model: dict[str, Any]) -> None:
    """The verdict table: the scope's verdict per answer, then per environment."""
    from rich.table import Table

    answers = model["answers"]
    table = Table("answer", "verdict", "why", title=markup(model["question"]["title"]))
    table.columns[0].no_wrap = True
    for answer in answers:
        reason = answer["reasons"][0] if answer["reasons"] else ""
        verdict = answer["verdict"]
        table.add_row(answer["id"], f"[{_VERDICT_STYLE[verdict]}]{verdict}[/]", markup(reason, 110))
    out.print(table)
    envs = Table("environment", *[a["id"] for a in answers], title="Per environment")
    for k, env in enumerate(model["scan"]["environments"]):
        cells = []
        for answer in answers:
            verdict = answer["environments"][k]["verdict"]
            cells.append(f"[{_VERDICT_STYLE[verdict]}]{verdict}[/]")
        envs.add_row(markup(env["name"], 40), *cells)
    out.print(envs)


@app.command(rich_help_panel=ANALYSE)
@handles_errors
def report(
    scan: Annotated[str, typer.Option(help="Scan number, or latest.")] = "latest",
    out_dir: OutOpt = Path("auditor-report"),
    formats: FormatOpt = "all",
    mutelist: MutelistOpt = None,
    fail_on: FailOnOpt = None,
    store: StoreOpt = None,
) -> None:
    """Write the reports of an analysed scan: md, html, json, sarif and evidence CSVs."""
    settings = _state.settings(store_path=store)
    _run_report(
        settings, scan=scan, out_dir=out_dir, formats=formats, mutelist=mutelist, fail_on=fail_on
    )


@app.command(rich_help_panel=COLLECT)
@handles_errors
def scan(
    environment: EnvironmentOpt = None,
    all_environments: AllEnvironmentsOpt = False,
    since: SinceOpt = None,
    action_sample: ActionSampleOpt = 50,
    fresh: FreshOpt = False,
    store: StoreOpt = None,
    max_concurrency: ConcurrencyOpt = None,
    window: WindowOpt = "7d",
    out_dir: OutOpt = Path("auditor-report"),
    formats: FormatOpt = "all",
    mutelist: MutelistOpt = None,
    fail_on: FailOnOpt = None,
) -> None:
    """Collect, analyse and report in one go: the scheduled tenant health scan."""
    _check_fail_on(fail_on)
    parse_formats_early(formats)
    settings = _state.settings(
        store_path=store, max_concurrency=max_concurrency, all_environments=all_environments or None
    )
    _run_collect(settings, _collect_options(environment, since, action_sample, fresh))
    _run_analyze(settings, window, environment)
    _run_report(
        settings,
        scan="latest",
        out_dir=out_dir,
        formats=formats,
        mutelist=mutelist,
        fail_on=fail_on,
    )


def parse_formats_early(formats: str) -> None:
    """Refuse a bad --format before a long collection, not after it."""
    from auditor.report import parse_formats

    parse_formats(formats)


# The demo samples fewer runs per flow than a scan (50): it shows the whole job in well
# under a minute; the estimates' intervals are wider, the verdicts of the simulated tenant
# the same.
DEMO_ACTION_SAMPLE = 20


@app.command(rich_help_panel=COLLECT)
@handles_errors
def demo(
    out_dir: OutOpt = Path("auditor-demo"),
    seed: Annotated[int, typer.Option(help="Seed of the simulated tenant.")] = 7,
    scale: Annotated[str, typer.Option(help="tiny, small, medium or large.")] = "small",
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
    import tempfile

    from auditor.sim.launch import client_environment, serve_process
    from auditor.sim.model import SCALES

    if scale not in SCALES:
        raise UsageError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if not _state.quiet:
        err.print(f"Starting the simulated tenant (seed {seed}, scale {scale}) ...")
    with tempfile.TemporaryDirectory(prefix="auditor-demo-") as folder:
        try:
            process, _url = serve_process(Path(folder), seed=seed, scale=scale)
        except RuntimeError as exc:
            raise UsageError(f"the simulated tenant did not start: {exc}") from None
        try:
            client_env = client_environment(Path(folder))
            private_dir(out_dir)
            store = out_dir / "store.duckdb"
            store.unlink(missing_ok=True)
            environ = {**_environ(), "AZURE_CLIENT_SECRET": client_env["AZURE_CLIENT_SECRET"]}
            settings = load_settings(
                {
                    "config": Path(folder) / "auditor.toml",
                    "store_path": store,
                    "all_environments": True,
                },
                environ=environ,
            )
            _run_collect(settings, _collect_options(None, None, action_sample, True))
            _run_analyze(settings, "7d", None)
            _run_report(
                settings, scan="latest", out_dir=out_dir, formats="all", mutelist=None, fail_on=None
            )
        finally:
            process.terminate()
            process.communicate(timeout=30)
    out.print(
        f"Demo done: open {markup(out_dir / 'report.html')}; the store is "
        f"{markup(out_dir / 'store.duckdb')} (try `auditor analyze --store` on it).",
        soft_wrap=True,
    )


def _environ() -> dict[str, str]:
    """The process environment without the machine's tenant settings (the demo is offline)."""
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "AZURE_"))}


_STATUSES = ("pass", "fail", "not-assessed", "error")
_STATUS_STYLE = {"pass": "green", "fail": "red", "not-assessed": "yellow", "error": "magenta"}


def _print_analysis(result: Any, worst: int) -> None:
    from rich.table import Table

    from auditor.checks import REGISTRY

    table = Table("check", *_STATUSES, "worst resources", title="Findings")
    table.columns[0].no_wrap = True
    by_check: dict[str, list[Any]] = {}
    for finding in result.findings:
        by_check.setdefault(finding.check_id, []).append(finding)
    envs = result.environments
    for check in REGISTRY:
        found = by_check.get(check.id, [])
        counts = [sum(f.status == s for f in found) for s in _STATUSES]
        failing = [f for f in found if f.status in ("fail", "error")]
        failing.sort(key=lambda f: -_weight(f))
        named = [
            clean(f.resource_name or f.resource_id or "", 40)
            + (
                f" ({clean(envs[f.environment_id], 20)})"
                if len(envs) > 1 and f.environment_id in envs and f.resource_kind != "environment"
                else ""
            )
            for f in failing[:worst]
        ]
        table.add_row(
            check.id,
            *[
                f"[{_STATUS_STYLE[s]}]{n}[/]" if n else "[dim]0[/]"
                for s, n in zip(_STATUSES, counts, strict=True)
            ],
            markup("; ".join(named)) + (" ..." if len(failing) > worst else ""),
        )
    out.print(table)


def _weight(finding: Any) -> float:
    """How bad a failing finding is, to name the worst first: its biggest count."""
    numbers = [
        float(v)
        for k, v in finding.values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and "threshold" not in k
    ]
    return max(numbers, default=0.0)


@checks_app.command("list")
@handles_errors
def checks_list(
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """List every check with its id, answers, severity and thresholds (with this config)."""
    from rich.table import Table

    from auditor.checks import REGISTRY, limits_for, validate_thresholds

    settings = _state.settings()
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
    if as_json:
        out.print_json(json.dumps(rows), ensure_ascii=True)
        return
    table = Table("id", "answers", "severity", "thresholds", title=f"{len(rows)} checks")
    for row in rows:
        limits_text = ", ".join(
            f"{t['name']}={t['value']}{(' ' + t['unit']) if t['unit'] else ''}"
            + ("" if t["value"] == t["default"] else f" (default {t['default']})")
            for t in row["thresholds"]
        )
        table.add_row(
            f"{row['id']}\n[dim]{markup(row['title'])}[/]",
            "\n".join(row["answers"]),
            row["severity"] + (" (coverage)" if row["coverage"] else ""),
            markup(limits_text) or "[dim]-[/]",
        )
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
    max_requests: Annotated[
        int, typer.Option(help="Service protection: requests per client in 5 minutes.")
    ] = 6000,
    deny: Annotated[
        list[str] | None,
        typer.Option(
            help="ENV:ENTITYSET answered with 403 (repeatable), e.g. dev:plugintracelogs."
        ),
    ] = None,
    unregistered_app: Annotated[
        bool,
        typer.Option(
            "--unregistered-app",
            help="The app is not registered as a Power Platform management app: the admin "
            "routes (environments list, flow admin API) answer 403.",
        ),
    ] = False,
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
        max_requests=max_requests,
        deny=frozenset(denied),
        management_app=not unregistered_app,
    )
    tenant = generate(seed, scale)
    server = SimServer(tenant, options, port=port)
    base_url = server.start()
    try:
        private_dir(ca_out)
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
    out.print(f"Ground truth of seed {seed}, scale {scale} written to {markup(out_file)}")


def _register_investigation() -> None:
    """The investigation and lint commands live in their own modules (design.md section 10)."""
    from auditor import cli_explore_flows, cli_explore_history, cli_lint

    cli_explore_flows.register(app)
    cli_explore_history.register(app)
    cli_lint.register(app)


_register_investigation()


def main() -> None:
    """Entry point of the `auditor` console script."""
    signal.signal(signal.SIGTERM, _terminate)
    app()
