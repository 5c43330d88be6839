"""Fault injection, service protection and latency: rates, determinism, honoured Retry-After."""

from __future__ import annotations

import json
import logging
import math
import time
from collections import Counter

import anyio
import httpx
import pytest

from auditor.sim.faults import FAULT_KINDS, FaultPlan, SimStats, draw, format_faults, parse_faults
from auditor.sim.model import SimOptions
from auditor.sim.protection import ServiceProtection

from .conftest import Sim, make_tenant, serving

pytestmark = pytest.mark.reliability
PROD = "contoso-prod"
SPEC = "429=0.1,503=0.05,500=0.02,reset=0.02,timeout=0.01,badjson=0.005,expire=0.01"


def test_parse_the_documented_spec() -> None:
    rates = parse_faults(SPEC)
    assert rates == {
        "429": 0.1,
        "503": 0.05,
        "500": 0.02,
        "reset": 0.02,
        "timeout": 0.01,
        "badjson": 0.005,
        "expire": 0.01,
    }
    assert parse_faults(format_faults(rates)) == rates
    assert parse_faults("") == {}
    assert parse_faults(" 429 = 0.5 ") == {"429": 0.5}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("404=0.1", "unknown kind '404'"),
        ("429", "not KIND=RATE"),
        ("429=abc", "not a number"),
        ("429=1.5", "must be in [0, 1]"),
        ("429=-0.1", "must be in [0, 1]"),
        ("429=nan", "must be in [0, 1]"),
        ("429=0.1,429=0.2", "given twice"),
        ("429=0.6,503=0.6", "sum to more than 1"),
        ("429=0.1,,503=0.1", "empty entry"),
    ],
)
def test_bad_specs_are_refused_with_a_clear_message(spec: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_faults(spec)


def test_each_kind_is_drawn_at_its_rate_and_the_same_for_the_same_seed() -> None:
    rates = parse_faults(SPEC)
    n = 40_000
    plans = [FaultPlan(7, rates), FaultPlan(7, rates), FaultPlan(8, rates)]
    sequences = [
        [plan.decide("GET", f"/dv/x/api/data/v9.2/t?page={i % 50}") for i in range(n)]
        for plan in plans
    ]
    assert sequences[0] == sequences[1]
    assert sequences[0] != sequences[2]
    counts = Counter(sequences[0])
    for kind, rate in rates.items():
        sigma = math.sqrt(n * rate * (1 - rate))
        assert abs(counts[kind] - n * rate) < 5 * sigma, (kind, counts[kind])
    assert abs(counts[None] - n * (1 - sum(rates.values()))) < 5 * math.sqrt(n * 0.215 * 0.785)


def test_the_draw_depends_on_the_request_and_its_repetition_only() -> None:
    assert draw(7, "GET", "/a", 0) == draw(7, "get", "/a", 0)
    assert len({draw(7, "GET", "/a", i) for i in range(100)}) == 100
    assert draw(7, "GET", "/a", 0) != draw(7, "GET", "/b", 0)
    assert 0.0 <= draw(1, "GET", "/a", 0) < 1.0


def observe(sim: Sim, n: int) -> list[str]:
    """Send the same request n times; classify what the client saw."""
    url = f"{sim.base}/dv/{PROD}/api/data/v9.2/organizations"
    seen: list[str] = []
    headers = {"authorization": f"Bearer {sim.token(sim.dv_scope(PROD))}"}
    for _ in range(n):
        try:
            answer = sim.http.get(url, headers=headers, timeout=httpx.Timeout(5.0, read=0.2))
        except httpx.ReadTimeout:
            seen.append("timeout")
            continue
        except (httpx.RemoteProtocolError, httpx.ReadError):
            seen.append("reset")
            continue
        if answer.status_code == 401:
            assert answer.json()["error"]["code"] == "ExpiredAuthenticationToken"
            assert answer.headers["www-authenticate"].startswith("Bearer authorization_uri=")
            seen.append("expire")
        elif answer.status_code in (429, 500, 503):
            assert set(answer.json()["error"]) == {"code", "message"}
            if answer.status_code in (429, 503):
                assert answer.headers["retry-after"] == "1"
            seen.append(str(answer.status_code))
        else:
            assert answer.status_code == 200
            try:
                json.loads(answer.content)
            except json.JSONDecodeError:
                seen.append("badjson")
            else:
                seen.append("ok")
    return seen


def test_every_fault_kind_reaches_the_client_at_its_rate_and_repeats_for_the_seed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rates = {
        "429": 0.06,
        "500": 0.06,
        "503": 0.06,
        "reset": 0.06,
        "timeout": 0.01,
        "badjson": 0.06,
        "expire": 0.06,
    }
    options = SimOptions(seed=11, scale="tiny", faults=rates, timeout_s=0.5, max_requests=100_000)
    n = 700
    with serving(make_tenant(), options) as sim:
        seen = observe(sim, n)
        stats = sim.server.stats.snapshot()
    counts = Counter(seen)
    for kind, rate in rates.items():
        sigma = math.sqrt(n * rate * (1 - rate))
        assert abs(counts[kind] - n * rate) < 5 * sigma, (kind, counts)
        assert stats["faults"][kind] == counts[kind]  # type: ignore[index]
    assert counts["ok"] == n - sum(counts[k] for k in FAULT_KINDS)
    # A second server with the same seed injects the same faults into the same requests.
    with serving(make_tenant(), options) as sim:
        assert observe(sim, 250) == seen[:250]
    # Resets are on purpose: uvicorn must not log a stack trace for each.
    assert "Exception in ASGI application" not in caplog.text


def test_faults_do_not_touch_the_identity_endpoints() -> None:
    options = SimOptions(seed=3, scale="tiny", faults={"500": 1.0})
    with serving(make_tenant(), options) as sim:
        for _ in range(20):
            assert sim.request_token(sim.dv_scope(PROD)).status_code == 200
        answer = sim.dv(PROD, "organizations")
        assert answer.status_code == 500
        assert answer.json()["error"]["code"] == "0x80040216"
        flow = sim.flow(f"{sim.tenant.environments[0].env_id}/flows")
        assert flow.status_code == 500
        assert flow.json()["error"]["code"] == "InternalServerError"


def test_protection_limits_the_combined_execution_time_in_the_window() -> None:
    """api-limits: 1,200,000 ms of combined execution time per 300 s (0x80072321)."""
    clock = [0.0]
    guard = ServiceProtection(52, 6000, 300.0, 1, clock=lambda: clock[0], max_execution_s=20.0)
    key = ("app", "env")
    for _ in range(3):
        assert guard.acquire(key) is None
    clock[0] = 8.0
    for _ in range(3):
        guard.release(key)  # 3 x 8 s = 24 s of the 20 s
    refused = guard.acquire(key)
    assert refused is not None
    assert refused.code == "0x80072321"
    assert refused.message.startswith(
        "Combined execution time of incoming requests exceeded limit of 20,000 milliseconds"
    )
    assert refused.retry_after_s == 300  # until the first 8 s leave the window, at t=308
    assert guard.acquire(("app", "other-env")) is None  # per environment
    clock[0] = 308.0
    assert guard.acquire(key) is None


def test_protection_counts_per_key_and_frees_slots() -> None:
    clock = [0.0]
    guard = ServiceProtection(2, 3, 10.0, 1, clock=lambda: clock[0])
    key = ("app", "env")
    assert guard.acquire(key) is None
    assert guard.acquire(key) is None
    refused = guard.acquire(key)
    assert refused is not None
    assert refused.code == "0x80072326"
    assert refused.message == "Number of concurrent requests exceeded the limit of 2."
    assert guard.acquire(("app", "other-env")) is None  # per environment
    guard.release(key)
    assert guard.acquire(key) is None  # third request in the window
    guard.release(key)
    guard.release(key)
    clock[0] = 4.0
    late = guard.acquire(key)
    assert late is not None
    assert late.code == "0x80072322"
    assert late.retry_after_s == 6
    assert (
        late.message == "Number of requests exceeded the limit of 3 over time window of 10 seconds."
    )
    clock[0] = 10.0
    assert guard.acquire(key) is None


@pytest.mark.anyio
async def test_too_many_concurrent_requests_get_429_and_honouring_retry_after_succeeds() -> None:
    options = SimOptions(seed=7, scale="tiny", max_concurrent=4, latency_ms=300, retry_after_s=1)
    with serving(make_tenant(), options) as sim:
        token = sim.token(sim.dv_scope(PROD))
        url = f"{sim.base}/dv/{PROD}/api/data/v9.2/organizations"
        first_answers: list[int] = []
        final: list[int] = []
        async with httpx.AsyncClient(
            verify=sim.ctx, headers={"authorization": f"Bearer {token}"}
        ) as client:

            async def call() -> None:
                answer = await client.get(url)
                first_answers.append(answer.status_code)
                while answer.status_code == 429:
                    body = answer.json()["error"]
                    assert body == {
                        "code": "0x80072326",
                        "message": "Number of concurrent requests exceeded the limit of 4.",
                    }
                    await anyio.sleep(int(answer.headers["retry-after"]))
                    answer = await client.get(url)
                final.append(answer.status_code)

            async with anyio.create_task_group() as group:
                for _ in range(8):
                    group.start_soon(call)
        assert first_answers.count(429) == 4
        assert first_answers.count(200) == 4
        assert final == [200] * 8
        assert sim.server.stats.throttled >= 4


def test_request_count_limit_answers_429_until_the_window_has_room() -> None:
    options = SimOptions(seed=7, scale="tiny", max_requests=4, window_s=1.0, retry_after_s=1)
    with serving(make_tenant(), options) as sim:
        answers = [sim.dv(PROD, "organizations") for _ in range(5)]
        assert [a.status_code for a in answers] == [200, 200, 200, 200, 429]
        assert answers[-1].json()["error"]["code"] == "0x80072322"
        time.sleep(int(answers[-1].headers["retry-after"]))
        assert sim.dv(PROD, "organizations").status_code == 200


def test_latency_is_added_to_each_api_request() -> None:
    with serving(make_tenant(), SimOptions(seed=7, scale="tiny", latency_ms=150)) as sim:
        sim.token(sim.dv_scope(PROD))
        started = time.perf_counter()
        sim.dv(PROD, "organizations")
        assert time.perf_counter() - started >= 0.15
        started = time.perf_counter()
        sim.request_token(sim.dv_scope(PROD))
        assert time.perf_counter() - started < 0.15  # identity has no added latency


def test_stats_snapshot_is_a_copy() -> None:
    stats = SimStats()
    stats.faults["429"] += 1
    snap = stats.snapshot()
    stats.faults["429"] += 1
    assert snap["faults"] == {k: (1 if k == "429" else 0) for k in FAULT_KINDS}


def test_fault_plan_refuses_bad_rates() -> None:
    with pytest.raises(ValueError, match="unknown fault kinds"):
        FaultPlan(1, {"418": 0.1})
    with pytest.raises(ValueError, match="sum to at most 1"):
        FaultPlan(1, {"429": 0.7, "500": 0.7})


def test_resets_are_not_logged_as_server_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    with serving(make_tenant(), SimOptions(seed=7, scale="tiny", faults={"reset": 1.0})) as sim:
        with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
            sim.dv(PROD, "plugintracelogs")
        assert sim.server.stats.faults["reset"] == 1
    assert "Exception in ASGI application" not in caplog.text
