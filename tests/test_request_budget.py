"""The client's account of each environment's service-protection budget (api-limits: 6,000
requests and 1,200 s of execution time per 300 s sliding window)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from auditor.request_budget import RequestBudget, budget_key


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


async def spend(budget: RequestBudget, key: str) -> None:
    """One request answered at once."""
    await budget.reserve(key)
    budget.done(key, 0.0)


def test_each_environment_has_a_budget_of_its_own() -> None:
    dv = "https://contoso.crm4.dynamics.com/api/data/v9.2/plugintracelogs?$top=1"
    assert budget_key(httpx.URL(dv)) == "contoso.crm4.dynamics.com/api/data/"
    flow = "https://api.flow.microsoft.com/providers/Microsoft.ProcessSimple/scopes/admin/"
    assert budget_key(httpx.URL(flow + "environments/Default-1/v2/flows")) == (
        "api.flow.microsoft.com/providers/Microsoft.ProcessSimple/scopes/admin/environments/"
        "Default-1"
    )
    assert budget_key(httpx.URL(flow + "environments/e2/flows/f")) != budget_key(
        httpx.URL(flow + "environments/Default-1/flows/f")
    )
    # The simulator serves every environment on one host, under a path of its own.
    sim = "https://127.0.0.1:8443/dv/env-2/api/data/v9.2/flowruns"
    assert budget_key(httpx.URL(sim)) == "127.0.0.1:8443/dv/env-2/api/data/"
    assert budget_key(httpx.URL("https://api.bap.microsoft.com/providers/x")) == (
        "api.bap.microsoft.com"
    )


def test_a_full_window_holds_the_next_request_until_the_oldest_leaves() -> None:
    clock = Clock()
    budget = RequestBudget(3, 10.0, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for at in (0.0, 1.0, 2.0):
            clock.now = at
            await spend(budget, "a")
        clock.now = 4.0
        await spend(budget, "b")  # another environment: not held
        assert clock.slept == []
        await spend(budget, "a")  # held until the request of t=0 leaves the window
        assert clock.now == pytest.approx(10.0)
        await spend(budget, "a")  # then until the one of t=1
        assert clock.now == pytest.approx(11.0)

    asyncio.run(go())


def test_execution_time_is_budgeted_too() -> None:
    clock = Clock()
    budget = RequestBudget(1000, 300.0, 20.0, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        for _ in range(3):
            await budget.reserve("a")
            clock.now += 8.0
            budget.done("a", 8.0)  # 24 s of the 20 s in the window by t=24
        await spend(budget, "a")
        # Held until enough of the oldest time leaves: the 8 s that ended at t=8, at t=308.
        assert clock.now == pytest.approx(308.0)

    asyncio.run(go())


def test_many_waiting_requests_go_as_the_window_frees_never_more_than_it_holds() -> None:
    clock = Clock()
    budget = RequestBudget(5, 1.0, clock=clock, sleep=clock.sleep)
    sent: list[float] = []

    async def one() -> None:
        await spend(budget, "a")
        sent.append(clock.now)

    async def go() -> None:
        await asyncio.gather(*(one() for _ in range(23)))

    asyncio.run(go())
    assert len(sent) == 23
    for at in sent:
        assert sum(at - 1.0 < other <= at for other in sent) <= 5


def test_open_requests_hold_their_place_and_count_from_their_answer() -> None:
    clock = Clock()
    budget = RequestBudget(2, 10.0, clock=clock, sleep=clock.sleep)

    async def go() -> None:
        await budget.reserve("a")
        await budget.reserve("a")
        assert budget.wait("a") > 0  # both places taken, though neither request was answered
        clock.now = 3.0
        budget.done("a", 3.0)  # in the window from its answer at t=3, not from t=0
        budget.release("a")  # the other was never sent
        await spend(budget, "a")
        assert clock.now == 3.0
        await spend(budget, "a")
        assert clock.now == pytest.approx(13.0)

    asyncio.run(go())


def test_thousands_of_held_requests_wait_in_turn_without_waking_each_other() -> None:
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds
        await asyncio.sleep(0)  # a real suspension: other requests run meanwhile

    budget = RequestBudget(10, 1.0, clock=clock, sleep=sleep)
    looked = 0
    wait = budget.wait

    def counted(key: str) -> float:
        nonlocal looked
        looked += 1
        return wait(key)

    budget.wait = counted  # type: ignore[method-assign]
    answered: list[float] = []

    async def one() -> None:
        await budget.reserve("a")
        await asyncio.sleep(0)  # in flight
        budget.done("a", 0.0)
        answered.append(clock.now)

    async def go() -> None:
        await asyncio.gather(*(one() for _ in range(2000)))

    asyncio.run(go())
    assert len(answered) == 2000
    # 10 per second at the most. (Here time jumps while requests are in flight, and their
    # answers then count from after the jump, so the run is a little longer than 199 s.)
    assert 199.0 <= clock.now < 250.0
    assert all(sum(at - 1.0 < other <= at for other in answered) <= 10 for at in answered[::50])
    assert looked < 4 * 2000  # each held request looks a few times, not once per freed place


def test_a_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        RequestBudget(0)
