"""The consoles, styles and table cells every command and renderer shares, defined once.

Tenant text (flow, step and job names, error messages) goes through `cell`: one line without
control or bidi characters, escaped, so it is never read as rich markup.
"""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from auditor.terminal import markup

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

VERDICT_STYLE = {"check": "green", "do-not-check": "red", "needs-review": "yellow"}
STATUS_STYLE = {"pass": "green", "fail": "red", "not-assessed": "yellow", "error": "magenta"}
DASH = "[dim]-[/]"


def cell(value: Any, limit: int = 80) -> str:
    """Tenant text for a table cell, cut to `limit` characters; a dim dash for nothing."""
    return markup(value, limit) if value is not None else DASH


def count_cell(value: Any) -> str:
    return DASH if value is None else f"{value:,.0f}"


def rate_cell(value: Any) -> str:
    return DASH if value is None else f"{100 * float(value):.1f} %"


def duration_cell(value: Any) -> str:
    """Milliseconds for people: ms below a second, then s, min, h."""
    if value is None:
        return DASH
    ms = float(value)
    if ms < 1000:
        return f"{ms:.0f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.1f} s"
    if ms < 3_600_000:
        return f"{ms / 60_000:.1f} min"
    return f"{ms / 3_600_000:.1f} h"


def print_json(data: Any, console: Console = out) -> None:
    """JSON for machines: ASCII only, so a pipe or a log never mangles tenant text."""
    console.print_json(json.dumps(data, allow_nan=False, default=str), ensure_ascii=True)
