"""Lines of flow definitions: where an action, trigger or member is defined in a flow's
text, found in one pass over its strings and brackets. Apart because the lint's report
uses it on flows already read, not while reading.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

# A JSON string (an unterminated one runs to the end, so a hostile text is still read in one
# pass), with the colon that makes it a key; or a bracket.
_JSON_TOKEN = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"?(\s*:)?|[{}\[\]]', re.S)


def line_of_key(text: str, name: str) -> int | None:
    """The 1-based line where `"name": {` is defined: an action or trigger (a member of an
    `actions` or `triggers` object) first, else any object member of that name. Keys are
    compared decoded, so escapes in the file (`\\"`, `\\u00e9`) match. A runAfter reference
    (`"name": [`) is never a definition. None when there is none."""
    return lines_of_keys(text, [name]).get(name)


def lines_of_keys(text: str, names: Iterable[str]) -> dict[str, int]:
    """`line_of_key` for several names in one pass over the text (a report asks for many
    names per flow); names without a definition are left out. Only the names asked for are
    kept, so memory does not grow with the keys of the flow."""
    wanted = set(names)
    definitions, members = _object_keys(text, wanted)
    offsets = sorted(
        (offset, name)
        for name in wanted
        if (offset := definitions.get(name, members.get(name))) is not None
    )
    lines: dict[str, int] = {}
    line, last = 1, 0
    for offset, name in offsets:
        line += text.count("\n", last, offset)
        last = offset
        lines[name] = line
    return lines


def _object_keys(text: str, wanted: set[str]) -> tuple[dict[str, int], dict[str, int]]:
    """(action and trigger definitions, object members) among `wanted` -> offset of the
    first key, in one pass over the strings and brackets."""
    definitions: dict[str, int] = {}
    members: dict[str, int] = {}
    stack: list[str | None] = []
    pending: tuple[str, int] | None = None  # a key whose value comes next
    for match in _JSON_TOKEN.finditer(text):
        piece = match.group(0)
        key, pending = pending, None
        if piece == "{":
            if key is not None and key[0] in wanted:
                members.setdefault(*key)
                if stack and stack[-1] in ("actions", "triggers"):
                    definitions.setdefault(*key)
            stack.append(key[0] if key and key[0] in ("actions", "triggers") else None)
        elif piece == "[":
            stack.append(None)
        elif piece in ("}", "]"):
            if stack:
                stack.pop()
        elif match.group(2):
            pending = (_unescape(match.group(1)), match.start())
    return definitions, members


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw
