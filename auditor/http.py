"""HTTP clients for the tenant's APIs: timeouts, keep-alive, one retry policy, one cap.

Every request of a scan goes through `RetryTransport`, which signs each attempt (`Authorizer`) once
it holds its slot, so no request waits in a queue with a token that expires meanwhile:
- 503 waits `Retry-After` (seconds or an HTTP date) when the answer has one, else an
  exponential backoff with full jitter; other 5xx, 408, timeouts, connection resets and
  malformed JSON bodies are retried the same way, within `RetryPolicy.max_retries`.
- 429 has its own budget (`RetryPolicy.max_throttled`). A refusal of concurrency (Dataverse
  0x80072326) lowers the host's limit for the rest of the scan and the request waits its
  Retry-After; any other 429 with a Retry-After pauses every request to that host until then
  (the request-count and execution-time limits refuse everything in the window, and
  "continued pressure lengthens Retry-After").
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
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Protocol

import httpx

from auditor import __version__
from auditor.access import Access
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
LANE_EXTENSION = "auditor.lane"  # request extension: the lane (connection) it is sent on
# Dataverse's "Number of concurrent requests exceeded the limit" (Web API error.code).
CONCURRENCY_LIMIT_CODE = "0x80072326"

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Authorizer(Protocol):
    """Signs a request when it is sent (`auditor.auth.BearerAuth`)."""

    async def send(self, request: httpx.Request, send: Send) -> httpx.Response:
        """Send `request` through `send` with credentials, refreshing them once on a 401."""


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry; one policy for every request."""

    max_retries: int = 6  # transient failures: 5xx, 408, resets, timeouts, bad bodies
    max_throttled: int = 30  # 429 answers: waiting them out is the expected way through
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


class _Host:
    """One host's share of the cap: its limit, its lanes, its waiters and its pause."""

    def __init__(self, cap: int) -> None:
        self.limit = cap
        self.in_flight = 0
        self.peak = 0
        self.lanes = list(range(cap - 1, -1, -1))  # free lanes; the lowest is reused first
        self.waiters: deque[asyncio.Future[None]] = deque()
        self.paused_until = 0.0  # no request starts before this time (a shared Retry-After)

    def wake(self) -> None:
        """Hand free slots to waiters, first come first served."""
        while self.waiters and self.in_flight < self.limit:
            waiter = self.waiters.popleft()
            if not waiter.done():  # a cancelled waiter is skipped
                self.in_flight += 1
                waiter.set_result(None)

    def release(self) -> None:
        self.in_flight -= 1
        self.wake()


# A wait this long is said at -v (info), so a scheduler's log explains a quiet collection:
# service protection can ask for minutes (Retry-After on a 429).
LONG_WAIT_S = 10.0


def _log_long_wait(delay: float, message: str, *args: object) -> None:
    if delay >= LONG_WAIT_S:
        log.info(message + " %.0fs (Retry-After or backoff); the scan goes on after", *args, delay)


class HostLimiter:
    """A cap on requests in flight per host, shared by every client of a scan.

    Each slot is a lane: a request holds lane n while it runs, and lane n has one keep-alive
    connection of its own (`LanePool`), so the connection pool never searches or queues.
    A host's limit starts at the cap and comes down when the service refuses concurrency
    (`lower`); a request-count refusal pauses the whole host until its Retry-After (`pause`),
    because every request sent before then would be refused too and lengthen the penalty.
    """

    def __init__(self, cap: int = 16) -> None:
        if not 1 <= cap <= MAX_CONCURRENCY:
            raise ValueError(f"the concurrency cap must be from 1 to {MAX_CONCURRENCY}")
        self.cap = cap
        self._hosts: dict[str, _Host] = {}

    def _host(self, host: str) -> _Host:
        state = self._hosts.get(host)
        if state is None:
            state = self._hosts[host] = _Host(self.cap)
        return state

    @property
    def peak(self) -> dict[str, int]:
        """The most requests that were in flight at once, per host."""
        return {host: state.peak for host, state in self._hosts.items()}

    def in_flight(self, host: str) -> int:
        """Requests to `host` in flight now."""
        return self._host(host).in_flight

    def limit(self, host: str) -> int:
        """How many requests to `host` may be in flight (the cap, or lower once refused)."""
        return self._host(host).limit

    def lower(self, host: str, limit: int) -> None:
        """Keep at most `limit` (at least 1) requests to `host` in flight from now on."""
        state = self._host(host)
        if limit < state.limit:
            state.limit = max(1, limit)
            log.info("%s refused concurrent requests: at most %d at once", host, state.limit)

    def pause(self, host: str, until: float) -> None:
        """Start no request to `host` before `until` (a time of the transport's clock)."""
        state = self._host(host)
        state.paused_until = max(state.paused_until, until)

    def paused_until(self, host: str) -> float:
        """The time before which no request to `host` starts (0 when not paused)."""
        return self._host(host).paused_until

    @contextlib.asynccontextmanager
    async def slot(self, host: str) -> AsyncIterator[int]:
        """Hold one of the host's slots for the duration of the block; yields its lane."""
        state = self._host(host)
        if state.waiters or state.in_flight >= state.limit:
            waiter = asyncio.get_running_loop().create_future()
            state.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # granted, then cancelled
                    state.release()
                raise
        else:
            state.in_flight += 1
        state.peak = max(state.peak, state.in_flight)
        lane = state.lanes.pop()
        try:
            yield lane
        finally:
            state.lanes.append(lane)
            state.release()


_RETRY_STATUSES = frozenset({408, 500, 502, 503, 504})  # and 429, handled on its own
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
        auth: Authorizer | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.auth = auth
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.netloc.decode("ascii")
        failures = 0  # transient failures so far (5xx, resets, timeouts, bad bodies)
        throttled = 0  # 429 answers so far: they have their own, larger budget
        waited = 0.0  # the host pause this request has already waited out
        while True:
            waited = await self._wait_out_pause(host, waited)
            outcome, in_flight = await self._send(request, host, waited)
            if outcome is None:
                continue  # the host was paused while this request waited for a slot
            if isinstance(outcome, httpx.TransportError):
                if not _retryable_error(outcome) or failures >= self.policy.max_retries:
                    raise outcome
                delay = self._backoff(failures)
                failures += 1
                log.debug(
                    "%s %s failed (%s); retry in %.1fs", request.method, request.url, outcome, delay
                )
                _count(retries=1)
                await self.sleep(delay)
                continue
            response = outcome
            if response.status_code == 429:
                if throttled >= self.policy.max_throttled:
                    return response
                delay = self._delay(response, throttled)
                throttled += 1
                _count(retries=1, throttled=1, throttle_wait_s=delay)
                await response.aclose()
                if api_error(response)[0] == CONCURRENCY_LIMIT_CODE:
                    # Fewer at once from now on; this request alone waits its Retry-After.
                    self.limiter.lower(host, in_flight - 1)
                    _log_long_wait(delay, "%s: HTTP 429 (concurrency); one request waits", host)
                    await self.sleep(delay)
                elif "Retry-After" in response.headers:
                    # Every request to this host waits, or each would be refused in turn.
                    until = self.clock() + delay
                    if until > self.limiter.paused_until(host) + LONG_WAIT_S:
                        _log_long_wait(delay, "%s: HTTP 429; every request to it waits", host)
                    self.limiter.pause(host, until)
                else:
                    await self.sleep(delay)
                log.debug("%s %s: HTTP 429; retry in %.1fs", request.method, request.url, delay)
                continue
            reason = self._retry_reason(response)
            if reason is None or failures >= self.policy.max_retries:
                return response
            delay = self._delay(response, failures)
            failures += 1
            log.debug(
                "%s %s: %s; retry %d in %.1fs",
                request.method,
                request.url,
                reason,
                failures,
                delay,
            )
            await response.aclose()
            _count(retries=1)
            _log_long_wait(delay, "%s: %s; the request waits", host, reason)
            await self.sleep(delay)

    async def _wait_out_pause(self, host: str, waited: float) -> float:
        """Sleep until the host's pause ends, unless this request has waited it out already."""
        until = self.limiter.paused_until(host)
        now = self.clock()
        if until <= max(waited, now):
            return waited
        await self.sleep(until - now)
        return until

    async def _send(
        self, request: httpx.Request, host: str, waited: float
    ) -> tuple[httpx.Response | httpx.TransportError | None, int]:
        """One attempt on a free lane: (the response or the error, requests in flight then);
        (None, 0) when the host was paused while the request waited for its slot."""
        async with self.limiter.slot(host) as lane:
            if self.limiter.paused_until(host) > max(waited, self.clock()):
                return None, 0
            _count(requests=1)
            request.extensions[LANE_EXTENSION] = lane
            in_flight = self.limiter.in_flight(host)
            try:
                if self.auth is None:
                    response = await self.inner.handle_async_request(request)
                else:
                    response = await self.auth.send(request, self.inner.handle_async_request)
                await response.aread()
            except httpx.TransportError as exc:
                return exc, in_flight
            return response, in_flight

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


class LanePool(httpx.AsyncBaseTransport):
    """Connections by lane: lane n of a host has one keep-alive connection of its own.

    httpcore's pool scans every connection (and polls each socket) on every request and
    response, which made its bookkeeping a third of a scan's CPU; the limiter already hands
    out one lane per request in flight, so a pool of one connection per lane has nothing to
    search. Requests without a lane share lane 0's pool.
    """

    def __init__(self, settings: Settings) -> None:
        self._verify = ssl_context(settings)
        self._pools: dict[tuple[bytes, bytes, int], httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        lane = request.extensions.get(LANE_EXTENSION, 0)
        key = (request.url.raw_scheme, request.url.netloc, int(lane))
        pool = self._pools.get(key)
        if pool is None:
            pool = self._pools[key] = httpx.AsyncHTTPTransport(
                verify=self._verify,
                http1=True,
                http2=False,
                # Idle connections are dropped before the 5 s idle timeout common to servers
                # and proxies, so none is reused at the moment the other end closes it.
                limits=httpx.Limits(
                    max_connections=None, max_keepalive_connections=1, keepalive_expiry=4.0
                ),
            )
        return await pool.handle_async_request(request)

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


def make_transport(settings: Settings) -> LanePool:
    """The connections of a scan, shared by its clients (keep-alive, HTTP/1.1, by lane)."""
    return LanePool(settings)


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
    auth: Authorizer | None = None,
    base_url: str = "",
    sleep: Sleep = asyncio.sleep,
    clock: Clock = time.time,
    rng: random.Random | None = None,
    inner: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An async client with timeouts, HTTP/1.1 keep-alive, the retry policy and the cap;
    `auth` signs each attempt once it holds its slot."""
    transport = inner or make_transport(settings)
    return httpx.AsyncClient(
        base_url=base_url,
        headers=default_headers(),
        timeout=httpx.Timeout(
            settings.timeout_seconds, connect=min(15.0, settings.timeout_seconds)
        ),
        follow_redirects=False,
        transport=RetryTransport(
            transport,
            limiter=limiter,
            auth=auth,
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
    access: Access | None = None,
) -> Any:
    """GET a JSON document; every failure becomes a typed `CollectionError` with a hint."""
    try:
        response = await client.get(url, params=params, headers=headers)
    except httpx.TransportError as exc:
        raise TransportFailure(
            f"GET {_safe_url(str(exc.request.url) if _has_request(exc) else url)} failed: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    raise_for_status(response, access=access)
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


def raise_for_status(response: httpx.Response, *, access: Access | None = None) -> None:
    """Turn an error status into the matching `HttpStatusError`; 2xx passes.

    A 401 or 403 says what the API needs for the kind of credential in use (`access`).
    """
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
        raise Unauthorized(text, hint=access.hint(401) if access else None, **kwargs)
    if status == 403:
        hint = access.hint(403) if access else None
        raise PermissionDenied(f"Permission denied: {text}", hint=hint, **kwargs)
    if status == 404:
        raise NotFound(text, **kwargs)
    if status == 429:
        raise Throttled(text, **kwargs)
    if status >= 500 or status == 408:
        raise ServiceUnavailable(text, **kwargs)
    raise HttpStatusError(text, **kwargs)
