"""Cloud-flow definitions for the simulated tenant, built from a flow spec.

Definitions are Logic Apps Workflow Definition Language documents, in the shapes real solution
flows carry in `workflow.clientdata` (https://learn.microsoft.com/power-automate/manage-flows-with-code):
https://learn.microsoft.com/azure/logic-apps/logic-apps-workflow-definition-language
https://learn.microsoft.com/power-automate/manage-flows-with-code

`build_flow` gives the definition, its connection references and the run plan the executor
(`flow_runs.execute`) plays each run against. The actions themselves are made by
`action_builder.ActionBuilder`; this module adds the trigger and composes whole flows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from auditor.sim.action_builder import ActionBuilder, Item
from auditor.sim.flow_operations import (
    APPROVAL,
    DATAVERSE_API,
    DV_UPDATE,
    EFFECTS,
    HTTP_POST,
    MAIL,
    READS,
    SHAREPOINT_API,
    SP_CREATE,
    TEAMS,
    Op,
)
from auditor.sim.flow_spec import FlowSpec

SCHEMA = (
    "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/"
    "workflowdefinition.json#"
)


@dataclass(frozen=True)
class BuiltFlow:
    """A generated definition with what the engine needs to play its runs."""

    definition: dict[str, Any]
    connection_references: dict[str, Any]
    plan: dict[str, Any]
    trigger_name: str


class _FlowBuilder(ActionBuilder):
    """Adds the trigger and composes the actions into a whole flow, as its spec asks."""

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
            key = self.connection(DATAVERSE_API)
            name = "When_a_row_is_added,_modified_or_deleted"
            trig = {
                "type": "OpenApiConnectionWebhook",
                "inputs": {
                    "host": {
                        "connectionName": key,
                        "operationId": "SubscribeWebhookTrigger",
                        "apiId": f"/providers/Microsoft.PowerApps/apis/{DATAVERSE_API}",
                    },
                    "parameters": params,
                    "authentication": "@parameters('$authentication')",
                },
            }
        elif s.trigger == "sharepoint":
            key = self.connection(SHAREPOINT_API)
            name = "When_an_item_is_created_or_modified"
            trig = {
                "type": "OpenApiConnection",
                "inputs": {
                    "host": {
                        "connectionName": key,
                        "operationId": "GetOnUpdatedItems",
                        "apiId": f"/providers/Microsoft.PowerApps/apis/{SHAREPOINT_API}",
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
    b = _FlowBuilder(rng, spec, solution)
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
