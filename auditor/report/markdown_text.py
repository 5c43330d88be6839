"""Markdown escaping for `report.md`: tenant text made inert, and the tables and lists built of it.

Flow, step and environment names and trace messages are tenant input, and Markdown renders
raw HTML and links. `md()` makes a text one inert line: no HTML (`<`, `>`, `&` become
entities), no emphasis, code, link or table syntax (backslash escapes,
https://spec.commonmark.org/0.31.2/#backslash-escapes, and `\\|` inside table cells,
https://github.github.com/gfm/#tables-extension-), no line breaks or control characters.
Apart from the report's sections (`auditor.report.markdown`) so that the escaping can be
read, and tested, on its own.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

MAX_ITEMS = 12  # bullets (reasons, fixes) per list
MAX_TEXT = 300  # characters of one text before it is cut

# Line and paragraph breaks become spaces; other control and invisible formatting characters
# (including the bidirectional overrides of "Trojan Source", CVE-2021-42574) are dropped.
_BREAKS = re.compile(r"[\t\n\r\v\f\x85\u2028\u2029]+")
_INVISIBLE = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_SPACES = re.compile(r" {2,}")
# Inline Markdown syntax, escaped with a backslash wherever it appears.
_SYNTAX = re.compile(r"([\\`*_|~#])")
# Entities, so HTML never forms; brackets too, so no link text can be followed by "(url)".
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "&#91;", "]": "&#93;"}
_ENTITY = re.compile("[&<>\\[\\]]")
# At the start of a list item a text could open a block (list, quote, heading, setext rule).
_BLOCK_START = re.compile(r"^([-+=]|\d+[.)])")
_SAFE_URL = re.compile(r"https://[^\s<>()\[\]`|\\\"']+")
_CODE = re.compile(r"[A-Za-z0-9._:/-]+")


def clean(value: object, limit: int = MAX_TEXT) -> str:
    """A text on one line, without control characters, cut to `limit` characters."""
    text = "" if value is None else str(value)
    text = _INVISIBLE.sub("", _BREAKS.sub(" ", text))
    text = _SPACES.sub(" ", text).strip()
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


def md(value: object, limit: int = MAX_TEXT) -> str:
    """A text escaped for Markdown: it reads as itself, in a paragraph or a table cell."""
    text = _SYNTAX.sub(r"\\\1", clean(value, limit))
    return _ENTITY.sub(lambda m: _ENTITIES[m.group(0)], text)


def md_line(value: object, limit: int = MAX_TEXT) -> str:
    """`md`, for a text that starts a line or a list item, where it could open a block."""
    text = md(value, limit)
    start = _BLOCK_START.match(text)
    if start:  # escape the character that would open a list or a setext rule: "\-", "1\."
        cut = start.end() - 1
        text = text[:cut] + "\\" + text[cut:]
    return text


def code(value: object) -> str:
    """An identifier as inline code when it is plainly one, else escaped text."""
    text = clean(value)
    return f"`{text}`" if _CODE.fullmatch(text) else md(text)


def link(url: object) -> str:
    """An autolink when `url` is a plain https URL, else the URL as escaped text."""
    text = clean(url, 2000)
    return f"<{text}>" if _SAFE_URL.fullmatch(text) else md(text)


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> list[str]:
    """A GFM table; cells are already escaped (by `md` and friends)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines.extend("| " + " | ".join(cell or " " for cell in row) + " |" for row in rows)
    return lines


def more(left: int, what: str, where: str = "") -> list[str]:
    """The line that says how many items a capped list left out."""
    if left <= 0:
        return []
    return ["", f"*{left} more {what} not shown{where}.*"]


def bullets(items: Sequence[str], what: str, empty: str) -> list[str]:
    """A capped bullet list of escaped texts."""
    if not items:
        return [f"*{empty}*"]
    lines = [f"- {md_line(item)}" for item in items[:MAX_ITEMS]]
    return lines + more(len(items) - MAX_ITEMS, what)


__all__ = [
    "MAX_ITEMS",
    "MAX_TEXT",
    "bullets",
    "clean",
    "code",
    "link",
    "md",
    "md_line",
    "more",
    "table",
]
