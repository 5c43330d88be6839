"""The authenticated API clients of one run, sharing one credential, one cap and one pool.

Apart from the scan's flow because `auditor doctor` opens the same clients to check sign-in
and access before any scan.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import httpx

from auditor.auth import build_credential
from auditor.host_limiter import HostLimiter
from auditor.http import ApiClient, make_client, make_transport, shared
from auditor.request_budget import RequestBudget
from auditor.settings import Settings
from auditor.tokens import BearerAuth, TokenProvider


class ApiClients:
    """The authenticated clients of one run: one credential and token provider, one cap per
    host, one service-protection budget per environment and one pool of connections, shared
    by every client and closed together."""

    def __init__(
        self,
        settings: Settings,
        *,
        on_response: Callable[[httpx.Response], Awaitable[None]] | None = None,
    ) -> None:
        self.settings = settings
        self.credential = build_credential(settings)
        self.limiter = HostLimiter(settings.max_concurrency)
        self.budget = RequestBudget(settings.requests_per_window, settings.request_window_seconds)
        self.tokens = TokenProvider(self.credential)
        self._on_response = on_response
        self._clients: list[ApiClient] = []
        self._pool = make_transport(settings)  # one set of connections for the whole run

    def client(self, base_url: str, scope: str) -> ApiClient:
        """A client of one API root, signing each attempt with a token for `scope`."""
        made = make_client(
            self.settings,
            limiter=self.limiter,
            budget=self.budget,
            auth=BearerAuth(self.tokens, scope),
            base_url=base_url,
            inner=shared(self._pool),
        )
        if self._on_response is not None:
            made.on_response.append(self._on_response)
        self._clients.append(made)
        return made

    async def aclose(self) -> None:
        """Close every client, the connections and the credential."""
        for made in self._clients:
            await made.aclose()
        await self._pool.aclose()
        # One turn of the loop lets asyncio run the sockets' close callbacks before
        # `asyncio.run` closes the loop; without it a TLS transport can be finalised on a
        # closed loop ("unclosed transport", https://github.com/encode/httpx/issues/825).
        await asyncio.sleep(0)
        self.credential.close()

    async def __aenter__(self) -> ApiClients:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()
