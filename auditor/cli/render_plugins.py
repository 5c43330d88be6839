"""The tables of `plugins top` and `plugin show`: plug-in steps ranked by what they cost, and
one step in detail."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditor.cli.output import cell, count_cell, duration_cell, rate_cell
from auditor.cli.render_explore import (
    add_checks_column,
    checks_cell,
    grid,
    inline_checks,
    many_environments,
    name_cell,
    print_findings_and_changes,
)

if TYPE_CHECKING:
    from rich.console import Console


def _stage_mode(row: dict[str, Any]) -> str:
    """Stage and mode as the Plug-in Registration Tool words them, short enough for a cell
    (`post-operation, async`)."""
    stage = str(row.get("stage_name") or row.get("stage") or "?").lower()
    mode = (
        {0: "sync", 1: "async"}.get(row["mode"], "?") if isinstance(row.get("mode"), int) else "?"
    )
    return cell(f"{stage}, {mode}")


def render_plugins_top(console: Console, rows: list[dict[str, Any]], by: str, title: str) -> None:
    from rich.table import Table

    if not rows:
        what = (
            "enabled custom Update step without filtering attributes"
            if by == "unfiltered"
            else f"step with anything to rank by {by}"
        )
        console.print(f"No {what} in {title}.")
        return
    many = many_environments(rows)
    inline = inline_checks(console)
    table = Table(
        "#",
        "step",
        "registration",
        "executions",
        "p95",
        "system jobs",
        title=f"Plug-in steps by {by}, {title}",
    )
    table.columns[1].min_width = 16 if inline else 24
    table.columns[1].overflow = "fold" if inline else "ellipsis"
    if not inline:
        add_checks_column(table, rows)
    hidden: dict[str, str] = {}
    for row in rows:
        if row["trace_logging"] != "All":
            hidden[str(row["environment"])] = str(row["trace_logging"])
        cells = [
            str(row["rank"]),
            name_cell(row, many, inline),
            f"{cell(row['message'], 20)} of {cell(row['table'], 30)}\n[dim]{_stage_mode(row)}[/]",
            f"{count_cell(row['executions'])}\n[dim]{count_cell(row['failures'])} failed[/]",
            duration_cell(row["p95_ms"]),
            f"{count_cell(row['jobs'])}\n[dim]{count_cell(row['jobs_failed'])} failed[/]"
            if row["jobs"]
            else "[dim]-[/]",
        ]
        table.add_row(*cells, *([] if inline else [checks_cell(row["failing_checks"])]))
    console.print(table)
    for environment, setting in sorted(hidden.items()):
        console.print(
            f"[yellow]note:[/] plug-in trace logging is {cell(setting)} in "
            f"{cell(environment, 60)}: executions and durations there are incomplete.",
            soft_wrap=True,
        )


def render_plugin(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    step, ex, logging = data["step"], data["executions"], data["trace_logging"]
    console.print(
        f"[bold]{cell(step['name'], 120)}[/]  [dim]{cell(step['environment'], 60)} · "
        f"step {step['stepid']}[/]",
        soft_wrap=True,
    )
    facts = [
        (
            "registration",
            f"{cell(step['message'])} of {cell(step['table'])}, {cell(step['stage_name'])}, "
            f"{cell(step['mode_name'])}, rank {cell(step['rank'])}, "
            + ("enabled" if step["enabled"] else "[yellow]disabled[/]"),
        ),
        (
            "filtering attributes",
            cell(step["filtering_attributes"], 200)
            if step["filtering_attributes"]
            else "[yellow]none[/]",
        ),
        (
            "plug-in",
            f"{cell(step['plugin_type'], 80)} "
            f"({cell(step['assembly'], 60)} {cell(step['assembly_version'])})",
        ),
        ("trace logging", f"{cell(logging['setting'])}: {cell(logging['evidence'], 120)}"),
        (
            "executions",
            f"{count_cell(ex['executions'])}, {count_cell(ex['failures'])} failed "
            f"({rate_cell(ex['failure_rate'])})",
        ),
        (
            "duration",
            f"p50 {duration_cell(ex['p50_ms'])}, p95 {duration_cell(ex['p95_ms'])}, "
            f"p99 {duration_cell(ex['p99_ms'])}, "
            f"max {duration_cell(ex['max_ms'])}",
        ),
        ("over 2 s (sync)", count_cell(ex["sync_over_guideline"])),
        ("near the 2 min timeout", count_cell(ex["near_timeout"])),
        (
            "depth",
            ", ".join(f"{d['depth']}: {d['executions']:,}" for d in data["depths"]) or "[dim]-[/]",
        ),
    ]
    console.print(grid(facts))
    if data["trace_errors"]:
        errors = Table("executions", "error (ids and numbers masked)", title="Top exceptions")
        for e in data["trace_errors"]:
            errors.add_row(count_cell(e["count"]), cell(e["error"], 160))
        console.print(errors)
    if data["system_jobs"]:
        jobs = Table(
            "jobs",
            "failed",
            "waiting",
            "suspended",
            "queue p95",
            "run p95",
            "streak (now)",
            "top error",
            title="System jobs",
        )
        for j in data["system_jobs"]:
            jobs.add_row(
                count_cell(j["jobs"]),
                f"{count_cell(j['failed'])} ({rate_cell(j['failure_rate'])})",
                count_cell(j["waiting"]),
                count_cell(j["suspended"]),
                duration_cell(j["queue_latency_p95_ms"]),
                duration_cell(j["run_time_p95_ms"]),
                f"{j['max_failure_streak']} ({j['current_failure_streak']})",
                cell(j["top_error"], 80),
            )
        console.print(jobs)
    print_findings_and_changes(console, data)
