"""Signatures of repeated action blocks: the same steps done the same way, across flows.

Works on the action frame the definition parser builds (or one built by hand), hashing every
window of consecutive actions in a scope at once with numpy; apart from the parser because it
is a frame-wide computation, not a reading of one definition.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
import pandas as pd

from auditor.analysis.common import typed_rows

BLOCK_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "scope_path": "str",
    "start_action": "str",
    "length": "int64",
    "signature": "str",
}

BLOCK_COLUMNS: tuple[str, ...] = tuple(BLOCK_DTYPES)


# Two independent 64-bit polynomial hashes over per-action token hashes (128 bits together):
# every window of every scope is hashed at once with numpy, and the result is stable across
# runs and machines (no Python hash()).
_BASES = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F)
_MASK = 2**64 - 1
_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)


def _token_hashes(keys: pd.Series) -> np.ndarray[Any, np.dtype[np.uint64]]:
    codes, uniques = pd.factorize(keys)
    values = np.array(
        [
            int.from_bytes(
                hashlib.blake2b(str(u).encode("utf-8", "surrogatepass"), digest_size=8).digest(),
                "little",
            )
            for u in uniques
        ],
        dtype=np.uint64,
    )
    return values[codes]


def _powers(base: int, count: int) -> np.ndarray[Any, np.dtype[np.uint64]]:
    out = np.full(count, base, dtype=np.uint64)
    out[0] = 1
    return np.cumprod(out, dtype=np.uint64)  # wraps modulo 2**64, as intended


def _hex(values: np.ndarray[Any, np.dtype[np.uint64]]) -> np.ndarray[Any, np.dtype[np.uint8]]:
    raw = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    out = np.empty((len(values), 16), dtype=np.uint8)
    out[:, 0::2] = _HEX[raw >> 4]
    out[:, 1::2] = _HEX[raw & 15]
    return out


def _block_keys(frame: pd.DataFrame, by_content: bool) -> pd.Series[str]:
    """What each action contributes to a block's signature (see `block_signatures`)."""

    def part(column: str) -> pd.Series[str]:
        return frame[column].astype("str").fillna("")

    if by_content:
        keys = part("content_key")
        if "written_columns" in frame:
            # The same columns in another order are the same write: sort each distinct list.
            codes, uniques = pd.factorize(part("written_columns").str.lower())
            written = np.array([",".join(sorted(str(u).split(","))) for u in uniques] + [""])
            keys = keys + "\x1f" + pd.Series(written[codes], index=frame.index, dtype="str")
        return keys
    operation = frame["operation"].where(frame["operation"].notna(), frame["method"])
    keys = part("type").str.lower() + "\x1f" + part("connector").str.lower() + "\x1f"
    return keys + operation.astype("str").fillna("").str.lower()


def block_signatures(
    actions: pd.DataFrame, min_length: int = 5, max_length: int = 50
) -> pd.DataFrame:
    """Signatures of every run of `min_length`..`max_length` consecutive actions in a scope
    that holds at least one external call.

    A step done the same way in several flows, or several times in one flow, is a child-flow
    candidate (R-CHILD in tests/corpus/README.md). Two blocks match when their actions have
    the same content in the same runAfter order: the parser's `content_key` (operation, the
    parameters it sets, the table or list it targets, the variable it names) and the columns
    a write sets (`written_columns`: a legacy ApiConnection's body keys, which `content_key`
    does not hold). Action names are ignored, since copies get renamed. A window of data
    actions only (variables, Compose...) is left out: a child flow cannot initialise or set
    its parent's variables, so such a block is no candidate. Longer blocks show as
    overlapping windows of `max_length`, which bounds the output on hostile scopes.

    A frame built without `content_key` (by hand) is keyed by type, connector and operation
    (or HTTP method); one without `is_external_call` keeps every window.
    """
    if min_length < 1 or max_length < min_length:
        raise ValueError("need 1 <= min_length <= max_length")
    needed = ["environment_id", "flow_id", "scope_path", "order", "action_name"]
    by_content = "content_key" in actions
    needed += ["content_key"] if by_content else ["type", "connector", "operation", "method"]
    missing = [c for c in needed if c not in actions]
    if missing:
        raise ValueError(f"actions frame lacks column(s): {', '.join(missing)}")
    optional = [
        c for c in ("written_columns", "is_external_call", "holds_external_call") if c in actions
    ]
    if actions.empty:
        return typed_rows([], BLOCK_DTYPES)
    frame = actions.loc[:, needed + optional].sort_values(
        ["environment_id", "flow_id", "scope_path", "order"], kind="stable"
    )
    frame = frame.reset_index(drop=True)
    tokens = _token_hashes(_block_keys(frame, by_content))
    size = len(frame)
    group = (
        frame.groupby(["environment_id", "flow_id", "scope_path"], sort=False, dropna=False)
        .ngroup()
        .to_numpy()
    )
    room = np.searchsorted(group, group, side="right") - np.arange(size)
    # calls[i] = external calls among the first i actions: a window [i, i + L) holds one
    # when calls[i + L] > calls[i] (windows never cross scopes, `room` sees to that).
    calls = np.zeros(size + 1, dtype=np.int64)
    if "holds_external_call" in frame:  # a condition holding the call counts
        external = frame["holds_external_call"].astype("boolean").fillna(False).to_numpy(bool)
    elif "is_external_call" in frame:
        external = frame["is_external_call"].astype("boolean").fillna(False).to_numpy(bool)
    else:
        external = np.ones(size, dtype=bool)
    np.cumsum(external, out=calls[1:])
    hashes = []
    for base in _BASES:
        powers = _powers(base, size + 1)
        inverse = _powers(pow(base, -1, _MASK + 1), size + 1)
        prefix = np.zeros(size + 1, dtype=np.uint64)
        np.cumsum(tokens * powers[:size], dtype=np.uint64, out=prefix[1:])
        hashes.append((prefix, inverse))
    starts: list[np.ndarray[Any, np.dtype[np.intp]]] = []
    lengths: list[np.ndarray[Any, np.dtype[np.int64]]] = []
    digests: list[np.ndarray[Any, np.dtype[np.uint8]]] = []
    top = min(max_length, int(room.max()))
    for length in range(min_length, top + 1):
        fits = room >= length
        if not fits.any():
            break
        idx = np.flatnonzero(fits)
        idx = idx[calls[idx + length] > calls[idx]]
        if idx.size == 0:
            continue
        # (prefix[i+L] - prefix[i]) = base**i * hash(window); undo base**i with its inverse.
        parts = [(prefix[idx + length] - prefix[idx]) * inverse[idx] for prefix, inverse in hashes]
        starts.append(idx)
        lengths.append(np.full(idx.size, length, dtype=np.int64))
        digests.append(np.hstack([_hex(p) for p in parts]))
    if not starts:
        return typed_rows([], BLOCK_DTYPES)
    start = np.concatenate(starts)
    length_all = np.concatenate(lengths)
    order = np.lexsort((length_all, start))
    start, length_all = start[order], length_all[order]
    signature = np.concatenate(digests)[order].view("S32").ravel().astype(str)
    out = pd.DataFrame(
        {
            "environment_id": frame["environment_id"].to_numpy()[start],
            "flow_id": frame["flow_id"].to_numpy()[start],
            "scope_path": frame["scope_path"].to_numpy()[start],
            "start_action": frame["action_name"].to_numpy()[start],
            "length": length_all,
            "signature": signature,
        }
    )
    return out.astype(BLOCK_DTYPES)
