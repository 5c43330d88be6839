"""The simulator's HTTPS server: identity, admin (BAP), Dataverse and flow APIs on one port.

One ASGI application serves every API of the simulated tenant under its own path prefix:

- `/{tenant}/...`                 OIDC discovery and the v2.0 token endpoint (identity.py)
- `/bap/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments`   environments
- `/dv/{slug}/api/data/v9.2/{entityset}`                                     Dataverse
- `/flow/providers/Microsoft.ProcessSimple/environments/{env}/flows/...`     flow API (maker)
- `/flow/providers/Microsoft.ProcessSimple/scopes/admin/environments/{env}/v2/flows`,
  `.../scopes/admin/environments/{env}/flows/{flow}[/runs[/{run}]]`           flow API (admin)

API requests go through the same gate a real tenant applies: bearer token (401), fault
injection (faults.py), service protection (protection.py), latency; then the handler. The
server runs uvicorn in a background thread on a socket bound before start, with a TLS
certificate from a CA made at start (trustme), so clients trust `ca_pem` and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import email.utils
import json
import logging
import re
import shlex
import shutil
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, unquote

import anyio
import numpy as np
import pandas as pd
import trustme
import uvicorn
from starlette.requests import Request

from auditor.files import private_dir, write_bytes, write_text
from auditor.sim import odata
from auditor.sim.faults import FaultPlan, SimStats
from auditor.sim.identity import (
    ADMIN_RESOURCE,
    FLOW_RESOURCE,
    IdentityProvider,
    TokenRecord,
    dataverse_resource,
)
from auditor.sim.model import PRIMARY_KEYS, SimEnvironment, SimOptions, SimTenant
from auditor.sim.protection import ServiceProtection

# scenario.render_actions(tenant, env, flow row, run row): rows are passed as pandas Series.
RenderActions = Callable[[SimTenant, SimEnvironment, Any, Any], Mapping[str, Any]]
Headers = list[tuple[str, str]]

FLOW_API_VERSION = "2016-11-01"
# Versions clients send to the BAP environments list (the admin PowerShell module and PnP
# CLI use 2020-10-01; older tools 2016-11-01 and 2019-05-01).
BAP_API_VERSIONS = ("2016-11-01", "2019-05-01", "2020-06-01", "2020-10-01", "2021-04-01")
_DATAVERSE = "dataverse"
_FLOW = "flow"
_ADMIN = "admin"


class SimulatedReset(Exception):
    """Raised inside the ASGI app to make uvicorn drop a connection mid-response."""


class _ResetLogFilter(logging.Filter):
    """Keeps uvicorn from logging a stack trace for every connection reset on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], SimulatedReset))


@dataclass
class Reply:
    """A complete HTTP answer before it is sent (so faults can cut or corrupt it)."""

    status: int
    body: bytes
    headers: Headers = field(default_factory=list)


def _json_bytes(value: Any) -> bytes:
    # Compact and UTF-8 like the real services; sort-free so field order stays documented.
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def _http_date(moment: datetime) -> str:
    """An HTTP date (RFC 9110) of a moment of the simulated clock."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return email.utils.format_datetime(aware.astimezone(UTC), usegmt=True)


def _reply(status: int, value: Any, headers: Headers | None = None) -> Reply:
    return Reply(
        status,
        _json_bytes(value),
        [("content-type", "application/json; charset=utf-8"), *(headers or [])],
    )


def _error(status: int, code: str, message: str, headers: Headers | None = None) -> Reply:
    return _reply(status, {"error": {"code": code, "message": message}}, headers)


@dataclass
class Limits:
    """Page sizes of the APIs that page by `nextLink` (tests lower them to see paging)."""

    flow_page: int = 50
    run_page: int = 50
    environment_page: int = 50


@dataclass
class _Api:
    """Which API a request is for: family, token audience, protection key, environment."""

    family: str
    audience: str
    env_key: str
    env: SimEnvironment | None
    rest: str  # path after the API's own prefix
    admin: bool = False  # an administrator route (`scopes/admin`)


_DV_PATH = re.compile(r"^/dv/([^/]+)/api/data/v9\.2(?:/(.*))?$")
_FLOW_PATH = re.compile(
    r"^/flow/providers/Microsoft\.ProcessSimple/(scopes/admin/)?environments/([^/]+)(/.*)?$"
)
_BAP_ID_PREFIX = "/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments"
_BAP_PATH = f"/bap{_BAP_ID_PREFIX}"
_FLOW_ID_PREFIX = "/providers/Microsoft.ProcessSimple/environments"
_IDENTITY_PATH = re.compile(
    r"^/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token|"
    r"discovery/v2\.0/keys|oauth2/v2\.0/devicecode)$"
)


class SimApp:
    """The ASGI application: routes, the API gate and the handlers."""

    def __init__(
        self,
        tenant: SimTenant,
        options: SimOptions,
        base_url: str,
        stats: SimStats,
        issued_tokens: list[str],
        render_actions: RenderActions | None,
    ) -> None:
        self.tenant = tenant
        self.options = options
        self.base_url = base_url
        self.stats = stats
        self.limits = Limits()
        resources = [FLOW_RESOURCE, ADMIN_RESOURCE]
        resources += [
            dataverse_resource(base_url, env.slug)
            for env in tenant.environments
            if env.has_dataverse
        ]
        self.identity = IdentityProvider(tenant, base_url, options.token_lifetime_s, resources)
        self.identity.issued_tokens = issued_tokens
        self.faults = FaultPlan(options.seed, dict(options.faults))
        self.protection = ServiceProtection(
            options.max_concurrent, options.max_requests, options.window_s, options.retry_after_s
        )
        self._render_actions = render_actions
        self._stores: dict[str, odata.TableStore] = {}
        self._run_index: dict[tuple[str, int, datetime], dict[str, np.ndarray[Any, Any]]] = {}
        self._run_names: dict[tuple[str, int], dict[str, int]] = {}
        self._flow_names: dict[tuple[str, int], dict[str, int]] = {}
        self._run_cache: dict[tuple[str, int], dict[str, list[Any]]] = {}
        self._principal_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"appuser:{tenant.client_id}"))

    # -- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path: str = scope["path"]
        identity = _IDENTITY_PATH.match(path)
        if identity is not None:
            self.stats.token_requests += 1
            reply = await self._identity(request, identity.group(1), identity.group(2))
            await self._send(send, reply)
            return
        if path == "/_sim/clock":
            await self._send(send, await self._clock(request))
            return
        api = self._route(path)
        if api is None:
            await self._send(send, _error(404, "NotFound", f"No API is served at '{path}'."))
            return
        await self._gate(request, api, send)

    async def _send(self, send: Any, reply: Reply, cut: bool = False) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        # The tenant's clock, not the machine's: clients take a scan's end from it.
        headers.append((b"date", _http_date(self.tenant.now).encode("latin-1")))
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        if cut:
            # Half the body, then an exception: uvicorn closes the transport, and the client
            # sees the connection end before Content-Length bytes arrived.
            await send(
                {
                    "type": "http.response.body",
                    "body": reply.body[: len(reply.body) // 2],
                    "more_body": True,
                }
            )
            raise SimulatedReset("connection reset by the fault plan")
        await send({"type": "http.response.body", "body": reply.body})

    async def _clock(self, request: Request) -> Reply:
        """The simulator's own control: GET reads the clock, POST ?advance_minutes=N moves it.

        Only for driving a simulator in another process (benchmarks); the server listens on
        loopback only.
        """
        if request.method == "POST":
            try:
                minutes = float(request.query_params.get("advance_minutes", "0"))
            except ValueError:
                return _error(400, "BadRequest", "advance_minutes must be a number")
            self.tenant.advance(timedelta(minutes=minutes))
        return _reply(200, {"now": _http_date(self.tenant.now), "end": _http_date(self.tenant.end)})

    # -- identity ----------------------------------------------------------------------

    async def _identity(self, request: Request, tenant_segment: str, endpoint: str) -> Reply:
        correlation = request.headers.get("client-request-id")
        if endpoint.endswith("openid-configuration") and request.method == "GET":
            answer = self.identity.openid_configuration(tenant_segment, correlation)
        elif endpoint.endswith("keys") and request.method == "GET":
            answer = self.identity.jwks()
        elif endpoint.endswith("token") and request.method == "POST":
            form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
            answer = self.identity.token(
                tenant_segment, form, correlation, _basic_auth(request.headers.get("authorization"))
            )
        elif endpoint.endswith("devicecode") and request.method == "POST":
            return _reply(
                400,
                {
                    "error": "invalid_request",
                    "error_description": (
                        "The simulator supports the client-credentials grant only."
                    ),
                },
            )
        else:
            return _reply(
                405, {"error": "invalid_request", "error_description": "Method not allowed."}
            )
        return _reply(answer.status, answer.body, [("cache-control", "no-store, no-cache")])

    # -- the gate every API request passes ---------------------------------------------

    def _route(self, path: str) -> _Api | None:
        match = _DV_PATH.match(path)
        if match is not None:
            env = self.tenant.environment(match.group(1))
            slug = env.slug if env is not None else match.group(1)
            return _Api(
                _DATAVERSE,
                dataverse_resource(self.base_url, slug),
                env.env_id if env is not None else slug,
                env if env is not None and env.has_dataverse else None,
                match.group(2) or "",
            )
        match = _FLOW_PATH.match(path)
        if match is not None:
            env = self.tenant.environment(match.group(2))
            return _Api(
                _FLOW,
                FLOW_RESOURCE,
                match.group(2),
                env,
                match.group(3) or "",
                bool(match.group(1)),
            )
        if path.rstrip("/") == _BAP_PATH:
            return _Api(_ADMIN, ADMIN_RESOURCE, "", None, "", admin=True)
        return None

    async def _gate(self, request: Request, api: _Api, send: Any) -> None:
        self.stats.requests += 1
        latency = self.options.latency_ms / 1000.0
        record, problem = self.identity.check(request.headers.get("authorization"), api.audience)
        if record is None:
            self.stats.unauthorized += 1
            if latency:
                await anyio.sleep(latency)
            await self._send(send, self._unauthorized(api, problem))
            return
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        fault = self.faults.decide(request.method, target)
        if fault in ("429", "500", "503", "expire"):
            self.stats.faults[fault] += 1
            if latency:
                await anyio.sleep(latency)
            await self._send(send, self._fault_reply(api, fault))
            return
        key = (record.appid, api.env_key)
        rejection = self.protection.acquire(key)
        if rejection is not None:
            self.stats.throttled += 1
            await self._send(
                send,
                _error(
                    429,
                    rejection.code,
                    rejection.message,
                    [("retry-after", str(rejection.retry_after_s))],
                ),
            )
            return
        try:
            if latency:
                await anyio.sleep(latency)
            if fault == "timeout":
                self.stats.faults[fault] += 1
                await anyio.sleep(self.options.timeout_s)
            reply = self._handle(request, api, record)
            if fault == "badjson" and reply.status == 200:
                self.stats.faults[fault] += 1
                reply.body = reply.body[: max(1, len(reply.body) // 2)]
            if fault == "reset":
                self.stats.faults[fault] += 1
            await self._send(send, reply, cut=fault == "reset")
        finally:
            self.protection.release(key)

    def _unauthorized(self, api: _Api, problem: str) -> Reply:
        messages = {
            "missing": ("AuthenticationFailed", "The request has no bearer token."),
            "invalid": ("InvalidAuthenticationToken", "The access token is invalid."),
            "expired": ("ExpiredAuthenticationToken", "The access token has expired."),
            "audience": (
                "InvalidAuthenticationTokenAudience",
                f"The access token has an audience other than '{api.audience}'.",
            ),
        }
        code, message = messages.get(problem, messages["invalid"])
        # Dataverse's challenge names the authority and the resource to ask a token for.
        # https://learn.microsoft.com/power-apps/developer/data-platform/authenticate-oauth
        challenge = (
            f"Bearer authorization_uri={self.identity.authority()}/oauth2/authorize, "
            f"resource_id={api.audience}/"
        )
        return _error(401, code, message, [("www-authenticate", challenge)])

    def _fault_reply(self, api: _Api, fault: str) -> Reply:
        retry = [("retry-after", str(self.options.retry_after_s))]
        if fault == "expire":
            return self._unauthorized(api, "expired")
        if api.family == _DATAVERSE:
            # https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
            if fault == "429":
                return _error(
                    429,
                    "0x80072322",
                    f"Number of requests exceeded the limit of {self.options.max_requests} over "
                    f"time window of {self.options.window_s:g} seconds.",
                    retry,
                )
            if fault == "500":
                return _error(500, "0x80040216", "An unexpected error occurred.")
            return _error(503, "0x80040216", "The service is temporarily unavailable.", retry)
        if fault == "429":
            return _error(
                429,
                "TooManyRequests",
                f"Rate limit is exceeded. Try again in {self.options.retry_after_s} seconds.",
                retry,
            )
        if fault == "500":
            return _error(500, "InternalServerError", "Encountered internal server error.")
        return _error(503, "ServiceUnavailable", "The service is temporarily unavailable.", retry)

    def _handle(self, request: Request, api: _Api, caller: TokenRecord) -> Reply:
        if request.method != "GET":
            return _error(405, "MethodNotAllowed", f"The simulator is read-only: {request.method}.")
        if api.admin and not self.options.management_app:
            return self._not_management_app(request, caller)
        if api.family == _DATAVERSE:
            return self._dataverse(request, api)
        if api.family == _FLOW:
            return self._flow(request, api, caller)
        return self._environments(request)

    def _not_management_app(self, request: Request, caller: TokenRecord) -> Reply:
        """What the admin routes answer an app that is not a Power Platform management app.

        A service principal reaches the admin (`scopes/admin`) routes only once an
        administrator has registered it (`New-PowerAppManagementApp`, or PUT
        .../adminApplications/{appId}): https://learn.microsoft.com/power-platform/admin/
        powerplatform-api-create-service-principal. The code and message are those users
        report from the platform (microsoft/powerplatform-build-tools issue 892); that the
        flow API's admin routes answer the same way is inferred.
        """
        return _error(
            403,
            "Forbidden",
            f"The service principal with id '{caller.object_id}' for application "
            f"{caller.appid} does not have permission to access the path "
            f"'{request.url.path}?{request.url.query}' in tenant {self.tenant.tenant_id}.",
        )

    # -- Dataverse ---------------------------------------------------------------------

    def _store(self, env: SimEnvironment) -> odata.TableStore:
        store = self._stores.get(env.env_id)
        if store is None or store.tables is not env.tables:
            store = odata.TableStore(env.tables)
            self._stores[env.env_id] = store
        return store

    def store(self, env_key: str) -> odata.TableStore:
        """The query engine of one environment (tests read its cache counters)."""
        env = self.tenant.environment(env_key)
        if env is None:
            raise KeyError(env_key)
        return self._store(env)

    def _denied(self, env: SimEnvironment, entity_set: str) -> bool:
        deny = self.options.deny
        return (env.slug, entity_set) in deny or (env.env_id, entity_set) in deny

    def _dataverse(self, request: Request, api: _Api) -> Reply:
        env = api.env
        if env is None:
            return _error(
                404, "0x80060888", f"No Dataverse environment is served at '{api.audience}'."
            )
        service_root = f"{self.base_url}/dv/{env.slug}/api/data/v9.2"
        headers: Headers = [
            ("odata-version", "4.0"),
            ("x-ms-service-request-id", str(uuid.uuid4())),
        ]
        entity_set = api.rest.strip("/")
        if entity_set == "WhoAmI":
            # https://learn.microsoft.com/power-apps/developer/data-platform/webapi/reference/whoami
            org = str(uuid.uuid5(uuid.NAMESPACE_URL, f"org:{env.env_id}"))
            return _reply(
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
            return _error(
                404, "0x80060888", f"Resource not found for the segment '{entity_set}'.", headers
            )
        store = self._store(env)
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
            page_number, offset, snapshot = 1, 0, odata.utc(self.tenant.now)
            if "$skiptoken" in params:
                page_number, offset, snapshot = odata.decode_skiptoken(params["$skiptoken"])
            page = store.page(query, snapshot, offset, page_size, prefs)
        except odata.ODataError as exc:
            return _reply(exc.status, exc.body(), headers)
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
        return Reply(200, _json_bytes(body), headers)

    def _privilege_error(self, entity_set: str, headers: Headers) -> Reply:
        logical = odata.logical_name(entity_set)
        # Privilege names follow prvRead<SchemaName>; the message mirrors the platform's.
        schema = _SCHEMA_NAMES.get(logical, logical)
        privilege_id = uuid.uuid5(uuid.NAMESPACE_URL, f"prvRead{schema}")
        return _error(
            403,
            "0x80040220",
            f"Principal user (Id={self._principal_id}, type=8, roleCount=1, privilegeCount=0, "
            f"accessMode=4), is missing prvRead{schema} privilege (Id={privilege_id}) on "
            f"OTC=0 for entity '{logical}'.",
            headers,
        )

    # -- admin (BAP) environments ------------------------------------------------------

    def _environments(self, request: Request) -> Reply:
        params = dict(request.query_params)
        version_error = _api_version(params, BAP_API_VERSIONS)
        if version_error is not None:
            return version_error
        try:
            offset = _offset(params)
        except odata.ODataError as exc:
            return _error(400, "InvalidSkipToken", exc.message)
        envs = self.tenant.environments
        size = self.limits.environment_page
        body: dict[str, Any] = {
            "value": [self._environment(e) for e in envs[offset : offset + size]]
        }
        if offset + size < len(envs):
            body["nextLink"] = self._next(request, offset + size)
        return _reply(200, body)

    def _environment(self, env: SimEnvironment) -> dict[str, Any]:
        # Shape: reference/power-automate-apis.md, Addendum (BAP environment objects).
        props: dict[str, Any] = {
            "tenantId": self.tenant.tenant_id,
            "azureRegion": "westus",
            "displayName": env.display_name,
            "createdTime": _stamp(self.tenant.start),
            "environmentSku": env.sku,
            "isDefault": env.sku == "Default" or env.env_id.startswith("Default-"),
            "provisioningState": "Succeeded",
            "states": {"management": {"id": "Ready"}, "runtime": {"id": "Enabled"}},
        }
        if env.has_dataverse:
            url = f"{self.base_url}/dv/{env.slug}"
            props["linkedEnvironmentMetadata"] = {
                "type": "Dynamics365Instance",
                "resourceId": str(uuid.uuid5(uuid.NAMESPACE_URL, f"org:{env.env_id}")),
                "friendlyName": env.display_name,
                "uniqueName": f"unq{uuid.uuid5(uuid.NAMESPACE_URL, env.slug).hex[:24]}",
                "domainName": env.slug,
                "version": "9.2.25101.00000",
                "instanceUrl": f"{url}/",
                "instanceApiUrl": url,
                "baseLanguage": 1033,
                "instanceState": "Ready",
                "createdTime": _stamp(self.tenant.start),
            }
        return {
            "id": f"{_BAP_ID_PREFIX}/{env.env_id}",
            "type": "Microsoft.BusinessAppPlatform/scopes/environments",
            "location": "unitedstates",
            "name": env.env_id,
            "properties": props,
        }

    # -- flow API ----------------------------------------------------------------------

    def _flow(self, request: Request, api: _Api, caller: TokenRecord) -> Reply:
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
        version_error = _api_version(params, (FLOW_API_VERSION,))
        if version_error is not None:
            return version_error
        env = api.env
        if env is None:
            return _error(
                404,
                "EnvironmentNotFound",
                f"The environment '{api.env_key}' could not be found in the tenant "
                f"'{self.tenant.tenant_id}'.",
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
            return _error(404, "NotFound", f"No flow API resource at '{request.url.path}'.")
        resource = "flows" if len(parts) <= 2 else "runs"
        if (env.slug, resource) in self.options.deny or (env.env_id, resource) in self.options.deny:
            return _error(
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
                return _error(404, "FlowNotFound", f"Could not find flow '{parts[1]}'.")
            if owner is not None and _creator(str(env.flows["name"].iloc[flow_position])) != owner:
                return _error(
                    403,
                    "Forbidden",
                    f"The caller with object id '{owner}' does not have permission for flow "
                    f"'{parts[1]}' in environment '{env.env_id}'.",
                )
            if len(parts) == 2:
                return _reply(200, self._flow_object(env, flow_position, with_definition=True))
            if len(parts) == 3:
                return self._run_list(request, env, parts[1], params)
            return self._run_get(env, flow_position, parts[1], parts[3], params)
        except odata.ODataError as exc:
            return _error(400, "InvalidQueryParameterValue", exc.message)

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
            if (solutions or not in_solution[i]) and (owner is None or _creator(names[i]) == owner)
        ]
        offset = _offset(params)
        size = self.limits.flow_page
        chunk = order[offset : offset + size]
        body: dict[str, Any] = {
            "value": [self._flow_object(env, p, with_definition=False) for p in chunk]
        }
        if offset + size < len(order):
            body["nextLink"] = self._next(request, offset + size)
        return _reply(200, body)

    def _flow_object(
        self, env: SimEnvironment, position: int, with_definition: bool
    ) -> dict[str, Any]:
        # Shape: reference/power-automate-apis.md section 1.5 (PnP CLI fixtures of real responses).
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
            "createdTime": _stamp7(row.get("created_time")),
            "lastModifiedTime": _stamp7(row.get("last_modified_time")),
            "definitionSummary": _definition_summary(definition),
            "connectionReferences": references,
            "creator": {
                "tenantId": self.tenant.tenant_id,
                "objectId": _creator(name),
                "userId": _creator(name),
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

    def _runs_by_flow(self, env: SimEnvironment, now: datetime) -> dict[str, np.ndarray[Any, Any]]:
        """Visible runs per flow, newest first, computed once per clock value."""
        runs = env.runs
        key = (env.env_id, id(runs), now)
        found = self._run_index.get(key)
        if found is not None:
            return found
        if len(runs) == 0 or "flow_name" not in runs.columns:
            return {}
        limit = pd.Timestamp(now)
        start = runs["start_time"]
        # The flow API lists a run from its start; until its end it shows as Running.
        visible = odata.fill_mask(start <= limit)
        positions = np.flatnonzero(visible)
        flows = runs["flow_name"].astype(str).to_numpy()[positions]
        start_ns = start.to_numpy(dtype="datetime64[ns]").astype(np.int64)[positions]
        names = pd.factorize(runs["name"].astype(str).to_numpy()[positions], sort=True)[0]
        order = np.lexsort((-names, -start_ns, flows))
        positions, flows = positions[order], flows[order]
        result: dict[str, np.ndarray[Any, Any]] = {}
        if len(positions):
            cuts = np.flatnonzero(flows[1:] != flows[:-1]) + 1
            for chunk in np.split(positions, cuts):
                result[str(runs["flow_name"].iloc[int(chunk[0])]).lower()] = chunk
        if len(self._run_index) > 8:
            self._run_index.clear()
        self._run_index[key] = result
        return result

    def _run_list(
        self, request: Request, env: SimEnvironment, flow: str, params: Mapping[str, str]
    ) -> Reply:
        page_number, offset, snapshot = 1, 0, odata.utc(self.tenant.now)
        if "$skiptoken" in params:
            page_number, offset, snapshot = odata.decode_skiptoken(params["$skiptoken"])
        positions = self._runs_by_flow(env, snapshot).get(flow.lower(), np.zeros(0, dtype=np.int64))
        if "$filter" in params and len(positions):
            node = odata.parse_filter(params["$filter"])
            _check_run_filter(node)
            subset = env.runs.iloc[positions]

            def column(name: str) -> pd.Series:
                return subset[_RUN_FIELDS[name.lower()]]

            positions = positions[odata.FilterEvaluator(len(subset), column).mask(node)]
        elif "$filter" in params:
            _check_run_filter(odata.parse_filter(params["$filter"]))
        if "$top" in params:
            if not params["$top"].isdigit() or int(params["$top"]) < 1:
                raise odata.ODataError(
                    f"The value '{params['$top']}' of query parameter '$top' is not valid."
                )
            positions = positions[: int(params["$top"])]
        size = self.limits.run_page
        chunk = positions[offset : offset + size]
        body: dict[str, Any] = {"value": self._run_objects(env, chunk, snapshot)}
        if offset + size < len(positions):
            token = odata.encode_skiptoken(page_number + 1, offset + size, snapshot)
            body["nextLink"] = odata.next_link(
                f"{self.base_url}{request.url.path}", request.url.query, token
            )
        return _reply(200, body)

    def _run_columns(self, env: SimEnvironment) -> dict[str, list[Any]]:
        """The runs frame as JSON-ready lists, built once per frame: a page or a single run
        then costs list lookups, not a pandas slice per request."""
        key = (env.env_id, id(env.runs))
        columns = self._run_cache.get(key)
        if columns is None:
            runs = env.runs
            columns = {
                "start_time": odata.format_timestamps(runs["start_time"], 7),
                "end_time": odata.format_timestamps(runs["end_time"], 7),
            }
            for name in runs.columns:
                if not str(name).startswith("_sim_") and name not in columns:
                    columns[str(name)] = odata.json_values(runs[name])
            self._run_cache[key] = columns
        return columns

    def _run_objects(
        self, env: SimEnvironment, positions: np.ndarray[Any, Any], now: datetime
    ) -> list[dict[str, Any]]:
        # Shape: reference/power-automate-apis.md section 1.6 (Logic Apps WorkflowRun).
        if len(positions) == 0:
            return []
        columns = self._run_columns(env)
        starts, ends = columns["start_time"], columns["end_time"]
        now_text = _stamp7(now)
        out = []
        for i in (int(p) for p in positions):
            value = {c: v[i] for c, v in columns.items()}
            flow, run = str(value["flow_name"]), str(value["name"])
            props: dict[str, Any] = {"startTime": starts[i]}
            end = ends[i]
            ended = end is not None and now_text is not None and end <= now_text
            if ended:
                props["endTime"] = end
                props["status"] = value.get("status")
            else:
                # Not finished at the tenant's clock: no end, no outcome yet.
                props["status"] = "Running"
            if ended and value.get("code") is not None:
                props["code"] = value["code"]
            if ended and (
                value.get("error_code") is not None or value.get("error_message") is not None
            ):
                props["error"] = {
                    "code": value.get("error_code"),
                    "message": value.get("error_message"),
                }
            props["correlation"] = {"clientTrackingId": value.get("client_tracking_id")}
            props["trigger"] = {
                "name": value.get("trigger_name"),
                "startTime": starts[i],
                "endTime": starts[i],
                "correlation": {"clientTrackingId": value.get("client_tracking_id")},
                "code": "OK",
                "status": "Succeeded",
            }
            out.append(
                {
                    "name": run,
                    "id": f"{_FLOW_ID_PREFIX}/{env.env_id}/flows/{flow}/runs/{run}",
                    "type": "Microsoft.ProcessSimple/environments/flows/runs",
                    "properties": props,
                }
            )
        return out

    def _run_get(
        self,
        env: SimEnvironment,
        flow_position: int,
        flow: str,
        run: str,
        params: Mapping[str, str],
    ) -> Reply:
        runs = env.runs
        names_key = (env.env_id, id(runs))
        names = self._run_names.get(names_key)
        if names is None:
            names = {str(n): i for i, n in enumerate(runs["name"].tolist())} if len(runs) else {}
            # One entry per environment's runs frame: kept, not cleared, as requests for
            # several environments interleave.
            self._run_names[names_key] = names
        position = names.get(run)
        not_found = _error(
            404, "WorkflowRunNotFound", f"The workflow '{flow}' run '{run}' could not be found."
        )
        if position is None or str(runs["flow_name"].iloc[position]).lower() != flow.lower():
            return not_found
        now = odata.utc(self.tenant.now)
        if not _run_visible(runs.iloc[position], now):
            return not_found
        body = self._run_objects(env, np.asarray([position]), now)[0]
        expand = params.get("$expand", "")
        if expand:
            if expand.replace(" ", "") != "properties/actions":
                raise odata.ODataError(
                    f"The value '{expand}' of query parameter '$expand' is not valid."
                )
            actions = self._actions(env, flow_position, position)
            if body["properties"]["status"] == "Running":
                actions = _actions_so_far(actions, _stamp7(now) or "")
            if "repetitioncount" not in params.get("include", "").lower():
                # The portal asks `include=repetitionCount` to see how often a loop action
                # ran; without it the count is left out (inferred from the portal's requests
                # as third-party tools record them; no Microsoft page documents it).
                actions = {
                    name: {k: v for k, v in action.items() if k != "repetitionCount"}
                    if isinstance(action, Mapping)
                    else action
                    for name, action in actions.items()
                }
            body["properties"]["actions"] = dict(actions)
        return _reply(200, body)

    def _actions(
        self, env: SimEnvironment, flow_position: int, run_position: int
    ) -> Mapping[str, Any]:
        render = self._render_actions or _scenario_render_actions()
        return render(self.tenant, env, env.flows.iloc[flow_position], env.runs.iloc[run_position])

    def _next(self, request: Request, offset: int) -> str:
        token = odata.encode_skiptoken(0, offset, odata.utc(self.tenant.now))
        return odata.next_link(f"{self.base_url}{request.url.path}", request.url.query, token)


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

# Filter fields of the runs list (Logic Apps: Status, StartTime, ClientTrackingId).
_RUN_FIELDS = {
    "status": "status",
    "starttime": "start_time",
    "clienttrackingid": "client_tracking_id",
}


def _check_run_filter(node: odata.Node) -> None:
    """The runs API takes `field op literal` clauses joined by `and`, nothing else."""
    if isinstance(node, odata.BoolOp) and node.op == "and":
        _check_run_filter(node.left)
        _check_run_filter(node.right)
        return
    if (
        isinstance(node, odata.Compare)
        and isinstance(node.left, odata.Column)
        and isinstance(node.right, odata.Literal)
        and node.left.name.lower() in _RUN_FIELDS
    ):
        field_name = node.left.name.lower()
        if field_name == "starttime" and node.right.kind not in ("datetime", "date"):
            raise odata.ODataError(
                "startTime is compared with a datetime literal such as 2026-11-08T12:00:00Z."
            )
        if field_name != "starttime" and (node.op != "eq" or node.right.kind != "string"):
            raise odata.ODataError(f"{node.left.name} is filtered with eq and a quoted string.")
        return
    raise odata.ODataError(
        "The runs filter supports status eq '<status>', startTime ge|gt|le|lt <datetime> and "
        "clientTrackingId eq '<id>', joined by 'and'."
    )


def _creator(flow_name: str) -> str:
    """The object id of the person who made a flow (every simulated flow has a maker)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"owner:{flow_name}"))


def _scenario_render_actions() -> RenderActions:
    """The generator's renderer, imported late: it owns the action results of its runs."""
    from auditor.sim import scenario

    return scenario.render_actions


def _run_visible(run: pd.Series, now: datetime) -> bool:
    """A run shows from its start (until it ends it is listed as Running)."""
    start = run.get("start_time")
    return not (start is None or pd.isna(start) or start > pd.Timestamp(now))


def _actions_so_far(actions: Mapping[str, Any], now_text: str) -> dict[str, Any]:
    """The actions of a run still going at `now`: started ones only, unfinished as Running.

    Times are compared as text: both sides are ISO 8601 UTC with seven fractional digits.
    """
    shown: dict[str, Any] = {}
    for name, action in actions.items():
        if not isinstance(action, Mapping):
            continue
        start = action.get("startTime")
        if isinstance(start, str) and start > now_text:
            continue
        end = action.get("endTime")
        if isinstance(end, str) and end > now_text:
            action = {
                k: v
                for k, v in action.items()
                if k not in ("endTime", "code", "error", "outputsLink", "retryHistory")
            }
            action["status"] = "Running"
        shown[name] = action
    return shown


def _api_version(params: Mapping[str, str], accepted: tuple[str, ...]) -> Reply | None:
    # ARM-style errors, as the Power Platform and flow APIs answer them.
    version = params.get("api-version")
    if not version:
        return _error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if version not in accepted:
        return _error(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are "
            f"'{','.join(accepted)}'.",
        )
    return None


def _offset(params: Mapping[str, str]) -> int:
    if "$skiptoken" not in params:
        return 0
    return odata.decode_skiptoken(params["$skiptoken"])[1]


def _basic_auth(header: str | None) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(user), unquote(password)


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


def _stamp(value: datetime) -> str:
    return odata.utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def _stamp7(value: Any) -> str | None:
    if value is None or (not isinstance(value, datetime) and pd.isna(value)):
        return None
    return odata.format_timestamps(pd.Series([pd.Timestamp(value)]), 7)[0]


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


# --------------------------------------------------------------------------------------
# The server object the CLI and the tests use.


class SimServer:
    """A running simulated tenant: HTTPS on loopback, background thread, its own CA."""

    def __init__(
        self,
        tenant: SimTenant,
        options: SimOptions,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        render_actions: RenderActions | None = None,
    ) -> None:
        self.tenant = tenant
        self.options = options
        self.host = host
        self.port = port
        self.base_url = ""
        self.ca_pem = b""
        self.stats = SimStats()
        self.issued_tokens: list[str] = []
        self.app: SimApp | None = None
        self._render_actions = render_actions
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._tls_dir: Path | None = None
        self._log_filter = _ResetLogFilter()

    def start(self) -> str:
        """Bind, make the CA and certificate, start uvicorn; return the base URL when ready."""
        if self._thread is not None:
            return self.base_url
        # proto=IPPROTO_TCP so asyncio sets TCP_NODELAY on accepted connections (else Nagle
        # plus delayed ACK adds 40 ms to every response written in two parts).
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self.port = sock.getsockname()[1]
        self.base_url = f"https://{self.host}:{self.port}"
        ca = trustme.CA(organization_name="auditor simulated tenant")
        names = sorted({self.host, "127.0.0.1", "localhost"})
        cert = ca.issue_cert(*names)
        self.ca_pem = ca.cert_pem.bytes()
        self._tls_dir = Path(tempfile.mkdtemp(prefix="auditor-sim-tls-"))
        key_path, cert_path = self._tls_dir / "key.pem", self._tls_dir / "cert.pem"
        write_bytes(key_path, cert.private_key_pem.bytes())  # owner-only from the start
        write_bytes(cert_path, b"".join(blob.bytes() for blob in cert.cert_chain_pems))
        self.app = SimApp(
            self.tenant,
            self.options,
            self.base_url,
            self.stats,
            self.issued_tokens,
            self._render_actions,
        )
        config = uvicorn.Config(
            self.app,
            ssl_certfile=str(cert_path),
            ssl_keyfile=str(key_path),
            log_config=None,
            log_level="warning",
            access_log=False,  # access logs could carry query strings; tokens are in headers
            lifespan="off",
            ws="none",
            http="h11",
            timeout_graceful_shutdown=1,
            date_header=False,  # SimApp sends the simulated clock's date
            server_header=False,
        )
        logging.getLogger("uvicorn.error").addFilter(self._log_filter)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="auditor-sim", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 15.0
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the simulator did not start")
            time.sleep(0.01)
        return self.base_url

    def stop(self) -> None:
        """Stop serving, close the socket and delete the TLS key files."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout=5.0)
        if self._socket is not None:
            self._socket.close()
        if self._tls_dir is not None:
            shutil.rmtree(self._tls_dir, ignore_errors=True)
        logging.getLogger("uvicorn.error").removeFilter(self._log_filter)
        self._server = self._thread = self._socket = self._tls_dir = None

    def __enter__(self) -> SimServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def write_client_files(self, directory: Path) -> None:
        """Write `ca.pem`, `env` (the secret and the CA path) and `auditor.toml`, owner-only
        and atomically (`auditor.files`); a link or a file at `directory` is refused."""
        if not self.base_url:
            raise RuntimeError("start the server before writing client files")
        # Absolute, not resolved: a link at `directory` is refused, not followed.
        directory = private_dir(Path(directory).absolute())
        ca_path = directory / "ca.pem"
        write_bytes(ca_path, self.ca_pem)
        write_text(
            directory / "env",
            f"AZURE_CLIENT_SECRET={shlex.quote(self.tenant.client_secret)}\n"
            f"SSL_CERT_FILE={shlex.quote(str(ca_path))}\n",
        )
        toml = (
            f"# Written by `auditor sim serve`: the simulated tenant at {self.base_url}.\n"
            f"tenant_id = {_toml_string(self.tenant.tenant_id)}\n"
            'environments = "all"\n'
            "\n"
            "[auth]\n"
            'method = "client-secret"\n'
            f"client_id = {_toml_string(self.tenant.client_id)}\n"
            f"authority_host = {_toml_string(self.base_url)}\n"
            "\n"
            "[apis]\n"
            f"admin_url = {_toml_string(self.base_url + '/bap')}\n"
            f"flow_url = {_toml_string(self.base_url + '/flow')}\n"
            "\n"
            "[http]\n"
            f"ca_bundle = {_toml_string(str(ca_path))}\n"
        )
        write_text(directory / "auditor.toml", toml)


def _toml_string(value: str) -> str:
    # A TOML basic string; JSON's escapes (\" \\ \n \uXXXX) are valid TOML escapes.
    return json.dumps(value)
