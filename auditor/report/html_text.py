"""Text and numbers as `report.html` shows them, in the page and in its SVG charts.

Tenant text (flow, step and environment names, messages) has its control characters made
visible and is escaped; durations, counts and rates are written as a reader says them. Apart
from the charts (`auditor.report.svg`) because the page's tables use the same formatting.
"""

from __future__ import annotations

import math
import re

from markupsafe import Markup, escape

# C0 controls other than tab and newline, DEL and C1 controls: invisible or terminal escapes
# in tenant text; and the bidirectional embeddings, overrides and isolates, which reorder the
# text shown after them ("Trojan Source", CVE-2021-42574). They are shown as Unicode control
# pictures (U+2400 block) or U+FFFD so a reader sees that something was there, and the page
# stays valid HTML.
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    return "\u2421" if code == 0x7F else "\ufffd"


def clean(value: object) -> str:
    """`value` as text a page can show: control characters made visible, nothing else."""
    return _CONTROLS.sub(_picture, str(value))


def text(value: object) -> Markup:
    """Tenant text, cleaned and escaped for HTML or SVG content and attribute values."""
    if isinstance(value, Markup):
        return value
    return escape(clean(value))


def number(value: object) -> float | None:
    """A finite float, or None for a missing, NaN or non-numeric value."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return f if math.isfinite(f) else None


def format_ms(value: object) -> str:
    """A duration in milliseconds as a reader says it: 218 ms, 4.6 s, 27.8 min, 2.0 h."""
    ms = number(value)
    if ms is None:
        return "–"
    amount, unit = ms, "ms"
    for size, larger in ((1000.0, "s"), (60.0, "min"), (60.0, "h"), (24.0, "d")):
        # compare as shown (rounded), so 999.6 ms reads 1.0 s rather than 1000 ms
        if abs(amount) < size - (0.5 if unit == "ms" else 0.05):
            break
        amount, unit = amount / size, larger
    if unit == "ms":
        return f"{amount:.0f} ms"
    return f"{amount:.1f} {unit}" if abs(amount) < 100 else f"{amount:.0f} {unit}"


def format_count(value: object) -> str:
    """A count with thousands separators; a fraction keeps one decimal."""
    n = number(value)
    if n is None:
        return "–"
    return f"{n:,.0f}" if n == round(n) else f"{n:,.1f}"


def format_rate(value: object) -> str:
    """A fraction as a percentage with one decimal."""
    n = number(value)
    return "–" if n is None else f"{n * 100:.1f} %"


__all__ = [
    "clean",
    "format_count",
    "format_ms",
    "format_rate",
    "number",
    "text",
]
