"""Tokens that expire every few seconds, and service protection below the client's cap.

A scan must get through both without losing a row: one token refresh per expiry (concurrent
requests share it; a 401 refreshes once, never in a loop), and 429s answered by waiting out
`Retry-After`, few enough that the scan does not feed the service's penalty.
https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
"""

from __future__ import annotations

import itertools
import json
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from auditor.host_limiter import HostLimiter
from auditor.queries import default_catalog
from auditor.store import Store
from tests.reliability.conftest import Tenant, assert_same_store

pytestmark = pytest.mark.reliability

CAP = HostLimiter().cap  # the client's default concurrency cap per host


# The client's account of the budget when nobody told it the tenant's: Dataverse's documented
# 6,000 requests per 300 s. A tenant that allows less (another tool spending the same
# identity's budget, a lower limit) must then be handled by its 429s and Retry-After.
DOCUMENTED_BUDGET = {"AUDITOR_REQUESTS_PER_WINDOW": "6000", "AUDITOR_REQUEST_WINDOW_SECONDS": "300"}


def _collect(
    tenant: Tenant, store: Path, env: dict[str, str] | None = None
) -> tuple[float, dict[str, int]]:
    started = time.monotonic()
    result = tenant.collect(store, env=env)
    seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    with Store.open(store, read_only=True) as opened:
        queries = opened.scan_queries(1)
    assert set(queries["status"]) == {"collected", "not-collected"}  # nothing partial
    return seconds, {
        "client_requests": int(queries["requests"].sum()),
        "client_429s": int(queries["throttled"].sum()),
        "client_retries": int(queries["retries"].sum()),
    }


def test_tokens_expiring_every_few_seconds_are_refreshed_once_per_expiry(
    serve: Any, clean_tiny: tuple[Path, float], tmp_path: Path
) -> None:
    lifetime = 1
    # 150 ms per request: the scan lasts several token lifetimes however fast the collector
    # is (at 40 ms a collection of this tiny tenant took under two).
    tenant = serve("tiny", token_lifetime_s=lifetime, latency_ms=150)
    seconds, counts = _collect(tenant, tmp_path / "s.duckdb")
    assert_same_store(clean_tiny[0], tmp_path / "s.duckdb")

    issued: dict[str, list[float]] = defaultdict(list)
    for record in tenant.server.app.identity.records():
        issued[record.audience].append(record.issued_at)
    assert len(issued) >= 4  # admin, flow and the Dataverse environments
    for audience, times in issued.items():
        # A new token only once the last one is about to expire (10 % of its life before).
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert all(gap >= 0.85 * lifetime for gap in gaps), (audience, gaps)
    refreshes = sum(len(times) - 1 for times in issued.values())
    assert max(len(times) for times in issued.values()) >= 3, "no token expired mid-scan"
    print(
        json.dumps(
            {
                "token_lifetime_s": lifetime,
                "scan_seconds": round(seconds, 1),
                "tokens_per_audience": {a[-40:]: len(t) for a, t in sorted(issued.items())},
                "refreshes": refreshes,
                "answered_401": tenant.stats.unauthorized,
                **counts,
            }
        )
    )


def test_a_concurrency_limit_below_the_cap_is_honoured_with_few_429s(
    serve: Any, clean_tiny: tuple[Path, float], tmp_path: Path
) -> None:
    limit = 4
    assert limit < CAP
    # 20 ms per request, so that requests overlap on the simulator's single event loop.
    tenant = serve("tiny", max_concurrent=limit, latency_ms=20)
    seconds, counts = _collect(tenant, tmp_path / "s.duckdb")
    assert_same_store(clean_tiny[0], tmp_path / "s.duckdb")
    throttled = tenant.stats.throttled
    print(
        json.dumps(
            {
                "limit": limit,
                "cap": CAP,
                "scan_seconds": round(seconds, 1),
                "answered_429": throttled,
                **counts,
            }
        )
    )
    # The first burst is refused, then the client keeps below the limit for the rest of the
    # scan: a few dozen 429s at most, not one per request.
    assert throttled <= 3 * CAP


def test_a_request_count_limit_pauses_the_client_until_retry_after(
    serve: Any, clean_tiny: tuple[Path, float], tmp_path: Path
) -> None:
    per_window, window_s = 100, 1.0
    tenant = serve("tiny", max_requests=per_window, window_s=window_s)
    seconds, counts = _collect(tenant, tmp_path / "s.duckdb", DOCUMENTED_BUDGET)
    assert_same_store(clean_tiny[0], tmp_path / "s.duckdb")
    throttled = tenant.stats.throttled
    windows = counts["client_requests"] / per_window
    print(
        json.dumps(
            {
                "per_window": per_window,
                "window_s": window_s,
                "scan_seconds": round(seconds, 1),
                "answered_429": throttled,
                **counts,
            }
        )
    )
    assert throttled > 0, "the limit was never reached"
    # Each time the window is full, at most the requests in flight are refused; then every
    # request of that environment waits, instead of each queued one being refused in turn.
    assert throttled <= CAP * (windows + 1)


def test_a_budget_the_client_knows_is_spent_without_a_refusal(
    serve: Any, clean_tiny: tuple[Path, float], tmp_path: Path
) -> None:
    """With the tenant's budget in its configuration (`auditor sim serve` writes it), the
    client holds requests back while an environment's window is full: the scan runs at the
    bound, and the service never has to refuse it."""
    per_window, window_s = 100, 1.0
    tenant = serve("tiny", max_requests=per_window, window_s=window_s)
    seconds, counts = _collect(tenant, tmp_path / "s.duckdb")
    assert_same_store(clean_tiny[0], tmp_path / "s.duckdb")
    print(
        json.dumps(
            {
                "per_window": per_window,
                "window_s": window_s,
                "scan_seconds": round(seconds, 1),
                "answered_429": tenant.stats.throttled,
                **counts,
            }
        )
    )
    assert tenant.stats.throttled == 0
    # Held back, not merely lucky: the busiest budget (one environment's Dataverse or flow
    # API) spent more than one window's worth.
    with Store.open(tmp_path / "s.duckdb", read_only=True) as opened:
        queries = opened.scan_queries(1)
    source = queries["query_id"].map({q: spec.source for q, spec in default_catalog().items()})
    busiest = int(queries.groupby([queries["environment_id"], source])["requests"].sum().max())
    assert busiest > per_window, busiest
