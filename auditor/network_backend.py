"""httpcore's network backend over asyncio's own streams.

httpcore's default backend under asyncio goes through anyio: TLS decrypted by anyio in Python
(`ssl.MemoryBIO`) a read at a time, and a cancel scope opened for every read's and write's
timeout; those reads and writes were a fifth of the event loop's samples (py-spy). Here
each connection is an asyncio stream (`asyncio.open_connection`, TLS by the event loop's SSL
transport), a timeout is an `asyncio.timeout`, and a read that finds bytes already buffered
returns them at once. A network backend is httpcore's documented extension point
(https://www.encode.io/httpcore/network-backends/); the scan runs on asyncio only.

Before it sends a request on an idle keep-alive connection, httpcore asks whether the server
closed it (`is_readable`): here that is the stream's end seen by the loop, or the socket
readable (httpcore's own test) when the close has not reached the loop yet.
"""

# httpcore's stream and backend interface takes `timeout` arguments; they are passed on.
# ruff: noqa: ASYNC109

from __future__ import annotations

import asyncio
import socket
import ssl
from collections.abc import Awaitable, Iterable
from typing import Any, TypeVar

import httpcore
from httpcore._utils import is_socket_readable  # the test httpcore itself applies

_T = TypeVar("_T")


async def _bounded(
    work: Awaitable[_T],
    timeout: float | None,
    on_timeout: type[httpcore.TimeoutException],
    on_error: type[httpcore.NetworkError],
) -> _T:
    """`work` within `timeout` seconds (None: no limit), its failures as httpcore's."""
    try:
        if timeout is None:
            return await work
        async with asyncio.timeout(timeout):
            return await work
    except TimeoutError as exc:
        raise on_timeout(str(exc) or "timed out") from exc
    except OSError as exc:  # ssl.SSLError and ConnectionError are OSErrors
        raise on_error(str(exc) or type(exc).__name__) from exc


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One connection: asyncio's reader and writer over a TCP (and then TLS) transport."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await _bounded(
            self._reader.read(max_bytes), timeout, httpcore.ReadTimeout, httpcore.ReadError
        )

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        self._writer.write(buffer)
        await _bounded(self._writer.drain(), timeout, httpcore.WriteTimeout, httpcore.WriteError)

    async def aclose(self) -> None:
        # At once, as httpcore's anyio backend closes a TLS stream (no close_notify wait):
        # the connection is idle or broken, and a scan's end must not wait on a server.
        self._writer.transport.abort()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # A handshake that fails or is cancelled (a scan stopping) closes the connection:
        # asyncio's start_tls does it, where httpcore's anyio backend closed only on failure.
        await _bounded(
            self._writer.start_tls(ssl_context, server_hostname=server_hostname),
            timeout,
            httpcore.ConnectTimeout,
            httpcore.ConnectError,
        )
        return self

    def get_extra_info(self, info: str) -> Any:
        transport = self._writer.transport
        if info == "is_readable":
            return (
                self._reader.at_eof()
                or transport.is_closing()
                or is_socket_readable(transport.get_extra_info("socket"))
            )
        if info == "ssl_object":
            return transport.get_extra_info("ssl_object")
        if info == "client_addr":
            return transport.get_extra_info("sockname")
        if info == "server_addr":
            return transport.get_extra_info("peername")
        if info == "socket":
            return transport.get_extra_info("socket")
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Connections as asyncio streams (`AsyncioStream`)."""

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        reader, writer = await _bounded(
            asyncio.open_connection(
                host, port, local_addr=(local_address, 0) if local_address else None
            ),
            timeout,
            httpcore.ConnectTimeout,
            httpcore.ConnectError,
        )
        _set_options(writer, socket_options)
        return AsyncioStream(reader, writer)

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        reader, writer = await _bounded(
            asyncio.open_unix_connection(path),
            timeout,
            httpcore.ConnectTimeout,
            httpcore.ConnectError,
        )
        _set_options(writer, socket_options)
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def _set_options(
    writer: asyncio.StreamWriter, options: Iterable[httpcore.SOCKET_OPTION] | None
) -> None:
    sock: socket.socket = writer.get_extra_info("socket")
    for option in options or ():
        sock.setsockopt(*option)
