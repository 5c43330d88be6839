"""The simulated identity provider: MSAL runs for real, errors, token shape and expiry."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import msal
import pytest

from auditor.sim.model import SimOptions

from .conftest import (
    ADMIN_SCOPE,
    CLIENT_ID,
    CLIENT_SECRET,
    FLOW_SCOPE,
    TENANT_ID,
    Sim,
    make_tenant,
    serving,
)

PROD = "contoso-prod"


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    """A server whose tokens live two seconds, so expiry is testable."""
    with serving(make_tenant(), SimOptions(seed=7, scale="tiny", token_lifetime_s=2)) as running:
        yield running


def msal_app(
    sim: Sim, secret: str = CLIENT_SECRET, client_id: str = CLIENT_ID, tenant: str = TENANT_ID
) -> Any:
    return msal.ConfidentialClientApplication(
        client_id,
        client_credential=secret,
        authority=f"{sim.base}/{tenant}",
        instance_discovery=False,
        http_client=sim.http,
    )


def claims(token: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    assert json.loads(base64.urlsafe_b64decode(header + "==="))["typ"] == "JWT"
    assert signature
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "==="))
    return decoded


def test_msal_gets_a_token_that_the_dataverse_api_accepts(sim: Sim) -> None:
    result = msal_app(sim).acquire_token_for_client(scopes=[sim.dv_scope(PROD)])
    assert "access_token" in result, result
    assert result["token_type"] == "Bearer"
    token = result["access_token"]
    assert token in sim.server.issued_tokens
    found = claims(token)
    assert found["aud"] == f"{sim.base}/dv/{PROD}"
    assert found["tid"] == TENANT_ID
    assert found["appid"] == CLIENT_ID
    assert found["iss"] == f"{sim.base}/{TENANT_ID}/v2.0"
    assert found["exp"] - found["iat"] == 2
    answer = sim.http.get(
        f"{sim.base}/dv/{PROD}/api/data/v9.2/organizations",
        headers={"authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200


def test_msal_gets_flow_and_admin_tokens(sim: Sim) -> None:
    app = msal_app(sim)
    for scope in (FLOW_SCOPE, ADMIN_SCOPE, "https://service.flow.microsoft.com//.default"):
        assert "access_token" in app.acquire_token_for_client(scopes=[scope])


@pytest.mark.parametrize(
    ("secret", "client_id", "code", "error"),
    [
        ("wrong", CLIENT_ID, 7000215, "invalid_client"),
        (CLIENT_SECRET, "00000000-0000-0000-0000-000000000000", 700016, "unauthorized_client"),
    ],
)
def test_wrong_credentials_give_the_aadsts_error(
    sim: Sim, secret: str, client_id: str, code: int, error: str
) -> None:
    result = msal_app(sim, secret=secret, client_id=client_id).acquire_token_for_client(
        scopes=[sim.dv_scope(PROD)]
    )
    assert "access_token" not in result
    assert result["error"] == error
    assert result["error_description"].startswith(f"AADSTS{code}: ")
    assert result["error_codes"] == [code]
    assert result["trace_id"]
    assert result["correlation_id"]


def test_unknown_tenant_fails_discovery_and_the_token_endpoint(sim: Sim) -> None:
    other = "11111111-2222-3333-4444-555555555555"
    with pytest.raises(ValueError, match="Unable to get authority configuration") as caught:
        msal_app(sim, tenant=other)
    assert "AADSTS90002" in str(caught.value.__cause__ or caught.value.__context__)
    answer = sim.http.post(
        f"{sim.base}/{other}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "scope": FLOW_SCOPE,
        },
    )
    assert answer.status_code == 400
    body = answer.json()
    assert body["error_codes"] == [90002]
    assert set(body) >= {
        "error",
        "error_description",
        "error_codes",
        "timestamp",
        "trace_id",
        "correlation_id",
    }


@pytest.mark.parametrize(
    ("scope", "code"),
    [
        ("https://contoso.crm.dynamics.com/.default", 500011),
        ("https://service.flow.microsoft.com/user_impersonation", 1002012),
        ("", 900144),
    ],
)
def test_bad_scopes_are_refused(sim: Sim, scope: str, code: int) -> None:
    answer = sim.request_token(scope)
    assert answer.status_code == 400
    assert answer.json()["error_codes"] == [code]


def test_discovery_document_names_the_endpoints(sim: Sim) -> None:
    doc = sim.http.get(f"{sim.base}/{TENANT_ID}/v2.0/.well-known/openid-configuration").json()
    authority = f"{sim.base}/{TENANT_ID}"
    assert doc["issuer"] == f"{authority}/v2.0"
    assert doc["token_endpoint"] == f"{authority}/oauth2/v2.0/token"
    assert doc["authorization_endpoint"] == f"{authority}/oauth2/v2.0/authorize"
    assert doc["device_authorization_endpoint"] == f"{authority}/oauth2/v2.0/devicecode"
    keys = sim.http.get(doc["jwks_uri"]).json()
    assert keys["keys"][0]["kty"] == "RSA"


def test_tokens_are_unique_per_issue(sim: Sim) -> None:
    tokens = [sim.request_token(FLOW_SCOPE).json()["access_token"] for _ in range(3)]
    assert len(set(tokens)) == 3
    assert len({claims(t)["uti"] for t in tokens}) == 3


@pytest.mark.reliability
def test_tokens_expire_and_the_api_answers_401_with_the_challenge(sim: Sim) -> None:
    token = sim.request_token(sim.dv_scope(PROD)).json()["access_token"]
    url = f"{sim.base}/dv/{PROD}/api/data/v9.2/organizations"
    assert sim.http.get(url, headers={"authorization": f"Bearer {token}"}).status_code == 200
    flow_token = sim.request_token(FLOW_SCOPE).json()["access_token"]
    time.sleep(2.1)
    answer = sim.http.get(url, headers={"authorization": f"Bearer {token}"})
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == (
        f"Bearer authorization_uri={sim.base}/{TENANT_ID}/oauth2/authorize, "
        f"resource_id={sim.base}/dv/{PROD}/"
    )
    assert answer.json() == {
        "error": {"code": "ExpiredAuthenticationToken", "message": "The access token has expired."}
    }
    env = sim.tenant.environments[0]
    flows = sim.http.get(
        f"{sim.base}/flow/providers/Microsoft.ProcessSimple/environments/{env.env_id}/flows",
        params={"api-version": "2016-11-01"},
        headers={"authorization": f"Bearer {flow_token}"},
    )
    assert flows.status_code == 401
    assert "resource_id=https://service.flow.microsoft.com/" in flows.headers["www-authenticate"]
    # A fresh token works again.
    fresh = sim.request_token(sim.dv_scope(PROD)).json()["access_token"]
    assert sim.http.get(url, headers={"authorization": f"Bearer {fresh}"}).status_code == 200
    assert sim.server.stats.unauthorized >= 2


def test_identity_requests_are_counted_apart_from_api_requests(sim: Sim) -> None:
    before = sim.server.stats.snapshot()
    sim.request_token(FLOW_SCOPE)
    after = sim.server.stats.snapshot()
    assert after["token_requests"] == before["token_requests"] + 1  # type: ignore[operator]
    assert after["requests"] == before["requests"]


def test_httpx_client_is_accepted_as_msal_http_client(sim: Sim) -> None:
    with httpx.Client(verify=sim.ctx) as client:
        app = msal.ConfidentialClientApplication(
            CLIENT_ID,
            client_credential=CLIENT_SECRET,
            authority=f"{sim.base}/{TENANT_ID}",
            instance_discovery=False,
            http_client=client,
        )
        assert "access_token" in app.acquire_token_for_client(scopes=[FLOW_SCOPE])
