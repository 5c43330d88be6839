"""The ASGI application of the simulator: every request through the gate to its API.

Identity requests go straight to `apis.identity`; API requests pass the gate a real tenant
applies (`apis.gate`): bearer token (401), fault injection (faults.py), service protection
(protection.py), latency; then the handler of their API (`apis.environments`,
`apis.dataverse`, `apis.flows`). `/_sim/clock` reads or moves the tenant's clock;
`/_sim/stats` reads its counters.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import anyio
from starlette.requests import Request

from auditor.sim import odata
from auditor.sim.apis.common import (
    Context,
    Limits,
    RenderActions,
    Reply,
    error_reply,
    http_date,
    json_reply,
)
from auditor.sim.apis.dataverse import DataverseApi
from auditor.sim.apis.environments import environments_reply
from auditor.sim.apis.flows import FlowApi
from auditor.sim.apis.gate import (
    DATAVERSE,
    FLOW,
    IDENTITY_PATH,
    Route,
    fault_reply,
    not_management_app,
    route,
    unauthorized,
)
from auditor.sim.apis.identity import identity_reply
from auditor.sim.faults import FaultPlan, SimStats
from auditor.sim.identity import (
    ADMIN_RESOURCE,
    FLOW_RESOURCE,
    IdentityProvider,
    TokenRecord,
    dataverse_resource,
)
from auditor.sim.model import SimOptions, SimTenant
from auditor.sim.protection import ServiceProtection

# Dataverse's server-affinity cookie (see `SimApp._affinity`): its name inferred, and the one
# web server the simulator is.
AFFINITY_COOKIE = "ARRAffinity"
AFFINITY_SERVER = "5f1b0c2e9d8a7f6b5f1b0c2e9d8a7f6b"


class SimulatedReset(Exception):
    """Raised inside the ASGI app to make uvicorn drop a connection mid-response."""


class SimApp:
    """The ASGI application: routes each request through the gate to its API's handler."""

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
        self.base_url = base_url
        self.stats = stats
        self.context = Context(tenant, base_url, options, Limits(), render_actions)
        self.limits = self.context.limits
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
            options.max_concurrent,
            options.max_requests,
            options.window_s,
            options.retry_after_s,
            max_execution_s=options.max_execution_s,
        )
        self.dataverse = DataverseApi(self.context)
        self.flows = FlowApi(self.context)

    @property
    def options(self) -> SimOptions:
        """How the simulator serves (tests swap it to change one setting for a while)."""
        return self.context.options

    @options.setter
    def options(self, value: SimOptions) -> None:
        self.context.options = value

    @property
    def _render_actions(self) -> RenderActions | None:
        return self.context.render_actions

    @_render_actions.setter
    def _render_actions(self, value: RenderActions | None) -> None:
        self.context.render_actions = value

    def store(self, env_key: str) -> odata.TableStore:
        """The query engine of one environment (tests read its cache counters)."""
        return self.dataverse.store(env_key)

    # -- ASGI --------------------------------------------------------------------------

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        request = Request(scope, receive)
        path: str = scope["path"]
        identity = IDENTITY_PATH.match(path)
        if identity is not None:
            self.stats.token_requests += 1
            reply = await identity_reply(
                self.identity, request, identity.group(1), identity.group(2)
            )
            await self._send(send, reply)
            return
        if path == "/_sim/clock":
            await self._send(send, await self._clock(request))
            return
        if path == "/_sim/stats":
            # The counters, for a benchmark driving the simulator in another process.
            await self._send(send, json_reply(200, self.stats.snapshot()))
            return
        api = route(self.tenant, self.base_url, path)
        if api is None:
            await self._send(send, error_reply(404, "NotFound", f"No API is served at '{path}'."))
            return
        await self._gate(request, api, send)

    async def _send(self, send: Any, reply: Reply, cut: bool = False) -> None:
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers]
        headers.append((b"content-length", str(len(reply.body)).encode()))
        # The tenant's clock, not the machine's: clients take a scan's end from it.
        headers.append((b"date", http_date(self.tenant.now).encode("latin-1")))
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
                return error_reply(400, "BadRequest", "advance_minutes must be a number")
            self.tenant.advance(timedelta(minutes=minutes))
        return json_reply(
            200, {"now": http_date(self.tenant.now), "end": http_date(self.tenant.end)}
        )

    async def _gate(self, request: Request, api: Route, send: Any) -> None:
        """Token, injected fault, service protection, latency; then the API's handler."""
        self.stats.requests += 1
        latency = self.options.latency_ms / 1000.0
        record, problem = self.identity.check(request.headers.get("authorization"), api.audience)
        if record is None:
            self.stats.unauthorized += 1
            if latency:
                await anyio.sleep(latency)
            await self._send(send, unauthorized(api, problem, self.identity.authority()))
            return
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        fault = self.faults.decide(request.method, target)
        if fault in ("429", "500", "503", "expire"):
            self.stats.faults[fault] += 1
            if latency:
                await anyio.sleep(latency)
            await self._send(send, fault_reply(api, fault, self.options, self.identity.authority()))
            return
        # Each environment's Dataverse has its own budget (per user and web server, and every
        # environment is its own organization:
        # https://learn.microsoft.com/power-apps/developer/data-platform/api-limits). The flow
        # API publishes no numbers for direct calls: inferred, each environment's flow API
        # routes get a budget of their own with Dataverse's numbers; the tenant-wide admin API
        # one more.
        key = (record.appid, f"{api.family}:{api.env_key}")
        rejection = self.protection.acquire(key)
        if rejection is not None:
            self.stats.throttled += 1
            await self._send(
                send,
                error_reply(
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
            if api.family == DATAVERSE:
                self._affinity(request, reply)
            if fault == "badjson" and reply.status == 200:
                self.stats.faults[fault] += 1
                reply.body = reply.body[: max(1, len(reply.body) // 2)]
            if fault == "reset":
                self.stats.faults[fault] += 1
            await self._send(send, reply, cut=fault == "reset")
        finally:
            self.protection.release(key)

    def _affinity(self, request: Request, reply: Reply) -> None:
        """Dataverse answers with a server-affinity cookie that routes a client's later
        requests to the same web server; Learn advises clients sending requests in parallel
        to drop it (https://learn.microsoft.com/power-apps/developer/data-platform/send-parallel-requests#server-affinity).
        Its name is inferred (Azure's application request routing cookie, ARRAffinity). Requests
        that send it back are counted."""
        if f"{AFFINITY_COOKIE}=" in request.headers.get("cookie", ""):
            self.stats.affinity_cookies += 1
        reply.headers = [
            *reply.headers,
            ("set-cookie", f"{AFFINITY_COOKIE}={AFFINITY_SERVER}; Path=/; Secure; HttpOnly"),
        ]

    def _handle(self, request: Request, api: Route, caller: TokenRecord) -> Reply:
        if request.method != "GET":
            return error_reply(
                405, "MethodNotAllowed", f"The simulator is read-only: {request.method}."
            )
        if api.admin and not self.options.management_app:
            return not_management_app(request, caller, self.tenant.tenant_id)
        if api.family == DATAVERSE:
            return self.dataverse.handle(request, api)
        if api.family == FLOW:
            return self.flows.handle(request, api, caller)
        return environments_reply(self.context, request)
