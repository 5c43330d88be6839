"""Coercion: untrusted values to the declared column types, column by column.

Tenant data is untrusted. Values are coerced column by column to the declared types and a
value that does not fit becomes NULL instead of failing the page.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from auditor.store.errors import StoreError
from auditor.store.schema import TableSpec

_PLAIN = (int, float, str)
_BRACED_GUID = re.compile(r"\{([0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12})\}")
_LIMITS = {"INTEGER": (-(2**31), 2**31 - 1), "BIGINT": (-(2**63), 2**63 - 1)}
_BOOLEAN_TYPES = (bool, int, float, str, np.bool_)
_BOOLEANS: dict[Any, bool] = {
    True: True,  # also matches 1 and 1.0
    False: False,  # also matches 0 and 0.0
    "true": True,
    "false": False,
    "True": True,
    "False": False,
    "TRUE": True,
    "FALSE": False,
    "1": True,
    "0": False,
}


def page_frame(
    table: str,
    spec: TableSpec,
    rows: Sequence[Mapping[str, Any]],
    environment_id: str,
    scan_id: int,
) -> pd.DataFrame:
    """The rows as a frame of the table's columns and types, deduplicated by key (last wins)."""
    fixed: dict[str, Any] = {"environment_id": environment_id, "scan_id": scan_id}
    data: dict[str, Any] = {}
    for name, sql_type in spec.columns:
        if name in fixed:
            values: list[Any] = [fixed[name]] * len(rows)
        else:
            values = [row.get(name) for row in rows]
        data[name] = _COERCE[sql_type](values, name in spec.guids)
    frame = pd.DataFrame(data, index=pd.RangeIndex(len(rows)))
    if frame.empty:
        return frame
    missing = frame[list(spec.key)].isna()
    if missing.to_numpy().any():
        column = next(c for c in spec.key if missing[c].any())
        raise StoreError(
            f"{int(missing.any(axis=1).sum())} row(s) for {table} have no {column}, part of "
            "the table's key",
            hint="The query must select every key column; this is a bug in the query "
            "definitions, please report it.",
        )
    return frame.drop_duplicates(subset=list(spec.key), keep="last", ignore_index=True)


def _text(values: list[Any], guid: bool) -> pd.Series:
    out = [v if v is None or type(v) is str else _to_text(v) for v in values]
    present = [v for v in out if v is not None]
    try:
        "".join(present).encode("utf-8")
    except UnicodeEncodeError:
        # Lone surrogates (from "\ud800" in JSON) cannot be stored as UTF-8: escape them.
        out = [
            v if v is None else v.encode("utf-8", "backslashreplace").decode("utf-8") for v in out
        ]
    if guid:
        out = [v if v is None else _guid(v) for v in out]
    return pd.Series(out, dtype=object)


def _guid(value: str) -> str:
    """A GUID as the Web API writes it: lower case, and without the braces of "{GUID}", the
    form of exports and older APIs, which would otherwise never join the same id unbraced."""
    lowered = value.lower()
    if lowered.startswith("{"):
        match = _BRACED_GUID.fullmatch(lowered)
        if match:
            return match.group(1)
    return lowered


def _to_text(value: Any) -> str | None:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _number(values: list[Any]) -> pd.Series:
    # bool is an int subclass, but True is not a count: only exact int, float and str pass,
    # and numpy numbers (a caller may build rows from a frame) as plain ones.
    cleaned = [
        v if type(v) in _PLAIN else (None if v is None else _numpy_number(v)) for v in values
    ]
    return pd.to_numeric(
        pd.Series(cleaned, dtype=object), errors="coerce", dtype_backend="numpy_nullable"
    )


def _numpy_number(value: Any) -> int | float | None:
    if isinstance(value, np.integer | np.floating):
        return value.item()
    return None


def _integer(sql_type: str) -> Callable[[list[Any], bool], pd.Series]:
    low, high = _LIMITS[sql_type]

    def coerce(values: list[Any], guid: bool) -> pd.Series:
        numbers = _number(values)
        if str(numbers.dtype) == "Int64":
            fits = (numbers >= low) & (numbers <= high)
        else:
            whole = numbers.astype("Float64")
            # Not integral, infinite or out of range: NULL rather than a wrong number.
            fits = (whole % 1 == 0) & (whole >= low) & (whole < float(high) + 1)
        return numbers.where(fits.fillna(False).astype(bool)).astype("Int64")

    return coerce


def _double(values: list[Any], guid: bool) -> pd.Series:
    return _number(values).astype("Float64")


def _boolean(values: list[Any], guid: bool) -> pd.Series:
    out = [_BOOLEANS.get(v) if type(v) in _BOOLEAN_TYPES else None for v in values]
    return pd.Series(out, dtype="boolean")


def _timestamp(values: list[Any], guid: bool) -> pd.Series:
    # Only text starting with a digit (ISO 8601) or datetimes: pandas would read "now" and
    # "today" as times too, and numbers as epoch offsets.
    cleaned = [
        v if (type(v) is str and v[:1].isdigit()) or isinstance(v, datetime) else None
        for v in values
    ]
    parsed = pd.to_datetime(
        pd.Series(cleaned, dtype=object), utc=True, errors="coerce", format="ISO8601"
    )
    return parsed.dt.tz_convert(None).astype("datetime64[us]")


_COERCE: dict[str, Callable[[list[Any], bool], pd.Series]] = {
    "VARCHAR": _text,
    "INTEGER": _integer("INTEGER"),
    "BIGINT": _integer("BIGINT"),
    "DOUBLE": _double,
    "BOOLEAN": _boolean,
    "TIMESTAMP": _timestamp,
}
