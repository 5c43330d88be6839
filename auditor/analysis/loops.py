"""What each Apply to each iterates: a whole collection, one record's children, or a fixed
array.

An Apply to each runs one item at a time unless its concurrency control is on
(`runtimeConfiguration.concurrency.repetitions` above 1, up to 50)
(https://learn.microsoft.com/power-automate/limits-and-config#concurrency-looping-and-debatching-limits).
Whether that matters depends on how many items it gets, and a definition says that only
through what the loop iterates (R-LOOP in tests/corpus/README.md). Each loop's `foreach`
expression is classified, following the actions it reads (the `references` of the action
rows, from `body('X')`, `outputs('X')`, `items('X')`...):
https://learn.microsoft.com/azure/logic-apps/workflow-definition-language-functions-reference

- `collection`: the output of an action that lists, queries or searches: a connector
  operation that lists (`ListRecords`, `GetItems`, `GetFileItems`, `ListFolder`; operation ids
  starting with List, Search or Query, or containing GetItems, GetFiles, GetAll or ListRows),
  an HTTP GET, a legacy `ApiConnection` GET whose path lists items or files
  (`.../items`, `.../files`, `/ListFeedItems`...); the `value` array of a connector's or HTTP
  response (OData represents a collection as an object whose `value` is the array, section
  "Collection of Entities" of
  https://docs.oasis-open.org/odata/odata-json-format/v4.01/odata-json-format-v4.01.html),
  also when the action it names is missing from the definition; a data action (Filter array
  `Query`, `Select`, `Compose`, `ParseJson`) whose own references lead to one; a variable
  (`variables('v')`) that an Initialize / Set / Append action fills from one, or that an
  Append inside another loop grows once per item of a collection.
- `record_children`: trigger data (the loop, or the data action it iterates, reads
  `triggerBody()` / `triggerOutputs()` and no collection: a mail's attachments, a trigger
  item's list), the child array of one record (`Get a row`, `Get item`, `Get email`...), or of
  the current item of an enclosing loop (`items('Outer')?['lines']`, `item()`).
- `fixed`: `split()`, `createArray()`, `range()`, a literal array, or a list action whose
  Top Count (`$top`) is at most `MAX_FEW` (a few rows, however large the table).
- `unknown`: anything else (a child flow's output, an expression over variables the parser
  does not follow, an operation that is none of the above).

Following references is bounded (`MAX_HOPS` steps, each action once), since definitions are
untrusted; what the bound cuts off is `unknown`. The designer shows an action under its key
with underscores as spaces (`display_name`), which is how loops and sources are named here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pandas as pd

from auditor.analysis.loop_operations import (
    COLLECTION,
    CONNECTOR_TYPES,
    DATA_TYPES,
    FIXED,
    MAX_FEW,
    RECORD_CHILDREN,
    UNKNOWN,
    VARIABLE_WRITERS,
    Source,
    action_type,
    is_list_operation,
    is_list_path,
    is_single_read,
    operation_of,
    reads_value,
    shortened,
    shown_name,
    split_names,
    text_or_none,
)

LOOP_SOURCE_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "action_name": "str",  # the Apply to each
    "display_name": "str",
    "source_kind": "str",  # collection / record_children / fixed / unknown
    "source_action": "str",  # the action whose output decides the kind, NaN if none
    "source_display_name": "str",
    "source_operation": "str",  # its operationId, HTTP method, type or function (split...)
    "description": "str",  # "iterates ..." for a message
}

MAX_HOPS = 4  # actions followed from a loop's source, at most
FIXED_FUNCTIONS = frozenset({"split", "createarray", "range"})

_OUTER_FUNCTION = re.compile(r"^\s*@\s*([A-Za-z_][A-Za-z0-9_]*)\s*\(")
_VARIABLE = re.compile(r"\bvariables\(\s*'((?:[^']|'')*)'\s*\)", re.IGNORECASE)
_ACCESSOR = re.compile(r"\[\s*'((?:[^']|'')*)'\s*\]")
_ITEM = re.compile(r"\bitem\(\s*\)", re.IGNORECASE)


def _field(expression: str) -> str | None:
    """The last property an expression reads: `attachments` of `?['body/attachments']`."""
    found = _ACCESSOR.findall(expression)
    if not found:
        return None
    return found[-1].replace("''", "'").rsplit("/", 1)[-1] or None


class _Flow:
    """One flow's action rows by name, and the classification walk over them."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], paths: Mapping[str, str]) -> None:
        self.by_name = {
            str(r["action_name"]): r for r in rows if text_or_none(r.get("action_name"))
        }
        self.paths = paths
        self.writers: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            variable = text_or_none(row.get("variable_name"))
            if variable and action_type(row) in VARIABLE_WRITERS:
                self.writers.setdefault(variable.lower(), []).append(row)

    # Single actions ----------------------------------------------------------------------

    def _reader(self, row: Mapping[str, Any], expression: str) -> Source | None:
        """The kind of a connector or HTTP action's output, or None if it is not one."""
        kind = action_type(row)
        if kind not in CONNECTOR_TYPES and not text_or_none(row.get("connector")):
            return None
        operation = text_or_none(row.get("operation"))
        shown = operation_of(row)
        method = (text_or_none(row.get("method")) or "").upper()
        name = shown_name(row)
        top = row.get("top")
        if (
            isinstance(top, int)
            and 0 < top <= MAX_FEW
            and (is_list_operation(operation) or (kind == "http" and method == "GET"))
        ):
            # A list capped by its Top Count is a few rows, however big the table is.
            return Source(FIXED, row, shown, f"at most {top} row(s) of {name} ($top {top})")
        if kind == "http":
            if method == "GET":
                return Source(COLLECTION, row, "GET", f"{name} (HTTP GET)")
            return Source(UNKNOWN, row, shown, f"the output of {name} (HTTP {method or '?'})")
        if is_list_operation(operation):
            return Source(COLLECTION, row, operation, f"{name} ({operation})")
        path = self.paths.get(str(row.get("action_name"))) if not operation else None
        if path is not None and method == "GET" and is_list_path(path):
            return Source(COLLECTION, row, "GET", f"{name} (GET {shortened(path, 40)})")
        if expression and reads_value(expression, str(row.get("action_name"))):
            return Source(COLLECTION, row, shown, f"the value list of {name} ({shown})")
        if is_single_read(operation) or (path is not None and method == "GET"):
            return Source(
                RECORD_CHILDREN, row, shown, f"a child array of one record, {name} ({shown})"
            )
        return Source(UNKNOWN, row, shown, f"the output of {name} ({shown})")

    def _enclosing_loop(self, row: Mapping[str, Any]) -> Mapping[str, Any] | None:
        parent = text_or_none(row.get("parent"))
        seen: set[str] = set()
        while parent and parent not in seen:
            seen.add(parent)
            holder = self.by_name.get(parent)
            if holder is None:
                return None
            if action_type(holder) == "foreach":
                return holder
            parent = text_or_none(holder.get("parent"))
        return None

    def _is_loop(self, name: str) -> bool:
        return action_type(self.by_name.get(name, {})) == "foreach"

    # The walk ----------------------------------------------------------------------------

    def action(self, name: str, expression: str, seen: set[str]) -> Source:
        """What the output of action `name` holds, as `expression` reads it."""
        row = self.by_name.get(name)
        if row is None:  # a reference to no action of the flow: only the envelope says
            shown = name.replace("_", " ")
            if expression and reads_value(expression, name):
                return Source(COLLECTION, None, None, f"the value list of {shown}")
            return Source(UNKNOWN, None, None, shown)
        display = shown_name(row)
        if action_type(row) == "foreach":
            return Source(
                RECORD_CHILDREN, row, "Foreach", f"a child array of the current item of {display}"
            )
        reader = self._reader(row, expression)
        if reader is not None:
            return reader
        if action_type(row) not in DATA_TYPES:
            return Source(UNKNOWN, row, operation_of(row), f"the output of {display}")
        what = f"{display} ({row.get('type')})"
        if name in seen or len(seen) >= MAX_HOPS:
            return Source(UNKNOWN, row, row.get("type"), what)
        seen.add(name)
        refs = split_names(row.get("references"))
        # An enclosing loop's item read by a filter or a mapping is a parameter, not the
        # array: follow the other references when there are some.
        others = [ref for ref in refs if not self._is_loop(ref)]
        inner = self.combine(
            [self.action(ref, "", seen) for ref in (others or refs)],
            bool(row.get("reads_trigger")),
        )
        if inner.kind == COLLECTION:
            return Source(
                COLLECTION,
                inner.action,
                inner.operation,
                f"{what}, built from {inner.origin}",
                inner.origin,
            )
        if inner.kind == UNKNOWN:
            return Source(UNKNOWN, row, row.get("type"), what)
        return Source(
            inner.kind, row, row.get("type"), f"{what}, from {inner.origin}", inner.origin
        )

    def variable(self, name: str, seen: set[str]) -> Source:
        """What variable `name` holds, from the actions that initialise, set or append it."""
        key = f"variables('{name}')"
        shown = f"variable {name}"
        if key in seen or len(seen) >= MAX_HOPS:
            return Source(UNKNOWN, None, None, shown)
        seen.add(key)
        found: list[Source] = []
        for writer in self.writers.get(name.lower(), []):
            refs = [ref for ref in split_names(writer.get("references")) if not self._is_loop(ref)]
            found.extend(self.action(ref, "", seen) for ref in refs)
            if writer.get("reads_trigger"):
                found.append(Source(RECORD_CHILDREN, None, "trigger", "the trigger's data"))
            # An Append inside a loop adds an item per iteration: the variable is as long as
            # what that loop iterates.
            loop = (
                self._enclosing_loop(writer) if action_type(writer).startswith("append") else None
            )
            if loop is not None:
                found.append(self.loop(loop, seen))
        inner = self.combine(found, False)
        if inner.kind == UNKNOWN:
            return Source(UNKNOWN, inner.action, inner.operation, shown)
        verb = "filled from" if inner.kind == COLLECTION else "from"
        return Source(
            inner.kind,
            inner.action,
            inner.operation,
            f"{shown}, {verb} {inner.origin}",
            inner.origin,
        )

    @staticmethod
    def combine(found: Sequence[Source], reads_trigger: bool) -> Source:
        """A collection wins; else trigger data; else one record's children; else fixed."""
        for source in found:
            if source.kind == COLLECTION:
                return source
        if reads_trigger:
            return Source(RECORD_CHILDREN, None, "trigger", "the trigger's data")
        for kind in (RECORD_CHILDREN, FIXED):
            for source in found:
                if source.kind == kind:
                    return source
        return found[0] if found else Source(UNKNOWN)

    def loop(self, row: Mapping[str, Any], seen: set[str]) -> Source:
        """What the Apply to each `row` iterates."""
        raw = text_or_none(row.get("foreach_source"))
        try:
            value = json.loads(raw) if raw else None
        except ValueError:
            value = raw
        if isinstance(value, list):
            return Source(FIXED, None, "array", "a literal array")
        if not isinstance(value, str) or not value.strip():
            return Source(UNKNOWN, None, None, "nothing the definition names")
        expression = value
        outer = _OUTER_FUNCTION.match(expression)
        if outer and outer.group(1).lower() in FIXED_FUNCTIONS:
            function = outer.group(1)
            return Source(FIXED, None, f"{function}()", f"a fixed array, {function}()")
        found = [self.action(ref, expression, seen) for ref in split_names(row.get("references"))]
        variables = [v.replace("''", "'") for v in _VARIABLE.findall(expression)]
        found.extend(self.variable(name, seen) for name in variables)
        if row.get("reads_trigger") and not any(s.kind == COLLECTION for s in found):
            field = _field(expression)
            what = f"the trigger's {field}" if field else "the trigger's data"
            return Source(RECORD_CHILDREN, None, "trigger", what)
        if not found and _ITEM.search(expression):
            return Source(
                RECORD_CHILDREN, None, "item()", "a child array of the enclosing loop's item"
            )
        if not found:
            return Source(UNKNOWN, None, None, shortened(expression.strip()))
        return self.combine(found, False)


def _legacy_paths(text: Any) -> dict[str, str]:
    """{action name: path} of the ApiConnection GET actions of a definition; empty when it
    cannot be read (the parser reports that flow)."""
    if not isinstance(text, str):
        return {}
    try:
        document = json.loads(text.lstrip("\ufeff"))
    except (ValueError, RecursionError):
        return {}
    if not isinstance(document, dict):
        return {}
    holder = document.get("properties", document)
    definition = holder.get("definition", holder) if isinstance(holder, dict) else None
    actions = definition.get("actions") if isinstance(definition, dict) else None
    out: dict[str, str] = {}
    for name, action in _walk(actions):
        inputs = action.get("inputs")
        if action_type(action) != "apiconnection" or not isinstance(inputs, dict):
            continue
        path, method = inputs.get("path"), inputs.get("method")
        if isinstance(path, str) and isinstance(method, str) and method.upper() == "GET":
            out[name] = path
    return out


def _walk(actions: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (name, action) of a definition, without recursion (nesting is untrusted)."""
    stack = [actions]
    while stack:
        container = stack.pop()
        if not isinstance(container, dict):
            continue
        for name, action in container.items():
            if not isinstance(action, dict):
                continue
            yield str(name), action
            stack.append(action.get("actions"))
            for key in ("else", "default"):
                part = action.get(key)
                if isinstance(part, dict):
                    stack.append(part.get("actions"))
            cases = action.get("cases")
            if isinstance(cases, dict):
                stack.extend(
                    case.get("actions") for case in cases.values() if isinstance(case, dict)
                )


def loop_sources(actions: pd.DataFrame, definitions: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per Apply to each (type Foreach) of `actions`: what it iterates.

    `definitions` (environment_id, flow_id, definition_text), when given, supplies the paths
    of legacy ApiConnection GET actions, which the action rows do not carry.
    """
    needed = ["environment_id", "flow_id", "action_name", "type", "foreach_source"]
    missing = [c for c in needed if c not in actions]
    if missing:
        raise ValueError(f"actions frame lacks column(s): {', '.join(missing)}")
    is_loop = actions["type"].astype("str").str.lower().eq("foreach").fillna(False)
    looping = actions.loc[is_loop, ["environment_id", "flow_id"]].drop_duplicates()
    if looping.empty:
        return pd.DataFrame(columns=list(LOOP_SOURCE_DTYPES)).astype(LOOP_SOURCE_DTYPES)
    keys = set(zip(looping["environment_id"], looping["flow_id"], strict=True))
    texts: dict[tuple[Any, Any], Any] = {}
    if definitions is not None and "definition_text" in definitions:
        for env, flow, text in zip(
            definitions["environment_id"],
            definitions["flow_id"],
            definitions["definition_text"],
            strict=True,
        ):
            if (env, flow) in keys:
                texts[(env, flow)] = text
    mine = actions[
        pd.MultiIndex.from_frame(actions[["environment_id", "flow_id"]]).isin(
            pd.MultiIndex.from_frame(looping)
        )
    ]
    records = mine.astype(object).where(mine.notna(), None).to_dict("records")
    by_flow: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for record in records:
        key = (record["environment_id"], record["flow_id"])
        by_flow.setdefault(key, []).append({str(k): v for k, v in record.items()})
    out = []
    for key, rows in by_flow.items():
        legacy = any(action_type(r) == "apiconnection" and not r.get("operation") for r in rows)
        flow = _Flow(rows, _legacy_paths(texts.get(key)) if legacy else {})
        for row in rows:
            if action_type(row) != "foreach":
                continue
            source = flow.loop(row, set())
            out.append(
                {
                    "environment_id": key[0],
                    "flow_id": key[1],
                    "action_name": row["action_name"],
                    "display_name": shown_name(row),
                    "source_kind": source.kind,
                    "source_action": (source.action or {}).get("action_name"),
                    "source_display_name": shown_name(source.action) if source.action else None,
                    "source_operation": source.operation,
                    "description": source.description,
                }
            )
    return pd.DataFrame(out, columns=list(LOOP_SOURCE_DTYPES)).astype(LOOP_SOURCE_DTYPES)
