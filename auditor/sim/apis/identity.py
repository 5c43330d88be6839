"""The identity endpoints: OIDC discovery, signing keys and the v2.0 token endpoint.

Served under `/{tenant}/...`; the tokens and their checks are `auditor.sim.identity`'s.
"""

from __future__ import annotations

import base64
import binascii
from urllib.parse import parse_qsl, unquote

from starlette.requests import Request

from auditor.sim.apis.common import Reply, json_reply
from auditor.sim.identity import IdentityProvider


async def identity_reply(
    identity: IdentityProvider, request: Request, tenant_segment: str, endpoint: str
) -> Reply:
    """Discovery, keys and tokens of the tenant's identity provider; the device code is refused."""
    correlation = request.headers.get("client-request-id")
    if endpoint.endswith("openid-configuration") and request.method == "GET":
        answer = identity.openid_configuration(tenant_segment, correlation)
    elif endpoint.endswith("keys") and request.method == "GET":
        answer = identity.jwks()
    elif endpoint.endswith("token") and request.method == "POST":
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        answer = identity.token(
            tenant_segment, form, correlation, basic_auth(request.headers.get("authorization"))
        )
    elif endpoint.endswith("devicecode") and request.method == "POST":
        return json_reply(
            400,
            {
                "error": "invalid_request",
                "error_description": ("The simulator supports the client-credentials grant only."),
            },
        )
    else:
        return json_reply(
            405, {"error": "invalid_request", "error_description": "Method not allowed."}
        )
    return json_reply(answer.status, answer.body, [("cache-control", "no-store, no-cache")])


def basic_auth(header: str | None) -> tuple[str, str] | None:
    """The client id and secret of an HTTP Basic `Authorization` header, if any."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        user, _, password = base64.b64decode(header[6:].strip()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return unquote(user), unquote(password)
