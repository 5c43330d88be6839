"""httpcore's network backend, with each connection's socket looked up once.

Before it sends a request on an idle keep-alive connection, httpcore asks the connection's
stream whether its socket is readable (the server closed it). Over anyio, each such lookup
rebuilds every attribute of the TLS stream and of its socket, with a `getpeername` system
call: a twentieth of a collection's CPU. Here the socket is kept when the connection opens
and polled directly, as httpcore polls it; a connection whose TLS handshake is cancelled is
closed; everything else goes to httpcore's own anyio backend unchanged. A network backend is
httpcore's documented extension point (https://www.encode.io/httpcore/network-backends/).
"""

# httpcore's stream and backend interface takes `timeout` arguments; they are passed on.
# ruff: noqa: ASYNC109

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterable
from typing import Any

import anyio
import httpcore
from httpcore._utils import is_socket_readable  # the test httpcore itself applies


class KnownSocketStream(httpcore.AsyncNetworkStream):
    """A connection's stream that keeps its socket from the start."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: socket.socket | None = inner.get_extra_info("socket")

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        except BaseException:
            # httpcore closes the connection when its TLS handshake fails, not when it is
            # cancelled (a scan stopping, Ctrl-C): its socket was left to the garbage
            # collector, which warns about it.
            with anyio.CancelScope(shield=True):
                await self._inner.aclose()
            raise
        return KnownSocketStream(stream)

    def get_extra_info(self, info: str) -> Any:
        if info == "is_readable":
            return is_socket_readable(self._socket)
        if info == "socket":
            return self._socket
        return self._inner.get_extra_info(info)


class KnownSocketBackend(httpcore.AsyncNetworkBackend):
    """httpcore's anyio backend, its streams wrapped in `KnownSocketStream`."""

    def __init__(self) -> None:
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        return KnownSocketStream(stream)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_unix_socket(path, timeout, socket_options)
        return KnownSocketStream(stream)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)
