"""Sign-in with MSAL: the credential `auth.method` names, and `auditor login`.

One credential per run, chosen by `auth.method`:
- `client-secret` / `client-certificate`: an app registration that is an application user in
  each Dataverse environment (client credentials, scope `<resource>/.default`);
- `managed-identity`: scheduled scans in Azure;
- `device-code`: people, with `auditor login`; the token cache is a file readable only by its
  owner (msal-extensions).
https://learn.microsoft.com/power-apps/developer/data-platform/authenticate-oauth

MSAL talks HTTP through `MsalHttpClient`, an httpx client with the same TLS trust as every
other request (SSL_CERT_FILE or `http.ca_bundle`): MSAL's default `requests` client would read
REQUESTS_CA_BUNDLE instead. For authority hosts that are not Microsoft's public or sovereign
login hosts (a simulator, a proxy), MSAL's instance discovery is turned off so no request goes
to the public discovery endpoint.

The credential hands out tokens; keeping them per scope and signing requests with them is
`auditor.tokens`, and reading the app's secret or certificate is `auditor.client_credentials`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import msal

from auditor.client_credentials import client_credential
from auditor.errors import AuthError, ConfigError
from auditor.http import ssl_context
from auditor.logs import register_secret
from auditor.settings import Settings
from auditor.tokens import AccessToken

# Microsoft Entra login hosts MSAL knows (public and sovereign clouds): instance discovery
# stays on for them, as MSAL expects.
KNOWN_AUTHORITY_HOSTS = frozenset(
    {
        "login.microsoftonline.com",
        "login.microsoft.com",
        "login.windows.net",
        "sts.windows.net",
        "login.microsoftonline.us",
        "login.usgovcloudapi.net",
        "login.chinacloudapi.cn",
        "login.partner.microsoftonline.cn",
        "login.microsoftonline.de",
    }
)

# Microsoft Entra error codes (AADSTS) a user can act on, with what to do.
# https://learn.microsoft.com/entra/identity-platform/reference-error-codes
_AADSTS_HINTS: Mapping[int, str] = {
    700016: "The client id is not an app registration in this tenant: check `auth.client_id` "
    "and `tenant_id`.",
    7000215: "The client secret is wrong: set AZURE_CLIENT_SECRET to a current secret of the "
    "app registration.",
    7000222: "The client secret has expired: create a new one in the app registration and set "
    "AZURE_CLIENT_SECRET.",
    90002: "The tenant was not found: check `tenant_id`.",
    900023: "The tenant id is not valid: check `tenant_id`.",
    65001: "Admin consent is missing: grant admin consent to the app registration's API "
    "permissions.",
    500011: "The resource is not known in this tenant: check the Dataverse URL or the API "
    "scopes in [apis].",
    700027: "The certificate was rejected: upload its public part to the app registration.",
    53003: "Conditional Access blocked the sign-in: ask an administrator to exclude the app or "
    "use a managed identity.",
}


class MsalHttpClient:
    """The HTTP client MSAL asks for (`get`, `post`, `close`), on httpx with our TLS trust."""

    def __init__(self, client: httpx.Client) -> None:
        self._client = client

    def get(self, url: str, params: Any = None, headers: Any = None, **kwargs: Any) -> Any:
        """GET for MSAL; ignores `requests`-only options."""
        return self._client.get(url, params=params, headers=headers, **_timeout(kwargs))

    def post(
        self, url: str, params: Any = None, data: Any = None, headers: Any = None, **kwargs: Any
    ) -> Any:
        """POST for MSAL (form bodies); ignores `requests`-only options.

        MSAL passes some form values as bytes (the client assertion of certificate sign-in);
        `requests` encodes those as text, httpx would send their repr: decode them here.
        """
        if isinstance(data, dict):
            data = {k: v.decode() if isinstance(v, bytes) else v for k, v in data.items()}
        return self._client.post(url, params=params, data=data, headers=headers, **_timeout(kwargs))

    def close(self) -> None:
        """Close the underlying client."""
        self._client.close()


def _timeout(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    value = kwargs.get("timeout")
    return {"timeout": value} if value is not None else {}


def msal_http_client(settings: Settings) -> MsalHttpClient:
    """An httpx-based client for MSAL with the auditor's TLS trust and timeouts."""
    return MsalHttpClient(
        httpx.Client(verify=ssl_context(settings), timeout=settings.timeout_seconds)
    )


def authority_url(settings: Settings) -> str:
    """`<authority host>/<tenant id>`; the tenant id is required."""
    if not settings.tenant_id:
        raise ConfigError(
            "tenant_id",
            str(settings.config_file or "configuration"),
            "is required to sign in",
            hint="Set `tenant_id` in auditor.toml or AZURE_TENANT_ID.",
        )
    return f"{settings.authority_host}/{settings.tenant_id}"


def instance_discovery(settings: Settings) -> bool:
    """Only Microsoft's own login hosts use MSAL's instance discovery."""
    return (urlsplit(settings.authority_host).hostname or "") in KNOWN_AUTHORITY_HOSTS


class MsalCredential:
    """A `Credential` on an MSAL application (confidential, public or managed identity)."""

    def __init__(
        self,
        acquire: Callable[[str, bool], Mapping[str, Any] | None],
        *,
        describe: str,
        http: MsalHttpClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._acquire = acquire
        self.describe = describe
        self._http = http
        self._clock = clock

    def close(self) -> None:
        """Close the HTTP client MSAL used (its keep-alive connections)."""
        if self._http is not None:
            self._http.close()

    def get_token(self, scope: str, *, force_refresh: bool = False) -> AccessToken:
        """A token for `scope`, or an `AuthError` saying what to fix."""
        with _translate_msal_errors():
            result = self._acquire(scope, force_refresh)
        if not result:
            raise AuthError(
                f"No token for {scope} ({self.describe}).",
                hint="Run `auditor login` first, or choose another auth.method.",
            )
        if "access_token" not in result:
            raise _auth_error(result, scope)
        token = str(result["access_token"])
        register_secret(token)
        expires_in = float(result.get("expires_in") or 3600)
        return AccessToken(token=token, expires_on=self._clock() + expires_in)


@contextlib.contextmanager
def _translate_msal_errors() -> Iterator[None]:
    """MSAL fails with httpx errors (network, TLS) or ValueError (authority discovery)."""
    try:
        yield
    except httpx.HTTPError as exc:
        raise AuthError(
            f"Sign-in failed: could not reach the authority ({type(exc).__name__}: {exc}).",
            hint="Check `auth.authority_host` and the network; for a private CA set "
            "SSL_CERT_FILE or `http.ca_bundle`.",
        ) from exc
    except ValueError as exc:  # MSAL: authority discovery failed (unknown tenant, bad URL)
        raise AuthError(
            f"Sign-in failed: {exc}", hint="Check `tenant_id` and `auth.authority_host`."
        ) from exc


def _auth_error(result: Mapping[str, Any], scope: str) -> AuthError:
    codes = [int(c) for c in result.get("error_codes") or [] if str(c).isdigit()]
    description = str(result.get("error_description") or result.get("error") or "unknown error")
    first_line = description.splitlines()[0] if description else ""
    hint = next((_AADSTS_HINTS[c] for c in codes if c in _AADSTS_HINTS), None)
    return AuthError(f"Sign-in for {scope} failed: {first_line}", hint=hint)


def build_credential(
    settings: Settings,
    *,
    http_client: MsalHttpClient | None = None,
    token_cache: msal.TokenCache | None = None,
) -> MsalCredential:
    """The credential `auth.method` names, with secrets from the environment only."""
    http = http_client or msal_http_client(settings)
    method = settings.auth_method
    if method == "managed-identity":
        identity: Any = (
            msal.UserAssignedManagedIdentity(client_id=settings.client_id)
            if settings.client_id
            else msal.SystemAssignedManagedIdentity()
        )
        mi_cache = msal.TokenCache()
        with _translate_msal_errors():
            client = msal.ManagedIdentityClient(identity, http_client=http, token_cache=mi_cache)

        def acquire_mi(scope: str, force: bool) -> Mapping[str, Any] | None:
            resource = scope.removesuffix("/.default")
            if force:  # MSAL would hand back the cached token the API just refused
                _forget_tokens(mi_cache, resource)
            result: Mapping[str, Any] = client.acquire_token_for_client(resource=resource)
            return result

        return MsalCredential(acquire_mi, describe="managed identity", http=http)

    client_id = _require_client_id(settings)
    authority = authority_url(settings)
    discovery = instance_discovery(settings)
    if method == "device-code":
        with _translate_msal_errors():
            app = msal.PublicClientApplication(
                client_id,
                authority=authority,
                http_client=http,
                instance_discovery=discovery,
                token_cache=token_cache or persisted_cache(settings.token_cache_path),
            )

        def acquire_silent(scope: str, force: bool) -> Mapping[str, Any] | None:
            accounts = app.get_accounts()
            if not accounts:
                return None
            result: Mapping[str, Any] | None = app.acquire_token_silent(
                [scope], account=accounts[0], force_refresh=force
            )
            return result

        return MsalCredential(acquire_silent, describe="device code sign-in", http=http)

    credential = client_credential(settings)
    with _translate_msal_errors():
        confidential = msal.ConfidentialClientApplication(
            client_id,
            client_credential=credential,
            authority=authority,
            http_client=http,
            instance_discovery=discovery,
            token_cache=token_cache,
        )

    def acquire_app(scope: str, force: bool) -> Mapping[str, Any] | None:
        if force:  # MSAL would hand back the cached token the API just refused
            _forget_tokens(confidential.token_cache, scope)
        result: Mapping[str, Any] = confidential.acquire_token_for_client(scopes=[scope])
        return result

    return MsalCredential(acquire_app, describe=method, http=http)


def _forget_tokens(cache: msal.TokenCache, target: str) -> None:
    """Drop the cached access tokens for `target` (a scope, or a managed identity's resource),
    so the next acquisition asks the identity endpoint for a new one."""
    for item in list(cache.search(msal.TokenCache.CredentialType.ACCESS_TOKEN, target=[target])):
        cache.remove_at(item)


def _require_client_id(settings: Settings) -> str:
    if not settings.client_id:
        raise ConfigError(
            "auth.client_id",
            str(settings.config_file or "configuration"),
            f"is required for auth.method {settings.auth_method}",
            hint="Set `client_id` under [auth] in auditor.toml, or AZURE_CLIENT_ID.",
        )
    return settings.client_id


def persisted_cache(path: Path) -> msal.TokenCache:
    """A token cache in a file only its owner can read or write."""
    from msal_extensions import FilePersistence, PersistedTokenCache

    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.exists():
        os.chmod(path, 0o600)
    cache: msal.TokenCache = PersistedTokenCache(FilePersistence(str(path)))
    return cache


def device_code_login(
    settings: Settings, *, show: Callable[[str], None], scope: str | None = None
) -> str:
    """Sign in a person with the device code flow; returns the signed-in account name."""
    with _translate_msal_errors():
        app = msal.PublicClientApplication(
            _require_client_id(settings),
            authority=authority_url(settings),
            http_client=msal_http_client(settings),
            instance_discovery=instance_discovery(settings),
            token_cache=persisted_cache(settings.token_cache_path),
        )
        flow = app.initiate_device_flow(scopes=[scope or settings.admin_api_scope])
    if "user_code" not in flow:
        raise _auth_error(flow, scope or settings.admin_api_scope)
    show(str(flow["message"]))
    with _translate_msal_errors():
        result = app.acquire_token_by_device_flow(flow)
    if "access_token" not in result:
        raise _auth_error(result, scope or settings.admin_api_scope)
    register_secret(str(result["access_token"]))
    os.chmod(settings.token_cache_path, 0o600)
    claims = result.get("id_token_claims") or {}
    return str(claims.get("preferred_username") or claims.get("name") or "the account")
