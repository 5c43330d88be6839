"""Action results of sampled runs: unnecessary runs, retries, throttling and durations.

An unnecessary run (docs/how-a-scan-runs.md, specified in `auditor.sim.truth`) is a finished run
in which every effect action of the flow's definition was Skipped or never appears in the
run's action results: the flow ran and changed nothing, so a trigger condition could have
kept it from starting. Only a sample of runs is read with action detail, so the rate comes
with a Wilson 95 % interval and is extrapolated to the flow's finished runs in the window.
"""

from __future__ import annotations

import pandas as pd

from auditor.analysis.common import percentiles
from auditor.analysis.definitions import definition_frames
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
# Codes an attempt is answered with, by name and number.
_CODE_NUMBERS = {
    "toomanyrequests": 429,
    "requesttimeout": 408,
    "internalservererror": 500,
    "notimplemented": 501,
    "badgateway": 502,
    "serviceunavailable": 503,
    "gatewaytimeout": 504,
}
EXPANDER_JOB = 79  # asyncoperation operationtype: CallbackRegistration Expander
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


def _actions_keyed(actions: pd.DataFrame) -> pd.DataFrame:
    """Store action rows with the flow id column name the analysis uses."""
    return actions.rename(columns={"flow_name": "flow_id"})


def classify_runs(
    actions: pd.DataFrame, definition_actions: pd.DataFrame, runs: pd.DataFrame
) -> pd.DataFrame:
    """One row per sampled finished run: how many effect actions ran, and whether none did.

    `actions` are the store's `flow_run_actions`, `definition_actions` the action frame of
    `definitions.definition_frames`, `runs` the common run frame of `analysis.runs`. A run is
    sampled when it has action results; runs still going have no outcome and are left out.
    """
    acts = _actions_keyed(actions)
    sampled = acts.loc[:, _RUN].drop_duplicates()
    finished = runs.loc[runs["finished"] & (runs["source"] == "flow-api"), _RUN]
    sampled = sampled.merge(finished.drop_duplicates(), on=_RUN, how="inner")
    if sampled.empty:
        return _empty(CLASSIFIED_DTYPES)
    effects = definition_actions.loc[definition_actions["is_effect"].astype(bool), _ACTION]
    effects = effects.drop_duplicates()
    defined = definition_actions.loc[:, _KEY].drop_duplicates()
    effect_count = effects.groupby(_KEY).size().rename("effect_actions")
    status = acts["status"].astype("str").str.lower()
    ran_rows = acts.loc[status.ne("skipped").fillna(True), [*_RUN, "action_name"]]
    ran = ran_rows.merge(effects, on=_ACTION, how="inner").drop_duplicates()
    ran_count = ran.groupby(_RUN).size().rename("effects_ran")
    out = sampled.merge(effect_count.reset_index(), on=_KEY, how="left")
    out = out.merge(ran_count.reset_index(), on=_RUN, how="left")
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


def _code_numbers(codes: pd.Series) -> pd.Series:
    """HTTP status numbers from codes given as names (TooManyRequests) or numbers ("429")."""
    text = codes.astype("str").str.strip()
    named = text.str.lower().map(_CODE_NUMBERS)
    numeric = pd.to_numeric(text.where(text.str.fullmatch(r"\d{3}").fillna(False)), errors="coerce")
    return named.astype("Float64").fillna(numeric.astype("Float64"))


def retry_summary(actions: pd.DataFrame) -> pd.DataFrame:
    """Per action of a flow: retried executions, attempts, recovered and exhausted retries,
    and the codes that caused them (429 throttling, 5xx, 408) from `retryHistory`."""
    acts = _actions_keyed(actions)
    if acts.empty:
        return _empty(RETRY_DTYPES)
    retries = acts["retry_count"].astype("Float64").fillna(0).clip(lower=0)
    status = acts["status"].astype("str").str.lower()
    retried = retries > 0
    final = _code_numbers(acts["code"]).fillna(_code_numbers(acts["error_code"]))
    frame = pd.DataFrame(
        {
            "environment_id": acts["environment_id"],
            "flow_id": acts["flow_id"],
            "action_name": acts["action_name"],
            "executions": 1,
            "retried": retried.astype("int64"),
            "retries": retries.astype("int64"),
            "attempts": (retries + 1).where(retried, 0).astype("int64"),
            "recovered": (retried & (status == "succeeded")).fillna(False).astype("int64"),
            "exhausted": (retried & (status == "failed")).fillna(False).astype("int64"),
            "final_throttled": (final == 429).fillna(False).astype("int64"),
        }
    )
    codes = (
        acts.loc[acts["retry_codes"].notna(), [*_ACTION, "retry_codes"]]
        .assign(code=lambda f: f["retry_codes"].astype("str").str.split(","))
        .explode("code")
    )
    number = _code_numbers(codes["code"])
    code_counts = pd.DataFrame(
        {
            "environment_id": codes["environment_id"],
            "flow_id": codes["flow_id"],
            "action_name": codes["action_name"],
            "throttled": (number == 429).fillna(False).astype("int64"),
            "server_errors": ((number >= 500) & (number < 600)).fillna(False).astype("int64"),
            "timeouts": (number == 408).fillna(False).astype("int64"),
        }
    )
    out = frame.groupby(_ACTION, sort=True).sum()
    by_code = code_counts.groupby(_ACTION).sum()
    out = out.join(by_code, how="left").fillna(0)
    out["throttled"] = out["throttled"] + out.pop("final_throttled")
    out = out.reset_index()
    return out.loc[:, list(RETRY_DTYPES)].astype(RETRY_DTYPES)


def action_durations(actions: pd.DataFrame) -> pd.DataFrame:
    """Per action of a flow: p50 / p95 / max duration (end - start, ms) over the executions
    that ran (not Skipped) and have both times; linear percentiles (`common.percentiles`)."""
    acts = _actions_keyed(actions)
    status = acts["status"].astype("str").str.lower()
    ms = (acts["end_time"] - acts["start_time"]).dt.total_seconds() * 1000
    keep = status.ne("skipped").fillna(True) & ms.notna() & (ms >= 0)
    frame = acts.loc[keep, _ACTION].assign(ms=ms[keep].astype("float64"))
    if frame.empty:
        return _empty(DURATION_DTYPES)
    by_action = frame.groupby(_ACTION, sort=True)["ms"]
    quantiles = percentiles(by_action, {"p50_ms": 0.5, "p95_ms": 0.95}, maximum="max_ms")
    out = quantiles.join(by_action.size().rename("executions"))
    return out.reset_index().loc[:, list(DURATION_DTYPES)].astype(DURATION_DTYPES)


def expander_jobs(jobs: pd.DataFrame, definitions: pd.DataFrame) -> pd.DataFrame:
    """The CallbackRegistration Expander jobs (operationtype 79) of `jobs` (the store's
    `asyncoperations`), one row each, indexed as in `jobs`: environment_id, workflowid (the
    job's workflowactivationid, lower case) and `linked`: it names a flow of `definitions`.

    The one rule (TRIGGER_LINK, inferred: see above) by which every trigger-execution figure
    and the `coverage-flow-trigger-jobs` check tie a job to a flow.
    """
    expanders = jobs.loc[(jobs["operationtype"] == EXPANDER_JOB).fillna(False).astype(bool)]
    out = pd.DataFrame(
        {
            "environment_id": expanders["environment_id"].astype("str"),
            "workflowid": expanders["workflowactivationid"].astype("string").str.lower(),
        }
    )
    known = definitions.loc[definitions["workflowid"].notna(), ["environment_id", "workflowid"]]
    pairs = pd.MultiIndex.from_arrays(
        [known["environment_id"].astype("str"), known["workflowid"].astype("str").str.lower()]
    )
    named = pd.MultiIndex.from_arrays([out["environment_id"], out["workflowid"]]).isin(pairs)
    out["linked"] = out["workflowid"].notna().to_numpy(dtype=bool) & named
    return out


def trigger_executions(
    jobs: pd.DataFrame,
    definitions: pd.DataFrame,
    triggers: pd.DataFrame,
    run_counts: pd.DataFrame,
) -> pd.DataFrame:
    """For Dataverse-triggered flows: trigger evaluations (expander jobs) against runs.

    Each Dataverse event a flow's registration receives is a CallbackRegistration Expander
    job; jobs that started no run are evaluations a trigger condition filtered out, or events
    the flow did not need. A job is tied to its flow by `expander_jobs` (TRIGGER_LINK), an
    inference no Microsoft page states, so every row says `link_inferred`: when the inference
    is wrong the counts are zero, and `coverage-flow-trigger-jobs` says so.
    """
    dataverse = triggers.loc[triggers["is_dataverse"].astype(bool), _KEY].drop_duplicates()
    flows = dataverse.merge(
        definitions.loc[:, [*_KEY, "workflowid"]].drop_duplicates(_KEY), on=_KEY, how="left"
    )
    if flows.empty:
        return _empty(TRIGGER_DTYPES)
    expanders = expander_jobs(jobs, definitions)
    executions = (
        expanders.groupby(["environment_id", "workflowid"])
        .size()
        .rename("trigger_executions")
        .reset_index()
    )
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
    runs: pd.DataFrame,
    run_counts: pd.DataFrame,
    *,
    definitions: pd.DataFrame | None = None,
    parsed: tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame] | None = None,
) -> dict[str, pd.DataFrame]:
    """Every action analysis over loaded frames: classified, unnecessary, retries,
    durations, triggers. `runs` and `run_counts` come from `analysis.runs`; `definitions`
    and `parsed` (`definition_frames` of them) are computed when not given."""
    definitions = flow_definitions(frames) if definitions is None else definitions
    triggers, definition_actions, _errors = parsed or definition_frames(definitions)
    classified = classify_runs(frames.flow_run_actions, definition_actions, runs)
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
        "retries": retry_summary(frames.flow_run_actions),
        "durations": action_durations(frames.flow_run_actions),
        "triggers": trigger_executions(frames.asyncoperations, definitions, triggers, run_counts),
    }


__all__ = [
    "EXPANDER_JOB",
    "TRIGGER_LINK",
    "TRIGGER_LINK_INFERRED",
    "action_durations",
    "action_frames",
    "classify_runs",
    "expander_jobs",
    "retry_summary",
    "trigger_executions",
    "unnecessary_summary",
    "wilson_interval",
]
