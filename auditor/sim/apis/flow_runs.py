"""The flow API's runs: a flow's run list (filtered, paged) and one run with its actions.

Runs show from their start and, until their end at the tenant's clock, as Running without an
outcome; a run's actions are rendered on demand (`scenario.render_actions` unless the server
was given another renderer).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
from starlette.requests import Request

from auditor.sim import odata
from auditor.sim.apis.common import Context, RenderActions, Reply, error_reply, json_reply, stamp7
from auditor.sim.model import SimEnvironment

FLOW_ID_PREFIX = "/providers/Microsoft.ProcessSimple/environments"


class FlowRuns:
    """Run lists and single runs, with the indexes kept per runs frame and clock."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._run_index: dict[tuple[str, int, datetime], dict[str, np.ndarray[Any, Any]]] = {}
        self._run_names: dict[tuple[str, int], dict[str, int]] = {}
        self._run_cache: dict[tuple[str, int], dict[str, list[Any]]] = {}
        self._arrays: dict[int, tuple[pd.DataFrame, dict[str, Any]]] = {}

    def _row(self, frame: pd.DataFrame, position: int) -> dict[str, Any]:
        """Row `position` of a frame as a dict, read from its columns' arrays (no copy, kept
        per frame): 10 us against 29 us for a pandas row, three of which a run's read took."""
        found = self._arrays.get(id(frame))
        if found is None or found[0] is not frame:
            if len(self._arrays) > 16:  # frames of an earlier clock
                self._arrays.clear()
            found = (frame, {str(c): frame[c].array for c in frame.columns})
            self._arrays[id(frame)] = found
        return {c: values[position] for c, values in found[1].items()}

    def _runs_by_flow(self, env: SimEnvironment, now: datetime) -> dict[str, np.ndarray[Any, Any]]:
        """Visible runs per flow, newest first, computed once per clock value."""
        runs = env.runs
        key = (env.env_id, id(runs), now)
        found = self._run_index.get(key)
        if found is not None:
            return found
        if len(runs) == 0 or "flow_name" not in runs.columns:
            return {}
        limit = pd.Timestamp(now)
        start = runs["start_time"]
        # The flow API lists a run from its start; until its end it shows as Running.
        visible = odata.fill_mask(start <= limit)
        positions = np.flatnonzero(visible)
        flows = runs["flow_name"].astype(str).to_numpy()[positions]
        start_ns = start.to_numpy(dtype="datetime64[ns]").astype(np.int64)[positions]
        names = pd.factorize(runs["name"].astype(str).to_numpy()[positions], sort=True)[0]
        order = np.lexsort((-names, -start_ns, flows))
        positions, flows = positions[order], flows[order]
        result: dict[str, np.ndarray[Any, Any]] = {}
        if len(positions):
            cuts = np.flatnonzero(flows[1:] != flows[:-1]) + 1
            for chunk in np.split(positions, cuts):
                result[str(runs["flow_name"].iloc[int(chunk[0])]).lower()] = chunk
        if len(self._run_index) > 8:
            self._run_index.clear()
        self._run_index[key] = result
        return result

    def run_list(
        self, request: Request, env: SimEnvironment, flow: str, params: Mapping[str, str]
    ) -> Reply:
        """A page of a flow's visible runs, newest first, after `$filter` and `$top`."""
        page_number, offset, snapshot = 1, 0, odata.utc(self.context.tenant.now)
        if "$skiptoken" in params:
            page_number, offset, snapshot = odata.decode_skiptoken(params["$skiptoken"])
        positions = self._runs_by_flow(env, snapshot).get(flow.lower(), np.zeros(0, dtype=np.int64))
        if "$filter" in params and len(positions):
            node = odata.parse_filter(params["$filter"])
            _check_run_filter(node)
            subset = env.runs.iloc[positions]

            def column(name: str) -> pd.Series:
                return subset[_RUN_FIELDS[name.lower()]]

            positions = positions[odata.FilterEvaluator(len(subset), column).mask(node)]
        elif "$filter" in params:
            _check_run_filter(odata.parse_filter(params["$filter"]))
        if "$top" in params:
            if not params["$top"].isdigit() or int(params["$top"]) < 1:
                raise odata.ODataError(
                    f"The value '{params['$top']}' of query parameter '$top' is not valid."
                )
            positions = positions[: int(params["$top"])]
        size = self.context.limits.run_page
        chunk = positions[offset : offset + size]
        body: dict[str, Any] = {"value": self._run_objects(env, chunk, snapshot)}
        if offset + size < len(positions):
            token = odata.encode_skiptoken(page_number + 1, offset + size, snapshot)
            body["nextLink"] = odata.next_link(
                f"{self.context.base_url}{request.url.path}", request.url.query, token
            )
        return json_reply(200, body)

    def _run_columns(self, env: SimEnvironment) -> dict[str, list[Any]]:
        """The runs frame as JSON-ready lists, built once per frame: a page or a single run
        then costs list lookups, not a pandas slice per request."""
        key = (env.env_id, id(env.runs))
        columns = self._run_cache.get(key)
        if columns is None:
            runs = env.runs
            columns = {
                "start_time": odata.format_timestamps(runs["start_time"], 7),
                "end_time": odata.format_timestamps(runs["end_time"], 7),
            }
            for name in runs.columns:
                if not str(name).startswith("_sim_") and name not in columns:
                    columns[str(name)] = odata.json_values(runs[name])
            self._run_cache[key] = columns
        return columns

    def _run_objects(
        self, env: SimEnvironment, positions: np.ndarray[Any, Any], now: datetime
    ) -> list[dict[str, Any]]:
        # Shape: Logic Apps WorkflowRun, https://learn.microsoft.com/rest/api/logic/workflowruns/get
        if len(positions) == 0:
            return []
        columns = self._run_columns(env)
        starts, ends = columns["start_time"], columns["end_time"]
        now_text = stamp7(now)
        out = []
        for i in (int(p) for p in positions):
            value = {c: v[i] for c, v in columns.items()}
            flow, run = str(value["flow_name"]), str(value["name"])
            props: dict[str, Any] = {"startTime": starts[i]}
            end = ends[i]
            ended = end is not None and now_text is not None and end <= now_text
            if ended:
                props["endTime"] = end
                props["status"] = value.get("status")
            else:
                # Not finished at the tenant's clock: no end, no outcome yet.
                props["status"] = "Running"
            if ended and value.get("code") is not None:
                props["code"] = value["code"]
            if ended and (
                value.get("error_code") is not None or value.get("error_message") is not None
            ):
                props["error"] = {
                    "code": value.get("error_code"),
                    "message": value.get("error_message"),
                }
            props["correlation"] = {"clientTrackingId": value.get("client_tracking_id")}
            props["trigger"] = {
                "name": value.get("trigger_name"),
                "startTime": starts[i],
                "endTime": starts[i],
                "correlation": {"clientTrackingId": value.get("client_tracking_id")},
                "code": "OK",
                "status": "Succeeded",
            }
            out.append(
                {
                    "name": run,
                    "id": f"{FLOW_ID_PREFIX}/{env.env_id}/flows/{flow}/runs/{run}",
                    "type": "Microsoft.ProcessSimple/environments/flows/runs",
                    "properties": props,
                }
            )
        return out

    def run_get(
        self,
        env: SimEnvironment,
        flow_position: int,
        flow: str,
        run: str,
        params: Mapping[str, str],
    ) -> Reply:
        """One visible run; with `$expand=properties/actions`, its actions so far."""
        runs = env.runs
        names_key = (env.env_id, id(runs))
        names = self._run_names.get(names_key)
        if names is None:
            names = {str(n): i for i, n in enumerate(runs["name"].tolist())} if len(runs) else {}
            # One entry per environment's runs frame: kept, not cleared, as requests for
            # several environments interleave.
            self._run_names[names_key] = names
        position = names.get(run)
        not_found = error_reply(
            404, "WorkflowRunNotFound", f"The workflow '{flow}' run '{run}' could not be found."
        )
        if position is None:
            return not_found
        row = self._row(runs, position)
        if str(row["flow_name"]).lower() != flow.lower():
            return not_found
        now = odata.utc(self.context.tenant.now)
        if not _run_visible(row, now):
            return not_found
        body = self._run_objects(env, np.asarray([position]), now)[0]
        expand = params.get("$expand", "")
        if expand:
            if expand.replace(" ", "") != "properties/actions":
                raise odata.ODataError(
                    f"The value '{expand}' of query parameter '$expand' is not valid."
                )
            actions = self._actions(env, flow_position, row)
            if body["properties"]["status"] == "Running":
                actions = _actions_so_far(actions, stamp7(now) or "")
            if "repetitioncount" not in params.get("include", "").lower():
                # The portal asks `include=repetitionCount` to see how often a loop action
                # ran; without it the count is left out (inferred from the portal's requests
                # as third-party tools record them; no Microsoft page documents it).
                actions = {
                    name: {k: v for k, v in action.items() if k != "repetitionCount"}
                    if isinstance(action, Mapping)
                    else action
                    for name, action in actions.items()
                }
            body["properties"]["actions"] = dict(actions)
        return json_reply(200, body)

    def _actions(
        self, env: SimEnvironment, flow_position: int, run: Mapping[str, Any]
    ) -> Mapping[str, Any]:
        render = self.context.render_actions or _scenario_render_actions()
        return render(self.context.tenant, env, self._row(env.flows, flow_position), run)


# Filter fields of the runs list (Logic Apps: Status, StartTime, ClientTrackingId).
_RUN_FIELDS = {
    "status": "status",
    "starttime": "start_time",
    "clienttrackingid": "client_tracking_id",
}


def _check_run_filter(node: odata.Node) -> None:
    """The runs API takes `field op literal` clauses joined by `and`, nothing else."""
    if isinstance(node, odata.BoolOp) and node.op == "and":
        _check_run_filter(node.left)
        _check_run_filter(node.right)
        return
    if (
        isinstance(node, odata.Compare)
        and isinstance(node.left, odata.Column)
        and isinstance(node.right, odata.Literal)
        and node.left.name.lower() in _RUN_FIELDS
    ):
        field_name = node.left.name.lower()
        if field_name == "starttime" and node.right.kind not in ("datetime", "date"):
            raise odata.ODataError(
                "startTime is compared with a datetime literal such as 2026-11-08T12:00:00Z."
            )
        if field_name != "starttime" and (node.op != "eq" or node.right.kind != "string"):
            raise odata.ODataError(f"{node.left.name} is filtered with eq and a quoted string.")
        return
    raise odata.ODataError(
        "The runs filter supports status eq '<status>', startTime ge|gt|le|lt <datetime> and "
        "clientTrackingId eq '<id>', joined by 'and'."
    )


def _scenario_render_actions() -> RenderActions:
    """The generator's renderer, imported late: it owns the action results of its runs."""
    from auditor.sim import scenario

    return scenario.render_actions


def _run_visible(run: Mapping[str, Any], now: datetime) -> bool:
    """A run shows from its start (until it ends it is listed as Running)."""
    start = run.get("start_time")
    return not (start is None or pd.isna(start) or start > pd.Timestamp(now))


def _actions_so_far(actions: Mapping[str, Any], now_text: str) -> dict[str, Any]:
    """The actions of a run still going at `now`: started ones only, unfinished as Running.

    Times are compared as text: both sides are ISO 8601 UTC with seven fractional digits.
    """
    shown: dict[str, Any] = {}
    for name, action in actions.items():
        if not isinstance(action, Mapping):
            continue
        start = action.get("startTime")
        if isinstance(start, str) and start > now_text:
            continue
        end = action.get("endTime")
        if isinstance(end, str) and end > now_text:
            action = {
                k: v
                for k, v in action.items()
                if k not in ("endTime", "code", "error", "outputsLink", "retryHistory")
            }
            action["status"] = "Running"
        shown[name] = action
    return shown
