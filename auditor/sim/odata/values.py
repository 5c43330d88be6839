"""Column values as JSON: timestamps in ISO 8601 with `Z`, nulls of every kind as None,
numpy scalars as plain Python values; and `utc` for the clock.

Apart because both the Dataverse rows and the flow API's runs are serialised with them.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd


def format_timestamps(series: pd.Series, fraction_digits: int = 0) -> list[str | None]:
    """UTC timestamps as ISO 8601 with `Z`; `fraction_digits` 0 (Dataverse) or 7 (flow API)."""
    values = series
    if getattr(values.dtype, "tz", None) is not None:
        values = values.dt.tz_convert("UTC").dt.tz_localize(None)
    raw = values.to_numpy(dtype="datetime64[us]")
    nat = np.isnat(raw)
    if fraction_digits == 0:
        text = np.datetime_as_string(raw.astype("datetime64[s]"), unit="s")
        suffix = "Z"
    else:
        text = np.datetime_as_string(raw, unit="us")
        suffix = "0Z"  # .NET's 7-digit ticks: microseconds plus one digit
    out: list[str | None] = [t + suffix for t in text.tolist()]
    for i in np.flatnonzero(nat).tolist():
        out[i] = None
    return out


def objects(series: pd.Series) -> list[Any]:
    """Values as Python objects with None for every kind of null (NaN, NA, NaT)."""
    values: list[Any] = series.astype(object).tolist()
    for i in np.flatnonzero(series.isna().to_numpy()).tolist():
        values[i] = None
    return values


def json_values(series: pd.Series) -> list[Any]:
    """Column values as JSON-ready Python objects (None for nulls)."""
    dtype = series.dtype
    if isinstance(dtype, pd.DatetimeTZDtype) or pd.api.types.is_datetime64_any_dtype(dtype):
        return format_timestamps(series)
    if pd.api.types.is_float_dtype(dtype):
        floats = series.to_numpy(dtype=float, na_value=np.nan)
        return [None if v != v else v for v in floats.tolist()]
    if pd.api.types.is_integer_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return objects(series)
    values = objects(series)
    return [v if v is None or type(v) is str else _plain(v) for v in values]


def _plain(value: Any) -> Any:
    """Make one object-column value JSON-ready (NaN, numpy scalars, timestamps)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        return None if value != value else value
    if isinstance(value, pd.Timestamp | datetime):
        stamp = pd.Timestamp(value)
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, np.generic):
        return _plain(value.item())
    if value is pd.NA or value is pd.NaT:
        return None
    return str(value)


def utc(value: datetime) -> datetime:
    """`value` as an aware UTC datetime (naive values are taken as UTC)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
