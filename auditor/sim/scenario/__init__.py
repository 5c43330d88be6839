"""The scenario generator: a whole simulated tenant from a seed and a scale.

Everything is derived from `numpy.random.PCG64` streams keyed by (seed, scale, environment,
purpose), never from the clock or Python's `hash()`, so the same seed and scale give identical
frames and a different seed gives a different tenant. Rows are built column-wise with numpy
(the `large` scale has about a million trace logs); only flows and plug-in steps, a few hundred
per environment, are Python objects.

One module per part of an environment, called in order by `environment.build_environment`:
`flows` (with `flow_cast`, which flows a profile has), `plugins` (steps and their tables),
`executions` (plug-in trace logs and async jobs), `runs`, `flow_tables` (workflows, callback
registrations, flow runs and events), `system_jobs` (the other jobs and the asyncoperations
table); `actions` renders a run's action results on demand. `state` holds what the parts
share, `columns` the clock and column builders, `profiles` the scales and environment kinds.

The parts agree with each other the way a real tenant's do (docs/architecture.md, "Where the
simulator sits"):
- every solution flow has a `workflows` row whose `clientdata` holds the definition the flow
  API serves; Dataverse-triggered flows that are on have a `callbackregistrations` row
  (`name` = the flow's workflowid: our inference, the documented columns do not say which
  flow a registration belongs to);
- a run's status comes from playing its definition for the run's intended outcome
  (`flow_runs.execute`), and `render_actions` plays the same definition to build the action
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

Sources for the shapes: the Learn pages cited in each part and queries/contract.toml;
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/plugintracelog
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/asyncoperation
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/callbackregistration
https://learn.microsoft.com/power-automate/dataverse/cloud-flow-run-metadata
"""

from __future__ import annotations

from auditor.sim.model import SCALES, SimEnvironment, SimTenant
from auditor.sim.names import guid
from auditor.sim.scenario.actions import render_actions
from auditor.sim.scenario.columns import END, NOW, RUNS_VISIBLE_BY, START, rng_for
from auditor.sim.scenario.environment import build_environment
from auditor.sim.scenario.profiles import PROFILES, SCALE_PARAMS, Profile, Scale, profiles_for

__all__ = [
    "END",
    "NOW",
    "PROFILES",
    "RUNS_VISIBLE_BY",
    "SCALE_PARAMS",
    "START",
    "Profile",
    "Scale",
    "generate",
    "profiles_for",
    "render_actions",
]


def generate(seed: int, scale: str) -> SimTenant:
    """Build the simulated tenant for a seed and a scale (tiny, small, medium, large)."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    root = rng_for(seed, scale, 0)
    tenant_id = guid(root)
    client_id = guid(root)
    secret = "sim~" + guid(root).replace("-", "")
    envs: list[SimEnvironment] = []
    for i, profile in enumerate(profiles_for(scale)):
        env_id = f"Default-{tenant_id}" if profile.sku == "Default" else guid(root)
        envs.append(build_environment(seed, scale, i + 1, profile, env_id))
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
