"""The inputs of `auditor lint`: exported solutions and flow files, read offline.

Each PATH is one of four shapes, and the reader turns all of them into the same records
(cloud flows, plug-in steps, classic workflows) plus the problems of what could not be read:

1. An unpacked solution folder (`pac solution unpack` / SolutionPackager), found anywhere
   below PATH: `Workflows/<Name>-<GUID>.json` with its `.json.data.xml` sibling,
   `SdkMessageProcessingSteps/{<id>}.xml`, `Other/Customizations.xml` (classic workflows,
   steps, references to flow files) and `Workflows/*.xaml.data.xml` (classic workflows).
   https://learn.microsoft.com/power-platform/alm/solution-packager-tool
2. A solution .zip exported from Dataverse (`customizations.xml`, `solution.xml`,
   `Workflows/*.json`), read in memory: nothing is written to disk.
3. A legacy flow export package (`Microsoft.Flow/flows/<guid>/definition.json`), as a folder
   or a .zip.
4. One flow definition .json: `clientdata` (`{"properties": {"definition": ...}}`), legacy
   (`{"name", "id", "type", "properties": {"displayName", "definition"}}`) or bare
   (`{"$schema", "triggers", "actions"}`).
   https://learn.microsoft.com/power-automate/manage-flows-with-code

The files are untrusted: XML is parsed with defusedxml (no DTD, no entity expansion, no
network), zip members are inflated only up to a per-member and a per-zip limit, and nothing
below a valid PATH raises: what cannot be read becomes a `Problem` naming the file. A flow
file that is not valid JSON is still returned as a flow, so the analysis reports it once,
with its parser's reason and line.

Columns and their values follow the Dataverse tables the records stand for:
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/workflow
https://learn.microsoft.com/power-apps/developer/data-platform/reference/entities/sdkmessageprocessingstep
"""

from __future__ import annotations

import functools
import json
import os
import posixpath
import re
import zipfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from defusedxml import DefusedXmlException
from defusedxml.ElementTree import ParseError, fromstring

from auditor.errors import UsageError

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

# Zip-bomb guards: a member may inflate to 64 MB, all members read from one zip to 512 MB.
# The largest real flow definitions are a few hundred KB; customizations.xml of a big managed
# solution is tens of MB. The same per-file limit applies to files in folders.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 512 * 1024 * 1024

# The ids of the system messages, which are the same in every environment, and their names.
# Source: the sdkmessagefilters response for the account table in "Use messages with the
# Organization service", section "Table support for messages":
# https://learn.microsoft.com/power-apps/developer/data-platform/org-service/use-messages#table-support-for-messages
# Create and Update are also seen identically in solution exports from unrelated environments
# (shared/reference/dataverse-plugins.md 4.3). Other messages come from the step's name.
WELL_KNOWN_MESSAGES: Mapping[str, str] = {
    "8cbdbb1b-ea3e-db11-86a7-000a3a5473e8": "Assign",
    "9ebdbb1b-ea3e-db11-86a7-000a3a5473e8": "Create",
    "a1bdbb1b-ea3e-db11-86a7-000a3a5473e8": "Delete",
    "c5bdbb1b-ea3e-db11-86a7-000a3a5473e8": "GrantAccess",
    "dbbdbb1b-ea3e-db11-86a7-000a3a5473e8": "Merge",
    "dcbdbb1b-ea3e-db11-86a7-000a3a5473e8": "ModifyAccess",
    "f2bdbb1b-ea3e-db11-86a7-000a3a5473e8": "Retrieve",
    "03bebb1b-ea3e-db11-86a7-000a3a5473e8": "RetrieveMultiple",
    "04bebb1b-ea3e-db11-86a7-000a3a5473e8": "RetrievePrincipalAccess",
    "10bebb1b-ea3e-db11-86a7-000a3a5473e8": "RetrieveSharedPrincipalsAndAccess",
    "11bebb1b-ea3e-db11-86a7-000a3a5473e8": "RevokeAccess",
    "1cbebb1b-ea3e-db11-86a7-000a3a5473e8": "SetState",
    "1dbebb1b-ea3e-db11-86a7-000a3a5473e8": "SetStateDynamicEntity",
    "20bebb1b-ea3e-db11-86a7-000a3a5473e8": "Update",
}

SHAPES_HINT = (
    "Give an unpacked solution folder (pac solution unpack), a solution .zip exported from "
    "Dataverse, a legacy flow export package (folder or .zip) or a flow definition .json."
)
# Folders never searched: version control and tool state, and build output, which holds
# copies of the sources (pac's bin/ and obj/).
SKIPPED_FOLDERS = frozenset({"bin", "obj", "node_modules"})
# workflow.category: 0 Workflow (classic), 5 Modern Flow. workflow.type 1 is a definition
# (2 activation, 3 template: neither runs on its own).
CLASSIC, MODERN = 0, 5
DEFINITION = 1

_GUID = re.compile(r"\{?([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\}?", re.I)
_FILE_GUID = re.compile(
    r"^(?P<stem>.*?)-?(?P<guid>[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})$", re.I
)
_LEGACY = re.compile(r"(?:^|/)microsoft\.flow/flows/([^/]+)/definition\.json$", re.I)
# The default name the Plug-in Registration tool gives a step: "<Handler>: <Message> of <table>".
_STEP_NAME = re.compile(
    r"^(?:[^:]+:\s*)?(?P<message>[A-Za-z][A-Za-z0-9_]*)\s+of\s+(?P<entity>[A-Za-z][A-Za-z0-9_]*"
    r"|any entity)\s*$",
    re.I,
)
_ATTRIBUTES = r"""((?:\s+[^\s=/>]+\s*=\s*(?:"[^"]*"|'[^']*'))*)\s*/?>"""
# A JSON string (an unterminated one runs to the end, so a hostile text is still read in one
# pass), with the colon that makes it a key; or a bracket.
_JSON_TOKEN = re.compile(r'"([^"\\]*(?:\\.[^"\\]*)*)"?(\s*:)?|[{}\[\]]', re.S)
_FLOW_KEYS = ("properties", "definition", "triggers", "actions", "$schema")


@dataclass(frozen=True)
class Location:
    """Where a record is: the file (PATH joined with the path below it, POSIX; for a zip, the
    zip), the member inside a zip, and the 1-based line of the record where it is known."""

    file: str
    member: str | None = None
    line: int | None = None


@dataclass(frozen=True)
class LintFlow:
    """A cloud flow: its definition file's text exactly as read (byte-order mark stripped)."""

    flow_id: str  # lower-case workflow GUID, else the file's path
    name: str
    text: str
    location: Location
    # The solution it came from: the zip; for a folder, the path above its `Workflows/` folder
    # (or above `Microsoft.Flow/flows/`); None for a lone flow file outside those.
    solution: str | None = None


@dataclass(frozen=True)
class LintStep:
    """A plug-in step registration (the `sdkmessageprocessingstep` columns the checks use)."""

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


@dataclass(frozen=True)
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


@dataclass(frozen=True)
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


# Reading ------------------------------------------------------------------------------------


def read_inputs(paths: Sequence[Path]) -> LintInputs:
    """Read every PATH; raises UsageError for a PATH that is missing or none of the shapes."""
    if not paths:
        raise UsageError("no PATH to lint", hint=SHAPES_HINT)
    found = _Found()
    for path in paths:
        _read_path(Path(path), found)
    return found.finish()


def _read_path(path: Path, found: _Found) -> None:
    display = path.as_posix()
    if path.is_dir():
        _read_source(_Folder.of(path, display), found)
    elif not path.is_file():
        raise UsageError(f"{display}: no such file or folder", hint=SHAPES_HINT)
    elif path.suffix.lower() == ".zip":
        _read_zip(path, display, found)
    elif path.suffix.lower() == ".json":
        _read_flow_file(path, display, found)
    else:
        raise _not_a_shape(display, "is neither a folder, a .zip nor a .json file")


def _not_a_shape(display: str, why: str) -> UsageError:
    return UsageError(f"{display}: {why}", hint=SHAPES_HINT)


@dataclass
class _Found:
    """What the PATHs held so far; deduplicated and sorted once at the end."""

    flows: list[LintFlow] = field(default_factory=list)
    steps: list[tuple[int, LintStep]] = field(default_factory=list)  # (0 own file, 1 other)
    workflows: list[LintWorkflow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    files: int = 0

    def problem(self, location: Location, kind: str, message: str) -> None:
        self.problems.append(Problem(location, kind, message))

    def finish(self) -> LintInputs:
        """One record per id (the first in location order; a step's own file over
        customizations.xml), sorted by location then id so reports are reproducible."""
        flows = _first_per_id(self.flows, lambda f: (_place(f.location), f.flow_id), _flow_id)
        steps = _first_per_id(
            self.steps, lambda s: (s[0], _place(s[1].location), s[1].stepid), _step_id
        )
        workflows = _first_per_id(
            self.workflows, lambda w: (_place(w.location), w.workflowid), _workflow_id
        )
        return LintInputs(
            flows=tuple(sorted(flows, key=lambda f: (_place(f.location), f.flow_id))),
            steps=tuple(
                sorted((s for _, s in steps), key=lambda s: (_place(s.location), s.stepid))
            ),
            workflows=tuple(sorted(workflows, key=lambda w: (_place(w.location), w.workflowid))),
            problems=tuple(
                sorted(set(self.problems), key=lambda p: (_place(p.location), p.message))
            ),
            files=self.files,
        )


_T = TypeVar("_T")


def _first_per_id(
    items: Iterable[_T], order: Callable[[_T], Any], id_of: Callable[[_T], str]
) -> list[_T]:
    """The first item of each id in `order`: the same component seen twice is one record."""
    kept: dict[str, _T] = {}
    for item in sorted(items, key=order):
        kept.setdefault(id_of(item), item)
    return list(kept.values())


def _flow_id(item: LintFlow) -> str:
    return item.flow_id


def _step_id(item: tuple[int, LintStep]) -> str:
    return item[1].stepid


def _workflow_id(item: LintWorkflow) -> str:
    return item.workflowid


def _place(location: Location) -> tuple[str, str, int]:
    return (location.file, location.member or "", location.line or 0)


# Sources: a folder or a zip ------------------------------------------------------------------


class _Source(Protocol):
    """The files below one PATH, by POSIX path relative to it."""

    display: str  # the PATH as given
    names: list[str]
    root_name: str  # the PATH's own folder name, for a PATH that is e.g. a Workflows folder
    absent: str  # how a missing file is described: "does not exist" / "is not in the zip"

    @property
    def has_lines(self) -> bool: ...

    def location(self, rel: str, line: int | None = None) -> Location: ...

    def solution(self, rel: str) -> str: ...

    def read(self, rel: str, kind: str, found: _Found) -> bytes | None: ...


@dataclass
class _Folder:
    """A folder on disk; subfolders holding tool state or build output are not searched."""

    root: Path
    display: str
    names: list[str]
    root_name: str
    absent: str = "does not exist"

    @classmethod
    def of(cls, root: Path, display: str) -> _Folder:
        return cls(root, display, list(_walk(root)), root.resolve().name)

    @property
    def has_lines(self) -> bool:
        return True

    def location(self, rel: str, line: int | None = None) -> Location:
        return Location(_joined(self.display, rel), None, line)

    def solution(self, rel: str) -> str:
        """The solution folder of the flow file at `rel`: the folder above its `Workflows/`
        folder, or above `Microsoft.Flow/flows/` (a legacy package)."""
        legacy = _LEGACY.search(rel)
        if legacy is not None:
            below = rel[: legacy.start()]
        else:
            folder = posixpath.dirname(rel)
            if not folder:  # PATH is the Workflows folder itself
                return posixpath.normpath(posixpath.join(self.display, ".."))
            below = posixpath.dirname(folder)
        return _joined(self.display, below) if below else self.display

    def read(self, rel: str, kind: str, found: _Found) -> bytes | None:
        return _read_file(self.root / rel, self.location(rel), kind, found)


def _joined(display: str, rel: str) -> str:
    return rel if display in ("", ".") else f"{display.rstrip('/')}/{rel}"


def _walk(root: Path) -> Iterator[str]:
    """Files below `root` as POSIX paths relative to it, in sorted order per folder."""
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = sorted(
            d for d in subfolders if not d.startswith(".") and d.lower() not in SKIPPED_FOLDERS
        )
        below = Path(folder).relative_to(root).as_posix()
        for name in sorted(files):
            yield name if below == "." else f"{below}/{name}"


def _read_file(path: Path, location: Location, kind: str, found: _Found) -> bytes | None:
    try:
        size = path.stat().st_size
        if size > MAX_MEMBER_BYTES:
            message = f"not read: {_size(size)}, over the {_size(MAX_MEMBER_BYTES)} limit"
            found.problem(location, kind, message)
            return None
        data = path.read_bytes()
    except OSError as exc:
        found.problem(location, kind, f"cannot be read: {exc.strerror or exc}")
        return None
    found.files += 1
    return data


@dataclass
class _Zip:
    """A zip read in memory, member by member, within the zip-bomb limits."""

    archive: zipfile.ZipFile
    display: str
    members: dict[str, zipfile.ZipInfo]  # by name with "/" separators; folders left out
    names: list[str] = field(default_factory=list)
    root_name: str = ""
    absent: str = "is not in the zip"
    inflated: int = 0  # bytes read from members so far

    def __post_init__(self) -> None:
        self.names = sorted(self.members)

    @property
    def has_lines(self) -> bool:
        return False

    def location(self, rel: str, line: int | None = None) -> Location:
        return Location(self.display, rel, None)

    def solution(self, rel: str) -> str:
        """A zip is one solution (or one legacy package)."""
        return self.display

    def read(self, rel: str, kind: str, found: _Found) -> bytes | None:
        """The member's bytes; never more than the limits, whatever its header declares."""
        info, location = self.members[rel], self.location(rel)
        limit = _size(MAX_MEMBER_BYTES)
        if info.file_size > MAX_MEMBER_BYTES:
            message = f"not read: inflates to {_size(info.file_size)}, over the {limit} limit"
            found.problem(location, kind, message)
            return None
        budget = MAX_TOTAL_BYTES - self.inflated
        try:
            with self.archive.open(info) as member:
                data = member.read(min(MAX_MEMBER_BYTES, budget) + 1)
        except Exception as exc:  # any decompressor's error: the member is damaged or hostile
            found.problem(location, kind, f"cannot be read from the zip: {exc}")
            return None
        if len(data) > MAX_MEMBER_BYTES:
            found.problem(location, kind, f"not read: inflates past the {limit} limit")
            return None
        if len(data) > budget:
            message = f"not read: the zip's members inflate past {_size(MAX_TOTAL_BYTES)} in all"
            found.problem(location, kind, message)
            return None
        self.inflated += len(data)
        found.files += 1
        return data


def _size(size: int) -> str:
    if size >= 1024 * 1024:
        return f"{size / (1024 * 1024):.3g} MB"
    return f"{size / 1024:.3g} KB" if size >= 1024 else f"{size} bytes"


def _read_zip(path: Path, display: str, found: _Found) -> None:
    """A solution or legacy package .zip; a zip that is neither is a usage error."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        found.problem(Location(display), "solution", f"not a readable zip: {exc}")
        return
    with archive:
        members: dict[str, zipfile.ZipInfo] = {}
        for info in archive.infolist():
            name = info.filename.replace("\\", "/")
            if not name.endswith("/"):
                members.setdefault(name, info)
        _read_source(_Zip(archive, display, members), found)


# What a source holds -------------------------------------------------------------------------


@dataclass
class _Layout:
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


def _classify(names: Iterable[str], root_name: str) -> _Layout:
    layout = _Layout()
    for rel in names:
        parts = rel.split("/")
        name = parts[-1].lower()
        parent = (parts[-2] if len(parts) > 1 else root_name).lower()
        legacy = _LEGACY.search(rel)
        if legacy:
            layout.legacy.append((rel, legacy.group(1)))
        elif parent == "workflows" and name.endswith(".json"):
            layout.flows.append(rel)
        elif parent == "workflows" and name.endswith(".json.data.xml"):
            layout.flow_meta[rel[: -len(".data.xml")].lower()] = rel
        elif parent == "workflows" and name.endswith(".data.xml"):
            layout.classic_meta.append(rel)
        elif parent == "sdkmessageprocessingsteps" and name.endswith(".xml"):
            layout.steps.append(rel)
        elif name == "customizations.xml":
            layout.customizations.append(rel)
        elif name in ("solution.xml", "manifest.json"):
            layout.markers += 1
    return layout


@dataclass(frozen=True)
class _FlowRef:
    """A modern flow as customizations.xml or its .json.data.xml describes it."""

    json_rel: str  # the flow file's path in the source
    flow_id: str | None
    name: str | None
    category: int | None
    location: Location  # where it is described


def _read_source(source: _Source, found: _Found) -> None:
    layout = _classify(source.names, source.root_name)
    if layout.empty:
        raise _not_a_shape(
            source.display,
            "holds no solution files (customizations.xml, solution.xml, Workflows/*.json, "
            "SdkMessageProcessingSteps/*.xml) and no Microsoft.Flow/flows/*/definition.json",
        )
    refs: list[_FlowRef] = []
    for rel in layout.customizations:
        refs.extend(_read_customizations(source, rel, found))
    _read_solution_flows(source, layout, refs, found)
    for rel in layout.steps:
        _read_step_file(source, rel, found)
    for rel in layout.classic_meta:
        _read_classic_meta(source, rel, found)
    for rel, folder in layout.legacy:
        _read_legacy_flow(source, rel, folder, found)


def _read_solution_flows(
    source: _Source, layout: _Layout, refs: Sequence[_FlowRef], found: _Found
) -> None:
    """Workflows/*.json, described by their .data.xml, else customizations.xml, else the file
    name; a flow that customizations.xml names but the source lacks is a problem."""
    by_path = {ref.json_rel.lower(): ref for ref in refs}
    by_id = {ref.flow_id: ref for ref in refs if ref.flow_id}
    for rel in layout.flows:
        meta_rel = layout.flow_meta.get(rel.lower())
        meta = _read_flow_meta(source, meta_rel, found) if meta_rel else None
        described = [ref for ref in (meta, by_path.get(rel.lower())) if ref is not None]
        if described and described[0].category not in (None, MODERN):
            continue  # e.g. a desktop flow: not a cloud flow definition
        stem, file_guid = _split_guid(posixpath.basename(rel)[: -len(".json")])
        flow_id = next((ref.flow_id for ref in described if ref.flow_id), file_guid)
        if flow_id in by_id:
            described.append(by_id[flow_id])
        text = _read_text(source, rel, "flow", found)
        if text is not None:
            location = source.location(rel)
            name = next((ref.name for ref in described if ref.name), stem)
            flow = LintFlow(
                flow_id or _path_id(location), name, text, location, source.solution(rel)
            )
            found.flows.append(flow)
    present = {rel.lower() for rel in source.names}
    for ref in refs:
        if ref.json_rel.lower() not in present:
            declared = posixpath.basename(ref.location.member or ref.location.file)
            message = f"{declared} names {ref.json_rel}, which {source.absent}"
            found.problem(ref.location, "flow", message)


def _read_flow_meta(source: _Source, rel: str, found: _Found) -> _FlowRef | None:
    """A flow's .json.data.xml: its workflow id, display name and category."""
    loaded = _read_xml(source, rel, "flow", found)
    if loaded is None or _local(loaded[0].tag) != "Workflow":
        return None
    return _flow_ref(loaded[0], rel[: -len(".data.xml")], source.location(rel))


def _flow_ref(root: Element, json_rel: str, location: Location) -> _FlowRef:
    fields = _fields(root)
    return _FlowRef(
        json_rel=json_rel,
        flow_id=_guid(root.get("WorkflowId")),
        name=(root.get("Name") or "").strip() or None,
        category=_int(fields.get("Category") or root.get("Category")),
        location=location,
    )


def _read_legacy_flow(source: _Source, rel: str, folder: str, found: _Found) -> None:
    """A legacy package's definition.json: the id is its folder's, the name its displayName."""
    text = _read_text(source, rel, "flow", found)
    if text is None:
        return
    document = _json_document(text)
    document = document if isinstance(document, dict) else {}
    location = source.location(rel)
    flow_id = _guid(folder) or _guid(_str(document.get("name"))) or _path_id(location)
    name = _display_name(document) or folder
    found.flows.append(LintFlow(flow_id, name, text, location, source.solution(rel)))


def _read_flow_file(path: Path, display: str, found: _Found) -> None:
    """One flow .json given as a PATH: clientdata, legacy or bare definition. Valid JSON that
    is no flow is a usage error; invalid JSON is a flow the analysis reports as unreadable."""
    location = Location(display)
    data = _read_file(path, location, "flow", found)
    text = None if data is None else _decode(data, location, "flow", found)
    if text is None:
        return
    document = _json_document(text)
    if document is not _INVALID and not (
        isinstance(document, dict) and any(key in document for key in _FLOW_KEYS)
    ):
        raise _not_a_shape(
            display, "is JSON, but no flow definition (no definition, triggers or actions)"
        )
    document = document if isinstance(document, dict) else {}
    meta = _sibling_meta(path, display, found)
    stem, file_guid = _split_guid(path.stem)
    flow_id = (
        (meta.flow_id if meta else None)
        or file_guid
        or _guid(_str(document.get("name")))
        or _path_id(location)
    )
    name = (meta.name if meta else None) or _display_name(document) or stem
    found.flows.append(LintFlow(flow_id, name, text, location, _lone_solution(path, display)))


def _lone_solution(path: Path, display: str) -> str | None:
    """The solution folder of a flow file given alone: above its `Workflows/` folder, or above
    `Microsoft.Flow/flows/`; None elsewhere."""
    resolved = path.resolve()
    if _LEGACY.search(resolved.as_posix()):
        return posixpath.normpath(posixpath.join(display, "..", "..", "..", ".."))
    if resolved.parent.name.lower() == "workflows":
        return posixpath.normpath(posixpath.join(display, "..", ".."))
    return None


def _sibling_meta(path: Path, display: str, found: _Found) -> _FlowRef | None:
    """The .json.data.xml beside a flow file given alone, when it sits in a Workflows folder."""
    meta_path = path.with_name(path.name + ".data.xml")
    if path.parent.name.lower() != "workflows" or not meta_path.is_file():
        return None
    location = Location(display + ".data.xml")
    data = _read_file(meta_path, location, "flow", found)
    loaded = None if data is None else _parse_xml(data, location, "flow", found)
    if loaded is None or _local(loaded.tag) != "Workflow":
        return None
    return _flow_ref(loaded, path.name, location)


def _display_name(document: Mapping[str, Any]) -> str | None:
    properties = document.get("properties")
    shown = properties.get("displayName") if isinstance(properties, dict) else None
    return (shown.strip() or None) if isinstance(shown, str) else None


def _read_text(source: _Source, rel: str, kind: str, found: _Found) -> str | None:
    data = source.read(rel, kind, found)
    return None if data is None else _decode(data, source.location(rel), kind, found)


def _decode(data: bytes, location: Location, kind: str, found: _Found) -> str | None:
    """UTF-8 (with or without a byte-order mark), or UTF-16 when its byte-order mark says so:
    solution files exported by older tools (e.g. the CoE Starter Kit's of 2021) are UTF-16
    (inferred from those exports; the solution file format does not document an encoding)."""
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        what = "UTF-16" if encoding == "utf-16" else "UTF-8"
        found.problem(location, kind, f"not {what} text (byte {exc.start})")
        return None


_INVALID = object()


def _json_document(text: str) -> object:
    """The parsed document, or _INVALID (the analysis reports why, with the line)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _INVALID


# XML: customizations.xml, step files, .data.xml -----------------------------------------------


def _read_xml(source: _Source, rel: str, kind: str, found: _Found) -> tuple[Element, str] | None:
    """(root element, text for finding lines: "" inside a zip), or None after a problem."""
    data = source.read(rel, kind, found)
    root = None if data is None else _parse_xml(data, source.location(rel), kind, found)
    if data is None or root is None:
        return None
    return root, data.decode("utf-8-sig", errors="replace") if source.has_lines else ""


def _parse_xml(data: bytes, location: Location, kind: str, found: _Found) -> Element | None:
    """The root element, parsed without DTDs, entity expansion or external references."""
    try:
        return fromstring(data, forbid_dtd=True)
    except ParseError as exc:
        found.problem(location, kind, f"XML does not parse: {exc}")
    except DefusedXmlException as exc:
        why = f"XML refused: {type(exc).__name__} (DTDs and entities are not read)"
        found.problem(location, kind, why)
    return None


def _read_customizations(source: _Source, rel: str, found: _Found) -> list[_FlowRef]:
    """Steps and classic workflows in customizations.xml; returns the modern flows it names."""
    loaded = _read_xml(source, rel, "solution", found)
    if loaded is None:
        return []
    root, text = loaded
    step_lines = _tag_lines(text, "SdkMessageProcessingStep", "SdkMessageProcessingStepId")
    for element in _children(root, "SdkMessageProcessingSteps", "SdkMessageProcessingStep"):
        _add_step(element, source, rel, step_lines, 1, found)
    workflow_lines = _tag_lines(text, "Workflow", "WorkflowId")
    base = posixpath.dirname(rel)
    if posixpath.basename(base).lower() == "other":  # pac layout: Other/Customizations.xml
        base = posixpath.dirname(base)
    refs = []
    for element in _children(root, "Workflows", "Workflow"):
        line = workflow_lines.get(_guid(element.get("WorkflowId")) or "")
        ref = _workflow_element(element, source.location(rel, line), base, found)
        if ref is not None:
            refs.append(ref)
    return refs


def _workflow_element(
    element: Element, location: Location, base: str, found: _Found
) -> _FlowRef | None:
    """A <Workflow> of customizations.xml: a classic workflow is recorded, a modern flow's
    file reference returned; other categories (dialogs, actions, business rules) are not
    background jobs of this audit."""
    fields = _fields(element)
    category = _int(fields.get("Category") or element.get("Category"))
    json_file = fields.get("JsonFileName")
    if category == MODERN and json_file:
        json_rel = posixpath.join(base, json_file.replace("\\", "/").lstrip("/"))
        return _flow_ref(element, posixpath.normpath(json_rel), location)
    if category == CLASSIC:
        _add_workflow(element, location, found)
    return None


def _read_classic_meta(source: _Source, rel: str, found: _Found) -> None:
    """A classic workflow's Workflows/*.xaml.data.xml (pac unpack's layout)."""
    loaded = _read_xml(source, rel, "workflow", found)
    if loaded is None or _local(loaded[0].tag) != "Workflow":
        return
    root, text = loaded
    if _int(_fields(root).get("Category") or root.get("Category")) == CLASSIC:
        line = _tag_lines(text, "Workflow", "WorkflowId").get(_guid(root.get("WorkflowId")) or "")
        _add_workflow(root, source.location(rel, line), found)


def _add_workflow(element: Element, location: Location, found: _Found) -> None:
    fields = _fields(element)
    workflow_id = _guid(element.get("WorkflowId")) or _guid(fields.get("WorkflowId"))
    if workflow_id is None:
        found.problem(location, "workflow", "a classic <Workflow> has no WorkflowId")
        return
    if _int(fields.get("Type")) not in (None, DEFINITION):
        return  # an activation or a template: not what runs
    found.workflows.append(
        LintWorkflow(
            workflowid=workflow_id,
            name=(element.get("Name") or "").strip() or workflow_id,
            mode=_int(fields.get("Mode")),
            trigger_on_create=_flag(fields.get("TriggerOnCreate")),
            trigger_on_delete=_flag(fields.get("TriggerOnDelete")),
            trigger_on_update_attributes=_raw_text(element, "TriggerOnUpdateAttributeList"),
            primary_entity=fields.get("PrimaryEntity") or None,
            location=location,
        )
    )


def _read_step_file(source: _Source, rel: str, found: _Found) -> None:
    """SdkMessageProcessingSteps/{id}.xml: one <SdkMessageProcessingStep> (pac layout)."""
    loaded = _read_xml(source, rel, "step", found)
    if loaded is None:
        return
    root, text = loaded
    elements = [e for e in root.iter() if _local(e.tag) == "SdkMessageProcessingStep"]
    if not elements:
        found.problem(source.location(rel), "step", "holds no <SdkMessageProcessingStep>")
    lines = _tag_lines(text, "SdkMessageProcessingStep", "SdkMessageProcessingStepId")
    for element in elements:
        _add_step(element, source, rel, lines, 0, found)


def _add_step(
    element: Element,
    source: _Source,
    rel: str,
    lines: Mapping[str, int],
    priority: int,
    found: _Found,
) -> None:
    """One <SdkMessageProcessingStep>; its message comes from the message id or its name."""
    fields = _fields(element)
    name = (element.get("Name") or "").strip()
    step_id = _guid(element.get("SdkMessageProcessingStepId")) or _guid(
        fields.get("SdkMessageProcessingStepId")
    )
    if step_id is None:
        shown = f" {name!r}" if name else ""
        message = f"the step{shown} has no SdkMessageProcessingStepId"
        found.problem(source.location(rel), "step", message)
        return
    message_name, entity = _message_and_entity(fields, name)
    step = LintStep(
        stepid=step_id,
        name=name or step_id,
        message_name=message_name,
        primary_entity=entity,
        filteringattributes=fields.get("FilteringAttributes") or None,
        stage=_int(fields.get("Stage")),
        mode=_int(fields.get("Mode")),
        rank=_int(fields.get("Rank")),
        asyncautodelete=_flag(fields.get("AsyncAutoDelete")),
        plugintype_name=(fields.get("PluginTypeName") or "").split(",")[0].strip() or None,
        location=source.location(rel, lines.get(step_id)),
    )
    found.steps.append((priority, step))


def _message_and_entity(fields: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """The message from its well-known id, else from the step name "<Handler>: <Message> of
    <table>"; the table from <PrimaryEntity>, else from the name."""
    named = _STEP_NAME.match(name)
    message = WELL_KNOWN_MESSAGES.get(_guid(fields.get("SdkMessageId")) or "")
    if message is None and named:
        message = named.group("message")
    entity = fields.get("PrimaryEntity") or None
    if entity is None and named and named.group("entity").lower() != "any entity":
        entity = named.group("entity").lower()
    return message, entity


def _children(root: Element, container: str, tag: str) -> Iterator[Element]:
    """The <tag> children of every <container> in the document."""
    for parent in root.iter():
        if _local(parent.tag) == container:
            yield from (child for child in parent if _local(child.tag) == tag)


def _fields(element: Element) -> dict[str, str]:
    """Child element texts by local name, stripped (the first of a name wins)."""
    out: dict[str, str] = {}
    for child in element:
        out.setdefault(_local(child.tag), (child.text or "").strip())
    return out


def _raw_text(element: Element, tag: str) -> str | None:
    """A child's text as written ("" when empty); None when the child is absent."""
    for child in element:
        if _local(child.tag) == tag:
            return child.text or ""
    return None


def _local(tag: object) -> str:
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def _tag_lines(text: str, tag: str, id_attribute: str) -> dict[str, int]:
    """Line of each <tag ...> start tag by the GUID in its `id_attribute` (ElementTree keeps
    no line numbers)."""
    if not text:
        return {}
    id_pattern = re.compile(rf"""(?<![\w:.-]){id_attribute}\s*=\s*(?:"([^"]*)"|'([^']*)')""")
    lines: dict[str, int] = {}
    line, last = 1, 0
    for match in re.finditer(rf"<{tag}{_ATTRIBUTES}", text):
        line += text.count("\n", last, match.start())
        last = match.start()
        attribute = id_pattern.search(match.group(1))
        key = _guid(attribute.group(1) or attribute.group(2)) if attribute else None
        if key:
            lines.setdefault(key, line)
    return lines


# Values ---------------------------------------------------------------------------------------


def _guid(value: str | None) -> str | None:
    """A GUID lower-case without braces; None when `value` is not one."""
    match = _GUID.fullmatch(value.strip()) if value else None
    return match.group(1).lower() if match else None


def _split_guid(stem: str) -> tuple[str, str | None]:
    """("Name", guid) from a SolutionPackager file stem "Name-<GUID>"; (stem, None) without."""
    match = _FILE_GUID.match(stem)
    if match is None:
        return stem, None
    return match.group("stem") or stem, match.group("guid").lower()


def _path_id(location: Location) -> str:
    """A stable id for a flow file with no workflow GUID: its path."""
    return f"{location.file}!{location.member}" if location.member else location.file


def _int(value: str | None) -> int | None:
    try:
        return int(value.strip()) if value else None
    except ValueError:
        return None


def _flag(value: str | None) -> bool | None:
    text = (value or "").strip().lower()
    return {"1": True, "true": True, "0": False, "false": False}.get(text)


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


# Lines of flow definitions -------------------------------------------------------------------


def line_of_key(text: str, name: str) -> int | None:
    """The 1-based line where `"name": {` is defined: an action or trigger (a member of an
    `actions` or `triggers` object) first, else any object member of that name. Keys are
    compared decoded, so escapes in the file (`\\"`, `\\u00e9`) match. A runAfter reference
    (`"name": [`) is never a definition. None when there is none."""
    definitions, members = _object_keys(text)
    offset = definitions.get(name, members.get(name))
    return None if offset is None else text.count("\n", 0, offset) + 1


@functools.lru_cache(maxsize=4096)
def _object_keys(text: str) -> tuple[dict[str, int], dict[str, int]]:
    """(action and trigger definitions, every object member) -> offset of the first key, in
    one pass over the strings and brackets (cached: a report asks for many names per flow,
    check by check, so the cache holds every flow of a large lint)."""
    definitions: dict[str, int] = {}
    members: dict[str, int] = {}
    stack: list[str | None] = []
    pending: tuple[str, int] | None = None  # a key whose value comes next
    for match in _JSON_TOKEN.finditer(text):
        piece = match.group(0)
        key, pending = pending, None
        if piece == "{":
            if key is not None:
                members.setdefault(*key)
                if stack and stack[-1] in ("actions", "triggers"):
                    definitions.setdefault(*key)
            stack.append(key[0] if key else None)
        elif piece == "[":
            stack.append(None)
        elif piece in ("}", "]"):
            if stack:
                stack.pop()
        elif match.group(2):
            pending = (_unescape(match.group(1)), match.start())
    return definitions, members


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


__all__ = [
    "MAX_MEMBER_BYTES",
    "MAX_TOTAL_BYTES",
    "SHAPES_HINT",
    "WELL_KNOWN_MESSAGES",
    "LintFlow",
    "LintInputs",
    "LintStep",
    "LintWorkflow",
    "Location",
    "Problem",
    "line_of_key",
    "read_inputs",
]
