"""The tables of `flows top` and `flow show`: cloud flows ranked by what they cost, and one
flow in detail."""

from __future__ import annotations

from collections.abc import Sequence
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

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: Sequence[int | float]) -> str:
    """One block per value, scaled to the largest; a zero is the lowest block and any
    non-zero value at least the second, so a quiet day never looks like an idle one."""
    top = max(values, default=0)
    if top <= 0:
        return BLOCKS[0] * len(values)
    steps = len(BLOCKS) - 1
    return "".join(BLOCKS[0 if v <= 0 else max(1, round(v / top * steps))] for v in values)


def _rate_interval(rate: Any, low: Any, high: Any) -> str:
    """A sampled rate and its 95 % interval in whole percent, such as `85 % [81–88]`."""
    if rate is None:
        return "-"
    text = f"{100 * float(rate):.0f} %"
    if low is not None and high is not None:
        text += f" \\[{100 * float(low):.0f}–{100 * float(high):.0f}]"  # not a markup tag
    return text


def render_flows_top(console: Console, rows: list[dict[str, Any]], by: str, title: str) -> None:
    from rich.table import Table

    if not rows:
        console.print(f"No flow has anything to rank by {by} in {title}.")
        return
    many = many_environments(rows)
    inline = inline_checks(console)
    table = Table(
        "#",
        "flow",
        "runs",
        "failed",
        "unnecessary",
        "retries",
        "p95",
        title=f"Flows by {by}, {title}",
        caption="unnecessary: runs that changed nothing, estimated from the sampled runs, with "
        "the sample's rate and 95 % interval; retries: retry attempts, of them throttled (429) "
        "and exhausted",
    )
    table.columns[1].min_width = 16 if inline else 24
    table.columns[1].overflow = "fold" if inline else "ellipsis"
    if not inline:
        add_checks_column(table, rows)
    for row in rows:
        unnecessary = "[dim]not sampled[/]"
        if row["sampled_runs"] is not None:
            interval = _rate_interval(
                row["unnecessary_rate"], row["unnecessary_rate_low"], row["unnecessary_rate_high"]
            )
            unnecessary = f"{count_cell(row['estimated_unnecessary_runs'])}\n[dim]{interval}[/]"
        retries = "[dim]0[/]"
        if row["retries"]:
            retries = (
                f"{count_cell(row['retries'])}\n[dim]{count_cell(row['throttled'])} / "
                f"{count_cell(row['retries_exhausted'])}[/]"
            )
        per_day = row["runs_per_day"]
        cells = [
            str(row["rank"]),
            name_cell(row, many, inline),
            count_cell(row["runs"]) + ("" if per_day is None else f"\n[dim]{per_day:,.1f}/day[/]"),
            f"{count_cell(row['failed'])}\n[dim]{rate_cell(row['failure_rate'])}[/]",
            unnecessary,
            retries,
            duration_cell(row["p95_duration_ms"]),
        ]
        table.add_row(*cells, *([] if inline else [checks_cell(row["failing_checks"])]))
    console.print(table)


def render_flow(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    from auditor.explore.flow_detail import RETRY_COLUMNS

    flow, trigger, actions, runs = data["flow"], data["trigger"], data["actions"], data["runs"]
    console.print(
        f"[bold]{cell(flow['name'], 120)}[/]  [dim]{cell(flow['environment'], 60)} · "
        f"flow {flow['flow_id']} · {cell(flow['state'])}[/]",
        soft_wrap=True,
    )
    if trigger is None:
        console.print("[yellow]No definition was read: trigger and actions are unknown.[/]")
    else:
        facts = [
            (
                "trigger",
                f"{cell(trigger['type'])}"
                + (f" ({cell(trigger['kind'])})" if trigger["kind"] else ""),
            ),
        ]
        if trigger["connector"] or trigger["operation"]:
            facts.append(
                ("connector", f"{cell(trigger['connector'])} / {cell(trigger['operation'])}")
            )
        dataverse = trigger["dataverse"]
        if dataverse:
            facts += [
                (
                    "message",
                    f"{cell(dataverse['message_name'])} of {cell(dataverse['table'])}"
                    f" (scope {cell(dataverse['scope_name'])})",
                ),
                (
                    "filtering attributes",
                    cell(dataverse["filtering_attributes"], 200)
                    if dataverse["filtering_attributes"]
                    else "[yellow]none[/]",
                ),
                (
                    "filter rows",
                    cell(dataverse["filter_expression"], 200)
                    if dataverse["filter_expression"]
                    else "[yellow]none[/]",
                ),
            ]
        if trigger["recurrence"]:
            facts.append(("recurrence", cell(trigger["recurrence"])))
        conditions = trigger["conditions"]
        facts.append(
            (
                "trigger conditions",
                "\n".join(cell(c, 200) for c in conditions) if conditions else "[yellow]none[/]",
            )
        )
        facts.append(
            (
                "actions",
                f"{actions['count']} (depth {actions['max_depth']}), "
                f"{len(actions['effect_actions'])} with an effect, "
                f"{len(actions['catch_paths'])} catch path(s)",
            )
        )
        console.print(grid(facts))
        if actions["external_calls"]:
            calls = Table("action", "connector / operation", "retry policy", title="External calls")
            for call in actions["external_calls"]:
                target = call["connector"] or f"{call['type']} {call['method'] or ''}".strip()
                policy = call["retry_policy"] + (
                    f" ({call['retry_count']})" if call["retry_count"] is not None else ""
                )
                calls.add_row(
                    cell(call["action"], 50),
                    cell(target, 50)
                    + (f" / {cell(call['operation'], 40)}" if call["operation"] else ""),
                    f"[yellow]{cell(policy)}[/]"
                    if call["retry_policy"] == "none"
                    else cell(policy),
                )
            console.print(calls)
    daily = runs["daily"]
    summary = [
        ("runs", f"{count_cell(runs['runs'])} ({runs['runs_per_day'] or 0:,.1f} a day)"),
        (
            "per day",
            f"{sparkline(daily['runs'])}  [dim]{min(daily['runs'], default=0)}–"
            f"{max(daily['runs'], default=0)} over {len(daily['runs'])} days[/]",
        ),
        (
            "failed",
            f"{count_cell(runs['failed'])} ({rate_cell(runs['failure_rate'])}), "
            f"longest streak {runs['failure_streak']}",
        ),
        ("failed per day", f"[red]{sparkline(daily['failed'])}[/]"),
        (
            "duration",
            f"p50 {duration_cell(runs['p50_duration_ms'])}, "
            f"p95 {duration_cell(runs['p95_duration_ms'])}, "
            f"max {duration_cell(runs['max_duration_ms'])}",
        ),
    ]
    executions = data["trigger_executions"]
    if executions is not None:
        summary.append(
            (
                "trigger executions",
                f"{count_cell(executions['trigger_executions'])}, "
                f"{count_cell(executions['executions_without_run'])} without a run"
                + (
                    f" [dim](link to the flow inferred: {cell(executions['link'])})[/]"
                    if executions.get("link_inferred")
                    else ""
                ),
            )
        )
    unnecessary = data["unnecessary"]
    if unnecessary is not None:
        summary.append(
            (
                "unnecessary runs",
                f"{unnecessary['unnecessary']} of {unnecessary['sampled']} sampled "
                f"({rate_cell(unnecessary['rate'])}, "
                f"95 % interval {rate_cell(unnecessary['rate_low'])} to "
                f"{rate_cell(unnecessary['rate_high'])}); est. "
                f"{count_cell(unnecessary['estimated_unnecessary_runs'])} of "
                f"{count_cell(unnecessary['finished_runs'])} finished runs",
            )
        )
        if unnecessary["example_runs"]:
            summary.append(
                (
                    "  e.g. runs",
                    "\n".join(cell(r["run_name"]) for r in unnecessary["example_runs"]),
                )
            )
    else:
        summary.append(("unnecessary runs", "[dim]no run read with action detail[/]"))
    console.print(grid(summary))
    if data["error_clusters"]:
        errors = Table(
            "runs", "code", "error (ids and numbers masked)", "last seen", title="Top errors"
        )
        for e in data["error_clusters"]:
            seen = str(e["last_seen"] or "")[:16].replace("T", " ")
            errors.add_row(
                count_cell(e["count"]), cell(e["error_code"]), cell(e["cluster"], 160), seen
            )
        console.print(errors)
    if data["slowest_actions"]:
        slow = Table("action", "runs", "p50", "p95", "max", title="Slowest actions")
        for a in data["slowest_actions"]:
            slow.add_row(
                cell(a["action"], 50),
                count_cell(a["executions"]),
                duration_cell(a["p50_ms"]),
                duration_cell(a["p95_ms"]),
                duration_cell(a["max_ms"]),
            )
        console.print(slow)
    if data["retries"]:
        retries = Table(
            "action",
            "retried",
            "retries",
            "recovered",
            "exhausted",
            "429",
            "5xx",
            "408",
            title="Retries and throttling",
        )
        for r in data["retries"]:
            retries.add_row(
                cell(r["action"], 50),
                *[count_cell(r[k]) for k in RETRY_COLUMNS],
            )
        console.print(retries)
    print_findings_and_changes(console, data)
