"""Ground truth of a simulated tenant: expected row counts, metrics and the five verdicts.

The truth is computed from the generated frames at `tenant.now` (rows visible per
`model.VISIBLE_BY`; flow-API runs visible from their `start_time`), never hard-coded, so it
follows the data when the generator changes. It assumes one first scan that read everything:
the flow API available, action details for every run (an "action sample" covering all runs).
This docstring is the specification the analysis checks follow; `THRESHOLDS` holds the
defaults they use.

Definitions
-----------
- Enabled flow: flow API `state == "Started"`. Definition rules apply to enabled flows only.
- Container: the action map of the definition root, of a Scope / Foreach / Until, of each If
  branch (`actions`, `else.actions`), of each Switch case and its default. Nesting depth: an
  action of the root has depth 1, an action inside a container of a depth-k action has depth
  k + 1. Action count: every action at any depth (the trigger excluded).
- Consecutive actions: the actions of one container in runAfter order (a stable topological
  order). Signature of an action: its `type` plus, for connector calls, `apiId` name,
  `operationId`, the parameter names it sets and the table (`entityName`) or list
  (`dataset`|`table`) it targets; for HTTP the method; for variable actions the variable; a
  container's signature includes the sorted signatures of the actions it holds, and a
  container holding a call counts as a call.
- `runAfter` statuses are compared case-insensitively ("SUCCEEDED" = "Succeeded").
- Catch action: an action whose `runAfter` lists Failed or TimedOut, and not Succeeded, for
  some predecessor (an edge listing both tolerates an optional step). Its catch path: the
  action, everything nested in it, and every action of the same container that runs after it
  (transitively). A catch path reports the failure when it holds a Terminate with runStatus
  Failed or Cancelled, a Response, or an effect action (it writes the failure somewhere). An
  error-handling path exists when a flow has a catch action. (The simulated flows' catches
  are Try/Catch scopes; the analysis's full model, which also tells failures used as data
  from catches, is `auditor.analysis.failure_paths`.)
- Effect action (docs/how-a-scan-runs.md): a connector call whose operationId does not start with
  Get, List, Search, Retrieve or Read (nor is a trigger-style "On..." operation), an HTTP call
  whose method is not GET, a `Workflow` (child flow) call, a `Response`. Control actions, data
  operations and reads are not effects.
- Unnecessary run: a run in which every effect action is Skipped or absent from the run's
  action results (never reached, for example after a Terminate).
- Invoked flow: trigger `Request` of kind Http, PowerApp, PowerAppV2, Skills or VirtualAgent,
  or a flow whose
  workflowid some flow of the environment calls (`Workflow` action,
  `inputs.host.workflowReferenceName`).
- Retries exhausted: an action result with a non-empty `retryHistory` and status Failed.
- Runs: the flow API lists a run from its `start_time`; a run whose `end_time` is after `now`
  is Running, so run outcomes (failed, unnecessary, streaks, error messages, action results)
  count finished runs only, while `runs` counts every listed run.
- Percentiles: numpy `percentile(..., method="linear")`.

Verdict rules (per environment with Dataverse; precedence: any violation => do-not-check;
else a coverage gap => needs-review; else check). An environment without Dataverse is
needs-review for all five answers (plug-ins, system jobs and solution flows cannot be read).

trigger-conditions, violated when:
  - an enabled custom step (customizationlevel 1, statecode 0) on message Update has no
    filtering attributes; or
  - an enabled flow's Dataverse trigger (OpenApiConnectionWebhook, SubscribeWebhookTrigger)
    with `subscriptionRequest/message` 3, 4, 6 or 7 has neither filteringattributes,
    filterexpression nor trigger conditions; or
  - an enabled flow's event trigger (a connector trigger: OpenApiConnection / ApiConnection,
    webhook or notification, or Http; the Dataverse trigger included) is filtered by a gate:
    the first top-level action that is not Initialize variable or Compose (runAfter order) is
    an If whose expression reads trigger data (`trigger()`, `triggerBody()`,
    `triggerOutputs()`) and no action output or variable, and one of whose branches holds no
    effect action at any depth and either holds a Terminate directly or is followed by no
    effect action (at any depth) among the top-level actions after the If; or
  - an enabled flow whose trigger fires on updates (the Dataverse trigger with message 3, 4,
    6 or 7; SharePoint GetOnUpdatedItems / GetOnUpdatedFileItems) has no trigger condition
    and no filterexpression, and an action updates the same table (Dataverse operationId
    starting with Update, not ...WithOrganization, whose entityName is the trigger's
    entityname + "", "s" or "es", or y -> "ies") or list (SharePoint operationId starting with
    PatchItem, PatchFileItem or UpdateFile, on the same dataset and table), unless the
    trigger's filteringattributes leave out every `item/<column>` it writes (an UpdateRecord or
    UpdateOnlyRecord writing none passes them; other updates are taken to write one); or
  - a flow with at least `min_runs` runs has unnecessary runs / runs > `unnecessary_run_rate`.
return-results, violated when:
  - an enabled invoked flow has no Response action; or
  - an enabled flow has a catch path that does not report the failure (a handled failure
    reported as success); or
  - of the failed flow runs (status Failed) more than `missing_error_share` have no error
    message, or of the failed system jobs (statuscode 31; operationtype 1, 10, 79) more than
    `missing_error_share` have no message.
  Coverage gap: plug-in trace logging Off (plug-in failure detail unseen).
decomposed-steps, violated when:
  - an enabled flow has more than `max_actions` actions or more than `max_depth` containers
    nested around one action (its nesting depth minus one, as the designer shows it); or
  - an identical sequence of `repeated_sequence_length` consecutive action signatures, at
    least one of them a connector, HTTP or child-flow call, occurs in at least
    `repeated_sequence_flows` enabled flows of the environment (the simulated flows repeat
    no block inside one flow).
reliable-service, violated when:
  - a flow with at least `min_runs` runs has failed runs / runs > `failure_rate`; or
  - a flow has `failure_streak` consecutive failed runs (ordered by start time, then name), or
    a step has `failure_streak` consecutive failed async jobs (statuscode 31, ordered by
    createdon, then id); or
  - one action of one flow exhausted its retries in at least `exhausted_retry_runs` runs; or
  - an enabled flow has a connector, HTTP or child-flow action with `retryPolicy.type` none
    and no error-handling path; or
  - a step with at least `min_jobs` async jobs (operationtype 1) has failed jobs / jobs >
    `async_failure_rate`.
  Coverage gap: plug-in trace logging not All.
sufficient-performance, violated when:
  - a synchronous step (mode 0) with at least `min_executions` trace rows has p95
    performanceexecutionduration > `sync_p95_ms`; or
  - any trace row has performanceexecutionduration > `near_timeout_ms` (90 % of the 2-minute
    limit); or
  - the p95 queue latency (startedon - createdon) of completed (statecode 3) async plug-in jobs
    (operationtype 1) is above `queue_latency_p95_ms`; or
  - one action of one flow has p95 duration (over the runs where it ran) above
    `action_p95_ms`.
  Coverage gap, always in the truth: fewer than `min_scans_30d` scans in the last 30 days
  (performance is not evaluated continuously after one scan), so this answer is never check.

Expected profile of scale small, seed 7: Contoso Production do-not-check for all five;
Fabrikam Operations check for four and needs-review for sufficient-performance; Contoso Sales
Sandbox (trace Exception) do-not-check for trigger-conditions, needs-review for
reliable-service and sufficient-performance; Contoso Dev (trace Off) do-not-check for
decomposed-steps, needs-review for return-results, reliable-service, sufficient-performance;
Contoso Teams (no Dataverse) needs-review for all five.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditor.files import write_text
from auditor.sim.model import VISIBLE_BY, SimEnvironment, SimTenant
from auditor.sim.scenario import RUNS_VISIBLE_BY, generate, render_actions

THRESHOLDS: dict[str, float] = {
    "min_runs": 20,
    "unnecessary_run_rate": 0.5,
    "missing_error_share": 0.2,
    "max_actions": 60,
    "max_depth": 5,
    "repeated_sequence_length": 5,
    "repeated_sequence_flows": 3,
    "failure_rate": 0.2,
    "failure_streak": 10,
    "exhausted_retry_runs": 5,
    "min_jobs": 20,
    "async_failure_rate": 0.2,
    "min_executions": 20,
    "sync_p95_ms": 2000,
    "near_timeout_ms": 108_000,
    "queue_latency_p95_ms": 600_000,
    "action_p95_ms": 600_000,
    "min_scans_30d": 3,
}

ANSWERS = (
    "trigger-conditions",
    "return-results",
    "decomposed-steps",
    "reliable-service",
    "sufficient-performance",
)

# The entity sets the collector reads (queries/dataverse/*.odata) and their $filter, applied
# to visible rows to get the rows a first scan stores.
QUERY_SETS = (
    "organizations",
    "workflows",
    "callbackregistrations",
    "sdkmessageprocessingsteps",
    "plugintracelogs",
    "asyncoperations",
    "flowruns",
    "flowevents",
)

_CONNECTOR_TYPES = {
    "openapiconnection",
    "openapiconnectionwebhook",
    "apiconnection",
    "apiconnectionwebhook",
}
_READ_PREFIXES = ("get", "list", "search", "retrieve", "read", "on")
_EVENT_TYPES = {
    *("openapiconnection", "openapiconnectionwebhook", "openapiconnectionnotification"),
    *("apiconnection", "apiconnectionwebhook", "apiconnectionnotification", "http"),
    "httpwebhook",
}
_TRIGGER_READ = re.compile(r"\btrigger(?:Body|Outputs)?\(\s*\)", re.IGNORECASE)
_OTHER_READ = re.compile(
    r"\b(?:body|outputs|actions|items|result|iterationIndexes|variables)\(", re.IGNORECASE
)
_DV_API = "shared_commondataserviceforapps"
_SP_API = "shared_sharepointonline"
_FAIL_STATUSES = {"failed", "timedout"}


# Definition analysis ---------------------------------------------------------------------


def _kids(action: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The containers nested directly in an action."""
    out: list[Mapping[str, Any]] = []
    if isinstance(action.get("actions"), Mapping):
        out.append(action["actions"])
    for key in ("else", "default"):
        part = action.get(key)
        if isinstance(part, Mapping) and isinstance(part.get("actions"), Mapping):
            out.append(part["actions"])
    cases = action.get("cases")
    if isinstance(cases, Mapping):
        for case in cases.values():
            if isinstance(case, Mapping) and isinstance(case.get("actions"), Mapping):
                out.append(case["actions"])
    return out


def _containers(root: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield root
    for action in root.values():
        if isinstance(action, Mapping):
            for kid in _kids(action):
                yield from _containers(kid)


def _walk(root: Mapping[str, Any], depth: int = 1) -> Iterator[tuple[str, Mapping[str, Any], int]]:
    for name, action in root.items():
        if not isinstance(action, Mapping):
            continue
        yield name, action, depth
        for kid in _kids(action):
            yield from _walk(kid, depth + 1)


def _order(container: Mapping[str, Any]) -> list[str]:
    names = list(container)
    placed: list[str] = []
    seen: set[str] = set()
    while len(placed) < len(names):
        moved = False
        for name in names:
            if name in seen:
                continue
            preds = (
                (container[name].get("runAfter") or {})
                if isinstance(container[name], Mapping)
                else {}
            )
            if all(p in seen or p not in container for p in preds):
                placed.append(name)
                seen.add(name)
                moved = True
        if not moved:
            placed.extend(n for n in names if n not in seen)
            break
    return placed


def signature(action: Mapping[str, Any]) -> str:
    """What makes two actions "the same" step: type, connector operation (or HTTP method),
    the parameters it sets and the table or list it targets; a variable action's variable."""
    kind = str(action.get("type", ""))
    inputs = action.get("inputs") if isinstance(action.get("inputs"), Mapping) else {}
    assert isinstance(inputs, Mapping)
    params = inputs.get("parameters") if isinstance(inputs.get("parameters"), Mapping) else {}
    assert isinstance(params, Mapping)
    shape = ",".join(sorted(str(k) for k in params))
    target = str(params.get("entityName") or f"{params.get('dataset')}|{params.get('table')}")
    if kind.lower() in _CONNECTOR_TYPES:
        host = inputs.get("host") or {}
        api = str(host.get("apiId", "")).rsplit("/", 1)[-1]
        return f"{kind}:{api}:{host.get('operationId', '')}:{shape}:{target.lower()}"
    if kind.lower() == "http":
        return f"{kind}:{str(inputs.get('method', '')).upper()}"
    if kind.lower().endswith("variable"):
        variables = inputs.get("variables")
        first = variables[0] if isinstance(variables, list) and variables else inputs
        return f"{kind}:{str(first.get('name', '')).lower()}"
    return kind


def _external(action: Mapping[str, Any]) -> bool:
    """A connector, HTTP or child-flow call, or a container holding one."""
    if str(action.get("type", "")).lower() in _CONNECTOR_TYPES | {"http", "workflow"}:
        return True
    return any(
        _external(inner)
        for kid in _kids(action)
        for inner in kid.values()
        if isinstance(inner, Mapping)
    )


def _deep_signature(action: Mapping[str, Any]) -> str:
    """`signature`, and for a container the sorted signatures of what it holds."""
    inner = sorted(
        _deep_signature(a) for kid in _kids(action) for a in kid.values() if isinstance(a, Mapping)
    )
    own = signature(action)
    return f"{own}{{{'|'.join(inner)}}}" if inner else own


def is_effect(action: Mapping[str, Any]) -> bool:
    """Whether an action changes something (docs/how-a-scan-runs.md)."""
    kind = str(action.get("type", "")).lower()
    inputs = action.get("inputs") if isinstance(action.get("inputs"), Mapping) else {}
    assert isinstance(inputs, Mapping)
    if kind in _CONNECTOR_TYPES:
        op = str((inputs.get("host") or {}).get("operationId", "")).lower()
        return not op.startswith(_READ_PREFIXES)
    if kind == "http":
        return str(inputs.get("method", "GET")).upper() != "GET"
    return kind in ("workflow", "response")


def _fails_after(action: Mapping[str, Any]) -> bool:
    run_after = action.get("runAfter") or {}
    for statuses in run_after.values():
        lowered = {str(s).lower() for s in (statuses or [])}
        if lowered & _FAIL_STATUSES and "succeeded" not in lowered:
            return True
    return False


def _reports(action: Mapping[str, Any]) -> bool:
    """Terminate Failed / Cancelled, a Response, or an effect: the failure is reported."""
    inputs = action.get("inputs") or {}
    if str(action.get("type", "")).lower() == "terminate":
        return str(inputs.get("runStatus", "")).lower() in ("failed", "cancelled")
    return is_effect(action)


def _catch_paths(root: Mapping[str, Any]) -> list[list[Mapping[str, Any]]]:
    """Each catch action's path: itself, its nested actions and its successors in its container."""
    paths: list[list[Mapping[str, Any]]] = []
    for container in _containers(root):
        succ: dict[str, list[str]] = {n: [] for n in container}
        for name, action in container.items():
            for pred in (action.get("runAfter") or {}) if isinstance(action, Mapping) else {}:
                if pred in succ:
                    succ[pred].append(name)
        for name, action in container.items():
            if not isinstance(action, Mapping) or not _fails_after(action):
                continue
            todo, seen = [name], {name}
            while todo:
                for nxt in succ[todo.pop()]:
                    if nxt not in seen:
                        seen.add(nxt)
                        todo.append(nxt)
            members: list[Mapping[str, Any]] = []
            for n in seen:
                members.append(container[n])
                members.extend(a for _, a, _ in _walk({n: container[n]}) if a is not container[n])
            paths.append(members)
    return paths


def _trigger(definition: Mapping[str, Any]) -> Mapping[str, Any]:
    triggers = definition.get("triggers") or {}
    return next(iter(triggers.values()), {}) if isinstance(triggers, Mapping) else {}


def _is_dataverse_trigger(trigger: Mapping[str, Any]) -> bool:
    host = (trigger.get("inputs") or {}).get("host") or {}
    return str(host.get("operationId", "")) == "SubscribeWebhookTrigger" or str(
        host.get("apiId", "")
    ).endswith("shared_commondataserviceforapps")


def _type(action: Mapping[str, Any]) -> str:
    return str(action.get("type", "")).lower()


def _host(action: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]]:
    """(connector API name, operationId, parameters) of a connector action or trigger."""
    inputs = action.get("inputs") if isinstance(action.get("inputs"), Mapping) else {}
    assert isinstance(inputs, Mapping)
    host = inputs.get("host") or {}
    params = inputs.get("parameters") or {}
    return (
        str(host.get("apiId", "")).rsplit("/", 1)[-1],
        str(host.get("operationId", "")),
        params if isinstance(params, Mapping) else {},
    )


def _gated(trigger: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """The flow's event trigger is filtered by a gate (module docstring)."""
    if _type(trigger) not in _EVENT_TYPES:
        return False
    order = [n for n in _order(root) if isinstance(root[n], Mapping)]
    rest = [n for n in order if _type(root[n]) not in ("initializevariable", "compose")]
    if not rest or _type(root[rest[0]]) != "if" or "expression" not in root[rest[0]]:
        return False
    gate = root[rest[0]]
    text = json.dumps(gate["expression"])
    if not _TRIGGER_READ.search(text) or _OTHER_READ.search(text):
        return False
    later = order[order.index(rest[0]) + 1 :]
    effect_after = any(is_effect(a) for n in later for _, a, _ in _walk({n: root[n]}))
    other = gate.get("else") if isinstance(gate.get("else"), Mapping) else {}
    for body in (gate.get("actions"), other.get("actions")):
        body = body if isinstance(body, Mapping) else {}
        if any(is_effect(a) for _, a, _ in _walk(body)):
            continue
        ends = any(isinstance(a, Mapping) and _type(a) == "terminate" for a in body.values())
        if ends or not effect_after:
            return True
    return False


def _updates_own_trigger(trigger: Mapping[str, Any], root: Mapping[str, Any]) -> bool:
    """The flow updates the table or list whose updates trigger it, unguarded (docstring)."""
    api, operation, params = _host(trigger)
    if trigger.get("conditions") or params.get("subscriptionRequest/filterexpression"):
        return False
    actions = [a for _, a, _ in _walk(root)]
    if api == _DV_API and operation == "SubscribeWebhookTrigger":
        if params.get("subscriptionRequest/message") not in (3, 4, 6, 7):
            return False
        entity = str(params.get("subscriptionRequest/entityname", "")).lower()
        sets = {entity, entity + "s", entity + "es"}
        if entity.endswith("y"):
            sets.add(entity[:-1] + "ies")
        raw = str(params.get("subscriptionRequest/filteringattributes") or "")
        watched = {c.strip().lower() for c in raw.split(",") if c.strip()}
        for action in actions:
            a_api, a_op, a_params = _host(action)
            op = a_op.lower()
            if not (a_api == _DV_API and op.startswith("update")) or "withorganization" in op:
                continue
            if str(a_params.get("entityName", "")).lower() not in sets:
                continue
            written = {
                str(k)[5:].lower().removesuffix("@odata.bind")
                for k in a_params
                if str(k).startswith("item/")
            }
            if not watched or written & watched:
                return True
            if not written and op not in ("updaterecord", "updateonlyrecord"):
                return True
        return False
    if api == _SP_API and operation in ("GetOnUpdatedItems", "GetOnUpdatedFileItems"):
        key = (str(params.get("dataset", "")).rstrip("/").lower(), str(params.get("table", "")))
        for action in actions:
            a_api, a_op, a_params = _host(action)
            if a_api != _SP_API or not a_op.lower().startswith(
                ("patchitem", "patchfileitem", "updatefile")
            ):
                continue
            a_key = (
                str(a_params.get("dataset", "")).rstrip("/").lower(),
                str(a_params.get("table", "")),
            )
            if a_key == key:
                return True
    return False


class _FlowFacts:
    """What the definition rules need to know about one flow."""

    def __init__(self, definition: Mapping[str, Any]) -> None:
        root = definition.get("actions") or {}
        self.actions = list(_walk(root))
        self.count = len(self.actions)
        self.depth = max((dep for _, _, dep in self.actions), default=0)
        self.effects = {n for n, a, _ in self.actions if is_effect(a)}
        trig = _trigger(definition)
        self.trigger_type = str(trig.get("type", ""))
        self.trigger_kind = str(trig.get("kind", ""))
        self.conditions = bool(trig.get("conditions"))
        self.gated = _gated(trig, root)
        self.updates_own_trigger = _updates_own_trigger(trig, root)
        self.dataverse = _is_dataverse_trigger(trig)
        params = (trig.get("inputs") or {}).get("parameters") or {}
        self.dv_message = params.get("subscriptionRequest/message")
        self.dv_filtered = bool(params.get("subscriptionRequest/filteringattributes")) or bool(
            params.get("subscriptionRequest/filterexpression")
        )
        self.child_refs = {
            str(((a.get("inputs") or {}).get("host") or {}).get("workflowReferenceName"))
            for _, a, _ in self.actions
            if str(a.get("type", "")).lower() == "workflow"
        }
        self.has_response = any(
            str(a.get("type", "")).lower() == "response" for _, a, _ in self.actions
        )
        paths = _catch_paths(root)
        self.has_catch = bool(paths)
        reporting = [any(_reports(a) for a in path) for path in paths]
        self.swallowing = any(not r for r in reporting)
        self.no_retry = any(
            str(a.get("type", "")).lower() in _CONNECTOR_TYPES | {"http", "workflow"}
            and str(((a.get("inputs") or {}).get("retryPolicy") or {}).get("type", "")).lower()
            == "none"
            for _, a, _ in self.actions
        )
        self.windows: set[tuple[str, ...]] = set()
        for container in _containers(root):
            kept = [container[n] for n in _order(container) if isinstance(container[n], Mapping)]
            sigs = [_deep_signature(a) for a in kept]
            k = int(THRESHOLDS["repeated_sequence_length"])
            for i in range(len(sigs) - k + 1):
                if any(_external(a) for a in kept[i : i + k]):
                    self.windows.add(tuple(sigs[i : i + k]))


# Frames at "now" ------------------------------------------------------------------------------


def _ns(series: pd.Series) -> npt.NDArray[np.int64]:
    return series.to_numpy(dtype="datetime64[ns]").view(np.int64)


def visible(frame: pd.DataFrame, column: str | None, now_ns: int) -> pd.DataFrame:
    """Rows served at `now`: the visibility column at or before it (NaT never hides a row)."""
    if column is None or frame.empty:
        return frame
    values = _ns(frame[column])
    nat = np.iinfo(np.int64).min
    shown: pd.DataFrame = frame.loc[(values <= now_ns) | (values == nat)]
    return shown


def _query_rows(entity_set: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Apply the $filter of the collector's query file to visible rows."""
    if entity_set == "sdkmessageprocessingsteps":
        return frame[frame["customizationlevel"] == 1]
    if entity_set == "workflows":
        return frame[(frame["category"] == 5) & (frame["type"] == 1)]
    if entity_set == "asyncoperations":
        return frame[frame["operationtype"].isin([1, 10, 79])]
    if entity_set == "flowevents":
        return frame[frame["eventtype"] == "FlowRunIngestion"]
    return frame


def _p95(values: npt.NDArray[np.float64]) -> float | None:
    if len(values) == 0:
        return None
    return round(float(np.percentile(values, 95, method="linear")), 3)


def _max_streak(flags: npt.NDArray[np.bool_]) -> int:
    if not len(flags):
        return 0
    padded = np.concatenate([[0], flags.astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(padded))
    return int((edges[1::2] - edges[::2]).max()) if len(edges) else 0


def _iso(ns: int) -> str:
    return pd.Timestamp(ns, unit="ns", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


# Per environment ------------------------------------------------------------------------------


def _run_analysis(
    tenant: SimTenant, env: SimEnvironment, runs: pd.DataFrame, facts: dict[str, _FlowFacts]
) -> tuple[npt.NDArray[np.bool_], dict[tuple[str, str], int], dict[tuple[str, str], float]]:
    """Unnecessary flag per run, exhausted-retry counts and action p95 per (flow, action).

    Action results depend only on (flow, outcome, retry, variant), with times scaled to the
    run; so one rendered run per group gives the statuses and each action's share of the run
    duration for the whole group.
    """
    unnecessary = np.zeros(len(runs), dtype=bool)
    exhausted: dict[tuple[str, str], int] = {}
    durations: dict[tuple[str, str], list[npt.NDArray[np.float64]]] = {}
    if runs.empty:
        return unnecessary, exhausted, {}
    flows = env.flows.set_index("name", drop=False)
    start = _ns(runs["start_time"])
    length = (_ns(runs["end_time"]) - start).astype(np.float64)
    keys = ["flow_name", "_sim_outcome", "_sim_retry", "_sim_variant"]
    positions = np.arange(len(runs))
    for key, idx in runs.assign(_pos=positions).groupby(keys, sort=True)["_pos"]:
        rows = idx.to_numpy()
        flow_name = str(key[0])
        flow = flows.loc[flow_name]
        first = runs.iloc[int(rows[0])]
        actions = render_actions(
            tenant,
            env,
            {str(k): v for k, v in flow.items()},
            {str(k): v for k, v in first.items()},
        )
        effects = facts[flow_name].effects
        ran = [n for n in effects if n in actions and actions[n]["status"] != "Skipped"]
        unnecessary[rows] = not ran
        run_len = max(float(length[rows[0]]), 1.0)
        for name, result in actions.items():
            if result.get("retryHistory") and result["status"] == "Failed":
                exhausted[(flow_name, name)] = exhausted.get((flow_name, name), 0) + len(rows)
            if result["status"] == "Skipped":
                continue
            a_len = float(
                pd.Timestamp(result["endTime"]).value - pd.Timestamp(result["startTime"]).value
            )
            share = a_len / run_len
            durations.setdefault((flow_name, name), []).append(length[rows] * share / 1e6)
    p95 = {
        k: float(np.percentile(np.concatenate(v), 95, method="linear"))
        for k, v in durations.items()
    }
    return unnecessary, exhausted, p95


def _environment(tenant: SimTenant, env: SimEnvironment, now_ns: int) -> dict[str, Any]:
    t = THRESHOLDS
    flows = env.flows
    runs = env.runs
    runs = runs[_ns(runs[RUNS_VISIBLE_BY]) <= now_ns].reset_index(drop=True) if len(runs) else runs
    facts = {
        str(n): _FlowFacts(json.loads(str(dfn)))
        for n, dfn in zip(flows["name"], flows["definition"], strict=True)
    }
    enabled = {str(n) for n, s in zip(flows["name"], flows["state"], strict=True) if s == "Started"}
    tables = {k: visible(v, VISIBLE_BY.get(k), now_ns) for k, v in env.tables.items()}
    trace_setting: int | None = None
    if env.has_dataverse:
        trace_setting = int(tables["organizations"]["plugintracelogsetting"].iloc[0])

    row_counts: dict[str, int] = {}
    if env.has_dataverse:
        for entity_set in QUERY_SETS:
            row_counts[entity_set] = len(_query_rows(entity_set, tables[entity_set]))
    row_counts["flows"] = len(flows)
    row_counts["flow_runs"] = len(runs)
    table_rows = {k: len(v) for k, v in sorted(tables.items())}

    # Runs and actions.
    # A run still going at "now" is listed as Running: only finished runs have an outcome.
    finished = (_ns(runs["end_time"]) <= now_ns) if len(runs) else np.zeros(0, dtype=bool)
    unnecessary = np.zeros(len(runs), dtype=bool)
    done = runs[finished].reset_index(drop=True)
    done_unnecessary, exhausted, action_p95 = _run_analysis(tenant, env, done, facts)
    unnecessary[np.flatnonzero(finished)] = done_unnecessary
    failed = (
        ((runs["status"] == "Failed").to_numpy() & finished)
        if len(runs)
        else np.zeros(0, dtype=bool)
    )
    per_flow: dict[str, dict[str, Any]] = {}
    run_flow = runs["flow_name"].to_numpy().astype(str) if len(runs) else np.zeros(0, dtype=str)
    order = (
        np.lexsort((runs["name"].to_numpy().astype(str), _ns(runs["start_time"]), run_flow))
        if len(runs)
        else np.zeros(0, dtype=np.int64)
    )
    streaks: dict[str, int] = {}
    sorted_flow = run_flow[order]
    sorted_failed = failed[order]
    bounds = (
        np.flatnonzero(np.r_[True, sorted_flow[1:] != sorted_flow[:-1], True])
        if len(sorted_flow)
        else np.zeros(0, dtype=np.int64)
    )
    for lo, hi in pairwise(bounds):
        streaks[str(sorted_flow[lo])] = _max_streak(sorted_failed[lo:hi])
    for name, display in zip(flows["name"], flows["display_name"], strict=True):
        mine = run_flow == name
        per_flow[str(name)] = {
            "display_name": str(display),
            "runs": int(mine.sum()),
            "failed_runs": int((failed & mine).sum()),
            "unnecessary_runs": int((unnecessary & mine).sum()),
        }

    f: dict[str, Any] = {}
    # trigger-conditions
    steps = tables.get("sdkmessageprocessingsteps", pd.DataFrame())
    messages = tables.get("sdkmessages", pd.DataFrame())
    if env.has_dataverse:
        msg_name = dict(zip(messages["sdkmessageid"], messages["name"], strict=True))
        step_msg = steps["_sdkmessageid_value"].map(msg_name)
        live_custom = (steps["customizationlevel"] == 1) & (steps["statecode"] == 0)
        unfiltered = live_custom & (step_msg == "Update") & steps["filteringattributes"].isna()
        f["unfiltered_update_steps"] = sorted(
            steps.loc[unfiltered.fillna(False), "sdkmessageprocessingstepid"].tolist()
        )
    else:
        f["unfiltered_update_steps"] = []
    f["unfiltered_dataverse_update_triggers"] = sorted(
        n
        for n in enabled
        if facts[n].dataverse
        and facts[n].dv_message in (3, 4, 6, 7)
        and not facts[n].dv_filtered
        and not facts[n].conditions
    )
    f["gated_event_triggers"] = sorted(n for n in enabled if facts[n].gated)
    f["self_triggering_flows"] = sorted(n for n in enabled if facts[n].updates_own_trigger)
    f["noisy_flows"] = sorted(
        n
        for n, m in per_flow.items()
        if m["runs"] >= t["min_runs"]
        and m["unnecessary_runs"] / m["runs"] > t["unnecessary_run_rate"]
    )
    # return-results
    called = set().union(*(facts[n].child_refs for n in enabled)) if enabled else set()
    wid = dict(zip(flows["name"], flows["workflowid"], strict=True))
    invoked = [
        n
        for n in enabled
        if (
            facts[n].trigger_type.lower() == "request"
            and facts[n].trigger_kind.lower()
            in ("http", "powerapp", "powerappv2", "skills", "virtualagent")
        )
        or (wid[n] is not None and wid[n] in called)
    ]
    f["invoked_flows_without_response"] = sorted(n for n in invoked if not facts[n].has_response)
    f["flows_reporting_handled_failure_as_success"] = sorted(
        n for n in enabled if facts[n].swallowing
    )
    n_failed = int(failed.sum())
    bare = int((failed & runs["error_message"].isna().to_numpy()).sum()) if len(runs) else 0
    f["failed_runs"] = n_failed
    f["failed_runs_without_message"] = bare
    jobs = tables.get("asyncoperations", pd.DataFrame())
    if env.has_dataverse:
        jobs = _query_rows("asyncoperations", jobs)
        failed_jobs = jobs[jobs["statuscode"] == 31]
        f["failed_jobs"] = len(failed_jobs)
        f["failed_jobs_without_message"] = int(failed_jobs["message"].isna().sum())
    else:
        f["failed_jobs"] = 0
        f["failed_jobs_without_message"] = 0
    # decomposed-steps
    f["monolithic_flows"] = sorted(
        n
        for n in enabled
        if facts[n].count > t["max_actions"] or facts[n].depth - 1 > t["max_depth"]
    )
    window_flows: dict[tuple[str, ...], set[str]] = {}
    for n in enabled:
        for w in facts[n].windows:
            window_flows.setdefault(w, set()).add(n)
    repeated = sorted(
        w for w, fl in window_flows.items() if len(fl) >= t["repeated_sequence_flows"]
    )
    f["repeated_sequences"] = [list(w) for w in repeated]
    f["flows_with_repeated_sequences"] = sorted(
        set().union(*(window_flows[w] for w in repeated)) if repeated else set()
    )
    # reliable-service
    f["high_failure_flows"] = sorted(
        n
        for n, m in per_flow.items()
        if m["runs"] >= t["min_runs"] and m["failed_runs"] / m["runs"] > t["failure_rate"]
    )
    f["failure_streak_flows"] = sorted(n for n, s in streaks.items() if s >= t["failure_streak"])
    f["exhausted_retry_actions"] = sorted(
        f"{fl}/{a}" for (fl, a), c in exhausted.items() if c >= t["exhausted_retry_runs"]
    )
    f["no_retry_without_error_path"] = sorted(
        n for n in enabled if facts[n].no_retry and not facts[n].has_catch
    )
    step_metrics: dict[str, dict[str, Any]] = {}
    f["failing_async_steps"] = []
    f["failure_streak_steps"] = []
    f["slow_sync_steps"] = []
    f["near_timeout_executions"] = 0
    queue_p95: float | None = None
    f["unmeasured_autodelete_steps"] = []
    f["failing_workflows"] = []
    f["failure_streak_workflows"] = []
    if env.has_dataverse:
        # Outcomes per completed job (statecode 3), in creation order. A step that deletes its
        # successful jobs (asyncautodelete) is judged by its asynchronous trace rows when
        # trace logging is All, and cannot be judged otherwise (its jobs are its failures).
        autodelete = set(
            steps.loc[
                steps["asyncautodelete"].fillna(False).astype(bool) & (steps["mode"] == 1),
                "sdkmessageprocessingstepid",
            ].astype(str)
        )
        op1 = jobs[(jobs["operationtype"] == 1) & (jobs["statecode"] == 3)]
        outcomes: dict[str, npt.NDArray[np.bool_]] = {}
        owner = op1["_owningextensionid_value"].to_numpy().astype(str)
        status = op1["statuscode"].to_numpy(dtype=np.int64, na_value=0)
        o = np.lexsort(
            (op1["asyncoperationid"].to_numpy().astype(str), _ns(op1["createdon"]), owner)
        )
        for sid in dict.fromkeys(owner[o].tolist()):
            if sid not in autodelete:
                outcomes[sid] = status[o][owner[o] == sid] == 31
        traced = tables["plugintracelogs"]
        traced = traced[traced["mode"] == 1]
        t_owner = traced["pluginstepid"].to_numpy().astype(str)
        t_fail = traced["exceptiondetails"].notna().to_numpy()
        t_order = np.lexsort(
            (
                traced["plugintracelogid"].to_numpy().astype(str),
                _ns(traced["performanceexecutionstarttime"]),
                t_owner,
            )
        )
        for sid in sorted(autodelete):
            if trace_setting == 2:
                outcomes[sid] = t_fail[t_order][t_owner[t_order] == sid]
            else:
                f["unmeasured_autodelete_steps"].append(sid)
        for sid, fails in outcomes.items():
            if len(fails) >= t["min_jobs"] and fails.mean() > t["async_failure_rate"]:
                f["failing_async_steps"].append(sid)
            if _max_streak(fails) >= t["failure_streak"]:
                f["failure_streak_steps"].append(sid)
        # Classic background workflows (operationtype 10): completed jobs per workflow.
        op10 = jobs[(jobs["operationtype"] == 10) & (jobs["statecode"] == 3)]
        wf = op10["_workflowactivationid_value"].to_numpy().astype(str)
        wf_status = op10["statuscode"].to_numpy(dtype=np.int64, na_value=0)
        w_order = np.lexsort(
            (op10["asyncoperationid"].to_numpy().astype(str), _ns(op10["createdon"]), wf)
        )
        for wid in dict.fromkeys(wf[w_order].tolist()):
            fails = wf_status[w_order][wf[w_order] == wid] == 31
            if len(fails) >= t["min_jobs"] and fails.mean() > t["async_failure_rate"]:
                f["failing_workflows"].append(wid)
            if _max_streak(fails) >= t["failure_streak"]:
                f["failure_streak_workflows"].append(wid)
        done = op1[(op1["statecode"] == 3) & op1["startedon"].notna() & op1["createdon"].notna()]
        latency = (_ns(done["startedon"]) - _ns(done["createdon"])) / 1e6
        queue_p95 = _p95(latency.astype(np.float64))
        traces = tables["plugintracelogs"]
        dur = traces["performanceexecutionduration"].to_numpy(dtype=np.float64, na_value=np.nan)
        f["near_timeout_executions"] = int((dur > t["near_timeout_ms"]).sum())
        by_step = traces["pluginstepid"].to_numpy().astype(str)
        custom = steps[steps["customizationlevel"] == 1]
        for sid, name, mode in zip(
            custom["sdkmessageprocessingstepid"], custom["name"], custom["mode"], strict=True
        ):
            values = dur[by_step == sid]
            p = _p95(values)
            step_metrics[str(sid)] = {"name": str(name), "executions": len(values), "p95_ms": p}
            if (
                mode == 0
                and len(values) >= t["min_executions"]
                and p is not None
                and p > t["sync_p95_ms"]
            ):
                f["slow_sync_steps"].append(str(sid))
    f["failing_async_steps"].sort()
    f["failure_streak_steps"].sort()
    f["slow_sync_steps"].sort()
    f["queue_latency_p95_ms"] = queue_p95
    f["slow_flow_actions"] = sorted(
        f"{fl}/{a}" for (fl, a), p in action_p95.items() if p > t["action_p95_ms"]
    )

    # The auditor keys a flow by its Dataverse workflowid where it has one (a solution flow),
    # else by its flow API name: the truth names flows the same way.
    key = {
        str(n): (str(w).lower() if isinstance(w, str) and w else str(n))
        for n, w in zip(flows["name"], flows["workflowid"], strict=True)
    }
    per_flow = {key[n]: m for n, m in per_flow.items()}
    noisiest = sorted(
        (n for n, m in per_flow.items() if m["unnecessary_runs"] > 0),
        key=lambda n: (-per_flow[n]["unnecessary_runs"], n),
    )[:10]
    for name in _FLOW_FACTS:
        f[name] = sorted(key[n] for n in f[name])
    for name in ("exhausted_retry_actions", "slow_flow_actions"):
        f[name] = sorted(f"{key[fl]}/{a}" for fl, _, a in (x.partition("/") for x in f[name]))

    verdicts, reasons = _verdicts(env, trace_setting, f)
    return {
        "id": env.env_id,
        "name": env.display_name,
        "slug": env.slug,
        "has_dataverse": env.has_dataverse,
        "trace_setting": trace_setting,
        "row_counts": row_counts,
        "table_rows": table_rows,
        "verdicts": verdicts,
        "verdict_reasons": reasons,
        "metrics": {
            "queue_latency_p95_ms": queue_p95,
            "flows": per_flow,
            "steps": step_metrics,
            "noisiest_flows": noisiest,
        },
        "facts": f,
    }


# Facts that list flows (by key).
_FLOW_FACTS = (
    "unfiltered_dataverse_update_triggers",
    "gated_event_triggers",
    "self_triggering_flows",
    "noisy_flows",
    "invoked_flows_without_response",
    "flows_reporting_handled_failure_as_success",
    "monolithic_flows",
    "flows_with_repeated_sequences",
    "high_failure_flows",
    "failure_streak_flows",
    "no_retry_without_error_path",
)


def _count(items: list[Any], text: str) -> list[str]:
    return [f"{len(items)} {text}"] if items else []


def _verdicts(
    env: SimEnvironment, trace_setting: int | None, f: Mapping[str, Any]
) -> tuple[dict[str, str], dict[str, list[str]]]:
    t = THRESHOLDS
    if not env.has_dataverse:
        reason = ["no Dataverse: plug-ins, system jobs and solution flows cannot be audited"]
        return ({a: "needs-review" for a in ANSWERS}, {a: list(reason) for a in ANSWERS})
    violations: dict[str, list[str]] = {
        "trigger-conditions": [
            *_count(
                f["unfiltered_update_steps"],
                "enabled custom Update step(s) without filtering attributes",
            ),
            *_count(
                f["unfiltered_dataverse_update_triggers"],
                "Dataverse update trigger(s) without filter or condition",
            ),
            *_count(
                f["gated_event_triggers"],
                "event trigger(s) filtered by the flow's first Condition instead of a trigger "
                "condition",
            ),
            *_count(
                f["self_triggering_flows"],
                "flow(s) updating the table or list whose updates trigger them",
            ),
            *_count(
                f["noisy_flows"],
                f"flow(s) with unnecessary-run rate above {t['unnecessary_run_rate']:.0%}",
            ),
        ],
        "return-results": [
            *_count(
                f["invoked_flows_without_response"],
                "invoked flow(s) without a response on every path",
            ),
            *_count(
                f["flows_reporting_handled_failure_as_success"],
                "flow(s) whose catch path reports failure as success",
            ),
        ],
        "decomposed-steps": [
            *_count(f["monolithic_flows"], "monolithic flow(s)"),
            *_count(f["repeated_sequences"], "action sequence(s) repeated across flows"),
        ],
        "reliable-service": [
            *_count(
                f["high_failure_flows"],
                f"flow(s) failing more than {t['failure_rate']:.0%} of runs",
            ),
            *_count(f["failure_streak_flows"], "flow(s) with a streak of failed runs"),
            *_count(f["failure_streak_steps"], "step(s) with a streak of failed jobs"),
            *_count(f["exhausted_retry_actions"], "action(s) exhausting retries repeatedly"),
            *_count(
                f["no_retry_without_error_path"], "flow(s) with retry policy none and no error path"
            ),
            *_count(
                f["failing_async_steps"],
                f"async step(s) failing more than {t['async_failure_rate']:.0%} of jobs",
            ),
            *_count(
                f["failing_workflows"],
                f"background workflow(s) failing more than {t['async_failure_rate']:.0%} of jobs",
            ),
            *_count(f["failure_streak_workflows"], "workflow(s) with a streak of failed jobs"),
        ],
        "sufficient-performance": [
            *_count(f["slow_sync_steps"], "synchronous step(s) with p95 above 2 s"),
            *(
                [f"{f['near_timeout_executions']} plug-in execution(s) near the 2-minute limit"]
                if f["near_timeout_executions"]
                else []
            ),
            *(
                ["async queue latency p95 above 10 minutes"]
                if f["queue_latency_p95_ms"] is not None
                and f["queue_latency_p95_ms"] > t["queue_latency_p95_ms"]
                else []
            ),
            *_count(f["slow_flow_actions"], "flow action(s) with p95 above 10 minutes"),
        ],
    }
    share = t["missing_error_share"]
    if f["failed_runs"] and f["failed_runs_without_message"] / f["failed_runs"] > share:
        violations["return-results"].append(
            f"{f['failed_runs_without_message']} of {f['failed_runs']} failed runs carry no "
            "error message"
        )
    if f["failed_jobs"] and f["failed_jobs_without_message"] / f["failed_jobs"] > share:
        violations["return-results"].append(
            f"{f['failed_jobs_without_message']} of {f['failed_jobs']} failed system jobs "
            "carry no message"
        )
    gaps: dict[str, list[str]] = {a: [] for a in ANSWERS}
    if trace_setting == 0:
        gaps["return-results"].append("plug-in trace logging is Off: failure detail unseen")
    if trace_setting != 2:
        gaps["reliable-service"].append("plug-in trace logging is not All: executions unseen")
    if f["unmeasured_autodelete_steps"]:
        gaps["reliable-service"].append(
            f"{len(f['unmeasured_autodelete_steps'])} async step(s) auto-delete their successful "
            "jobs and have no full trace: their failure rate cannot be measured"
        )
    gaps["sufficient-performance"].append(
        f"fewer than {int(t['min_scans_30d'])} scans in the last 30 days: performance is not "
        "evaluated continuously"
    )
    verdicts: dict[str, str] = {}
    reasons: dict[str, list[str]] = {}
    for answer in ANSWERS:
        if violations[answer]:
            verdicts[answer], reasons[answer] = "do-not-check", violations[answer]
        elif gaps[answer]:
            verdicts[answer], reasons[answer] = "needs-review", gaps[answer]
        else:
            verdicts[answer], reasons[answer] = "check", ["no violation found"]
    return verdicts, reasons


def compute_truth(tenant: SimTenant) -> dict[str, Any]:
    """The expected counts, metrics and verdicts of the tenant at `tenant.now`."""
    now_ns = int(pd.Timestamp(tenant.now).value)
    return {
        "seed": tenant.seed,
        "scale": tenant.scale,
        "now": _iso(now_ns),
        "tenant_id": tenant.tenant_id,
        "thresholds": dict(THRESHOLDS),
        "environments": [_environment(tenant, env, now_ns) for env in tenant.environments],
    }


def write_truth(seed: int, scale: str, path: Path) -> None:
    """Generate the tenant and write its ground truth as JSON (UTF-8, stable key order),
    atomically and owner-only like every file the auditor writes (`auditor.files`)."""
    truth = compute_truth(generate(seed, scale))
    write_text(path, json.dumps(truth, indent=2, ensure_ascii=False) + "\n")
