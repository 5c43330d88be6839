"""Every option more than one command takes, defined once, and the parsers of their values.

The environment option has one spelling everywhere, `--environment/--env/-e`: each of the
three was accepted by some command before, and all three keep working on every command.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated

import typer

from auditor import __version__
from auditor.cli.output import out
from auditor.errors import UsageError

# Global options (the app's callback) -----------------------------------------------------


def _print_version(value: bool) -> None:
    if value:
        out.print(f"auditor {__version__}")
        raise typer.Exit()


ConfigOpt = Annotated[
    Path | None,
    typer.Option(
        "--config", "-c", help="auditor.toml to use (default: AUDITOR_CONFIG, ./auditor.toml)."
    ),
]
VerboseOpt = Annotated[
    int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv: debug).")
]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Errors only, for schedulers.")]
DebugOpt = Annotated[bool, typer.Option("--debug", help="Show tracebacks of errors.")]
VersionOpt = Annotated[
    bool,
    typer.Option("--version", callback=_print_version, is_eager=True, help="Print the version."),
]

# Scope and store --------------------------------------------------------------------------

ENVIRONMENT = ("--environment", "--env", "-e")
EnvironmentsOpt = Annotated[
    list[str] | None, typer.Option(*ENVIRONMENT, help="Environment name or id (repeatable).")
]
OneEnvironmentOpt = Annotated[
    str | None, typer.Option(*ENVIRONMENT, help="Only this environment (name or id).")
]
AllEnvironmentsOpt = Annotated[bool, typer.Option(help="Every environment the admin API lists.")]
StoreOpt = Annotated[Path | None, typer.Option(help="The store file (AUDITOR_STORE).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
WindowOpt = Annotated[
    str, typer.Option(help="Analysis window up to the latest scan's end: 7d, 30d, 12h.")
]

# Collecting -------------------------------------------------------------------------------

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
ConcurrencyOpt = Annotated[
    int | None, typer.Option(help="Requests in flight per environment API, 1..50.")
]

# Reports ----------------------------------------------------------------------------------

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

# The simulated tenant ---------------------------------------------------------------------

SeedOpt = Annotated[int, typer.Option(help="Seed of the generated tenant.")]
ScaleOpt = Annotated[str, typer.Option(help="tiny, small, medium or large.")]


# Parsers ----------------------------------------------------------------------------------


def duration(text: str, option: str = "--since") -> timedelta:
    """`30d`, `12h` or `90m` as a timedelta; a usage error names `option` otherwise."""
    match = re.fullmatch(r"\s*(\d+)\s*([dhm])\s*", text)
    if not match or int(match.group(1)) == 0:
        raise UsageError(f"{option} takes a duration such as 30d, 12h or 90m; got {text!r}")
    amount, unit = int(match.group(1)), match.group(2)
    return {"d": timedelta(days=amount), "h": timedelta(hours=amount)}.get(
        unit, timedelta(minutes=amount)
    )


FAIL_ON = ("do-not-check", "needs-review")


def check_fail_on(fail_on: str | None) -> None:
    if fail_on is not None and fail_on not in FAIL_ON:
        raise UsageError(f"--fail-on takes do-not-check or needs-review; got {fail_on!r}")


def scan_number(text: str) -> int | None:
    """`--scan`: a scan number, or None for latest."""
    if text == "latest":
        return None
    if not text.isdigit():
        raise UsageError(f"--scan takes a scan number or latest; got {text!r}")
    return int(text)


def check_scale(scale: str) -> None:
    from auditor.sim.model import SCALES

    if scale not in SCALES:
        raise UsageError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")


# The panels of `auditor --help` -----------------------------------------------------------

SET_UP = "Set up"
SCAN = "Scan"
ANALYSE = "Analyse"
INVESTIGATE = "Investigate"
SIMULATED = "Simulated tenant"
