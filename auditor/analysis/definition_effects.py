"""Which actions can change something outside the run: the action-type vocabulary and the
reading of connector operation ids as reads or writes.

The unnecessary-run analysis (docs/how-a-scan-runs.md) counts a run as unnecessary when all
its effects were skipped; the action rows mark each action with `is_effect`, and the
failure-path analysis reuses the data-operation types. Apart from the parsing, since these
are rules about what operations do, not about the definition's shape.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from auditor.analysis.definition_values import as_text, lower_text

CONNECTOR_TYPES = frozenset(
    {
        *("openapiconnection", "openapiconnectionwebhook", "openapiconnectionnotification"),
        *("apiconnection", "apiconnectionwebhook", "apiconnectionnotification"),
    }
)
CONTROL_TYPES = frozenset({"if", "switch", "scope", "foreach", "until", "terminate"})
DATA_TYPES = frozenset(
    {
        *("compose", "initializevariable", "setvariable", "parsejson", "query", "select"),
        *("join", "table", "expression"),
    }
)
DATA_TYPE_PREFIXES = ("append", "increment", "decrement")
READ_METHODS = frozenset({"GET", "HEAD"})
READ_PREFIXES = ("get", "list", "search", "retrieve", "read", "find")
# Verbs that make an operation a write even when its id also contains "Get".
WRITE_WORDS = (
    *("send", "create", "update", "delete", "post", "patch", "put", "add", "remove"),
    *("upsert", "insert", "move", "copy", "start", "invoke", "execute", "submit"),
    *("upload", "publish", "perform"),
)
_ON_OPERATION = re.compile(r"On[A-Z]")


def _is_read_operation(operation: str) -> bool:
    lowered = operation.lower()
    if lowered.startswith(READ_PREFIXES) or _ON_OPERATION.match(operation):
        return True  # "On..." ids are trigger-style reads (OnNewEmailV3)
    if any(word in lowered for word in WRITE_WORDS):
        return False
    return "Get" in operation


def is_effect(action: Mapping[str, Any]) -> bool:
    """Whether an action row can change something outside the run (docs/how-a-scan-runs.md).

    An unnecessary run is one whose effects all were skipped, so an action we cannot
    classify counts as an effect: never under-count effects.
    """
    type_l = lower_text(action.get("type"))
    method = (as_text(action.get("method")) or "").upper() or None
    if (
        type_l in CONTROL_TYPES
        or type_l in DATA_TYPES
        or type_l.startswith(DATA_TYPE_PREFIXES)
        or type_l == "wait"
    ):
        return False
    if type_l == "http":
        return method not in READ_METHODS
    if type_l in CONNECTOR_TYPES:
        if method in READ_METHODS:
            return False
        operation = as_text(action.get("operation"))
        if operation:
            return not _is_read_operation(operation)
        return method not in READ_METHODS
    return True  # Workflow, Response, HttpWebhook and anything unknown
