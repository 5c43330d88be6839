"""Helpers every analysis module shares: typed frames, untrusted numbers, percentiles.

Tenant data is untrusted, so numbers are coerced (junk becomes NaN), and every frame an
analysis returns has its declared columns, in order, with their declared dtypes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from pandas.core.groupby import SeriesGroupBy


def typed(frame: pd.DataFrame, dtypes: Mapping[str, str]) -> pd.DataFrame:
    """The declared columns in the declared order and dtypes, whatever the input gave."""
    out = frame.reindex(columns=list(dtypes)).reset_index(drop=True)
    return out.astype(dict(dtypes))


def typed_rows(rows: Iterable[Mapping[str, Any]], dtypes: Mapping[str, str]) -> pd.DataFrame:
    """A frame of row dicts with the declared columns, in order, and their declared dtypes."""
    frame = pd.DataFrame(list(rows), columns=list(dtypes))
    return frame.astype(dict(dtypes))


def number(series: pd.Series) -> pd.Series:
    """Float values, NaN for nulls and for what is not a number (tenant data is untrusted)."""
    return pd.to_numeric(series, errors="coerce").astype("float64")


def percentiles(
    grouped: SeriesGroupBy[Any, Any], columns: Mapping[str, float], maximum: str | None = None
) -> pd.DataFrame:
    """Percentiles per group, one column per name of `columns` (name -> level), nulls ignored.

    The one rule of the project: linear interpolation between the two nearest values
    (pandas' "linear", the same as numpy's default). With `maximum`, the group's largest
    value is added as that column.
    """
    levels = np.array(list(columns.values()))
    # reindex: with no group at all, unstack() has no columns to rename.
    found = grouped.quantile(levels, interpolation="linear").unstack().reindex(columns=levels)
    found.columns = pd.Index(list(columns))
    if maximum is not None:
        found[maximum] = grouped.max()
    return found
