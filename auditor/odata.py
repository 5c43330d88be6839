"""The one paging loop, and the time windows that let large queries page concurrently.

Dataverse pages with `Prefer: odata.maxpagesize` (at most 5000) and `@odata.nextLink`; the
flow and admin APIs page with `nextLink`. The link is followed unchanged, the same `Prefer`
is sent on every page, and paging stops when no link comes back.
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results

A nextLink chain is sequential by nature, so a large query is split into time windows
(`createdon ge start and createdon lt end`) whose chains are paged concurrently.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from typing import Any

from auditor.access import Access
from auditor.errors import BadResponse
from auditor.http import ApiClient, get_json

NEXT_LINK_KEYS = ("@odata.nextLink", "nextLink")
MAX_PAGE_SIZE = 5000


@dataclass(frozen=True)
class Page:
    """One page of rows, where it came from and where the next one is."""

    rows: list[dict[str, Any]]
    url: str
    next_link: str | None


def prefer_header(page_size: int | None, annotations: str | None = None) -> dict[str, str]:
    """The `Prefer` header asking for a page size and, optionally, annotations."""
    preferences = []
    if page_size is not None:
        if not 1 <= page_size <= MAX_PAGE_SIZE:
            raise ValueError(f"page size must be from 1 to {MAX_PAGE_SIZE}")
        preferences.append(f"odata.maxpagesize={page_size}")
    if annotations:
        preferences.append(f'odata.include-annotations="{annotations}"')
    return {"Prefer": ", ".join(preferences)} if preferences else {}


async def iter_pages(
    client: ApiClient,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    page_size: int | None = None,
    annotations: str | None = None,
    access: Access | None = None,
    resume_from: str | None = None,
) -> AsyncGenerator[Page, None]:
    """Yield every page of a query, starting at `url` (or at a saved `resume_from` link)."""
    headers = prefer_header(page_size, annotations)
    next_url: str | None = resume_from or url
    next_params = None if resume_from else params
    seen: set[str] = set()
    while next_url:
        body = await get_json(client, next_url, params=next_params, headers=headers, access=access)
        rows, link = _page_parts(body, next_url)
        if link is not None and link in seen:
            # A server that hands back a link it already gave would page forever.
            raise BadResponse(f"{next_url.split('?', 1)[0]} returned the same next link twice")
        seen.add(next_url)
        yield Page(rows=rows, url=next_url, next_link=link)
        next_url, next_params = link, None


def _page_parts(body: Any, url: str) -> tuple[list[dict[str, Any]], str | None]:
    where = url.split("?", 1)[0]
    if not isinstance(body, dict) or not isinstance(body.get("value"), list):
        raise BadResponse(f"{where} answered without a `value` list of rows")
    rows = body["value"]
    if not all(isinstance(row, dict) for row in rows):
        raise BadResponse(f"{where} answered with rows that are not JSON objects")
    link = next((body[key] for key in NEXT_LINK_KEYS if body.get(key)), None)
    if link is not None and not isinstance(link, str):
        raise BadResponse(f"{where} answered with a next link that is not a string")
    return rows, link
