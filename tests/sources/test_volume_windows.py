"""Windows sized by volume: a windowed Dataverse query costs its pages of data plus a few
requests, however long its range, and resumes exactly from the windows it recorded."""

from __future__ import annotations

import asyncio
import itertools
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from auditor.http import ApiClient
from auditor.queries import default_catalog
from auditor.sources.base import Environment, QueryOutcome, ResumePoint, ScanWindow
from auditor.sources.dataverse import DataverseSource
from auditor.sources.volume_windows import (
    MAX_PARTS,
    cut,
    kept_rows,
    rest_of_window,
    time_of,
    unit_of,
    window_of,
)

END = datetime(2026, 11, 8, tzinfo=UTC)
PAGE = 50
_BOUND = re.compile(r"createdon (ge|lt) (\S+)")


def stamp(when: datetime) -> str:
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def traces(count: int, days: float = 7) -> list[dict[str, Any]]:
    """`count` trace rows spread evenly over the `days` before END, several per second."""
    step = timedelta(days=days) / count
    return [
        {"plugintracelogid": f"t{i:06}", "createdon": stamp(END - timedelta(days=days) + step * i)}
        for i in range(count)
    ]


class Table:
    """A Dataverse entity set that filters on createdon, orders by it then by key, and pages
    with a nextLink carrying an offset (page-results: the link is opaque to the client)."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = sorted(rows, key=lambda r: (r["createdon"], r["plugintracelogid"]))
        self.requests = 0

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        query = parse_qs(urlsplit(str(request.url)).query)
        bounds = dict(_BOUND.findall(query["$filter"][0]))
        offset = int(query.get("offset", ["0"])[0])
        size = int(request.headers["Prefer"].split("odata.maxpagesize=")[1].split(",")[0])
        found = [r for r in self.rows if bounds["ge"] <= r["createdon"] < bounds["lt"]]
        body: dict[str, Any] = {"value": found[offset : offset + size]}
        if offset + size < len(found):
            body["@odata.nextLink"] = str(request.url.copy_merge_params({"offset": offset + size}))
        return httpx.Response(200, json=body)


class MemorySink:
    """The parts of a sink the windowed read uses; stops after `stop_after` writes."""

    def __init__(self, stop_after: int | None = None) -> None:
        self.rows: list[dict[str, Any]] = []
        self.checkpoints: dict[str, ResumePoint] = {}
        self.stop_after = stop_after

    def resume_point(self, query_id: str, unit: str) -> ResumePoint | None:
        return self.checkpoints.get(unit)

    def units(self, query_id: str) -> Mapping[str, ResumePoint]:
        return dict(self.checkpoints)

    def watermark(self, query_id: str) -> datetime | None:
        return None

    def progress(self, query_id: str, rows: int) -> None:
        pass

    async def write(
        self,
        query_id: str,
        unit: str,
        table: str,
        rows: Sequence[Mapping[str, Any]],
        *,
        next_link: str | None,
        done: bool,
        plan: Sequence[str] = (),
    ) -> int:
        if self.stop_after is not None:
            if self.stop_after == 0:
                raise RuntimeError("killed")
            self.stop_after -= 1
        self.rows.extend(dict(row) for row in rows)
        self.checkpoints[unit] = ResumePoint(next_link, done)
        for part in plan:
            self.checkpoints.setdefault(part, ResumePoint(None, False))
        return len(rows)


def read(table: Table, sink: MemorySink, since: timedelta) -> QueryOutcome:
    """`plugintracelogs` over the `since` before END, as the scan reads it."""

    async def go() -> QueryOutcome:
        transport = httpx.MockTransport(table.handle)
        async with ApiClient(
            transport, base_url="https://org.test/", headers={}, timeout=httpx.Timeout(5)
        ) as client:
            source = DataverseSource(
                client,
                default_catalog(),
                sink,  # type: ignore[arg-type]
                Environment("env", "Env", "https://org.test/"),
                ScanWindow(until=END, since=END - since),
                page_size=PAGE,
            )
            spec = default_catalog()["plugintracelogs"]
            outcome = QueryOutcome("plugintracelogs", "env")
            await source._windowed(spec, outcome)
            return outcome

    return asyncio.run(go())


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(str(r["plugintracelogid"]) for r in rows)


def test_ten_years_cost_what_seven_days_cost() -> None:
    rows = traces(2_000)
    pages = len(rows) // PAGE
    costs = {}
    for days in (7, 3650):
        table, sink = Table(rows), MemorySink()
        outcome = read(table, sink, timedelta(days=days))
        assert ids(sink.rows) == ids(rows)  # every row once: no loss, no duplicate
        assert outcome.rows == len(rows)
        costs[days] = table.requests
    assert costs[7] == costs[3650]
    # One request per page of data, plus the first window's page and a few empty ends.
    assert pages <= costs[7] <= pages + 5, costs


def test_an_empty_range_costs_one_request_however_long() -> None:
    table, sink = Table([]), MemorySink()
    read(table, sink, timedelta(days=3650))
    assert table.requests == 1
    assert sink.checkpoints == {unit_of(END - timedelta(days=3650), END): ResumePoint(None, True)}


def test_data_years_apart_is_read_once_without_a_request_per_empty_day() -> None:
    old = [{"plugintracelogid": "old", "createdon": stamp(END - timedelta(days=3000))}]
    rows = old + traces(500, days=2)
    table, sink = Table(rows), MemorySink()
    read(table, sink, timedelta(days=3650))
    assert ids(sink.rows) == ids(rows)
    assert table.requests <= len(rows) // PAGE + 5


@pytest.mark.parametrize("stop_after", [1, 2, 5, 12])
def test_a_stopped_read_resumes_from_its_recorded_windows(stop_after: int) -> None:
    rows = traces(1_200)
    table, sink = Table(rows), MemorySink(stop_after=stop_after)
    with pytest.raises(RuntimeError, match="killed"):
        read(table, sink, timedelta(days=30))
    sink.stop_after = None
    read(table, sink, timedelta(days=30))
    assert ids(sink.rows) == sorted(set(ids(sink.rows)))  # nothing stored twice
    assert ids(sink.rows) == ids(rows)
    assert all(point.done for point in sink.checkpoints.values())


def test_the_rest_is_cut_by_the_density_where_the_first_page_stops() -> None:
    # 50 rows over the first 50 seconds, then the range goes on for 1,000 seconds more.
    start = END - timedelta(seconds=1_050)
    page = [{"createdon": stamp(start + timedelta(seconds=i))} for i in range(50)]
    parts = rest_of_window(page, "createdon", END)
    assert parts is not None
    assert parts[0][0] == start + timedelta(seconds=49)  # the last second is read again
    assert parts[-1][1] == END
    assert len(parts) == 21  # 1,001 seconds at 1 row per second, 50 rows per page
    assert all(a < b for a, b in parts)
    assert all(b == c for (_, b), (c, _) in itertools.pairwise(parts))
    assert kept_rows(page, "createdon", parts[0][0]) == page[:49]


def test_a_page_that_cannot_tell_its_density_is_paged_on_by_its_link() -> None:
    same = [{"createdon": stamp(END - timedelta(days=1))}] * 10
    assert rest_of_window(same, "createdon", END) is None
    assert rest_of_window([{"createdon": "not a time"}] * 3, "createdon", END) is None
    assert rest_of_window([{"other": 1}] * 3, "createdon", END) is None
    assert rest_of_window(same[:1], "createdon", END) is None


def test_the_parts_are_capped_and_fall_on_whole_seconds() -> None:
    start = END - timedelta(days=365)
    page = [
        {"createdon": (start + timedelta(seconds=i, milliseconds=500)).isoformat()}
        for i in range(100)
    ]
    parts = rest_of_window(page, "createdon", END)
    assert parts is not None
    assert len(parts) == MAX_PARTS
    assert all(a.microsecond == 0 for a, _ in parts)
    assert cut(END - timedelta(seconds=3), END, 10) == [
        (END - timedelta(seconds=3 - i), END - timedelta(seconds=2 - i)) for i in range(3)
    ]


def test_units_name_their_windows() -> None:
    window = (END - timedelta(days=2), END)
    assert window_of(unit_of(*window)) == window
    assert window_of("flow-a") is None
    assert window_of(f"{END.isoformat()}/{(END - timedelta(days=1)).isoformat()}") is None
    assert time_of("2026-11-08T12:00:00Z") == datetime(2026, 11, 8, 12, tzinfo=UTC)
    assert time_of(None) is None
