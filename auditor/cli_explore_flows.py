"""`auditor flows top`, `flow show`, `plugins top`, `plugin show`: the investigation commands.

Thin, as every command (style.md rule 10): options -> Settings -> `auditor.explore` -> a rich
table for people or `--json` for machines. They read the store only, so they work offline on
a copy of a scheduled scan's store. Tenant text (flow and step names, error messages) is
cleaned of control and bidi characters and escaped, so it is never read as rich markup.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console

    from auditor.checks.evidence import Evidence

INVESTIGATE = "Investigate"
BLOCKS = "▁▂▃▄▅▆▇█"
WIDE = 120  # columns from which the top tables give the failing checks a column
_STATUS_STYLE = {"pass": "green", "fail": "red", "not-assessed": "yellow", "error": "magenta"}

EnvOpt = Annotated[
    str | None, typer.Option("--env", "-e", help="Only this environment (name or id).")
]
LimitOpt = Annotated[int, typer.Option(min=1, help="Rows to show.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
StoreOpt = Annotated[Path | None, typer.Option(help="The store file (AUDITOR_STORE).")]
WindowOpt = Annotated[
    str, typer.Option(help="Analysis window up to the latest scan's end: 7d, 30d, 12h.")
]


# Formatting -----------------------------------------------------------------------------


def sparkline(values: Sequence[int | float]) -> str:
    """One block per value, scaled to the largest; a zero is the lowest block and any
    non-zero value at least the second, so a quiet day never looks like an idle one."""
    top = max(values, default=0)
    if top <= 0:
        return BLOCKS[0] * len(values)
    steps = len(BLOCKS) - 1
    return "".join(BLOCKS[0 if v <= 0 else max(1, round(v / top * steps))] for v in values)


def _text(value: Any, limit: int = 80) -> str:
    """Tenant text for a table cell: one line, no control or bidi characters, escaped."""
    from auditor.terminal import markup

    return markup(value, limit) if value is not None else "[dim]-[/]"


def _count(value: Any) -> str:
    return "[dim]-[/]" if value is None else f"{value:,.0f}"


def _rate(value: Any) -> str:
    return "[dim]-[/]" if value is None else f"{100 * float(value):.1f} %"


def _ms(value: Any) -> str:
    """A duration for people: ms below a second, then s, min, h."""
    if value is None:
        return "[dim]-[/]"
    ms = float(value)
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def _rate_interval(rate: Any, low: Any, high: Any) -> str:
    """A sampled rate and its 95 % interval in whole percent, such as `85 % [81–88]`."""
    if rate is None:
        return "-"
    text = f"{100 * float(rate):.0f} %"
    if low is not None and high is not None:
        text += f" \\[{100 * float(low):.0f}–{100 * float(high):.0f}]"  # not a markup tag
    return text


def _checks(ids: list[str]) -> str:
    return "\n".join(f"[red]{i}[/]" for i in ids) if ids else "[dim]-[/]"


def _print_json(console: Console, data: Any) -> None:
    console.print_json(json.dumps(data, allow_nan=False), ensure_ascii=True)


def _inline_checks(console: Console) -> bool:
    """On a narrow console the failing checks go under the name instead of in a column of
    their own, so the numbers keep their room and check ids are not cut."""
    return console.width < WIDE


def _checks_column(table: Any, rows: list[dict[str, Any]]) -> None:
    longest = max((len(i) for r in rows for i in r["failing_checks"]), default=1)
    table.add_column("failing checks", min_width=min(longest, 34), overflow="fold")


def _name_cell(row: dict[str, Any], many: bool, inline: bool) -> str:
    """The resource's name, its environment when several are listed, and (narrow console)
    the checks that fail for it."""
    cell = _text(row["name"], 60)
    if many:
        cell += f"\n[dim]{_text(row['environment'], 40)}[/]"
    if inline and row["failing_checks"]:
        cell += "\n[red]" + ", ".join(row["failing_checks"]) + "[/]"
    return cell


def _stage_mode(row: dict[str, Any]) -> str:
    """Stage and mode as the Plug-in Registration Tool words them, short enough for a cell
    (`post-operation, async`)."""
    stage = str(row.get("stage_name") or row.get("stage") or "?").lower()
    mode = (
        {0: "sync", 1: "async"}.get(row["mode"], "?") if isinstance(row.get("mode"), int) else "?"
    )
    return _text(f"{stage}, {mode}")


def _many_environments(rows: list[dict[str, Any]]) -> bool:
    return len({r["environment_id"] for r in rows}) > 1


# Loading --------------------------------------------------------------------------------


def _load(store: Path | None, window: str, env: str | None) -> tuple[Evidence, pd.DataFrame]:
    """The stored findings (checked first: it is cheap and names a missing analysis) and the
    evidence of the latest scan's window, for one environment when `env` is given."""
    from auditor.cli import _duration, _state
    from auditor.explore.common import load_evidence, stored_findings

    settings = _state.settings(store_path=store)
    length = _duration(window, "--window")
    findings = stored_findings(settings)
    evidence = load_evidence(settings, window=length, environments=[env] if env else ())
    return evidence, findings


# Renderers ------------------------------------------------------------------------------


def render_flows_top(console: Console, rows: list[dict[str, Any]], by: str, title: str) -> None:
    from rich.table import Table

    if not rows:
        console.print(f"No flow has anything to rank by {by} in {title}.")
        return
    many = _many_environments(rows)
    inline = _inline_checks(console)
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
        _checks_column(table, rows)
    for row in rows:
        unnecessary = "[dim]not sampled[/]"
        if row["sampled_runs"] is not None:
            interval = _rate_interval(
                row["unnecessary_rate"], row["unnecessary_rate_low"], row["unnecessary_rate_high"]
            )
            unnecessary = f"{_count(row['estimated_unnecessary_runs'])}\n[dim]{interval}[/]"
        retries = "[dim]0[/]"
        if row["retries"]:
            retries = (
                f"{_count(row['retries'])}\n[dim]{_count(row['throttled'])} / "
                f"{_count(row['retries_exhausted'])}[/]"
            )
        per_day = row["runs_per_day"]
        cells = [
            str(row["rank"]),
            _name_cell(row, many, inline),
            _count(row["runs"]) + ("" if per_day is None else f"\n[dim]{per_day:,.1f}/day[/]"),
            f"{_count(row['failed'])}\n[dim]{_rate(row['failure_rate'])}[/]",
            unnecessary,
            retries,
            _ms(row["p95_duration_ms"]),
        ]
        table.add_row(*cells, *([] if inline else [_checks(row["failing_checks"])]))
    console.print(table)


def _grid(rows: list[tuple[str, str]]) -> Any:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def _findings_and_changes(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    found = data["findings"]
    if found:
        # An action's finding names the action (its resource id is "<flow id>/<action>").
        actions = any(f["resource_kind"] == "action" for f in found)
        table = Table("status", "check", *(["action"] if actions else []), "message")
        table.title = "Findings"
        table.columns[1].no_wrap = True
        for f in found:
            style = _STATUS_STYLE.get(str(f["status"]), "white")
            action = (
                str(f["resource_id"]).partition("/")[2] if f["resource_kind"] == "action" else ""
            )
            table.add_row(
                f"[{style}]{f['status']}[/]",
                str(f["check_id"]),
                *([_text(action, 50)] if actions else []),
                _text(f["message"], 200),
            )
        console.print(table)
    else:
        console.print("[dim]No stored finding names it.[/]")
    for change in data["to_change"]:
        console.print(
            f"[bold]What to change[/] ({change['check_id']}): {_text(change['remediation'], 400)}"
            f"\n  [link={change['learn_url']}]{_text(change['learn_url'], 200)}[/link]",
            soft_wrap=True,
        )


def render_flow(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    from auditor.explore.flows import RETRY_COLUMNS

    flow, trigger, actions, runs = data["flow"], data["trigger"], data["actions"], data["runs"]
    console.print(
        f"[bold]{_text(flow['name'], 120)}[/]  [dim]{_text(flow['environment'], 60)} · "
        f"flow {flow['flow_id']} · {_text(flow['state'])}[/]",
        soft_wrap=True,
    )
    if trigger is None:
        console.print("[yellow]No definition was read: trigger and actions are unknown.[/]")
    else:
        facts = [
            (
                "trigger",
                f"{_text(trigger['type'])}"
                + (f" ({_text(trigger['kind'])})" if trigger["kind"] else ""),
            ),
        ]
        if trigger["connector"] or trigger["operation"]:
            facts.append(
                ("connector", f"{_text(trigger['connector'])} / {_text(trigger['operation'])}")
            )
        dataverse = trigger["dataverse"]
        if dataverse:
            facts += [
                (
                    "message",
                    f"{_text(dataverse['message_name'])} of {_text(dataverse['table'])}"
                    f" (scope {_text(dataverse['scope_name'])})",
                ),
                (
                    "filtering attributes",
                    _text(dataverse["filtering_attributes"], 200)
                    if dataverse["filtering_attributes"]
                    else "[yellow]none[/]",
                ),
                (
                    "filter rows",
                    _text(dataverse["filter_expression"], 200)
                    if dataverse["filter_expression"]
                    else "[yellow]none[/]",
                ),
            ]
        if trigger["recurrence"]:
            facts.append(("recurrence", _text(trigger["recurrence"])))
        conditions = trigger["conditions"]
        facts.append(
            (
                "trigger conditions",
                "\n".join(_text(c, 200) for c in conditions) if conditions else "[yellow]none[/]",
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
        console.print(_grid(facts))
        if actions["external_calls"]:
            calls = Table("action", "connector / operation", "retry policy", title="External calls")
            for call in actions["external_calls"]:
                target = call["connector"] or f"{call['type']} {call['method'] or ''}".strip()
                policy = call["retry_policy"] + (
                    f" ({call['retry_count']})" if call["retry_count"] is not None else ""
                )
                calls.add_row(
                    _text(call["action"], 50),
                    _text(target, 50)
                    + (f" / {_text(call['operation'], 40)}" if call["operation"] else ""),
                    f"[yellow]{_text(policy)}[/]"
                    if call["retry_policy"] == "none"
                    else _text(policy),
                )
            console.print(calls)
    daily = runs["daily"]
    summary = [
        ("runs", f"{_count(runs['runs'])} ({runs['runs_per_day'] or 0:,.1f} a day)"),
        (
            "per day",
            f"{sparkline(daily['runs'])}  [dim]{min(daily['runs'], default=0)}–"
            f"{max(daily['runs'], default=0)} over {len(daily['runs'])} days[/]",
        ),
        (
            "failed",
            f"{_count(runs['failed'])} ({_rate(runs['failure_rate'])}), "
            f"longest streak {runs['failure_streak']}",
        ),
        ("failed per day", f"[red]{sparkline(daily['failed'])}[/]"),
        (
            "duration",
            f"p50 {_ms(runs['p50_duration_ms'])}, p95 {_ms(runs['p95_duration_ms'])}, "
            f"max {_ms(runs['max_duration_ms'])}",
        ),
    ]
    executions = data["trigger_executions"]
    if executions is not None:
        summary.append(
            (
                "trigger executions",
                f"{_count(executions['trigger_executions'])}, "
                f"{_count(executions['executions_without_run'])} without a run"
                + (
                    f" [dim](link to the flow inferred: {_text(executions['link'])})[/]"
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
                f"({_rate(unnecessary['rate'])}, 95 % interval {_rate(unnecessary['rate_low'])} to "
                f"{_rate(unnecessary['rate_high'])}); est. "
                f"{_count(unnecessary['estimated_unnecessary_runs'])} of "
                f"{_count(unnecessary['finished_runs'])} finished runs",
            )
        )
        if unnecessary["example_runs"]:
            summary.append(
                (
                    "  e.g. runs",
                    "\n".join(_text(r["run_name"]) for r in unnecessary["example_runs"]),
                )
            )
    else:
        summary.append(("unnecessary runs", "[dim]no run read with action detail[/]"))
    console.print(_grid(summary))
    if data["error_clusters"]:
        errors = Table(
            "runs", "code", "error (ids and numbers masked)", "last seen", title="Top errors"
        )
        for e in data["error_clusters"]:
            seen = str(e["last_seen"] or "")[:16].replace("T", " ")
            errors.add_row(
                _count(e["count"]), _text(e["error_code"]), _text(e["cluster"], 160), seen
            )
        console.print(errors)
    if data["slowest_actions"]:
        slow = Table("action", "runs", "p50", "p95", "max", title="Slowest actions")
        for a in data["slowest_actions"]:
            slow.add_row(
                _text(a["action"], 50),
                _count(a["executions"]),
                _ms(a["p50_ms"]),
                _ms(a["p95_ms"]),
                _ms(a["max_ms"]),
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
                _text(r["action"], 50),
                *[_count(r[k]) for k in RETRY_COLUMNS],
            )
        console.print(retries)
    _findings_and_changes(console, data)


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
    many = _many_environments(rows)
    inline = _inline_checks(console)
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
        _checks_column(table, rows)
    hidden: dict[str, str] = {}
    for row in rows:
        if row["trace_logging"] != "All":
            hidden[str(row["environment"])] = str(row["trace_logging"])
        cells = [
            str(row["rank"]),
            _name_cell(row, many, inline),
            f"{_text(row['message'], 20)} of {_text(row['table'], 30)}\n[dim]{_stage_mode(row)}[/]",
            f"{_count(row['executions'])}\n[dim]{_count(row['failures'])} failed[/]",
            _ms(row["p95_ms"]),
            f"{_count(row['jobs'])}\n[dim]{_count(row['jobs_failed'])} failed[/]"
            if row["jobs"]
            else "[dim]-[/]",
        ]
        table.add_row(*cells, *([] if inline else [_checks(row["failing_checks"])]))
    console.print(table)
    for environment, setting in sorted(hidden.items()):
        console.print(
            f"[yellow]note:[/] plug-in trace logging is {_text(setting)} in "
            f"{_text(environment, 60)}: executions and durations there are incomplete.",
            soft_wrap=True,
        )


def render_plugin(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    step, ex, logging = data["step"], data["executions"], data["trace_logging"]
    console.print(
        f"[bold]{_text(step['name'], 120)}[/]  [dim]{_text(step['environment'], 60)} · "
        f"step {step['stepid']}[/]",
        soft_wrap=True,
    )
    facts = [
        (
            "registration",
            f"{_text(step['message'])} of {_text(step['table'])}, {_text(step['stage_name'])}, "
            f"{_text(step['mode_name'])}, rank {_text(step['rank'])}, "
            + ("enabled" if step["enabled"] else "[yellow]disabled[/]"),
        ),
        (
            "filtering attributes",
            _text(step["filtering_attributes"], 200)
            if step["filtering_attributes"]
            else "[yellow]none[/]",
        ),
        (
            "plug-in",
            f"{_text(step['plugin_type'], 80)} "
            f"({_text(step['assembly'], 60)} {_text(step['assembly_version'])})",
        ),
        ("trace logging", f"{_text(logging['setting'])}: {_text(logging['evidence'], 120)}"),
        (
            "executions",
            f"{_count(ex['executions'])}, {_count(ex['failures'])} failed "
            f"({_rate(ex['failure_rate'])})",
        ),
        (
            "duration",
            f"p50 {_ms(ex['p50_ms'])}, p95 {_ms(ex['p95_ms'])}, p99 {_ms(ex['p99_ms'])}, "
            f"max {_ms(ex['max_ms'])}",
        ),
        ("over 2 s (sync)", _count(ex["sync_over_guideline"])),
        ("near the 2 min timeout", _count(ex["near_timeout"])),
        (
            "depth",
            ", ".join(f"{d['depth']}: {d['executions']:,}" for d in data["depths"]) or "[dim]-[/]",
        ),
    ]
    console.print(_grid(facts))
    if data["trace_errors"]:
        errors = Table("executions", "error (ids and numbers masked)", title="Top exceptions")
        for e in data["trace_errors"]:
            errors.add_row(_count(e["count"]), _text(e["error"], 160))
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
                _count(j["jobs"]),
                f"{_count(j['failed'])} ({_rate(j['failure_rate'])})",
                _count(j["waiting"]),
                _count(j["suspended"]),
                _ms(j["queue_latency_p95_ms"]),
                _ms(j["run_time_p95_ms"]),
                f"{j['max_failure_streak']} ({j['current_failure_streak']})",
                _text(j["top_error"], 80),
            )
        console.print(jobs)
    _findings_and_changes(console, data)


def _window_title(evidence: Evidence) -> str:
    window = evidence.frames.window
    return f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"


# Registration ---------------------------------------------------------------------------


def register(app: typer.Typer) -> None:
    """Add `flows`, `flow`, `plugins` and `plugin` to the `auditor` app (once)."""
    if any(group.name in ("flows", "flow", "plugins", "plugin") for group in app.registered_groups):
        return
    from auditor.cli import handles_errors, out

    flows_app = typer.Typer(help="Rank cloud flows by what they cost.", no_args_is_help=True)
    flow_app = typer.Typer(help="One cloud flow in detail.", no_args_is_help=True)
    plugins_app = typer.Typer(help="Rank plug-in steps by what they cost.", no_args_is_help=True)
    plugin_app = typer.Typer(help="One plug-in step in detail.", no_args_is_help=True)
    app.add_typer(flows_app, name="flows", rich_help_panel=INVESTIGATE)
    app.add_typer(flow_app, name="flow", rich_help_panel=INVESTIGATE)
    app.add_typer(plugins_app, name="plugins", rich_help_panel=INVESTIGATE)
    app.add_typer(plugin_app, name="plugin", rich_help_panel=INVESTIGATE)

    def emit(as_json: bool, data: Any, render: Callable[[], None]) -> None:
        if as_json:
            _print_json(out, data)
        else:
            render()

    @flows_app.command("top")
    @handles_errors
    def flows_top(
        by: Annotated[
            str, typer.Option(help="noise, failures, retries, duration or runs.")
        ] = "noise",
        env: EnvOpt = None,
        limit: LimitOpt = 20,
        as_json: JsonOpt = False,
        store: StoreOpt = None,
        window: WindowOpt = "7d",
    ) -> None:
        """The flows that run most for nothing, fail, retry or take longest, with their
        measured values and the checks that fail for each."""
        from auditor.explore.common import check_by
        from auditor.explore.flows import FLOW_RANKINGS
        from auditor.explore.flows import flows_top as top

        check_by(by, FLOW_RANKINGS, "auditor flows top")
        evidence, findings = _load(store, window, env)
        rows = top(evidence, findings, by, limit=limit)
        emit(as_json, rows, lambda: render_flows_top(out, rows, by, _window_title(evidence)))

    @flow_app.command("show")
    @handles_errors
    def flow_show(
        name: Annotated[str, typer.Argument(help="The flow's display name or id.")],
        env: EnvOpt = None,
        as_json: JsonOpt = False,
        store: StoreOpt = None,
        window: WindowOpt = "7d",
    ) -> None:
        """One flow: trigger and filters, actions, runs per day, failures, slow and retried
        actions, sampled unnecessary runs, findings and what to change."""
        from auditor.explore.flows import flow_show as show

        evidence, findings = _load(store, window, env)
        data = show(evidence, findings, name)
        emit(as_json, data, lambda: render_flow(out, data))

    @plugins_app.command("top")
    @handles_errors
    def plugins_top(
        by: Annotated[
            str, typer.Option(help="executions, failures, duration or unfiltered.")
        ] = "executions",
        env: EnvOpt = None,
        limit: LimitOpt = 20,
        as_json: JsonOpt = False,
        store: StoreOpt = None,
        window: WindowOpt = "7d",
    ) -> None:
        """The plug-in steps that run most, fail, take longest, or run on every update of
        their table (unfiltered), with their system jobs and failing checks."""
        from auditor.explore.common import check_by
        from auditor.explore.plugins import PLUGIN_RANKINGS
        from auditor.explore.plugins import plugins_top as top

        check_by(by, PLUGIN_RANKINGS, "auditor plugins top")
        evidence, findings = _load(store, window, env)
        rows = top(evidence, findings, by, limit=limit)
        emit(as_json, rows, lambda: render_plugins_top(out, rows, by, _window_title(evidence)))

    @plugin_app.command("show")
    @handles_errors
    def plugin_show(
        step: Annotated[str, typer.Argument(help="The step's name or id.")],
        env: EnvOpt = None,
        as_json: JsonOpt = False,
        store: StoreOpt = None,
        window: WindowOpt = "7d",
    ) -> None:
        """One plug-in step: registration, executions, durations, depth, system jobs,
        findings and what to change."""
        from auditor.explore.plugins import plugin_show as show

        evidence, findings = _load(store, window, env)
        data = show(evidence, findings, step)
        emit(as_json, data, lambda: render_plugin(out, data))


__all__ = ["register", "sparkline"]
