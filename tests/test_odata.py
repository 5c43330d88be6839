"""The one paging loop: nextLink chains, empty and missing pages, resume, windows."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import respx

from auditor.errors import BadResponse
from auditor.host_limiter import HostLimiter
from auditor.http import ApiClient, make_client
from auditor.odata import Page, iter_pages, prefer_header
from auditor.settings import Settings

pytestmark = pytest.mark.anyio
BASE = "https://contoso.crm.dynamics.com/api/data/v9.2/plugintracelogs"
# A real-looking $skiptoken: an encoded paging cookie that must be sent back byte for byte.
SKIP = (
    "%3Ccookie%20pagenumber=%222%22%20pagingcookie="
    "%22%253ccookie%2520page%253d%25221%2522%253e%22%20/%3E"
)
LINK_2 = f"{BASE}?$select=typename&$skiptoken={SKIP}"
LINK_3 = f"{BASE}?$select=typename&$skiptoken=page3"


@pytest.fixture
async def client() -> AsyncIterator[ApiClient]:
    async with make_client(Settings(), limiter=HostLimiter(4)) as made:
        yield made


async def collect(pages: AsyncIterator[Page]) -> list[Page]:
    return [p async for p in pages]


@respx.mock
async def test_three_page_chain_is_followed_unchanged_to_the_end(
    client: ApiClient,
) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        query = request.url.query.decode()
        if "skiptoken=page3" in query:
            return httpx.Response(200, json={"value": [{"n": 5}]})
        if "skiptoken" in query:
            return httpx.Response(
                200, json={"value": [{"n": 3}, {"n": 4}], "@odata.nextLink": LINK_3}
            )
        return httpx.Response(200, json={"value": [{"n": 1}, {"n": 2}], "@odata.nextLink": LINK_2})

    respx.get(url__startswith=BASE).mock(side_effect=answer)
    pages = await collect(
        iter_pages(client, BASE, params={"$select": "typename"}, page_size=2, annotations="*")
    )
    assert [row["n"] for p in pages for row in p.rows] == [1, 2, 3, 4, 5]
    assert [p.next_link for p in pages] == [LINK_2, LINK_3, None]
    assert len(seen) == 3
    # The second request is the nextLink exactly as the server wrote it.
    assert str(seen[1].url) == LINK_2
    # The same Prefer header on every page.
    assert {r.headers["Prefer"] for r in seen} == {
        'odata.maxpagesize=2, odata.include-annotations="*"'
    }
    assert all(r.headers["OData-Version"] == "4.0" for r in seen)


@respx.mock
async def test_an_empty_page_ends_the_query(client: ApiClient) -> None:
    respx.get(BASE).mock(return_value=httpx.Response(200, json={"value": []}))
    pages = await collect(iter_pages(client, BASE))
    assert len(pages) == 1
    assert pages[0].rows == []
    assert pages[0].next_link is None


@respx.mock
async def test_an_empty_page_with_a_link_is_followed(client: ApiClient) -> None:
    respx.get(LINK_3).mock(return_value=httpx.Response(200, json={"value": [{"n": 1}]}))
    respx.get(BASE).mock(
        return_value=httpx.Response(200, json={"value": [], "@odata.nextLink": LINK_3})
    )
    pages = await collect(iter_pages(client, BASE))
    assert [len(p.rows) for p in pages] == [0, 1]


@respx.mock
async def test_a_missing_link_stops_after_one_page(client: ApiClient) -> None:
    route = respx.get(BASE).mock(
        return_value=httpx.Response(200, json={"value": [{"n": 1}], "@odata.count": 1})
    )
    pages = await collect(iter_pages(client, BASE))
    assert len(pages) == 1
    assert route.call_count == 1


@respx.mock
async def test_flow_api_next_link_is_followed(client: ApiClient) -> None:
    runs = "https://api.flow.microsoft.com/providers/Microsoft.ProcessSimple/environments/e/flows/f/runs"
    second = f"{runs}?api-version=2016-11-01&$skiptoken=abc"
    respx.get(second).mock(return_value=httpx.Response(200, json={"value": [{"name": "r2"}]}))
    respx.get(runs, params={"api-version": "2016-11-01"}).mock(
        return_value=httpx.Response(200, json={"value": [{"name": "r1"}], "nextLink": second})
    )
    pages = await collect(iter_pages(client, runs, params={"api-version": "2016-11-01"}))
    assert [row["name"] for p in pages for row in p.rows] == ["r1", "r2"]


@respx.mock
async def test_resume_starts_at_the_saved_link(client: ApiClient) -> None:
    respx.get(LINK_3).mock(return_value=httpx.Response(200, json={"value": [{"n": 5}]}))
    first = respx.get(BASE).mock(return_value=httpx.Response(200, json={"value": [{"n": 1}]}))
    pages = await collect(iter_pages(client, BASE, resume_from=LINK_3))
    assert [row["n"] for p in pages for row in p.rows] == [5]
    assert first.call_count == 0


@pytest.mark.parametrize(
    "body",
    [{"rows": []}, {"value": {"n": 1}}, {"value": [1, 2]}, [], {"value": [], "nextLink": 5}],
)
@respx.mock
async def test_a_body_without_rows_is_a_bad_response(client: ApiClient, body: object) -> None:
    respx.get(BASE).mock(return_value=httpx.Response(200, json=body))
    with pytest.raises(BadResponse):
        await collect(iter_pages(client, BASE))


@respx.mock
async def test_a_link_that_repeats_is_a_bad_response_not_an_endless_loop(
    client: ApiClient,
) -> None:
    respx.get(BASE).mock(
        return_value=httpx.Response(200, json={"value": [{"n": 1}], "@odata.nextLink": BASE})
    )
    with pytest.raises(BadResponse, match="same next link"):
        await collect(iter_pages(client, BASE))


def test_prefer_header_rejects_page_sizes_dataverse_would_ignore() -> None:
    assert prefer_header(5000) == {"Prefer": "odata.maxpagesize=5000"}
    assert prefer_header(None) == {}
    with pytest.raises(ValueError, match="from 1 to 5000"):
        prefer_header(10_000)
