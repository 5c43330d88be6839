"""Plug-in Update steps without filtering attributes run on every update of their table."""

from __future__ import annotations

from typing import Any

import pandas as pd

from auditor.bulk import collection_paused
from auditor.checks.base import CheckMeta, Finding, Limits, fmt, make
from auditor.checks.evidence import Evidence

META = CheckMeta(
    id="plugin-update-unfiltered",
    title="Plug-in Update step without filtering attributes",
    severity="high",
    rationale=(
        "An Update step with no filtering attributes runs on every update of its table, "
        "whatever column changed: most executions do nothing useful and all of them cost time "
        "in the user's transaction or the async queue."
    ),
    remediation=(
        "Register the step with the columns its logic reads as filtering attributes "
        "(Plug-in Registration Tool > Update Step > Filtering Attributes)."
    ),
    learn_url="https://learn.microsoft.com/power-apps/developer/data-platform/best-practices/business-logic/include-filtering-attributes-plugin-registration",
    needs=("sdkmessageprocessingsteps",),
    resource_kind="step",
)


def run(evidence: Evidence, limits: Limits) -> list[Finding]:
    """Fail each enabled custom Update step without filtering attributes, busiest first;
    pass the other enabled custom Update steps.

    The columns are read once as lists: a solution can register 200,000 steps, and reading
    them row by row through the frame cost more than judging them. The findings are made
    with the garbage collector held off (`collection_paused`)."""
    with collection_paused():
        return _judge(evidence)


def _judge(evidence: Evidence) -> list[Finding]:
    steps = evidence.frames.plugin_steps
    update = steps[
        steps["message_name"].astype("str").str.strip().str.lower().eq("update").fillna(False)
        & steps["statecode"].eq(0).fillna(False)
        & steps["customizationlevel"].eq(1).fillna(False)
    ]
    unfiltered = evidence.unfiltered_steps
    failing = set(zip(*_columns(unfiltered, "environment_id", "stepid"), strict=True))
    # Executions are known where trace logs were read (a scan), not from files (lint).
    executed: dict[Any, bool] = {}
    out = []
    for env, stepid, name, table, executions, failures, p95_ms, mode, stage in zip(
        *_columns(
            unfiltered,
            "environment_id",
            "stepid",
            "name",
            "primary_entity",
            "executions",
            "failures",
            "p95_ms",
            "mode",
            "stage",
        ),
        strict=True,
    ):
        if env not in executed:
            executed[env] = not evidence.gaps(env, ("plugintracelogs",))
        out.append(
            make(
                META,
                "fail",
                f"Update step on {table} has no filtering attributes; "
                + (
                    f"it ran {fmt(executions)} times in the window (p95 {fmt(p95_ms)} ms)"
                    if executed[env]
                    else "every update of the table runs it"
                ),
                environment_id=env,
                resource_id=stepid,
                resource_name=name,
                values={
                    "executions": executions,
                    "failures": failures,
                    "p95_ms": p95_ms,
                    "mode": mode,
                    "stage": stage,
                    "table": table,
                },
            )
        )
    for env, stepid, name, table, attributes in zip(
        *_columns(
            update, "environment_id", "stepid", "name", "primary_entity", "filteringattributes"
        ),
        strict=True,
    ):
        if (env, stepid) in failing:
            continue
        out.append(
            make(
                META,
                "pass",
                f"Update step on {table} filters on {attributes}",
                environment_id=env,
                resource_id=stepid,
                resource_name=name,
                values={"filtering_attributes": attributes},
            )
        )
    return out


def _columns(frame: pd.DataFrame, *names: str) -> list[list[Any]]:
    return [frame[name].tolist() for name in names]
