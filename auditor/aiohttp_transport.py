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
import contextlib
import socket
import ssl
import weakref
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
    - Every socket it opens is closed when it closes, also one a stop (Ctrl-C, a full store)
      cut while its TLS handshake was being set up: Python 3.11's asyncio leaves such a
      connection open (closing the TLS transport before the handshake has started does
      nothing, `asyncio.sslproto.SSLProtocol._start_shutdown`), and the pool never had it.
    """

    def __init__(self, verify: ssl.SSLContext) -> None:
        self._verify = verify
        self._session: aiohttp.ClientSession | None = None
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()

    def _socket(self, addr_info: Any) -> socket.socket:
        """A socket for the pool (aiohttp's `socket_factory`), remembered until it is gone."""
        family, kind, proto, _, _ = addr_info
        made = socket.socket(family=family, type=kind, proto=proto)
        self._sockets.add(made)
        return made

    def _open(self) -> aiohttp.ClientSession:
        """The session, made on first use: aiohttp binds it to the running event loop."""
        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    ssl=self._verify,
                    limit=0,
                    keepalive_timeout=4.0,
                    socket_factory=self._socket,
                ),
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
        await self._close_stray_sockets()

    async def _close_stray_sockets(self, wait: float = 1.0) -> None:
        """Shuts down the sockets the pool no longer knows but that are still open (see the
        class), so that their transports see the connection end and close themselves, and
        waits up to `wait` seconds for them to."""
        await asyncio.sleep(0)  # the pool's own closes finish on the next turn of the loop
        stray = [s for s in self._sockets if s.fileno() != -1]
        for sock in stray:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _ in range(round(wait / 0.01)):  # their closes take a turn or two of the loop
            if all(s.fileno() == -1 for s in stray):
                break
            await asyncio.sleep(0.01)


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
