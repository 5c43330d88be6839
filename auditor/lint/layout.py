"""What a source holds: the shapes a PATH may take, the files below one PATH (`Source`,
a folder or a zip) and the role of each file the reader understands. Apart because the
folder and zip readers and the record readers all classify by these roles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from auditor.errors import UsageError
from auditor.lint.limits import Found
from auditor.lint.records import Location

SHAPES_HINT = (
    "Give an unpacked solution folder (pac solution unpack), a solution .zip exported from "
    "Dataverse, a legacy flow export package (folder or .zip) or a flow definition .json."
)
# A legacy flow export package's definition file; group 1 is the flow's folder (its id).
LEGACY = re.compile(r"(?:^|/)microsoft\.flow/flows/([^/]+)/definition\.json$", re.I)


def not_a_shape(display: str, why: str) -> UsageError:
    return UsageError(f"{display}: {why}", hint=SHAPES_HINT)


class Source(Protocol):
    """The files below one PATH, by POSIX path relative to it."""

    display: str  # the PATH as given
    names: list[str]
    root_name: str  # the PATH's own folder name, for a PATH that is e.g. a Workflows folder
    absent: str  # how a missing file is described: "does not exist" / "is not in the zip"
    complete: bool  # False when the run's budget of files listed cut the listing short

    @property
    def has_lines(self) -> bool: ...

    def location(self, rel: str, line: int | None = None) -> Location: ...

    def solution(self, rel: str) -> str: ...

    def read(self, rel: str, kind: str, found: Found, limit: int) -> bytes | None: ...


@dataclass
class Layout:
    """The files of a source the reader understands, by role."""

    flows: list[str] = field(default_factory=list)  # Workflows/*.json
    flow_meta: dict[str, str] = field(default_factory=dict)  # json path (lower) -> .data.xml
    classic_meta: list[str] = field(default_factory=list)  # Workflows/*.xaml.data.xml
    steps: list[str] = field(default_factory=list)  # SdkMessageProcessingSteps/*.xml
    customizations: list[str] = field(default_factory=list)
    legacy: list[tuple[str, str]] = field(default_factory=list)  # (definition.json, folder)
    markers: int = 0  # solution.xml, manifest.json

    @property
    def empty(self) -> bool:
        found = self.flows or self.classic_meta or self.steps or self.customizations
        return not (found or self.legacy or self.markers)


# What a file of each role would have held, for its problems.
ROLE_KIND = {
    "legacy": "flow",
    "flow": "flow",
    "flow_meta": "flow",
    "classic_meta": "workflow",
    "step": "step",
    "customizations": "solution",
    "marker": "solution",
}


def role_of(rel: str, root_name: str) -> str | None:
    """The role of the file at `rel` (a key of ROLE_KIND), None for a file the reader does
    not use."""
    parts = rel.split("/")
    name = parts[-1].lower()
    parent = (parts[-2] if len(parts) > 1 else root_name).lower()
    if LEGACY.search(rel):
        return "legacy"
    if parent == "workflows" and name.endswith(".json"):
        return "flow"
    if parent == "workflows" and name.endswith(".json.data.xml"):
        return "flow_meta"
    if parent == "workflows" and name.endswith(".data.xml"):
        return "classic_meta"
    if parent == "sdkmessageprocessingsteps" and name.endswith(".xml"):
        return "step"
    if name == "customizations.xml":
        return "customizations"
    return "marker" if name in ("solution.xml", "manifest.json") else None


def classify(names: Iterable[str], root_name: str) -> Layout:
    layout = Layout()
    for rel in names:
        role = role_of(rel, root_name)
        if role == "legacy":
            legacy = LEGACY.search(rel)
            layout.legacy.append((rel, legacy.group(1) if legacy else ""))
        elif role == "flow":
            layout.flows.append(rel)
        elif role == "flow_meta":
            layout.flow_meta[rel[: -len(".data.xml")].lower()] = rel
        elif role == "classic_meta":
            layout.classic_meta.append(rel)
        elif role == "step":
            layout.steps.append(rel)
        elif role == "customizations":
            layout.customizations.append(rel)
        elif role == "marker":
            layout.markers += 1
    return layout
