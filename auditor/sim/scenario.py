"""The scenario generator: a whole simulated tenant from a seed and a scale.

Everything is derived from `numpy.random.PCG64` streams keyed by (seed, scale, environment,
purpose), never from the clock or Python's `hash()`, so the same seed and scale give identical
frames and a different seed gives a different tenant. Rows are built column-wise with numpy
(the `large` scale has about a million trace logs); only flows and plug-in steps, a few hundred
per environment, are Python objects.

The parts agree with each other the way a real tenant's do (design.md section 9):
- every solution flow has a `workflows` row whose `clientdata` holds the definition the flow
  API serves; Dataverse-triggered flows that are on have a `callbackregistrations` row
  (`name` = the flow's workflowid: our inference, the documented columns do not say which
  flow a registration belongs to);
- a run's status comes from playing its definition for the run's intended outcome
  (`definitions.execute`), and `render_actions` plays the same definition to build the action
  results, so a Failed run always has a Failed action and an unnecessary run has its effect
  actions Skipped;
- each Dataverse-triggered run has a CallbackRegistration Expander system job (operationtype 79)
  whose `correlationid` equals the run's `client_tracking_id` and whose
  `_workflowactivationid_value` is the flow's workflowid (both our documented inference for
  linking); flows with trigger conditions also have jobs that started no run;
- the Dataverse `flowruns` of solution flows are the flow API's runs (same name, times, status),
  recorded when the run ends plus an ingestion delay;
- async plug-in executions are system jobs (operationtype 1, `_owningextensionid_value` = the
  step) and, when trace logging allows, trace logs with the same correlation id; some
  transactions chain three synchronous steps at depth 1, 2, 3, an async job and a
  Dataverse-triggered flow run under one correlation id.

Sources for the shapes: reference/power-automate-apis.md and reference/dataverse-plugins.md;
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/plugintracelog
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/callbackregistration
https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from auditor.sim import definitions as d
from auditor.sim.jobs import jobs_at
from auditor.sim.model import SCALES, VISIBLE_BY, SimEnvironment, SimTenant
from auditor.sim.names import (
    COLUMNS,
    ENTITIES,
    ERROR_MESSAGES,
    FLOW_NAMES,
    HOSTILE,
    PLUGIN_CLASSES,
    guid,
    guids,
    run_names,
)

NOW = datetime(2026, 11, 15, 12, 0, 0, tzinfo=UTC)
START = NOW - timedelta(days=7) + timedelta(hours=1)
END = NOW + timedelta(hours=12)
NS = 1_000_000_000
NOW_NS = int(NOW.timestamp()) * NS
START_NS = int(START.timestamp()) * NS
END_NS = int(END.timestamp()) * NS
NAT = np.iinfo(np.int64).min
# The flow API lists a run from its start (the truth counts runs the same way).
RUNS_VISIBLE_BY = "start_time"

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]
OBJ = npt.NDArray[np.object_]


@dataclass(frozen=True)
class Scale:
    """Sizes per Dataverse environment."""

    flows: int  # cloud flows
    runs: int  # mean runs per flow (heavy-tailed)
    steps: int  # custom plug-in steps
    executions: int  # plug-in executions (before the trace setting hides some)
    nodv_flows: int  # flows of the environment without Dataverse


SCALE_PARAMS: Mapping[str, Scale] = {
    "tiny": Scale(flows=8, runs=20, steps=6, executions=260, nodv_flows=3),
    "small": Scale(flows=100, runs=60, steps=40, executions=15_000, nodv_flows=8),
    "medium": Scale(flows=200, runs=120, steps=60, executions=60_000, nodv_flows=16),
    "large": Scale(flows=250, runs=500, steps=80, executions=500_000, nodv_flows=20),
}


@dataclass(frozen=True)
class Profile:
    """What kind of environment to build: its name, settings and where violations go."""

    key: str  # messy | gaps | clean | dev | nodv
    display_name: str
    sku: str
    slug: str
    has_dataverse: bool
    trace_setting: int | None  # plugintracelogsetting: 0 Off, 1 Exception, 2 All


PROFILES: Mapping[str, Profile] = {
    "messy": Profile("messy", "Contoso Production", "Production", "contoso-production", True, 2),
    "gaps": Profile("gaps", "Contoso Sales Sandbox", "Sandbox", "contoso-sales-sandbox", True, 1),
    "clean": Profile("clean", "Fabrikam Operations", "Production", "fabrikam-operations", True, 2),
    "dev": Profile("dev", "Contoso Dev", "Developer", "contoso-dev", True, 0),
    "nodv": Profile("nodv", "Contoso Teams", "Default", "contoso-teams", False, None),
}


def profiles_for(scale: str) -> list[Profile]:
    """The environments of a scale: tiny keeps one messy, one clean and one without Dataverse."""
    keys = ["messy", "clean", "nodv"] if scale == "tiny" else list(PROFILES)
    return [PROFILES[k] for k in keys]


def _rng(seed: int, scale: str, *keys: int) -> np.random.Generator:
    """An independent stream per purpose, so adding rows in one part never shifts another."""
    entropy = [int(seed) & 0xFFFFFFFF, SCALES.index(scale), *keys]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


# Column builders with the dtypes of model.py ------------------------------------------------


def _ts(values: npt.ArrayLike) -> pd.Series:
    arr = np.asarray(values, dtype=np.int64).view("M8[ns]")
    return pd.Series(pd.DatetimeIndex(arr).tz_localize("UTC"))


def _int(values: npt.ArrayLike, null: npt.ArrayLike | None = None) -> pd.Series:
    arr = np.asarray(values, dtype=np.int64)
    mask = np.zeros(len(arr), dtype=bool) if null is None else np.asarray(null, dtype=bool)
    return pd.Series(pd.arrays.IntegerArray(arr, mask))


def _obj(values: Sequence[Any] | OBJ) -> pd.Series:
    arr = np.empty(len(values), dtype=object)
    arr[:] = list(values) if not isinstance(values, np.ndarray) else values
    return pd.Series(arr, dtype=object)


def _bool(values: npt.ArrayLike) -> pd.Series:
    return pd.Series(pd.array(np.asarray(values, dtype=bool), dtype="boolean"))


def _const(value: Any, n: int) -> pd.Series:
    arr = np.empty(n, dtype=object)
    arr[:] = [value] * n
    return pd.Series(arr, dtype=object)


def _masked(mask: npt.NDArray[np.bool_], values: OBJ | str) -> OBJ:
    """Text where `mask` holds, None elsewhere."""
    out = np.full(len(mask), None, dtype=object)
    out[mask] = values[mask] if isinstance(values, np.ndarray) else values
    return out


def _secs(ns: I64) -> I64:
    """Dataverse keeps whole seconds."""
    out = (ns // NS) * NS
    return np.where(ns == NAT, NAT, out).astype(np.int64)


def _frame(columns: Mapping[str, pd.Series]) -> pd.DataFrame:
    return pd.DataFrame(dict(columns))


# Flows ---------------------------------------------------------------------------------------


@dataclass
class _Flow:
    name: str
    display: str
    workflowid: str | None
    spec: d.FlowSpec
    state: str = "Started"
    runs: int = 0
    noop: float = 0.0
    fail: float = 0.0
    streak: int = 0
    exhausted: int = 0
    recovered: float = 0.0
    cancel: float = 0.0
    seconds: float = 8.0  # median run duration
    false_trigger_ratio: float = 0.0  # trigger jobs that find the trigger condition false
    chain: bool = False
    built: d.BuiltFlow | None = None
    created_ns: int = 0
    modified_ns: int = 0
    child_calls: dict[str, str] = field(default_factory=dict)  # action name -> workflowid


@dataclass
class _Step:
    sid: str
    name: str
    message: str
    entity: str
    stage: int
    mode: int
    rank: int
    filtering: str | None
    state: int
    custom: int
    type_index: int
    weight: float = 1.0
    min_exec: int = 0
    median_ms: float = 120.0
    sigma: float = 0.5
    fail: float = 0.01
    streak: int = 0
    near_timeout: int = 0
    role: str = ""


_COND_DV = "@not(equals(triggerOutputs()?['body/statecode'], 1))"
_COND_SP = "@not(equals(triggerOutputs()?['body/{IsFolder}'], true))"
_COND_MAIL = "@contains(triggerOutputs()?['body/subject'], 'Invoice')"


class _EnvBuilder:
    """Builds one environment; holds its random streams and intermediate state."""

    def __init__(self, seed: int, scale: str, index: int, profile: Profile, env_id: str) -> None:
        self.seed, self.scale, self.index = seed, scale, index
        self.profile = profile
        self.sc = SCALE_PARAMS[scale]
        self.env_id = env_id
        self.messy = profile.key == "messy"
        self.r_flows = _rng(seed, scale, index, 1)
        self.r_defs = _rng(seed, scale, index, 2)
        self.r_runs = _rng(seed, scale, index, 3)
        self.r_steps = _rng(seed, scale, index, 4)
        self.r_exec = _rng(seed, scale, index, 5)
        self.r_jobs = _rng(seed, scale, index, 6)
        self.flows: list[_Flow] = []
        self.steps: list[_Step] = []
        self.tables: dict[str, pd.DataFrame] = {}
        self.job_plan = pd.DataFrame()
        self.chain_ns: I64 = np.zeros(0, dtype=np.int64)
        self.chain_corr: OBJ = np.zeros(0, dtype=object)
        self.owner = guid(self.r_flows)

    # -- flows ---------------------------------------------------------------------------

    def _display(self, used: set[str], hostile_share: float) -> str:
        rng = self.r_flows
        base = FLOW_NAMES[int(rng.integers(0, len(FLOW_NAMES)))]
        if rng.random() < hostile_share:
            base = f"{base} {HOSTILE[int(rng.integers(0, len(HOSTILE)))]}"
        name, i = base, 1
        while name in used:
            i += 1
            name = f"{base} ({i})"
        used.add(name)
        return name

    def _filler_spec(self, children: list[str]) -> tuple[d.FlowSpec, dict[str, float]]:
        rng = self.r_flows
        messy = self.messy
        trigger = str(
            rng.choice(
                ["dataverse"] * 4
                + ["recurrence"] * 2
                + ["sharepoint", "outlook", "http", "powerapp"]
            )
        )
        kw: dict[str, Any] = {"role": "filler", "trigger": trigger}
        rates: dict[str, float] = {}
        if trigger == "dataverse":
            entity = str(rng.choice(ENTITIES))
            message = int(rng.choice([1, 3, 3, 4, 2, 6, 7]))
            kw["dv_entity"], kw["dv_message"] = entity, message
            if message in (3, 4, 6, 7) and not (messy and rng.random() < 0.2):
                cols = COLUMNS[entity]
                how = int(rng.integers(0, 4))
                if how in (0, 2):
                    picks = rng.choice(len(cols), size=min(2, len(cols)), replace=False)
                    kw["dv_filtering"] = ",".join(cols[i] for i in sorted(picks.tolist()))
                if how in (1, 2):
                    kw["dv_filterexpr"] = f"{cols[0]} ne null"
                if how == 3:
                    kw["conditions"] = (_COND_DV,)
                    rates["false_trigger"] = float(rng.uniform(0.3, 1.5))
        elif trigger in ("sharepoint", "outlook") and not (messy and rng.random() < 0.3):
            kw["conditions"] = (_COND_SP if trigger == "sharepoint" else _COND_MAIL,)
        invoked = trigger in ("http", "powerapp")
        if invoked:
            kw["response"] = "full"
            kw["error_handling"] = "trycatch"
        elif messy:
            kw["error_handling"] = str(
                rng.choice(["trycatch", "trycatch", "none", "none", "swallow"])
            )
        else:
            kw["error_handling"] = "trycatch" if rng.random() < 0.7 else "none"
        if trigger in ("dataverse", "sharepoint", "outlook", "recurrence") and rng.random() < 0.5:
            # A first-action gate ending the run (a trigger-condition candidate) only in messy
            # profiles; clean ones wrap their effects in a condition after a read.
            kw["noop"] = "if" if rng.random() < 0.8 or not messy else "terminate"
        kw["body"] = int(rng.integers(1, 5 if messy else 3))
        kw["effects"] = int(rng.integers(1, 4 if messy else 3))
        if rng.random() < 0.15 and (messy or kw["error_handling"] == "trycatch"):
            kw["http_retry_none"] = True
        kw["custom_retry"] = bool(rng.random() < 0.2)
        kw["throttle"] = bool(rng.random() < 0.15)
        if rng.random() < 0.15:
            kw["foreach"] = int(rng.integers(5, 60))
            kw["sequential"] = bool(rng.random() < 0.5)
        if children and rng.random() < 0.1:
            kw["children"] = (children[int(rng.integers(0, len(children)))],)
        kw["upper"] = messy and bool(rng.random() < 0.3)
        kw["max_container"] = 99 if messy else 4
        if not messy:
            kw["effects"] = min(kw["effects"], 1 if kw.get("children") else 2)
            kw["body"] = 1 if kw.get("response") == "full" else kw["body"]
        if kw.get("noop"):
            rates["noop"] = (
                float(rng.uniform(0.05, 0.6)) if messy else float(rng.uniform(0.02, 0.15))
            )
        rates["fail"] = float(rng.uniform(0, 0.15 if messy else 0.04))
        if kw["throttle"]:
            rates["recovered"] = float(rng.uniform(0.05, 0.25))
        return d.FlowSpec(**kw), rates

    def _cast(self) -> list[tuple[d.FlowSpec, dict[str, float], str | None]]:
        """Flows with a purpose in this profile: (spec, rates, display name or None)."""
        key = self.profile.key
        child = d.FlowSpec(
            role="child-flow",
            trigger="button",
            response="full",
            body=1,
            effects=1,
            max_container=4,
        )
        if key == "messy":
            return [
                (child, {}, "Log run to audit table <img src=x onerror=alert(1)>"),
                (
                    d.FlowSpec(
                        role="noisy-update",
                        trigger="dataverse",
                        dv_entity="account",
                        dv_message=3,
                        noop="if",
                        error_handling="none",
                        body=2,
                        effects=2,
                        upper=True,
                    ),
                    {"noop": 0.85, "fail": 0.02, "runs_min": 60, "runs_factor": 4.0, "chain": 1.0},
                    "Sync accounts to ERP <script>alert(1)</script>",
                ),
                (
                    d.FlowSpec(
                        role="unconditioned-sharepoint",
                        trigger="sharepoint",
                        noop="terminate",
                        repeated_block=True,
                        body=1,
                        effects=1,
                    ),
                    {"noop": 0.3, "fail": 0.03, "runs_min": 30, "solution": 0.0},
                    "Rechnungsprüfung – Eingang",
                ),
                (
                    d.FlowSpec(
                        role="no-failure-response",
                        trigger="powerapp",
                        response="success_only",
                        error_handling="none",
                        effects=2,
                    ),
                    {"fail": 0.08, "runs_min": 25},
                    "請求書の承認",
                ),
                (
                    d.FlowSpec(
                        role="swallowing-catch",
                        trigger="outlook",
                        conditions=(_COND_MAIL,),
                        error_handling="swallow",
                        repeated_block=True,
                        effects=1,
                    ),
                    {"fail": 0.1, "runs_min": 25},
                    '=HYPERLINK("http://x","y") Invoice intake',
                ),
                (
                    d.FlowSpec(role="monolith", trigger="recurrence", monolith=True),
                    {"fail": 0.05, "runs_min": 24, "seconds": 180.0},
                    "Nightly everything job",
                ),
                (
                    d.FlowSpec(
                        role="flaky-http",
                        trigger="recurrence",
                        error_handling="none",
                        http_retry_none=True,
                        effects=0,
                        body=1,
                    ),
                    {"fail": 0.35, "streak": 12, "runs_min": 40, "runs_factor": 2.0},
                    "Push orders to ERP +cmd|' /C calc'!A0",
                ),
                (
                    d.FlowSpec(
                        role="throttled-connector",
                        trigger="dataverse",
                        dv_entity="cr4f1_shipment",
                        dv_message=1,
                        repeated_block=True,
                        throttle=True,
                        custom_retry=True,
                        effects=1,
                        failure_message="Shipment sync failed: <img src=x onerror=alert(1)>",
                    ),
                    {"fail": 0.04, "recovered": 0.25, "exhausted": 8, "runs_min": 40, "child": 1.0},
                    "出荷ステータス更新",
                ),
                (
                    d.FlowSpec(
                        role="slow-approval",
                        trigger="dataverse",
                        dv_entity="quote",
                        dv_message=4,
                        dv_filtering="statuscode",
                        conditions=(_COND_DV,),
                        approval=True,
                        effects=1,
                    ),
                    {
                        "fail": 0.03,
                        "cancel": 0.04,
                        "runs_min": 30,
                        "seconds": 2700.0,
                        "false_trigger": 1.0,
                        "child": 1.0,
                    },
                    "Quote approval – Genehmigung",
                ),
                (
                    d.FlowSpec(
                        role="disabled-unfiltered",
                        trigger="dataverse",
                        dv_entity="lead",
                        dv_message=3,
                        effects=1,
                    ),
                    {"stopped": 1.0},
                    "Lead enrichment (old)",
                ),
            ]
        if key == "gaps":
            return [
                (child, {}, None),
                (
                    d.FlowSpec(
                        role="unfiltered-update",
                        trigger="dataverse",
                        dv_entity="opportunity",
                        dv_message=3,
                        noop="if",
                        effects=1,
                        max_container=4,
                    ),
                    {"noop": 0.3, "fail": 0.02, "runs_min": 40, "runs_factor": 2.0},
                    "Notify sales on opportunity change",
                ),
            ]
        if key == "clean":
            return [
                (child, {}, None),
                (
                    d.FlowSpec(
                        role="invoked-http",
                        trigger="http",
                        response="full",
                        effects=1,
                        max_container=4,
                    ),
                    {"fail": 0.02, "runs_min": 25},
                    None,
                ),
                (
                    d.FlowSpec(
                        role="conditioned-sharepoint",
                        trigger="sharepoint",
                        conditions=(_COND_SP,),
                        effects=1,
                        max_container=4,
                    ),
                    {"fail": 0.01, "runs_min": 25},
                    None,
                ),
                (
                    d.FlowSpec(
                        role="throttled-recovering",
                        trigger="dataverse",
                        dv_entity="incident",
                        dv_message=1,
                        throttle=True,
                        custom_retry=True,
                        effects=1,
                        max_container=4,
                    ),
                    {"fail": 0.01, "recovered": 0.3, "runs_min": 30},
                    None,
                ),
            ]
        if key == "dev":
            return [
                (child, {}, None),
                (
                    d.FlowSpec(role="monolith", trigger="recurrence", monolith=True),
                    {"fail": 0.02, "runs_min": 24, "seconds": 150.0},
                    "Everything in one flow (prototype)",
                ),
            ]
        return []

    def build_flows(self) -> None:
        rng = self.r_flows
        used: set[str] = set()
        hostile_share = 0.15 if self.messy else 0.05
        plans: list[tuple[d.FlowSpec, dict[str, float], str | None]] = []
        child_ids: list[str] = []
        if not self.profile.has_dataverse:
            for i in range(self.sc.nodv_flows):
                trig = ("sharepoint", "recurrence", "button", "outlook")[i % 4]
                conds = {"sharepoint": (_COND_SP,), "outlook": (_COND_MAIL,)}.get(trig, ())
                spec = d.FlowSpec(
                    role="teams-flow", trigger=trig, conditions=conds, max_container=4
                )
                plans.append((spec, {"fail": 0.03, "solution": 0.0}, None))
            pre_ids = [guid(rng) for _ in plans]
        else:
            plans = self._cast()
            # Workflow ids of child flows are needed before their parents are built.
            pre_ids = [guid(rng) for _ in plans]
            child_ids = [
                wid
                for (spec, _, _), wid in zip(plans, pre_ids, strict=True)
                if spec.role == "child-flow"
            ]
            for _ in range(max(0, self.sc.flows - len(plans))):
                spec, rates = self._filler_spec(child_ids)
                if rng.random() < 0.2:
                    rates["solution"] = 0.0
                if rng.random() < (0.05 if self.messy else 0.03):
                    rates["stopped"] = 1.0
                plans.append((spec, rates, None))
                pre_ids.append(guid(rng))
        mean = self.sc.runs
        weights = rng.lognormal(0.0, 1.0, size=len(plans))
        weights = weights / weights.mean()
        for (spec, rates, display), wid in zip(plans, pre_ids, strict=True):
            solution = self.profile.has_dataverse and rates.get("solution", 1.0) > 0.5
            if spec.role != "child-flow" and child_ids and rates.get("child"):
                spec = replace(spec, children=(child_ids[0],))
            flow = _Flow(
                name=guid(rng),
                display=display or self._display(used, hostile_share),
                workflowid=wid if solution else None,
                spec=spec,
            )
            used.add(flow.display)
            flow.state = "Stopped" if rates.get("stopped") else "Started"
            w = float(weights[len(self.flows)])
            n = round(mean * w * rates.get("runs_factor", 1.0))
            n = max(n, int(rates.get("runs_min", 3)), 3)
            flow.runs = 0 if flow.state != "Started" or spec.role == "child-flow" else n
            flow.noop = rates.get("noop", 0.0)
            flow.fail = rates.get("fail", 0.0)
            flow.streak = int(rates.get("streak", 0))
            flow.exhausted = int(rates.get("exhausted", 0))
            flow.recovered = rates.get("recovered", 0.0)
            flow.cancel = rates.get("cancel", 0.0)
            flow.false_trigger_ratio = rates.get("false_trigger", 0.0)
            flow.chain = bool(rates.get("chain"))
            flow.seconds = rates.get("seconds", float(rng.uniform(2.0, 20.0)))
            if spec.trigger == "recurrence" and flow.runs:
                minutes = max(5, int((END_NS - START_NS) / NS / 60 / flow.runs))
                flow.spec = replace(spec, recurrence_minutes=minutes)
            flow.created_ns = START_NS - int(rng.integers(10, 400)) * 86_400 * NS
            flow.modified_ns = flow.created_ns + int(rng.integers(0, 9)) * 86_400 * NS
            self.flows.append(flow)
        for flow in self.flows:
            flow.built = d.build_flow(self.r_defs, flow.spec, flow.workflowid is not None)
            for name, action in _walk(flow.built.definition.get("actions") or {}):
                if action.get("type") == "Workflow":
                    flow.child_calls[name] = str(action["inputs"]["host"]["workflowReferenceName"])

    # -- plug-ins ------------------------------------------------------------------------

    def build_steps(self) -> None:
        rng = self.r_steps
        key = self.profile.key
        n_types = len(PLUGIN_CLASSES)
        cast: list[_Step] = []

        def step(**kw: Any) -> _Step:
            s = _Step(
                sid=guid(rng),
                name="",
                rank=1,
                state=0,
                custom=1,
                type_index=int(rng.integers(0, n_types)),
                **kw,
            )
            return s

        if key == "messy":
            cast = [
                step(
                    message="Update",
                    entity="account",
                    stage=20,
                    mode=0,
                    filtering=None,
                    weight=3.0,
                    median_ms=90.0,
                    role="unfiltered-update",
                ),
                step(
                    message="Update",
                    entity="contact",
                    stage=40,
                    mode=0,
                    filtering="parentcustomerid,telephone1",
                    median_ms=60.0,
                    role="chain-2",
                ),
                step(
                    message="Update",
                    entity="opportunity",
                    stage=20,
                    mode=0,
                    filtering="estimatedvalue,statuscode",
                    median_ms=2800.0,
                    sigma=0.3,
                    min_exec=40,
                    role="slow-sync",
                ),
                step(
                    message="Update",
                    entity="account",
                    stage=40,
                    mode=1,
                    filtering="creditlimit,statuscode",
                    median_ms=400.0,
                    role="chain-async",
                ),
                step(
                    message="Create",
                    entity="invoice",
                    stage=20,
                    mode=0,
                    filtering=None,
                    median_ms=350.0,
                    near_timeout=5,
                    min_exec=30,
                    role="near-timeout",
                ),
                step(
                    message="Create",
                    entity="cr4f1_shipment",
                    stage=40,
                    mode=1,
                    filtering=None,
                    median_ms=900.0,
                    fail=0.35,
                    streak=12,
                    min_exec=60,
                    weight=2.0,
                    role="failing-async",
                ),
                step(
                    message="Update",
                    entity="lead",
                    stage=40,
                    mode=0,
                    filtering=None,
                    role="disabled-unfiltered",
                ),
            ]
            cast[-1].state = 1
        elif key == "gaps":
            cast = [
                step(
                    message="Update",
                    entity="opportunity",
                    stage=40,
                    mode=0,
                    filtering=None,
                    weight=2.0,
                    fail=0.04,
                    role="unfiltered-update",
                ),
            ]
        for s in cast:
            if s.role in ("unfiltered-update", "slow-sync", "failing-async"):
                s.name = "x"  # named below, with a hostile suffix in the messy profile
        filler: list[_Step] = []
        for i in range(max(0, self.sc.steps - len(cast))):
            message = str(rng.choice(["Update", "Update", "Create", "Delete", "SetState"]))
            entity = str(rng.choice(ENTITIES))
            stage = 40 if i == 0 else int(rng.choice([40, 40, 20, 20, 10]))
            # The first filler step is async so every environment has plug-in system jobs.
            mode = 1 if i == 0 or (stage == 40 and rng.random() < 0.3) else 0
            filtering = None
            if message == "Update":
                cols = COLUMNS[entity]
                picks = rng.choice(
                    len(cols), size=min(int(rng.integers(1, 4)), len(cols)), replace=False
                )
                filtering = ",".join(cols[i] for i in sorted(picks.tolist()))
            s = step(
                message=message,
                entity=entity,
                stage=stage,
                mode=mode,
                filtering=filtering,
                weight=float(rng.lognormal(0.0, 1.0)),
                median_ms=float(rng.uniform(20, 300) if mode == 0 else rng.uniform(100, 1500)),
                sigma=float(rng.uniform(0.3, 0.55)),
                fail=float(rng.uniform(0.0, 0.04 if self.messy else 0.02)),
                role="filler",
            )
            if rng.random() < 0.05:
                s.state = 1
            filler.append(s)
        system = [
            _Step(
                sid=guid(rng),
                name="",
                message="Update",
                entity=str(rng.choice(ENTITIES)),
                stage=40,
                mode=0,
                rank=1,
                filtering=None,
                state=0,
                custom=0,
                type_index=-1,
                role="system",
            )
            for _ in range(2)
        ]
        self.steps = cast + filler + system
        ranks: dict[tuple[str, str, int], int] = {}
        for s in self.steps:
            k = (s.message, s.entity, s.stage)
            ranks[k] = ranks.get(k, 0) + 1
            s.rank = ranks[k]
            tname = self._typename(s.type_index)
            s.name = f"{tname}: {s.message} of {s.entity}"
            if self.messy and s.role in ("unfiltered-update", "slow-sync", "failing-async"):
                s.name += (
                    " "
                    + HOSTILE[("unfiltered-update", "slow-sync", "failing-async").index(s.role) + 3]
                )

    def _assembly(self) -> str:
        return "Fabrikam.Core" if self.profile.key == "clean" else "Contoso.Plugins"

    def _typename(self, index: int) -> str:
        if index < 0:
            return "Microsoft.Crm.ObjectModel.SyncWorkflowExecutionPlugin"
        return f"{self._assembly()}.{PLUGIN_CLASSES[index]}"

    def build_plugin_tables(self) -> None:
        """Messages, filters, types, assemblies and steps (the step inventory's tables)."""
        rng = self.r_steps
        platform = np.random.Generator(np.random.PCG64(20261115))  # same ids in every org
        msg_names = [
            "Create",
            "Update",
            "Delete",
            "SetState",
            "Assign",
            "Retrieve",
            "RetrieveMultiple",
        ]
        msg_ids = {name: guid(platform) for name in msg_names}
        # Well-known ids seen identically in independent solution exports
        # (reference/dataverse-plugins.md section 4.3).
        msg_ids["Create"] = "9ebdbb1b-ea3e-db11-86a7-000a3a5473e8"
        msg_ids["Update"] = "20bebb1b-ea3e-db11-86a7-000a3a5473e8"
        self.tables["sdkmessages"] = _frame(
            {
                "sdkmessageid": _obj(list(msg_ids.values())),
                "name": _obj(list(msg_ids)),
                "isprivate": _bool([False] * len(msg_ids)),
                "customizationlevel": _int([0] * len(msg_ids)),
            }
        )
        filters: dict[tuple[str, str], str] = {}
        for s in self.steps:
            filters.setdefault((s.message, s.entity), guid(rng))
        self.tables["sdkmessagefilters"] = _frame(
            {
                "sdkmessagefilterid": _obj(list(filters.values())),
                "primaryobjecttypecode": _obj([e for (_, e) in filters]),
                "_sdkmessageid_value": _obj([msg_ids[m] for (m, _) in filters]),
                "name": _obj([f"{m} {e}" for (m, e) in filters]),
            }
        )
        asm_custom, asm_system = guid(rng), guid(rng)
        self.tables["pluginassemblies"] = _frame(
            {
                "pluginassemblyid": _obj([asm_custom, asm_system]),
                "name": _obj([self._assembly(), "Microsoft.Crm.ObjectModel"]),
                "version": _obj(["1.4.2.0" if self.messy else "3.1.0.0", "9.0.0.0"]),
                "isolationmode": _int([2, 1]),  # 2 Sandbox, 1 None
                "sourcetype": _int([0, 0]),  # 0 Database
                "ismanaged": _bool([False, True]),
            }
        )
        type_ids = [guid(rng) for _ in PLUGIN_CLASSES]
        self.type_ids = type_ids
        self.system_type = guid(rng)
        self.activity_type = guid(rng)
        names = [self._typename(i) for i in range(len(PLUGIN_CLASSES))]
        self.tables["plugintypes"] = _frame(
            {
                "plugintypeid": _obj([*type_ids, self.system_type, self.activity_type]),
                "typename": _obj(
                    [*names, self._typename(-1), f"{self._assembly()}.SendWelcomeMail"]
                ),
                "name": _obj([*names, self._typename(-1), f"{self._assembly()}.SendWelcomeMail"]),
                "assemblyname": _obj(
                    [self._assembly()] * len(names)
                    + ["Microsoft.Crm.ObjectModel", self._assembly()]
                ),
                "isworkflowactivity": _bool([False] * (len(names) + 1) + [True]),
                "_pluginassemblyid_value": _obj(
                    [asm_custom] * len(names) + [asm_system, asm_custom]
                ),
            }
        )
        steps = self.steps
        n = len(steps)
        handler = [self.system_type if s.type_index < 0 else type_ids[s.type_index] for s in steps]
        modified = START_NS - rng.integers(1, 300, size=n) * 86_400 * NS
        self.tables["sdkmessageprocessingsteps"] = _frame(
            {
                "sdkmessageprocessingstepid": _obj([s.sid for s in steps]),
                "name": _obj([s.name for s in steps]),
                "stage": _int([s.stage for s in steps]),
                "mode": _int([s.mode for s in steps]),
                "rank": _int([s.rank for s in steps]),
                "filteringattributes": _obj([s.filtering for s in steps]),
                "asyncautodelete": _bool([s.mode == 1 and not self.messy for s in steps]),
                "statecode": _int([s.state for s in steps]),
                "statuscode": _int([2 if s.state else 1 for s in steps]),
                "ismanaged": _bool([s.custom == 0 for s in steps]),
                "customizationlevel": _int([s.custom for s in steps]),
                "modifiedon": _ts(_secs(modified.astype(np.int64))),
                "_eventhandler_value": _obj(handler),
                "_sdkmessageid_value": _obj([msg_ids[s.message] for s in steps]),
                "_sdkmessagefilterid_value": _obj([filters[(s.message, s.entity)] for s in steps]),
                "_plugintypeid_value": _obj(handler),
            }
        )

    def build_executions(self) -> tuple[pd.DataFrame, dict[str, Any]]:
        """Plug-in executions: trace rows (before the trace setting) and async jobs."""
        rng = self.r_exec
        live = [s for s in self.steps if s.custom == 1 and s.state == 0]
        w = np.array([s.weight for s in live])
        counts = np.maximum(np.round(w / w.sum() * self.sc.executions), 1).astype(np.int64)
        counts = np.maximum(counts, np.array([s.min_exec for s in live]))
        idx = np.repeat(np.arange(len(live)), counts)
        t = rng.integers(START_NS, END_NS, size=len(idx)).astype(np.int64)
        depth = np.ones(len(idx), dtype=np.int64)
        corr = guids(rng, len(idx))
        # Chains: one correlation id across three synchronous steps at depth 1, 2, 3 and an
        # async job (and, later, a Dataverse-triggered flow run).
        roles = [s.role for s in live]
        if all(r in roles for r in ("unfiltered-update", "chain-2", "slow-sync", "chain-async")):
            k = max(5, int(counts[roles.index("unfiltered-update")] * 0.05))
            k = min(k, 400)
            base = _secs(np.sort(rng.integers(START_NS, NOW_NS - 3600 * NS, size=k)))
            ccorr = guids(rng, k)
            parts = [
                ("unfiltered-update", 0, 1),
                ("chain-2", 1, 2),
                ("slow-sync", 2, 3),
                ("chain-async", 3, 2),
            ]
            for role, offset, dep in parts:
                idx = np.concatenate([idx, np.full(k, roles.index(role))])
                t = np.concatenate([t, base + offset * NS])
                depth = np.concatenate([depth, np.full(k, dep, dtype=np.int64)])
                corr = np.concatenate([corr, ccorr])
            self.chain_ns, self.chain_corr = base + 3 * NS, ccorr
        n = len(idx)
        med = np.array([s.median_ms for s in live])[idx]
        sig = np.array([s.sigma for s in live])[idx]
        dur = np.maximum(1, np.round(med * np.exp(rng.normal(0, 1, n) * sig))).astype(np.int64)
        # A sync step's whole operation has a 2-minute limit; keep ordinary executions well
        # below the 90 % mark and add a few near it where the profile asks for them.
        dur = np.minimum(dur, 60_000)
        failp = np.array([s.fail for s in live])[idx]
        failed = rng.random(n) < failp
        order = np.lexsort((t, idx))
        idx, t, depth, dur = idx[order], t[order], depth[order], dur[order]
        corr, failed = corr[order], failed[order]
        starts = np.searchsorted(idx, np.arange(len(live)))
        for j, s in enumerate(live):
            lo, hi = int(starts[j]), int(starts[j] + np.sum(idx == j))
            if s.near_timeout and hi - lo > s.near_timeout:
                pick = lo + rng.choice(hi - lo, size=s.near_timeout, replace=False)
                # Keep them in the visible history.
                t[pick] = np.minimum(t[pick], NOW_NS - 7200 * NS)
                dur[pick] = rng.integers(110_000, 118_500, size=s.near_timeout)
            if s.streak and hi - lo > 2 * s.streak:
                before_now = int(np.sum(t[lo:hi] < NOW_NS - 3600 * NS))
                first = lo + int(rng.integers(0, max(1, before_now - s.streak)))
                failed[first : first + s.streak] = True
        mode = np.array([s.mode for s in live])[idx]
        # Async executions are system jobs; the trace starts when the job starts.
        queue_med, queue_sig = {"messy": (240.0, 1.1), "clean": (2.0, 0.8)}.get(
            self.profile.key, (20.0, 1.0)
        )
        latency = np.round(queue_med * np.exp(rng.normal(0, queue_sig, n)) * NS).astype(np.int64)
        created = _secs(t)
        started = np.where(mode == 1, _secs(created + latency), created)
        end = started + dur * 1_000_000
        ex = pd.DataFrame(
            {
                "step": idx,
                "created": created,
                "started": started,
                "end": end,
                "dur": dur,
                "failed": failed,
                "depth": depth,
                "mode": mode,
            }
        )
        ex["corr"] = pd.Series(corr, dtype=object)
        return ex, {"live": live}

    def build_trace_and_jobs(self) -> None:
        ex, info = self.build_executions()
        live: list[_Step] = info["live"]
        rng = self.r_jobs
        n = len(ex)
        step_arr = ex["step"].to_numpy()
        failed = ex["failed"].to_numpy()
        mode = ex["mode"].to_numpy()
        # Async jobs' final states: most complete; a few wait for a retry (postponed) or are
        # cancelled before they start. What a scan sees at a given clock (queued, in
        # progress, finished, deleted) is `auditor.sim.jobs.jobs_at`.
        is_async = mode == 1
        state = np.full(n, 3, dtype=np.int64)
        status = np.where(failed, 31, 30).astype(np.int64)
        retry = np.where(failed, rng.integers(0, 4, size=n), 0).astype(np.int64)
        u = rng.random(n)
        created = ex["created"].to_numpy()
        started = ex["started"].to_numpy().copy()
        end = ex["end"].to_numpy()
        completed = _secs(end + NS - 1)
        postpone = np.full(n, NAT, dtype=np.int64)
        waiting = is_async & (u < 0.01) & ~failed
        state[waiting], status[waiting] = 1, 10
        retry[waiting] = rng.integers(1, 4, size=int(waiting.sum()))
        postpone[waiting] = completed[waiting] + 300 * NS
        cancelled = is_async & (u >= 0.01) & (u < 0.015) & ~failed
        state[cancelled], status[cancelled] = 3, 32
        started = np.where(cancelled, NAT, started)
        # Trace rows: every execution that ran (its row appears when it ends).
        executed = ~cancelled
        self._traces(ex, live, executed)
        a = np.flatnonzero(is_async)
        steps_arr = [live[i] for i in step_arr[a].tolist()]
        msgs = self._error_texts(len(a), rng)
        has_err = status[a] == 31
        m = len(a)
        jobs = {
            "asyncoperationid": guids(rng, m),
            "name": np.array([s.name for s in steps_arr], dtype=object),
            "operationtype": np.full(m, 1),
            "_sim_state": state[a],
            "_sim_status": status[a],
            "messagename": np.array([s.message for s in steps_arr], dtype=object),
            "primaryentitytype": np.array([s.entity for s in steps_arr], dtype=object),
            "correlationid": ex["corr"].to_numpy()[a],
            "requestid": guids(rng, m),
            "depth": ex["depth"].to_numpy()[a],
            "retrycount": retry[a],
            "errorcode": np.where(has_err, -2147220891, 0),
            "errorcode_null": ~has_err,
            "message": _masked(has_err, msgs),
            "friendlymessage": _masked(has_err, "An error occurred in a plug-in."),
            "createdon": created[a],
            "_sim_started": started[a],
            "_sim_ended": completed[a],
            "postponeuntil": postpone[a],
            "_sim_autodelete": np.array([s.mode == 1 and not self.messy for s in steps_arr]),
            "owning": np.array([s.sid for s in steps_arr], dtype=object),
            "activation": np.full(m, None, dtype=object),
        }
        self.job_parts = [jobs]

    def _error_texts(self, n: int, rng: np.random.Generator) -> OBJ:
        pool = list(ERROR_MESSAGES)
        if self.messy:
            pool += [f"Validation failed for {h}" for h in HOSTILE[:6]]
        return np.array(pool, dtype=object)[rng.integers(0, len(pool), size=n)]

    def _traces(self, ex: pd.DataFrame, live: list[_Step], executed: npt.NDArray[np.bool_]) -> None:
        rng = self.r_jobs
        setting = self.profile.trace_setting
        failed = ex["failed"].to_numpy()
        keep = executed & (failed if setting == 1 else np.ones(len(ex), dtype=bool))
        if setting == 0:
            keep[:] = False
        sub = ex[keep]
        n = len(sub)
        step_idx = sub["step"].to_numpy()
        typenames = np.array([self._typename(s.type_index) for s in live], dtype=object)
        messages = np.array([s.message for s in live], dtype=object)
        entities = np.array([s.entity for s in live], dtype=object)
        sids = np.array([s.sid for s in live], dtype=object)
        f = sub["failed"].to_numpy()
        start = sub["started"].to_numpy()
        dur = sub["dur"].to_numpy()
        exc = np.full(n, None, dtype=object)
        fi = np.flatnonzero(f)
        texts = self._error_texts(len(fi), rng)
        acts = guids(rng, len(fi))
        for j, i in enumerate(fi.tolist()):
            exc[i] = _exception_details(
                str(texts[j]), str(acts[j]), int(start[i]), str(typenames[step_idx[i]])
            )
        pool = self._trace_pool(typenames)
        blocks = pool[step_idx % len(typenames), rng.integers(0, pool.shape[1], size=n)]
        cols: dict[str, pd.Series] = {
            "plugintracelogid": _obj(guids(rng, n)),
            "typename": _obj(typenames[step_idx]),
            "messagename": _obj(messages[step_idx]),
            "primaryentity": _obj(entities[step_idx]),
            "mode": _int(sub["mode"].to_numpy()),
            "operationtype": _int(np.ones(n, dtype=np.int64)),
            "depth": _int(sub["depth"].to_numpy()),
            "correlationid": _obj(sub["corr"].to_numpy()),
            "requestid": _obj(guids(rng, n)),
            "pluginstepid": _obj(sids[step_idx]),
            "performanceexecutionstarttime": _ts(_secs(start)),
            "performanceexecutionduration": _int(dur),
            "performanceconstructorduration": _int(rng.integers(0, 6, size=n)),
            "exceptiondetails": _obj(exc),
            "messageblock": _obj(blocks),
            "issystemcreated": _bool(np.zeros(n, dtype=bool)),
            "createdon": _ts(_secs(start + dur * 1_000_000)),
        }
        frame = _frame(cols)
        self.pending_traces = [frame]

    def _trace_pool(self, typenames: OBJ) -> OBJ:
        rng = self.r_jobs
        size = 8
        pool = np.empty((len(typenames), size), dtype=object)
        for i, tn in enumerate(typenames.tolist()):
            for j in range(size):
                record = guid(rng)
                lines = [
                    f"Entered {tn}.Execute(), Correlation Id: {guid(rng)}",
                    f"Target record: {record}",
                    "Validating attributes",
                    f"Exiting {tn}.Execute()",
                ]
                if self.messy and j == 0:
                    lines.insert(2, f"Customer note: {HOSTILE[i % len(HOSTILE)]}")
                if j == 1:
                    lines.insert(2, "Überprüfung der Rechnungsnummer – 請求書番号を確認")
                pool[i, j] = "\r\n".join(lines)
        return pool

    def build_classic_jobs(self) -> None:
        """A few classic background-workflow jobs (operationtype 10) with their activity traces."""
        rng = self.r_jobs
        m = max(3, self.sc.executions // 400)
        created = _secs(rng.integers(START_NS, END_NS, size=m).astype(np.int64))
        started = created + rng.integers(1, 30, size=m) * NS
        completed = started + rng.integers(1, 20, size=m) * NS
        u = rng.random(m)
        failed = u < 0.1
        # A background workflow waiting on a timeout (a "Wait" step): 1 Suspended / 10
        # Waiting until `postponeuntil`, its normal state, not a stuck job.
        # https://learn.microsoft.com/power-apps/developer/data-platform/asynchronous-service
        waits = ~failed & (u > 0.9)
        wf = guid(rng)
        corr = guids(rng, m)
        msgs = self._error_texts(m, rng)
        self.job_parts.append(
            {
                "asyncoperationid": guids(rng, m),
                "name": np.full(m, "Send welcome e-mail (classic)", dtype=object),
                "operationtype": np.full(m, 10),
                "_sim_state": np.where(waits, 1, 3),
                "_sim_status": np.select([waits, failed], [10, 31], 30),
                "messagename": np.full(m, "Create", dtype=object),
                "primaryentitytype": np.full(m, "contact", dtype=object),
                "correlationid": corr,
                "requestid": guids(rng, m),
                "depth": np.ones(m, dtype=np.int64),
                "retrycount": np.zeros(m, dtype=np.int64),
                "errorcode": np.where(failed, -2147220970, 0),
                "errorcode_null": ~failed,
                "message": _masked(failed, msgs),
                "friendlymessage": _masked(failed, "The workflow failed."),
                "createdon": created,
                "_sim_started": started,
                "_sim_ended": completed,
                "postponeuntil": np.where(waits, completed + 3 * 86_400 * NS, NAT),
                "_sim_autodelete": np.zeros(m, dtype=bool),
                "owning": np.full(m, None, dtype=object),
                "activation": np.full(m, wf, dtype=object),
            }
        )
        setting = self.profile.trace_setting
        keep = (
            np.zeros(m, dtype=bool)
            if setting == 0
            else (failed if setting == 1 else np.ones(m, dtype=bool))
        )
        k = int(keep.sum())
        if k:
            dur = ((completed - started) // 1_000_000)[keep]
            exc = np.full(k, None, dtype=object)
            for j, i in enumerate(np.flatnonzero(failed[keep]).tolist()):
                exc[i] = _exception_details(
                    str(msgs[keep][i]), guid(rng), int(started[keep][i]), "SendWelcomeMail"
                )
                del j
            name = f"{self._assembly()}.SendWelcomeMail"
            self.pending_traces.append(
                _frame(
                    {
                        "plugintracelogid": _obj(guids(rng, k)),
                        "typename": _const(name, k),
                        "messagename": _const("Create", k),
                        "primaryentity": _const("contact", k),
                        "mode": _int(np.ones(k, dtype=np.int64)),
                        "operationtype": _int(np.full(k, 2)),  # 2 Workflow Activity
                        "depth": _int(np.ones(k, dtype=np.int64)),
                        "correlationid": _obj(corr[keep]),
                        "requestid": _obj(guids(rng, k)),
                        "pluginstepid": _const(None, k),
                        "performanceexecutionstarttime": _ts(started[keep]),
                        "performanceexecutionduration": _int(dur),
                        "performanceconstructorduration": _int(np.zeros(k, dtype=np.int64)),
                        "exceptiondetails": _obj(exc),
                        "messageblock": _const(f"Entered {name}.Execute()\r\nSending mail", k),
                        "issystemcreated": _bool(np.zeros(k, dtype=bool)),
                        "createdon": _ts(completed[keep]),
                    }
                )
            )

    # -- runs ------------------------------------------------------------------------------

    def build_runs(self) -> None:
        rng = self.r_runs
        parts: list[dict[str, Any]] = []
        calls: dict[str, list[tuple[str, str, int]]] = {}  # child wid -> (parent run, ctid, t)
        by_wid = {f.workflowid: f for f in self.flows if f.workflowid}
        span = END_NS - START_NS
        for fi, flow in enumerate(self.flows):
            if not flow.runs:
                continue
            n = flow.runs
            # Offsets in 100 ns ticks (float64 cannot hold epoch nanoseconds exactly).
            if flow.spec.trigger == "recurrence":
                ticks = (np.arange(n) + 0.5 + rng.uniform(-0.02, 0.02, n)) * (span / 100 / n)
            else:
                ticks = rng.uniform(0, span / 100, n)
            t = START_NS + np.sort(np.round(ticks).astype(np.int64)) * 100
            ctid = np.full(n, None, dtype=object)
            if flow.chain and len(self.chain_ns):
                extra = self.chain_ns + rng.integers(20, 120, size=len(self.chain_ns)) * NS
                t = np.concatenate([t, extra + rng.integers(0, NS // 100, len(extra)) * 100])
                ctid = np.concatenate([ctid, self.chain_corr])
                order = np.argsort(t, kind="stable")
                t, ctid = t[order], ctid[order]
                n = len(t)
            outcome, retry, variant = self._outcomes(flow, t)
            parts.append(self._run_part(fi, flow, t, outcome, retry, variant, ctid, None))
            self._collect_calls(flow, parts[-1], calls)
        for fi, flow in enumerate(self.flows):
            if flow.spec.role != "child-flow" or flow.workflowid not in calls:
                continue
            got = sorted(calls[flow.workflowid], key=lambda c: (c[2], c[0]))
            t = np.array([c[2] for c in got], dtype=np.int64)
            t = t + rng.integers(10, 30, size=len(t)) * (NS // 10)
            n = len(t)
            ctid = np.array([c[1] for c in got], dtype=object)
            parents = np.array([c[0] for c in got], dtype=object)
            zeros = np.zeros(n, dtype=np.int64)
            flow.runs = n
            parts.append(self._run_part(fi, flow, t, zeros, zeros, zeros, ctid, parents))
        del by_wid
        self._assemble_runs(parts)

    def _outcomes(self, flow: _Flow, t: I64) -> tuple[I64, I64, I64]:
        rng = self.r_runs
        n = len(t)
        outcome = np.zeros(n, dtype=np.int64)
        perm = rng.permutation(n)
        k_fail = round(flow.fail * n)
        k_noop = round(flow.noop * n)
        k_cancel = round(flow.cancel * n)
        outcome[perm[:k_fail]] = d.FAIL
        outcome[perm[k_fail : k_fail + k_noop]] = d.NOOP
        outcome[perm[k_fail + k_noop : k_fail + k_noop + k_cancel]] = d.CANCEL
        visible = int(np.sum(t < NOW_NS - 3600 * NS))
        if flow.streak and visible > flow.streak * 2:
            s = int(rng.integers(0, max(1, int(visible * 0.8) - flow.streak)))
            outcome[s : s + flow.streak] = d.FAIL
        retry = np.zeros(n, dtype=np.int64)
        plan = flow.built.plan if flow.built else {}
        if plan.get("throttle"):
            ok = np.flatnonzero(outcome == d.OK)
            k = round(flow.recovered * n)
            retry[rng.permutation(ok)[:k]] = d.RETRY_RECOVERED
            if flow.exhausted:
                early = np.flatnonzero(
                    (t < NOW_NS - 3600 * NS) & (retry == 0) & (outcome != d.CANCEL)
                )
                pick = rng.permutation(early)[: flow.exhausted]
                outcome[pick] = d.FAIL
                retry[pick] = d.RETRY_EXHAUSTED
        variant = rng.integers(0, 6, size=n).astype(np.int64)
        # The variant only matters for failures, recovered retries and Switch cases; fold it
        # away elsewhere so a flow has few distinct (outcome, retry, variant) keys.
        if not plan.get("switch"):
            variant = np.where((outcome == d.FAIL) | (retry > 0), variant, 0)
        return outcome, retry, variant

    def _lut(self, flow: _Flow, keys: I64) -> dict[int, d.RunResult]:
        assert flow.built is not None
        out: dict[int, d.RunResult] = {}
        for key in np.unique(keys).tolist():
            o, r, v = key // 100, (key // 10) % 10, key % 10
            out[key] = d.execute(flow.built.definition, flow.built.plan, o, r, v)
        return out

    def _run_part(
        self,
        fi: int,
        flow: _Flow,
        t: I64,
        outcome: I64,
        retry: I64,
        variant: I64,
        ctid: OBJ,
        parents: OBJ | None,
    ) -> dict[str, Any]:
        rng = self.r_runs
        n = len(t)
        keys = outcome * 100 + retry * 10 + variant
        lut = self._lut(flow, keys)
        ukeys = np.array(sorted(lut), dtype=np.int64)
        pos = np.searchsorted(ukeys, keys)
        status = np.array([lut[k].status for k in ukeys.tolist()], dtype=object)[pos]
        code = np.array([lut[k].code for k in ukeys.tolist()], dtype=object)[pos]
        ecode = np.array([lut[k].error_code for k in ukeys.tolist()], dtype=object)[pos]
        emsg = np.array([lut[k].error_message for k in ukeys.tolist()], dtype=object)[pos]
        if self.messy:
            # 40 % of the failed runs in the messy environment carry no error detail.
            failed_rows = np.flatnonzero(status == "Failed")
            bare = rng.permutation(failed_rows)[: round(0.4 * len(failed_rows))]
            code[bare], ecode[bare], emsg[bare] = None, None, None
        # A run lasts as long as what it executed: a no-op run is short, retries add time.
        assert flow.built is not None
        ok_span = (
            d.run_span(d.execute(flow.built.definition, flow.built.plan, d.OK, d.NO_RETRY, 0))
            or 1.0
        )
        factor = np.array(
            [min(20.0, max(0.05, d.run_span(lut[k]) / ok_span)) for k in ukeys.tolist()]
        )[pos]
        dur_s = flow.seconds * factor * np.exp(rng.normal(0, 0.35, n))
        dur_s = np.where(outcome == d.CANCEL, rng.uniform(7200, 21600, n), dur_s)
        dur = np.round(dur_s * 1e7).astype(np.int64) * 100
        names = run_names(rng, t // 100)
        is_dv = flow.spec.trigger == "dataverse" and flow.workflowid is not None
        ctid = ctid.copy()
        missing = np.array([c is None for c in ctid.tolist()], dtype=bool)
        if is_dv:
            ctid[missing] = guids(rng, int(missing.sum()))
        else:
            ctid[missing] = np.array(names, dtype=object)[missing]
        return {
            "flow": fi,
            "t": t,
            "dur": dur,
            "status": status,
            "code": code,
            "ecode": ecode,
            "emsg": emsg,
            "names": np.array(names, dtype=object),
            "ctid": ctid,
            "outcome": outcome,
            "retry": retry,
            "variant": variant,
            "seed": rng.integers(0, 2**62, size=n, dtype=np.int64),
            "parent": parents if parents is not None else np.full(n, None, dtype=object),
            "lut": lut,
            "keys": keys,
        }

    def _collect_calls(
        self, flow: _Flow, part: dict[str, Any], calls: dict[str, list[tuple[str, str, int]]]
    ) -> None:
        if not flow.child_calls:
            return
        lut: dict[int, d.RunResult] = part["lut"]
        for key, res in lut.items():
            executed = _executed_names(res.actions)
            wids = [w for a, w in flow.child_calls.items() if a in executed]
            if not wids:
                continue
            rows = np.flatnonzero(part["keys"] == key)
            for i in rows.tolist():
                for w in wids:
                    calls.setdefault(w, []).append(
                        (str(part["names"][i]), str(part["ctid"][i]), int(part["t"][i]))
                    )

    def _assemble_runs(self, parts: list[dict[str, Any]]) -> None:
        flows = self.flows
        fl_names = np.array([f.name for f in flows], dtype=object)
        triggers = np.array([f.built.trigger_name if f.built else "" for f in flows], dtype=object)

        def cat(key: str) -> Any:
            if not parts:
                return np.zeros(0, dtype=np.int64 if key in ("t", "dur") else object)
            return np.concatenate([p[key] for p in parts])

        fidx = (
            np.concatenate([np.full(len(p["t"]), p["flow"]) for p in parts])
            if parts
            else (np.zeros(0, dtype=np.int64))
        )
        t, dur = cat("t").astype(np.int64), cat("dur").astype(np.int64)
        order = np.lexsort((cat("names").astype(str), t)) if len(t) else np.zeros(0, np.int64)
        fidx, t, dur = fidx[order], t[order], dur[order]

        def pick(key: str) -> Any:
            return cat(key)[order]

        self.runs = _frame(
            {
                "flow_name": _obj(fl_names[fidx]),
                "name": _obj(pick("names")),
                "start_time": _ts(t),
                "end_time": _ts(t + dur),
                "status": _obj(pick("status")),
                "code": _obj(pick("code")),
                "error_code": _obj(pick("ecode")),
                "error_message": _obj(pick("emsg")),
                "trigger_name": _obj(triggers[fidx]),
                "client_tracking_id": _obj(pick("ctid")),
                "_sim_outcome": pd.Series(pick("outcome").astype(np.int64)),
                "_sim_retry": pd.Series(pick("retry").astype(np.int64)),
                "_sim_variant": pd.Series(pick("variant").astype(np.int64)),
                "_sim_seed": pd.Series(pick("seed").astype(np.int64)),
                "_sim_parent_run": _obj(pick("parent")),
            }
        )
        self.run_flow_idx = fidx

    # -- Dataverse tables of flows -----------------------------------------------------------

    def build_flow_tables(self) -> None:
        rng = self.r_jobs
        flows = self.flows
        sol = [f for f in flows if f.workflowid]
        n = len(sol)
        created = np.array([f.created_ns for f in sol], dtype=np.int64)
        modified = np.array([f.modified_ns for f in sol], dtype=np.int64)
        on = np.array([f.state == "Started" for f in sol], dtype=bool)
        self.tables["workflows"] = _frame(
            {
                "workflowid": _obj([f.workflowid for f in sol]),
                "workflowidunique": _obj(guids(rng, n)),
                "name": _obj([f.display for f in sol]),
                "category": _int(np.full(n, 5)),  # 5 Modern Flow
                "type": _int(np.ones(n, dtype=np.int64)),  # 1 Definition
                "statecode": _int(on.astype(np.int64)),  # 1 Activated, 0 Draft
                "statuscode": _int(np.where(on, 2, 1)),
                "ismanaged": _bool(np.zeros(n, dtype=bool)),
                "primaryentity": _const("none", n),
                "modernflowtype": _int(np.zeros(n, dtype=np.int64)),
                "clientdata": _obj([_clientdata(f) for f in sol]),
                "createdon": _ts(_secs(created)),
                "modifiedon": _ts(_secs(modified)),
                "_ownerid_value": _const(self.owner, n),
            }
        )
        cb = [f for f in sol if f.spec.trigger == "dataverse" and f.state == "Started"]
        m = len(cb)
        msg_names = {
            1: "Create",
            2: "Delete",
            3: "Update",
            4: "Create,Update",
            5: "Create,Delete",
            6: "Update,Delete",
            7: "Create,Update,Delete",
        }
        self.tables["callbackregistrations"] = _frame(
            {
                "callbackregistrationid": _obj(guids(rng, m)),
                "name": _obj([f.workflowid for f in cb]),
                "entityname": _obj([f.spec.dv_entity for f in cb]),
                "message": _int([f.spec.dv_message for f in cb]),
                "scope": _int(np.full(m, 4)),  # 4 Organization
                "filteringattributes": _obj([f.spec.dv_filtering for f in cb]),
                "filterexpression": _obj([f.spec.dv_filterexpr for f in cb]),
                "runas": _int(np.full(m, 3)),
                "sdkmessagename": _obj([msg_names[f.spec.dv_message] for f in cb]),
                "version": _int(np.ones(m, dtype=np.int64)),
                "createdon": _ts(_secs(np.array([f.modified_ns for f in cb], dtype=np.int64))),
                "modifiedon": _ts(_secs(np.array([f.modified_ns for f in cb], dtype=np.int64))),
                "_ownerid_value": _const(self.owner, m),
            }
        )
        self._trigger_jobs()
        self._flowruns()

    def _trigger_jobs(self) -> None:
        """One CallbackRegistration Expander job per Dataverse trigger execution."""
        rng = self.r_jobs
        runs = self.runs
        flows = self.flows
        fidx = self.run_flow_idx
        dv = np.array(
            [f.spec.trigger == "dataverse" and f.workflowid is not None for f in flows], dtype=bool
        )
        sel = np.flatnonzero(dv[fidx]) if len(fidx) else np.zeros(0, dtype=np.int64)
        start = (
            runs["start_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[sel]
            if len(sel)
            else (np.zeros(0, dtype=np.int64))
        )
        gap = rng.integers(2, 40, size=len(sel)) * NS
        completed = _secs(start)
        started = completed - (gap // NS // 2) * NS
        created = completed - gap
        corr = runs["client_tracking_id"].to_numpy()[sel]
        f_sel = fidx[sel]
        # Trigger executions that found the trigger condition false: a job, no run.
        extra_f: list[int] = []
        for i, f in enumerate(flows):
            if dv[i] and f.false_trigger_ratio and f.runs:
                extra_f.extend([i] * round(f.runs * f.false_trigger_ratio))
        ef = np.array(extra_f, dtype=np.int64)
        ecreated = _secs(rng.integers(START_NS, END_NS, size=len(ef)).astype(np.int64))
        estarted = ecreated + rng.integers(1, 20, size=len(ef)) * NS
        ecompleted = estarted + NS
        allf = np.concatenate([f_sel, ef])
        m = len(allf)
        names = np.array([f.display for f in flows], dtype=object)
        wids = np.array([f.workflowid for f in flows], dtype=object)
        msgs = np.array(
            [
                {1: "Create", 2: "Delete", 3: "Update"}.get(f.spec.dv_message, "Update")
                for f in flows
            ],
            dtype=object,
        )
        ents = np.array([f.spec.dv_entity for f in flows], dtype=object)
        self.job_parts.append(
            {
                "asyncoperationid": guids(rng, m),
                "name": names[allf],
                "operationtype": np.full(m, 79),  # CallbackRegistration Expander Operation
                "_sim_state": np.full(m, 3),
                "_sim_status": np.full(m, 30),
                "messagename": msgs[allf],
                "primaryentitytype": ents[allf],
                "correlationid": np.concatenate([corr, guids(rng, len(ef))]),
                "requestid": guids(rng, m),
                "depth": np.ones(m, dtype=np.int64),
                "retrycount": np.zeros(m, dtype=np.int64),
                "errorcode": np.zeros(m, dtype=np.int64),
                "errorcode_null": np.ones(m, dtype=bool),
                "message": np.full(m, None, dtype=object),
                "friendlymessage": np.full(m, None, dtype=object),
                "createdon": np.concatenate([created, ecreated]),
                "_sim_started": np.concatenate([started, estarted]),
                "_sim_ended": np.concatenate([completed, ecompleted]),
                "postponeuntil": np.full(m, NAT, dtype=np.int64),
                "_sim_autodelete": np.zeros(m, dtype=bool),
                "owning": np.full(m, None, dtype=object),
                "activation": wids[allf],
            }
        )

    def _flowruns(self) -> None:
        rng = self.r_jobs
        runs = self.runs
        flows = self.flows
        fidx = self.run_flow_idx
        sol = np.array([f.workflowid is not None for f in flows], dtype=bool)
        sel = np.flatnonzero(sol[fidx]) if len(fidx) else np.zeros(0, dtype=np.int64)
        start = runs["start_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[sel]
        end = runs["end_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)[sel]
        delay = np.round(np.exp(rng.normal(np.log(120), 0.8, len(sel)))).astype(np.int64) * NS
        created = _secs(end) + delay
        keep = np.ones(len(sel), dtype=bool)
        events: list[tuple[int, str, str, int]] = []
        if self.profile.key == "gaps":
            # Two ingestion-loss windows: part of the runs never reach Dataverse, and
            # flowevents says so (the documented gap signal).
            for w, code in ((0.3, "IngestionRateDataLoss"), (0.65, "IngestionRateDataLoss")):
                lo = START_NS + int(w * (NOW_NS - START_NS))
                hi = lo + 3 * 3600 * NS
                inside = (created >= lo) & (created < hi)
                lost = inside & (rng.random(len(sel)) < 0.4)
                keep &= ~lost
                affected = sorted({int(x) for x in fidx[sel][lost].tolist()})
                for f in affected:
                    events.append(
                        (
                            hi + 300 * NS,
                            code,
                            str(flows[f].workflowid),
                            int(np.sum(lost & (fidx[sel] == f))),
                        )
                    )
            events.append(
                (
                    NOW_NS - 86_400 * NS,
                    "ElasticTablePartitionLimitReached",
                    str(flows[0].workflowid),
                    0,
                )
            )
        sel, start, end, created = sel[keep], start[keep], end[keep], created[keep]
        r = runs.iloc[sel]
        n = len(sel)
        fl = [flows[i] for i in fidx[sel].tolist()]
        parent = r["_sim_parent_run"].to_numpy()
        # Dataverse has its own words for a run's end result: Success, Failed or Cancelled,
        # not the flow API's Succeeded (flowrun Status, "End result of the flow execution";
        # https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata).
        # Every run here has ended: one is recorded when it ends, plus the ingestion delay,
        # so a run still going at `now` has no visible row yet.
        words = {"Succeeded": "Success", "Failed": "Failed", "Cancelled": "Cancelled"}
        status = np.array([words.get(s, s) for s in r["status"].tolist()], dtype=object)
        self.tables["flowruns"] = _frame(
            {
                "flowrunid": _obj(guids(rng, n)),
                "name": _obj(r["name"].to_numpy()),
                "_workflow_value": _obj([f.workflowid for f in fl]),
                "workflowid": _obj([f.workflowid for f in fl]),
                "status": _obj(status),
                "starttime": _ts(_secs(start)),
                "endtime": _ts(_secs(end)),
                "duration": _int((end - start) // 1_000_000),
                "triggertype": _obj([d.TRIGGER_TYPE[f.spec.trigger] for f in fl]),
                "errorcode": _obj(r["error_code"].to_numpy()),
                "errormessage": _obj(
                    [
                        None
                        if m is None
                        else json.dumps({"code": c, "message": m}, ensure_ascii=False)
                        for c, m in zip(
                            r["error_code"].tolist(), r["error_message"].tolist(), strict=True
                        )
                    ]
                ),
                "parentrunid": _obj(parent),
                "isprimary": _int(np.array([p is None for p in parent.tolist()], dtype=np.int64)),
                "clienttrackingid": _obj(r["client_tracking_id"].to_numpy()),
                "createdon": _ts(created),
            }
        )
        k = len(events)
        self.tables["flowevents"] = _frame(
            {
                "floweventid": _obj(guids(rng, k)),
                "name": _const("FlowRunIngestion", k),
                "eventtype": _const("FlowRunIngestion", k),
                "eventcode": _obj([e[1] for e in events]),
                "eventcontent": _obj([json.dumps({"lostRunCount": e[3]}) for e in events]),
                "level": _int(np.full(k, 2)),  # our inference: 2 = warning
                "parentobjectlogicalname": _const("workflow", k),
                "_parentobjectid_value": _obj([e[2] for e in events]),
                "createdon": _ts(_secs(np.array([e[0] for e in events], dtype=np.int64))),
            }
        )

    def build_job_table(self) -> None:
        parts = self.job_parts
        cols = {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}
        order = np.lexsort((cols["asyncoperationid"].astype(str), cols["createdon"]))
        c = {k: v[order] for k, v in cols.items()}
        started, completed = c["_sim_started"].astype(np.int64), c["_sim_ended"].astype(np.int64)
        span = np.where(
            (started != NAT) & (completed != NAT), (completed - started) / NS / 60.0, np.nan
        )
        n = len(order)
        # Each job's whole life; the served table is it seen at the tenant's clock.
        self.job_plan = _frame(
            {
                "asyncoperationid": _obj(c["asyncoperationid"]),
                "name": _obj(c["name"]),
                "operationtype": _int(c["operationtype"]),
                "statecode": _int(c["_sim_state"]),
                "statuscode": _int(c["_sim_status"]),
                "messagename": _obj(c["messagename"]),
                "primaryentitytype": _obj(c["primaryentitytype"]),
                "correlationid": _obj(c["correlationid"]),
                "requestid": _obj(c["requestid"]),
                "depth": _int(c["depth"]),
                "retrycount": _int(c["retrycount"]),
                "errorcode": _int(c["errorcode"], c["errorcode_null"]),
                "message": _obj(c["message"]),
                "friendlymessage": _obj(c["friendlymessage"]),
                "createdon": _ts(c["createdon"]),
                "startedon": _ts(started),
                "completedon": _ts(completed),
                "modifiedon": _ts(completed),
                "postponeuntil": _ts(c["postponeuntil"]),
                # Unit undocumented; we store minutes (reference/dataverse-plugins.md section 10).
                "executiontimespan": pd.Series(pd.array(np.round(span, 2), dtype="Float64")),
                "_owningextensionid_value": _obj(c["owning"]),
                "_workflowactivationid_value": _obj(c["activation"]),
                "_regardingobjectid_value": _obj(guids(self.r_jobs, n)),
                "_sim_state": _int(c["_sim_state"]),
                "_sim_status": _int(c["_sim_status"]),
                "_sim_started": _ts(started),
                "_sim_ended": _ts(completed),
                "_sim_autodelete": _bool(c["_sim_autodelete"].astype(bool)),
            }
        )
        self.tables["asyncoperations"] = jobs_at(self.job_plan, pd.Timestamp(NOW))
        traces = pd.concat(self.pending_traces, ignore_index=True)
        created = traces["createdon"].to_numpy(dtype="datetime64[ns]").view(np.int64)
        ids = traces["plugintracelogid"].to_numpy().astype(str)
        self.tables["plugintracelogs"] = traces.iloc[np.lexsort((ids, created))].reset_index(
            drop=True
        )

    def build_org(self) -> None:
        self.tables["organizations"] = _frame(
            {
                "organizationid": _obj([guid(self.r_steps)]),
                "name": _obj([self.profile.slug.replace("-", "")]),
                "plugintracelogsetting": _int([self.profile.trace_setting or 0]),
                "flowruntimetoliveinseconds": _int([2_419_200]),  # 28 days, the default
            }
        )

    # -- flows frame -------------------------------------------------------------------------

    def flows_frame(self) -> pd.DataFrame:
        fl = self.flows
        return _frame(
            {
                "name": _obj([f.name for f in fl]),
                "display_name": _obj([f.display for f in fl]),
                "state": _obj([f.state for f in fl]),
                "created_time": _ts(np.array([f.created_ns for f in fl], dtype=np.int64)),
                "last_modified_time": _ts(np.array([f.modified_ns for f in fl], dtype=np.int64)),
                "workflowid": _obj([f.workflowid for f in fl]),
                "definition": _obj(
                    [
                        json.dumps(f.built.definition if f.built else {}, ensure_ascii=False)
                        for f in fl
                    ]
                ),
                "connection_references": _obj(
                    [
                        json.dumps(
                            f.built.connection_references if f.built else {}, ensure_ascii=False
                        )
                        for f in fl
                    ]
                ),
                "_sim_role": _obj([f.spec.role for f in fl]),
                "_sim_plan": _obj(
                    [json.dumps(f.built.plan if f.built else {}, sort_keys=True) for f in fl]
                ),
            }
        )

    def build(self) -> SimEnvironment:
        self.build_flows()
        tables: dict[str, pd.DataFrame] = {}
        if self.profile.has_dataverse:
            self.build_steps()
            self.build_plugin_tables()
            self.build_trace_and_jobs()
            self.build_classic_jobs()
        self.build_runs()
        if self.profile.has_dataverse:
            self.build_flow_tables()
            self.build_job_table()
            self.build_org()
            tables = {k: _off_now(k, self.tables[k]) for k in sorted(self.tables)}
        if len(self.runs):
            # A run starting exactly at "now" would be visible or not depending on `<` vs `<=`.
            start = self.runs["start_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
            if (start == NOW_NS).any():
                shift = np.where(start == NOW_NS, 100, 0)
                self.runs["start_time"] = _ts(start + shift)
                end = self.runs["end_time"].to_numpy(dtype="datetime64[ns]").view(np.int64)
                self.runs["end_time"] = _ts(end + shift)
        return SimEnvironment(
            env_id=self.env_id,
            display_name=self.profile.display_name,
            sku=self.profile.sku,
            slug=self.profile.slug,
            has_dataverse=self.profile.has_dataverse,
            tables=tables,
            flows=self.flows_frame(),
            runs=self.runs,
            job_plan=self.job_plan,
        )


def _off_now(entity_set: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Move rows stamped exactly at "now" one second later.

    A scan's window ends at "now" with `lt`, while the server reveals rows with `<=`; keeping
    no row on the boundary makes both agree.
    """
    column = VISIBLE_BY.get(entity_set)
    if column is None or frame.empty:
        return frame
    values = frame[column].to_numpy(dtype="datetime64[ns]").view(np.int64)
    if (values == NOW_NS).any():
        frame = frame.copy()
        frame[column] = _ts(np.where(values == NOW_NS, NOW_NS + NS, values))
    return frame


def _walk(actions: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    out: list[tuple[str, Mapping[str, Any]]] = []
    for name, action in actions.items():
        out.append((name, action))
        for kids in d._children_of(action):
            out.extend(_walk(kids))
    return out


def _executed_names(results: list[d.ActionResult]) -> set[str]:
    out: set[str] = set()
    for r in results:
        if r.status != "Skipped":
            out.add(r.name)
        out |= _executed_names(r.children)
    return out


def _clientdata(flow: _Flow) -> str:
    assert flow.built is not None
    return json.dumps(
        {
            "properties": {
                "connectionReferences": flow.built.connection_references,
                "definition": flow.built.definition,
            },
            "schemaVersion": "1.0.0.0",
        },
        ensure_ascii=False,
    )


def _exception_details(message: str, activity: str, start_ns: int, typename: str) -> str:
    """The OrganizationServiceFault text Dataverse writes to `exceptiondetails`.

    Shape from the PluginTraceLog example in Microsoft's ILogger article
    (reference/dataverse-plugins.md section 3.4):
    https://learn.microsoft.com/power-apps/developer/data-platform/application-insights-ilogger
    """
    stamp = _iso7(start_ns)
    xml_msg = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return "\r\n".join(
        [
            "Exception type: System.ServiceModel.FaultException`1"
            "[Microsoft.Xrm.Sdk.OrganizationServiceFault]",
            f"Message: {message}Detail: ",
            '<OrganizationServiceFault xmlns:i="http://www.w3.org/2001/XMLSchema-instance" '
            'xmlns="http://schemas.microsoft.com/xrm/2011/Contracts">',
            f"  <ActivityId>{activity}</ActivityId>",
            "  <ErrorCode>-2147220891</ErrorCode>",
            '  <ErrorDetails xmlns:d2p1="http://schemas.datacontract.org/2004/07/System.Collections'
            '.Generic">',
            "    <KeyValuePairOfstringanyType><d2p1:key>OperationStatus</d2p1:key>"
            '<d2p1:value xmlns:d4p1="http://www.w3.org/2001/XMLSchema" i:type="d4p1:int">0'
            "</d2p1:value></KeyValuePairOfstringanyType>",
            "  </ErrorDetails>",
            '  <HelpLink i:nil="true" />',
            f"  <Message>{xml_msg}</Message>",
            f"  <Timestamp>{stamp}</Timestamp>",
            "  <ExceptionRetriable>false</ExceptionRetriable>",
            "  <ExceptionSource>PluginExecution</ExceptionSource>",
            '  <InnerFault i:nil="true" />',
            "  <OriginalException>PluginExecution</OriginalException>",
            "  <TraceText>",
            f"Entered {typename}.Execute()",
            f"Exception: {xml_msg}",
            "</TraceText>",
            "</OrganizationServiceFault>",
        ]
    )


def _iso7(ns: int) -> str:
    """ISO 8601 UTC with seven fractional digits, as the flow API writes times."""
    sec, frac = divmod(int(ns), NS)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(sec)) + f".{frac // 100:07d}Z"


def generate(seed: int, scale: str) -> SimTenant:
    """Build the simulated tenant for a seed and a scale (tiny, small, medium, large)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    root = _rng(seed, scale, 0)
    tenant_id = guid(root)
    client_id = guid(root)
    secret = "sim~" + guid(root).replace("-", "")
    envs: list[SimEnvironment] = []
    for i, profile in enumerate(profiles_for(scale)):
        env_id = f"Default-{tenant_id}" if profile.sku == "Default" else guid(root)
        envs.append(_EnvBuilder(seed, scale, i + 1, profile, env_id).build())
    return SimTenant(
        tenant_id=tenant_id,
        client_id=client_id,
        client_secret=secret,
        seed=seed,
        scale=scale,
        start=START,
        now=NOW,
        end=END,
        environments=envs,
    )


# Action results on demand -----------------------------------------------------------------


@lru_cache(maxsize=4096)
def _parsed(definition: str, plan: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return json.loads(definition), json.loads(plan)


def _to_ns(value: Any) -> int:
    return int(pd.Timestamp(value).value)


def render_actions(
    tenant: SimTenant,
    env: SimEnvironment,
    flow: Mapping[str, Any],
    run: Mapping[str, Any],
) -> dict[str, dict[str, Any]]:
    """The run's action results, keyed by action name, as `$expand=properties/actions` shows.

    Shape: Logic Apps `WorkflowRunAction` properties (reference/power-automate-apis.md 1.7,
    https://learn.microsoft.com/rest/api/logic/workflow-run-actions/get). Deterministic: the
    statuses come from playing the flow's definition for the run's intended outcome, the times
    from the run's start and end, the ids from the run's `_sim_seed`.
    """
    del tenant, env  # the flow and run rows carry everything needed
    definition, plan = _parsed(str(flow["definition"]), str(flow["_sim_plan"]))
    result = d.execute(
        definition,
        plan,
        int(run["_sim_outcome"]),
        int(run["_sim_retry"]),
        int(run["_sim_variant"]),
    )
    start = _to_ns(run["start_time"])
    end = _to_ns(run["end_time"])
    rng = np.random.Generator(np.random.PCG64(int(run["_sim_seed"])))
    client = str(run["client_tracking_id"])
    total = d.run_span(result) or 1.0
    length = max(end - start, 1000)
    scale = length * 0.97 / total
    out: dict[str, dict[str, Any]] = {}
    cursor = float(start + length * 0.02)  # the trigger takes the first moments
    for r in result.actions:
        cursor = _layout(r, cursor, scale, rng, client, out)
    return out


def _layout(
    r: d.ActionResult,
    cursor: float,
    scale: float,
    rng: np.random.Generator,
    client: str,
    out: dict[str, dict[str, Any]],
) -> float:
    begin = cursor
    ids = guids(rng, 1 + 2 * r.retries)
    entry: dict[str, Any] = {}
    if r.status == "Skipped":
        finish = begin
        inner = begin
    else:
        inner = begin + r.weight * scale * (0.5 if r.children else 1.0)
        finish = inner
    out[r.name] = entry  # parents before children, as the engine lists them
    for c in r.children:
        finish = _layout(c, finish, scale, rng, client, out)
    if r.status != "Skipped" and r.children:
        finish += r.weight * scale * 0.5
    entry["startTime"] = _iso7(int(begin // 100 * 100))
    entry["endTime"] = _iso7(int(finish // 100 * 100))
    entry["correlation"] = {"actionTrackingId": str(ids[0]), "clientTrackingId": client}
    entry["status"] = r.status
    entry["code"] = r.code
    if r.error is not None:
        entry["error"] = {"code": r.error[0], "message": r.error[1]}
    if r.retries:
        slot = (inner - begin) / (r.retries + 1)
        history = []
        for i in range(r.retries):
            s = begin + i * slot
            history.append(
                {
                    "startTime": _iso7(int(s // 100 * 100)),
                    "endTime": _iso7(int((s + slot * 0.3) // 100 * 100)),
                    "code": r.retry_code or "TooManyRequests",
                    "clientRequestId": str(ids[1 + 2 * i]),
                    "serviceRequestId": str(ids[2 + 2 * i]),
                    "error": {"error": {"code": "429", "message": d.THROTTLE_MESSAGE}},
                }
            )
        entry["retryHistory"] = history
    if r.repetitions is not None and r.status != "Skipped":
        entry["repetitionCount"] = r.repetitions
    return finish
