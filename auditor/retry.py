"""The retry transport: every request of a scan goes through `RetryTransport`, which signs each
attempt (`Authorizer`) once it holds its slot, so no request waits in a queue with a token that
expires meanwhile:
- 503 waits `Retry-After` (seconds or an HTTP date) when the answer has one, else an
  exponential backoff with full jitter; other 5xx, 408, timeouts, connection resets and
  malformed JSON bodies are retried the same way, within `RetryPolicy.max_retries`.
- Limits are kept per budget key (`auditor.request_budget.budget_key`): one environment's
  API, which is a host of its own for Dataverse and a path of the shared flow API host.
- 429 has its own budget (`RetryPolicy.max_throttled`). A refusal of concurrency (Dataverse
  0x80072326) lowers that environment API's limit for the rest of the scan and the request
  waits its Retry-After; any other 429 with a Retry-After pauses every request of it until
  then (the request-count and execution-time limits refuse everything in the window, and
  "continued pressure lengthens Retry-After").
- At most `cap` requests are in flight per environment API, across every task and client that
  shares the `HostLimiter`, and each environment's service-protection budget
  (`RequestBudget`) is spent before the service refuses; a request waiting out a
  `Retry-After` or its budget does not hold a slot.
- 4xx other than 408 and 429 are returned at once; `raise_for_status` turns them into typed
  errors (403 names the privilege to grant).

Apart from the clients (`auditor.http`), which only put this transport over their connections.

Dataverse service protection: https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
(429 with Retry-After in seconds).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import orjson

from auditor.host_limiter import HostLimiter
from auditor.http_errors import api_error
from auditor.request_budget import RequestBudget, budget_key
from auditor.request_stats import count

# The transport's logger: every line the transport writes, wherever its code lives, goes out
# under one name.
log = logging.getLogger("auditor.http")

JSON_EXTENSION = "auditor.json"  # response extension holding the body already parsed
# Dataverse's "Number of concurrent requests exceeded the limit" (Web API error.code).
CONCURRENCY_LIMIT_CODE = "0x80072326"

Sleep = Callable[[float], Awaitable[None]]
Clock = Callable[[], float]
Send = Callable[[httpx.Request], Awaitable[httpx.Response]]


class Authorizer(Protocol):
    """Signs a request when it is sent (`auditor.tokens.BearerAuth`)."""

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


# A wait this long is said at -v (info), so a scheduler's log explains a quiet collection:
# service protection can ask for minutes (Retry-After on a 429).
LONG_WAIT_S = 10.0


def _log_long_wait(delay: float, message: str, *args: object) -> None:
    if delay >= LONG_WAIT_S:
        log.info(message + " %.0fs (Retry-After or backoff); the scan goes on after", *args, delay)


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
    """Wraps a transport with the retry policy, the cap and budget of each environment's API
    and request counting."""

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport,
        *,
        limiter: HostLimiter,
        budget: RequestBudget | None = None,
        auth: Authorizer | None = None,
        policy: RetryPolicy | None = None,
        sleep: Sleep = asyncio.sleep,
        clock: Clock = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.inner = inner
        self.limiter = limiter
        self.budget = budget
        self.auth = auth
        self.policy = policy or RetryPolicy()
        self.sleep = sleep
        self.clock = clock
        self.rng = rng or random.Random()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        key = budget_key(request.url)  # one environment's API: its cap, pause and budget
        failures = 0  # transient failures so far (5xx, resets, timeouts, bad bodies)
        throttled = 0  # 429 answers so far: they have their own, larger budget
        waited = 0.0  # the pause this request has already waited out
        while True:
            waited = await self._wait_out_pause(key, waited)
            outcome, in_flight = await self._send(request, key, waited)
            if outcome is None:
                continue  # its API was paused while this request waited for a slot
            if isinstance(outcome, httpx.TransportError):
                if not _retryable_error(outcome) or failures >= self.policy.max_retries:
                    raise outcome
                delay = self._backoff(failures)
                failures += 1
                log.debug(
                    "%s %s failed (%s); retry in %.1fs", request.method, request.url, outcome, delay
                )
                count(retries=1)
                await self.sleep(delay)
                continue
            response = outcome
            if response.status_code == 429:
                if throttled >= self.policy.max_throttled:
                    return response
                delay = self._delay(response, throttled)
                throttled += 1
                count(retries=1, throttled=1, throttle_wait_s=delay)
                await response.aclose()
                if api_error(response)[0] == CONCURRENCY_LIMIT_CODE:
                    # Fewer at once from now on; this request alone waits its Retry-After.
                    self.limiter.lower(key, in_flight - 1)
                    _log_long_wait(delay, "%s: HTTP 429 (concurrency); one request waits", key)
                    await self.sleep(delay)
                elif "Retry-After" in response.headers:
                    # Every request of this API waits, or each would be refused in turn.
                    until = self.clock() + delay
                    if until > self.limiter.paused_until(key) + LONG_WAIT_S:
                        _log_long_wait(delay, "%s: HTTP 429; every request to it waits", key)
                    self.limiter.pause(key, until)
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
            count(retries=1)
            _log_long_wait(delay, "%s: %s; the request waits", key, reason)
            await self.sleep(delay)

    async def _wait_out_pause(self, key: str, waited: float) -> float:
        """Sleep until the budget's pause ends, unless this request has waited it out already."""
        until = self.limiter.paused_until(key)
        now = self.clock()
        if until <= max(waited, now):
            return waited
        await self.sleep(until - now)
        return until

    async def _send(
        self, request: httpx.Request, key: str, waited: float
    ) -> tuple[httpx.Response | httpx.TransportError | None, int]:
        """One attempt in a free slot, within the budget: (the response or the error, requests
        in flight then); (None, 0) when the budget was paused while the request waited."""
        if self.budget is not None:
            # Before the slot: a request held back by its environment's budget must not hold
            # a slot that another environment's requests could use.
            await self.budget.reserve(key)
        sent = False
        try:
            async with self.limiter.slot(key):
                if self.limiter.paused_until(key) > max(waited, self.clock()):
                    return None, 0
                sent = True
                return await self._attempt(request, key)
        finally:
            if self.budget is not None and not sent:
                self.budget.release(key)

    async def _attempt(
        self, request: httpx.Request, key: str
    ) -> tuple[httpx.Response | httpx.TransportError, int]:
        count(requests=1)
        in_flight = self.limiter.in_flight(key)
        started = time.monotonic()
        try:
            if self.auth is None:
                response = await self.inner.handle_async_request(request)
            else:
                response = await self.auth.send(request, self.inner.handle_async_request)
            await response.aread()
        except httpx.TransportError as exc:
            return exc, in_flight
        finally:
            if self.budget is not None:
                self.budget.done(key, time.monotonic() - started)
        return response, in_flight

    def _retry_reason(self, response: httpx.Response) -> str | None:
        if response.status_code in _RETRY_STATUSES:
            return f"HTTP {response.status_code}"
        if response.status_code == 200 and _is_json(response):
            try:
                parsed = parse_json(response.content)
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


def parse_json(content: bytes) -> Any:
    """A JSON document; ValueError when it is not one.

    orjson reads a page in about three fifths of the standard library's time. What it
    refuses, the standard library reads as before: a byte-order mark (which RFC 8259 section
    8.1 lets a reader ignore), NaN, UTF-16. Nesting deeper than either parser goes is a
    ValueError too, not a RecursionError that would stop the scan. orjson reads integers
    beyond 64 bits as floats; Dataverse's widest whole number (BigIntType, "Big" size) is
    64 bits (https://learn.microsoft.com/power-apps/maker/data-platform/types-of-fields,
    https://learn.microsoft.com/training/modules/create-manage-fields-within-entity/2-field-types).
    """
    try:
        return orjson.loads(content)
    except orjson.JSONDecodeError:
        try:
            return json.loads(content)
        except RecursionError as exc:
            raise ValueError("JSON nested too deeply") from exc


def _is_json(response: httpx.Response) -> bool:
    return "json" in response.headers.get("Content-Type", "")
