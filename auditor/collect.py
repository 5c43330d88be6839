"""One collection scan: environments -> sources -> store, resumable at any point.

The scan's end is the tenant's clock (the `Date` of its first answer), so windows line up with
the server's `createdon` whatever the local clock says. Every page is stored with its
checkpoint; a scan that was killed is resumed by the next `auditor collect` (same window, same
samples) and ends with the same rows as one that was never interrupted.

A store that cannot be written (a full disk) or turns out damaged stops the whole scan, not
one query: every query stops at its next use of the store, and `collect` raises the store's
error instead of returning a summary. The scan stays unfinished, so once there is room the
next `auditor collect` resumes it from the pages already stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from auditor.access import current_principal, principal_of
from auditor.api_clients import ApiClients
from auditor.auth import build_credential
from auditor.collect_types import (
    CollectOptions,
    CollectSummary,
    EnvironmentResult,
    Progress,
    ServerClock,
    Silent,
)
from auditor.errors import CollectionError, Terminated
from auditor.host_limiter import HostLimiter
from auditor.http import ApiClient, make_client
from auditor.queries import Catalog, default_catalog
from auditor.settings import Settings
from auditor.sources import dataverse, environments, flow_api
from auditor.sources.base import (
    COLLECTED,
    DEFAULT_LOOKBACK,
    NOT_COLLECTED,
    OVERLAP,
    Environment,
    QueryOutcome,
    ScanWindow,
)
from auditor.store import Store, StoreError, StoreUnwritable
from auditor.store.sink import StoreSink
from auditor.tokens import BearerAuth, TokenProvider

# A client of one API root and token scope (`ApiClients.client`).
MakeClient = Callable[[str, str], ApiClient]
log = logging.getLogger(__name__)


async def collect(
    settings: Settings,
    options: CollectOptions,
    *,
    progress: Progress | None = None,
    catalog: Catalog | None = None,
) -> CollectSummary:
    """Run (or resume) one scan and return what it did; store and clients are closed after.
    A store that cannot be written or is damaged stops the scan: `StoreUnwritable` or
    `StoreDamaged` is raised, and the scan is left to resume."""
    catalog = catalog or default_catalog()
    progress = progress or Silent()
    started = time.monotonic()
    current_principal.set(principal_of(settings.auth_method))  # 401/403 hints fit the credential
    with Store.open(settings.store_path) as store:
        try:
            return await _scan(store, settings, options, catalog, progress, started)
        except StoreError as exc:
            if store.failure is None:
                raise
            raise _stopped(store.failure) from exc


def _stopped(failure: StoreError) -> StoreError:
    """The one error of a scan stopped by its store; the scan stays unfinished, to resume."""
    if isinstance(failure, StoreUnwritable):
        return StoreUnwritable(
            f"{failure.message}; the collection stopped",
            hint="Free disk space (or raise the file size limit) and run `auditor collect` "
            "again: the pages already stored are kept, and the scan resumes where it stopped.",
        )
    return failure


async def _scan(
    store: Store,
    settings: Settings,
    options: CollectOptions,
    catalog: Catalog,
    progress: Progress,
    started: float,
) -> CollectSummary:
    """One scan into an open store (a new one, or the unfinished one resumed)."""
    resumed = store.unfinished_scan()
    if resumed is not None and options.fresh:
        store.finish_scan(resumed.scan_id, status="failed", ended=datetime.now(UTC))
        resumed = None
    if resumed is not None:
        options = CollectOptions.from_arguments(resumed.arguments)
        log.info("resuming scan %d", resumed.scan_id)

    clock = ServerClock()
    async with ApiClients(settings, on_response=clock.observe) as apis:
        client = apis.client
        envs = await _environments(settings, catalog, options, client)
        if resumed is not None:
            scan_id, until = resumed.scan_id, resumed.window_end
        else:
            until = await _tenant_time(envs, clock, client)
            since = until - options.since if options.since else None
            previous = store.latest_scan()
            earliest = (
                previous.window_end - OVERLAP
                if previous is not None and previous.status in ("completed", "partial")
                else until - DEFAULT_LOOKBACK
            )
            scan_id = store.begin_scan(
                window_start=since or earliest,
                window_end=until,
                arguments={
                    **options.arguments(),
                    "flow_api": {
                        "enabled": settings.flow_api_enabled,
                        "supported_by_microsoft": False,
                        "note": flow_api.UNSUPPORTED_NOTE,
                    },
                },
                started=datetime.now(UTC),
            )
        window = ScanWindow(until=until, since=until - options.since if options.since else None)
        for env in envs:
            store.write_page(
                scan_id=scan_id,
                environment_id=env.id,
                query_id="environments",
                unit="",
                table="environments",
                rows=[
                    {
                        "display_name": env.display_name,
                        "sku": env.sku,
                        "dataverse_url": env.dataverse_url,
                        "discovered_by": env.discovered_by,
                    }
                ],
                next_link=None,
                done=True,
            )
        results = await _until_store_fails(
            store,
            [
                _environment(
                    settings, catalog, store, scan_id, env, window, options, client, progress
                )
                for env in envs
            ],
        )

    if store.failure is not None:
        raise store.failure  # not finished: the next run resumes the scan
    outcomes = [o for result in results for o in result.outcomes]
    collected = [o for o in outcomes if o.status != NOT_COLLECTED]
    if not collected:
        status = "failed"
    elif len(collected) == len(outcomes) and all(o.status == COLLECTED for o in outcomes):
        status = "completed"
    else:
        status = "partial"
    store.finish_scan(scan_id, status=status, ended=datetime.now(UTC))
    scan = store.scan(scan_id)
    return CollectSummary(
        scan_id=scan_id,
        resumed=resumed is not None,
        status=status,
        window_start=scan.window_start,
        window_end=scan.window_end,
        results=list(results),
        seconds=time.monotonic() - started,
    )


async def _until_store_fails(
    store: Store, work: list[Coroutine[Any, Any, EnvironmentResult]]
) -> list[EnvironmentResult]:
    """Runs the environments together. Once the store fails, what is still running is
    cancelled, as on Ctrl-C: its answers could be stored nowhere."""
    loop = asyncio.get_running_loop()
    gathered = asyncio.gather(*work)

    def stop(_: StoreError) -> None:
        # The store fails in a worker thread as often as in this one.
        loop.call_soon_threadsafe(gathered.cancel)

    store.on_failure = stop
    if store.failure is not None:
        gathered.cancel()
    try:
        return await gathered
    except asyncio.CancelledError:
        if store.failure is None:
            raise  # cancelled from outside (Ctrl-C): not the store's doing
        raise store.failure from None
    finally:
        store.on_failure = None


async def _environments(
    settings: Settings, catalog: Catalog, options: CollectOptions, client: MakeClient
) -> list[Environment]:
    if settings.discover_environments:
        admin = client(settings.admin_api_url + "/", settings.admin_api_scope)
        found = await environments.discover(admin, catalog)
    else:
        found = environments.configured(settings)
    chosen = environments.select(found, options.environments)
    if not chosen:
        raise CollectionError(
            "No environment to collect.",
            hint="Name environments in auditor.toml or use --all-environments.",
        )
    return chosen


async def _tenant_time(envs: list[Environment], clock: ServerClock, client: MakeClient) -> datetime:
    """The tenant's current time, asked of the first Dataverse when discovery did not tell."""
    if clock.first is None:
        first = next((e for e in envs if e.dataverse_url), None)
        if first is not None and first.dataverse_url is not None:
            probe = client(
                f"{first.dataverse_url}/api/data/v9.2/", f"{first.dataverse_url}/.default"
            )
            try:
                await probe.get("organizations", {"$select": "organizationid"})
            except httpx.HTTPError as exc:
                log.warning("could not read the tenant's clock: %s", exc)
    moment = clock.first or datetime.now(UTC)
    return moment.replace(microsecond=0)


async def _environment(
    settings: Settings,
    catalog: Catalog,
    store: Store,
    scan_id: int,
    env: Environment,
    window: ScanWindow,
    options: CollectOptions,
    client: MakeClient,
    progress: Progress,
) -> EnvironmentResult:
    """The queries of one environment; a failed store ends it quietly, as it ends every
    other environment of the scan (`collect` then raises the store's error)."""
    try:
        return await _collect_environment(
            settings, catalog, store, scan_id, env, window, options, client, progress
        )
    except StoreError:
        if store.failure is None:
            raise
        return EnvironmentResult(env)


async def _collect_environment(
    settings: Settings,
    catalog: Catalog,
    store: Store,
    scan_id: int,
    env: Environment,
    window: ScanWindow,
    options: CollectOptions,
    client: MakeClient,
    progress: Progress,
) -> EnvironmentResult:
    sink = StoreSink(store, scan_id, env.id, progress)
    result = EnvironmentResult(env)
    dataverse_read = asyncio.Event()

    async def read_dataverse() -> list[QueryOutcome]:
        try:
            if not env.dataverse_url:
                return _not_collected(
                    dataverse.QUERIES,
                    env,
                    "the environment has no Dataverse database",
                    "Nothing to do unless Dataverse is added to this environment.",
                )
            source = dataverse.DataverseSource(
                client(f"{env.dataverse_url}/api/data/v9.2/", f"{env.dataverse_url}/.default"),
                catalog,
                sink,
                env,
                window,
                page_size=settings.page_size,
            )
            outcomes = await source.collect()
            sink.dataverse_collected = {o.query_id for o in outcomes if o.status == COLLECTED}
            return outcomes
        finally:
            dataverse_read.set()

    async def read_flow_api() -> list[QueryOutcome]:
        if not settings.flow_api_enabled:
            return _not_collected(
                flow_api.QUERIES,
                env,
                "the flow API is turned off (apis.flow_enabled = false)",
                "Flows outside solutions, action results and retries are not visible.",
            )
        flows = flow_api.FlowApiSource(
            client(settings.flow_api_url + "/", settings.flow_api_scope),
            catalog,
            sink,
            env,
            window,
            scan_id=scan_id,
            action_sample=options.action_sample,
            dataverse_read=dataverse_read.wait,
        )
        return await flows.collect()

    # The two APIs have budgets of their own (Dataverse's per organization:
    # https://learn.microsoft.com/power-apps/developer/data-platform/api-limits; the flow
    # API's per environment is inferred, `auditor.request_budget`), so they are read side by
    # side: the flow API's requests do not wait for Dataverse's largest tables, only (on a
    # later scan) for the run history that says which flows ran (`FlowApiSource`).
    for outcomes in await _side_by_side(read_dataverse(), read_flow_api()):
        result.outcomes.extend(outcomes)
    for outcome in result.outcomes:
        if store.failure is not None:
            break  # nothing more can be recorded
        _record(store, scan_id, outcome)
        progress.done(outcome)
    return result


def _not_collected(
    queries: Iterable[str], env: Environment, reason: str, hint: str
) -> list[QueryOutcome]:
    """The outcomes of queries a scan does not send in an environment, with why."""
    return [
        QueryOutcome(q, env.id, status=NOT_COLLECTED, reason=reason, hint=hint) for q in queries
    ]


async def _side_by_side(
    *work: Coroutine[Any, Any, list[QueryOutcome]],
) -> list[list[QueryOutcome]]:
    """The results of `work` run concurrently, in order; if one fails, the others are
    cancelled before its error is raised (no task is left running on its own)."""
    tasks = [asyncio.ensure_future(one) for one in work]
    try:
        return list(await asyncio.gather(*tasks))
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


async def list_environments(settings: Settings) -> list[Environment]:
    """The environments a scan would collect (the admin API's list, or the configured ones)."""
    if not settings.discover_environments:
        return environments.configured(settings)
    current_principal.set(principal_of(settings.auth_method))
    credential = build_credential(settings)
    try:
        async with make_client(
            settings,
            limiter=HostLimiter(settings.max_concurrency),
            auth=BearerAuth(TokenProvider(credential), settings.admin_api_scope),
            base_url=settings.admin_api_url + "/",
        ) as admin:
            return await environments.discover(admin, default_catalog())
    finally:
        credential.close()


def _record(store: Store, scan_id: int, outcome: QueryOutcome) -> None:
    if outcome.resumed:
        return
    store.record_query(
        scan_id=scan_id,
        environment_id=outcome.environment_id,
        query_id=outcome.query_id,
        status=outcome.status,
        rows=outcome.rows,
        requests=outcome.stats.requests,
        retries=outcome.stats.retries,
        throttled=outcome.stats.throttled,
        reason=outcome.reason,
        hint=outcome.hint,
    )
    if outcome.status == COLLECTED and outcome.watermark is not None:
        store.set_watermark(outcome.environment_id, outcome.query_id, outcome.watermark)


def run(
    settings: Settings, options: CollectOptions, progress: Progress | None = None
) -> CollectSummary:
    """`collect` for synchronous callers (the CLI)."""
    return asyncio.run(_stopped_by_sigterm(collect(settings, options, progress=progress)))


async def _stopped_by_sigterm(work: Coroutine[Any, Any, CollectSummary]) -> CollectSummary:
    """SIGTERM cancels the collection as Ctrl-C does (every task unwinds, every page's
    transaction ends), then raises `Terminated`; also when the job was started with Ctrl-C
    ignored, as a script's background job is."""
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    stopped: list[bool] = []

    def stop() -> None:
        stopped.append(True)
        if task is not None:
            task.cancel()

    # Not in the main thread (tests), or no signals here: the default handling stays.
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        loop.add_signal_handler(signal.SIGTERM, stop)
    try:
        return await work
    except asyncio.CancelledError:
        if stopped:
            raise Terminated from None
        raise
    finally:
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.remove_signal_handler(signal.SIGTERM)
