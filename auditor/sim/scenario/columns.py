"""The simulated clock, the random streams and the column builders every part shares.

Columns are built with the dtypes of `auditor.sim.model`: UTC timestamps, nullable `Int64`,
`object` text (None for null), nullable booleans.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditor.sim.model import SCALES

NOW = datetime(2026, 11, 15, 12, 0, 0, tzinfo=UTC)
START = NOW - timedelta(days=7) + timedelta(hours=1)
END = NOW + timedelta(hours=12)
NS = 1_000_000_000
NOW_NS = int(NOW.timestamp()) * NS
START_NS = int(START.timestamp()) * NS
END_NS = int(END.timestamp()) * NS
NAT = np.iinfo(np.int64).min
# The flow API lists a run from its start (the truth counts runs the same way).
RUNS_VISIBLE_BY = "start_time"

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
OBJ = npt.NDArray[np.object_]


def rng_for(seed: int, scale: str, *keys: int) -> np.random.Generator:
    """An independent stream per purpose, so adding rows in one part never shifts another."""
    entropy = [int(seed) & 0xFFFFFFFF, SCALES.index(scale), *keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


# Column builders with the dtypes of model.py ------------------------------------------------


def ts(values: npt.ArrayLike) -> pd.Series:
    """UTC timestamps from epoch nanoseconds (NAT for null)."""
    arr = np.asarray(values, dtype=np.int64).view("M8[ns]")
    return pd.Series(pd.DatetimeIndex(arr).tz_localize("UTC"))


def ints(values: npt.ArrayLike, null: npt.ArrayLike | None = None) -> pd.Series:
    """Nullable Int64, null where `null` holds."""
    arr = np.asarray(values, dtype=np.int64)
    mask = np.zeros(len(arr), dtype=bool) if null is None else np.asarray(null, dtype=bool)
    return pd.Series(pd.arrays.IntegerArray(arr, mask))


def objs(values: Sequence[Any] | OBJ) -> pd.Series:
    """Text or other Python values, None for null."""
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values) if not isinstance(values, np.ndarray) else values
    return pd.Series(arr, dtype=object)


def bools(values: npt.ArrayLike) -> pd.Series:
    """Nullable booleans."""
    return pd.Series(pd.array(np.asarray(values, dtype=bool), dtype="boolean"))


def const(value: Any, n: int) -> pd.Series:
    """The same value on `n` rows."""
    arr = np.empty(n, dtype=object)
    arr[:] = [value] * n
    return pd.Series(arr, dtype=object)


def masked(mask: npt.NDArray[np.bool_], values: OBJ | str) -> OBJ:
    """Text where `mask` holds, None elsewhere."""
    out = np.full(len(mask), None, dtype=object)
    out[mask] = values[mask] if isinstance(values, np.ndarray) else values
    return out


def secs(ns: I64) -> I64:
    """Dataverse keeps whole seconds."""
    out = (ns // NS) * NS
    return np.where(ns == NAT, NAT, out).astype(np.int64)


def frame_of(columns: Mapping[str, pd.Series]) -> pd.DataFrame:
    """A frame of these columns, in this order."""
    return pd.DataFrame(dict(columns))


def iso7(ns: int) -> str:
    """ISO 8601 UTC with seven fractional digits, as the flow API writes times."""
    sec, frac = divmod(int(ns), NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac // 100:07d}Z"
