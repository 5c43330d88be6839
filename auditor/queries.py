"""Loads and validates the query catalog in `queries/`.

Each query lives in its own file in its native syntax (an OData request relative to the API
root, with `#` comments and one query option per line) so a user can paste it into their own
tools. `catalog.toml` lists the queries with what the collectors need to know about them.
Anything odd (unknown keys, missing files, duplicate ids, a watermark column that is not
selected) is a `DefinitionError` at load time, not a surprise in the middle of a scan.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache, cached_property
from pathlib import Path
from urllib.parse import quote

from auditor.access import Access
from auditor.errors import DefinitionError
from auditor.resources import data_dir

SOURCES = ("dataverse", "flow_api", "admin_api")
PLACEHOLDERS = frozenset({"start", "end", "environment", "flow", "run"})
_CATALOG_KEYS = frozenset(
    {"id", "source", "file", "entity_set", "key", "watermark", "window", "privilege", "description"}
)
_OPTIONAL_KEYS = frozenset({"annotations", "part_of"})
# Query options other than OData's `$...`: the API version, and the flow API's `include`
# (pnp/cli-microsoft365 src/m365/flow/commands/flow-list.ts: include=includeSolutionCloudFlows).
_PLAIN_OPTIONS = frozenset({"api-version", "include"})
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class QuerySpec:
    """One query: where it goes, what it selects, and how it is paged and resumed."""

    id: str
    source: str
    file: Path
    entity_set: str
    path: str  # URL path relative to the API root, may hold {environment}/{flow}/{run}
    options: tuple[tuple[str, str], ...]  # query options in file order, values may hold {start}
    key: tuple[str, ...]
    watermark: str  # "" when the query is read in full every scan
    window: str  # "" when the query cannot be split into time windows
    privilege: str
    description: str
    annotations: str = ""  # OData annotations asked for in `Prefer` ("" = none)
    part_of: str = ""  # a request made while collecting that query, with no outcome of its own

    @property
    def access(self) -> Access:
        """What reading this query needs (its API and, for Dataverse, the privilege)."""
        return Access(self.source, self.privilege if self.source == "dataverse" else "")

    @property
    def select(self) -> tuple[str, ...]:
        """The columns of `$select`, in order."""
        value = self.option("$select")
        return tuple(c.strip() for c in value.split(",")) if value else ()

    @property
    def filter(self) -> str | None:
        """The `$filter` template (placeholders unfilled)."""
        return self.option("$filter")

    @property
    def orderby(self) -> str | None:
        """The `$orderby` option."""
        return self.option("$orderby")

    @cached_property
    def placeholders(self) -> frozenset[str]:
        """Placeholders used anywhere in the path or options (found once: every request's
        render asks)."""
        text = self.path + "".join(v for _, v in self.options)
        return frozenset(_PLACEHOLDER.findall(text))

    def option(self, name: str) -> str | None:
        """The value of one query option, or None."""
        for key, value in self.options:
            if key == name:
                return value
        return None

    def render(self, **values: str | datetime) -> tuple[str, dict[str, str]]:
        """The path and query parameters with every placeholder filled.

        Datetimes become OData datetime literals (`2026-11-08T12:00:00Z`, unquoted); path
        values are percent-encoded.
        """
        missing = self.placeholders - set(values)
        if missing:
            raise ValueError(f"query {self.id!r} needs values for {sorted(missing)}")

        def fill(template: str, *, in_path: bool) -> str:
            def one(match: re.Match[str]) -> str:
                value = values[match.group(1)]
                text = odata_datetime(value) if isinstance(value, datetime) else str(value)
                return quote(text, safe="") if in_path else text

            return _PLACEHOLDER.sub(one, template)

        path = fill(self.path, in_path=True)
        return path, {k: fill(v, in_path=False) for k, v in self.options}


def odata_datetime(value: datetime) -> str:
    """An OData v4 datetime literal in UTC, as Dataverse and the flow API accept it."""
    if value.tzinfo is None:
        raise ValueError("datetimes in queries must be timezone-aware")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Catalog(Mapping[str, QuerySpec]):
    """The loaded catalog, by query id."""

    def __init__(self, specs: Mapping[str, QuerySpec], folder: Path) -> None:
        self._specs = dict(specs)
        self.folder = folder

    def __getitem__(self, key: str) -> QuerySpec:
        try:
            return self._specs[key]
        except KeyError:
            raise DefinitionError(f"No query {key!r} in {self.folder / 'catalog.toml'}.") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._specs)

    def __len__(self) -> int:
        return len(self._specs)

    def outcomes(self) -> list[str]:
        """The ids of the queries a scan reports on (not the requests part of another)."""
        return [spec.id for spec in self._specs.values() if not spec.part_of]

    def by_source(self, source: str) -> list[QuerySpec]:
        """The queries of one source, in catalog order."""
        return [spec for spec in self._specs.values() if spec.source == source]


@cache
def default_catalog() -> Catalog:
    """The catalog shipped with the auditor (loaded once)."""
    return load_catalog(data_dir("queries"))


def load_catalog(folder: Path) -> Catalog:
    """Load `folder/catalog.toml` and every query file it names, validating both."""
    catalog_file = folder / "catalog.toml"
    try:
        document = tomllib.loads(catalog_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DefinitionError(f"{catalog_file} is missing.") from None
    except tomllib.TOMLDecodeError as exc:
        raise DefinitionError(f"{catalog_file} is not valid TOML: {exc}") from None
    if set(document) - {"query"}:
        raise DefinitionError(f"{catalog_file}: unknown top-level keys {sorted(set(document))}")
    specs: dict[str, QuerySpec] = {}
    for index, entry in enumerate(document.get("query", [])):
        where = f"{catalog_file} query #{index + 1}"
        spec = _load_entry(entry, folder, where)
        if spec.id in specs:
            raise DefinitionError(f"{where}: duplicate query id {spec.id!r}")
        specs[spec.id] = spec
    if not specs:
        raise DefinitionError(f"{catalog_file} lists no queries.")
    for spec in specs.values():
        if spec.part_of and specs.get(spec.part_of, spec).part_of != "":
            raise DefinitionError(
                f"{catalog_file}: query {spec.id!r} is part of {spec.part_of!r}, which is not a "
                "query with an outcome of its own"
            )
    return Catalog(specs, folder)


def _load_entry(entry: Mapping[str, object], folder: Path, where: str) -> QuerySpec:
    unknown = set(entry) - _CATALOG_KEYS - _OPTIONAL_KEYS
    if unknown:
        raise DefinitionError(f"{where}: unknown keys {sorted(unknown)}")
    missing = _CATALOG_KEYS - set(entry)
    if missing:
        raise DefinitionError(f"{where}: missing keys {sorted(missing)}")
    strings = {k: entry[k] for k in (_CATALOG_KEYS | _OPTIONAL_KEYS) - {"key"} if k in entry}
    for name, value in strings.items():
        if not isinstance(value, str):
            raise DefinitionError(f"{where}: `{name}` must be a string")
    key = entry["key"]
    if not isinstance(key, list) or not key or not all(isinstance(k, str) for k in key):
        raise DefinitionError(f"{where}: `key` must be a non-empty list of column names")
    query_id = str(entry["id"])
    source = str(entry["source"])
    if source not in SOURCES:
        raise DefinitionError(f"{where}: `source` must be one of {', '.join(SOURCES)}")
    file = folder / str(entry["file"])
    if not file.is_file():
        raise DefinitionError(f"{where}: query file {file} is missing")
    path, options = parse_query_file(file)
    spec = QuerySpec(
        id=query_id,
        source=source,
        file=file,
        entity_set=str(entry["entity_set"]),
        path=path,
        options=options,
        key=tuple(key),
        watermark=str(entry["watermark"]),
        window=str(entry["window"]),
        privilege=str(entry["privilege"]),
        description=str(entry["description"]),
        annotations=str(entry.get("annotations", "")),
        part_of=str(entry.get("part_of", "")),
    )
    _validate(spec, where)
    return spec


def parse_query_file(file: Path) -> tuple[str, tuple[tuple[str, str], ...]]:
    """Split a query file into its path and its query options."""
    lines = [line.strip() for line in file.read_text(encoding="utf-8").splitlines()]
    text = "".join(line for line in lines if line and not line.startswith("#"))
    if not text.startswith("GET "):
        raise DefinitionError(f"{file}: a query must start with `GET <path>`")
    path, _, query = text[4:].strip().partition("?")
    options: list[tuple[str, str]] = []
    for part in _split_top_level(query):
        name, sep, value = part.partition("=")
        if not sep or not name:
            raise DefinitionError(f"{file}: query option {part!r} is not name=value")
        if not (name.startswith("$") or name in _PLAIN_OPTIONS):
            raise DefinitionError(f"{file}: unknown query option {name!r}")
        if any(name == existing for existing, _ in options):
            raise DefinitionError(f"{file}: query option {name!r} appears twice")
        options.append((name, value))
    return path.strip("/"), tuple(options)


def _split_top_level(query: str) -> list[str]:
    """Split on `&` outside parentheses (nested `$expand` options use `;`)."""
    parts: list[str] = []
    current: list[str] = []
    depth = 0
    for char in query:
        depth += char == "("
        depth -= char == ")"
        if char == "&" and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    if current:
        parts.append("".join(current))
    return [p for p in parts if p]


def _validate(spec: QuerySpec, where: str) -> None:
    unknown = spec.placeholders - PLACEHOLDERS
    if unknown:
        raise DefinitionError(f"{where}: unknown placeholders {sorted(unknown)}")
    if spec.entity_set not in spec.path.split("/"):
        raise DefinitionError(f"{where}: entity_set {spec.entity_set!r} is not in {spec.path!r}")
    if spec.source == "dataverse":
        if spec.path != spec.entity_set:
            raise DefinitionError(f"{where}: a Dataverse query must read its entity set")
        selected = set(spec.select)
        for column in (*spec.key, spec.watermark, spec.window):
            if column and column not in selected:
                raise DefinitionError(f"{where}: column {column!r} is not in $select")
    if spec.window and not {"start", "end"} <= spec.placeholders:
        raise DefinitionError(f"{where}: a windowed query needs {{start}} and {{end}}")
