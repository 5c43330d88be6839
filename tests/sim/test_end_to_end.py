"""`auditor sim serve` as a user runs it: a process, its client files, MSAL and paging.

One simulator process (seed 7, scale small) for the module. Clients trust it only through
`SSL_CERT_FILE` from the `env` file it writes, as `set -a; . DIR/env; set +a` would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from auditor.auth import MsalHttpClient, build_credential
from auditor.http import ssl_context
from auditor.settings import Settings, load_settings
from auditor.sim.launch import serve_process

pytestmark = pytest.mark.slow


def read_env_file(path: Path) -> dict[str, str]:
    """The variables `set -a; . env; set +a` would export, read by a real shell."""
    exported = subprocess.run(
        ["sh", "-c", f'set -a; . "{path}"; set +a; env -0'],
        env={"PATH": os.environ["PATH"]},
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    pairs = (item.decode().partition("=") for item in exported if item)
    wanted = {"AZURE_CLIENT_SECRET", "SSL_CERT_FILE"}
    return {name: value for name, _, value in pairs if name in wanted}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("sim")
    started = time.monotonic()
    process, base_url = serve_process(folder, seed=7, scale="small")
    startup = time.monotonic() - started
    try:
        yield {"folder": folder, "base_url": base_url, "startup": startup, "process": process}
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
        assert process.returncode == 0


@pytest.fixture(scope="module")
def truth(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("truth") / "truth.json"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "auditor",
            "sim",
            "truth",
            "--seed",
            "7",
            "--scale",
            "small",
            "--out",
            str(out),
        ],
        check=True,
        capture_output=True,
    )
    document: dict[str, Any] = json.loads(out.read_text())
    return document


@pytest.fixture(scope="module")
def client_settings(served: dict[str, Any]) -> tuple[Settings, dict[str, str]]:
    env = read_env_file(served["folder"] / "env")
    assert set(env) == {"AZURE_CLIENT_SECRET", "SSL_CERT_FILE"}
    assert "AZURE_CLIENT_SECRET" not in (served["folder"] / "auditor.toml").read_text()
    settings = load_settings(
        {"config": served["folder"] / "auditor.toml"}, environ=env, cwd=served["folder"]
    )
    return settings, env


def test_serve_starts_quickly_on_a_free_port(served: dict[str, Any]) -> None:
    assert served["startup"] < 10
    assert served["base_url"].startswith("https://127.0.0.1:")
    assert not served["base_url"].endswith(":0")


def test_msal_signs_in_with_ssl_cert_file_and_httpx_pages_every_trace_row(
    served: dict[str, Any],
    client_settings: tuple[Settings, dict[str, str]],
    truth: dict[str, Any],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings, env = client_settings
    # Trust only what the env file says, as a user's shell would (not the config's ca_bundle).
    monkeypatch.setenv("SSL_CERT_FILE", env["SSL_CERT_FILE"])
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    settings = Settings(**{**vars(settings), "ca_bundle": None})
    hosts: list[str] = []
    msal_http = MsalHttpClient(
        httpx.Client(
            verify=ssl_context(settings),
            event_hooks={"request": [lambda request: hosts.append(request.url.netloc.decode())]},
        )
    )
    prod = next(e for e in truth["environments"] if e["name"] == "Contoso Production")
    dataverse = f"{served['base_url']}/dv/{prod['slug']}"
    credential = build_credential(settings, http_client=msal_http)
    token = credential.get_token(f"{dataverse}/.default")
    credential.close()
    # MSAL talked to the simulator only: no instance discovery on a public host.
    assert set(hosts) == {served["base_url"].removeprefix("https://")}

    ids: list[str] = []
    pages = 0
    with httpx.Client(verify=ssl_context(settings), timeout=60) as client:
        url: str | None = f"{dataverse}/api/data/v9.2/plugintracelogs?$select=plugintracelogid"
        while url:
            response = client.get(
                url,
                headers={
                    "Authorization": f"Bearer {token.token}",
                    "Prefer": "odata.maxpagesize=1000",
                },
            )
            response.raise_for_status()
            body = response.json()
            ids.extend(row["plugintracelogid"] for row in body["value"])
            url = body.get("@odata.nextLink")
            pages += 1
    assert len(ids) == prod["row_counts"]["plugintracelogs"]
    assert len(ids) == len(set(ids))
    assert pages == -(-len(ids) // 1000)


def test_served_data_matches_the_ground_truth(
    served: dict[str, Any], client_settings: tuple[Settings, dict[str, str]], truth: dict[str, Any]
) -> None:
    """Enabled custom Update steps without filtering attributes, asked of the server."""
    settings, _ = client_settings
    credential = build_credential(settings)
    checked = 0
    with httpx.Client(verify=ssl_context(settings), timeout=60) as client:
        for env in truth["environments"]:
            if not env["has_dataverse"]:
                continue
            dataverse = f"{served['base_url']}/dv/{env['slug']}"
            token = credential.get_token(f"{dataverse}/.default").token
            response = client.get(
                f"{dataverse}/api/data/v9.2/sdkmessageprocessingsteps",
                params={
                    "$select": "sdkmessageprocessingstepid",
                    "$filter": "customizationlevel eq 1 and statecode eq 0 "
                    "and filteringattributes eq null",
                    "$expand": "sdkmessageid($select=name)",
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            response.raise_for_status()
            served_ids = sorted(
                row["sdkmessageprocessingstepid"]
                for row in response.json()["value"]
                if (row["sdkmessageid"] or {}).get("name") == "Update"
            )
            assert served_ids == env["facts"]["unfiltered_update_steps"], env["name"]
            checked += len(served_ids)
    credential.close()
    # The scenario plants some: a comparison of two empty lists would prove nothing.
    assert checked > 0
