"""The five verdicts of an environment from its facts: violations make do-not-check, coverage
gaps needs-review, else check, each with its reasons (the package docstring's "Verdict rules").

Apart because it reads only the facts, never the frames.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from auditor.sim.model import SimEnvironment
from auditor.sim.truth.thresholds import ANSWERS, THRESHOLDS


def _count(items: list[Any], text: str) -> list[str]:
    return [f"{len(items)} {text}"] if items else []


def verdicts_of(
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
