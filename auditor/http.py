"""HTTP clients for the tenant's APIs: timeouts, keep-alive, one retry policy, one cap.

Every request of a scan goes through `RetryTransport`, which sits under the client's auth:
- 429 and 503 wait `Retry-After` (seconds or an HTTP date) when the answer has one, else an
  exponential backoff with full jitter; other 5xx, 408, timeouts, connection resets and
  malformed JSON bodies are retried the same way, within `RetryPolicy.max_retries`.
- At most `cap` requests are in flight per host, across every task and client that shares the
  `HostLimiter`; a request waiting out a `Retry-After` does not hold a slot.
- 4xx other than 408 and 429 are returned at once; `raise_for_status` turns them into typed
  errors (403 names the privilege to grant).

Dataverse service protection: https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
(429 with Retry-After in seconds; 52 concurrent requests per user and web server).
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import logging
import os
import random
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpx

from auditor import __version__
from auditor.errors import (
    BadRequest,
    BadResponse,
    HttpStatusError,
    NotFound,
    PermissionDenied,
    ServiceUnavailable,
    Throttled,
    TransportFailure,
    Unauthorized,
)
from auditor.settings import Settings

log = logging.getLogger(__name__)

MAX_CONCURRENCY = 50  # below Dataverse's 52 concurrent requests per user and web server
JSON_EXTENSION = "auditor.json"  # response extension holding the body already parsed

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; one policy for every request."""

    max_retries: int = 6
    backoff_base: float = 0.5  # seconds; attempt n waits up to base * 2**n
    backoff_cap: float = 30.0
    max_retry_after: float = 300.0  # never wait longer than this for one Retry-After


@dataclass
class RequestStats:
    """Counters for one unit of work (a query of an environment, or a whole scan)."""

    requests: int = 0
    retries: int = 0
    throttled: int = 0  # 429 answers
    throttle_wait_s: float = 0.0
    token_refreshes: int = 0

    def add(self, other: RequestStats) -> None:
        """Fold another set of counters into this one."""
        self.requests += other.requests
        self.retries += other.retries
        self.throttled += other.throttled
        self.throttle_wait_s += other.throttle_wait_s
        self.token_refreshes += other.token_refreshes


# The counters of the task that sends a request: set by collectors around a unit of work,
# updated by the transport and the auth layer, so counting needs no plumbing through calls.
current_stats: ContextVar[RequestStats | None] = ContextVar("current_stats", default=None)


def _count(**deltas: float) -> None:
    stats = current_stats.get()
    if stats is not None:
        for name, delta in deltas.items():
            setattr(stats, name, getattr(stats, name) + delta)


class HostLimiter:
    """A cap on requests in flight per host, shared by every client of a scan."""

    def __init__(self, cap: int = 16) -> None:
        if not 1 <= cap <= MAX_CONCURRENCY:
            raise ValueError(f"the concurrency cap must be from 1 to {MAX_CONCURRENCY}")
        self.cap = cap
        self._semaphores: dict[str, asyncio.Semaphore] = {}
        self.in_flight: dict[str, int] = {}
        self.peak: dict[str, int] = {}

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[None]:
        """Hold one of the host's slots for the duration of the block."""
        semaphore = self._semaphores.setdefault(host, asyncio.Semaphore(self.cap))
        async with semaphore:
            self.in_flight[host] = self.in_flight.get(host, 0) + 1
            self.peak[host] = max(self.peak.get(host, 0), self.in_flight[host])
            try:
                yield
            finally:
                self.in_flight[host] -= 1


_RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_RETRY_AFTER_STATUSES = frozenset({429, 503})


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Parse a Retry-After header: delta seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class RetryTransport(httpx.AsyncBaseTransport):
    """Wraps a transport with the retry policy, the per-host cap and request counting."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        limiter: HostLimiter,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.netloc.decode("ascii")
        attempt = 0
        while True:
            _count(requests=1)
            try:
                async with self.limiter.slot(host):
                    response = await self.inner.handle_async_request(request)
                    await response.aread()
            except httpx.TransportError as exc:
                if not _retryable_error(exc) or attempt >= self.policy.max_retries:
                    raise
                delay = self._backoff(attempt)
                log.debug(
                    "%s %s failed (%s); retry in %.1fs", request.method, request.url, exc, delay
                )
            else:
                reason = self._retry_reason(response)
                if reason is None or attempt >= self.policy.max_retries:
                    return response
                delay = self._delay(response, attempt)
                if response.status_code == 429:
                    _count(throttled=1, throttle_wait_s=delay)
                log.debug(
                    "%s %s: %s; retry %d in %.1fs",
                    request.method,
                    request.url,
                    reason,
                    attempt + 1,
                    delay,
                )
                await response.aclose()
            attempt += 1
            _count(retries=1)
            await self.sleep(delay)

    def _retry_reason(self, response: httpx.Response) -> str | None:
        if response.status_code in _RETRY_STATUSES:
            return f"HTTP {response.status_code}"
        if response.status_code == 200 and _is_json(response):
            try:
                parsed = json.loads(response.content)
            except ValueError:
                return "malformed JSON body"
            response.extensions = {**response.extensions, JSON_EXTENSION: parsed}
        return None

    def _delay(self, response: httpx.Response, attempt: int) -> float:
        if response.status_code in _RETRY_AFTER_STATUSES:
            given = retry_after_seconds(response.headers.get("Retry-After"), self.clock())
            if given is not None:
                return min(given, self.policy.max_retry_after)
        return self._backoff(attempt)

    def _backoff(self, attempt: int) -> float:
        ceiling = min(self.policy.backoff_cap, self.policy.backoff_base * 2**attempt)
        return self.rng.uniform(0, ceiling)  # full jitter

    async def aclose(self) -> None:
        await self.inner.aclose()


def _retryable_error(exc: httpx.TransportError) -> bool:
    # A certificate the client does not trust will not become trusted by retrying.
    if isinstance(exc, httpx.ConnectError) and "CERTIFICATE_VERIFY_FAILED" in str(exc):
        return False
    return isinstance(exc, httpx.TimeoutException | httpx.NetworkError | httpx.RemoteProtocolError)


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "")


def ssl_context(settings: Settings, environ: Mapping[str, str] | None = None) -> ssl.SSLContext:
    """The TLS trust for every request: `http.ca_bundle`, else SSL_CERT_FILE, else the system."""
    environ = os.environ if environ is None else environ
    cafile = settings.ca_bundle or environ.get("SSL_CERT_FILE") or None
    return ssl.create_default_context(cafile=str(cafile) if cafile else None)


def default_headers() -> dict[str, str]:
    """Headers every API expects (Dataverse wants the OData version headers)."""
    return {
        "Accept": "application/json",
        "OData-MaxVersion": "4.0",
        "OData-Version": "4.0",
        "User-Agent": f"pp-telemetry-auditor/{__version__}",
    }


def make_transport(settings: Settings, limiter: HostLimiter) -> httpx.AsyncHTTPTransport:
    """The connection pool of a scan, shared by its clients (keep-alive, HTTP/1.1).

    Sized to the concurrency cap: more idle connections only cost bookkeeping on every request.
    """
    return httpx.AsyncHTTPTransport(
        verify=ssl_context(settings),
        http1=True,
        http2=False,
        limits=httpx.Limits(max_connections=limiter.cap * 2, max_keepalive_connections=limiter.cap),
    )


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


def make_client(
    settings: Settings,
    *,
    limiter: HostLimiter,
    auth: httpx.Auth | None = None,
    base_url: str = "",
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.time,
    rng: random.Random | None = None,
    inner: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An async client with timeouts, HTTP/1.1 keep-alive, the retry policy and the cap."""
    transport = inner or make_transport(settings, limiter)
    return httpx.AsyncClient(
        base_url=base_url,
        auth=auth,
        headers=default_headers(),
        timeout=httpx.Timeout(
            settings.timeout_seconds, connect=min(15.0, settings.timeout_seconds)
        ),
        follow_redirects=False,
        transport=RetryTransport(
            transport,
            limiter=limiter,
            policy=RetryPolicy(max_retries=settings.max_retries),
            sleep=sleep,
            clock=clock,
            rng=rng,
        ),
    )


async def get_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    privilege: str | None = None,
) -> Any:
    """GET a JSON document; every failure becomes a typed `CollectionError` with a hint."""
    try:
        response = await client.get(url, params=params, headers=headers)
    except httpx.TransportError as exc:
        raise TransportFailure(
            f"GET {_safe_url(str(exc.request.url) if _has_request(exc) else url)} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    raise_for_status(response, privilege=privilege)
    if JSON_EXTENSION in response.extensions:
        return response.extensions[JSON_EXTENSION]
    try:
        return response.json()
    except ValueError as exc:
        raise BadResponse(
            f"GET {_safe_url(str(response.url))} answered {response.status_code} with a body "
            "that is not JSON"
        ) from exc


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - raises RuntimeError when the error has no request
    except RuntimeError:
        return False
    return True


def _safe_url(url: str) -> str:
    """The URL without its query string, which can be long and is not needed to act."""
    return url.split("?", 1)[0]


def api_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """The (code, message) of an API error body, in the Dataverse, ARM or Entra shape."""
    try:
        body = response.json()
    except ValueError:
        return None, response.text[:300] or None
    if not isinstance(body, dict):
        return None, None
    error = body.get("error")
    if isinstance(error, dict):
        code, message = error.get("code"), error.get("message")
        return (str(code) if code else None), (str(message) if message else None)
    if isinstance(error, str):  # Microsoft Entra token endpoint
        return error, str(body.get("error_description") or "") or None
    return None, None


def raise_for_status(response: httpx.Response, *, privilege: str | None = None) -> None:
    """Turn an error status into the matching `HttpStatusError`; 2xx passes."""
    status = response.status_code
    if status < 400:
        return
    code, message = api_error(response)
    url = _safe_url(str(response.url))
    detail = f": {message}" if message else ""
    text = f"GET {url} answered {status}{detail}"
    kwargs: dict[str, Any] = {
        "status": status,
        "url": url,
        "api_code": code,
        "api_message": message,
    }
    if status == 400:
        raise BadRequest(text, **kwargs)
    if status == 401:
        raise Unauthorized(text, **kwargs)
    if status == 403:
        hint = f"Grant {privilege} to the application user, then run again." if privilege else None
        raise PermissionDenied(f"Permission denied: {text}", hint=hint, **kwargs)
    if status == 404:
        raise NotFound(text, **kwargs)
    if status == 429:
        raise Throttled(text, **kwargs)
    if status >= 500 or status == 408:
        raise ServiceUnavailable(text, **kwargs)
    raise HttpStatusError(text, **kwargs)
