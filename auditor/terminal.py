"""Text that reaches a terminal: tenant names, file paths and messages, made inert.

A flow's name, an error message from the tenant or a file name in a pull request is chosen by
someone other than the operator. Printed raw, an ESC sequence can clear or retitle the
terminal or draw fake output, and the bidirectional overrides of "Trojan Source"
(CVE-2021-42574) can reorder what is shown. Every command prints such text through `clean`
(plain output) or `markup` (a rich table cell or message); nothing else reaches the screen.
"""

from __future__ import annotations

import re

# Whole escape sequences first (CSI, OSC and other ESC forms, 7-bit and C1), so no argument of
# one is left behind as text; then any other control character, the bidirectional embeddings,
# overrides, isolates and marks, zero-width characters and lone surrogates.
_SEQUENCES = re.compile(
    r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI: cursor moves, colours, erase
    r"|(?:\x1b\]|\x9d)[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"  # OSC: window title, hyperlinks
    r"|\x1b[P^_X][^\x1b\x9c]*(?:\x1b\\|\x9c)?"  # DCS, PM, APC, SOS strings
    r"|\x1b[ -/]*[0-~]?"  # any other ESC sequence
)
_BREAKS = re.compile(r"[\t\n\r\v\f\x85\u2028\u2029]+")
_INVISIBLE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
_INVISIBLE_KEEP_LINES = re.compile(
    r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]"
)
_SPACES = re.compile(r" {2,}")


def clean(value: object, limit: int | None = None) -> str:
    """`value` as one line of plain text: escape sequences and control, bidi and invisible
    characters removed, line breaks as spaces, cut to `limit` characters with an ellipsis."""
    text = "" if value is None else str(value)
    text = _INVISIBLE.sub("", _BREAKS.sub(" ", _SEQUENCES.sub("", text)))
    text = _SPACES.sub(" ", text).strip()
    if limit is not None and len(text) > limit:
        text = text[: max(limit - 1, 0)].rstrip() + "…"
    return text


def lines(value: object) -> str:
    """`value` with escape sequences and control, bidi and invisible characters removed,
    keeping its line breaks and tabs: for log lines and tracebacks."""
    text = "" if value is None else str(value)
    return _INVISIBLE_KEEP_LINES.sub("", _SEQUENCES.sub("", text))


def markup(value: object, limit: int | None = None) -> str:
    """`clean(value)` escaped for rich, so brackets in it are never read as markup."""
    from rich.markup import escape

    return escape(clean(value, limit))


__all__ = ["clean", "lines", "markup"]
