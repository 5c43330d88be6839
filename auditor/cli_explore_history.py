"""`auditor trace`, `history`, `diff` and `export`: investigation over time, from the store.

Thin, as every command (style.md rule 10): options -> Settings -> `auditor.explore` -> a rich
table for people or `--json` for machines. They open the store read-only, so they work
offline and beside a running scan's copy. Tenant text (step, job and flow names, error
messages) is put on one line without control characters and escaped, so it is never read
as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from auditor.explore.history import FindingsDiff, History
    from auditor.explore.timeline import Trace
    from auditor.store import Store

INVESTIGATE = "Investigate"
_KINDS = {"plugin": "plug-in", "system-job": "system job", "flow-run": "flow run"}
_VERDICT_STYLE = {"check": "green", "do-not-check": "red", "needs-review": "yellow"}
_VERDICT_MARK = {"check": "✔", "needs-review": "?", "do-not-check": "✘"}
_ARROW_STYLE = {"↑": "red", "↓": "green", "→": "dim"}  # every figure is better lower

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
StoreOpt = Annotated[Path | None, typer.Option(help="The store file (AUDITOR_STORE).")]
EnvOpt = Annotated[
    str | None,
    typer.Option("--env", "--environment", "-e", help="Only this environment (name or id)."),
]


def register(app: typer.Typer) -> None:
    """Adds the commands to the `auditor` app (imported here: auditor.cli imports this)."""
    from auditor.cli import handles_errors

    app.command("trace", rich_help_panel=INVESTIGATE)(handles_errors(trace_command))
    app.command("history", rich_help_panel=INVESTIGATE)(handles_errors(history_command))
    app.command("diff", rich_help_panel=INVESTIGATE)(handles_errors(diff_command))
    app.command("export", rich_help_panel=INVESTIGATE)(handles_errors(export_command))


def _open(store: Path | None, files_in: Path | None = None) -> Store:
    """The store, read-only; DuckDB may write files only into `files_in` (an export)."""
    from auditor.analyze import open_existing
    from auditor.cli import _state

    return open_existing(_state.settings(store_path=store), read_only=True, files_in=files_in)


def _console() -> Console:
    from auditor.cli import out

    return out


def _print_json(data: Any) -> None:
    _console().print_json(json.dumps(data, allow_nan=False), ensure_ascii=True)


def _text(value: Any, limit: int = 120) -> str:
    """Tenant text for a cell: one line, no control or bidi characters, escaped."""
    from auditor.terminal import markup

    return markup(value, limit) if value is not None else "[dim]-[/]"


def _ms(value: float | None) -> str:
    from auditor.explore.history import format_metric

    return "[dim]-[/]" if value is None else format_metric("duration", value)


# trace ----------------------------------------------------------------------------------


def trace_command(
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

    with _open(store) as opened:
        found = trace(opened, correlation_id)
    if as_json:
        _print_json(found.as_dict())
        return
    render_trace(_console(), found)


def render_trace(console: Console, found: Trace) -> None:
    """An indented timeline: each entry under the one that caused it."""
    from rich.padding import Padding
    from rich.table import Table
    from rich.text import Text

    counts = found.counts()
    envs = ", ".join(_text(n, 60) for n in found.environments.values())
    summary = ", ".join(f"{n} {_KINDS[k]}{'s' if n != 1 else ''}" for k, n in counts.items())
    table = Table(
        "time (UTC)",
        "+",
        "duration",
        "status",
        "what",
        title=f"Correlation {_text(found.correlation_id, 80)}",
        caption=f"{summary} in {envs}" if envs else summary,
        title_justify="left",
    )
    table.columns[0].no_wrap = True
    table.columns[4].overflow = "fold"
    first = next((e.time for e in found.entries if e.time is not None), None)
    for entry in found.entries:
        offset = (
            f"+{_ms((entry.time - first).total_seconds() * 1000)}"
            if entry.time is not None and first is not None
            else ""
        )
        status = _text(entry.status, 30)
        mark = "└ " if entry.indent else ""
        what = f"{mark}[dim]{_KINDS[entry.kind]}[/] [bold]{_text(entry.name, 90)}[/]"
        if entry.detail:
            what += f"\n{' ' * len(mark)}[dim]{_text(entry.detail, 300)}[/]"
        table.add_row(
            f"{entry.time:%Y-%m-%d %H:%M:%S}" if entry.time is not None else "[dim]-[/]",
            offset,
            _ms(entry.duration_ms),
            f"[red]{status}[/]" if entry.failed else status,
            # Padding keeps wrapped lines under their entry.
            Padding(Text.from_markup(what), (0, 0, 0, 2 * entry.indent)),
        )
    console.print(table)


# history --------------------------------------------------------------------------------


def history_command(env: EnvOpt = None, as_json: JsonOpt = False, store: StoreOpt = None) -> None:
    """Per analysed scan: verdicts, failure rate, unnecessary runs, p95s and their trends."""
    from auditor.explore.history import history

    with _open(store) as opened:
        found = history(opened, env)
    if as_json:
        _print_json(found.as_dict())
        return
    render_history(_console(), found)


def render_history(console: Console, found: History) -> None:
    """One row per scan, oldest first; arrows against the scan before, regressions in red."""
    from rich.table import Table

    from auditor.explore.history import METRICS, format_metric

    where = _text(found.environment, 60) if found.environment else "all environments"
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
        + ", ".join(f"[{_VERDICT_STYLE[v]}]{m}[/] {v}" for v, m in _VERDICT_MARK.items())
        + "; arrows against the scan before (→ within 10 %)",
    )
    table.columns[1].no_wrap = True
    table.columns[3].no_wrap = True
    table.columns[-1].overflow = "fold"
    for row in found.scans:
        verdicts = " ".join(
            f"[{_VERDICT_STYLE[v]}]{_VERDICT_MARK[v]}[/]" if v else "[dim]-[/]"
            for v in (row.verdicts.get(a) for a in found.answers)
        )
        figures = []
        for metric, _label in METRICS:
            arrow = row.trends.get(metric)
            text = format_metric(metric, getattr(row, metric))
            figures.append(text + (f" [{_ARROW_STYLE[arrow]}]{arrow}[/]" if arrow else ""))
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


# diff -----------------------------------------------------------------------------------


def diff_command(
    scan_a: Annotated[str, typer.Argument(help="The earlier scan: a number, or previous.")],
    scan_b: Annotated[str, typer.Argument(help="The later scan: a number, or latest.")],
    limit: Annotated[int, typer.Option(min=1, help="Findings shown per section.")] = 20,
    as_json: JsonOpt = False,
    store: StoreOpt = None,
) -> None:
    """Findings that appeared, disappeared or changed from one analysed scan to another."""
    from auditor.explore.history import diff, parse_scan

    with _open(store) as opened:
        changes = diff(opened, parse_scan(opened, scan_a), parse_scan(opened, scan_b))
    if as_json:
        _print_json(changes.as_dict())
        return
    render_diff(_console(), changes, limit)


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
        resource = _text(row["resource_name"] or row["resource_id"], 60)
        if row["environment"] and row["resource_kind"] != "environment":
            resource += f"\n[dim]{_text(row['environment'], 40)}[/]"
        before, after = row["message_a"], row["message_b"]
        if before is not None and after is not None and before != after:
            text = f"[dim]{a}:[/] {_text(before, 200)}\n[dim]{b}:[/] {_text(after, 200)}"
        else:
            text = _text(after if after is not None else before, 200)
        table.add_row(
            row["check_id"],
            resource,
            f"{row['status_a'] or '-'} → {row['status_b'] or '-'}",
            text,
        )
    if len(rows) > limit:
        table.caption = f"… and {len(rows) - limit} more (--limit, or --json for all)"
    console.print(table)


# export ---------------------------------------------------------------------------------


def export_command(
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
    from rich.table import Table

    from auditor.explore.export import export
    from auditor.terminal import markup

    with _open(store, files_in=out_dir) as opened:
        written = export(opened, out_dir, fmt.strip().lower(), table or ())
    listing = Table("table", "rows", "file", title=f"Exported {len(written)} tables ({fmt})")
    listing.columns[2].overflow = "fold"
    for item in written:
        listing.add_row(item.table, f"{item.rows:,}", markup(item.path))
    console = _console()
    console.print(listing)
    console.print(
        f"{sum(i.rows for i in written):,} rows in {len(written)} files in {markup(out_dir)}",
        soft_wrap=True,
    )


__all__ = ["register", "render_diff", "render_history", "render_trace"]
