"""Time windows sized by the data they hold, not by the calendar.

A windowed query (`$filter` on a time column, `$orderby` that column ascending) is read first
as one window over the whole range. When the first page is the only one, the range cost one
request, however long it is. When more follow, the first page says how dense the data is
where it stops: the rest of the range is cut into as many windows as that density predicts
pages (at most `MAX_PARTS`), which are then paged side by side, each following its own
nextLink. So a query costs about one request per page of data plus a few, whether it covers
a day or ten years, and empty ranges cost nothing more.

Paging: https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results
(the `@odata.nextLink` of each page, at most 5,000 rows per page). Ordering by the time column
first, then the key, makes the first page the oldest rows of the range (`$orderby`:
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/order-rows).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from auditor.sources.base import Row

# More parts than requests in flight gain nothing; the cap also bounds the requests a wrong
# density estimate can waste on empty parts.
MAX_PARTS = 64


def time_of(value: Any) -> datetime | None:
    """A Web API datetime (`2026-11-08T12:00:00Z`) as an aware datetime, None if it is not one."""
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def rest_of_window(
    rows: Sequence[Mapping[str, Any]], column: str, end: datetime
) -> list[tuple[datetime, datetime]] | None:
    """The windows `[a, b)` that cover the rest of a range after its first page, oldest first.

    `rows` is the first page, ordered by `column` ascending, and more pages follow. The first
    window starts at the whole second of the page's last time (OData datetime literals are
    whole seconds), so the rows of the page from that second on are read again by it and
    must not be kept from this page. None when the page cannot tell the density of what
    follows (fewer than two rows, times missing or all equal): then the range is paged on by
    its nextLink alone.
    """
    times = [time_of(row.get(column)) for row in rows]
    if len(times) < 2 or any(t is None for t in times):
        return None
    known = [t for t in times if t is not None]
    half = len(known) // 2
    span = (known[-1] - known[half]).total_seconds()
    start = known[-1].replace(microsecond=0)
    if span <= 0 or start >= end or start <= known[0]:
        return None
    # The density where the page stops predicts the rest better than the page's average: a
    # ten-year range whose first rows are years old would otherwise look nearly empty.
    per_second = (len(known) - 1 - half) / span
    expected_pages = per_second * (end - start).total_seconds() / len(known)
    parts = min(MAX_PARTS, max(1, math.ceil(expected_pages)))
    return cut(start, end, parts)


def cut(start: datetime, end: datetime, parts: int) -> list[tuple[datetime, datetime]]:
    """`[start, end)` cut into `parts` windows of about equal length on whole seconds."""
    width = (end - start) / parts
    bounds = [start]
    for index in range(1, parts):
        bound = (start + width * index).replace(microsecond=0)
        if bound > bounds[-1]:
            bounds.append(bound)
    bounds.append(end)
    return list(itertools.pairwise(bounds))


def kept_rows(rows: Sequence[Row], column: str, before: datetime) -> list[Row]:
    """The rows of a first page older than `before`, where the next window takes over."""
    kept = []
    for row in rows:
        when = time_of(row.get(column))
        if when is None or when < before:
            kept.append(row)
    return kept


def window_of(unit: str) -> tuple[datetime, datetime] | None:
    """The time window a checkpoint unit names (`unit_of`), None if it names none."""
    first, _, second = unit.partition("/")
    try:
        start, end = datetime.fromisoformat(first), datetime.fromisoformat(second)
    except ValueError:
        return None
    if start.tzinfo is None or end.tzinfo is None or start >= end:
        return None
    return start, end


def unit_of(start: datetime, end: datetime) -> str:
    """The checkpoint name of a time window."""
    return f"{start.isoformat()}/{end.isoformat()}"
