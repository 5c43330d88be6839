"""Plug-in steps: SdkMessageProcessingSteps/{id}.xml and the steps of customizations.xml,
with their message from its well-known id or the step's name. Apart because a solution may
register 200,000 of them: each is built as cheaply as the records allow.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

from auditor.lint.layout import Source
from auditor.lint.limits import Found
from auditor.lint.records import LintStep, Location
from auditor.lint.values import flag, guid, integer
from auditor.lint.xml_records import fields_of, read_xml_records

if TYPE_CHECKING:
    from xml.etree.ElementTree import Element

# The ids of the system messages, which are the same in every environment, and their names.
# Source: the sdkmessagefilters response for the account table in "Use messages with the
# Organization service", section "Table support for messages":
# https://learn.microsoft.com/power-apps/developer/data-platform/org-service/use-messages#table-support-for-messages
# Create and Update are also seen identically in solution exports from unrelated environments
# (public solutions on GitHub, such as mikefactorial/PluginSample). Other messages come from
# the step's name.
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


# The default name the Plug-in Registration tool gives a step: "<Handler>: <Message> of <table>".
_STEP_NAME = re.compile(
    r"^(?:[^:]+:\s*)?(?P<message>[A-Za-z][A-Za-z0-9_]*)\s+of\s+(?P<entity>[A-Za-z][A-Za-z0-9_]*"
    r"|any entity)\s*$",
    re.I,
)


def read_step_file(source: Source, rel: str, found: Found) -> None:
    """SdkMessageProcessingSteps/{id}.xml: one <SdkMessageProcessingStep> (pac layout)."""

    def record(element: Element, line: int) -> bool:
        location = source.location(rel, line)
        if not found.take("steps", location):
            return False
        add_step(element, source, rel, location, 0, found)
        return True

    count = read_xml_records(source, rel, "step", found, _is_step, record)
    if count == 0:
        found.problem(source.location(rel), "step", "holds no <SdkMessageProcessingStep>")


def _is_step(path: list[str], name: str) -> bool:
    return name == "SdkMessageProcessingStep"


def add_step(
    element: Element,
    source: Source,
    rel: str,
    location: Location,
    priority: int,
    found: Found,
) -> None:
    """One <SdkMessageProcessingStep> at `location`; its message comes from the message id or
    its name. A solution may hold 200,000 of them: the name is matched only when the message
    or the table is not given otherwise, and message ids are looked up once each."""
    fields = fields_of(element)
    name = (element.get("Name") or "").strip()
    step_id = guid(element.get("SdkMessageProcessingStepId")) or guid(
        fields.get("SdkMessageProcessingStepId")
    )
    if step_id is None:
        shown = f" {name!r}" if name else ""
        message = f"the step{shown} has no SdkMessageProcessingStepId"
        found.problem(source.location(rel), "step", message)
        return
    message_name, entity = _message_and_entity(fields, name)
    plugin_type = fields.get("PluginTypeName")
    step = LintStep(
        step_id,  # stepid
        name or step_id,  # name
        message_name,
        entity,  # primary_entity
        fields.get("FilteringAttributes") or None,
        integer(fields.get("Stage")),
        integer(fields.get("Mode")),
        integer(fields.get("Rank")),
        flag(fields.get("AsyncAutoDelete")),
        plugin_type.split(",")[0].strip() or None if plugin_type else None,  # plugintype_name
        location,
    )
    found.steps.append((priority, step))


def _message_and_entity(fields: Mapping[str, str], name: str) -> tuple[str | None, str | None]:
    """The message from its well-known id, else from the step name "<Handler>: <Message> of
    <table>"; the table from <PrimaryEntity>, else from the name."""
    message_id = fields.get("SdkMessageId")
    message = _well_known_message(message_id) if message_id else None
    entity = fields.get("PrimaryEntity") or None
    if message is not None and entity is not None:
        return message, entity
    named = _STEP_NAME.match(name)
    if message is None and named:
        message = named.group("message")
    if entity is None and named and named.group("entity").lower() != "any entity":
        entity = named.group("entity").lower()
    return message, entity


@functools.lru_cache(maxsize=1024)
def _well_known_message(message_id: str) -> str | None:
    """The name of a system message from its id as written (cached: a solution's steps use
    a few messages, each id written the same way every time)."""
    return WELL_KNOWN_MESSAGES.get(guid(message_id) or "")
