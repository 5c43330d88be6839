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

One module per part, called in order by `environment.environment_truth`: `frames` (rows at
`now`, the collector's filters, numeric helpers), `definitions` (walking a definition) and
`flow_facts` (what the rules read of one flow), `runs` (outcomes and action metrics of the
runs), `answer_facts` (the facts of each answer from the flows), `steps_and_jobs` (plug-in
steps, async jobs and background workflows), `verdicts` (the rules above); `thresholds`
holds `THRESHOLDS` and the five `ANSWERS`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.files import write_text
from auditor.sim.model import SimTenant
from auditor.sim.scenario import generate
from auditor.sim.truth.definitions import is_effect
from auditor.sim.truth.environment import environment_truth
from auditor.sim.truth.frames import iso
from auditor.sim.truth.thresholds import ANSWERS, THRESHOLDS

__all__ = ["ANSWERS", "THRESHOLDS", "compute_truth", "is_effect", "write_truth"]


def compute_truth(tenant: SimTenant) -> dict[str, Any]:
    """The expected counts, metrics and verdicts of the tenant at `tenant.now`."""
    now_ns = int(pd.Timestamp(tenant.now).value)
    return {
        "seed": tenant.seed,
        "scale": tenant.scale,
        "now": iso(now_ns),
        "tenant_id": tenant.tenant_id,
        "thresholds": dict(THRESHOLDS),
        "environments": [environment_truth(tenant, env, now_ns) for env in tenant.environments],
    }


def write_truth(seed: int, scale: str, path: Path) -> None:
    """Generate the tenant and write its ground truth as JSON (UTF-8, stable key order),
    atomically and owner-only like every file the auditor writes (`auditor.files`)."""
    truth = compute_truth(generate(seed, scale))
    write_text(path, json.dumps(truth, indent=2, ensure_ascii=False) + "\n")
