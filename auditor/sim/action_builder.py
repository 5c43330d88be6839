"""Actions of a simulated cloud flow, built one at a time with unique names.

`ActionBuilder` accumulates the actions' names, the connection references they need and the
run plan (which actions fail, throttle, are cancelled, which branch each condition takes), and
makes every kind of action a definition holds: connector and HTTP calls, data operations,
scopes, conditions, switches, loops, Terminate, Response and child-flow calls. The flow
builder (`flow_builder`) composes them into whole flows.
https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language
"""

from __future__ import annotations

from typing import Any

import numpy as np

from auditor.sim.flow_operations import DATA_OPS, DATAVERSE_API, READS, SHAREPOINT_API, Op
from auditor.sim.flow_spec import FlowSpec
from auditor.sim.names import guid

Item = tuple[str, dict[str, Any]]


class ActionBuilder:
    """Accumulates actions with unique names, connection references and the run plan."""

    def __init__(self, rng: np.random.Generator, spec: FlowSpec, solution: bool) -> None:
        self.rng = rng
        self.spec = spec
        self.solution = solution
        self.names: set[str] = set()
        self.connections: dict[str, Any] = {}
        self.plan: dict[str, Any] = {
            "fail": [],
            "throttle": None,
            "cancel": None,
            "if": {},
            "switch": {},
            "foreach": {},
            "weights": {},
        }

    def uname(self, base: str) -> str:
        name, i = base, 1
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def meta(self) -> dict[str, Any]:
        return {"operationMetadataId": guid(self.rng)}

    def connection(self, api: str) -> str:
        """Register a connection reference and return its key."""
        if api not in self.connections:
            if self.solution:
                suffix = guid(self.rng)[:5]
                self.connections[api] = {
                    "runtimeSource": "embedded",
                    "connection": {"connectionReferenceLogicalName": f"cr4f1_{api}_{suffix}"},
                    "api": {"name": api},
                }
            else:
                self.connections[api] = {
                    "connectionName": f"{api.replace('_', '-')}-{guid(self.rng)[:8]}",
                    "source": "Embedded",
                    "id": f"/providers/Microsoft.PowerApps/apis/{api}",
                    "tier": "NotSpecified",
                }
        return api

    # Actions -------------------------------------------------------------------------------

    def op(
        self,
        op: Op,
        *,
        retry: dict[str, Any] | None = None,
        weight: float = 1.0,
        fail: bool = False,
        base: str | None = None,
    ) -> Item:
        name = self.uname(base or op.label)
        if op.kind == "Http":
            inputs: dict[str, Any] = {
                "method": op.operation,
                "uri": "https://erp.contoso.example/api/orders",
            }
            if op.operation != "GET":
                inputs["body"] = {"id": "@triggerOutputs()?['body/accountid']"}
        else:
            key = self.connection(op.api)
            inputs = {
                "host": {
                    "connectionName": key,
                    "operationId": op.operation,
                    "apiId": f"/providers/Microsoft.PowerApps/apis/{op.api}",
                },
                "parameters": self._parameters(op),
                "authentication": "@parameters('$authentication')",
            }
        if retry is not None:
            inputs["retryPolicy"] = retry
        if weight != 1.0:
            self.plan["weights"][name] = weight
        if fail:
            self.plan["fail"].append(name)
        return name, {"type": op.kind, "inputs": inputs, "metadata": self.meta()}

    def _parameters(self, op: Op) -> dict[str, Any]:
        if op.api == DATAVERSE_API:
            params: dict[str, Any] = {"entityName": "accounts"}
            if op.operation in ("GetItem", "UpdateRecord", "DeleteRecord"):
                params["recordId"] = "@triggerOutputs()?['body/accountid']"
            if op.operation == "ListRecords":
                params["$filter"] = "statecode eq 0"
                params["$top"] = 50
            return params
        if op.api == SHAREPOINT_API:
            return {
                "dataset": "https://contoso.sharepoint.com/sites/Operations",
                "table": "b7d3d1c4-58b0-4f3e-9a61-2f0e5a1c9d10",
            }
        if op.api == "shared_office365":
            return {
                "emailMessage/To": "ops@contoso.example",
                "emailMessage/Subject": "Flow notification",
                "emailMessage/Body": "<p>@{triggerOutputs()?['body/name']}</p>",
            }
        if op.api == "shared_approvals":
            return {
                "approvalType": "Basic",
                "WebhookApprovalCreationInput/title": "Approve request",
                "WebhookApprovalCreationInput/assignedTo": "manager@contoso.example",
            }
        return {"body": "@triggerBody()"}

    def data(self, index: int | None = None) -> Item:
        kind, label = DATA_OPS[int(self.rng.integers(0, len(DATA_OPS))) if index is None else index]
        name = self.uname(label)
        inputs: Any
        if kind == "Compose":
            inputs = "@triggerBody()"
        elif kind == "ParseJson":
            inputs = {"content": "@body('Compose')", "schema": {"type": "object"}}
        elif kind in ("SetVariable", "AppendToStringVariable", "IncrementVariable"):
            inputs = {"name": "status", "value": "@utcNow()"}
        elif kind == "Query":
            inputs = {"from": "@triggerBody()?['value']", "where": "@equals(item()?['ok'], true)"}
        elif kind == "Join":
            inputs = {"from": "@triggerBody()?['value']", "joinWith": ", "}
        else:
            inputs = {"from": "@triggerBody()?['value']", "select": {"id": "@item()?['id']"}}
        return name, {"type": kind, "inputs": inputs, "metadata": self.meta()}

    def read(self) -> Item:
        op = READS[int(self.rng.integers(0, len(READS)))]
        return self.op(op)

    def init_var(self) -> Item:
        name = self.uname("Initialize_variable")
        inputs = {"variables": [{"name": f"var{len(self.names)}", "type": "string", "value": ""}]}
        return name, {"type": "InitializeVariable", "inputs": inputs, "metadata": self.meta()}

    def chain(self, items: list[Item]) -> dict[str, Any]:
        """Sequence items with runAfter, keeping any runAfter an item already has."""
        out: dict[str, Any] = {}
        prev: str | None = None
        for name, action in items:
            if "runAfter" not in action:
                status = "SUCCEEDED" if self.spec.upper and self.rng.random() < 0.3 else "Succeeded"
                action["runAfter"] = {} if prev is None else {prev: [status]}
            out[name] = action
            prev = name
        return out

    def scope(self, base: str, items: list[Item], run_after: dict[str, Any] | None = None) -> Item:
        name = self.uname(base)
        action: dict[str, Any] = {"type": "Scope", "actions": self.chain(items)}
        if run_after is not None:
            action["runAfter"] = run_after
        return name, action

    def if_(self, base: str, yes: list[Item], no: list[Item], branch: dict[str, str]) -> Item:
        name = self.uname(base)
        self.plan["if"][name] = branch
        action = {
            "type": "If",
            "expression": {
                "and": [{"equals": ["@triggerOutputs()?['body/statuscode']", 1]}],
            },
            "actions": self.chain(yes),
            "else": {"actions": self.chain(no)},
            "metadata": self.meta(),
        }
        return name, action

    def switch(self, base: str, cases: list[list[Item]], default: list[Item]) -> Item:
        name = self.uname(base)
        case_map: dict[str, Any] = {}
        for i, items in enumerate(cases):
            case_map[f"Case_{i + 1}"] = {"case": i + 1, "actions": self.chain(items)}
        self.plan["switch"][name] = {"ok": list(case_map), "noop": "default"}
        action = {
            "type": "Switch",
            "expression": "@triggerOutputs()?['body/prioritycode']",
            "cases": case_map,
            "default": {"actions": self.chain(default)},
        }
        return name, action

    def foreach(self, base: str, items: list[Item], reps: int, sequential: bool) -> Item:
        name = self.uname(base)
        self.plan["foreach"][name] = reps
        action: dict[str, Any] = {
            "type": "Foreach",
            "foreach": "@outputs('List_rows')?['body/value']",
            "actions": self.chain(items),
        }
        if sequential:
            action["runtimeConfiguration"] = {"concurrency": {"repetitions": 1}}
        return name, action

    def terminate(self, status: str, code: str = "", message: str = "") -> Item:
        name = self.uname("Terminate")
        inputs: dict[str, Any] = {"runStatus": status}
        if status == "Failed":
            inputs["runError"] = {"code": code, "message": message}
        return name, {"type": "Terminate", "inputs": inputs}

    def response(self, kind: str, status_code: int) -> Item:
        base = "Response" if kind == "Http" else "Respond_to_a_PowerApp_or_flow"
        name = self.uname(base)
        inputs: dict[str, Any] = {
            "statusCode": status_code,
            "body": {"result": "@{variables('status')}"},
        }
        if kind == "PowerApp":
            inputs["schema"] = {"type": "object", "properties": {"result": {"type": "string"}}}
        return name, {"type": "Response", "kind": kind, "inputs": inputs}

    def child(self, workflowid: str) -> Item:
        name = self.uname("Run_a_Child_Flow")
        inputs = {
            "host": {"workflowReferenceName": workflowid},
            "body": {"text": "@triggerOutputs()?['body/accountid']"},
        }
        return name, {"type": "Workflow", "inputs": inputs, "metadata": self.meta()}
