"""Connections: an idle keep-alive connection the server closed is noticed, not reused.

`auditor.network_backend` keeps each connection's socket instead of letting httpcore look it
up through anyio's attributes for every request; httpcore's test of an idle connection
(`is_readable`) must still see the server's close.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest

from auditor.http import make_transport
from auditor.settings import Settings


@pytest.mark.anyio
async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    peers: list[object] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        peers.append(writer.get_extra_info("peername"))
        body = b"{}"
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n" + body)
        await writer.drain()
        writer.close()  # HTTP/1.1 offers keep-alive, but this server closes after answering

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = make_transport(Settings())
    try:
        for _ in range(3):
            await asyncio.sleep(0.05)  # the close reaches the client's socket
            response = await transport.handle_async_request(
                httpx.Request("GET", f"http://127.0.0.1:{port}/x")
            )
            assert response.status_code == 200
            assert await response.aread() == b"{}"
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
    assert len(set(peers)) == 3  # a new connection each time, none failed
