"""The engine: one environment's tables served with cached row orders, pages of rows with
formatted values, and `$expand` of single-valued navigation properties.

Apart because it is the only part holding state: the per-table caches and the bounded cache
of row orders per (table, filter, order, clock).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditor.contract import default_contract
from auditor.sim.model import PRIMARY_KEYS, VISIBLE_BY
from auditor.sim.odata.errors import no_property
from auditor.sim.odata.filter_eval import FilterEvaluator, fill_mask, lowered_text
from auditor.sim.odata.labels import CHOICE_LABELS, FORMATTED_VALUE, LOOKUP_NAMES, PRIMARY_NAMES
from auditor.sim.odata.paging import Preferences
from auditor.sim.odata.query import EntityQuery, Expand
from auditor.sim.odata.values import json_values, objects

Positions = npt.NDArray[np.int64]


@dataclass
class _TableCache:
    frame: pd.DataFrame
    served: tuple[str, ...]
    sort_codes: dict[str, Positions] = field(default_factory=dict)
    key_positions: dict[str, int] | None = None


@dataclass(frozen=True)
class Page:
    """One page of a query result."""

    rows: list[dict[str, Any]]
    total: int  # rows matching the query (before paging)
    next_offset: int | None  # offset of the next page, None on the last one


class TableStore:
    """Serves queries over one environment's tables with cached row orders.

    The index cache is bounded by the total number of cached positions (least recently used
    first out), so a scan of many time windows does not grow memory without limit.
    """

    def __init__(
        self, tables: Mapping[str, pd.DataFrame], max_cached_positions: int = 16_000_000
    ) -> None:
        self.tables = tables
        self._tables: dict[str, _TableCache] = {}
        self._indexes: OrderedDict[tuple[Any, ...], Positions] = OrderedDict()
        self._cached_positions = 0
        self._max_cached_positions = max_cached_positions
        self.index_builds = 0  # how many times a row order was computed (tests read it)

    def table(self, entity_set: str) -> _TableCache:
        """The cache entry of a table, rebuilt if the frame was replaced."""
        frame = self.tables.get(entity_set)
        if frame is None:
            frame = pd.DataFrame({PRIMARY_KEYS[entity_set]: pd.Series([], dtype=object)})
        cache = self._tables.get(entity_set)
        if cache is None or cache.frame is not frame:
            # Only what Microsoft documents for the table (queries/contract.toml) and the
            # primary key is served: any other name in $select, $filter, $orderby or a nested
            # $expand $select gets Dataverse's 400 {"error": {"code": "0x80060888", "message":
            # "Could not find a property named '<name>' on type 'Microsoft.Dynamics.CRM.<table>'."}}
            # https://learn.microsoft.com/power-apps/developer/data-platform/webapi/compose-http-requests-handle-errors
            documented = default_contract().columns(entity_set) | {PRIMARY_KEYS[entity_set]}
            served = tuple(
                str(c)
                for c in frame.columns
                if str(c) in documented and not str(c).startswith("_sim_")
            )
            cache = _TableCache(frame, served)
            self._tables[entity_set] = cache
        return cache

    def columns(self, entity_set: str) -> tuple[str, ...]:
        """The served columns of an entity set (never the `_sim_` ones)."""
        return self.table(entity_set).served

    def _codes(self, cache: _TableCache, column: str) -> Positions:
        codes = cache.sort_codes.get(column)
        if codes is None:
            series = cache.frame[column]
            if pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(
                series.dtype
            ):
                series = lowered_text(series)  # order text case-insensitively, like the collation
            raw, _ = pd.factorize(series, sort=True, use_na_sentinel=True)
            codes = np.asarray(raw, dtype=np.int64)  # nulls are -1: first ascending
            cache.sort_codes[column] = codes
        return codes

    def positions(self, query: EntityQuery, now: datetime) -> Positions:
        """Row positions matching the query, in order, before `$top` and paging."""
        cache = self.table(query.entity_set)
        key = (query.entity_set, id(cache.frame), repr(query.filter), query.orderby, now)
        found = self._indexes.get(key)
        if found is not None:
            self._indexes.move_to_end(key)
            return found
        frame = cache.frame
        mask = np.ones(len(frame), dtype=bool)
        visible_by = VISIBLE_BY.get(query.entity_set)
        if visible_by is not None and visible_by in frame.columns:
            column = frame[visible_by]
            limit: Any = pd.Timestamp(now)
            if getattr(column.dtype, "tz", None) is None:
                limit = limit.tz_convert("UTC").tz_localize(None)
            mask &= fill_mask(column <= limit)
        if query.filter is not None:

            def column_of(name: str) -> pd.Series:
                if name not in cache.served:
                    raise no_property(query.entity_set, name)
                return frame[name]

            mask &= FilterEvaluator(len(frame), column_of).mask(query.filter)
        selected = np.flatnonzero(mask).astype(np.int64)
        # Order: the $orderby keys, then the primary key, as Dataverse pages by it.
        keys: list[Positions] = []
        for column_name, descending in (*query.orderby, (PRIMARY_KEYS[query.entity_set], False)):
            if column_name not in frame.columns:
                continue
            codes = self._codes(cache, column_name)[selected]
            keys.append(-codes if descending else codes)
        if keys and len(selected) > 1:
            order = np.lexsort(tuple(reversed(keys)))
            selected = selected[order]
        self.index_builds += 1
        self._indexes[key] = selected
        self._cached_positions += len(selected)
        while self._cached_positions > self._max_cached_positions and len(self._indexes) > 1:
            _, dropped = self._indexes.popitem(last=False)
            self._cached_positions -= len(dropped)
        return selected

    def page(
        self, query: EntityQuery, now: datetime, offset: int, size: int, prefs: Preferences
    ) -> Page:
        """Rows `[offset, offset + size)` of the query result, serialised."""
        positions = self.positions(query, now)
        if query.top is not None:
            positions = positions[: query.top]
        chunk = positions[offset : offset + size]
        rows = self.rows(query.entity_set, chunk, query.select, query.expand, prefs)
        end = offset + len(chunk)
        return Page(rows, len(positions), end if end < len(positions) else None)

    def rows(
        self,
        entity_set: str,
        positions: Positions,
        select: Sequence[str],
        expand: Sequence[Expand],
        prefs: Preferences,
    ) -> list[dict[str, Any]]:
        """Serialise rows: `@odata.etag`, selected columns with formatted values, expands."""
        cache = self.table(entity_set)
        frame = cache.frame
        if len(positions) == 0:
            return []
        keys: list[str] = ["@odata.etag"]
        if "versionnumber" in frame.columns:
            versions = frame["versionnumber"].to_numpy(dtype=object, na_value=0)[positions]
        else:
            versions = positions + 1_000_000
        columns: list[list[Any]] = [[f'W/"{int(v)}"' for v in versions.tolist()]]
        labelled: list[str] = []
        formatted = prefs.wants(FORMATTED_VALUE)
        choices = CHOICE_LABELS.get(entity_set, {})
        lookups = LOOKUP_NAMES.get(entity_set, {})
        for name in select:
            values = json_values(frame[name].iloc[positions])
            if formatted and (name in choices or name in lookups):
                annotation = f"{name}@{FORMATTED_VALUE}"
                keys.append(annotation)
                if name in choices:
                    labels = choices[name]
                    columns.append([None if v is None else labels.get(v, str(v)) for v in values])
                else:
                    columns.append(self._lookup_names(lookups[name], values))
                labelled.append(annotation)
            keys.append(name)
            columns.append(values)
        rows = [dict(zip(keys, values, strict=True)) for values in zip(*columns, strict=True)]
        for annotation in labelled:
            for row in rows:
                if row[annotation] is None:
                    del row[annotation]
        for item in expand:
            self._expand(frame, positions, rows, item, prefs)
        return rows

    def _lookup_names(self, target: str, keys: list[Any]) -> list[Any]:
        """The primary name of each lookup's target row (a lookup's formatted value)."""
        cache = self.table(target)
        if cache.key_positions is None:
            ids = objects(cache.frame[PRIMARY_KEYS[target]])
            cache.key_positions = {str(k).lower(): i for i, k in enumerate(ids) if k is not None}
        names = objects(cache.frame[PRIMARY_NAMES[target]]) if len(cache.frame) else []
        found = [None if k is None else cache.key_positions.get(str(k).lower()) for k in keys]
        return [None if p is None else names[p] for p in found]

    def _expand(
        self,
        frame: pd.DataFrame,
        positions: Positions,
        rows: list[dict[str, Any]],
        item: Expand,
        prefs: Preferences,
    ) -> None:
        target = self.table(item.target)
        if target.key_positions is None:
            pk = PRIMARY_KEYS[item.target]
            keys = objects(target.frame[pk])
            target.key_positions = {str(k).lower(): i for i, k in enumerate(keys) if k is not None}
        if item.lookup in frame.columns:
            lookups = objects(frame[item.lookup].iloc[positions])
        else:
            lookups = [None] * len(rows)
        found = [None if k is None else target.key_positions.get(str(k).lower()) for k in lookups]
        wanted = sorted({p for p in found if p is not None})
        related = self.rows(
            item.target, np.asarray(wanted, dtype=np.int64), item.select, item.expand, prefs
        )
        by_position = dict(zip(wanted, related, strict=True))
        for row, position in zip(rows, found, strict=True):
            row[item.nav] = None if position is None else by_position[position]
