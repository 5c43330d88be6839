"""The tables of `trace`, `history`, `diff` and `export`: investigation over time."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.cli.output import VERDICT_STYLE, cell, duration_cell, out
from auditor.terminal import markup

if TYPE_CHECKING:
    from rich.console import Console

    from auditor.explore.diff import FindingsDiff
    from auditor.explore.export import Exported
    from auditor.explore.history import History
    from auditor.explore.timeline import Trace

KINDS = {"plugin": "plug-in", "system-job": "system job", "flow-run": "flow run"}
VERDICT_MARK = {"check": "✔", "needs-review": "?", "do-not-check": "✘"}
ARROW_STYLE = {"↑": "red", "↓": "green", "→": "dim"}  # every figure is better lower


def render_trace(console: Console, found: Trace) -> None:
    """An indented timeline: each entry under the one that caused it."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    counts = found.counts()
    envs = ", ".join(cell(n, 60) for n in found.environments.values())
    summary = ", ".join(f"{n} {KINDS[k]}{'s' if n != 1 else ''}" for k, n in counts.items())
    table = Table(
        "time (UTC)",
        "+",
        "duration",
        "status",
        "what",
        title=f"Correlation {cell(found.correlation_id, 80)}",
        caption=f"{summary} in {envs}" if envs else summary,
        title_justify="left",
    )
    table.columns[0].no_wrap = True
    table.columns[4].overflow = "fold"
    first = next((e.time for e in found.entries if e.time is not None), None)
    for entry in found.entries:
        offset = (
            f"+{duration_cell((entry.time - first).total_seconds() * 1000)}"
            if entry.time is not None and first is not None
            else ""
        )
        status = cell(entry.status, 30)
        mark = "└ " if entry.indent else ""
        what = f"{mark}[dim]{KINDS[entry.kind]}[/] [bold]{cell(entry.name, 90)}[/]"
        if entry.detail:
            what += f"\n{' ' * len(mark)}[dim]{cell(entry.detail, 300)}[/]"
        table.add_row(
            f"{entry.time:%Y-%m-%d %H:%M:%S}" if entry.time is not None else "[dim]-[/]",
            offset,
            duration_cell(entry.duration_ms),
            f"[red]{status}[/]" if entry.failed else status,
            # Padding keeps wrapped lines under their entry.
            Padding(Text.from_markup(what), (0, 0, 0, 2 * entry.indent)),
        )
    console.print(table)


def render_history(console: Console, found: History) -> None:
    """One row per scan, oldest first; arrows against the scan before, regressions in red."""
    from rich.table import Table

    from auditor.explore.history import METRICS, format_metric

    where = cell(found.environment, 60) if found.environment else "all environments"
    table = Table(
        "scan",
        "time (UTC)",
        "status",
        f"A1–A{len(found.answers)}",
        "failure rate",
        "unnecessary runs (est.)",
        "plug-in p95",
        "flow run p95",
        "regressions",
        title=f"History, {where}",
        caption=" · ".join(f"A{k + 1} {a}" for k, a in enumerate(found.answers))
        + "\n"
        + ", ".join(f"[{VERDICT_STYLE[v]}]{m}[/] {v}" for v, m in VERDICT_MARK.items())
        + "; arrows against the scan before (→ within 10 %)",
    )
    table.columns[1].no_wrap = True
    table.columns[3].no_wrap = True
    table.columns[-1].overflow = "fold"
    for row in found.scans:
        verdicts = " ".join(
            f"[{VERDICT_STYLE[v]}]{VERDICT_MARK[v]}[/]" if v else "[dim]-[/]"
            for v in (row.verdicts.get(a) for a in found.answers)
        )
        figures = []
        for metric, _label in METRICS:
            arrow = row.trends.get(metric)
            text = format_metric(metric, getattr(row, metric))
            figures.append(text + (f" [{ARROW_STYLE[arrow]}]{arrow}[/]" if arrow else ""))
        regressions = "\n".join(f"[red]{r}[/]" for r in row.regressions) or "[dim]-[/]"
        table.add_row(
            str(row.scan_id),
            f"{row.time:%Y-%m-%d %H:%M}",
            row.status,
            verdicts,
            *figures,
            regressions,
        )
    console.print(table)


def render_diff(console: Console, changes: FindingsDiff, limit: int) -> None:
    """A section per kind of change, `limit` findings each."""
    a, b = changes.scan_a, changes.scan_b
    status = [c for c in changes.changed if c["change"] == "status"]
    message = [c for c in changes.changed if c["change"] == "message"]
    console.print(
        f"Scan {a} → scan {b}: {len(changes.appeared)} appeared, "
        f"{len(changes.disappeared)} disappeared, {len(changes.changed)} changed "
        f"({len(status)} status, {len(message)} message only).",
        soft_wrap=True,
    )
    sections = (
        (f"Appeared: failing in scan {b}, not in scan {a}", changes.appeared),
        (f"Disappeared: failing in scan {a}, not in scan {b}", changes.disappeared),
        ("Status changed", status),
        ("Message changed", message),
    )
    for title, rows in sections:
        if rows:
            _diff_table(console, title, rows, limit, a, b)


def _diff_table(
    console: Console,
    title: str,
    rows: Sequence[dict[str, Any]],
    limit: int,
    a: int,
    b: int,
) -> None:
    from rich.table import Table

    table = Table("check", "resource", f"status {a} → {b}", "message", title=title)
    table.columns[0].no_wrap = True
    for row in rows[:limit]:
        resource = cell(row["resource_name"] or row["resource_id"], 60)
        if row["environment"] and row["resource_kind"] != "environment":
            resource += f"\n[dim]{cell(row['environment'], 40)}[/]"
        before, after = row["message_a"], row["message_b"]
        if before is not None and after is not None and before != after:
            text = f"[dim]{a}:[/] {cell(before, 200)}\n[dim]{b}:[/] {cell(after, 200)}"
        else:
            text = cell(after if after is not None else before, 200)
        table.add_row(
            row["check_id"],
            resource,
            f"{row['status_a'] or '-'} → {row['status_b'] or '-'}",
            text,
        )
    if len(rows) > limit:
        table.caption = f"… and {len(rows) - limit} more (--limit, or --json for all)"
    console.print(table)


def print_export(written: Sequence[Exported], fmt: str, out_dir: Path) -> None:
    """The files an export wrote, one per table, and the totals."""
    from rich.table import Table

    listing = Table("table", "rows", "file", title=f"Exported {len(written)} tables ({fmt})")
    listing.columns[2].overflow = "fold"
    for item in written:
        listing.add_row(item.table, f"{item.rows:,}", markup(item.path))
    out.print(listing)
    out.print(
        f"{sum(i.rows for i in written):,} rows in {len(written)} files in {markup(out_dir)}",
        soft_wrap=True,
    )
