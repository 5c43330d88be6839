"""The tables of the listing commands: `config`, `environments`, `checks list`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table

from auditor.cli.output import out
from auditor.terminal import markup

if TYPE_CHECKING:
    from auditor.sources.base import Environment


def print_config(
    rows: Sequence[dict[str, Any]], secrets: dict[str, str], config_file: Path | None
) -> None:
    """Each setting, its value and where it came from; then whether each secret is set."""
    table = Table(
        "setting", "value", "from", title=f"Configuration ({markup(config_file or 'no file')})"
    )
    for row in rows:
        table.add_row(markup(row["key"]), markup(row["value"]), markup(row["source"]))
    for name, state in secrets.items():
        table.add_row(name, markup(state), "environment")
    out.print(table)


def print_environments(found: Sequence[Environment]) -> None:
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


def print_checks(rows: Sequence[dict[str, Any]]) -> None:
    """One row per check: id and title, answers, severity, thresholds (non-defaults marked)."""
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
