"""Classic (category 0) workflows, from customizations.xml and from pac's
Workflows/*.xaml.data.xml; a modern flow's <Workflow> yields the reference to its file.
Apart from flows and steps: its own records and trigger columns.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from auditor.lint.flows import FlowRef, flow_ref
from auditor.lint.layout import Source
from auditor.lint.limits import Found
from auditor.lint.records import LintWorkflow, Location
from auditor.lint.values import CLASSIC, DEFINITION, MODERN, flag, guid, integer
from auditor.lint.xml_records import fields_of, raw_text, read_root_workflow

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element


def workflow_element(
    element: Element, location: Location, base: str, found: Found
) -> FlowRef | None:
    """A <Workflow> of customizations.xml: a classic workflow is recorded, a modern flow's
    file reference returned; other categories (dialogs, actions, business rules) are not
    background jobs of this audit."""
    fields = fields_of(element)
    category = integer(fields.get("Category") or element.get("Category"))
    json_file = fields.get("JsonFileName")
    if category == MODERN and json_file:
        json_rel = posixpath.join(base, json_file.replace("\\", "/").lstrip("/"))
        return flow_ref(element, posixpath.normpath(json_rel), location)
    if category == CLASSIC:
        _add_workflow(element, location, found)
    return None


def read_classic_meta(source: Source, rel: str, found: Found) -> None:
    """A classic workflow's Workflows/*.xaml.data.xml (pac unpack's layout)."""
    loaded = read_root_workflow(source, rel, "workflow", found)
    if loaded is None:
        return
    root, line = loaded
    location = source.location(rel, line)
    classic = integer(fields_of(root).get("Category") or root.get("Category")) == CLASSIC
    if classic and found.take("workflows", location):
        _add_workflow(root, location, found)


def _add_workflow(element: Element, location: Location, found: Found) -> None:
    fields = fields_of(element)
    workflow_id = guid(element.get("WorkflowId")) or guid(fields.get("WorkflowId"))
    if workflow_id is None:
        found.problem(location, "workflow", "a classic <Workflow> has no WorkflowId")
        return
    if integer(fields.get("Type")) not in (None, DEFINITION):
        return  # an activation or a template: not what runs
    found.workflows.append(
        LintWorkflow(
            workflowid=workflow_id,
            name=(element.get("Name") or "").strip() or workflow_id,
            mode=integer(fields.get("Mode")),
            trigger_on_create=flag(fields.get("TriggerOnCreate")),
            trigger_on_delete=flag(fields.get("TriggerOnDelete")),
            trigger_on_update_attributes=raw_text(element, "TriggerOnUpdateAttributeList"),
            primary_entity=fields.get("PrimaryEntity") or None,
            location=location,
        )
    )
