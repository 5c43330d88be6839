"""The Dataverse Web API: OData queries over the tenant's tables, and WhoAmI.

Served at `/dv/{slug}/api/data/v9.2/{entityset}`; the query language, paging and
preferences are `auditor.sim.odata`'s. A denied table answers the platform's privilege error.
https://learn.microsoft.com/power-apps/developer/data-platform/webapi/overview
"""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from starlette.requests import Request

from auditor.sim import odata
from auditor.sim.apis.common import Context, Headers, Reply, error_reply, json_bytes, json_reply
from auditor.sim.apis.gate import Route
from auditor.sim.model import PRIMARY_KEYS, SimEnvironment

_SCHEMA_NAMES = {
    "plugintracelog": "PluginTraceLog",
    "asyncoperation": "AsyncOperation",
    "workflow": "Workflow",
    "organization": "Organization",
    "flowrun": "flowrun",
    "flowevent": "flowevent",
    "callbackregistration": "CallbackRegistration",
    "sdkmessageprocessingstep": "SdkMessageProcessingStep",
    "sdkmessage": "SdkMessage",
    "sdkmessagefilter": "SdkMessageFilter",
    "plugintype": "PluginType",
    "pluginassembly": "PluginAssembly",
}


class DataverseApi:
    """The Web API of every environment with Dataverse, one query engine per environment."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._stores: dict[str, odata.TableStore] = {}
        # The application user the app's token stands for.
        self._principal_id = str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"appuser:{context.tenant.client_id}")
        )

    def _table_store(self, env: SimEnvironment) -> odata.TableStore:
        store = self._stores.get(env.env_id)
        if store is None or store.tables is not env.tables:
            store = odata.TableStore(env.tables)
            self._stores[env.env_id] = store
        return store

    def store(self, env_key: str) -> odata.TableStore:
        """The query engine of one environment (tests read its cache counters)."""
        env = self.context.tenant.environment(env_key)
        if env is None:
            raise KeyError(env_key)
        return self._table_store(env)

    def _denied(self, env: SimEnvironment, entity_set: str) -> bool:
        deny = self.context.options.deny
        return (env.slug, entity_set) in deny or (env.env_id, entity_set) in deny

    def handle(self, request: Request, api: Route) -> Reply:
        """A Web API request: WhoAmI or a query of one entity set, one page of it."""
        env = api.env
        if env is None:
            return error_reply(
                404, "0x80060888", f"No Dataverse environment is served at '{api.audience}'."
            )
        service_root = f"{self.context.base_url}/dv/{env.slug}/api/data/v9.2"
        headers: Headers = [
            ("odata-version", "4.0"),
            ("x-ms-service-request-id", str(uuid.uuid4())),
        ]
        entity_set = api.rest.strip("/")
        if entity_set == "WhoAmI":
            # https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/whoami
            org = str(uuid.uuid5(uuid.NAMESPACE_URL, f"org:{env.env_id}"))
            return json_reply(
                200,
                {
                    "@odata.context": (
                        f"{service_root}/$metadata#Microsoft.Dynamics.CRM.WhoAmIResponse"
                    ),
                    "BusinessUnitId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"bu:{env.env_id}")),
                    "UserId": self._principal_id,
                    "OrganizationId": org,
                },
                headers,
            )
        if entity_set not in PRIMARY_KEYS:
            return error_reply(
                404, "0x80060888", f"Resource not found for the segment '{entity_set}'.", headers
            )
        store = self._table_store(env)
        try:
            params = dict(request.query_params)
            query = odata.parse_query(entity_set, params, store.columns)
            for denied in sorted(s for s in query.sets() if self._denied(env, s)):
                return self._privilege_error(denied, headers)
            prefs = odata.parse_prefer(request.headers.getlist("prefer"))
            if prefs.maxpagesize is not None and query.top is not None:
                # "$top is ignored" when odata.maxpagesize is also sent (page-results.md).
                query = dataclasses.replace(query, top=None)
            page_size = prefs.maxpagesize or odata.MAX_PAGE_SIZE
            page_number, offset, snapshot = 1, 0, odata.utc(self.context.tenant.now)
            if "$skiptoken" in params:
                page_number, offset, snapshot = odata.decode_skiptoken(params["$skiptoken"])
            page = store.page(query, snapshot, offset, page_size, prefs)
        except odata.ODataError as exc:
            return json_reply(exc.status, exc.body(), headers)
        body: dict[str, Any] = {"@odata.context": odata.context_url(service_root, query)}
        if query.count:
            matched = len(store.positions(query, snapshot))
            if prefs.wants(odata.TOTAL_COUNT):
                body[f"@{odata.TOTAL_COUNT}"] = min(matched, odata.MAX_COUNT)
            if prefs.wants(odata.TOTAL_COUNT_EXCEEDED):
                body[f"@{odata.TOTAL_COUNT_EXCEEDED}"] = matched > odata.MAX_COUNT
            body["@odata.count"] = min(matched, odata.MAX_COUNT)
        body["value"] = page.rows
        if page.next_offset is not None:
            token = odata.encode_skiptoken(page_number + 1, page.next_offset, snapshot)
            body["@odata.nextLink"] = odata.next_link(
                f"{service_root}/{entity_set}", request.url.query, token
            )
        applied = prefs.applied()
        if applied:
            headers.append(("preference-applied", applied))
        headers.insert(0, ("content-type", "application/json; odata.metadata=minimal"))
        return Reply(200, json_bytes(body), headers)

    def _privilege_error(self, entity_set: str, headers: Headers) -> Reply:
        logical = odata.logical_name(entity_set)
        # Privilege names follow prvRead<SchemaName>; the message mirrors the platform's.
        schema = _SCHEMA_NAMES.get(logical, logical)
        privilege_id = uuid.uuid5(uuid.NAMESPACE_URL, f"prvRead{schema}")
        return error_reply(
            403,
            "0x80040220",
            f"Principal user (Id={self._principal_id}, type=8, roleCount=1, privilegeCount=0, "
            f"accessMode=4), is missing prvRead{schema} privilege (Id={privilege_id}) on "
            f"OTC=0 for entity '{logical}'.",
            headers,
        )
