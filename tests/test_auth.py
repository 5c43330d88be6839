"""Sign-in: MSAL against a mocked authority, tokens per scope, 401 refresh, redaction."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import stat
import time
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import unquote

import httpx
import pytest
import respx
from cryptography.hazmat.primitives import serialization

from auditor.auth import build_credential, device_code_login, instance_discovery
from auditor.errors import AuthError, Unauthorized
from auditor.host_limiter import HostLimiter
from auditor.http import ApiClient, get_json, make_client
from auditor.request_stats import RequestStats, current_stats
from auditor.settings import Credentials, Secret, Settings
from auditor.tokens import AccessToken, BearerAuth, TokenProvider

AUTHORITY = "https://login.sim.test"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
CLIENT = "0d0c3a8f-4c8b-4b59-9c55-2ad1b6f0f5a1"
SECRET = "s3cret~Value.With-Chars_0123456789"
API = "https://contoso.crm.dynamics.com/api/data/v9.2/WhoAmI"
SCOPE = "https://contoso.crm.dynamics.com/.default"


class CountingCredential:
    """A credential that hands out numbered tokens and counts the calls."""

    def __init__(self, lifetime: float = 3600, clock: float | None = None) -> None:
        self.calls: list[tuple[str, bool]] = []
        self.lifetime = lifetime
        self.clock = time.time() if clock is None else clock

    def get_token(self, scope: str, *, force_refresh: bool = False) -> AccessToken:
        self.calls.append((scope, force_refresh))
        return AccessToken(f"token-{len(self.calls)}", self.clock + self.lifetime)


def settings(**overrides: object) -> Settings:
    base: dict[str, object] = {
        "tenant_id": TENANT,
        "client_id": CLIENT,
        "authority_host": AUTHORITY,
        "credentials": Credentials(client_secret=Secret(SECRET)),
    }
    base.update(overrides)
    return Settings(**base)  # type: ignore[arg-type]


def mock_authority(router: respx.MockRouter, token_answer: httpx.Response) -> respx.Route:
    """OIDC discovery and a v2.0 token endpoint on the (mocked) authority host."""
    router.get(f"{AUTHORITY}/{TENANT}/v2.0/.well-known/openid-configuration").mock(
        return_value=httpx.Response(
            200,
            json={
                "issuer": f"{AUTHORITY}/{TENANT}/v2.0",
                "authorization_endpoint": f"{AUTHORITY}/{TENANT}/oauth2/v2.0/authorize",
                "token_endpoint": f"{AUTHORITY}/{TENANT}/oauth2/v2.0/token",
                "device_authorization_endpoint": f"{AUTHORITY}/{TENANT}/oauth2/v2.0/devicecode",
            },
        )
    )
    return router.post(f"{AUTHORITY}/{TENANT}/oauth2/v2.0/token").mock(return_value=token_answer)


def test_client_secret_gets_a_token_from_the_configured_authority_only() -> None:
    with respx.mock(assert_all_mocked=True) as router:
        token_route = mock_authority(
            router,
            httpx.Response(
                200, json={"token_type": "Bearer", "expires_in": 3599, "access_token": "at-1"}
            ),
        )
        token = build_credential(settings()).get_token(SCOPE)
        # Every request went to the configured authority: respx refuses unmocked hosts.
        hosts = {c.request.url.host for c in router.calls}
    assert hosts == {"login.sim.test"}
    assert token.token == "at-1"
    assert token.expires_on == pytest.approx(time.time() + 3599, abs=5)
    form = dict(x.split("=", 1) for x in token_route.calls.last.request.content.decode().split("&"))
    assert form["grant_type"] == "client_credentials"
    assert form["scope"] == "https%3A%2F%2Fcontoso.crm.dynamics.com%2F.default"


def test_instance_discovery_only_for_microsoft_login_hosts() -> None:
    assert instance_discovery(settings(authority_host="https://login.microsoftonline.com"))
    assert instance_discovery(settings(authority_host="https://login.microsoftonline.us"))
    assert not instance_discovery(settings(authority_host="https://127.0.0.1:8443"))


@pytest.mark.parametrize(
    ("code", "hint_word"),
    [(7000215, "AZURE_CLIENT_SECRET"), (700016, "client id"), (65001, "consent")],
)
def test_entra_errors_become_auth_errors_with_a_hint(code: int, hint_word: str) -> None:
    body = {
        "error": "invalid_client",
        "error_description": f"AADSTS{code}: something went wrong.\r\nTrace ID: x",
        "error_codes": [code],
    }
    with respx.mock(assert_all_mocked=True) as router:
        mock_authority(router, httpx.Response(401, json=body))
        with pytest.raises(AuthError) as caught:
            build_credential(settings()).get_token(SCOPE)
    assert f"AADSTS{code}" in caught.value.message
    assert hint_word in caught.value.hint
    assert caught.value.exit_code == 3


def test_client_secret_is_required_from_the_environment() -> None:
    with pytest.raises(AuthError, match="AZURE_CLIENT_SECRET"):
        build_credential(settings(credentials=Credentials()))


def test_an_unreachable_authority_is_an_auth_error() -> None:
    with respx.mock(assert_all_mocked=True) as router:
        router.get(url__startswith=AUTHORITY).mock(side_effect=httpx.ConnectError)
        with pytest.raises(AuthError, match="could not reach the authority"):
            build_credential(settings()).get_token(SCOPE)


def _jwt(claims: dict[str, object]) -> str:
    def part(data: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.sig"


def test_device_code_keeps_an_owner_only_token_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache" / "tokens.bin"
    now = int(time.time())
    id_token = _jwt(
        {
            "aud": CLIENT,
            "iss": f"{AUTHORITY}/{TENANT}/v2.0",
            "tid": TENANT,
            "oid": "user-oid",
            "sub": "user-sub",
            "preferred_username": "ana@contoso.com",
            "iat": now,
            "nbf": now,
            "exp": now + 3600,
        }
    )
    shown: list[str] = []
    with respx.mock(assert_all_mocked=True) as router:
        mock_authority(
            router,
            httpx.Response(
                200,
                json={
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "access_token": "device-at",
                    "refresh_token": "device-rt",
                    "id_token": id_token,
                    "client_info": base64.urlsafe_b64encode(
                        json.dumps({"uid": "user-oid", "utid": TENANT}).encode()
                    ).decode(),
                    "scope": "https://service.powerapps.com/.default",
                },
            ),
        )
        router.post(f"{AUTHORITY}/{TENANT}/oauth2/v2.0/devicecode").mock(
            return_value=httpx.Response(
                200,
                json={
                    "user_code": "ABCD-EFGH",
                    "device_code": "dc",
                    "verification_uri": "https://microsoft.com/devicelogin",
                    "expires_in": 900,
                    "interval": 0,
                    "message": "To sign in, open https://microsoft.com/devicelogin and enter "
                    "ABCD-EFGH",
                },
            )
        )
        who = device_code_login(
            settings(auth_method="device-code", token_cache_path=cache), show=shown.append
        )
        assert who == "ana@contoso.com"
        assert "ABCD-EFGH" in shown[0]
        mode = stat.S_IMODE(cache.stat().st_mode)
        assert mode == 0o600
        assert "device-rt" in cache.read_text()  # the cache holds the refresh token...
        # ...and a later run signs in silently from it, without a device code.
        credential = build_credential(settings(auth_method="device-code", token_cache_path=cache))
        assert credential.get_token("https://service.powerapps.com/.default").token == "device-at"


@pytest.mark.anyio
async def test_tokens_are_refreshed_before_they_expire_and_shared() -> None:
    now = [1000.0]
    credential = CountingCredential(lifetime=100, clock=1000.0)
    tokens = TokenProvider(credential, clock=lambda: now[0])
    # Many concurrent callers, one acquisition.
    got = await asyncio.gather(*(tokens.token(SCOPE) for _ in range(20)))
    assert set(got) == {"token-1"}
    now[0] = 1085.0  # 15 s left of 100: still fresh (margin is 10 % of the lifetime)
    assert await tokens.token(SCOPE) == "token-1"
    now[0] = 1095.0  # 5 s left: refreshed before it expires
    credential.clock = 1095.0
    assert await tokens.token(SCOPE) == "token-2"
    assert [force for _, force in credential.calls] == [False, False]
    # Other scopes have their own token.
    assert await tokens.token("https://service.flow.microsoft.com/.default") == "token-3"


@pytest.fixture
async def api_client() -> AsyncIterator[tuple[ApiClient, CountingCredential]]:
    credential = CountingCredential()
    tokens = TokenProvider(credential)
    async with make_client(
        Settings(), limiter=HostLimiter(4), auth=BearerAuth(tokens, SCOPE)
    ) as client:
        yield client, credential


@pytest.mark.anyio
@respx.mock
async def test_a_401_triggers_exactly_one_refresh_and_a_retry(
    api_client: tuple[ApiClient, CountingCredential],
) -> None:
    client, credential = api_client
    route = respx.get(API).mock(
        side_effect=[
            httpx.Response(401, headers={"WWW-Authenticate": "Bearer authorization_uri=x"}),
            httpx.Response(200, json={"UserId": "u"}),
        ]
    )
    stats = RequestStats()
    token = current_stats.set(stats)
    try:
        assert await get_json(client, API) == {"UserId": "u"}
    finally:
        current_stats.reset(token)
    assert [c.request.headers["Authorization"] for c in route.calls] == [
        "Bearer token-1",
        "Bearer token-2",
    ]
    assert credential.calls == [(SCOPE, False), (SCOPE, True)]
    assert stats.token_refreshes == 1


@pytest.mark.anyio
@respx.mock
async def test_a_second_401_is_an_error_not_a_loop(
    api_client: tuple[ApiClient, CountingCredential],
) -> None:
    client, credential = api_client
    route = respx.get(API).mock(return_value=httpx.Response(401))
    with pytest.raises(Unauthorized) as caught:
        await get_json(client, API)
    assert route.call_count == 2
    assert len(credential.calls) == 2
    assert "application user" in caught.value.hint


@pytest.mark.anyio
async def test_secret_and_tokens_never_reach_the_logs(caplog: pytest.LogCaptureFixture) -> None:
    access_token = _jwt({"aud": SCOPE, "exp": int(time.time()) + 3600})
    caplog.set_level(logging.DEBUG)
    with respx.mock(assert_all_mocked=True) as router:
        mock_authority(
            router,
            httpx.Response(
                200,
                json={"token_type": "Bearer", "expires_in": 3600, "access_token": access_token},
            ),
        )

        def whoami(request: httpx.Request) -> httpx.Response:
            # Log the way a careless library might: the whole request, headers and all.
            logging.getLogger("careless").debug("sending %s with %s", request, request.headers)
            logging.getLogger("careless").debug("form client_secret=%s", SECRET)
            return httpx.Response(200, json={"UserId": "u"})

        router.get(API).mock(side_effect=whoami)
        credential = build_credential(settings())
        tokens = TokenProvider(credential)
        async with make_client(
            Settings(), limiter=HostLimiter(2), auth=BearerAuth(tokens, SCOPE)
        ) as client:
            await get_json(client, API)
        try:
            raise RuntimeError(f"failed with {SECRET} and Bearer {access_token}")
        except RuntimeError:
            logging.getLogger("careless").exception("oops")
    text = caplog.text + "".join(r.getMessage() + (r.exc_text or "") for r in caplog.records)
    # The test must see debug output that would have carried them...
    assert "sending <Request('GET'" in text
    assert "[REDACTED]" in text
    # ...and none of it may carry the secret or the token.
    assert SECRET not in text
    assert access_token not in text


def test_client_certificate_signs_a_client_assertion(tmp_path: Path) -> None:
    import hashlib

    import trustme
    from cryptography import x509

    issued = trustme.CA().issue_cert("auditor-app", key_type=trustme.KeyType.RSA)
    pem = tmp_path / "app.pem"
    issued.private_key_and_cert_chain_pem.write_to_path(str(pem))
    certificate = x509.load_pem_x509_certificate(issued.cert_chain_pems[0].bytes())
    thumbprint = hashlib.sha1(certificate.public_bytes(serialization.Encoding.DER)).digest()  # noqa: S324
    with respx.mock(assert_all_mocked=True) as router:
        route = mock_authority(
            router,
            httpx.Response(
                200, json={"token_type": "Bearer", "expires_in": 3600, "access_token": "cert-at"}
            ),
        )
        credential = build_credential(
            settings(
                auth_method="client-certificate",
                credentials=Credentials(certificate_path=pem),
            )
        )
        assert credential.get_token(SCOPE).token == "cert-at"
        form = dict(
            item.split("=", 1) for item in route.calls.last.request.content.decode().split("&")
        )
    assert form["client_assertion_type"].endswith("jwt-bearer")

    def b64(text: str) -> bytes:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

    header = json.loads(b64(unquote(form["client_assertion"]).split(".")[0]))
    assert header["alg"] == "RS256"
    assert b64(header["x5t"]) == thumbprint
    assert "client_secret" not in form


def test_an_ec_certificate_is_refused_with_a_reason(tmp_path: Path) -> None:
    import trustme

    pem = tmp_path / "ec.pem"
    trustme.CA().issue_cert("auditor-app").private_key_and_cert_chain_pem.write_to_path(str(pem))
    with pytest.raises(AuthError, match="RSA"):
        build_credential(
            settings(
                auth_method="client-certificate", credentials=Credentials(certificate_path=pem)
            )
        )


def test_a_certificate_file_without_a_key_is_an_auth_error(tmp_path: Path) -> None:
    broken = tmp_path / "app.pem"
    broken.write_text("-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n")
    with pytest.raises(AuthError, match="does not hold a PEM certificate"):
        build_credential(
            settings(
                auth_method="client-certificate", credentials=Credentials(certificate_path=broken)
            )
        )


@respx.mock
def test_managed_identity_honours_a_forced_refresh(monkeypatch: pytest.MonkeyPatch) -> None:
    # App Service's managed identity endpoint (MSAL reads IDENTITY_ENDPOINT/IDENTITY_HEADER);
    # mocked on loopback. A 401 forces a refresh: the refused token must not come back.
    # https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
    endpoint = "http://127.0.0.1:41234/msi/token"
    monkeypatch.setenv("IDENTITY_ENDPOINT", endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", "header-value")
    issued: list[str] = []

    def token(request: httpx.Request) -> httpx.Response:
        issued.append(f"mi-token-{len(issued) + 1}")
        return httpx.Response(
            200,
            json={
                "access_token": issued[-1],
                "expires_on": str(int(time.time()) + 3600),
                "resource": request.url.params["resource"],
                "token_type": "Bearer",
            },
        )

    respx.get(endpoint).mock(side_effect=token)
    credential = build_credential(settings(auth_method="managed-identity", client_id=None))
    try:
        first = credential.get_token(SCOPE)
        again = credential.get_token(SCOPE)
        forced = credential.get_token(SCOPE, force_refresh=True)
    finally:
        credential.close()
    assert first.token == again.token == "mi-token-1"  # cached between calls
    assert forced.token == "mi-token-2"
    assert len(issued) == 2
