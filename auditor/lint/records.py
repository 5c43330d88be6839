"""The records `auditor lint` reads from files: where each one is, the cloud flows, plug-in
steps and classic workflows, the problems of what could not be read, and all of them
together. Apart so that every reader module builds them without importing the others.

Columns and their values follow the Dataverse tables the records stand for:
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/workflow
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple


@dataclass(frozen=True, slots=True)
class Location:
    """Where a record is: the file (PATH joined with the path below it, POSIX; for a zip, the
    zip), the member inside a zip, and the 1-based line of the record where it is known."""

    file: str
    member: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class LintFlow:
    """A cloud flow: its definition file's text exactly as read (byte-order mark stripped)."""

    flow_id: str  # lower-case workflow GUID, else the file's path
    name: str
    text: str
    location: Location
    # The solution it came from: the zip; for a folder, the path above its `Workflows/` folder
    # (or above `Microsoft.Flow/flows/`); None for a lone flow file outside those.
    solution: str | None = None


class LintStep(NamedTuple):
    """A plug-in step registration (the `sdkmessageprocessingstep` columns the checks use).
    A named tuple: a solution may register 200,000 steps, and a frozen dataclass takes four
    times as long to build."""

    stepid: str
    name: str
    message_name: str | None
    primary_entity: str | None
    filteringattributes: str | None  # None when absent or empty: the step runs on any column
    stage: int | None
    mode: int | None
    rank: int | None
    asyncautodelete: bool | None
    plugintype_name: str | None  # the type name, without the assembly qualification
    location: Location


@dataclass(frozen=True, slots=True)
class LintWorkflow:
    """A classic (Category 0) workflow and its trigger columns."""

    workflowid: str
    name: str
    mode: int | None  # 0 background, 1 real-time
    trigger_on_create: bool | None
    trigger_on_delete: bool | None
    trigger_on_update_attributes: str | None  # as written; None when the element is absent
    primary_entity: str | None
    location: Location


@dataclass(frozen=True, slots=True)
class Problem:
    """Something below a PATH that could not be read, and why."""

    location: Location
    kind: str  # what the file would have held: flow, step, workflow or solution
    message: str


@dataclass(frozen=True)
class LintInputs:
    """Everything the PATHs hold, deduplicated and in a stable order."""

    flows: tuple[LintFlow, ...]
    steps: tuple[LintStep, ...]
    workflows: tuple[LintWorkflow, ...]
    problems: tuple[Problem, ...]
    files: int  # files (and zip members) read
    # What a spent budget left out, as one sentence for the operator; None: everything read.
    unread: str | None = None
