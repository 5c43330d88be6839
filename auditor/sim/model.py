"""The simulated tenant as data: what the scenario generator makes and the server serves.

The generator (`auditor.sim.scenario`) builds a `SimTenant` from a seed and a scale; the
server (`auditor.sim.server`) answers HTTP requests from it; the ground truth
(`auditor.sim.truth`) is computed from it. Rows are held column-wise in pandas frames, never
as one Python object per row, so the `large` scale (about 1 M trace logs) stays cheap.

Conventions for every Dataverse frame in `SimEnvironment.tables`:
- columns are Dataverse logical names exactly as the Web API returns them, lookups as
  `_<name>_value`; GUIDs are lower-case strings;
- timestamps are `datetime64[ns, UTC]`; whole numbers are nullable `Int64`; text is `object`
  (None for null);
- columns whose name starts with `_sim_` are private to the simulator (for example the
  generator's intended outcome of a run) and are never served.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

SCALES = ("tiny", "small", "medium", "large")

# Entity sets of the simulated Dataverse Web API and their primary key.
PRIMARY_KEYS: Mapping[str, str] = {
    "organizations": "organizationid",
    "workflows": "workflowid",
    "callbackregistrations": "callbackregistrationid",
    "sdkmessageprocessingsteps": "sdkmessageprocessingstepid",
    "sdkmessages": "sdkmessageid",
    "sdkmessagefilters": "sdkmessagefilterid",
    "plugintypes": "plugintypeid",
    "pluginassemblies": "pluginassemblyid",
    "plugintracelogs": "plugintracelogid",
    "asyncoperations": "asyncoperationid",
    "flowruns": "flowrunid",
    "flowevents": "floweventid",
}

# The column that decides when a row appears: rows whose value is after `SimTenant.now` are
# not served yet (so advancing the clock reveals new rows). None: always visible.
VISIBLE_BY: Mapping[str, str | None] = {
    "organizations": None,
    "workflows": None,
    "callbackregistrations": None,
    "sdkmessageprocessingsteps": None,
    "sdkmessages": None,
    "sdkmessagefilters": None,
    "plugintypes": None,
    "pluginassemblies": None,
    "plugintracelogs": "createdon",
    "asyncoperations": "createdon",
    "flowruns": "createdon",
    "flowevents": "createdon",
}


@dataclass(frozen=True)
class Navigation:
    """A single-valued navigation property usable in `$expand`."""

    lookup_column: str  # column of the source row holding the target's key
    target_entity_set: str


# Single-valued navigation properties, per source entity set, as documented for
# sdkmessageprocessingstep, plugintype (https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep).
NAVIGATIONS: Mapping[str, Mapping[str, Navigation]] = {
    "sdkmessageprocessingsteps": {
        "sdkmessageid": Navigation("_sdkmessageid_value", "sdkmessages"),
        "sdkmessagefilterid": Navigation("_sdkmessagefilterid_value", "sdkmessagefilters"),
        "plugintypeid": Navigation("_plugintypeid_value", "plugintypes"),
        "eventhandler_plugintype": Navigation("_eventhandler_value", "plugintypes"),
    },
    "plugintypes": {
        "pluginassemblyid": Navigation("_pluginassemblyid_value", "pluginassemblies"),
    },
    "sdkmessagefilters": {
        "sdkmessageid": Navigation("_sdkmessageid_value", "sdkmessages"),
    },
}


@dataclass
class SimEnvironment:
    """One environment of the simulated tenant.

    `flows` is the flow API's view, one row per cloud flow (solution flows and flows outside
    solutions). Columns: `name` (flow GUID), `display_name`, `state` (`Started`, `Stopped`,
    `Suspended`), `created_time`, `last_modified_time` (UTC timestamps), `workflowid` (the
    Dataverse workflowid for solution flows, None otherwise), `definition` (JSON text of
    `properties.definition`), `connection_references` (JSON text), plus `_sim_*` columns.

    `runs` is the flow API's view, one row per run of any flow. Columns: `flow_name`, `name`
    (the run id, digits ending in `CU<n>`, equal to Dataverse `flowruns.name` for solution
    flows), `start_time`, `end_time` (UTC), `status` (`Succeeded`, `Failed`, `Cancelled`,
    `Running`), `code`, `error_code`, `error_message` (None when absent), `trigger_name`,
    `client_tracking_id`, plus `_sim_*` columns (the generator's intended outcome, used to
    render the run's actions on demand).
    """

    env_id: str  # the BAP `name`: a GUID, or `Default-<tenant id>` for the default one
    display_name: str
    sku: str  # Production, Sandbox, Developer, Trial, Default
    slug: str  # URL segment of its Dataverse on the simulator: https://host:port/dv/<slug>/
    has_dataverse: bool
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)
    flows: pd.DataFrame = field(default_factory=pd.DataFrame)
    runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Every system job's whole life (`auditor.sim.jobs`); `tables["asyncoperations"]` is it
    # seen at the tenant's clock, rebuilt when the clock moves.
    job_plan: pd.DataFrame = field(default_factory=pd.DataFrame)


@dataclass
class SimTenant:
    """A whole simulated tenant with its clock.

    History is generated for `[start, end]`; only rows up to `now` are served. `advance`
    moves the clock forward (never past `end`), which reveals the rows generated after the
    old `now`: the way tests and benchmarks get "new data" for incremental scans.
    """

    tenant_id: str
    client_id: str
    client_secret: str
    seed: int
    scale: str
    start: datetime
    now: datetime
    end: datetime
    environments: list[SimEnvironment]

    def environment(self, key: str) -> SimEnvironment | None:
        """The environment with this id or slug, if any."""
        for env in self.environments:
            if key in (env.env_id, env.slug):
                return env
        return None

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by `delta`, stopping at `end`; system jobs change state."""
        from auditor.sim.jobs import jobs_at

        self.now = min(self.now + delta, self.end)
        for env in self.environments:
            if not env.job_plan.empty:
                env.tables["asyncoperations"] = jobs_at(env.job_plan, pd.Timestamp(self.now))


@dataclass(frozen=True)
class SimOptions:
    """How the simulator serves: latency, faults, limits, denied tables, token lifetime."""

    seed: int = 7
    scale: str = "small"
    latency_ms: float = 0.0
    # Fault kind -> probability per request. Kinds: "429", "500", "503", "reset", "timeout",
    # "badjson", "expire" (answer 401 as if the token had expired).
    faults: Mapping[str, float] = field(default_factory=dict)
    timeout_s: float = 30.0  # how long a "timeout" fault stalls before answering
    token_lifetime_s: int = 3600
    # Service protection per client and environment (Dataverse defaults are 52 concurrent,
    # 6000 requests and 1,200 s of combined execution time per 300 s per user and web server,
    # https://learn.microsoft.com/power-apps/developer/data-platform/api-limits).
    max_concurrent: int = 52
    max_requests: int = 6000
    window_s: float = 300.0
    max_execution_s: float = 1200.0
    retry_after_s: float = 1  # Retry-After (seconds) of service-protection and injected 429s
    # (environment slug or id, entity set) pairs answered with 403 and a privilege error.
    deny: frozenset[tuple[str, str]] = frozenset()
    # Whether the app is registered with Power Platform as a management application; without
    # it the admin routes (BAP `scopes/admin`, flow API `scopes/admin`) answer 403.
    # https://learn.microsoft.com/power-platform/admin/powerplatform-api-create-service-principal
    management_app: bool = True
