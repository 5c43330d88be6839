"""What the investigation tables share: the name cell, the failing checks, the facts grid,
the findings and what to change, the window's title."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from auditor.cli.output import STATUS_STYLE, cell

if TYPE_CHECKING:
    from rich.console import Console

    from auditor.checks.evidence import Evidence

WIDE = 120  # columns from which the top tables give the failing checks a column


def checks_cell(ids: list[str]) -> str:
    return "\n".join(f"[red]{i}[/]" for i in ids) if ids else "[dim]-[/]"


def inline_checks(console: Console) -> bool:
    """On a narrow console the failing checks go under the name instead of in a column of
    their own, so the numbers keep their room and check ids are not cut."""
    return console.width < WIDE


def add_checks_column(table: Any, rows: list[dict[str, Any]]) -> None:
    longest = max((len(i) for r in rows for i in r["failing_checks"]), default=1)
    table.add_column("failing checks", min_width=min(longest, 34), overflow="fold")


def name_cell(row: dict[str, Any], many: bool, inline: bool) -> str:
    """The resource's name, its environment when several are listed, and (narrow console)
    the checks that fail for it."""
    text = cell(row["name"], 60)
    if many:
        text += f"\n[dim]{cell(row['environment'], 40)}[/]"
    if inline and row["failing_checks"]:
        text += "\n[red]" + ", ".join(row["failing_checks"]) + "[/]"
    return text


def many_environments(rows: list[dict[str, Any]]) -> bool:
    return len({r["environment_id"] for r in rows}) > 1


def grid(rows: list[tuple[str, str]]) -> Any:
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column()
    for key, value in rows:
        grid.add_row(key, value)
    return grid


def print_findings_and_changes(console: Console, data: dict[str, Any]) -> None:
    from rich.table import Table

    found = data["findings"]
    if found:
        # An action's finding names the action (its resource id is "<flow id>/<action>").
        actions = any(f["resource_kind"] == "action" for f in found)
        table = Table("status", "check", *(["action"] if actions else []), "message")
        table.title = "Findings"
        table.columns[1].no_wrap = True
        for f in found:
            style = STATUS_STYLE.get(str(f["status"]), "white")
            action = (
                str(f["resource_id"]).partition("/")[2] if f["resource_kind"] == "action" else ""
            )
            table.add_row(
                f"[{style}]{f['status']}[/]",
                str(f["check_id"]),
                *([cell(action, 50)] if actions else []),
                cell(f["message"], 200),
            )
        console.print(table)
    else:
        console.print("[dim]No stored finding names it.[/]")
    for change in data["to_change"]:
        console.print(
            f"[bold]What to change[/] ({change['check_id']}): {cell(change['remediation'], 400)}"
            f"\n  [link={change['learn_url']}]{cell(change['learn_url'], 200)}[/link]",
            soft_wrap=True,
        )


def window_title(evidence: Evidence) -> str:
    window = evidence.frames.window
    return f"{window.start:%Y-%m-%d %H:%M} to {window.end:%Y-%m-%d %H:%M} UTC"
