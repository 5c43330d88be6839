"""Cloud flows: the definition files of a solution, of a legacy package or given alone,
each with its id and name from its .json.data.xml, customizations.xml or file name, and
decoded within the run's budget. Apart from steps and classic workflows, which are XML
records; a flow is a JSON file kept as text.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from auditor.lint import limits
from auditor.lint.files import NOFOLLOW, READ, REFUSED, file_type, read_regular
from auditor.lint.layout import LEGACY, Layout, Source, not_a_shape
from auditor.lint.limits import Found
from auditor.lint.records import LintFlow, Location
from auditor.lint.values import MODERN, guid, integer
from auditor.lint.xml_records import (
    collect,
    fields_of,
    is_root_workflow,
    read_root_workflow,
    stream_xml,
)

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

_FILE_GUID = re.compile(
    r"^(?P<stem>.*?)-?(?P<guid>[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12})$", re.I
)


_FLOW_KEYS = ("properties", "definition", "triggers", "actions", "$schema")


@dataclass(frozen=True)
class FlowRef:
    """A modern flow as customizations.xml or its .json.data.xml describes it."""

    json_rel: str  # the flow file's path in the source
    flow_id: str | None
    name: str | None
    category: int | None
    location: Location  # where it is described


def read_solution_flows(
    source: Source, layout: Layout, refs: Sequence[FlowRef], found: Found
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
        text = _read_flow_text(source, rel, found)
        if text is not None:
            location = source.location(rel)
            name = next((ref.name for ref in described if ref.name), stem)
            flow = LintFlow(
                flow_id or _path_id(location), name, text, location, source.solution(rel)
            )
            found.flows.append(flow)
    if not source.complete:
        return  # a file missing from a listing cut short may exist: nothing to say
    present = {rel.lower() for rel in source.names}
    for ref in refs:
        if ref.json_rel.lower() not in present:
            declared = posixpath.basename(ref.location.member or ref.location.file)
            message = f"{declared} names {ref.json_rel}, which {source.absent}"
            found.problem(ref.location, "flow", message)


def _read_flow_meta(source: Source, rel: str, found: Found) -> FlowRef | None:
    """A flow's .json.data.xml: its workflow id, display name and category."""
    loaded = read_root_workflow(source, rel, "flow", found)
    if loaded is None:
        return None
    return flow_ref(loaded[0], rel[: -len(".data.xml")], source.location(rel))


def flow_ref(root: Element, json_rel: str, location: Location) -> FlowRef:
    fields = fields_of(root)
    return FlowRef(
        json_rel=json_rel,
        flow_id=guid(root.get("WorkflowId")),
        name=(root.get("Name") or "").strip() or None,
        category=integer(fields.get("Category") or root.get("Category")),
        location=location,
    )


def read_legacy_flow(source: Source, rel: str, folder: str, found: Found) -> None:
    """A legacy package's definition.json: the id is its folder's, the name its displayName."""
    text = _read_flow_text(source, rel, found)
    if text is None:
        return
    document = _json_document(text)
    document = document if isinstance(document, dict) else {}
    location = source.location(rel)
    flow_id = guid(folder) or guid(_str(document.get("name"))) or _path_id(location)
    name = _display_name(document) or folder
    found.flows.append(LintFlow(flow_id, name, text, location, source.solution(rel)))


def read_flow_file(path: Path, display: str, found: Found) -> None:
    """One flow .json given as a PATH: clientdata, legacy or bare definition. Valid JSON that
    is no flow is a usage error; invalid JSON is a flow the analysis reports as unreadable."""
    location = Location(display)
    if not found.take("flows", location):
        found.skip(location)
        return
    data = read_regular(lambda: os.open(path, READ), location, "flow", found, limits.MAX_FLOW_BYTES)
    text = None if data is None else _decode(data, location, "flow", found)
    if text is None:
        return
    document = _json_document(text)
    if document is not _INVALID and not (
        isinstance(document, dict) and any(key in document for key in _FLOW_KEYS)
    ):
        raise not_a_shape(
            display, "is JSON, but no flow definition (no definition, triggers or actions)"
        )
    document = document if isinstance(document, dict) else {}
    meta = _sibling_meta(path, display, found)
    stem, file_guid = _split_guid(path.stem)
    flow_id = (
        (meta.flow_id if meta else None)
        or file_guid
        or guid(_str(document.get("name")))
        or _path_id(location)
    )
    name = (meta.name if meta else None) or _display_name(document) or stem
    found.flows.append(LintFlow(flow_id, name, text, location, _lone_solution(path, display)))


def _lone_solution(path: Path, display: str) -> str | None:
    """The solution folder of a flow file given alone: above its `Workflows/` folder, or above
    `Microsoft.Flow/flows/`; None elsewhere."""
    resolved = path.resolve()
    if LEGACY.search(resolved.as_posix()):
        return posixpath.normpath(posixpath.join(display, "..", "..", "..", ".."))
    if resolved.parent.name.lower() == "workflows":
        return posixpath.normpath(posixpath.join(display, "..", ".."))
    return None


def _sibling_meta(path: Path, display: str, found: Found) -> FlowRef | None:
    """The .json.data.xml beside a flow file given alone, when it sits in a Workflows folder.
    It was not named on the command line: a link or other non-regular file is not read."""
    meta_path = path.with_name(path.name + ".data.xml")
    try:
        mode = os.lstat(meta_path).st_mode
    except OSError:
        return None
    if path.parent.name.lower() != "workflows":
        return None
    location = Location(display + ".data.xml")
    if not stat.S_ISREG(mode):
        found.problem(location, "flow", f"not read: {file_type(mode)}; {REFUSED}")
        return None
    data = read_regular(
        lambda: os.open(meta_path, READ | NOFOLLOW),
        location,
        "flow",
        found,
        limits.MAX_MEMBER_BYTES,
    )
    if data is None:
        return None
    records: list[tuple[Element, int]] = []
    stream_xml(data, location, "flow", found, is_root_workflow, collect(records))
    return flow_ref(records[0][0], path.name, location) if records else None


def _display_name(document: Mapping[str, Any]) -> str | None:
    properties = document.get("properties")
    shown = properties.get("displayName") if isinstance(properties, dict) else None
    return (shown.strip() or None) if isinstance(shown, str) else None


def _read_flow_text(source: Source, rel: str, found: Found) -> str | None:
    """A flow definition's text, within the run's budget of flows."""
    location = source.location(rel)
    if not found.take("flows", location):
        found.skip(location)
        return None
    data = source.read(rel, "flow", found, limits.MAX_FLOW_BYTES)
    return None if data is None else _decode(data, location, "flow", found)


def _decode(data: bytes, location: Location, kind: str, found: Found) -> str | None:
    """UTF-8 (with or without a byte-order mark), or UTF-16 when its byte-order mark says so:
    solution files exported by older tools (e.g. the CoE Starter Kit's of 2021) are UTF-16
    (inferred from those exports; the solution file format does not document an encoding).
    The text spends its size in memory from the run's budget of flow definitions (one
    character past Latin-1 makes every character 2 or 4 bytes)."""
    encoding = "utf-16" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-8-sig"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        what = "UTF-16" if encoding == "utf-16" else "UTF-8"
        found.problem(location, kind, f"not {what} text (byte {exc.start})")
        return None
    if not found.take("text", location, sys.getsizeof(text)):
        found.skip(location)
        return None
    return text


_INVALID = object()


def _json_document(text: str) -> object:
    """The parsed document, or _INVALID (the analysis reports why, with the line)."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _INVALID


def _split_guid(stem: str) -> tuple[str, str | None]:
    """("Name", guid) from a SolutionPackager file stem "Name-<GUID>"; (stem, None) without."""
    match = _FILE_GUID.match(stem)
    if match is None:
        return stem, None
    return match.group("stem") or stem, match.group("guid").lower()


def _path_id(location: Location) -> str:
    """A stable id for a flow file with no workflow GUID: its path."""
    return f"{location.file}!{location.member}" if location.member else location.file


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
