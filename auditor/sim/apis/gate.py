"""The gate every API request passes: which API it is for, and what a refusal looks like.

API requests go through the same gate a real tenant applies: bearer token (401), fault
injection (`auditor.sim.faults`), service protection (`auditor.sim.protection`), latency;
then the handler. `auditor.sim.server` runs the gate; this module says where a path goes and
words the refusals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from starlette.requests import Request

from auditor.sim.apis.common import Reply, error_reply
from auditor.sim.apis.environments import BAP_ID_PREFIX
from auditor.sim.identity import ADMIN_RESOURCE, FLOW_RESOURCE, TokenRecord, dataverse_resource
from auditor.sim.model import SimEnvironment, SimOptions, SimTenant

DATAVERSE = "dataverse"
FLOW = "flow"
ADMIN = "admin"

_DV_PATH = re.compile(r"^/dv/([^/]+)/api/data/v9\.2(?:/(.*))?$")
_FLOW_PATH = re.compile(
    r"^/flow/providers/Microsoft\.ProcessSimple/(scopes/admin/)?environments/([^/]+)(/.*)?$"
)
_BAP_PATH = f"/bap{BAP_ID_PREFIX}"
IDENTITY_PATH = re.compile(
    r"^/([^/]+)/(v2\.0/\.well-known/openid-configuration|oauth2/v2\.0/token|"
    r"discovery/v2\.0/keys|oauth2/v2\.0/devicecode)$"
)


@dataclass
class Route:
    """Which API a request is for: family, token audience, protection key, environment."""

    family: str
    audience: str
    env_key: str
    env: SimEnvironment | None
    rest: str  # path after the API's own prefix
    admin: bool = False  # an administrator route (`scopes/admin`)


def route(tenant: SimTenant, base_url: str, path: str) -> Route | None:
    """The API a path is for, or None when no API is served there."""
    match = _DV_PATH.match(path)
    if match is not None:
        env = tenant.environment(match.group(1))
        slug = env.slug if env is not None else match.group(1)
        return Route(
            DATAVERSE,
            dataverse_resource(base_url, slug),
            env.env_id if env is not None else slug,
            env if env is not None and env.has_dataverse else None,
            match.group(2) or "",
        )
    match = _FLOW_PATH.match(path)
    if match is not None:
        env = tenant.environment(match.group(2))
        return Route(
            FLOW,
            FLOW_RESOURCE,
            match.group(2),
            env,
            match.group(3) or "",
            bool(match.group(1)),
        )
    if path.rstrip("/") == _BAP_PATH:
        return Route(ADMIN, ADMIN_RESOURCE, "", None, "", admin=True)
    return None


def unauthorized(api: Route, problem: str, authority: str) -> Reply:
    """The 401 of a missing, invalid, expired or wrong-audience token."""
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
        f"Bearer authorization_uri={authority}/oauth2/authorize, resource_id={api.audience}/"
    )
    return error_reply(401, code, message, [("www-authenticate", challenge)])


def fault_reply(api: Route, fault: str, options: SimOptions, authority: str) -> Reply:
    """An injected fault, worded the way the API it hits words it."""
    retry = [("retry-after", str(options.retry_after_s))]
    if fault == "expire":
        return unauthorized(api, "expired", authority)
    if api.family == DATAVERSE:
        # https://learn.microsoft.com/power-apps/developer/data-platform/api-limits
        if fault == "429":
            return error_reply(
                429,
                "0x80072322",
                f"Number of requests exceeded the limit of {options.max_requests} over "
                f"time window of {options.window_s:g} seconds.",
                retry,
            )
        if fault == "500":
            return error_reply(500, "0x80040216", "An unexpected error occurred.")
        return error_reply(503, "0x80040216", "The service is temporarily unavailable.", retry)
    if fault == "429":
        return error_reply(
            429,
            "TooManyRequests",
            f"Rate limit is exceeded. Try again in {options.retry_after_s} seconds.",
            retry,
        )
    if fault == "500":
        return error_reply(500, "InternalServerError", "Encountered internal server error.")
    return error_reply(503, "ServiceUnavailable", "The service is temporarily unavailable.", retry)


def not_management_app(request: Request, caller: TokenRecord, tenant_id: str) -> Reply:
    """What the admin routes answer an app that is not a Power Platform management app.

    A service principal reaches the admin (`scopes/admin`) routes only once an
    administrator has registered it (`New-PowerAppManagementApp`, or PUT
    .../adminApplications/{appId}): https://learn.microsoft.com/power-platform/admin/
    powerplatform-api-create-service-principal. The code and message are those users
    report from the platform (github.com/microsoft/powerplatform-build-tools/issues/892); that the
    flow API's admin routes answer the same way is inferred.
    """
    return error_reply(
        403,
        "Forbidden",
        f"The service principal with id '{caller.object_id}' for application "
        f"{caller.appid} does not have permission to access the path "
        f"'{request.url.path}?{request.url.query}' in tenant {tenant_id}.",
    )
