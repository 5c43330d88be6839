"""Exported solutions anyone could commit to a pull request, at sizes meant to hurt a lint.

`auditor lint` runs in pipelines on files nobody reviewed. The benchmark (`bench/lint.py`)
and the scale tests (`tests/hostile/test_scale.py`) lint these two shapes at two sizes each,
for the time, the peak memory and the reports' size, and the growth from one size to twice
it (2 is linear, 4 quadratic):

- flows of thousands of top-level actions, each an Update of one of `KINDS` columns drawn
  at random, so every five-action window recurs in many places (thousands of
  `flow-repeated-block` findings);
- a solution zip whose `customizations.xml` registers hundreds of thousands of Update steps
  without filtering attributes (each a `plugin-update-unfiltered` finding) in a few hundred KB.

The layouts are the ones `pac solution unpack` and a solution export write:
https://learn.microsoft.com/power-platform/alm/solution-packager-tool
"""

from __future__ import annotations

import json
import random
import uuid
import zipfile
from pathlib import Path
from typing import Any

DATAVERSE = "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"
# The Update message's sdkmessageid, the same in every environment ("Use messages with the
# Organization service", section "Table support for messages"):
# https://learn.microsoft.com/power-apps/developer/data-platform/org-service/use-messages#table-support-for-messages
UPDATE = "20bebb1b-ea3e-db11-86a7-000a3a5473e8"
KINDS = 5  # kinds of action the flows are drawn from: few kinds, the most repeated blocks


def update_action(field: str, after: str | None) -> dict[str, Any]:
    """A Dataverse "Update a row" action setting one column (the column makes its content)."""
    return {
        "type": "OpenApiConnection",
        "inputs": {
            "host": {
                "connectionName": "shared_commondataserviceforapps",
                "operationId": "UpdateRecord",
                "apiId": DATAVERSE,
            },
            "parameters": {"entityName": "accounts", "recordId": "@{guid()}", field: "x"},
        },
        "runAfter": {after: ["Succeeded"]} if after else {},
    }


def repeated_flow(rng: random.Random, actions: int) -> dict[str, Any]:
    """A manual flow of `actions` top-level actions in a chain, each an Update of one of
    `KINDS` columns drawn at random."""
    body: dict[str, Any] = {}
    after: str | None = None
    for n in range(actions):
        name = f"Update_{n}"
        body[name] = update_action(f"item/column{rng.randrange(KINDS)}", after)
        after = name
    trigger = {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": {}}}}
    return {"properties": {"definition": {"triggers": trigger, "actions": body}}}


def write_repeated_flows(folder: Path, actions: int, flows: int = 3, seed: int = 7) -> int:
    """An unpacked solution (`Workflows/<name>-<GUID>.json`) of `flows` flows of `actions`
    actions each; returns the bytes written."""
    rng = random.Random(seed)
    (folder / "Workflows").mkdir(parents=True)
    size = 0
    for index in range(flows):
        guid = str(uuid.UUID(int=index + 1)).upper()
        path = folder / "Workflows" / f"Hostile{index}-{guid}.json"
        path.write_text(json.dumps(repeated_flow(rng, actions)), encoding="utf-8")
        size += path.stat().st_size
    return size


def write_unfiltered_steps(path: Path, steps: int) -> int:
    """A solution zip whose customizations.xml registers `steps` synchronous Update steps on
    account, none with filtering attributes; returns the zip's bytes. Written record by
    record, so the writing process stays small (a child forked from a big parent reports
    the parent's size as its peak)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("customizations.xml", "w") as xml:
            xml.write(
                b'<?xml version="1.0" encoding="utf-8"?>\n<ImportExportXml>'
                b"<SdkMessageProcessingSteps>\n"
            )
            for n in range(steps):
                xml.write(
                    f'<SdkMessageProcessingStep Name="Plugins.Account{n}: Update of account" '
                    f'SdkMessageProcessingStepId="{{{uuid.UUID(int=n + 1)}}}"><SdkMessageId>'
                    f"{UPDATE}</SdkMessageId><PrimaryEntity>account</PrimaryEntity><Mode>0"
                    "</Mode><Rank>1</Rank><Stage>40</Stage></SdkMessageProcessingStep>\n".encode()
                )
            xml.write(b"</SdkMessageProcessingSteps></ImportExportXml>\n")
        archive.writestr(
            "solution.xml",
            '<?xml version="1.0" encoding="utf-8"?>\n<ImportExportXml><SolutionManifest>'
            "<UniqueName>Hostile</UniqueName></SolutionManifest></ImportExportXml>\n",
        )
    return path.stat().st_size
