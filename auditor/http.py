"""HTTP clients for the tenant's APIs: timeouts, keep-alive, TLS trust, one retry policy, one cap.

`make_client` puts `auditor.retry.RetryTransport` (the retry policy, and the per-host cap of
`auditor.host_limiter`) over the scan's connections (`auditor.aiohttp_transport`);
`get_json` turns every failure into a typed error (`auditor.http_errors`).
"""

from __future__ import annotations

import asyncio
import os
import random
import ssl
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx

from auditor import __version__
from auditor.access import Access
from auditor.aiohttp_transport import AiohttpTransport
from auditor.errors import BadResponse, TransportFailure
from auditor.host_limiter import HostLimiter
from auditor.http_errors import has_request, raise_for_status, safe_url
from auditor.request_budget import RequestBudget
from auditor.retry import (
    JSON_EXTENSION,
    Authorizer,
    Clock,
    RetryPolicy,
    RetryTransport,
    Sleep,
    parse_json,
)
from auditor.settings import Settings


def ssl_context(settings: Settings, environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """The TLS trust for every request: `http.ca_bundle`, else SSL_CERT_FILE, else the system."""
    environ = os.environ if environ is None else environ
    cafile = settings.ca_bundle or environ.get("SSL_CERT_FILE") or None
    return ssl.create_default_context(cafile=str(cafile) if cafile else None)


def default_headers() -> dict[str, str]:
    """Headers every API expects (Dataverse wants the OData version headers)."""
    return {
        "Accept": "application/json",
        # As httpx's own client sends them: pages of JSON compress several times over, and
        # httpx decodes gzip and deflate.
        "Accept-Encoding": "gzip, deflate",
        "Connection": "keep-alive",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "User-Agent": f"pp-telemetry-auditor/{__version__}",
    }


def make_transport(settings: Settings) -> AiohttpTransport:
    """The connections of a scan, shared by its clients (keep-alive, HTTP/1.1)."""
    return AiohttpTransport(ssl_context(settings))


class _Shared(httpx.AsyncBaseTransport):
    """A transport that clients share: closing one client leaves the pool open."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        """The owner of the pool closes it, not each client."""


def shared(inner: httpx.AsyncBaseTransport) -> httpx.AsyncBaseTransport:
    """`inner` wrapped so that clients closing do not close it."""
    return _Shared(inner)


class ApiClient:
    """A client of one API root: each GET goes straight to the retry transport.

    httpx.AsyncClient wraps every request in what a scan does not use (redirects, auth flows,
    event-hook plumbing) and a cookie jar it fills from every answer: together about a fifth
    of the event loop's samples in a collection (py-spy). The jar also kept
    Dataverse's server-affinity cookie, which pins a client's parallel requests to one web
    server; Microsoft advises clients sending requests in parallel to drop it
    (https://learn.microsoft.com/power-apps/developer/data-platform/send-parallel-requests#server-affinity).
    Requests, headers and timeouts are httpx's; the connections are aiohttp's, behind httpx's
    transport interface (`auditor.aiohttp_transport`).
    """

    def __init__(
        self,
        transport: httpx.AsyncBaseTransport,
        *,
        base_url: str,
        headers: Mapping[str, str],
        timeout: httpx.Timeout,
    ) -> None:
        self.base_url = httpx.URL(base_url)
        self.on_response: list[Callable[[httpx.Response], Awaitable[None]]] = []
        self._transport = transport
        self._headers = httpx.Headers(headers)
        self._extensions = {"timeout": timeout.as_dict()}

    def url(self, url: str, params: Mapping[str, str] | None = None) -> httpx.URL:
        """The absolute URL of a request, parsed once.

        Given a path and parameters, httpx parses the URL three times (to join it to the
        client's base URL, then to add each parameter) with per-character checks that were a
        tenth of a collection's CPU. Here the string is put together first, the way httpx
        joins and encodes it, then parsed once; a URL that already has a query is left to
        httpx.
        """
        if not url.startswith(("https://", "http://")):
            base = str(self.base_url)
            url = base + ("" if base.endswith("/") else "/") + url.lstrip("/")
        if params and "?" in url:
            return httpx.URL(url, params=params)
        if params:
            url += "?" + str(httpx.QueryParams(params))
        return httpx.URL(url)

    async def get(
        self,
        url: str,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> httpx.Response:
        """The answer to GET `url` (joined to the base URL, with `params`), its body read;
        transport failures raise httpx's errors."""
        sent = self._headers.copy()
        if headers:
            sent.update(headers)
        request = httpx.Request(
            "GET", self.url(url, params), headers=sent, extensions=self._extensions
        )
        response = await self._transport.handle_async_request(request)
        response.request = request
        for hook in self.on_response:
            await hook(response)
        return response

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def make_client(
    settings: Settings,
    *,
    limiter: HostLimiter,
    budget: RequestBudget | None = None,
    auth: Authorizer | None = None,
    base_url: str = "",
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.time,
    rng: random.Random | None = None,
    inner: httpx.AsyncBaseTransport | None = None,
) -> ApiClient:
    """A client with timeouts, HTTP/1.1 keep-alive, the retry policy, the cap and the
    service-protection `budget` (shared by every client of a run, like the cap); `auth`
    signs each attempt once it holds its slot."""
    transport = inner or make_transport(settings)
    return ApiClient(
        RetryTransport(
            transport,
            limiter=limiter,
            budget=budget,
            auth=auth,
            policy=RetryPolicy(max_retries=settings.max_retries),
            sleep=sleep,
            clock=clock,
            rng=rng,
        ),
        base_url=base_url,
        headers=default_headers(),
        timeout=httpx.Timeout(
            settings.timeout_seconds, connect=min(15.0, settings.timeout_seconds)
        ),
    )


async def get_json(
    client: ApiClient,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    access: Access | None = None,
) -> Any:
    """GET a JSON document; every failure becomes a typed `CollectionError` with a hint."""
    try:
        response = await client.get(url, params, headers=headers)
    except httpx.TransportError as exc:
        raise TransportFailure(
            f"GET {safe_url(str(exc.request.url) if has_request(exc) else url)} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    raise_for_status(response, access=access)
    if JSON_EXTENSION in response.extensions:
        return response.extensions[JSON_EXTENSION]
    try:
        return parse_json(response.content)
    except ValueError as exc:
        raise BadResponse(
            f"GET {safe_url(str(response.url))} answered {response.status_code} with a body "
            "that is not JSON"
        ) from exc
