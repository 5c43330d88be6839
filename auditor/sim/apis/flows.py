"""The flow API's flows: the maker and admin lists and single flows; runs in `flow_runs`.

Served under `/flow/providers/Microsoft.ProcessSimple/environments/{env}/flows` (maker) and
`.../scopes/admin/environments/{env}/v2/flows`, `.../scopes/admin/environments/{env}/flows/
{flow}[/runs[/{run}]]` (admin).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request

from auditor.sim import odata
from auditor.sim.apis.common import (
    Context,
    Reply,
    api_version,
    error_reply,
    json_reply,
    next_link,
    page_offset,
    stamp7,
)
from auditor.sim.apis.flow_runs import FlowRuns
from auditor.sim.apis.gate import Route
from auditor.sim.identity import TokenRecord
from auditor.sim.model import SimEnvironment

FLOW_API_VERSION = "2016-11-01"


class FlowApi:
    """The flow API of every environment, with the flow lookups it keeps per flows frame."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self.runs = FlowRuns(context)
        self._flow_names: dict[tuple[str, int], dict[str, int]] = {}

    def handle(self, request: Request, api: Route, caller: TokenRecord) -> Reply:
        """The flow API, by route.

        - Maker routes (`environments/{env}/flows`) act for the caller: the list holds only
          flows the caller created (an app-only token owns none), and another owner's flow,
          its runs and its run details answer 403 (inferred: the maker list is "flows owned
          by me", pnp/cli-microsoft365 flow-list.ts `sharingStatus`; the Power Automate
          Management connector supports service principals "for administrative actions only",
          https://learn.microsoft.com/connectors/flowmanagement).
        - Admin routes (`scopes/admin/environments/{env}/v2/flows` for the list,
          `scopes/admin/environments/{env}/flows/{flow}[/runs[/{run}]]`) see every flow of
          the environment (pnp/cli-microsoft365 flow-list.ts, flow-get.ts and run-list.ts with
          `--asAdmin`).
        - On either route, solution flows are listed only with
          `include=includeSolutionCloudFlows` (flow-list.ts `--includeSolutions`).
        """
        params = dict(request.query_params)
        version_error = api_version(params, (FLOW_API_VERSION,))
        if version_error is not None:
            return version_error
        env = api.env
        if env is None:
            return error_reply(
                404,
                "EnvironmentNotFound",
                f"The environment '{api.env_key}' could not be found in the tenant "
                f"'{self.context.tenant.tenant_id}'.",
            )
        parts = [unquote(p) for p in api.rest.strip("/").split("/") if p]
        if api.admin and parts[:1] == ["v2"]:
            # The admin list is served under /v2/flows; single flows and runs are not.
            parts = parts[1:] if len(parts) == 2 else ["not-found"]
        if (
            not parts
            or parts[0] != "flows"
            or len(parts) > 4
            or (len(parts) >= 3 and parts[2] != "runs")
        ):
            return error_reply(404, "NotFound", f"No flow API resource at '{request.url.path}'.")
        resource = "flows" if len(parts) <= 2 else "runs"
        if (env.slug, resource) in self.context.options.deny or (
            env.env_id,
            resource,
        ) in self.context.options.deny:
            return error_reply(
                403,
                "Forbidden",
                f"The caller does not have permission to read {resource} in environment "
                f"'{env.env_id}'.",
            )
        owner = None if api.admin else caller.object_id
        try:
            if len(parts) == 1:
                return self._flow_list(request, env, params, owner)
            flow_position = self._flow_position(env, parts[1])
            if flow_position is None:
                return error_reply(404, "FlowNotFound", f"Could not find flow '{parts[1]}'.")
            if owner is not None and creator(str(env.flows["name"].iloc[flow_position])) != owner:
                return error_reply(
                    403,
                    "Forbidden",
                    f"The caller with object id '{owner}' does not have permission for flow "
                    f"'{parts[1]}' in environment '{env.env_id}'.",
                )
            if len(parts) == 2:
                return json_reply(200, self._flow_object(env, flow_position, with_definition=True))
            if len(parts) == 3:
                return self.runs.run_list(request, env, parts[1], params)
            return self.runs.run_get(env, flow_position, parts[1], parts[3], params)
        except odata.ODataError as exc:
            return error_reply(400, "InvalidQueryParameterValue", exc.message)

    def _flow_position(self, env: SimEnvironment, name: str) -> int | None:
        flows = env.flows
        key = (env.env_id, id(flows))
        positions = self._flow_names.get(key)
        if positions is None:
            names = flows["name"].tolist() if "name" in flows.columns else []
            positions = {str(n).lower(): i for i, n in enumerate(names)}
            self._flow_names[key] = positions
        return positions.get(name.lower())

    def _flow_list(
        self, request: Request, env: SimEnvironment, params: Mapping[str, str], owner: str | None
    ) -> Reply:
        flows = env.flows
        names = [str(n) for n in flows["name"].tolist()] if len(flows) else []
        in_solution = (
            [isinstance(w, str) and bool(w) for w in flows["workflowid"].tolist()]
            if len(flows)
            else []
        )
        solutions = "includesolutioncloudflows" in params.get("include", "").lower()
        order = [
            i
            for i in sorted(range(len(names)), key=names.__getitem__)
            if (solutions or not in_solution[i]) and (owner is None or creator(names[i]) == owner)
        ]
        offset = page_offset(params)
        size = self.context.limits.flow_page
        chunk = order[offset : offset + size]
        body: dict[str, Any] = {
            "value": [self._flow_object(env, p, with_definition=False) for p in chunk]
        }
        if offset + size < len(order):
            body["nextLink"] = next_link(self.context, request, offset + size)
        return json_reply(200, body)

    def _flow_object(
        self, env: SimEnvironment, position: int, with_definition: bool
    ) -> dict[str, Any]:
        # Shape: the unsupported management API the collector reads
        # (https://learn.microsoft.com/power-automate/manage-flows-with-code); Microsoft documents
        # no schema, so the fields are inferred from PnP CLI for Microsoft 365's fixtures of real
        # responses (flow-get.mock.ts).
        row = env.flows.iloc[position]
        name = str(row["name"])
        definition = _json_field(row.get("definition"))
        references = _json_field(row.get("connection_references"))
        env_path = f"/providers/Microsoft.ProcessSimple/environments/{env.env_id}"
        state = _text_or(row.get("state"), "Started")
        props: dict[str, Any] = {
            "apiId": "/providers/Microsoft.PowerApps/apis/shared_logicflows",
            "displayName": _text_or(row.get("display_name"), name),
            "userType": "Owner",
            "state": state,
            "flowSuspensionReason": _text_or(
                row.get("suspension_reason"),
                "AlwaysFailingDetected" if state == "Suspended" else "None",
            ),
            "createdTime": stamp7(row.get("created_time")),
            "lastModifiedTime": stamp7(row.get("last_modified_time")),
            "definitionSummary": _definition_summary(definition),
            "connectionReferences": references,
            "creator": {
                "tenantId": self.context.tenant.tenant_id,
                "objectId": creator(name),
                "userId": creator(name),
                "userType": "ActiveDirectory",
            },
            "environment": {
                "name": env.env_id,
                "type": "Microsoft.ProcessSimple/environments",
                "id": env_path,
            },
            "provisioningMethod": "FromDefinition",
            "flowFailureAlertSubscribed": True,
            "isManaged": False,
        }
        workflow_id = row.get("workflowid")
        if isinstance(workflow_id, str) and workflow_id:
            props["workflowEntityId"] = workflow_id
        if with_definition:
            props["definition"] = definition
        return {
            "name": name,
            "id": f"{env_path}/flows/{name}",
            "type": "Microsoft.ProcessSimple/environments/flows",
            "properties": props,
        }


def creator(flow_name: str) -> str:
    """The object id of the person who made a flow (every simulated flow has a maker)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"owner:{flow_name}"))


def _json_field(value: Any) -> Any:
    if isinstance(value, str) and value:
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value  # hostile data is served as it is
    if isinstance(value, dict):
        return value
    return {}


def _text_or(value: Any, default: str) -> str:
    return value if isinstance(value, str) and value else default


def _definition_summary(definition: Any) -> dict[str, Any]:
    """`definitionSummary`: the type (and operation id) of every trigger and action."""

    def entry(item: Any) -> dict[str, Any]:
        found: dict[str, Any] = {"type": item.get("type") if isinstance(item, dict) else None}
        inputs = item.get("inputs") if isinstance(item, dict) else None
        host = inputs.get("host") if isinstance(inputs, dict) else None
        if isinstance(host, dict) and host.get("operationId"):
            found["swaggerOperationId"] = host["operationId"]
        return found

    def walk(actions: Any, out: list[dict[str, Any]]) -> None:
        if not isinstance(actions, dict):
            return
        for item in actions.values():
            out.append(entry(item))
            if not isinstance(item, dict):
                continue
            walk(item.get("actions"), out)
            branch = item.get("else")
            if isinstance(branch, dict):
                walk(branch.get("actions"), out)
            cases = item.get("cases")
            if isinstance(cases, dict):
                for case in cases.values():
                    if isinstance(case, dict):
                        walk(case.get("actions"), out)
            default = item.get("default")
            if isinstance(default, dict):
                walk(default.get("actions"), out)

    if not isinstance(definition, dict):
        return {"triggers": [], "actions": []}
    triggers = definition.get("triggers")
    actions: list[dict[str, Any]] = []
    walk(definition.get("actions"), actions)
    return {
        "triggers": [entry(t) for t in triggers.values()] if isinstance(triggers, dict) else [],
        "actions": actions,
    }
