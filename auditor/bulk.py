"""Building objects in bulk, without Python's cyclic garbage collector in the way."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collection_paused() -> Iterator[None]:
    """The cyclic garbage collector held off while a bulk of records or findings is built,
    then as it was. Each collection of the oldest generation goes through every object
    alive: building the 200,000 steps of a hostile solution, their findings and verdicts set
    off several, each over everything read so far (a tenth of a lint's time). What is built
    this way holds no cycles, and the work is bounded (a lint's reading budget), so nothing
    waits to be freed meanwhile; what was allocated is looked at by the next collection."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
