"""Dataverse Web API v9.2: the tables of docs/data-model.md, per environment.

- `organizations` first: it is the access check (a 403 here means the app has no application
  user in the environment) and it tells whether plug-in trace logging is on.
- Configuration tables (`workflows`, `callbackregistrations`, plug-in steps) are read in full
  every scan and replace what the store held, so deleted or changed rows show.
- Event tables (`plugintracelogs`, `asyncoperations`, `flowruns`, `flowevents`) are read over
  the scan window in windows sized by their data (`auditor.sources.volume_windows`), paged
  concurrently; every page is stored with its checkpoint, so an interrupted scan resumes
  where it stopped.
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/page-results
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from datetime import datetime

from auditor.errors import AuditorError, PermissionDenied
from auditor.http import ApiClient
from auditor.odata import Page, iter_pages
from auditor.queries import Catalog, QuerySpec
from auditor.sources.base import (
    COLLECTED,
    NOT_COLLECTED,
    Environment,
    QueryOutcome,
    Row,
    ScanWindow,
    Sink,
    as_object,
    resumed,
    run_query,
)
from auditor.sources.batching import run_all
from auditor.sources.volume_windows import kept_rows, rest_of_window, unit_of, window_of

log = logging.getLogger(__name__)

CONFIGURATION_QUERIES = ("workflows", "callbackregistrations", "sdkmessageprocessingsteps")
EVENT_QUERIES = ("plugintracelogs", "asyncoperations", "flowruns", "flowevents")
QUERIES = ("organizations", *CONFIGURATION_QUERIES, *EVENT_QUERIES)
TRACE_SETTING = {0: "Off", 1: "Exception", 2: "All"}

# Where each query's rows go in the store, when the table name differs.
TABLES = {"sdkmessageprocessingsteps": "plugin_steps"}

NO_APP_USER_HINT = (
    "Create an application user for the app registration in this environment (Power Platform "
    "admin center > Environments > Settings > Users + permissions > Application users) and "
    "give it a security role that can read the tables listed in the README."
)
TRACE_OFF_HINT = (
    "Set 'Enable logging to plug-in trace log' to All (Settings > Administration > System "
    "Settings > Customization), or at least Exception, then scan again: trace logs are kept "
    "only about 24 hours. https://learn.microsoft.com/power-apps/developer/data-platform/"
    "logging-tracing"
)


_PLAIN_NAMES: dict[str, str | None] = {}  # Web API property -> stored column (None: dropped)


def _plain_name(key: str) -> str | None:
    name = _PLAIN_NAMES.get(key, "")
    if name == "":
        if "@" in key:
            name = None
        elif key.startswith("_") and key.endswith("_value"):
            name = key[1:-6]
        else:
            name = key
        if len(_PLAIN_NAMES) < 10_000:  # the names of a few tables; never a tenant's values
            _PLAIN_NAMES[key] = name
    return name


def plain_row(row: Row) -> Row:
    """A Web API row with annotations dropped and lookups `_x_value` renamed to `x`.

    Runs for every row of every page: the renaming of a property name is worked out once.
    """
    result: Row = {}
    for key, value in row.items():
        name = _plain_name(key)
        if name is not None:
            result[name] = value
    return result


FORMATTED_VALUE = "OData.Community.Display.V1.FormattedValue"


def flowrun_row(row: Row) -> Row:
    """`flowruns`: the workflow lookup is kept apart from the text column `workflowid`, and
    the flow's name is the lookup's formatted value (WorkflowName is the lookup's read-only
    name column, not a Web API property).
    https://learn.microsoft.com/power-apps/developer/data-platform/webapi/query/select-columns#formatted-values
    """
    result = plain_row({k: v for k, v in row.items() if k != "_workflow_value"})
    result["workflow_ref"] = row.get("_workflow_value")
    result["workflowname"] = row.get(f"_workflow_value@{FORMATTED_VALUE}")
    return result


def step_row(row: Row) -> Row:
    """A plug-in step flattened from the one-query inventory (message, table, type, assembly)."""
    message = as_object(row.get("sdkmessageid"))
    message_filter = as_object(row.get("sdkmessagefilterid"))
    plugin_type = as_object(row.get("plugintypeid"))
    assembly = as_object(plugin_type.get("pluginassemblyid"))
    return {
        "stepid": row.get("sdkmessageprocessingstepid"),
        "name": row.get("name"),
        "stage": row.get("stage"),
        "mode": row.get("mode"),
        "rank": row.get("rank"),
        "filteringattributes": row.get("filteringattributes"),
        "asyncautodelete": row.get("asyncautodelete"),
        "statecode": row.get("statecode"),
        "statuscode": row.get("statuscode"),
        "ismanaged": row.get("ismanaged"),
        "customizationlevel": row.get("customizationlevel"),
        "modifiedon": row.get("modifiedon"),
        "eventhandler_id": row.get("_eventhandler_value"),
        "message_name": message.get("name"),
        "primary_entity": message_filter.get("primaryobjecttypecode"),
        "plugintype_id": row.get("_plugintypeid_value"),
        "plugintype_typename": plugin_type.get("typename"),
        "plugintype_name": plugin_type.get("name"),
        "assembly_name": assembly.get("name") or plugin_type.get("assemblyname"),
        "assembly_version": assembly.get("version"),
        "isolationmode": assembly.get("isolationmode"),
        "sourcetype": assembly.get("sourcetype"),
        "isworkflowactivity": plugin_type.get("isworkflowactivity"),
    }


CONVERTERS: dict[str, Callable[[Row], Row]] = {
    "sdkmessageprocessingsteps": step_row,
    "flowruns": flowrun_row,
}


class DataverseSource:
    """Reads one environment's Dataverse tables into a sink."""

    def __init__(
        self,
        client: ApiClient,
        catalog: Catalog,
        sink: Sink,
        environment: Environment,
        window: ScanWindow,
        *,
        page_size: int = 5000,
    ) -> None:
        self.client = client  # base URL: <dataverse url>/api/data/v9.2/
        self.catalog = catalog
        self.sink = sink
        self.environment = environment
        self.window = window
        self.page_size = page_size
        self.trace_setting: int | None = None

    async def collect(self) -> list[QueryOutcome]:
        """Every Dataverse query of the environment; failures are outcomes, not exceptions."""
        first = await self._run("organizations", self._organizations)
        if first.status == NOT_COLLECTED:
            # Without access to the environment no other query can succeed: say so once.
            return [first] + [
                QueryOutcome(
                    query_id,
                    self.environment.id,
                    status=NOT_COLLECTED,
                    reason=f"not attempted: {first.reason}",
                    hint=first.hint,
                )
                for query_id in (*CONFIGURATION_QUERIES, *EVENT_QUERIES)
            ]
        rest = await asyncio.gather(
            *(self._run(q, self._configuration) for q in CONFIGURATION_QUERIES),
            *(self._run(q, self._windowed) for q in EVENT_QUERIES),
        )
        outcomes = [first, *rest]
        self._warn_about_trace_setting(outcomes)
        return outcomes

    async def _run(
        self, query_id: str, read: Callable[[QuerySpec, QueryOutcome], Awaitable[None]]
    ) -> QueryOutcome:
        if self.sink.finished(query_id):
            return resumed(query_id, self.environment.id)

        def explain(error: AuditorError, outcome: QueryOutcome) -> None:
            # The first call is the access check: a 403 there means no application user.
            if query_id == "organizations" and isinstance(error, PermissionDenied):
                outcome.reason = f"no access to the environment: {error.message}"
                outcome.hint = NO_APP_USER_HINT

        spec = self.catalog[query_id]
        return await run_query(
            query_id, self.environment.id, lambda outcome: read(spec, outcome), explain=explain
        )

    async def _organizations(self, spec: QuerySpec, outcome: QueryOutcome) -> None:
        rows = await self._read_all(spec)
        outcome.rows = await self.sink.replace(spec.id, "organizations", rows)
        setting = rows[0].get("plugintracelogsetting") if rows else None
        self.trace_setting = setting if isinstance(setting, int) else None

    async def _configuration(self, spec: QuerySpec, outcome: QueryOutcome) -> None:
        rows = await self._read_all(spec)
        outcome.rows = await self.sink.replace(spec.id, TABLES.get(spec.id, spec.id), rows)

    async def _read_all(self, spec: QuerySpec) -> list[Row]:
        convert = CONVERTERS.get(spec.id, plain_row)
        path, params = spec.render()
        rows: list[Row] = []
        async for page in iter_pages(
            self.client,
            path,
            params=params,
            page_size=self.page_size,
            annotations=spec.annotations or None,
            access=spec.access,
        ):
            rows.extend(convert(row) for row in page.rows)
            self.sink.progress(spec.id, len(page.rows))
        return rows

    async def _windowed(self, spec: QuerySpec, outcome: QueryOutcome) -> None:
        """The query over the scan window: one window first, cut by volume when more follow.

        The whole window is the first unit. Once its first page has been stored with the
        windows that cover the rest (`plan`), a resumed scan finds that unit done and pages on
        the windows that are not.
        """
        start = self.window.start_for(self.sink.watermark(spec.id))
        end = self.window.until
        whole = unit_of(start, end)
        point = self.sink.resume_point(spec.id, whole)
        if point is not None and point.done:
            parts = [
                (unit, window, resume.next_link)
                for unit, resume in self.sink.units(spec.id).items()
                if unit != whole and not resume.done and (window := window_of(unit)) is not None
            ]
            await run_all(self._page_on(spec, u, w, outcome, link) for u, w, link in parts)
        elif start < end:
            resume_from = point.next_link if point is not None else None
            await self._first_window(spec, (start, end), outcome, resume_from)
        outcome.watermark = end

    async def _first_window(
        self,
        spec: QuerySpec,
        window: tuple[datetime, datetime],
        outcome: QueryOutcome,
        resume_from: str | None,
    ) -> None:
        unit = unit_of(*window)
        pages = self._pages(spec, window, resume_from)
        try:
            first = await anext(pages)
            rest = None
            if first.next_link is not None and spec.window and resume_from is None:
                rest = rest_of_window(first.rows, spec.window, window[1])
            if rest is None:
                # One page, or a page that cannot tell what follows: page on by nextLink.
                await self._store(spec, unit, first.rows, first.next_link, outcome)
                async for page in pages:
                    await self._store(spec, unit, page.rows, page.next_link, outcome)
                return
        finally:
            await pages.aclose()
        log.debug("%s: %s cut into %d windows by volume", self.environment.id, spec.id, len(rest))
        plan = [unit_of(*part) for part in rest]
        kept = kept_rows(first.rows, spec.window, rest[0][0])
        await self._store(spec, unit, kept, None, outcome, read=len(first.rows), plan=plan)
        parts = zip(plan, rest, strict=True)
        await run_all(self._page_on(spec, u, part, outcome, None) for u, part in parts)

    async def _page_on(
        self,
        spec: QuerySpec,
        unit: str,
        window: tuple[datetime, datetime],
        outcome: QueryOutcome,
        resume_from: str | None,
    ) -> None:
        """Every page of one window, each stored with its checkpoint."""
        pages = self._pages(spec, window, resume_from)
        try:
            async for page in pages:
                await self._store(spec, unit, page.rows, page.next_link, outcome)
        finally:
            await pages.aclose()

    def _pages(
        self, spec: QuerySpec, window: tuple[datetime, datetime], resume_from: str | None
    ) -> AsyncGenerator[Page, None]:
        path, params = spec.render(start=window[0], end=window[1])
        return iter_pages(
            self.client,
            path,
            params=params,
            page_size=self.page_size,
            annotations=spec.annotations or None,
            access=spec.access,
            resume_from=resume_from,
        )

    async def _store(
        self,
        spec: QuerySpec,
        unit: str,
        rows: Sequence[Row],
        next_link: str | None,
        outcome: QueryOutcome,
        *,
        read: int | None = None,
        plan: Sequence[str] = (),
    ) -> None:
        convert = CONVERTERS.get(spec.id, plain_row)
        # Await first: `x += await ...` reads x before the await and loses concurrent adds.
        written = await self.sink.write(
            spec.id,
            unit,
            TABLES.get(spec.id, spec.id),
            [convert(row) for row in rows],
            next_link=next_link,
            done=next_link is None,
            plan=plan,
        )
        outcome.rows += written
        self.sink.progress(spec.id, len(rows) if read is None else read)

    def _warn_about_trace_setting(self, outcomes: list[QueryOutcome]) -> None:
        setting = self.trace_setting
        if setting == 2:
            return
        label = TRACE_SETTING.get(setting, "unknown") if setting is not None else "unknown"
        for outcome in outcomes:
            if outcome.query_id == "plugintracelogs" and outcome.status == COLLECTED:
                outcome.reason = (
                    f"plug-in trace logging is {label}: plug-in performance evidence will be "
                    "missing" + (" (only failures are logged)" if setting == 1 else "")
                )
                outcome.hint = TRACE_OFF_HINT
