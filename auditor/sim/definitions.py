"""Cloud-flow definitions for the simulated tenant, and the engine that "runs" them.

Definitions are Logic Apps Workflow Definition Language documents, in the shapes real solution
flows carry in `workflow.clientdata` (https://learn.microsoft.com/power-automate/manage-flows-with-code):
https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language
https://learn.microsoft.com/power-automate/manage-flows-with-code

`execute` walks a definition the way the Logic Apps engine does (runAfter compared
case-insensitively, non-taken branches Skipped, Terminate ends the run, a Catch scope that runs
after a failure handles it) and returns every action's result. The generator uses it to derive
each run's status from its intended outcome, and `scenario.render_actions` uses it to build the
action results served by the flow API, so runs and actions can never disagree.
https://learn.microsoft.com/azure/logic-apps/error-exception-handling
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from auditor.sim.names import guid

SCHEMA = (
    "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/"
    "workflowdefinition.json#"
)

# Intended outcome of a run (`runs._sim_outcome`).
OK, NOOP, FAIL, CANCEL = 0, 1, 2, 3
# Throttling of the run's throttled action (`runs._sim_retry`).
NO_RETRY, RETRY_RECOVERED, RETRY_EXHAUSTED = 0, 1, 2

# Default policy retries for a throttled call (Power Automate default policy, medium profile,
# up to 8; we use 4 so the run history stays short).
# https://learn.microsoft.com/power-automate/limits-and-config#retry-policy
DEFAULT_RETRIES = 4


@dataclass(frozen=True)
class Op:
    """A connector operation (or HTTP call) and whether it changes anything."""

    api: str  # connector name, e.g. shared_sharepointonline; "" for HTTP
    operation: str  # operationId, or the HTTP method
    label: str  # designer-style action name
    effect: bool
    kind: str = "OpenApiConnection"


_DV = "shared_commondataserviceforapps"
_SP = "shared_sharepointonline"
READS: tuple[Op, ...] = (
    Op(_DV, "ListRecords", "List_rows", False),
    Op(_DV, "GetItem", "Get_a_row_by_ID", False),
    Op(_SP, "GetItem", "Get_item", False),
    Op(_SP, "GetItems", "Get_items", False),
    Op("shared_office365users", "UserProfile_V2", "Get_user_profile_(V2)", False),
    Op("shared_excelonlinebusiness", "GetItems", "List_rows_present_in_a_table", False),
    Op("shared_onedriveforbusiness", "GetFileContent", "Get_file_content", False),
    Op("", "GET", "HTTP_Get", False, kind="Http"),
)
EFFECTS: tuple[Op, ...] = (
    Op(_DV, "CreateRecord", "Add_a_new_row", True),
    Op(_DV, "UpdateRecord", "Update_a_row", True),
    Op(_DV, "DeleteRecord", "Delete_a_row", True),
    Op(_SP, "PostItem", "Create_item", True),
    Op(_SP, "PatchItem", "Update_item", True),
    Op("shared_office365", "SendEmailV2", "Send_an_email_(V2)", True),
    Op("shared_teams", "PostMessageToConversation", "Post_message_in_a_chat_or_channel", True),
    Op("shared_excelonlinebusiness", "AddRowV2", "Add_a_row_into_a_table", True),
    Op("shared_onedriveforbusiness", "CreateFile", "Create_file", True),
)
HTTP_POST = Op("", "POST", "HTTP", True, kind="Http")
APPROVAL = Op(
    "shared_approvals",
    "StartAndWaitForAnApproval",
    "Start_and_wait_for_an_approval",
    True,
    kind="OpenApiConnectionWebhook",
)
MAIL = EFFECTS[5]
SP_CREATE = EFFECTS[3]
DV_UPDATE = EFFECTS[1]
TEAMS = EFFECTS[6]

# (type, designer name) of data operations; none of them has an effect (docs/how-a-scan-runs.md).
DATA_OPS: tuple[tuple[str, str], ...] = (
    ("Compose", "Compose"),
    ("ParseJson", "Parse_JSON"),
    ("SetVariable", "Set_variable"),
    ("Select", "Select"),
    ("Query", "Filter_array"),
    ("Join", "Join"),
    ("AppendToStringVariable", "Append_to_string_variable"),
    ("IncrementVariable", "Increment_variable"),
)

# Errors a failing connector call reports (Power Automate error reference).
# https://learn.microsoft.com/power-automate/error-reference
ACTION_ERRORS: tuple[tuple[str, str, str], ...] = (
    ("BadRequest", "InvalidRequest", "The request is invalid: field 'title' is required."),
    ("InternalServerError", "InternalServerError", "An unexpected error occurred on the server."),
    ("NotFound", "ResourceNotFound", "The requested item was not found."),
    ("Forbidden", "Forbidden", "Access denied. You do not have permission to perform this action."),
)
THROTTLE_MESSAGE = "Rate limit is exceeded. Try again in 26 seconds."
RUN_FAILED_MESSAGE = "An action failed. No dependent actions succeeded."

TRIGGER_TYPE = {
    "dataverse": "Automated",
    "sharepoint": "Automated",
    "outlook": "Automated",
    "recurrence": "Scheduled",
    "http": "Manual",
    "powerapp": "Manual",
    "button": "Manual",
}


@dataclass(frozen=True)
class FlowSpec:
    """What a flow looks like; the scenario picks one per flow, by role and profile."""

    role: str
    trigger: str  # dataverse | sharepoint | outlook | recurrence | http | powerapp | button
    dv_entity: str = "account"
    dv_message: int = 1
    dv_filtering: str | None = None
    dv_filterexpr: str | None = None
    conditions: tuple[str, ...] = ()
    error_handling: str = "trycatch"  # trycatch | none | swallow (catch that reports success)
    response: str = "none"  # full | success_only | none
    noop: str | None = None  # "if": If with an empty else; "terminate": early Terminate
    http_retry_none: bool = False
    throttle: bool = False
    custom_retry: bool = False
    children: tuple[str, ...] = ()  # workflowids of child flows to call
    repeated_block: bool = False
    monolith: bool = False
    approval: bool = False
    foreach: int = 0  # repetitions of an Apply to each around the first effect; 0: none
    sequential: bool = False
    body: int = 1  # reads and data operations before the effects
    effects: int = 1
    upper: bool = False  # write some runAfter statuses in upper case, as real exports do
    recurrence_minutes: int = 60
    max_container: int = 99  # cap on actions per container (keeps clean flows varied)
    failure_message: str = "Processing failed; the Catch scope reported the error."


@dataclass(frozen=True)
class BuiltFlow:
    """A generated definition with what the engine needs to play its runs."""

    definition: dict[str, Any]
    connection_references: dict[str, Any]
    plan: dict[str, Any]
    trigger_name: str


Item = tuple[str, dict[str, Any]]


class _Builder:
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
        if op.api == _DV:
            params: dict[str, Any] = {"entityName": "accounts"}
            if op.operation in ("GetItem", "UpdateRecord", "DeleteRecord"):
                params["recordId"] = "@triggerOutputs()?['body/accountid']"
            if op.operation == "ListRecords":
                params["$filter"] = "statecode eq 0"
                params["$top"] = 50
            return params
        if op.api == _SP:
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

    # Triggers ------------------------------------------------------------------------------

    def trigger(self) -> Item:
        s = self.spec
        trig: dict[str, Any]
        if s.trigger == "dataverse":
            # https://learn.microsoft.com/power-automate/dataverse/create-update-delete-trigger
            params: dict[str, Any] = {
                "subscriptionRequest/message": s.dv_message,
                "subscriptionRequest/entityname": s.dv_entity,
                "subscriptionRequest/scope": 4,
            }
            if s.dv_filtering:
                params["subscriptionRequest/filteringattributes"] = s.dv_filtering
            if s.dv_filterexpr:
                params["subscriptionRequest/filterexpression"] = s.dv_filterexpr
            params["subscriptionRequest/runas"] = 3
            key = self.connection(_DV)
            name = "When_a_row_is_added,_modified_or_deleted"
            trig = {
                "type": "OpenApiConnectionWebhook",
                "inputs": {
                    "host": {
                        "connectionName": key,
                        "operationId": "SubscribeWebhookTrigger",
                        "apiId": f"/providers/Microsoft.PowerApps/apis/{_DV}",
                    },
                    "parameters": params,
                    "authentication": "@parameters('$authentication')",
                },
            }
        elif s.trigger == "sharepoint":
            key = self.connection(_SP)
            name = "When_an_item_is_created_or_modified"
            trig = {
                "type": "OpenApiConnection",
                "inputs": {
                    "host": {
                        "connectionName": key,
                        "operationId": "GetOnUpdatedItems",
                        "apiId": f"/providers/Microsoft.PowerApps/apis/{_SP}",
                    },
                    "parameters": {
                        "dataset": "https://contoso.sharepoint.com/sites/Operations",
                        "table": "5e1f3c7a-0d2b-4c8e-9f61-3a7b2c1d0e99",
                    },
                    "authentication": "@parameters('$authentication')",
                },
                "recurrence": {"interval": 5, "frequency": "Minute"},
                "splitOn": "@triggerOutputs()?['body/value']",
            }
        elif s.trigger == "outlook":
            key = self.connection("shared_office365")
            name = "When_a_new_email_arrives_(V3)"
            trig = {
                "type": "OpenApiConnectionWebhook",
                "inputs": {
                    "host": {
                        "connectionName": key,
                        "operationId": "OnNewEmailV3",
                        "apiId": "/providers/Microsoft.PowerApps/apis/shared_office365",
                    },
                    "parameters": {
                        "folderPath": "Inbox",
                        "importance": "Any",
                        "fetchOnlyWithAttachment": False,
                        "includeAttachments": False,
                    },
                    "authentication": "@parameters('$authentication')",
                },
                "splitOn": "@triggerOutputs()?['body/value']",
            }
        elif s.trigger == "recurrence":
            name = "Recurrence"
            freq, interval = (
                ("Minute", s.recurrence_minutes)
                if s.recurrence_minutes < 60
                else ("Hour", s.recurrence_minutes // 60)
            )
            trig = {
                "type": "Recurrence",
                "recurrence": {
                    "frequency": freq,
                    "interval": interval,
                    "timeZone": "W. Europe Standard Time",
                },
            }
        else:
            kind = {"http": "Http", "powerapp": "PowerAppV2", "button": "Button"}[s.trigger]
            name = "manual"
            schema = {
                "type": "object",
                "properties": {
                    "text": {
                        "title": "Record id",
                        "type": "string",
                        "x-ms-dynamically-added": True,
                        "x-ms-content-hint": "TEXT",
                    }
                },
                "required": ["text"],
            }
            inputs: dict[str, Any] = {"schema": schema}
            if kind == "Http":
                inputs["method"] = "POST"
            trig = {"type": "Request", "kind": kind, "inputs": inputs}
        if s.conditions:
            trig["conditions"] = [{"expression": c} for c in s.conditions]
        trig["metadata"] = self.meta()
        return name, trig

    # Whole flows ---------------------------------------------------------------------------

    def retry_for(self, op: Op) -> dict[str, Any] | None:
        if op.kind == "Http" and self.spec.http_retry_none:
            return {"type": "none"}
        if self.spec.custom_retry and op.kind != "Http":
            return {"type": "exponential", "count": 6, "interval": "PT10S"}
        return None

    def effect_ops(self) -> list[Item]:
        s = self.spec
        items: list[Item] = []
        if s.approval:
            name, action = self.op(APPROVAL, weight=400.0)
            self.plan["cancel"] = name
            items.append((name, action))
        pool = list(EFFECTS)
        picks = self.rng.choice(len(pool), size=min(s.effects, len(pool)), replace=False)
        for i in picks.tolist():
            op = pool[i]
            items.append(self.op(op, retry=self.retry_for(op), fail=True))
        if s.http_retry_none:
            items.append(self.op(HTTP_POST, retry={"type": "none"}, fail=True))
        for wid in s.children:
            items.append(self.child(wid))
        if s.throttle:
            name, action = self.op(
                SP_CREATE, retry=self.retry_for(SP_CREATE), fail=True, base="Create_item_in_list"
            )
            self.plan["throttle"] = name
            items.insert(1 if s.approval else 0, (name, action))
        if s.foreach and items:
            first = items.pop(1 if s.approval and len(items) > 1 else 0)
            items.insert(0, self.foreach("Apply_to_each", [first], s.foreach, s.sequential))
        return items

    def repeated_block(self) -> list[Item]:
        """The same six-action sequence pasted into several flows (a child-flow candidate)."""
        return [
            self.op(READS[2], base="Get_item_details"),
            self.data(1),
            self.data(0),
            self.op(DV_UPDATE, base="Update_account_status", fail=True),
            self.op(TEAMS, base="Post_status_to_Teams"),
            self.data(6),
        ]

    def build(self) -> dict[str, Any]:
        s = self.spec
        if s.monolith:
            return self.chain(self.monolith())
        pre = [self.init_var() for _ in range(int(self.rng.integers(0, 3)))]
        main: list[Item] = [self.read()]
        for _ in range(max(0, s.body - 1)):
            main.append(self.read() if self.rng.random() < 0.4 else self.data())
        if s.repeated_block:
            main.extend(self.repeated_block())
        effects = self.effect_ops()
        if s.noop == "if":
            main.append(
                self.if_("Condition", effects, [], {"0": "yes", "1": "no", "2": "yes", "3": "yes"})
            )
        elif s.noop == "terminate":
            guard = self.if_(
                "Check_relevance",
                [self.terminate("Succeeded")],
                [],
                {"0": "no", "1": "yes", "2": "no", "3": "no"},
            )
            main = [guard, *main, *effects]
        else:
            main.extend(effects)
        kind = "Http" if s.trigger == "http" else "PowerApp"
        if s.response in ("full", "success_only"):
            main.append(self.response(kind, 200))
        # Keep containers short when asked (clean profiles): drop leading reads/data ops.
        while len(main) > s.max_container and len(main) > 1:
            droppable = [
                i
                for i, (n, a) in enumerate(main)
                if a["type"] not in ("If", "Foreach", "Response", "Workflow")
                and n not in self.plan["fail"]
                and n != self.plan["throttle"]
                and n != self.plan["cancel"]
            ]
            if not droppable:
                break
            main.pop(droppable[0])
        if s.error_handling in ("trycatch", "swallow"):
            try_name, try_action = self.scope("Try", main)
            catch: list[Item] = [
                (
                    self.uname("Compose_error"),
                    {"type": "Compose", "inputs": f"@result('{try_name}')"},
                ),
                self.op(MAIL, base="Notify_failure"),
            ]
            if s.error_handling == "swallow":
                # A catch that keeps the error in a Compose nobody reads: the failure is
                # swallowed and the run ends Succeeded (the notification is not sent).
                catch = catch[:1]
            if s.error_handling == "trycatch":
                if s.response == "full":
                    catch.append(self.response(kind, 500))
                catch.append(self.terminate("Failed", "FlowFailed", s.failure_message))
            catch_item = self.scope("Catch", catch, run_after={try_name: ["Failed", "TimedOut"]})
            top = [*pre, (try_name, try_action), catch_item]
        else:
            top = [*pre, *main]
        while len(top) > s.max_container and top[0][1]["type"] == "InitializeVariable":
            top.pop(0)
        return self.chain(top)

    def monolith(self) -> list[Item]:
        """One flow doing everything: more than 60 actions, nesting depth 7."""
        rng = self.rng

        def filler(n: int) -> list[Item]:
            return [self.data() if rng.random() < 0.6 else self.read() for _ in range(n)]

        inner_if = self.if_(
            "Condition_inner",
            [*filler(4), self.op(DV_UPDATE, fail=True), *filler(3)],
            filler(3),
            {"0": "yes", "1": "yes", "2": "yes", "3": "yes"},
        )
        switch = self.switch(
            "Switch_priority",
            [[*filler(3), inner_if], [*filler(4), self.op(MAIL)], filler(3)],
            filler(2),
        )
        process = self.scope("Process_record", [*filler(4), switch, *filler(2)])
        condition = self.if_(
            "Condition_active",
            [process, *filler(2)],
            [],
            {"0": "yes", "1": "yes", "2": "yes", "3": "yes"},
        )
        loop = self.foreach("Apply_to_each_record", [*filler(3), condition], 25, True)
        main = self.scope(
            "Main", [self.op(READS[0], base="List_rows"), *filler(6), loop, *filler(8)]
        )
        return [*[self.init_var() for _ in range(4)], *filler(5), main, *filler(6)]


def build_flow(rng: np.random.Generator, spec: FlowSpec, solution: bool) -> BuiltFlow:
    """Build one flow's definition, connection references and run plan from its spec."""
    b = _Builder(rng, spec, solution)
    trigger_name, trigger = b.trigger()
    actions = b.build()
    definition = {
        "$schema": SCHEMA,
        "contentVersion": "1.0.0.0",
        "parameters": {
            "$connections": {"defaultValue": {}, "type": "Object"},
            "$authentication": {"defaultValue": {}, "type": "SecureObject"},
        },
        "triggers": {trigger_name: trigger},
        "actions": actions,
        "outputs": {},
    }
    return BuiltFlow(definition, b.connections, b.plan, trigger_name)


# The engine -------------------------------------------------------------------------------


@dataclass
class ActionResult:
    """One action's result in one run, before times are laid out."""

    name: str
    status: str
    code: str | None
    error: tuple[str, str] | None = None
    retries: int = 0  # entries in retryHistory
    retry_code: str | None = None
    repetitions: int | None = None
    weight: float = 0.0  # relative duration of the action itself
    children: list[ActionResult] = field(default_factory=list)


@dataclass
class RunResult:
    """The run-level result of playing a definition for one intended outcome."""

    status: str
    code: str | None
    error_code: str | None
    error_message: str | None
    actions: list[ActionResult]


@dataclass
class _Ctx:
    plan: Mapping[str, Any]
    outcome: int
    retry: int
    variant: int
    fail_action: str | None
    stopped: bool = False
    run_status: str | None = None
    run_error: tuple[str, str] | None = None
    cancelled: bool = False


def _order(actions: Mapping[str, Any]) -> list[str]:
    """Actions of one container in an order that respects runAfter (stable)."""
    names = list(actions)
    done: list[str] = []
    placed: set[str] = set()
    while len(done) < len(names):
        progressed = False
        for name in names:
            if name in placed:
                continue
            preds = (actions[name].get("runAfter") or {}).keys()
            if all(p in placed or p not in actions for p in preds):
                done.append(name)
                placed.add(name)
                progressed = True
        if not progressed:  # a cycle: keep definition order for the rest
            done.extend(n for n in names if n not in placed)
            break
    return done


def _skip_all(actions: Mapping[str, Any], code: str, message: str) -> list[ActionResult]:
    out: list[ActionResult] = []
    for name, action in actions.items():
        out.append(_skipped(name, action, code, message))
    return out


def _children_of(action: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    kids: list[Mapping[str, Any]] = []
    if isinstance(action.get("actions"), Mapping):
        kids.append(action["actions"])
    els = action.get("else")
    if isinstance(els, Mapping) and isinstance(els.get("actions"), Mapping):
        kids.append(els["actions"])
    cases = action.get("cases")
    if isinstance(cases, Mapping):
        for case in cases.values():
            if isinstance(case, Mapping) and isinstance(case.get("actions"), Mapping):
                kids.append(case["actions"])
    default = action.get("default")
    if isinstance(default, Mapping) and isinstance(default.get("actions"), Mapping):
        kids.append(default["actions"])
    return kids


def _skipped(name: str, action: Mapping[str, Any], code: str, message: str) -> ActionResult:
    result = ActionResult(name, "Skipped", "ActionSkipped", (code, message.format(name=name)))
    for kids in _children_of(action):
        result.children.extend(_skip_all(kids, code, message))
    return result


_NOT_TAKEN = "The execution of template action '{name}' skipped: the branching condition for this action is not satisfied."  # noqa: E501


def _container(actions: Mapping[str, Any], ctx: _Ctx, out: list[ActionResult]) -> bool:
    """Run one container; True when it ends with a failure nothing handled."""
    status: dict[str, str] = {}
    failed: list[str] = []
    handled: set[str] = set()
    for name in _order(actions):
        if ctx.stopped:
            break
        action = actions[name]
        unmet: tuple[str, list[str], str] | None = None
        run_after = action.get("runAfter") or {}
        for pred, wanted in run_after.items():
            got = status.get(pred, "Skipped")
            if got.lower() not in [str(w).lower() for w in wanted]:
                unmet = (pred, [str(w) for w in wanted], got)
                break
        if unmet is not None:
            pred, wanted, got = unmet
            message = (
                f"The execution of template action '{{name}}' is skipped: the 'runAfter' "
                f"condition for action '{pred}' is not satisfied. Expected status values "
                f"'{', '.join(wanted)}' and actual value '{got}'."
            )
            res = _skipped(name, action, "ActionConditionFailed", message)
        else:
            for pred in run_after:
                if status.get(pred) in ("Failed", "TimedOut"):
                    handled.add(pred)
            res = _run(name, action, ctx)
        out.append(res)
        status[name] = res.status
        if res.status in ("Failed", "TimedOut"):
            failed.append(name)
    return any(f not in handled for f in failed)


def _close(res: ActionResult, unhandled: bool) -> None:
    if any(c.status == "Cancelled" for c in res.children):
        res.status, res.code = "Cancelled", "Cancelled"
    elif unhandled:
        res.status, res.code = "Failed", "ActionFailed"
        res.error = ("ActionFailed", RUN_FAILED_MESSAGE)


def _run(name: str, action: Mapping[str, Any], ctx: _Ctx) -> ActionResult:
    kind = str(action.get("type", "")).lower()
    plan = ctx.plan
    weight = float(plan["weights"].get(name, 1.0))
    if kind in ("scope", "foreach", "until"):
        reps = int(plan["foreach"].get(name, 3)) if kind != "scope" else None
        res = ActionResult(name, "Succeeded", "OK", repetitions=reps, weight=0.05)
        unhandled = _container(action.get("actions") or {}, ctx, res.children)
        if reps is not None:
            _repeat(res.children, reps)
        _close(res, unhandled)
        return res
    if kind == "if":
        branch = str(plan["if"].get(name, {}).get(str(ctx.outcome), "yes"))
        yes = action.get("actions") or {}
        no = (action.get("else") or {}).get("actions") or {}
        taken, other = (yes, no) if branch == "yes" else (no, yes)
        res = ActionResult(name, "Succeeded", "OK", weight=0.05)
        unhandled = _container(taken, ctx, res.children)
        res.children.extend(_skip_all(other, "ActionBranchingConditionNotSatisfied", _NOT_TAKEN))
        _close(res, unhandled)
        return res
    if kind == "switch":
        cases = action.get("cases") or {}
        sw = plan["switch"].get(name, {"ok": list(cases), "noop": "default"})
        ok_cases = list(sw.get("ok") or [])
        if ctx.outcome == NOOP or not ok_cases:
            chosen = "default"
        else:
            chosen = ok_cases[ctx.variant % len(ok_cases)]
        res = ActionResult(name, "Succeeded", "OK", weight=0.05)
        bodies = {k: (v or {}).get("actions") or {} for k, v in cases.items()}
        bodies["default"] = (action.get("default") or {}).get("actions") or {}
        unhandled = _container(bodies[chosen], ctx, res.children)
        for key, body in bodies.items():
            if key != chosen:
                res.children.extend(
                    _skip_all(body, "ActionBranchingConditionNotSatisfied", _NOT_TAKEN)
                )
        _close(res, unhandled)
        return res
    if kind == "terminate":
        inputs = action.get("inputs") or {}
        run_status = str(inputs.get("runStatus", "Succeeded"))
        ctx.stopped = True
        ctx.run_status = run_status
        if run_status == "Failed":
            err = inputs.get("runError") or {}
            ctx.run_error = (str(err.get("code") or "Terminated"), str(err.get("message") or ""))
            return ActionResult(name, "Failed", "Terminated", ctx.run_error, weight=0.05)
        return ActionResult(name, run_status, "OK", weight=0.05)
    if kind == "response":
        return ActionResult(name, "Succeeded", "OK", weight=0.2)
    # A leaf that does something: connector call, HTTP, child flow, data operation.
    if kind in _LIGHT:
        weight *= 0.05  # data operations take milliseconds, calls take seconds
    if plan.get("cancel") == name and ctx.outcome == CANCEL:
        ctx.stopped = True
        ctx.cancelled = True
        return ActionResult(name, "Cancelled", "Cancelled", weight=weight)
    if ctx.fail_action == name:
        if ctx.retry == RETRY_EXHAUSTED:
            count = _retry_count(action)
            return ActionResult(
                name,
                "Failed",
                "TooManyRequests",
                ("429", THROTTLE_MESSAGE),
                retries=count,
                retry_code="TooManyRequests",
                weight=weight * (1 + count),
            )
        code, err_code, message = ACTION_ERRORS[ctx.variant % len(ACTION_ERRORS)]
        return ActionResult(name, "Failed", code, (err_code, message), weight=weight)
    if ctx.retry == RETRY_RECOVERED and plan.get("throttle") == name:
        count = 1 + ctx.variant % 3
        return ActionResult(
            name,
            "Succeeded",
            "OK",
            retries=count,
            retry_code="TooManyRequests",
            weight=weight * (1 + count),
        )
    ok_code = "Created" if "Create" in name or "Add_a" in name else "OK"
    return ActionResult(name, "Succeeded", ok_code, weight=weight)


_LIGHT = {kind.lower() for kind, _ in DATA_OPS} | {"initializevariable"}


def span(result: ActionResult) -> float:
    """Relative time an action takes with everything nested in it (0 when Skipped)."""
    if result.status == "Skipped":
        return 0.0
    return result.weight + sum(span(c) for c in result.children)


def run_span(result: RunResult) -> float:
    """Relative time of a whole run: the sum of its top-level actions."""
    return sum(span(a) for a in result.actions)


def _retry_count(action: Mapping[str, Any]) -> int:
    policy = (action.get("inputs") or {}).get("retryPolicy") or {}
    kind = str(policy.get("type", "default")).lower()
    if kind == "none":
        return 0
    if kind in ("exponential", "fixed"):
        return int(policy.get("count", DEFAULT_RETRIES))
    return DEFAULT_RETRIES


def _repeat(children: list[ActionResult], reps: int) -> None:
    for child in children:
        if child.status != "Skipped":
            child.repetitions = reps
            child.weight *= reps
        _repeat(child.children, reps)


def execute(
    definition: Mapping[str, Any], plan: Mapping[str, Any], outcome: int, retry: int, variant: int
) -> RunResult:
    """Play a definition for one intended outcome; deterministic in its arguments."""
    fail_action: str | None = None
    if outcome == FAIL:
        if retry == RETRY_EXHAUSTED and plan.get("throttle"):
            fail_action = str(plan["throttle"])
        elif plan["fail"]:
            fail_action = str(plan["fail"][variant % len(plan["fail"])])
    ctx = _Ctx(plan, outcome, retry, variant, fail_action)
    actions: list[ActionResult] = []
    unhandled = _container(definition.get("actions") or {}, ctx, actions)
    if ctx.run_status is not None:
        status = ctx.run_status
    elif ctx.cancelled:
        status = "Cancelled"
    elif unhandled:
        status = "Failed"
    else:
        status = "Succeeded"
    if status == "Failed":
        code, message = ctx.run_error or ("ActionFailed", RUN_FAILED_MESSAGE)
        return RunResult(status, code, code, message, actions)
    if status == "Cancelled":
        return RunResult(status, "Cancelled", None, None, actions)
    return RunResult(status, None, None, None, actions)
