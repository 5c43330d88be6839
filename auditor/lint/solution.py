"""One source read as a solution: its files classified by role, then customizations.xml
(steps, classic workflows, references to flow files), the flow files, step files, classic
workflow files and legacy flows. Apart because it is where the readers meet.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

from auditor.lint.classic_workflows import read_classic_meta, workflow_element
from auditor.lint.flows import FlowRef, read_legacy_flow, read_solution_flows
from auditor.lint.layout import Source, classify, not_a_shape
from auditor.lint.limits import Found
from auditor.lint.steps import add_step, read_step_file
from auditor.lint.xml_records import local_name, read_xml_records

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element


def read_source(source: Source, found: Found) -> None:
    layout = classify(source.names, source.root_name)
    if layout.empty:
        if not source.complete:
            return  # the budget of files listed ran out before any solution file was seen
        raise not_a_shape(
            source.display,
            "holds no solution files (customizations.xml, solution.xml, Workflows/*.json, "
            "SdkMessageProcessingSteps/*.xml) and no Microsoft.Flow/flows/*/definition.json",
        )
    refs: list[FlowRef] = []
    for rel in layout.customizations:
        refs.extend(_read_customizations(source, rel, found))
    read_solution_flows(source, layout, refs, found)
    for rel in layout.steps:
        read_step_file(source, rel, found)
    for rel in layout.classic_meta:
        read_classic_meta(source, rel, found)
    for rel, folder in layout.legacy:
        read_legacy_flow(source, rel, folder, found)


_CUSTOMIZATION_RECORDS = frozenset(
    {("SdkMessageProcessingSteps", "SdkMessageProcessingStep"), ("Workflows", "Workflow")}
)


def is_customization_record(path: list[str], name: str) -> bool:
    """A step of any <SdkMessageProcessingSteps>, a workflow of any <Workflows>."""
    return bool(path) and (path[-1], name) in _CUSTOMIZATION_RECORDS


def _read_customizations(source: Source, rel: str, found: Found) -> list[FlowRef]:
    """Steps and classic workflows in customizations.xml; returns the modern flows it names."""
    base = posixpath.dirname(rel)
    if posixpath.basename(base).lower() == "other":  # pac layout: Other/Customizations.xml
        base = posixpath.dirname(base)
    refs: list[FlowRef] = []

    def record(element: Element, line: int) -> bool:
        location = source.location(rel, line)
        if local_name(element.tag) == "SdkMessageProcessingStep":
            if not found.take("steps", location):
                return False
            add_step(element, source, rel, location, 1, found)
            return True
        if not found.take("workflows", location):
            return False
        ref = workflow_element(element, location, base, found)
        if ref is not None:
            refs.append(ref)
        return True

    read_xml_records(source, rel, "solution", found, is_customization_record, record)
    return refs
