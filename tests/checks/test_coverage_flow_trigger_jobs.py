"""coverage-flow-trigger-jobs: trigger-execution counts rest on tying CallbackRegistration
Expander jobs (operationtype 79) to flows, an inferred link; jobs that link to no known flow
leave the counts unknown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pandas as pd

from auditor.analysis import actions
from auditor.analysis.jobs import reduce_jobs
from tests.checks.builders import (
    END,
    ENV,
    dataverse_trigger,
    flow,
    frames,
    run,
    statuses,
)

CHECK = "coverage-flow-trigger-jobs"
WID = "8e1f0f7a-0000-4000-8000-000000000001"


def job(job_id: str, activation: str | None = WID, operationtype: int = 79) -> dict[str, Any]:
    return {
        "environment_id": ENV,
        "asyncoperationid": job_id,
        "name": "CallbackRegistration Expander Operation",
        "operationtype": operationtype,
        "statecode": 3,
        "statuscode": 30,
        "workflowactivationid": activation,
        "createdon": END - timedelta(hours=1),
    }


def flows() -> list[dict[str, Any]]:
    return [flow("f1", trigger=dataverse_trigger(), workflowid=WID)]


def test_jobs_linked_to_a_known_flow_pass_and_say_the_link_is_inferred() -> None:
    """Upper-case ids link too: the rule compares GUIDs case-insensitively."""
    jobs = [job("j1"), job("j2", WID.upper()), job("j3", "other-workflow"), job("j4", None)]
    found = run(CHECK, frames(flows=flows(), asyncoperations=[*jobs, job("p1", operationtype=1)]))
    assert statuses(found) == {ENV: "pass"}
    assert found[0].message.startswith("2 of 4 flow-trigger jobs linked to flows")
    assert "link inferred" in found[0].message
    assert found[0].values == {
        "trigger_jobs": 4,
        "linked": 2,
        "known_flows": 1,
        "link_inferred": True,
    }
    assert [e["asyncoperationid"] for e in found[0].evidence] == ["j3", "j4"]


def test_jobs_linked_to_no_flow_are_not_assessed() -> None:
    found = run(CHECK, frames(flows=flows(), asyncoperations=[job("j1", "x"), job("j2", "y")]))
    assert statuses(found) == {ENV: "not-assessed"}
    message = found[0].message
    assert "2 flow-trigger jobs" in message
    assert "none could be linked" in message
    assert "trigger-execution counts are unknown" in message
    assert "inferred" in message
    assert found[0].values["linked"] == 0
    assert [e["workflowactivationid"] for e in found[0].evidence] == ["x", "y"]


def test_no_flow_trigger_jobs_pass() -> None:
    found = run(CHECK, frames(flows=flows(), asyncoperations=[job("p1", operationtype=1)]))
    assert statuses(found) == {ENV: "pass"}
    assert found[0].message == "no flow-trigger jobs in the window"
    assert found[0].values["trigger_jobs"] == 0


def test_trigger_executions_say_their_link_to_the_flow_is_inferred() -> None:
    jobs = pd.DataFrame(
        {
            "environment_id": ENV,
            "operationtype": pd.array([79, 79], dtype="Int64"),
            "workflowactivationid": [WID, WID.upper()],
        }
    )
    defs = pd.DataFrame({"environment_id": ENV, "flow_id": ["f1"], "workflowid": [WID]})
    triggers = pd.DataFrame({"environment_id": ENV, "flow_id": ["f1"], "is_dataverse": [True]})
    counts = pd.DataFrame({"environment_id": ENV, "flow_id": ["f1"], "runs": [1]})
    expanders = reduce_jobs(jobs).expanders
    out = actions.trigger_executions(expanders, defs, triggers, counts)
    assert list(out.columns) == list(actions.TRIGGER_DTYPES)
    assert out["link_inferred"].dtype == bool
    assert out["link_inferred"].tolist() == [actions.TRIGGER_LINK_INFERRED] == [True]
    assert out["trigger_executions"].tolist() == [2]
    empty = actions.trigger_executions(expanders, defs, triggers.iloc[0:0], counts)
    assert "link_inferred" in empty.columns


def test_flow_show_labels_trigger_executions_as_inferred() -> None:
    from rich.console import Console

    from auditor.checks.evidence import Evidence
    from auditor.cli.render_flows import render_flow
    from auditor.explore.flow_detail import flow_show

    evidence = Evidence(frames(flows=flows(), asyncoperations=[job("j1"), job("j2")]))
    data = flow_show(evidence, pd.DataFrame(), "f1")
    executions = data["trigger_executions"]
    assert (executions["trigger_executions"], executions["link_inferred"]) == (2, True)
    assert executions["link"] == actions.TRIGGER_LINK
    console = Console(width=200, record=True, color_system=None)
    render_flow(console, data)
    text = console.export_text()
    assert f"(link to the flow inferred: {actions.TRIGGER_LINK})" in text
