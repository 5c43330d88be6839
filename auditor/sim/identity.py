"""The simulated Microsoft Entra ID: OIDC discovery and the v2.0 client-credentials grant.

Just enough of the identity platform for MSAL to run unmodified against the simulator:
discovery (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc), the token
endpoint for `grant_type=client_credentials`
(https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow) and
its error shape (`error`, `error_description` starting with the AADSTS code, `error_codes`,
`timestamp`, `trace_id`, `correlation_id`, `error_uri`; codes from
https://learn.microsoft.com/entra/identity-platform/reference-error-codes).

Tokens are JWT-shaped but not signed with a published key: the APIs validate them by lookup
in the registry of issued tokens, which also lets a test check that no token ever reached a
log, the store or a report.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from auditor.sim.model import SimTenant

FLOW_RESOURCE = "https://service.flow.microsoft.com"
ADMIN_RESOURCE = "https://service.powerapps.com"

_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def normalise_resource(resource: str) -> str:
    """Resource identifiers compare without trailing slashes and case-insensitively."""
    return resource.rstrip("/").lower()


def dataverse_resource(base_url: str, slug: str) -> str:
    """The OAuth resource (and token audience) of one simulated Dataverse environment."""
    return f"{base_url}/dv/{slug}"


@dataclass(frozen=True)
class TokenRecord:
    """What the simulator remembers about a token it issued."""

    audience: str
    appid: str
    tenant_id: str
    issued_at: float
    expires_at: float
    object_id: str = ""  # the caller's `oid`: the service principal's object id


@dataclass(frozen=True)
class Answer:
    """An HTTP answer of the identity endpoints: status and JSON body."""

    status: int
    body: dict[str, Any]


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_json(value: Mapping[str, Any]) -> str:
    return _b64url(json.dumps(value, separators=(",", ":")).encode())


class IdentityProvider:
    """Issues and checks tokens for one tenant and one client registration."""

    def __init__(
        self,
        tenant: SimTenant,
        base_url: str,
        lifetime_s: int,
        resources: Iterable[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tenant = tenant
        self.base_url = base_url
        self.lifetime_s = lifetime_s
        self._resources = {normalise_resource(r): r.rstrip("/") for r in resources}
        self._clock = clock
        self._tokens: dict[str, TokenRecord] = {}
        self.issued_tokens: list[str] = []
        # A stable object id for the service principal, as Entra puts in `oid`.
        self._sp_object_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"sp:{tenant.client_id}"))

    # -- discovery ---------------------------------------------------------------------

    def authority(self) -> str:
        """The authority URL MSAL is given: base URL plus tenant id."""
        return f"{self.base_url}/{self.tenant.tenant_id}"

    def openid_configuration(self, tenant_segment: str, correlation_id: str | None) -> Answer:
        """The v2.0 OIDC discovery document, or AADSTS90002 for an unknown tenant."""
        if tenant_segment.lower() != self.tenant.tenant_id.lower():
            return self._tenant_not_found(tenant_segment, correlation_id, error="invalid_tenant")
        auth = self.authority()
        return Answer(
            200,
            {
                "token_endpoint": f"{auth}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{auth}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{auth}/v2.0",
                "request_uri_parameter_supported": False,
                "userinfo_endpoint": f"{auth}/openid/userinfo",
                "authorization_endpoint": f"{auth}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{auth}/oauth2/v2.0/devicecode",
                "http_logout_supported": True,
                "frontchannel_logout_supported": True,
                "end_session_endpoint": f"{auth}/oauth2/v2.0/logout",
                "claims_supported": [
                    "sub",
                    "iss",
                    "aud",
                    "exp",
                    "iat",
                    "auth_time",
                    "acr",
                    "nonce",
                    "tid",
                    "ver",
                ],
                "tenant_region_scope": "NA",
                "cloud_instance_name": "microsoftonline.com",
            },
        )

    def jwks(self) -> Answer:
        """A key set document; the simulator's tokens are checked by lookup, not signature."""
        modulus = _b64url(uuid.uuid5(uuid.NAMESPACE_URL, self.base_url).bytes * 16)
        return Answer(
            200,
            {"keys": [{"kty": "RSA", "use": "sig", "kid": "sim-1", "n": modulus, "e": "AQAB"}]},
        )

    # -- token endpoint ----------------------------------------------------------------

    def token(
        self,
        tenant_segment: str,
        form: Mapping[str, str],
        correlation_id: str | None,
        basic_auth: tuple[str, str] | None = None,
    ) -> Answer:
        """Answer a POST to `/{tenant}/oauth2/v2.0/token` (client credentials only)."""
        if tenant_segment.lower() != self.tenant.tenant_id.lower():
            return self._tenant_not_found(tenant_segment, correlation_id, error="invalid_request")
        client_id = form.get("client_id") or (basic_auth[0] if basic_auth else "")
        secret = form.get("client_secret") or (basic_auth[1] if basic_auth else "")
        grant_type = form.get("grant_type", "")
        for name, value in (("grant_type", grant_type), ("client_id", client_id)):
            if not value:
                return self._error(
                    400,
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{name}'.",
                    correlation_id,
                )
        if grant_type != "client_credentials":
            return self._error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type "
                f"'{grant_type}'. The simulator supports client_credentials only.",
                correlation_id,
            )
        if client_id.lower() != self.tenant.client_id.lower():
            return self._error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{client_id}' was not found in the directory "
                f"'{self.tenant.tenant_id}'. This can happen if the application has not been "
                "installed by the administrator of the tenant or consented to by any user in "
                "the tenant. You may have sent your authentication request to the wrong tenant.",
                correlation_id,
            )
        if not secret:
            return self._error(
                401,
                "invalid_client",
                7000218,
                "The request body must contain the following parameter: 'client_assertion' "
                "or 'client_secret'.",
                correlation_id,
            )
        if not secrets.compare_digest(secret.encode(), self.tenant.client_secret.encode()):
            return self._error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request "
                "is the client secret value, not the client secret ID, for a secret added to "
                f"app '{client_id}'.",
                correlation_id,
            )
        scope = form.get("scope", "").strip()
        if not scope:
            return self._error(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
                correlation_id,
            )
        scopes = scope.split()
        if len(scopes) != 1 or not scopes[0].endswith("/.default"):
            return self._error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier "
                "(application ID URI).",
                correlation_id,
            )
        resource = self._resources.get(normalise_resource(scopes[0][: -len("/.default")]))
        if resource is None:
            return self._error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {scopes[0][: -len('/.default')]} was not found "
                f"in the tenant named {self.tenant.tenant_id}. This can happen if the "
                "application has not been installed by the administrator of the tenant or "
                "consented to by any user in the tenant. You might have sent your "
                "authentication request to the wrong tenant.",
                correlation_id,
            )
        access_token = self.issue(resource)
        return Answer(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.lifetime_s,
                "ext_expires_in": self.lifetime_s,
                "access_token": access_token,
            },
        )

    def issue(self, audience: str) -> str:
        """Make, register and return a new access token for `audience`."""
        now = self._clock()
        tid = self.tenant.tenant_id
        claims = {
            "aud": audience,
            "iss": f"{self.authority()}/v2.0",
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + self.lifetime_s,
            "appid": self.tenant.client_id,
            "appidacr": "1",
            "idp": f"{self.authority()}/",
            "idtyp": "app",
            "oid": self._sp_object_id,
            "sub": self._sp_object_id,
            "tid": tid,
            "uti": secrets.token_urlsafe(16),
            "ver": "1.0",
        }
        header = {"typ": "JWT", "alg": "RS256", "kid": "sim-1"}
        token = ".".join(
            (_b64url_json(header), _b64url_json(claims), _b64url(secrets.token_bytes(64)))
        )
        self._tokens[token] = TokenRecord(
            audience=normalise_resource(audience),
            appid=self.tenant.client_id,
            tenant_id=tid,
            issued_at=now,
            expires_at=now + self.lifetime_s,
            object_id=self._sp_object_id,
        )
        self.issued_tokens.append(token)
        return token

    def records(self) -> list[TokenRecord]:
        """What is known of every token issued so far, in the order they were issued."""
        return list(self._tokens.values())

    # -- API side ----------------------------------------------------------------------

    def check(self, authorization: str | None, audience: str) -> tuple[TokenRecord | None, str]:
        """Validate an `Authorization` header for an API of `audience`.

        Returns the token record and "" when valid, else None and the reason
        (`missing`, `invalid`, `expired`, `audience`).
        """
        if not authorization:
            return None, "missing"
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None, "invalid"
        record = self._tokens.get(token.strip())
        if record is None:
            return None, "invalid"
        if self._clock() >= record.expires_at:
            return None, "expired"
        if record.audience != normalise_resource(audience):
            return None, "audience"
        return record, ""

    # -- errors ------------------------------------------------------------------------

    def _tenant_not_found(
        self, tenant_segment: str, correlation_id: str | None, error: str
    ) -> Answer:
        return self._error(
            400,
            error,
            90002,
            f"Tenant '{tenant_segment}' not found. Check to make sure you have the correct "
            "tenant ID and are signing into the correct cloud. Check with your subscription "
            "administrator, this may happen if there are no active subscriptions for the tenant.",
            correlation_id,
        )

    def _error(
        self, status: int, error: str, code: int, message: str, correlation_id: str | None
    ) -> Answer:
        trace_id = str(uuid.uuid4())
        correlation = (
            correlation_id.lower()
            if correlation_id and _GUID.match(correlation_id)
            else str(uuid.uuid4())
        )
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
        return Answer(
            status,
            {
                "error": error,
                "error_description": (
                    f"AADSTS{code}: {message}\r\nTrace ID: {trace_id}\r\n"
                    f"Correlation ID: {correlation}\r\nTimestamp: {stamp}"
                ),
                "error_codes": [code],
                "timestamp": stamp,
                "trace_id": trace_id,
                "correlation_id": correlation,
                "error_uri": f"{self.base_url}/error?code={code}",
            },
        )
