"""Frame helpers of the truth: the rows served at `now`, the rows the collector's queries
store, and the small numeric helpers (nanoseconds, p95, longest failure streak, ISO time).

Apart because every per-environment step reads the frames through them.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

# The entity sets the collector reads (queries/dataverse/*.odata) and their $filter, applied
# to visible rows to get the rows a first scan stores.
QUERY_SETS = (
    "organizations",
    "workflows",
    "callbackregistrations",
    "sdkmessageprocessingsteps",
    "plugintracelogs",
    "asyncoperations",
    "flowruns",
    "flowevents",
)


def ns(series: pd.Series) -> npt.NDArray[np.int64]:
    """Timestamps as int64 nanoseconds since the epoch (NaT is the int64 minimum)."""
    return series.to_numpy(dtype="datetime64[ns]").view(np.int64)


def visible(frame: pd.DataFrame, column: str | None, now_ns: int) -> pd.DataFrame:
    """Rows served at `now`: the visibility column at or before it (NaT never hides a row)."""
    if column is None or frame.empty:
        return frame
    values = ns(frame[column])
    nat = np.iinfo(np.int64).min
    shown: pd.DataFrame = frame.loc[(values <= now_ns) | (values == nat)]
    return shown


def query_rows(entity_set: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the $filter of the collector's query file to visible rows."""
    if entity_set == "sdkmessageprocessingsteps":
        return frame[frame["customizationlevel"] == 1]
    if entity_set == "workflows":
        return frame[(frame["category"] == 5) & (frame["type"] == 1)]
    if entity_set == "asyncoperations":
        return frame[frame["operationtype"].isin([1, 10, 79])]
    if entity_set == "flowevents":
        return frame[frame["eventtype"] == "FlowRunIngestion"]
    return frame


def p95(values: npt.NDArray[np.float64]) -> float | None:
    """The 95th percentile (linear), rounded to 3 decimals; None for no values."""
    if len(values) == 0:
        return None
    return round(float(np.percentile(values, 95, method="linear")), 3)


def max_streak(flags: npt.NDArray[np.bool_]) -> int:
    """The longest run of consecutive true flags."""
    if not len(flags):
        return 0
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def iso(ns: int) -> str:
    """Nanoseconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ`."""
    return pd.Timestamp(ns, unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
