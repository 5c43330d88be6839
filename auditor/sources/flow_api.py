"""Power Automate management API (`Microsoft.ProcessSimple`, api-version 2016-11-01).

Microsoft does not support this API ("use it at your own risk";
https://learn.microsoft.com/power-automate/manage-flows-with-code), but it is the only source
of flows outside solutions and of per-action results with `retryHistory`. So it is optional
(`apis.flow_enabled`), labelled as unsupported in every scan, and read sparingly.
It is read through the administrator routes (`scopes/admin/environments/{env}/...`), which see
every maker's flows; the maker routes list only the caller's own flows, and an app owns none
(pnp/cli-microsoft365 flow-list.ts and run-list.ts, `--asAdmin`). An app reaches the admin
routes once registered as a Power Platform management application
(https://learn.microsoft.com/power-platform/admin/powerplatform-api-create-service-principal).
- every flow of the environment, solution flows included (`include=includeSolutionCloudFlows`),
  each keyed by its Dataverse workflowid where it has one (`properties.workflowEntityId`), so
  its history does not split if its flow API name changes; definitions are fetched only for
  flows outside solutions (the others come from Dataverse `workflows.clientdata`);
- each flow's runs in the scan window;
- for a bounded sample of runs per flow (all failed runs first, then a seeded random draw of
  the rest, `--action-sample N`), the run with every action's status, times, error and
  retry history. The sample and its size are stored so rates carry confidence intervals.
  A later scan draws its sample from the runs new since the last one.
The rows and the sample are built in `flow_api_rows`; batched writes are `batching`.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

import pandas as pd

from auditor.http import ApiClient, get_json
from auditor.odata import iter_pages
from auditor.queries import Catalog
from auditor.sources.base import (
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
from auditor.sources.batching import UnitBatch, run_all
from auditor.sources.flow_api_rows import action_rows, choose_sample, flow_row, run_row

log = logging.getLogger(__name__)

QUERIES = ("flows", "flow_runs", "flow_run_actions")
UNSUPPORTED_NOTE = (
    "The Power Automate management API (api.flow.microsoft.com) is not supported by "
    "Microsoft; its flows, runs and action results are used as evidence but may change."
)


class FlowApiSource:
    """Reads one environment's flows, runs and a sample of action results into a sink."""

    def __init__(
        self,
        client: ApiClient,
        catalog: Catalog,
        sink: Sink,
        environment: Environment,
        window: ScanWindow,
        *,
        scan_id: int,
        action_sample: int = 50,
        dataverse_read: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.client = client  # base URL: the flow API root
        self.catalog = catalog
        self.sink = sink
        self.environment = environment
        self.window = window
        self.scan_id = scan_id
        self.action_sample = action_sample
        # Awaited before a later scan chooses the flows to page: the choice reads this scan's
        # Dataverse run history, which the environment's Dataverse source is still writing.
        self.dataverse_read = dataverse_read
        self.flow_names: list[str] = []  # the flows' keys
        self.api_names: dict[str, str] = {}  # key -> name in the flow API's URLs
        self.workflow_ids: dict[str, str | None] = {}

    async def collect(self) -> list[QueryOutcome]:
        """Flows, then runs per flow, then the action sample; failures are outcomes."""
        flows = await self._run("flows", self._flows)
        if flows.status == NOT_COLLECTED:
            return [flows] + [
                QueryOutcome(
                    q,
                    self.environment.id,
                    status=NOT_COLLECTED,
                    reason=f"not attempted: {flows.reason}",
                    hint=flows.hint,
                )
                for q in ("flow_runs", "flow_run_actions")
            ]
        runs = await self._run("flow_runs", self._runs)
        if self.action_sample <= 0:
            actions = QueryOutcome(
                "flow_run_actions",
                self.environment.id,
                status=NOT_COLLECTED,
                reason="action sampling is off (--action-sample 0)",
                hint="Sample runs (the default is 50 per flow) to measure unnecessary runs "
                "and retries.",
            )
        else:
            actions = await self._run("flow_run_actions", self._actions)
        return [flows, runs, actions]

    async def _run(
        self, query_id: str, read: Callable[[QueryOutcome], Awaitable[None]]
    ) -> QueryOutcome:
        # The flow list is read again on resume: the other queries need its flow names.
        if query_id != "flows" and self.sink.finished(query_id):
            return resumed(query_id, self.environment.id)
        return await run_query(query_id, self.environment.id, read)

    async def _flows(self, outcome: QueryOutcome) -> None:
        spec = self.catalog["flows"]
        path, params = spec.render(environment=self.environment.id)
        rows: list[Row] = []
        async for page in iter_pages(self.client, path, params=params, access=spec.access):
            rows.extend(flow_row(item) for item in page.rows)
            self.sink.progress(spec.id, len(page.rows))
        rows = [row for row in rows if row["api_name"]]
        # Definitions of flows outside solutions come only from this API; one that has not
        # changed since the last scan is kept rather than read again.
        stored = self.sink.flow_activity(self._start(), self.window.until).definitions
        outside = [row for row in rows if not row["workflowid"] and row["flow_name"]]
        changed = []
        for row in outside:
            modified, definition = stored.get(str(row["flow_name"]), (None, None))
            if definition and modified is not None and _same_time(modified, row):
                row["definition"] = definition
            else:
                changed.append(row)
        await asyncio.gather(*(self._definition(row) for row in changed))
        self.flow_names = sorted(str(row["flow_name"]) for row in rows)
        self.api_names = {str(row["flow_name"]): str(row["api_name"]) for row in rows}
        self.workflow_ids = {
            str(row["flow_name"]): str(row["workflowid"]).lower() if row["workflowid"] else None
            for row in rows
        }
        outcome.rows = await self.sink.replace(spec.id, "flows", rows)

    async def _definition(self, row: Row) -> None:
        spec = self.catalog["flow_definition"]
        path, params = spec.render(environment=self.environment.id, flow=str(row["api_name"]))
        body = await get_json(self.client, path, params=params, access=spec.access)
        if isinstance(body, dict):
            definition = as_object(body.get("properties")).get("definition")
            row["definition"] = json.dumps(definition) if isinstance(definition, dict) else None

    def _start(self) -> datetime:
        return self.window.start_for(self.sink.watermark("flow_runs"))

    def _flows_to_page(self, start: datetime) -> dict[str, datetime]:
        """The flows whose runs may have changed, each with where its listing starts.

        The first scan pages every flow. Later scans page a solution flow only when the
        supported Dataverse run history shows it ran (or, with an ingestion gap reported, or
        no run history read, every flow); flows outside solutions have no such signal and are
        always paged; a flow with a run still `Running` is paged from that run's start; a
        scheduled flow is paged when its next run is due (its newest run plus its recurrence
        interval), because Dataverse records a run only minutes after it ends.
        A run of an instant or HTTP-called solution flow that starts in those last minutes and
        is not recorded yet is read by the next scan.
        """
        activity = self.sink.flow_activity(start, self.window.until)
        page_all = (
            self._pages_every_flow() or activity.ingestion_gaps or not activity.flowruns_collected
        )
        chosen: dict[str, datetime] = {}
        for flow in self.flow_names:
            workflow = self.workflow_ids.get(flow)
            since = activity.running_since.get(flow)
            last = activity.last_run.get(flow)
            every = (
                recurrence_interval(activity.solution_definitions.get(workflow, ""))
                if workflow
                else None
            )
            due = every is not None and (last is None or last + every <= self.window.until)
            if (
                page_all
                or workflow is None
                or workflow in activity.active_workflows
                or since is not None
                or due
            ):
                chosen[flow] = min(start, since) if since is not None else start
        return chosen

    def _pages_every_flow(self) -> bool:
        """A first scan (or one with `--since`) pages every flow, whatever Dataverse says."""
        return self.window.since is not None or self.sink.watermark("flow_runs") is None

    async def _runs(self, outcome: QueryOutcome) -> None:
        spec = self.catalog["flow_runs"]
        if self.dataverse_read is not None and not self._pages_every_flow():
            await self.dataverse_read()
        plan = self._flows_to_page(self._start())

        batch = UnitBatch(self.sink, "flow_api_runs")

        async def one(flow: str) -> None:
            # An interrupted scan re-reads at most the few pages of the flows not yet stored.
            resume = self.sink.resume_point(spec.id, flow)
            if resume is not None and resume.done:
                return
            path, params = spec.render(
                environment=self.environment.id,
                flow=self.api_names.get(flow, flow),
                start=plan[flow],
                end=self.window.until,
            )
            rows: list[Row] = []
            async for page in iter_pages(self.client, path, params=params, access=spec.access):
                rows.extend(run_row(flow, item) for item in page.rows)
                self.sink.progress(spec.id, len(page.rows))
            # A flow's runs are done together; many flows share one transaction.
            written = await batch.add(spec.id, flow, rows)
            outcome.rows += written

        try:
            await run_all(one(flow) for flow in plan)
        finally:
            outcome.rows += await batch.flush()
        outcome.watermark = self.window.until

    async def _actions(self, outcome: QueryOutcome) -> None:
        spec = self.catalog["flow_run_actions"]
        # The sample is drawn from the runs that are new since the last scan: the overlap
        # re-read to catch late rows belongs to the last scan's population, which was
        # sampled then (counting it twice would also bias the rates' estimates).
        start = self.window.new_since(self.sink.watermark("flow_runs"))
        actions = UnitBatch(self.sink, "flow_run_actions", also="action_samples")
        stored = self.sink.runs(start, self.window.until)

        async def one(flow: str) -> None:
            runs = stored.get(flow, [])
            rng = random.Random(f"{self.scan_id}:{self.environment.id}:{flow}")
            sample, sampled_failed = choose_sample(runs, self.action_sample, rng)
            resume = self.sink.resume_point(spec.id, flow)
            if resume is not None and resume.done:
                return
            # The sample's actions and its description are stored together, with the
            # flow's checkpoint: a resumed scan never describes a sample it did not draw.
            fetched = await asyncio.gather(*(self._run_actions(flow, run) for run in sample))
            described = {
                "flow_name": flow,
                "runs_in_window": len(runs),
                "failed_in_window": sum(status == "Failed" for _, status in runs),
                "sampled": len(sample),
                "sampled_failed": sampled_failed,
            }
            written = await actions.add(
                spec.id, flow, [row for found in fetched for row in found], [described]
            )
            outcome.rows += written

        try:
            await run_all(one(flow) for flow in self.flow_names)
        finally:
            outcome.rows += await actions.flush()

    async def _run_actions(self, flow: str, run: str) -> list[Row]:
        spec = self.catalog["flow_run_actions"]
        path, params = spec.render(
            environment=self.environment.id, flow=self.api_names.get(flow, flow), run=run
        )
        body = await get_json(self.client, path, params=params, access=spec.access)
        found = action_rows(flow, run, body if isinstance(body, dict) else {})
        self.sink.progress(spec.id, len(found))
        return found


_FREQUENCIES = {
    "second": timedelta(seconds=1),
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "month": timedelta(days=28),  # the shortest month: never later than the real due time
}


def recurrence_interval(clientdata: str) -> timedelta | None:
    """How often a scheduled flow runs (its trigger's `recurrence`), None if not scheduled.

    Recurrence triggers and polling triggers both carry `recurrence {frequency, interval}`
    (https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-actions-triggers).
    """
    if "recurrence" not in clientdata:
        return None
    try:
        document = json.loads(clientdata)
    except ValueError:
        return None
    definition = as_object(as_object(as_object(document).get("properties")).get("definition"))
    for trigger in as_object(definition.get("triggers")).values():
        recurrence = as_object(as_object(trigger).get("recurrence"))
        unit = _FREQUENCIES.get(str(recurrence.get("frequency", "")).lower())
        interval = recurrence.get("interval", 1)
        if unit is not None and isinstance(interval, int) and interval > 0:
            return unit * interval
    return None


def _same_time(stored: datetime, row: Row) -> bool:
    """Whether a flow's lastModifiedTime equals the stored one (to the microsecond)."""
    value = row.get("last_modified_time")
    if not isinstance(value, str):
        return False
    try:
        current = pd.Timestamp(value)
    except (TypeError, ValueError):
        return False
    if pd.isna(current):
        return False
    if current.tzinfo is None:
        current = current.tz_localize("UTC")
    return bool(current.floor("us") == pd.Timestamp(stored).tz_convert("UTC").floor("us"))
