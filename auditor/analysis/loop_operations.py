"""The vocabulary of loop sources: their kinds, and what one action's operation or path says.

`loops` walks each Apply to each back to what it iterates (the rules and their sources are
there); this module holds what that walk compares an action against, so the walk reads on its
own:

- the kinds of source (`collection`, `record_children`, `fixed`, `unknown`) and `Source`, the
  kind with the action that decides it;
- connector operations that list, query or search (`ListRecords`, `GetItems`,
  `GetFileItems`, `ListFolder`; operation ids starting with List, Search or Query, or
  containing GetItems, GetFiles, GetAll or ListRows), the Top Count under which a list is a
  few rows (`MAX_FEW`), and the legacy `ApiConnection` GET paths that list items or files
  (`.../items`, `.../files`, `/ListFeedItems`...);
- the `value` array of a connector's or HTTP response, read as `body('X')?['value']` or
  `outputs('X')?['body/value']`
  (https://learn.microsoft.com/azure/logic-apps/workflow-definition-language-functions-reference):
  OData represents a collection as an object whose `value` is the array, section
  "Collection of Entities" of
  https://docs.oasis-open.org/odata/odata-json-format/v4.01/odata-json-format-v4.01.html;
- the action types the walk follows (data actions, variable writers, connector and HTTP
  calls), and how an action is named (`display_name`, the key as the designer shows it).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# A list action whose Top Count is at most this returns a few rows: not a whole table.
MAX_FEW = 10
COLLECTION = "collection"
RECORD_CHILDREN = "record_children"
FIXED = "fixed"
UNKNOWN = "unknown"
KINDS = (COLLECTION, RECORD_CHILDREN, FIXED, UNKNOWN)

_MAX_SHOWN = 80

LIST_OPERATIONS = frozenset({"listrecords", "getitems", "getfileitems", "listfolder"})
LIST_PREFIXES = ("list", "search", "query")
LIST_WORDS = ("getitems", "getfiles", "getfileitems", "getall", "listrows")
# Last segment of a legacy ApiConnection GET path that lists (placeholders removed).
LIST_SEGMENTS = frozenset({"items", "files", "rows", "tasks"})
DATA_TYPES = frozenset({"query", "select", "compose", "parsejson", "filter"})
VARIABLE_WRITERS = frozenset(
    {"initializevariable", "setvariable", "appendtoarrayvariable", "appendtostringvariable"}
)
CONNECTOR_TYPES = frozenset(
    {
        *("openapiconnection", "openapiconnectionwebhook", "apiconnection"),
        *("apiconnectionwebhook", "http", "httpwebhook"),
    }
)

_PLACEHOLDER = re.compile(r"@\{[^{}]*\}")


def text_or_none(value: Any) -> str | None:
    """A non-empty string, else None (row values are untrusted)."""
    return value if isinstance(value, str) and value else None


def shown_name(row: Mapping[str, Any]) -> str:
    """An action as the designer names it: its display name, else its key."""
    return text_or_none(row.get("display_name")) or text_or_none(row.get("action_name")) or "?"


def shortened(text: str, limit: int = _MAX_SHOWN) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclass(frozen=True)
class Source:
    """What a loop (or an action it reads) iterates, and which action says so."""

    kind: str
    action: Mapping[str, Any] | None = None
    operation: str | None = None
    description: str = ""  # what is iterated, for "<loop> iterates <description>"
    root: str = ""  # the deciding source at the end of the chain, when it differs

    @property
    def origin(self) -> str:
        return self.root or self.description


def operation_of(row: Mapping[str, Any]) -> str | None:
    """What an action calls, for messages: its operationId, else its HTTP method, else its type."""
    operation = text_or_none(row.get("operation"))
    if operation:
        return operation
    method = text_or_none(row.get("method"))
    if method:
        return method
    return text_or_none(row.get("type"))


def is_list_operation(operation: str | None) -> bool:
    """A connector operation id that lists, queries or searches."""
    if not operation:
        return False
    lowered = operation.lower()
    return (
        lowered in LIST_OPERATIONS
        or lowered.startswith(LIST_PREFIXES)
        or any(word in lowered for word in LIST_WORDS)
    )


def is_list_path(path: str | None) -> bool:
    """A legacy ApiConnection path that lists items or files: `/datasets/.../items`,
    `/ListFeedItems`; not `/items/@{id}` or `/items/@{id}/getfileitem`."""
    if not path:
        return False
    bare = path.split("?", 1)[0]
    previous = None
    while previous != bare:  # innermost placeholders first, for nested @{...}
        previous, bare = bare, _PLACEHOLDER.sub("{}", bare)
    last = bare.rstrip("/").rsplit("/", 1)[-1].lower()
    return last in LIST_SEGMENTS or is_list_operation(last)


def is_single_read(operation: str | None) -> bool:
    """An operation reading one record (Get a row, Get item, Get email...)."""
    return bool(operation) and str(operation).lower().startswith("get")


def reads_value(expression: str, name: str) -> bool:
    """`body('X')?['value']` / `outputs('X')?['body/value']`: an OData collection."""
    quoted = re.escape(name.replace("'", "''"))
    pattern = (
        rf"\b(?:body|outputs)\(\s*'{quoted}'\s*\)\s*\??\s*"
        rf"(?:\[\s*'body'\s*\]\s*\??\s*)?\[\s*'(?:body/)?value'\s*\]"
    )
    return re.search(pattern, expression, re.IGNORECASE) is not None


def action_type(row: Mapping[str, Any]) -> str:
    """An action's type in lower case ("" without one)."""
    return str(row.get("type") or "").lower()


def split_names(value: Any) -> list[str]:
    """The names of a comma-separated row value (`references`...), blanks left out."""
    text = text_or_none(value)
    return [part for part in text.split(",") if part] if text else []
