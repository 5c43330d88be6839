"""The scan's connections: aiohttp behind httpx's transport interface.

Everything above the connection speaks httpx (its `Request` and `Response`, its errors, the
retry transport, respx in the tests). Each request is sent by aiohttp, whose HTTP parser is
C (llhttp) and whose pool hands out an idle keep-alive connection without searching: httpx's
own transport (httpcore and h11, in Python) was about half of the collector's event-loop
samples (py-spy). aiohttp is also the Azure SDK for Python's default for asynchronous
requests (corehttp's `AioHttpTransport`:
https://learn.microsoft.com/python/api/overview/azure/corehttp-readme).
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import aiohttp
import httpx
import yarl


def client_timeout(extensions: dict[str, Any]) -> aiohttp.ClientTimeout:
    """httpx's timeout extension as aiohttp's: connecting (TCP and TLS handshakes) within
    `connect`, no wait longer than `read` for the next bytes of the answer. aiohttp has no
    write timeout; a GET is one small write."""
    given = extensions.get("timeout", {})
    return aiohttp.ClientTimeout(
        total=None, sock_connect=given.get("connect"), sock_read=given.get("read")
    )


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session, and its connection pool, for every request of a scan.

    - No limit on connections: the per-host cap (`auditor.host_limiter`) already bounds the
      requests in flight, so none waits for a connection here.
    - An idle connection is dropped after 4 s, before the 5 s idle timeout common to servers
      and proxies, so none is reused at the moment the other end closes it; one the server
      has closed is not reused.
    - No cookie jar: Dataverse's server-affinity cookie must not come back on parallel
      requests (https://learn.microsoft.com/power-apps/developer/data-platform/send-parallel-requests#server-affinity).
    - Only the caller's headers are sent, the URL exactly as httpx encoded it, and the body
      is passed on as it came: httpx decodes gzip and deflate by the answer's
      Content-Encoding.
    - No redirects: an API answering a GET with one is reported, not followed.
    """

    def __init__(self, verify: ssl.SSLContext) -> None:
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        """The session, made on first use: aiohttp binds it to the running event loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._verify, limit=0, keepalive_timeout=4.0),
                cookie_jar=aiohttp.DummyCookieJar(),
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding"),
            )
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        session = self._open()
        try:
            async with session.request(
                request.method,
                # Already encoded by httpx: sent as it is, not re-quoted by aiohttp.
                yarl.URL(str(request.url), encoded=True),
                headers=request.headers.multi_items(),
                data=request.content or None,
                timeout=client_timeout(request.extensions),
                allow_redirects=False,
            ) as answer:
                body = await answer.read()
        except aiohttp.ClientError as exc:
            raise as_httpx_error(exc, request) from exc
        except TimeoutError as exc:
            raise httpx.ReadTimeout(str(exc) or "timed out", request=request) from exc
        except OSError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__, request=request) from exc
        return httpx.Response(
            answer.status,
            headers=answer.raw_headers,
            content=body,
            request=request,
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (answer.reason or "").encode(),
            },
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()


def as_httpx_error(exc: aiohttp.ClientError, request: httpx.Request) -> httpx.TransportError:
    """aiohttp's error as the httpx error the retry policy and the error hints expect.

    An untrusted certificate keeps OpenSSL's CERTIFICATE_VERIFY_FAILED in its message: the
    retry policy does not retry it.
    """
    message = str(exc) or type(exc).__name__
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(message, request=request)
    if isinstance(exc, aiohttp.SocketTimeoutError | asyncio.TimeoutError):
        return httpx.ReadTimeout(message, request=request)
    if isinstance(exc, aiohttp.ClientConnectorError):
        return httpx.ConnectError(message, request=request)
    if isinstance(
        exc,
        aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError | aiohttp.ClientResponseError,
    ):
        return httpx.RemoteProtocolError(message, request=request)
    return httpx.ReadError(message, request=request)
