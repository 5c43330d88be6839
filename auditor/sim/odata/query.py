"""A GET's query options validated into an `EntityQuery`: `$select`, `$filter`, `$orderby`,
`$top`, `$count` and `$expand`, and the `@odata.context` URL that echoes its shape.

Apart from the store: it checks a request against the served columns before any row is read.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from auditor.sim.model import NAVIGATIONS, PRIMARY_KEYS
from auditor.sim.odata.errors import ODataError, no_property
from auditor.sim.odata.filter_syntax import Node, columns_of, parse_filter


@dataclass(frozen=True)
class Expand:
    """One `$expand` item: a navigation property with its own `$select` / `$expand`."""

    nav: str
    target: str  # entity set of the related row
    lookup: str  # column of the source row holding the target key
    select: tuple[str, ...]
    expand: tuple[Expand, ...] = ()


@dataclass(frozen=True)
class EntityQuery:
    """A validated Dataverse query on one entity set."""

    entity_set: str
    select: tuple[str, ...]  # the columns served, primary key included
    filter: Node | None = None
    orderby: tuple[tuple[str, bool], ...] = ()  # (column, descending)
    expand: tuple[Expand, ...] = ()
    top: int | None = None
    count: bool = False
    selected: bool = False  # whether the client sent $select (else every column is served)

    def sets(self) -> set[str]:
        """Every entity set the query reads (for privilege checks)."""
        found = {self.entity_set}
        stack = list(self.expand)
        while stack:
            item = stack.pop()
            found.add(item.target)
            stack.extend(item.expand)
        return found


def _split_top_level(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quotes."""
    parts: list[str] = []
    depth = 0
    quoted = False
    start = 0
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char == "(":
            depth += 1
        elif not quoted and char == ")":
            depth -= 1
            if depth < 0:
                raise ODataError(f"Unbalanced parentheses in '{text}'.")
        elif not quoted and depth == 0 and char == sep:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0 or quoted:
        raise ODataError(f"Unbalanced parentheses or quotes in '{text}'.")
    parts.append(text[start:])
    return parts


ColumnsOf = Callable[[str], Sequence[str]]


def _parse_select(entity_set: str, text: str | None, available: Sequence[str]) -> tuple[str, ...]:
    pk = PRIMARY_KEYS[entity_set]
    if text is None or text.strip() in ("", "*"):
        names = [c for c in available if c != pk]
    else:
        names = []
        for raw in text.split(","):
            name = raw.strip()
            if not name:
                raise ODataError(f"The $select '{text}' has an empty item.")
            if name not in available:
                raise no_property(entity_set, name)
            if name not in names and name != pk:
                names.append(name)
    return (*names, pk)


def _parse_expand(entity_set: str, text: str, columns: ColumnsOf) -> tuple[Expand, ...]:
    items: list[Expand] = []
    for raw in _split_top_level(text, ","):
        item = raw.strip()
        match = re.fullmatch(r"(\w+)\s*(?:\((.*)\))?", item, re.DOTALL)
        if match is None:
            raise ODataError(f"The $expand item '{item}' is not valid.")
        nav_name, options = match.group(1), match.group(2)
        nav = NAVIGATIONS.get(entity_set, {}).get(nav_name)
        if nav is None:
            raise no_property(entity_set, nav_name)
        select_text: str | None = None
        nested: tuple[Expand, ...] = ()
        for option in _split_top_level(options or "", ";"):
            option = option.strip()
            if not option:
                continue
            key, sep, value = option.partition("=")
            key = key.strip()
            if not sep:
                raise ODataError(f"The $expand option '{option}' is not valid.")
            if key == "$select":
                select_text = value
            elif key == "$expand":
                nested = _parse_expand(nav.target_entity_set, value, columns)
            else:
                raise ODataError(
                    f"The query option '{key}' is not supported inside $expand of the "
                    f"single-valued navigation property '{nav_name}'."
                )
        target = nav.target_entity_set
        select = _parse_select(target, select_text, columns(target))
        items.append(Expand(nav_name, target, nav.lookup_column, select, nested))
    return tuple(items)


def _parse_orderby(
    entity_set: str, text: str, available: Sequence[str]
) -> tuple[tuple[str, bool], ...]:
    keys: list[tuple[str, bool]] = []
    for raw in text.split(","):
        words = raw.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1] not in ("asc", "desc")):
            raise ODataError(f"The $orderby '{text}' is not valid.")
        if words[0] not in available:
            raise no_property(entity_set, words[0])
        keys.append((words[0], len(words) == 2 and words[1] == "desc"))
    return tuple(keys)


_SUPPORTED_OPTIONS = ("$select", "$filter", "$orderby", "$top", "$count", "$expand", "$skiptoken")


def parse_query(entity_set: str, params: Mapping[str, str], columns: ColumnsOf) -> EntityQuery:
    """Validate the query options of a GET on an entity set; raise ODataError (400)."""
    for key in params:
        if key.startswith("$") and key not in _SUPPORTED_OPTIONS:
            raise ODataError(f"The query parameter {key} is not supported.")
        if key.lower() == "fetchxml":
            raise ODataError("FetchXML queries are not supported by the simulator.")
    available = columns(entity_set)
    select = _parse_select(entity_set, params.get("$select"), available)
    node: Node | None = None
    if "$filter" in params:
        aliases = {k: v for k, v in params.items() if k.startswith("@")}
        node = parse_filter(params["$filter"], aliases)
        for name in sorted(columns_of(node)):
            if name not in available:
                raise no_property(entity_set, name)
    orderby = (
        _parse_orderby(entity_set, params["$orderby"], available) if "$orderby" in params else ()
    )
    expand = _parse_expand(entity_set, params["$expand"], columns) if "$expand" in params else ()
    top: int | None = None
    if "$top" in params:
        if not re.fullmatch(r"\d+", params["$top"].strip()) or int(params["$top"]) < 1:
            raise ODataError(f"Invalid value '{params['$top']}' for $top query option found.")
        top = int(params["$top"])
    count_text = params.get("$count", "false").strip().lower()
    if count_text not in ("true", "false"):
        raise ODataError(f"'{params['$count']}' is not a valid count option.")
    selected = "$select" in params and params["$select"].strip() not in ("", "*")
    return EntityQuery(
        entity_set, select, node, orderby, expand, top, count_text == "true", selected
    )


def context_url(service_root: str, query: EntityQuery) -> str:
    """`@odata.context`: `<root>/$metadata#<set>(<select>,<nav>(<select>))`."""

    def shape(select: Sequence[str], expand: Sequence[Expand]) -> str:
        parts = list(select)
        parts.extend(f"{e.nav}({shape(e.select, e.expand)})" for e in expand)
        return ",".join(parts)

    if not query.selected and not query.expand:
        return f"{service_root}/$metadata#{query.entity_set}"
    return f"{service_root}/$metadata#{query.entity_set}({shape(query.select, query.expand)})"
