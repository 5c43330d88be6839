"""Action results of sampled runs: unnecessary runs, retries, throttling and durations.

An unnecessary run (docs/how-a-scan-runs.md, specified in `auditor.sim.truth`) is a finished run
in which every effect action of the flow's definition was Skipped or never appears in the
run's action results: the flow ran and changed nothing, so a trigger condition could have
kept it from starting. Only a sample of runs is read with action detail, so the rate comes
with a Wilson 95 % interval and is extrapolated to the flow's finished runs in the window.

The action rows are reduced where they are held (`auditor.engine.reductions`: effect actions
that ran per run, retries and durations per action); this module finishes the small frames.
"""

from __future__ import annotations

import pandas as pd

from auditor.analysis.definitions import definition_frames
from auditor.analysis.jobs import EXPANDER_JOB
from auditor.engine.reducer import ActionReduction
from auditor.frames import Frames, flow_definitions

Z95 = 1.959963984540054

CLASSIFIED_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "run_name": "str",
    "effect_actions": "Int64",  # effect actions in the definition; NA = no definition
    "effects_ran": "int64",
    "unnecessary": "boolean",  # NA when the flow's definition is unknown
}

UNNECESSARY_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "sampled": "int64",  # finished runs read with action detail and classified
    "unnecessary": "int64",
    "rate": "Float64",
    "rate_low": "Float64",  # Wilson 95 % interval
    "rate_high": "Float64",
    "finished_runs": "Int64",  # finished runs in the window (the population sampled)
    "extrapolated_unnecessary": "Float64",
}

RETRY_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "action_name": "str",
    "executions": "int64",
    "retried": "int64",  # executions with at least one retry
    "retries": "int64",
    "attempts": "int64",  # attempts of the retried executions (retries + 1 each)
    "recovered": "int64",  # retried, then Succeeded
    "exhausted": "int64",  # retried, then Failed
    "throttled": "int64",  # attempts answered 429 / TooManyRequests (retries and final)
    "server_errors": "int64",  # retry attempts answered 5xx
    "timeouts": "int64",  # retry attempts answered 408
}

DURATION_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "action_name": "str",
    "executions": "int64",
    "p50_ms": "Float64",
    "p95_ms": "Float64",
    "max_ms": "Float64",
}

TRIGGER_DTYPES: dict[str, str] = {
    "environment_id": "str",
    "flow_id": "str",
    "workflowid": "str",
    "trigger_executions": "int64",  # CallbackRegistration expander jobs (operationtype 79)
    "runs": "int64",
    "executions_without_run": "int64",
    "runs_per_execution": "Float64",
    "link_inferred": "bool",  # True: jobs reach the flow by TRIGGER_LINK, which no page states
}

_KEY = ["environment_id", "flow_id"]
_RUN = [*_KEY, "run_name"]
_ACTION = [*_KEY, "action_name"]
# Which flow a CallbackRegistration Expander job runs is inferred, not documented. The
# bypass page says only that "the CallbackRegistration table manages flow triggers, and
# there's an internal operation called expander that creates the system jobs"
# (https://learn.microsoft.com/power-apps/developer/data-platform/bypass-power-automate-flows);
# the asyncoperation reference describes WorkflowActivationId as "Unique identifier of the
# workflow activation related to the system job" (Targets: workflow) and names no column for
# a type-79 job's flow (.../reference/entities/asyncoperation); the callbackregistration
# reference has no link to system jobs. Every trigger-execution figure says so.
TRIGGER_LINK = "job workflowactivationid = the flow's workflowid"
TRIGGER_LINK_INFERRED = True


def _empty(dtypes: dict[str, str]) -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in dtypes.items()})


def effect_actions(definition_actions: pd.DataFrame) -> pd.DataFrame:
    """environment_id, flow_id, action_name: each effect action of a flow's definition
    (the frame `definitions.definition_frames` gives), once."""
    effects = definition_actions.loc[definition_actions["is_effect"].astype(bool), _ACTION]
    return effects.drop_duplicates().reset_index(drop=True)


def classify_runs(
    sampled: pd.DataFrame, definition_actions: pd.DataFrame, runs: pd.DataFrame
) -> pd.DataFrame:
    """One row per sampled finished run: how many effect actions ran, and whether none did.

    `sampled` holds each run read with action detail and the distinct effect actions of
    `effect_actions` that ran in it (`Reducer.actions`), `definition_actions` the action
    frame of `definitions.definition_frames`, `runs` the common run frame of `analysis.runs`.
    Runs still going have no outcome and are left out.
    """
    finished = runs.loc[runs["finished"] & (runs["source"] == "flow-api"), _RUN]
    sampled = sampled.loc[:, [*_RUN, "effects_ran"]]
    sampled = sampled.merge(finished.drop_duplicates(), on=_RUN, how="inner")
    if sampled.empty:
        return _empty(CLASSIFIED_DTYPES)
    effect_count = effect_actions(definition_actions).groupby(_KEY).size()
    defined = definition_actions.loc[:, _KEY].drop_duplicates()
    out = sampled.merge(effect_count.rename("effect_actions").reset_index(), on=_KEY, how="left")
    out["effects_ran"] = out["effects_ran"].fillna(0)
    known = pd.MultiIndex.from_frame(out[_KEY]).isin(pd.MultiIndex.from_frame(defined))
    # A flow whose definition has actions but no effect: every run changes nothing.
    out["effect_actions"] = out["effect_actions"].where(~known, out["effect_actions"].fillna(0))
    out["unnecessary"] = (out["effects_ran"] == 0).astype("boolean")
    out.loc[~known, "unnecessary"] = pd.NA
    out = out.loc[:, list(CLASSIFIED_DTYPES)].astype(CLASSIFIED_DTYPES)
    return out.sort_values(_RUN, kind="stable").reset_index(drop=True)


def wilson_interval(
    successes: pd.Series, trials: pd.Series, z: float = Z95
) -> tuple[pd.Series, pd.Series]:
    """Wilson score interval of a proportion; NA where there are no trials.

    Unlike the normal approximation it stays within [0, 1] and is sensible for the small
    samples and extreme rates (0 or all) action samples often have.
    """
    n = trials.astype("Float64").where(trials > 0)
    p = successes.astype("Float64") / n
    z2 = z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = (z / (1 + z2 / n)) * ((p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5)
    return (centre - half).clip(lower=0.0), (centre + half).clip(upper=1.0)


def unnecessary_summary(
    classified: pd.DataFrame,
    finished_runs: pd.DataFrame | None = None,
    *,
    z: float = Z95,
) -> pd.DataFrame:
    """Per flow: sampled runs, unnecessary runs, rate with its Wilson interval, and the rate
    times the flow's finished runs in the window.

    `finished_runs` holds (environment_id, flow_id, finished), e.g. `runs.run_summary`; without
    it nothing is extrapolated.
    """
    known = classified[classified["unnecessary"].notna()]
    grouped = known.groupby(_KEY, sort=True)
    out = grouped.agg(
        sampled=("run_name", "size"),
        unnecessary=("unnecessary", "sum"),
    ).reset_index()
    if finished_runs is not None and not finished_runs.empty:
        population = finished_runs.loc[:, [*_KEY, "finished"]].rename(
            columns={"finished": "finished_runs"}
        )
        out = out.merge(population.drop_duplicates(_KEY), on=_KEY, how="left")
    else:
        out["finished_runs"] = pd.NA
    out = out.astype({"sampled": "int64", "unnecessary": "int64"})
    out["rate"] = out["unnecessary"].astype("Float64") / out["sampled"].where(out["sampled"] > 0)
    out["rate_low"], out["rate_high"] = wilson_interval(out["unnecessary"], out["sampled"], z)
    finished = out["finished_runs"].astype("Float64")
    out["extrapolated_unnecessary"] = out["rate"] * finished
    return out.loc[:, list(UNNECESSARY_DTYPES)].astype(UNNECESSARY_DTYPES)


def typed_summary(reduced: pd.DataFrame, dtypes: dict[str, str]) -> pd.DataFrame:
    """A reduced per-action frame (`ActionReduction.retries`, `.durations`, in key
    order) in its analysis dtypes (RETRY_DTYPES, DURATION_DTYPES)."""
    if reduced.empty:
        return _empty(dtypes)
    return reduced.loc[:, list(dtypes)].astype(dtypes).reset_index(drop=True)


def linked_flows(definitions: pd.DataFrame) -> pd.DataFrame:
    """environment_id, workflowid (lower case): the flows of `definitions` an Expander job
    can name, once each. The one rule (TRIGGER_LINK, inferred: see above) by which every
    trigger-execution figure and the `coverage-flow-trigger-jobs` check tie a job to a flow;
    the engine applies it to the job rows (`reductions.unlinked_expanders`)."""
    known = definitions.loc[definitions["workflowid"].notna(), ["environment_id", "workflowid"]]
    out = pd.DataFrame(
        {
            "environment_id": known["environment_id"].astype("str"),
            "workflowid": known["workflowid"].astype("str").str.lower(),
        }
    )
    return out.drop_duplicates().reset_index(drop=True)


def expander_links(expanders: pd.DataFrame, definitions: pd.DataFrame) -> pd.DataFrame:
    """The Expander jobs counted per environment and workflowid (`JobReduction.expanders`),
    each with `linked`: its workflowid names a flow of `definitions` (`linked_flows`)."""
    pairs = pd.MultiIndex.from_frame(linked_flows(definitions))
    keys = pd.MultiIndex.from_arrays(
        [expanders["environment_id"].astype("str"), expanders["workflowid"].astype("str")]
    )
    linked = expanders["workflowid"].notna().to_numpy(dtype=bool) & keys.isin(pairs)
    return expanders.assign(linked=linked)


def trigger_executions(
    expanders: pd.DataFrame,
    definitions: pd.DataFrame,
    triggers: pd.DataFrame,
    run_counts: pd.DataFrame,
) -> pd.DataFrame:
    """For Dataverse-triggered flows: trigger evaluations (expander jobs) against runs.

    Each Dataverse event a flow's registration receives is a CallbackRegistration Expander
    job; jobs that started no run are evaluations a trigger condition filtered out, or events
    the flow did not need. `expanders` counts the jobs per environment and workflowid
    (`JobReduction.expanders`); a job is tied to its flow by TRIGGER_LINK (`linked_flows`),
    an inference no Microsoft page states, so every row says `link_inferred`: when the
    inference is wrong the counts are zero, and `coverage-flow-trigger-jobs` says so.
    """
    dataverse = triggers.loc[triggers["is_dataverse"].astype(bool), _KEY].drop_duplicates()
    flows = dataverse.merge(
        definitions.loc[:, [*_KEY, "workflowid"]].drop_duplicates(_KEY), on=_KEY, how="left"
    )
    if flows.empty:
        return _empty(TRIGGER_DTYPES)
    executions = expanders.loc[
        expanders["workflowid"].notna(), ["environment_id", "workflowid", "jobs"]
    ].rename(columns={"jobs": "trigger_executions"})
    workflow = flows["workflowid"].astype("str").str.lower()
    out = flows.assign(workflowid=workflow).merge(
        executions, on=["environment_id", "workflowid"], how="left"
    )
    counts = run_counts.loc[:, [*_KEY, "runs"]].drop_duplicates(_KEY)
    out = out.merge(counts, on=_KEY, how="left")
    out["trigger_executions"] = out["trigger_executions"].fillna(0)
    out["runs"] = out["runs"].fillna(0)
    out["executions_without_run"] = (out["trigger_executions"] - out["runs"]).clip(lower=0)
    execs = out["trigger_executions"].astype("Float64")
    out["runs_per_execution"] = out["runs"].astype("Float64") / execs.where(execs > 0)
    out["link_inferred"] = TRIGGER_LINK_INFERRED
    return out.loc[:, list(TRIGGER_DTYPES)].astype(TRIGGER_DTYPES)


def action_frames(
    frames: Frames,
    reduced: ActionReduction,
    expanders: pd.DataFrame,
    runs: pd.DataFrame,
    run_counts: pd.DataFrame,
    *,
    definitions: pd.DataFrame | None = None,
    parsed: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every action analysis: classified, unnecessary, retries, durations, triggers.
    `reduced` holds the action rows reduced by the engine (`Reducer.actions` of
    `effect_actions`), `expanders` the Expander jobs per workflow; `runs` and `run_counts`
    come from `analysis.runs`; `definitions` and `parsed` (`definition_frames` of them) are
    computed when not given."""
    definitions = flow_definitions(frames) if definitions is None else definitions
    triggers, definition_actions, _errors = parsed or definition_frames(definitions)
    classified = classify_runs(reduced.sampled, definition_actions, runs)
    population = run_counts
    if not frames.action_samples.empty:
        # Flows without runs of their own in `run_counts` use the sample's description.
        described = frames.action_samples.rename(
            columns={"flow_name": "flow_id", "runs_in_window": "finished"}
        ).loc[:, [*_KEY, "finished"]]
        population = pd.concat([run_counts.loc[:, [*_KEY, "finished"]], described])
        population = population.drop_duplicates(_KEY, keep="first")
    return {
        "classified": classified,
        "unnecessary": unnecessary_summary(classified, population),
        "retries": typed_summary(reduced.retries, RETRY_DTYPES),
        "durations": typed_summary(reduced.durations, DURATION_DTYPES),
        "triggers": trigger_executions(expanders, definitions, triggers, run_counts),
    }


__all__ = [
    "EXPANDER_JOB",
    "TRIGGER_LINK",
    "TRIGGER_LINK_INFERRED",
    "action_frames",
    "classify_runs",
    "effect_actions",
    "expander_links",
    "linked_flows",
    "trigger_executions",
    "typed_summary",
    "unnecessary_summary",
    "wilson_interval",
]
