"""`auditor lint` on a folder of 100 flow definitions of realistic size.

Writes an unpacked solution (pac / SolutionPackager layout) with 100 cloud flows of about
5 to 200 KB each (55 KB on average; the exported flows of the CoE and approvals kits run from
1 to 150 KB), shaped like them (Dataverse triggers, conditions, loops, try/catch scopes,
connector actions with their parameters) and 40 plug-in steps, then times
`auditor lint <folder> --out <dir>` in a child process: the whole command, interpreter start
included, as a pipeline step runs it.
Figures, not assertions: see bench/README.md (design.md section 12 is silent on lint; issue 9
asks for under 5 s).

Usage: python bench/lint.py [--flows 100] [--seed 7]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

DATAVERSE = "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"
OFFICE = "/providers/Microsoft.PowerApps/apis/shared_office365"
TABLES = ("account", "contact", "incident", "opportunity", "cat_request", "cat_approval")


def connector_action(rng: random.Random, name: str, after: str | None) -> dict[str, Any]:
    """A Dataverse or Outlook action with the parameters real exports carry."""
    dataverse = rng.random() < 0.7
    operation = rng.choice(("ListRecords", "GetItem", "UpdateRecord", "CreateRecord"))
    params: dict[str, Any] = (
        {
            "entityName": rng.choice(TABLES),
            "$select": ",".join(f"cat_field{n}" for n in range(rng.randint(3, 12))),
            "$filter": f"statecode eq 0 and cat_status eq {rng.randint(1, 9)}",
            "item/cat_description": "@{triggerOutputs()?['body/cat_description']}" * 3,
        }
        if dataverse
        else {
            "emailMessage/To": "@{outputs('Get_owner')?['body/internalemailaddress']}",
            "emailMessage/Subject": f"Request @{{triggerOutputs()?['body/cat_name']}} {name}",
            "emailMessage/Body": "<p>" + "Your request was processed. " * 12 + "</p>",
        }
    )
    action: dict[str, Any] = {
        "type": "OpenApiConnection",
        "inputs": {
            "host": {
                "connectionName": "shared_commondataserviceforapps"
                if dataverse
                else "shared_office365",
                "operationId": operation if dataverse else "SendEmailV2",
                "apiId": DATAVERSE if dataverse else OFFICE,
            },
            "parameters": params,
            "authentication": "@parameters('$authentication')",
        },
        "runAfter": {after: ["Succeeded"]} if after else {},
    }
    if rng.random() < 0.2:
        action["runtimeConfiguration"] = {"paginationPolicy": {"minimumItemCount": 5000}}
    if rng.random() < 0.15:
        action["retryPolicy"] = {"type": "exponential", "count": 4, "interval": "PT10S"}
    return action


def actions(rng: random.Random, prefix: str, count: int, depth: int = 0) -> dict[str, Any]:
    """`count` actions in runAfter order, some of them conditions, loops or scopes."""
    out: dict[str, Any] = {}
    after: str | None = None
    for n in range(count):
        name = f"{prefix}_{n}"
        roll = rng.random()
        if depth < 3 and roll < 0.12:
            out[name] = {
                "type": "If",
                "expression": {"and": [{"equals": ["@triggerBody()?['statecode']", 0]}]},
                "actions": actions(rng, f"{name}_yes", rng.randint(2, 6), depth + 1),
                "else": {"actions": actions(rng, f"{name}_no", rng.randint(1, 4), depth + 1)},
                "runAfter": {after: ["Succeeded"]} if after else {},
            }
        elif depth < 3 and roll < 0.2:
            out[name] = {
                "type": "Foreach",
                "foreach": f"@outputs('{after or 'Trigger'}')?['body/value']",
                "actions": actions(rng, f"{name}_each", rng.randint(2, 5), depth + 1),
                "runAfter": {after: ["Succeeded"]} if after else {},
                "runtimeConfiguration": {"concurrency": {"repetitions": rng.choice((1, 20, 50))}},
            }
        elif roll < 0.3:
            out[name] = {
                "type": "Compose",
                "inputs": {"id": "@{guid()}", "note": "x" * rng.randint(50, 400)},
                "runAfter": {after: ["Succeeded"]} if after else {},
            }
        else:
            out[name] = connector_action(rng, name, after)
        after = name
    return out


def flow(rng: random.Random, index: int) -> dict[str, Any]:
    """A solution flow (clientdata shape) with a Dataverse trigger and a try/catch."""
    message = rng.choice((1, 3, 3, 4))
    parameters: dict[str, Any] = {
        "subscriptionRequest/message": message,
        "subscriptionRequest/entityname": rng.choice(TABLES),
        "subscriptionRequest/scope": 4,
    }
    if rng.random() < 0.6:
        parameters["subscriptionRequest/filteringattributes"] = "statecode,cat_status"
    size = rng.choice((4, 6, 9, 12, 16, 22))
    body = actions(rng, "Step", size)
    definition = {
        "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/"
        "2016-06-01/workflowdefinition.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "$connections": {"defaultValue": {}, "type": "Object"},
            "$authentication": {"defaultValue": {}, "type": "SecureObject"},
        },
        "triggers": {
            "When_a_row_is_added,_modified_or_deleted": {
                "type": "OpenApiConnectionWebhook",
                "inputs": {
                    "host": {
                        "connectionName": "shared_commondataserviceforapps",
                        "operationId": "SubscribeWebhookTrigger",
                        "apiId": DATAVERSE,
                    },
                    "parameters": parameters,
                    "authentication": "@parameters('$authentication')",
                },
            }
        },
        "actions": {
            "Try": {"type": "Scope", "actions": body, "runAfter": {}},
            "Catch": {
                "type": "Scope",
                "actions": {
                    "Terminate": {
                        "type": "Terminate",
                        "inputs": {"runStatus": "Failed", "runError": {"code": "500"}},
                        "runAfter": {},
                    }
                },
                "runAfter": {"Try": ["Failed", "TimedOut"]},
            },
        },
    }
    return {
        "properties": {
            "connectionReferences": {
                "shared_commondataserviceforapps": {
                    "runtimeSource": "embedded",
                    "connection": {"connectionReferenceLogicalName": f"cat_dataverse_{index}"},
                    "api": {"name": "shared_commondataserviceforapps"},
                }
            },
            "definition": definition,
        },
        "schemaVersion": "1.0.0.0",
    }


def write_solution(folder: Path, flows: int, seed: int) -> list[int]:
    """The unpacked solution; returns the size in bytes of each flow file."""
    rng = random.Random(seed)
    (folder / "Workflows").mkdir(parents=True)
    (folder / "SdkMessageProcessingSteps").mkdir()
    sizes = []
    for index in range(flows):
        guid = str(uuid.UUID(int=rng.getrandbits(128))).upper()
        name = f"Flow{index:03d}"
        path = folder / "Workflows" / f"{name}-{guid}.json"
        path.write_text(json.dumps(flow(rng, index), indent=2), encoding="utf-8")
        sizes.append(path.stat().st_size)
        (folder / "Workflows" / f"{name}-{guid}.json.data.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?>\n<Workflow WorkflowId="{{{guid}}}" '
            f'Name="{name}">\n  <JsonFileName>/Workflows/{name}-{guid}.json</JsonFileName>\n'
            "  <Type>1</Type>\n  <Category>5</Category>\n  <StateCode>1</StateCode>\n"
            "  <StatusCode>2</StatusCode>\n</Workflow>\n",
            encoding="utf-8",
        )
    update = "20bebb1b-ea3e-db11-86a7-000a3a5473e8"
    for index in range(40):
        stepid = str(uuid.UUID(int=rng.getrandbits(128)))
        filtering = "name,statecode" if index % 2 else ""
        (folder / "SdkMessageProcessingSteps" / f"{{{stepid}}}.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?>\n<SdkMessageProcessingStep '
            f'Name="Plugins.AccountPlugin{index}: Update of account" '
            f'SdkMessageProcessingStepId="{{{stepid}}}">\n'
            f"  <SdkMessageId>{update}</SdkMessageId>\n  <PrimaryEntity>account</PrimaryEntity>\n"
            f"  <FilteringAttributes>{filtering}</FilteringAttributes>\n"
            "  <Mode>0</Mode>\n  <Rank>1</Rank>\n  <Stage>40</Stage>\n"
            "</SdkMessageProcessingStep>\n",
            encoding="utf-8",
        )
    return sizes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="auditor-bench-lint-"))
    solution = work / "src"
    sizes = write_solution(solution, args.flows, args.seed)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "auditor", "lint", str(solution), "--out", str(work / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"auditor lint failed ({done.returncode}): {done.stderr}")
    sarif = json.loads((work / "out" / "report.sarif").read_text(encoding="utf-8"))
    results = len(sarif["runs"][0]["results"])
    print(
        f"{args.flows} flows: {statistics.mean(sizes) / 1024:.0f} KB mean, "
        f"{min(sizes) / 1024:.0f}-{max(sizes) / 1024:.0f} KB, {sum(sizes) / 2**20:.1f} MB in all; "
        "40 plug-in steps"
    )
    print(f"auditor lint: {seconds:.2f} s wall (interpreter start included), {results} results")
    print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")


if __name__ == "__main__":
    main()
