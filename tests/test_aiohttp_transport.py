"""The scan's connections (`auditor.aiohttp_transport`: aiohttp behind httpx's interface).

An idle keep-alive connection the server closed is noticed, not reused; TLS works with the
trust the scan was given, and an untrusted certificate is not retried; every failure reaches
the retry policy as the httpx error it expects (connect, TLS handshake and read timeouts,
refusals); a handshake that never ends leaves no socket open; the headers sent are the
caller's alone, no cookie comes back and a gzip body is decoded.
"""

from __future__ import annotations

import asyncio
import gzip
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from auditor.errors import TransportFailure
from auditor.host_limiter import HostLimiter
from auditor.http import get_json, make_client, make_transport
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


def _timeouts(seconds: float) -> dict[str, dict[str, float]]:
    return {"timeout": {"connect": seconds, "read": seconds, "write": seconds, "pool": seconds}}


@pytest.mark.anyio
async def test_tls_with_the_trust_given_then_a_read_timeout(tmp_path: Path) -> None:
    authority = trustme.CA()
    authority.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(served)

    connections: list[asyncio.StreamWriter] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)
        while b"/slow" not in await reader.readuntil(b"\r\n\r\n"):
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()
        # /slow is never answered; the test closes the connection

    server = await asyncio.start_server(answer, "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    transport = make_transport(Settings(ca_bundle=tmp_path / "ca.pem"))
    try:
        response = await transport.handle_async_request(
            httpx.Request("GET", f"https://127.0.0.1:{port}/x", extensions=_timeouts(5))
        )
        assert response.status_code == 200
        assert await response.aread() == b"{}"
        with pytest.raises(httpx.ReadTimeout):
            await transport.handle_async_request(
                httpx.Request("GET", f"https://127.0.0.1:{port}/slow", extensions=_timeouts(0.3))
            )
    finally:
        await transport.aclose()
        for writer in connections:
            writer.close()
        server.close()
        await server.wait_closed()


@pytest.mark.anyio
async def test_a_handshake_that_never_ends_times_out_and_closes_its_socket() -> None:
    closed = asyncio.Event()

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # never speaks TLS; returns when the client closes the socket
        closed.set()
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = make_transport(Settings())
    try:
        with pytest.raises(httpx.ConnectTimeout):
            await transport.handle_async_request(
                httpx.Request("GET", f"https://127.0.0.1:{port}/x", extensions=_timeouts(0.3))
            )
        await asyncio.wait_for(closed.wait(), 5)
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()


@pytest.mark.anyio
async def test_a_refused_connection_is_a_connect_error() -> None:
    probe = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = probe.sockets[0].getsockname()[1]
    probe.close()
    await probe.wait_closed()  # nothing listens on the port now
    transport = make_transport(Settings())
    try:
        with pytest.raises(httpx.ConnectError):
            await transport.handle_async_request(
                httpx.Request("GET", f"http://127.0.0.1:{port}/x", extensions=_timeouts(2))
            )
    finally:
        await transport.aclose()


@pytest.mark.anyio
async def test_an_untrusted_certificate_fails_at_once_naming_the_cause(tmp_path: Path) -> None:
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    trustme.CA().issue_cert("127.0.0.1").configure_cert(served)  # a CA nobody was given
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0, ssl=served)
    port = server.sockets[0].getsockname()[1]
    trusted = trustme.CA()
    trusted.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    waits: list[float] = []

    async def backoff(seconds: float) -> None:
        waits.append(seconds)

    client = make_client(
        Settings(ca_bundle=tmp_path / "ca.pem"), limiter=HostLimiter(), sleep=backoff
    )
    try:
        with pytest.raises(TransportFailure, match="CERTIFICATE_VERIFY_FAILED"):
            await get_json(client, f"https://127.0.0.1:{port}/x")
    finally:
        await client.aclose()
        server.close()
        await server.wait_closed()
    assert waits == []  # not retried: a certificate does not become trusted by waiting


@pytest.mark.anyio
async def test_only_the_callers_headers_no_cookie_back_and_a_gzip_body_decoded() -> None:
    heads: list[bytes] = []
    page = gzip.compress(b'{"value": []}')

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        for _ in range(2):
            heads.append(await reader.readuntil(b"\r\n\r\n"))
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Encoding: gzip\r\nSet-Cookie: ARRAffinity=abc; Path=/\r\n"
                b"Content-Length: " + str(len(page)).encode() + b"\r\n\r\n" + page
            )
            await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = make_transport(Settings())
    sent = {"Accept": "application/json", "User-Agent": "pp-telemetry-auditor/test"}
    try:
        for _ in range(2):
            response = await transport.handle_async_request(
                # A host name: cookie jars refuse cookies from an IP address.
                httpx.Request("GET", f"http://localhost:{port}/x", headers=sent)
            )
            assert response.json() == {"value": []}
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
    for head in heads:
        names = [line.split(b":")[0].lower() for line in head.split(b"\r\n")[1:] if line]
        assert names.count(b"user-agent") == 1
        assert b"cookie" not in names
        assert b"accept-encoding" not in names  # not asked for by the caller, so not sent
    assert b"user-agent: pp-telemetry-auditor/test" in heads[0].lower()


@pytest.mark.anyio
async def test_the_url_goes_out_as_httpx_encoded_it() -> None:
    lines: list[bytes] = []

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        lines.append((await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")[0])
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    transport = make_transport(Settings())
    # An OData filter with what a re-quoting client would change: a `$`, quotes, a `+` in a
    # value and a time offset, a `%` and a comma.
    url = httpx.URL(
        f"http://127.0.0.1:{port}/api/data/v9.2/workflows",
        params={
            "$filter": "name eq 'a+b c%d' and modifiedon ge 2026-11-08T12:00:00+00:00",
            "$select": "name,workflowid",
        },
    )
    try:
        await transport.handle_async_request(httpx.Request("GET", url))
    finally:
        await transport.aclose()
        server.close()
        await server.wait_closed()
    assert lines == [b"GET " + url.raw_path + b" HTTP/1.1"]
