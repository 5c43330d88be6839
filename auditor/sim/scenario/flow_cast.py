"""Which flows an environment has: the cast with a purpose per profile and random fillers.

The cast plants the patterns the checks look for (an unfiltered update trigger, a swallowing
catch, a flaky HTTP call...) in the messy and gaps profiles and their good counterparts in the
clean one; fillers are drawn at random, messier in the messy profile.
"""

from __future__ import annotations

from typing import Any

from auditor.sim.flow_spec import FlowSpec
from auditor.sim.names import COLUMNS, ENTITIES
from auditor.sim.scenario.state import EnvBuild

COND_DV = "@not(equals(triggerOutputs()?['body/statecode'], 1))"
COND_SP = "@not(equals(triggerOutputs()?['body/{IsFolder}'], true))"
COND_MAIL = "@contains(triggerOutputs()?['body/subject'], 'Invoice')"

Plan = tuple[FlowSpec, dict[str, float], str | None]


def filler_spec(b: EnvBuild, children: list[str]) -> tuple[FlowSpec, dict[str, float]]:
    """A random flow of no particular purpose, and the rates its runs are drawn with."""
    rng = b.r_flows
    messy = b.messy
    trigger = str(
        rng.choice(
            ["dataverse"] * 4 + ["recurrence"] * 2 + ["sharepoint", "outlook", "http", "powerapp"]
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
                kw["conditions"] = (COND_DV,)
                rates["false_trigger"] = float(rng.uniform(0.3, 1.5))
    elif trigger in ("sharepoint", "outlook") and not (messy and rng.random() < 0.3):
        kw["conditions"] = (COND_SP if trigger == "sharepoint" else COND_MAIL,)
    invoked = trigger in ("http", "powerapp")
    if invoked:
        kw["response"] = "full"
        kw["error_handling"] = "trycatch"
    elif messy:
        kw["error_handling"] = str(rng.choice(["trycatch", "trycatch", "none", "none", "swallow"]))
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
        rates["noop"] = float(rng.uniform(0.05, 0.6)) if messy else float(rng.uniform(0.02, 0.15))
    rates["fail"] = float(rng.uniform(0, 0.15 if messy else 0.04))
    if kw["throttle"]:
        rates["recovered"] = float(rng.uniform(0.05, 0.25))
    return FlowSpec(**kw), rates


def cast(b: EnvBuild) -> list[Plan]:
    """Flows with a purpose in this profile: (spec, rates, display name or None)."""
    key = b.profile.key
    child = FlowSpec(
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
                FlowSpec(
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
                FlowSpec(
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
                FlowSpec(
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
                FlowSpec(
                    role="swallowing-catch",
                    trigger="outlook",
                    conditions=(COND_MAIL,),
                    error_handling="swallow",
                    repeated_block=True,
                    effects=1,
                ),
                {"fail": 0.1, "runs_min": 25},
                '=HYPERLINK("http://x","y") Invoice intake',
            ),
            (
                FlowSpec(role="monolith", trigger="recurrence", monolith=True),
                {"fail": 0.05, "runs_min": 24, "seconds": 180.0},
                "Nightly everything job",
            ),
            (
                FlowSpec(
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
                FlowSpec(
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
                FlowSpec(
                    role="slow-approval",
                    trigger="dataverse",
                    dv_entity="quote",
                    dv_message=4,
                    dv_filtering="statuscode",
                    conditions=(COND_DV,),
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
                FlowSpec(
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
                FlowSpec(
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
                FlowSpec(
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
                FlowSpec(
                    role="conditioned-sharepoint",
                    trigger="sharepoint",
                    conditions=(COND_SP,),
                    effects=1,
                    max_container=4,
                ),
                {"fail": 0.01, "runs_min": 25},
                None,
            ),
            (
                FlowSpec(
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
                FlowSpec(role="monolith", trigger="recurrence", monolith=True),
                {"fail": 0.02, "runs_min": 24, "seconds": 150.0},
                "Everything in one flow (prototype)",
            ),
        ]
    return []
