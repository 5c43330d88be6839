"""The retry policy, the per-host cap and typed errors, each against a respx-mocked API."""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import respx

from auditor.access import Access, current_principal
from auditor.errors import (
    BadRequest,
    BadResponse,
    PermissionDenied,
    ServiceUnavailable,
    Throttled,
    TransportFailure,
)
from auditor.host_limiter import HostLimiter
from auditor.http import ApiClient, get_json, make_client
from auditor.request_stats import RequestStats, current_stats
from auditor.retry import RetryPolicy, retry_after_seconds
from auditor.settings import Settings

pytestmark = pytest.mark.anyio
URL = "https://contoso.crm.dynamics.com/api/data/v9.2/plugintracelogs"
NOW = 1_800_000_000.0  # the injected clock


class FakeSleep:
    """Records waits and moves a fake clock instead of sleeping, so tests about seconds take
    milliseconds."""

    def __init__(self) -> None:
        self.waits: list[float] = []
        self.now = NOW

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def clock(self) -> float:
        return self.now


@pytest.fixture
def sleep() -> FakeSleep:
    return FakeSleep()


@pytest.fixture
async def client(sleep: FakeSleep) -> AsyncIterator[ApiClient]:
    settings = Settings(max_retries=4)
    async with make_client(
        settings,
        limiter=HostLimiter(16),
        sleep=sleep,
        clock=sleep.clock,
        rng=random.Random(1),
    ) as made:
        yield made


def page(rows: int = 1) -> httpx.Response:
    return httpx.Response(200, json={"value": [{"id": i} for i in range(rows)]})


@respx.mock
async def test_429_with_retry_after_seconds_waits_and_succeeds(
    client: ApiClient, sleep: FakeSleep
) -> None:
    route = respx.get(URL).mock(
        side_effect=[httpx.Response(429, headers={"Retry-After": "2"}), page()]
    )
    stats = RequestStats()
    token = current_stats.set(stats)
    try:
        body = await get_json(client, URL)
    finally:
        current_stats.reset(token)
    assert body == {"value": [{"id": 0}]}
    assert route.call_count == 2
    assert sleep.waits == [2.0]
    assert (stats.requests, stats.retries, stats.throttled, stats.throttle_wait_s) == (2, 1, 1, 2.0)


@respx.mock
async def test_429_with_an_http_date_waits_until_that_date(
    client: ApiClient, sleep: FakeSleep
) -> None:
    when = email.utils.formatdate(NOW + 7, usegmt=True)
    respx.get(URL).mock(side_effect=[httpx.Response(429, headers={"Retry-After": when}), page()])
    await get_json(client, URL)
    assert sleep.waits == [pytest.approx(7.0, abs=1.0)]


@respx.mock
async def test_429_without_retry_after_backs_off_with_jitter(
    client: ApiClient, sleep: FakeSleep
) -> None:
    respx.get(URL).mock(side_effect=[httpx.Response(429), httpx.Response(429), page()])
    await get_json(client, URL)
    assert len(sleep.waits) == 2
    assert 0 <= sleep.waits[0] <= 0.5  # full jitter below base * 2**0
    assert 0 <= sleep.waits[1] <= 1.0  # and below base * 2**1


@respx.mock
async def test_503_then_200(client: ApiClient, sleep: FakeSleep) -> None:
    route = respx.get(URL).mock(side_effect=[httpx.Response(503), page(3)])
    body = await get_json(client, URL)
    assert len(body["value"]) == 3
    assert route.call_count == 2
    assert len(sleep.waits) == 1


@respx.mock
async def test_503_honours_retry_after(client: ApiClient, sleep: FakeSleep) -> None:
    respx.get(URL).mock(side_effect=[httpx.Response(503, headers={"Retry-After": "4"}), page()])
    await get_json(client, URL)
    assert sleep.waits == [4.0]


@respx.mock
async def test_connection_reset_then_200(client: ApiClient) -> None:
    route = respx.get(URL).mock(
        side_effect=[httpx.ReadError("Connection reset by peer"), httpx.ReadTimeout("slow"), page()]
    )
    assert (await get_json(client, URL))["value"] == [{"id": 0}]
    assert route.call_count == 3


@respx.mock
async def test_an_affinity_cookie_is_not_sent_back_and_pages_may_come_compressed(
    client: ApiClient,
) -> None:
    """Learn advises clients sending requests in parallel to drop Dataverse's server-affinity
    cookie (send-parallel-requests#server-affinity); pages compress several times over.
    This is the client's layer; the connections' own is tested in test_aiohttp_transport."""
    answer = httpx.Response(
        200,
        content=gzip.compress(b'{"value": [{"id": 0}]}'),
        headers={
            "Content-Type": "application/json",
            "Content-Encoding": "gzip",
            "Set-Cookie": "ARRAffinity=0123abcd; Path=/; HttpOnly; Secure",
        },
    )
    route = respx.get(URL).mock(return_value=answer)
    for _ in range(2):
        assert (await get_json(client, URL))["value"] == [{"id": 0}]
    assert "gzip" in route.calls[0].request.headers["accept-encoding"]
    assert "cookie" not in route.calls[1].request.headers


@respx.mock
async def test_malformed_json_is_retried(client: ApiClient) -> None:
    broken = httpx.Response(
        200, content=b'{"value": [{"id"', headers={"Content-Type": "application/json"}
    )
    route = respx.get(URL).mock(side_effect=[broken, page()])
    assert (await get_json(client, URL))["value"] == [{"id": 0}]
    assert route.call_count == 2


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        # What orjson refuses and the standard library reads, as it always did.
        (b'\xef\xbb\xbf{"value": [{"id": 1}]}', {"value": [{"id": 1}]}),  # byte-order mark
        (b'{"value": [{"id": NaN}]}', None),
        # A 64-bit whole number (Dataverse's BigInt) stays exact.
        (b'{"value": [{"id": 9223372036854775807}]}', {"value": [{"id": 9223372036854775807}]}),
    ],
)
@respx.mock
async def test_json_the_standard_library_reads_is_read_the_same(
    client: ApiClient, body: bytes, expected: dict[str, Any] | None
) -> None:
    respx.get(URL).mock(
        return_value=httpx.Response(200, content=body, headers={"Content-Type": "application/json"})
    )
    got = await get_json(client, URL)
    if expected is None:
        assert got["value"][0]["id"] != got["value"][0]["id"]  # NaN
    else:
        assert got == expected
        assert type(got["value"][0]["id"]) is int


@respx.mock
async def test_json_nested_beyond_any_parser_is_a_malformed_body_not_a_crash(
    client: ApiClient,
) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000
    respx.get(URL).mock(
        return_value=httpx.Response(200, content=deep, headers={"Content-Type": "application/json"})
    )
    with pytest.raises(BadResponse) as caught:
        await get_json(client, URL)
    assert "malformed" in caught.value.hint


@pytest.mark.parametrize(
    ("answers", "error", "hint_word"),
    [
        ([httpx.Response(503)] * 5, ServiceUnavailable, "resumes"),
        ([httpx.ConnectError("Connection refused")] * 5, TransportFailure, "network"),
        (
            [httpx.Response(200, content=b"{", headers={"Content-Type": "application/json"})] * 5,
            BadResponse,
            "malformed",
        ),
    ],
)
@respx.mock
async def test_exhausted_retries_raise_a_typed_error_with_a_hint(
    client: ApiClient,
    sleep: FakeSleep,
    answers: list[object],
    error: type[Exception],
    hint_word: str,
) -> None:
    route = respx.get(URL).mock(side_effect=answers)
    with pytest.raises(error) as caught:
        await get_json(client, URL)
    assert route.call_count == 5  # the first try and max_retries=4 retries, no more
    assert len(sleep.waits) == 4
    assert hint_word in caught.value.hint  # type: ignore[attr-defined]
    assert caught.value.exit_code == 3  # type: ignore[attr-defined]


@respx.mock
async def test_429s_have_their_own_budget_then_raise_a_typed_error(
    client: ApiClient, sleep: FakeSleep
) -> None:
    route = respx.get(URL).mock(return_value=httpx.Response(429, headers={"Retry-After": "1"}))
    with pytest.raises(Throttled) as caught:
        await get_json(client, URL)
    # Waiting out 429s is the expected way through, so they do not spend the 4 retries.
    assert route.call_count == RetryPolicy().max_throttled + 1
    assert sleep.waits == [1.0] * RetryPolicy().max_throttled
    assert "concurrency" in caught.value.hint


@respx.mock
async def test_a_request_count_429_pauses_every_request_to_the_host(sleep: FakeSleep) -> None:
    sent_at: list[float] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent_at.append(sleep.now)
        if len(sent_at) == 1:
            body = {"error": {"code": "0x80072322", "message": "Number of requests exceeded"}}
            return httpx.Response(429, headers={"Retry-After": "5"}, json=body)
        return page()

    respx.get(URL).mock(side_effect=answer)
    limiter = HostLimiter(4)
    async with make_client(Settings(), limiter=limiter, sleep=sleep, clock=sleep.clock) as client:
        await asyncio.gather(*(get_json(client, URL) for _ in range(12)))
    # One refusal: nothing else went out before its Retry-After had passed.
    assert len(sent_at) == 13
    assert min(sent_at[1:]) >= NOW + 5


@respx.mock
async def test_a_concurrency_429_lowers_the_host_limit_and_the_429s_stay_few(
    sleep: FakeSleep,
) -> None:
    in_flight = 0
    refused = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, refused
        if in_flight >= 3:  # the service admits 3 at once
            refused += 1
            body = {"error": {"code": "0x80072326", "message": "concurrent requests exceeded"}}
            return httpx.Response(429, headers={"Retry-After": "1"}, json=body)
        in_flight += 1
        await asyncio.sleep(0.001)
        in_flight -= 1
        return page()

    respx.get(URL).mock(side_effect=answer)
    limiter = HostLimiter(16)
    async with make_client(Settings(), limiter=limiter, sleep=sleep, clock=sleep.clock) as client:
        await asyncio.gather(*(get_json(client, URL) for _ in range(300)))
    assert 3 <= limiter.limit("contoso.crm.dynamics.com/api/data/") <= 4
    assert refused <= 16  # about one burst, not one refusal per request


@respx.mock
async def test_403_fails_at_once_naming_the_privilege(client: ApiClient) -> None:
    body = {
        "error": {
            "code": "0x80040220",
            "message": "Principal user is missing prvReadPluginTraceLog",
        }
    }
    route = respx.get(URL).mock(return_value=httpx.Response(403, json=body))
    access = Access("dataverse", "read on Plug-in Trace Log (prvReadPluginTraceLog)")
    with pytest.raises(PermissionDenied) as caught:
        await get_json(client, URL, access=access)
    assert route.call_count == 1
    assert caught.value.status == 403
    assert caught.value.api_code == "0x80040220"
    assert "prvReadPluginTraceLog" in caught.value.hint
    assert "application user" in caught.value.hint  # an app registration is the default
    assert "missing prvReadPluginTraceLog" in caught.value.message
    # A person signed in with `auditor login` is told to ask for a role, not to make an app user.
    token = current_principal.set("person")
    try:
        with pytest.raises(PermissionDenied) as caught:
            await get_json(client, URL, access=access)
    finally:
        current_principal.reset(token)
    assert "application user" not in caught.value.hint
    assert "system administrator" in caught.value.hint


@respx.mock
async def test_403_of_an_admin_route_asks_an_app_for_registration_and_a_person_for_a_role(
    client: ApiClient,
) -> None:
    respx.get(URL).mock(return_value=httpx.Response(403, json={"error": {"code": "Forbidden"}}))
    with pytest.raises(PermissionDenied) as caught:
        await get_json(client, URL, access=Access("flow_api"))
    assert "New-PowerAppManagementApp" in caught.value.hint
    assert "role" not in caught.value.hint.split(";")[0]
    token = current_principal.set("person")
    try:
        with pytest.raises(PermissionDenied) as caught:
            await get_json(client, URL, access=Access("admin_api"))
    finally:
        current_principal.reset(token)
    assert "Power Platform administrator" in caught.value.hint
    assert "New-PowerAppManagementApp" not in caught.value.hint


@respx.mock
async def test_400_carries_the_api_message(client: ApiClient) -> None:
    body = {"error": {"code": "0x80060888", "message": "Could not find a property named 'nope'."}}
    respx.get(URL).mock(return_value=httpx.Response(400, json=body))
    with pytest.raises(BadRequest, match="Could not find a property named 'nope'"):
        await get_json(client, URL)


@respx.mock
async def test_the_concurrency_cap_is_never_exceeded() -> None:
    in_flight = 0
    peak = 0

    async def answer(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.002)
        in_flight -= 1
        return page()

    respx.get(URL).mock(side_effect=answer)
    other = "https://fabrikam.crm4.dynamics.com/api/data/v9.2/asyncoperations"
    respx.get(other).mock(side_effect=answer)
    limiter = HostLimiter(16)
    async with (
        make_client(Settings(), limiter=limiter) as first,
        make_client(Settings(), limiter=limiter) as second,
    ):
        await asyncio.gather(
            *(get_json(first, URL) for _ in range(100)),
            *(get_json(second, URL) for _ in range(100)),
        )
    # Two clients sharing one limiter: 200 requests to one host, never more than 16 at once.
    assert peak == 16
    assert limiter.peak == {"contoso.crm.dynamics.com/api/data/": 16}


@respx.mock
async def test_environments_on_one_host_each_have_their_own_cap() -> None:
    """The flow API serves every environment from one host (so does the simulator for
    Dataverse): each environment's routes get the cap of their own."""
    flow = "https://api.flow.microsoft.com/providers/Microsoft.ProcessSimple/scopes/admin"
    urls = {env: f"{flow}/environments/{env}/flows/f/runs/r" for env in ("e1", "e2")}
    in_flight = {"e1": 0, "e2": 0}
    peak = {"e1": 0, "e2": 0}

    def answer_for(env: str) -> Any:
        async def answer(request: httpx.Request) -> httpx.Response:
            in_flight[env] += 1
            peak[env] = max(peak[env], in_flight[env])
            await asyncio.sleep(0.002)
            in_flight[env] -= 1
            return page()

        return answer

    for env, url in urls.items():
        respx.get(url).mock(side_effect=answer_for(env))
    limiter = HostLimiter(4)
    async with make_client(Settings(), limiter=limiter) as client:
        await asyncio.gather(*(get_json(client, urls[env]) for env in ("e1", "e2") * 40))
    assert peak == {"e1": 4, "e2": 4}  # 8 at once on the host, 4 per environment
    assert sorted(limiter.peak) == [
        f"api.flow.microsoft.com{flow.removeprefix('https://api.flow.microsoft.com')}"
        f"/environments/{env}"
        for env in ("e1", "e2")
    ]


async def test_the_cap_stays_below_dataverse_limit() -> None:
    with pytest.raises(ValueError, match="from 1 to 50"):
        HostLimiter(60)


@pytest.mark.parametrize(
    ("header", "expected"),
    [("2", 2.0), ("0.5", 0.5), ("-3", 0.0), ("soon", None), (None, None)],
)
def test_retry_after_parsing(header: str | None, expected: float | None) -> None:
    assert retry_after_seconds(header, NOW) == expected


@respx.mock
@pytest.mark.parametrize(
    ("status", "retry_after", "said"),
    [
        (429, "120", "every request to it waits 120s"),
        (503, "45", "HTTP 503; the request waits 45s"),
    ],
)
async def test_a_long_wait_is_said_at_info_level_once(
    client: ApiClient,
    sleep: FakeSleep,
    caplog: pytest.LogCaptureFixture,
    status: int,
    retry_after: str,
    said: str,
) -> None:
    """A scheduler's log at -v explains a quiet collection: service protection can ask for
    minutes. Short waits stay at debug level."""
    respx.get(URL).mock(
        side_effect=[
            httpx.Response(status, headers={"Retry-After": "2"}),
            httpx.Response(status, headers={"Retry-After": retry_after}),
            page(),
        ]
    )
    with caplog.at_level("INFO", logger="auditor.http"):
        await get_json(client, URL)
    infos = [r.getMessage() for r in caplog.records if r.levelname == "INFO"]
    assert len(infos) == 1
    assert said in infos[0]
    assert "contoso.crm.dynamics.com" in infos[0]


@pytest.mark.parametrize(
    ("base", "url", "params"),
    [
        (
            "https://org.crm4.dynamics.com/api/data/v9.2/",
            "plugintracelogs",
            {
                "$select": "plugintracelogid,typename,createdon",
                "$filter": "createdon ge 2026-11-01T00:00:00Z and createdon lt 2026-11-08",
                "$orderby": "createdon asc,plugintracelogid asc",
            },
        ),
        (
            "https://api.flow.microsoft.com",
            "/providers/Microsoft.ProcessSimple/scopes/admin/environments/Default-1/flows/f/runs",
            {"api-version": "2016-11-01", "$filter": "startTime ge 2026-11-01T00:00:00Z"},
        ),
        ("https://org.test/api/data/v9.2/", "flowruns(ab-c)", None),
        ("https://org.test/api/data/v9.2/", "x?$top=1", {"$skip": "a b&c=d/é"}),
        (
            "https://org.test/api/data/v9.2/",
            "https://org.test/api/data/v9.2/flowruns?$skiptoken=%3Ccookie%20pagenumber=%222%22%3E",
            None,
        ),
    ],
)
def test_a_request_url_is_what_httpx_would_build_from_one_parse(
    base: str, url: str, params: dict[str, str] | None
) -> None:
    ours = ApiClient(
        httpx.MockTransport(lambda _: httpx.Response(200)),
        base_url=base,
        headers={},
        timeout=httpx.Timeout(1),
    )
    built = httpx.AsyncClient(base_url=base).build_request("GET", url, params=params)
    assert ours.url(url, params) == built.url
