"""`auditor lint`: the analysis's static checks over exported solution files.

No tenant and no network. The files become the frames a scan would have stored: cloud flows
as `workflows` rows whose `clientdata` is the file's JSON (the definition parser reads every
shape a flow comes in), plug-in steps as `plugin_steps`, classic workflows with their trigger
columns. Every check of the catalog then runs on them, exactly as after a scan; what only
telemetry shows (run history, trace logs, system jobs) is a query "not collected" with the
reason "needs a tenant scan", so those parts are `not-assessed` and the five verdicts come
from the static evidence alone. A file that cannot be read is an `error` finding naming it,
and so is a reading budget the files spent (`auditor.lint.limits`): the lint is then
`partial` and says where reading stopped.
Each finding is then placed in a file and, where it can be found, on the line of the trigger,
action or step it names (SARIF `physicalLocation`), for code-scanning views.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.assessment import MuteEntry
from auditor.bulk import collection_paused
from auditor.checks import CHECKS, run_checks
from auditor.checks.base import Finding, make
from auditor.checks.evidence import Evidence
from auditor.frames import Frames, Window
from auditor.lint.inputs import (
    LintFlow,
    LintInputs,
    LintStep,
    Location,
    Problem,
    lines_of_keys,
    read_inputs,
)
from auditor.queries import default_catalog
from auditor.report.document import Location as FileLocation
from auditor.report.document import Report, ReportFinding
from auditor.report.model import report_model
from auditor.settings import Settings

LINT_ENV = "lint"  # the one environment of a lint: the files given
# Queries whose data the files hold: the environment (the files stand for it), flow
# definitions (both sources a scan reads them from) and plug-in step registrations.
FROM_FILES = ("environments", "workflows", "flows", "sdkmessageprocessingsteps")
NEEDS_SCAN = "needs a tenant scan"
SCAN_HINT = (
    "Run history, plug-in trace logs and system jobs exist only in an environment: run "
    "`auditor scan` against the environment this solution is deployed to."
)
# The check that reports a file that cannot be read, by what the file would have held.
UNREADABLE_CHECK = {
    "flow": "flow-definition-unreadable",
    "solution": "flow-definition-unreadable",
    "step": "plugin-update-unfiltered",
    "workflow": "workflow-update-unfiltered",
}
# Evidence columns that name the action a flow's finding is about, most specific first.
ACTION_KEYS = ("catch_action", "action_name", "start_action")
_JSON_LINE = re.compile(r"at line (\d+) column \d+")


@dataclass(frozen=True)
class LintResult:
    """A lint's report model (the `auditor report` model, with file locations), its inputs
    and how long it took."""

    model: Report
    inputs: LintInputs
    seconds: float


def lint(
    paths: Sequence[Path],
    settings: Settings,
    *,
    mutelist: Sequence[MuteEntry] = (),
    now: datetime | None = None,
) -> LintResult:
    """Read `paths`, run every check on what they hold and build the report model."""
    started = time.perf_counter()
    with collection_paused():  # everything a lint builds is bounded by its reading budget
        return _lint(paths, settings, mutelist, now, started)


def _lint(
    paths: Sequence[Path],
    settings: Settings,
    mutelist: Sequence[MuteEntry],
    now: datetime | None,
    started: float,
) -> LintResult:
    inputs = read_inputs(paths)
    frames = lint_frames(inputs, paths, now or datetime.now(UTC))
    evidence = Evidence(frames)
    findings = [*run_checks(evidence, settings), *problem_findings(inputs.problems)]
    about = {
        "kind": "lint",
        "id": 0,
        "status": "partial" if inputs.problems else "completed",
        "inputs": [path.as_posix() for path in paths],
    }
    model = report_model(evidence, findings, about, mutelist=mutelist, generated=now)
    placed = place_findings(model, inputs, evidence, default=Location(paths[0].as_posix()))
    return LintResult(placed, inputs, time.perf_counter() - started)


def lint_frames(inputs: LintInputs, paths: Sequence[Path], now: datetime) -> Frames:
    """The frames a scan of the solution's environment would have stored, from the files."""
    flows: list[dict[str, Any]] = [
        {
            "environment_id": LINT_ENV,
            "workflowid": flow.flow_id,
            "name": flow.name,
            "category": 5,  # Modern Flow
            "type": 1,  # Definition
            # Every flow shipped is judged: its state in the target is decided at import.
            "statecode": 1,
            "clientdata": flow.text,
            # Repeated blocks are compared within a solution (None: the environment's).
            "solution": flow.solution,
        }
        for flow in inputs.flows
    ]
    classic: list[dict[str, Any]] = [
        {
            "environment_id": LINT_ENV,
            "workflowid": workflow.workflowid,
            "name": workflow.name,
            "category": 0,  # Workflow
            "type": 1,
            "statecode": 1,
            "primaryentity": workflow.primary_entity,
            "mode": workflow.mode,
            "triggeroncreate": workflow.trigger_on_create,
            "triggerondelete": workflow.trigger_on_delete,
            "triggeronupdateattributelist": workflow.trigger_on_update_attributes,
        }
        for workflow in inputs.workflows
    ]
    steps = _steps_frame(inputs.steps)
    counts = {
        "workflows": len(flows) + len(classic),
        "flows": len(flows),
        "sdkmessageprocessingsteps": len(inputs.steps),
    }
    queries = [
        {
            "scan_id": 0,
            "environment_id": LINT_ENV,
            "query_id": query_id,
            "status": "collected" if query_id in FROM_FILES else "not-collected",
            "rows": counts.get(query_id, 0),
            "reason": None if query_id in FROM_FILES else NEEDS_SCAN,
            "hint": None if query_id in FROM_FILES else SCAN_HINT,
        }
        for query_id in default_catalog().outcomes()
    ]
    environment = {
        "environment_id": LINT_ENV,
        "display_name": ", ".join(path.as_posix() for path in paths),
        "dataverse_url": "lint:",  # the files stand in for a Dataverse environment
        "discovered_by": "lint",
    }
    return Frames.from_frames(
        Window(now - timedelta(days=7), now),
        environments=pd.DataFrame([environment]),
        workflows=pd.DataFrame(flows + classic),
        plugin_steps=steps,
        scan_queries=pd.DataFrame(queries),
    )


def _steps_frame(steps: Sequence[LintStep]) -> pd.DataFrame:
    """The `plugin_steps` rows of the steps read (a solution may register 200,000 steps:
    built from the tuples at once, not a dict per row)."""
    frame = pd.DataFrame(list(steps), columns=LintStep._fields).drop(columns="location")
    frame.insert(0, "environment_id", LINT_ENV)
    frame["statecode"] = 0  # exports carry no state; a step is imported to run
    frame["customizationlevel"] = 1  # it is in the solution: custom
    return frame


def problem_findings(problems: Sequence[Problem]) -> list[Finding]:
    """One `error` finding per file that could not be read, naming it and saying why."""
    out = []
    for problem in problems:
        place = problem.location
        shown = _shown(place)
        out.append(
            make(
                CHECKS[UNREADABLE_CHECK.get(problem.kind, "flow-definition-unreadable")].meta,
                "error",
                f"{shown}: {problem.message}",
                environment_id=LINT_ENV,
                resource_kind="file",
                resource_id=shown,
                resource_name=Path(place.member or place.file).name,
            )
        )
    return out


def place_findings(
    report: Report, inputs: LintInputs, evidence: Evidence, *, default: Location
) -> Report:
    """The report with a `location` on every finding: the file of the flow, step or workflow
    it is about, on the line of the action or trigger it names; else the first PATH. The
    lines of a flow's names are found in one pass over its text, for all its findings."""
    flows = {flow.flow_id: flow for flow in inputs.flows}
    triggers = _trigger_names(evidence)
    by_resource: dict[tuple[str, str], Location] = {
        **{("step", s.stepid): s.location for s in inputs.steps},
        **{("workflow", w.workflowid): w.location for w in inputs.workflows},
    }
    problems = {_shown(p.location): p.location for p in inputs.problems}
    places: dict[int, Location] = {}
    waiting: dict[str, list[tuple[int, list[str]]]] = {}
    for finding in report.findings:
        place = by_resource.get((finding.resource_kind, str(finding.resource_id)))
        place = place or problems.get(str(finding.resource_id))
        if place is None:
            flow, names, place = _flow_place(finding, flows, triggers)
            if flow is not None and place is None:
                waiting.setdefault(flow.flow_id, []).append((finding.index, names))
                continue
        places[finding.index] = place or default
    for flow_id, found in waiting.items():
        flow = flows[flow_id]
        lines = lines_of_keys(flow.text, {name for _, names in found for name in names})
        for index, names in found:
            line = next((lines[name] for name in names if name in lines), None)
            places[index] = Location(flow.location.file, flow.location.member, line)
    located = tuple(_located(f, places[f.index]) for f in report.findings)
    return replace(report, findings=located)


def _located(finding: ReportFinding, place: Location) -> ReportFinding:
    shown = _shown(place)
    message = finding.message
    if finding.status == "error" and shown not in message:
        message = f"{shown}: {message}"  # an error names its file
    where = FileLocation(file=place.file, member=place.member, line=place.line)
    return replace(finding, location=where, message=message)


def _flow_place(
    finding: ReportFinding, flows: Mapping[str, LintFlow], triggers: Mapping[str, str]
) -> tuple[LintFlow | None, list[str], Location | None]:
    """(the flow a finding is about, the names to look up in its text, its place when that
    needs no lookup: a zip member, or the line a parser's message gives)."""
    evidence = finding.evidence
    flow_id = str(finding.resource_id)
    if finding.resource_kind == "action-block" and evidence:
        flow_id = str(evidence[0].get("flow_id"))
    flow = flows.get(flow_id)
    if flow is None:
        return None, [], None
    if flow.location.member is not None:
        return flow, [], flow.location  # lines of a zip member are no use to a code-scanning view
    if finding.check_id == "flow-definition-unreadable":
        found = _JSON_LINE.search(finding.message)
        if found:
            return flow, [], Location(flow.location.file, None, int(found.group(1)))
    names = [str(row[key]) for row in evidence[:1] for key in ACTION_KEYS if row.get(key)]
    trigger = triggers.get(flow_id)
    wanted = [*names, *([trigger] if trigger else [])]
    return flow, wanted, None if wanted else Location(flow.location.file)


def _trigger_names(evidence: Evidence) -> dict[str, str]:
    triggers = evidence.triggers
    named = triggers[triggers["trigger_name"].notna()]
    return dict(zip(named["flow_id"].astype(str), named["trigger_name"].astype(str), strict=True))


def _shown(place: Location) -> str:
    """The file as shown in messages: `file`, or `file!member` inside a zip."""
    return place.file + (f"!{place.member}" if place.member else "")


__all__ = ["LINT_ENV", "NEEDS_SCAN", "LintResult", "lint", "lint_frames", "problem_findings"]
