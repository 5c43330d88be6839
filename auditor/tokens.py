"""Tokens per resource scope, and `BearerAuth`, which signs each request as it is sent.

Apart from `auth` (building the MSAL credential): every request goes through this side, and it
needs only a `Credential`, anything that hands out an `AccessToken` for a scope.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio.to_thread
import httpx

from auditor.request_stats import current_stats

# The logger these records had while this code was part of `auditor.auth`.
log = logging.getLogger("auditor.auth")


@dataclass(frozen=True)
class AccessToken:
    """A bearer token and when it expires (epoch seconds); the repr never shows the token."""

    token: str = field(repr=False)
    expires_on: float


class Credential(Protocol):
    """Something that can get a token for a scope (blocking; MSAL is synchronous)."""

    def get_token(self, scope: str, *, force_refresh: bool = False) -> AccessToken: ...


class TokenProvider:
    """Tokens per scope, kept in memory and refreshed before they expire.

    Concurrent requests that need a new token share one refresh (a lock per scope); a 401
    forces one refresh unless another task already replaced the refused token.
    """

    def __init__(self, credential: Credential, *, clock: Callable[[], float] = time.time) -> None:
        self.credential = credential
        self.clock = clock
        self._tokens: dict[str, tuple[AccessToken, float]] = {}  # token, time obtained
        self._locks: dict[str, asyncio.Lock] = {}
        self.refreshes: dict[str, int] = {}

    def _fresh(self, scope: str) -> AccessToken | None:
        entry = self._tokens.get(scope)
        if entry is None:
            return None
        token, obtained = entry
        lifetime = max(token.expires_on - obtained, 0.0)
        margin = min(300.0, lifetime * 0.1)  # refresh before expiry, never past it
        return token if token.expires_on - self.clock() > margin else None

    async def token(self, scope: str, *, refused: str | None = None) -> str:
        """A valid token for `scope`; with `refused`, one other than the refused token."""
        lock = self._locks.setdefault(scope, asyncio.Lock())
        async with lock:
            current = self._fresh(scope)
            if current is not None and current.token != refused:
                return current.token
            force = refused is not None and current is not None
            obtained = self.clock()
            token = await anyio.to_thread.run_sync(
                lambda: self.credential.get_token(scope, force_refresh=force)
            )
            self._tokens[scope] = (token, obtained)
            self.refreshes[scope] = self.refreshes.get(scope, 0) + 1
            log.debug(
                "obtained a token for %s (expires in %.0fs)", scope, token.expires_on - obtained
            )
            return token.token


class BearerAuth:
    """Adds `Authorization: Bearer` for one scope; on a 401, refreshes once and resends.

    The transport calls it once it holds a slot for the request (`auditor.retry.Authorizer`),
    not when the request is built: a request that waited in the queue, or out a Retry-After,
    must not go out with a token that expired while it waited.
    """

    def __init__(self, tokens: TokenProvider, scope: str) -> None:
        self.tokens = tokens
        self.scope = scope

    async def send(
        self, request: httpx.Request, send: Callable[[httpx.Request], Awaitable[httpx.Response]]
    ) -> httpx.Response:
        """Send `request` with a valid token; a 401 gets one refresh and one resend."""
        token = await self.tokens.token(self.scope)
        request.headers["Authorization"] = f"Bearer {token}"
        response = await send(request)
        if response.status_code != 401:
            return response
        await response.aread()  # frees the connection for the resend
        stats = current_stats.get()
        if stats is not None:
            stats.token_refreshes += 1
            stats.requests += 1
        token = await self.tokens.token(self.scope, refused=token)
        request.headers["Authorization"] = f"Bearer {token}"
        return await send(request)
