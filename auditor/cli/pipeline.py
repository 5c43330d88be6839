"""The three steps of a scan as the command line runs them, with what each prints: collect,
analyse, report. `collect`, `analyze` and `report` run one each; `scan` and `demo` all three."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from auditor.cli.options import check_fail_on, duration, scan_number
from auditor.cli.output import out
from auditor.cli.render_runs import (
    CollectProgress,
    collect_progress,
    print_analysed,
    print_analysis,
    print_collect_summary,
    print_written,
)
from auditor.cli.render_verdicts import print_verdicts
from auditor.engine.engines import ENGINES
from auditor.errors import UsageError

if TYPE_CHECKING:
    from auditor.collect_types import CollectOptions, CollectSummary
    from auditor.settings import Settings


def collect_options(
    environment: list[str] | None, since: str | None, action_sample: int, fresh: bool
) -> CollectOptions:
    from auditor import collect_types

    if action_sample < 0:
        raise UsageError("--action-sample must be 0 or more")
    return collect_types.CollectOptions(
        environments=tuple(environment or ()),
        since=duration(since) if since else None,
        action_sample=action_sample,
        fresh=fresh,
    )


def run_collect(settings: Settings, options: CollectOptions, *, quiet: bool) -> CollectSummary:
    """Collects with a progress display (none with --quiet) and prints the summary; exit 3
    when the collection failed."""
    from auditor import collect as collecting

    if quiet:
        summary = collecting.run(settings, options)
    else:
        with collect_progress() as progress:
            summary = collecting.run(settings, options, CollectProgress(progress))
    print_collect_summary(summary, settings, quiet=quiet)
    if summary.status == "failed":
        raise typer.Exit(3)
    return summary


def run_analyze(
    settings: Settings,
    window: str,
    environment: list[str] | None,
    *,
    quiet: bool,
    worst: int = 3,
    engine: str = "duckdb",
    lake: Path | None = None,
) -> None:
    """Runs every check on the store and prints the findings per check (not with --quiet)."""
    from auditor.analyze import analyze

    if engine not in ENGINES:
        raise UsageError(
            f"--engine takes {' or '.join(ENGINES)}; got {engine!r}",
            hint="duckdb runs embedded; spark needs PySpark and a Java runtime.",
        )
    result = analyze(
        settings,
        window_length=duration(window, "--window"),
        environments=tuple(environment or ()),
        engine=engine,
        lake=lake,
    )
    if not quiet:
        print_analysis(result, worst)
    print_analysed(result, settings)


@dataclass(frozen=True)
class ReportOptions:
    """What to write: the folder, the formats, the findings muted, the verdict that fails."""

    out_dir: Path
    formats: tuple[str, ...]
    mutelist: Path | None
    fail_on: str | None


def report_options(
    out_dir: Path, formats: str, mutelist: Path | None, fail_on: str | None
) -> ReportOptions:
    """The report options, checked: a bad --format or --fail-on is refused before a long
    collection, not after it."""
    from auditor.report import parse_formats

    check_fail_on(fail_on)
    return ReportOptions(out_dir, parse_formats(formats), mutelist, fail_on)


def run_report(settings: Settings, scan: str, wanted: ReportOptions, *, quiet: bool) -> None:
    """Writes the reports of a scan and prints the verdicts; exit 1 per --fail-on."""
    from auditor.analyze import open_existing
    from auditor.assessment import fails_at, load_mutelist
    from auditor.report import write_reports
    from auditor.report.model import build_report

    scan_id = scan_number(scan)
    today = datetime.now(UTC).date()
    entries = load_mutelist(wanted.mutelist, today=today) if wanted.mutelist else []
    with open_existing(settings, read_only=True) as store:
        model = build_report(store, scan_id, mutelist=entries)
    written = write_reports(model, wanted.out_dir, wanted.formats)
    print_verdicts(model, out)
    if not quiet:
        print_written(written, wanted.out_dir)
    if wanted.fail_on and fails_at(model.verdict, wanted.fail_on):
        raise typer.Exit(1)
