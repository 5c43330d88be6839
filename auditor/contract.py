"""The column contract in `queries/contract.toml`: what the queries may read, and who says so.

Microsoft's documentation is the authority for every column the auditor relies on. The
contract lists each Web API property the queries name, with the Learn page that documents it
(or `inferred = true` and a note when only third-party code shows it), so a query that drifts
to an undocumented column fails a test instead of a customer's scan, and the simulator can
refuse what Dataverse would refuse. The simulator imports this module, never the reverse.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from auditor.errors import DefinitionError
from auditor.queries import QuerySpec
from auditor.resources import data_dir

LEARN = "https://learn.microsoft.com/"
# Attribute types as the generated reference pages print them, plus navigation properties.
TYPES = frozenset(
    {
        "BigInt", "Boolean", "DateTime", "Double", "EntityName", "Integer", "Lookup", "Memo",
        "Navigation", "Owner", "Picklist", "State", "Status", "String", "Uniqueidentifier",
    }
)  # fmt: skip
_TABLE_KEYS = frozenset({"entity_set", "logical_name", "primary_key", "source", "docs", "columns"})
_COLUMN_KEYS = frozenset({"name", "attribute", "type"})
_VALUE_KEYS = frozenset({"entity_set", "column", "values", "source"})
_RESOURCE_KEYS = frozenset({"name", "api", "source", "fields"})
_FIELD_KEYS = frozenset({"path", "type"})
_OPTIONAL = frozenset({"source", "docs", "spec", "target", "inferred", "note", "labels"})
_LOOKUP = re.compile(r"_(\w+)_value")


@dataclass(frozen=True)
class Property:
    """One documented property of an entity set or API resource."""

    name: str  # as the query names it (`_x_value`, navigation name, or a dotted field path)
    attribute: str  # the documented logical name (for `_x_value`, the lookup column `x`)
    type: str
    source: str
    docs: str = ""
    target: str = ""  # entity set / resource a navigation (or lookup) points to
    inferred: bool = False
    note: str = ""


@dataclass(frozen=True)
class Entity:
    """A Dataverse entity set or a non-Dataverse resource, with its documented properties."""

    name: str
    api: str  # dataverse | flow_api | admin_api
    source: str
    properties: Mapping[str, Property]
    logical_name: str = ""
    primary_key: str = ""


@dataclass(frozen=True)
class Value:
    """Values a query compares a column with in `$filter`, with their choice-table source."""

    entity_set: str
    column: str
    values: tuple[str, ...]  # as text: 1, 'FlowRunIngestion' -> "1", "FlowRunIngestion"
    source: str
    inferred: bool = False
    note: str = ""


@dataclass(frozen=True)
class Contract:
    """The loaded contract: entities by name, and the documented filter values."""

    entities: Mapping[str, Entity]
    values: tuple[Value, ...]

    def columns(self, entity_set: str) -> frozenset[str]:
        """The properties of an entity set (empty when the contract does not list it)."""
        entity = self.entities.get(entity_set)
        return frozenset(entity.properties) if entity else frozenset()

    def has(self, entity_set: str, name: str) -> bool:
        """Whether the contract documents `name` on `entity_set`."""
        return name in self.columns(entity_set)

    def target(self, entity_set: str, name: str) -> str | None:
        """The entity set a navigation property leads to, if the contract knows it."""
        entity = self.entities.get(entity_set)
        prop = entity.properties.get(name) if entity else None
        return prop.target or None if prop else None

    def documents_value(self, entity_set: str, column: str, literal: str) -> bool:
        """Whether `column eq literal` uses a value the contract lists."""
        return any(
            v.entity_set == entity_set and v.column == column and literal in v.values
            for v in self.values
        )


@cache
def default_contract() -> Contract:
    """The contract shipped with the auditor (loaded once)."""
    return load_contract(data_dir("queries"))


def load_contract(folder: Path) -> Contract:
    """Load and validate `folder/contract.toml`; anything odd is a `DefinitionError`."""
    file = folder / "contract.toml"
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DefinitionError(f"{file} is missing.") from None
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{file} is not valid TOML: {exc}") from None
    _keys(document, frozenset(), frozenset({"table", "value", "resource"}), str(file))
    entities: dict[str, Entity] = {}
    for index, entry in enumerate(document.get("table", [])):
        entity = _table(entry, f"{file} table #{index + 1}")
        entities[entity.name] = _unique(entities, entity, str(file))
    for index, entry in enumerate(document.get("resource", [])):
        entity = _resource(entry, f"{file} resource #{index + 1}")
        entities[entity.name] = _unique(entities, entity, str(file))
    values = tuple(
        _value(entry, f"{file} value #{index + 1}", entities)
        for index, entry in enumerate(document.get("value", []))
    )
    for entity in entities.values():
        for prop in entity.properties.values():
            if prop.target and prop.target not in entities:
                raise DefinitionError(
                    f"{file}: {entity.name}.{prop.name} targets {prop.target!r}, which the "
                    "contract does not list"
                )
    return Contract(entities, values)


def _keys(entry: Any, required: frozenset[str], allowed: frozenset[str], where: str) -> None:
    if not isinstance(entry, dict):
        raise DefinitionError(f"{where}: expected a table of keys")
    unknown = set(entry) - required - allowed
    if unknown:
        raise DefinitionError(f"{where}: unknown keys {sorted(unknown)}")
    missing = required - set(entry)
    if missing:
        raise DefinitionError(f"{where}: missing keys {sorted(missing)}")


def _text(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key, "")
    if not isinstance(value, str):
        raise DefinitionError(f"{where}: `{key}` must be a string")
    return value


def _sourced(entry: Mapping[str, Any], source: str, where: str) -> tuple[bool, str]:
    """(inferred, note) once the documentation rule holds: a Learn source or an inferred note."""
    inferred = entry.get("inferred", False)
    if not isinstance(inferred, bool):
        raise DefinitionError(f"{where}: `inferred` must be true or false")
    note = _text(entry, "note", where)
    if inferred and not note:
        raise DefinitionError(
            f"{where}: an inferred entry needs a `note` saying what it is based on"
        )
    if not inferred and not source.startswith(LEARN):
        raise DefinitionError(f"{where}: `source` must be a page on {LEARN} (or inferred = true)")
    return inferred, note


def _table(entry: Any, where: str) -> Entity:
    _keys(entry, _TABLE_KEYS, frozenset(), where)
    name = _text(entry, "entity_set", where)
    source, docs = _text(entry, "source", where), _text(entry, "docs", where)
    columns = entry["columns"]
    if not isinstance(columns, list) or not columns:
        raise DefinitionError(f"{where}: `columns` must be a non-empty list")
    properties: dict[str, Property] = {}
    for column in columns:
        label = f"{where} ({name})"
        _keys(column, _COLUMN_KEYS, _OPTIONAL - {"labels", "spec"}, label)
        prop_name = _text(column, "name", label)
        label = f"{where} ({name}.{prop_name})"
        prop_source = _text(column, "source", label) or source
        inferred, note = _sourced(column, prop_source, label)
        prop = Property(
            name=prop_name,
            attribute=_text(column, "attribute", label),
            type=_text(column, "type", label),
            source=prop_source,
            docs=_text(column, "docs", label) or docs,
            target=_text(column, "target", label),
            inferred=inferred,
            note=note,
        )
        _check_column(prop, label)
        if prop.name in properties:
            raise DefinitionError(f"{label}: listed twice")
        properties[prop.name] = prop
    primary_key = _text(entry, "primary_key", where)
    if primary_key not in properties:
        raise DefinitionError(f"{where}: primary key {primary_key!r} is not among the columns")
    return Entity(
        name, "dataverse", source, properties, _text(entry, "logical_name", where), primary_key
    )


def _check_column(prop: Property, where: str) -> None:
    if prop.type not in TYPES:
        raise DefinitionError(f"{where}: unknown type {prop.type!r}")
    lookup = _LOOKUP.fullmatch(prop.name)
    if lookup and lookup.group(1) != prop.attribute:
        raise DefinitionError(f"{where}: a lookup `_x_value` comes from the column `x`")
    if prop.type == "Navigation" and not prop.target:
        raise DefinitionError(f"{where}: a navigation property needs its `target` entity set")


def _resource(entry: Any, where: str) -> Entity:
    _keys(entry, _RESOURCE_KEYS, frozenset({"spec", "note"}), where)
    name, source = _text(entry, "name", where), _text(entry, "source", where)
    api = _text(entry, "api", where)
    if api not in ("flow_api", "admin_api"):
        raise DefinitionError(f"{where}: `api` must be flow_api or admin_api")
    properties: dict[str, Property] = {}
    for field in entry["fields"] if isinstance(entry["fields"], list) else []:
        _keys(field, _FIELD_KEYS, _OPTIONAL - {"labels", "docs"}, f"{where} ({name})")
        path = _text(field, "path", where)
        label = f"{where} ({name}.{path})"
        field_source = _text(field, "source", label) or source
        inferred, note = _sourced(field, field_source, label)
        properties[path] = Property(
            path, path, _text(field, "type", label), field_source,
            _text(field, "spec", label) or _text(entry, "spec", where),
            _text(field, "target", label), inferred, note,
        )  # fmt: skip
    if not properties:
        raise DefinitionError(f"{where}: `fields` must be a non-empty list")
    return Entity(name, api, source, properties)


def _value(entry: Any, where: str, entities: Mapping[str, Entity]) -> Value:
    _keys(entry, _VALUE_KEYS, _OPTIONAL - {"target", "spec"}, where)
    entity_set, column = _text(entry, "entity_set", where), _text(entry, "column", where)
    if column not in (entities[entity_set].properties if entity_set in entities else {}):
        raise DefinitionError(f"{where}: {entity_set}.{column} is not a contract column")
    values = entry["values"]
    if not isinstance(values, list) or not values:
        raise DefinitionError(f"{where}: `values` must be a non-empty list")
    source = _text(entry, "source", where)
    inferred, note = _sourced(entry, source, where)
    return Value(entity_set, column, tuple(str(v) for v in values), source, inferred, note)


def _unique(entities: Mapping[str, Entity], entity: Entity, where: str) -> Entity:
    if entity.name in entities:
        raise DefinitionError(f"{where}: {entity.name!r} is listed twice")
    return entity


# --------------------------------------------------------------------------------------
# What a query references. A small tokenizer, not the simulator's parser: the simulator
# imports this module, so this module must not import it.

# OData $filter tokens (https://learn.microsoft.com/power-apps/developer/data-platform/webapi/
# query/filter-rows): quoted strings, {placeholders}, @aliases, GUIDs, numbers and dates, names
# and property paths, punctuation.
_TOKEN = re.compile(
    r"""\s+
    | (?P<string>'(?:[^']|'')*')
    | (?P<placeholder>\{\w+\})
    | (?P<alias>@\w+)
    | (?P<literal>[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}|-?\d[\w:.+-]*)
    | (?P<name>[A-Za-z_]\w*(?:/[A-Za-z_]\w*)*)
    | (?P<punct>[(),])""",
    re.VERBOSE,
)
_KEYWORDS = frozenset({"and", "or", "not", "eq", "ne", "gt", "ge", "lt", "le", "has", "in"})
_CONSTANTS = frozenset({"true", "false", "null"})
_COMPARE = frozenset({"eq", "ne", "gt", "ge", "lt", "le"})


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise DefinitionError(f"cannot read the $filter {text!r} at position {pos}")
        if match.lastgroup:
            tokens.append((match.lastgroup, match.group()))
        pos = match.end()
    return tokens


def filter_properties(text: str) -> list[str]:
    """Property names of a filter: no keywords, constants, literals, aliases or functions."""
    tokens = _tokens(text)
    return [
        value
        for i, (kind, value) in enumerate(tokens)
        if kind == "name"
        and value not in _KEYWORDS | _CONSTANTS
        and tokens[i + 1 : i + 2] != [("punct", "(")]
    ]


def comparisons(text: str) -> set[tuple[str, str]]:
    """(property, literal) of each `property op literal` (either order); placeholders skipped.

    String literals are unquoted: `eventtype eq 'FlowRunIngestion'` gives
    ("eventtype", "FlowRunIngestion").
    """
    tokens = _tokens(text)
    found: set[tuple[str, str]] = set()
    for left, (_, op), right in zip(tokens, tokens[1:], tokens[2:], strict=False):
        if op not in _COMPARE:
            continue
        for (kind, name), (other, literal) in ((left, right), (right, left)):
            if kind == "name" and name not in _CONSTANTS and other in ("literal", "string"):
                text_value = literal[1:-1].replace("''", "'") if other == "string" else literal
                found.add((name, text_value))
    return found


def _split(text: str, sep: str) -> list[str]:
    """Split on `sep` outside parentheses and quotes (nested $expand options)."""
    parts: list[str] = []
    depth, quoted, start = 0, False, 0
    for i, char in enumerate(text):
        if char == "'":
            quoted = not quoted
        elif not quoted and char in "()":
            depth += 1 if char == "(" else -1
        elif not quoted and depth == 0 and char == sep:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


class _Refs:
    """Collects (entity set, property) pairs, following navigations through the contract."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.found: set[tuple[str, str]] = set()

    def path(self, entity_set: str, path: str) -> None:
        """A Dataverse path `nav/column` names `nav` here and `column` on its target; the
        flow API's `properties/actions` is one name."""
        entity = self.contract.entities.get(entity_set)
        if entity is not None and entity.api != "dataverse":
            self.found.add((entity_set, path))
            return
        head, _, rest = path.partition("/")
        self.found.add((entity_set, head))
        target = self.contract.target(entity_set, head)
        if rest and target:
            self.path(target, rest)

    def options(self, entity_set: str, options: Mapping[str, str]) -> None:
        for name in _split(options.get("$select", ""), ","):
            self.path(entity_set, name)
        for name in filter_properties(options.get("$filter", "")):
            self.path(entity_set, name)
        for item in _split(options.get("$orderby", ""), ","):
            self.path(entity_set, item.split()[0])
        for item in _split(options.get("$expand", ""), ","):
            nav, _, nested = item.partition("(")
            self.path(entity_set, nav.strip())
            target = self.contract.target(entity_set, nav.strip())
            if target:
                inner: dict[str, str] = {}
                for option in _split(nested.removesuffix(")"), ";"):
                    key, _, value = option.partition("=")
                    inner[key.strip()] = value
                self.options(target, inner)


def references(spec: QuerySpec, contract: Contract | None = None) -> frozenset[tuple[str, str]]:
    """Every (entity set, property) a query names in $select, $filter, $orderby and $expand.

    Nested `$select` / `$expand` (and `$filter` / `$orderby`) of a navigation are attributed
    to its target entity set as the contract records it; of a navigation the contract lacks,
    only the navigation itself is reported.
    """
    refs = _Refs(contract or default_contract())
    refs.options(spec.entity_set, dict(spec.options))
    return frozenset(refs.found)


def missing(spec: QuerySpec, contract: Contract | None = None) -> list[tuple[str, str]]:
    """What a query references that the contract does not document, sorted."""
    contract = contract or default_contract()
    return sorted(ref for ref in references(spec, contract) if not contract.has(*ref))


def undocumented_values(spec: QuerySpec, contract: Contract | None = None) -> list[str]:
    """`column = literal` comparisons of a query's $filter whose value the contract lacks."""
    contract = contract or default_contract()
    return sorted(
        f"{spec.entity_set}.{column} = {literal}"
        for column, literal in comparisons(spec.filter or "")
        if not contract.documents_value(spec.entity_set, column, literal)
    )
