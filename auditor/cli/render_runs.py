"""What `collect`, `analyze`, `report`, `scan`, `demo` and `lint` print about their run: the
collection's progress and summary, the findings per check, the verdicts."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from auditor.cli.output import STATUS_STYLE, err, out
from auditor.terminal import clean, markup

if TYPE_CHECKING:
    from auditor.collect_types import CollectSummary
    from auditor.settings import Settings
    from auditor.sources.base import QueryOutcome

STATUSES = ("pass", "fail", "not-assessed", "error")


def collect_progress() -> Progress:
    """The live display of a collection, on stderr; gone when it ends. Not drawn when stderr
    is not a terminal (a scheduled scan's log, a pipe): it would show nothing there, and
    drawing it ten times a second was a twentieth of a collection's samples (py-spy)."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TextColumn("{task.completed:>9,.0f} rows"),
        TimeElapsedColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


class CollectProgress:
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


def print_collect_summary(summary: CollectSummary, settings: Settings, *, quiet: bool) -> None:
    """The table of queries (not with --quiet), a warning per skipped query, the totals."""
    if not quiet:
        out.print(_queries_table(summary))
    _print_warnings(summary, quiet=quiet)
    stats = summary.stats
    out.print(
        f"Scan {summary.scan_id} {summary.status}: {sum(o.rows for o in summary.outcomes):,} rows,"
        f" {stats.requests:,} requests, {stats.retries:,} retries, {stats.throttled:,} throttled"
        f" ({stats.throttle_wait_s:.0f}s waited), window {summary.window_start:%Y-%m-%d %H:%M}"
        f" to {summary.window_end:%Y-%m-%d %H:%M} UTC, {summary.seconds:.1f}s."
        f" Store: {markup(settings.store_path)}",
        soft_wrap=True,
    )


def _queries_table(summary: CollectSummary) -> Table:
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
    return table


def _print_warnings(summary: CollectSummary, *, quiet: bool) -> None:
    """One warning per environment and reason, naming its queries (hints not with --quiet)."""
    names = {r.environment.id: r.environment.display_name for r in summary.results}
    grouped: dict[tuple[str, str, str], list[str]] = {}
    for o in summary.outcomes:
        if o.reason and not o.resumed:
            key = (
                o.environment_id,
                (o.reason or "").removeprefix("not attempted: "),
                o.hint or "",
            )
            grouped.setdefault(key, []).append(o.query_id)
    for (environment_id, reason, hint), queries in grouped.items():
        err.print(
            f"[yellow]warning:[/] {markup(names.get(environment_id, environment_id), 60)} "
            f"({', '.join(queries)}): {markup(reason)}",
            soft_wrap=True,
        )
        if hint and not quiet:
            err.print(f"  [dim]hint:[/] {markup(hint)}", soft_wrap=True)


def print_analysis(result: Any, worst: int) -> None:
    """Per check: findings per status and the worst failing resources."""
    from auditor.checks import REGISTRY

    table = Table("check", *STATUSES, "worst resources", title="Findings")
    table.columns[0].no_wrap = True
    by_check: dict[str, list[Any]] = {}
    for finding in result.findings:
        by_check.setdefault(finding.check_id, []).append(finding)
    for check in REGISTRY:
        found = by_check.get(check.id, [])
        counts = [sum(f.status == s for f in found) for s in STATUSES]
        failing = sorted(
            (f for f in found if f.status in ("fail", "error")), key=lambda f: -_weight(f)
        )
        named = [_resource(f, result.environments) for f in failing[:worst]]
        table.add_row(
            check.id,
            *[
                f"[{STATUS_STYLE[s]}]{n}[/]" if n else "[dim]0[/]"
                for s, n in zip(STATUSES, counts, strict=True)
            ],
            markup("; ".join(named)) + (" ..." if len(failing) > worst else ""),
        )
    out.print(table)


def _resource(finding: Any, envs: dict[str, str]) -> str:
    """A failing resource's name, with its environment when the scan has several."""
    name = clean(finding.resource_name or finding.resource_id or "", 40)
    if len(envs) > 1 and finding.environment_id in envs and finding.resource_kind != "environment":
        name += f" ({clean(envs[finding.environment_id], 20)})"
    return name


def _weight(finding: Any) -> float:
    """How bad a failing finding is, to name the worst first: its biggest count."""
    numbers = [
        float(v)
        for k, v in finding.values.items()
        if isinstance(v, int | float) and not isinstance(v, bool) and "threshold" not in k
    ]
    return max(numbers, default=0.0)


def print_analysed(result: Any, settings: Settings) -> None:
    """The one line an analysis ends with, also with --quiet."""
    counts = {s: sum(f.status == s for f in result.findings) for s in STATUSES}
    out.print(
        f"Scan {result.scan_id} analysed: {len(result.findings):,} findings ("
        + ", ".join(f"{n:,} {s}" for s, n in counts.items())
        + f") over {len(result.environments)} environment(s), window"
        f" {result.window.start:%Y-%m-%d %H:%M} to {result.window.end:%Y-%m-%d %H:%M} UTC,"
        f" {result.rows:,} rows in {result.seconds:.1f}s. Stored in {markup(settings.store_path)}",
        soft_wrap=True,
    )
    outside = {t: w for t, w in getattr(result, "sources", {}).items() if w != "store"}
    if outside or getattr(result, "engine", "duckdb") != "duckdb":
        where = (
            "; ".join(f"{t} from {w}" for t, w in sorted(outside.items())) or "all from the store"
        )
        out.print(
            f"Rows reduced by {result.engine}: {markup(where)}; everything else from the store.",
            soft_wrap=True,
        )


def print_written(written: list[Path], out_dir: Path) -> None:
    """The report files, and the evidence folder once instead of each CSV in it."""
    files = sorted({str(p if p.parent == out_dir else p.parent) for p in written})
    out.print("Reports: " + ", ".join(markup(f) for f in files), soft_wrap=True)


LINT_STATUSES = ("fail", "error", "not-assessed", "pass")


def print_lint_summary(result: Any) -> None:
    """What was read, how long it took, and every finding counted (also those the report
    left out: at most 1,000 per check and status)."""
    model, inputs = result.model, result.inputs
    totals = model.finding_counts
    counts = {s: sum(c.findings for c in totals if c.status == s) for s in LINT_STATUSES}
    err.print(
        f"Linted {inputs.files:,} file(s): {len(inputs.flows):,} flow(s), "
        f"{len(inputs.steps):,} plug-in step(s), {len(inputs.workflows):,} classic "
        f"workflow(s) in {result.seconds:.2f}s; "
        + ", ".join(f"{n:,} {s}" for s, n in counts.items())
        + f". Verdict: {model.verdict}.",
        soft_wrap=True,
    )
