"""The simulator over HTTPS: Dataverse queries and paging, BAP and flow API shapes, files."""

from __future__ import annotations

import dataclasses
import email.utils
import json
import logging
import os
import ssl
import stat
import subprocess
import tomllib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from auditor.sim.model import SimOptions
from auditor.sim.server import SimServer

from .conftest import (
    ADMIN_SCOPE,
    CLIENT_ID,
    CLIENT_SECRET,
    FLOW_SCOPE,
    NOW,
    TENANT_ID,
    Sim,
    make_tenant,
    serving,
)

PROD = "contoso-prod"
DEV = "contoso-dev"
BAP = "/bap/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments"


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    """One server for the module; the dev environment denies traces, assemblies and runs."""
    options = SimOptions(
        seed=7,
        scale="tiny",
        max_requests=100_000,
        deny=frozenset({(DEV, "plugintracelogs"), (DEV, "pluginassemblies"), (DEV, "runs")}),
    )
    with serving(make_tenant(), options) as running:
        yield running


def visible(sim: Sim, slug: str, table: str) -> pd.DataFrame:
    env = sim.tenant.environment(slug)
    assert env is not None
    frame = env.tables[table]
    return (
        frame[frame["createdon"] <= pd.Timestamp(sim.tenant.now)] if "createdon" in frame else frame
    )


# -- Dataverse: paging -------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"$orderby": "createdon desc"},
        {"$filter": "createdon ge 2026-11-05T00:00:00Z and createdon lt 2026-11-12T00:00:00Z"},
        {
            "$select": "typename,createdon,depth",
            "$filter": "depth ge 2 or exceptiondetails ne null",
            "$orderby": "typename asc,createdon desc",
        },
    ],
)
def test_paging_returns_every_visible_row_once(sim: Sim, params: dict[str, str]) -> None:
    rows, pages = sim.page_all(PROD, "plugintracelogs", 97, **params)
    frame = visible(sim, PROD, "plugintracelogs")
    if "$filter" in params and "depth" in params["$filter"]:
        frame = frame[(frame.depth >= 2).fillna(False) | frame.exceptiondetails.notna()]
    elif "$filter" in params:
        frame = frame[
            (frame.createdon >= "2026-11-05T00:00:00Z") & (frame.createdon < "2026-11-12T00:00:00Z")
        ]
    ids = [r["plugintracelogid"] for r in rows]
    assert len(ids) == len(set(ids)) == len(frame)
    assert set(ids) == set(frame.plugintracelogid)
    assert pages == -(-len(frame) // 97)
    if params.get("$orderby") == "createdon desc":
        stamps = [r["createdon"] for r in rows]
        assert stamps == sorted(stamps, reverse=True)


def test_next_link_keeps_the_options_and_the_preference_is_echoed(sim: Sim) -> None:
    headers = {"prefer": "odata.maxpagesize=10"}
    first = sim.dv(
        PROD, "plugintracelogs", headers, **{"$select": "typename", "$filter": "depth eq 1"}
    )
    assert first.headers["preference-applied"] == "odata.maxpagesize=10"
    link = first.json()["@odata.nextLink"]
    assert link.startswith(f"{sim.base}/dv/{PROD}/api/data/v9.2/plugintracelogs?")
    assert "%24select=typename" in link
    assert "$skiptoken=%3Ccookie%20pagenumber=%222%22" in link
    assert first.json()["@odata.context"].endswith(
        "$metadata#plugintracelogs(typename,plugintracelogid)"
    )
    second = sim.dv_url(link, PROD, headers).json()
    assert set(second["value"][0]) == {"@odata.etag", "typename", "plugintracelogid"}
    without_size = sim.dv(PROD, "plugintracelogs")
    assert "preference-applied" not in without_size.headers
    assert len(without_size.json()["value"]) == len(visible(sim, PROD, "plugintracelogs"))


def test_top_limits_rows_unless_a_page_size_is_preferred(sim: Sim) -> None:
    assert len(sim.dv(PROD, "plugintracelogs", None, **{"$top": "5"}).json()["value"]) == 5
    body = sim.dv(
        PROD, "plugintracelogs", {"prefer": "odata.maxpagesize=7"}, **{"$top": "5"}
    ).json()
    assert len(body["value"]) == 7
    assert "@odata.nextLink" in body


def test_advancing_the_clock_reveals_rows_but_open_paging_keeps_its_snapshot(sim: Sim) -> None:
    headers = {"prefer": "odata.maxpagesize=500"}
    before = len(visible(sim, PROD, "plugintracelogs"))
    first = sim.dv(PROD, "plugintracelogs", headers).json()
    sim.tenant.advance(timedelta(hours=6))
    try:
        rest, _ = [], None
        link = first.get("@odata.nextLink")
        while link:
            page = sim.dv_url(link, PROD, headers).json()
            rest.extend(page["value"])
            link = page.get("@odata.nextLink")
        assert len(first["value"]) + len(rest) == before
        after, _ = sim.page_all(PROD, "plugintracelogs", 500)
        assert len(after) == len(visible(sim, PROD, "plugintracelogs")) > before
    finally:
        sim.tenant.now = NOW


def test_count_and_its_annotations(sim: Sim) -> None:
    prefer = {"prefer": 'odata.maxpagesize=5,odata.include-annotations="*"'}
    body = sim.dv(
        PROD, "asyncoperations", prefer, **{"$count": "true", "$filter": "statuscode eq 31"}
    ).json()
    expected = int((visible(sim, PROD, "asyncoperations").statuscode == 31).sum())
    assert body["@odata.count"] == expected
    assert body["@Microsoft.Dynamics.CRM.totalrecordcount"] == expected
    assert body["@Microsoft.Dynamics.CRM.totalrecordcountlimitexceeded"] is False
    assert next(iter(body)) == "@odata.context"


def test_count_is_capped_at_5000(sim: Sim) -> None:
    env = sim.tenant.environment(DEV)
    assert env is not None
    n = 5003
    saved = env.tables.get("flowevents")
    env.tables["flowevents"] = pd.DataFrame(
        {
            "floweventid": [f"{i:08x}-0000-4000-8000-000000000000" for i in range(n)],
            "eventtype": "FlowRunIngestion",
            "createdon": pd.Series(pd.Timestamp("2026-11-02T00:00:00Z"), index=range(n)),
        }
    )
    try:
        body = sim.dv(
            DEV, "flowevents", {"prefer": "odata.maxpagesize=10"}, **{"$count": "true"}
        ).json()
        assert body["@odata.count"] == 5000
        rows, _ = sim.page_all(DEV, "flowevents", 5000)
        assert len(rows) == n
    finally:
        if saved is None:
            del env.tables["flowevents"]
        else:
            env.tables["flowevents"] = saved


# -- Dataverse: shapes and errors --------------------------------------------------------


def test_step_inventory_expand_in_one_query(sim: Sim) -> None:
    params = {
        "$select": (
            "sdkmessageprocessingstepid,name,stage,mode,filteringattributes,statecode,"
            "_eventhandler_value"
        ),
        "$expand": (
            "sdkmessageid($select=name),sdkmessagefilterid($select=primaryobjecttypecode),"
            "plugintypeid($select=typename,name,assemblyname,isworkflowactivity;"
            "$expand=pluginassemblyid($select=name,version,isolationmode,sourcetype,ismanaged))"
        ),
        "$filter": "customizationlevel eq 1",
        "$orderby": "sdkmessageprocessingstepid asc",
    }
    prefer = {"prefer": 'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'}
    answer = sim.dv(PROD, "sdkmessageprocessingsteps", prefer, **params)
    assert answer.status_code == 200, answer.text
    rows = answer.json()["value"]
    env = sim.tenant.environment(PROD)
    assert env is not None
    steps = env.tables["sdkmessageprocessingsteps"]
    custom = steps[steps.customizationlevel == 1].sort_values("sdkmessageprocessingstepid")
    assert [r["sdkmessageprocessingstepid"] for r in rows] == list(
        custom.sdkmessageprocessingstepid
    )
    types = env.tables["plugintypes"].set_index("plugintypeid")
    for row, (_, step) in zip(rows, custom.iterrows(), strict=True):
        assert row["stage@OData.Community.Display.V1.FormattedValue"] in {
            "Pre-validation",
            "Pre-operation",
            "Post-operation",
        }
        assert row["sdkmessageid"]["name"] in {"Create", "Update"}
        if pd.isna(step._plugintypeid_value):
            assert row["plugintypeid"] is None
        else:
            assert (
                row["plugintypeid"]["typename"] == types.loc[step._plugintypeid_value, "typename"]
            )
            assembly = row["plugintypeid"]["pluginassemblyid"]
            assert assembly["isolationmode@OData.Community.Display.V1.FormattedValue"] == "Sandbox"
            assert assembly["sourcetype@OData.Community.Display.V1.FormattedValue"] in {
                "Database",
                "File Store",
            }
        if pd.isna(step._sdkmessagefilterid_value):
            assert row["sdkmessagefilterid"] is None
        else:
            assert row["sdkmessagefilterid"]["primaryobjecttypecode"] in {"account", "contact"}
    assert "_sim_expected_noise" not in rows[0]


def test_formatted_values_of_choice_columns(sim: Sim) -> None:
    prefer = {"prefer": 'odata.include-annotations="*"'}
    org = sim.dv(PROD, "organizations", prefer).json()["value"][0]
    assert org["plugintracelogsetting@OData.Community.Display.V1.FormattedValue"] == "All"
    job = sim.dv(
        PROD, "asyncoperations", prefer, **{"$filter": "statuscode eq 31", "$top": "1"}
    ).json()["value"][0]
    assert job["statuscode@OData.Community.Display.V1.FormattedValue"] == "Failed"
    assert job["statecode@OData.Community.Display.V1.FormattedValue"] == "Completed"
    flow = sim.dv(PROD, "workflows", prefer).json()["value"][0]
    assert flow["category@OData.Community.Display.V1.FormattedValue"] == "Modern Flow"
    plain = sim.dv(PROD, "organizations").json()["value"][0]
    assert not [k for k in plain if "FormattedValue" in k]


def test_bad_filter_gives_the_documented_400_body(sim: Sim) -> None:
    answer = sim.dv(
        PROD, "plugintracelogs", None, **{"$filter": "createdon gtt 2026-11-01T00:00:00Z"}
    )
    assert answer.status_code == 400
    body = answer.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message"}
    assert body["error"]["code"] == "0x80060888"
    unknown = sim.dv(PROD, "plugintracelogs", None, **{"$select": "nosuchcolumn"}).json()
    assert unknown["error"]["message"] == (
        "Could not find a property named 'nosuchcolumn' on type "
        "'Microsoft.Dynamics.CRM.plugintracelog'."
    )


def test_unknown_entity_set_is_404_with_the_segment_named(sim: Sim) -> None:
    answer = sim.dv(PROD, "accounts")
    assert answer.status_code == 404
    assert answer.json() == {
        "error": {"code": "0x80060888", "message": "Resource not found for the segment 'accounts'."}
    }


def test_denied_tables_answer_403_with_the_privilege_named(sim: Sim) -> None:
    answer = sim.dv(DEV, "plugintracelogs")
    assert answer.status_code == 403
    error = answer.json()["error"]
    assert error["code"] == "0x80040220"
    assert "is missing prvReadPluginTraceLog privilege" in error["message"]
    assert "type=8" in error["message"]
    # Reaching a denied table through $expand is denied too; other tables are fine.
    expand = sim.dv(DEV, "plugintypes", None, **{"$expand": "pluginassemblyid($select=name)"})
    assert expand.status_code == 403
    assert "prvReadPluginAssembly" in expand.json()["error"]["message"]
    assert sim.dv(DEV, "plugintypes").status_code == 200
    assert sim.dv(PROD, "plugintracelogs", None, **{"$top": "1"}).status_code == 200


def test_whoami_and_rows_without_sim_columns(sim: Sim) -> None:
    who = sim.dv(PROD, "WhoAmI").json()
    assert set(who) >= {"UserId", "BusinessUnitId", "OrganizationId"}
    rows = sim.dv(PROD, "plugintracelogs", None, **{"$top": "3"}).json()["value"]
    assert not [k for r in rows for k in r if k.startswith("_sim_")]
    assert all(r["createdon"].endswith("Z") and len(r["createdon"]) == 20 for r in rows)


def test_a_token_for_another_api_is_refused(sim: Sim) -> None:
    url = f"{sim.base}/dv/{PROD}/api/data/v9.2/organizations"
    for scope in (FLOW_SCOPE, sim.dv_scope(DEV)):
        answer = sim.http.get(url, headers={"authorization": f"Bearer {sim.token(scope)}"})
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == (
            f"Bearer authorization_uri={sim.base}/{TENANT_ID}/oauth2/authorize, "
            f"resource_id={sim.base}/dv/{PROD}/"
        )
        assert answer.json()["error"]["code"] == "InvalidAuthenticationTokenAudience"
    missing = sim.http.get(url)
    assert missing.status_code == 401
    assert set(missing.json()["error"]) == {"code", "message"}
    wrong = sim.http.get(url, headers={"authorization": "Bearer not-a-token"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "InvalidAuthenticationToken"


# -- admin (BAP) API ---------------------------------------------------------------------


def bap(sim: Sim, url: str | None = None, **params: str) -> httpx.Response:
    return sim.get(url or f"{sim.base}{BAP}", ADMIN_SCOPE, None, **params)


def test_environments_in_the_bap_shape(sim: Sim) -> None:
    answer = bap(sim, **{"api-version": "2020-10-01"})
    assert answer.status_code == 200
    envs = {e["name"]: e for e in answer.json()["value"]}
    assert set(envs) == {e.env_id for e in sim.tenant.environments}
    for env in sim.tenant.environments:
        item = envs[env.env_id]
        assert (
            item["id"]
            == f"/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments/{env.env_id}"
        )
        props = item["properties"]
        assert props["displayName"] == env.display_name
        assert props["environmentSku"] == env.sku
        assert props["tenantId"] == TENANT_ID
        assert props["isDefault"] is (env.sku == "Default")
        assert item["location"]
        assert props["azureRegion"]
        if env.has_dataverse:
            linked = props["linkedEnvironmentMetadata"]
            assert linked["instanceUrl"] == f"{sim.base}/dv/{env.slug}/"
            assert linked["instanceApiUrl"]
            assert linked["domainName"] == env.slug
        else:
            assert "instanceUrl" not in props.get("linkedEnvironmentMetadata", {})


def test_environments_page_by_next_link_and_need_an_api_version(sim: Sim) -> None:
    assert sim.server.app is not None
    sim.server.app.limits.environment_page = 2
    try:
        first = bap(sim, **{"api-version": "2020-10-01"}).json()
        assert len(first["value"]) == 2
        assert "api-version=2020-10-01" in first["nextLink"]
        second = bap(sim, first["nextLink"]).json()
        assert len(second["value"]) == 1
        assert "nextLink" not in second
        names = [e["name"] for e in first["value"] + second["value"]]
        assert len(set(names)) == 3
    finally:
        sim.server.app.limits.environment_page = 50
    missing = bap(sim)
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"


# -- flow API ----------------------------------------------------------------------------


def prod_env(sim: Sim) -> Any:
    env = sim.tenant.environment(PROD)
    assert env is not None
    return env


def test_flows_list_paged_and_flow_with_definition(sim: Sim) -> None:
    env = prod_env(sim)
    assert sim.server.app is not None
    sim.server.app.limits.flow_page = 2
    try:
        first = sim.flow(f"{env.env_id}/flows").json()
        assert len(first["value"]) == 2
        assert "api-version=2016-11-01" in first["nextLink"]
        second = sim.get(first["nextLink"], FLOW_SCOPE).json()
    finally:
        sim.server.app.limits.flow_page = 50
    listed = first["value"] + second["value"]
    assert sorted(f["name"] for f in listed) == sorted(env.flows.name)
    for item in listed:
        assert item["type"] == "Microsoft.ProcessSimple/environments/flows"
        assert (
            item["id"]
            == f"/providers/Microsoft.ProcessSimple/environments/{env.env_id}/flows/{item['name']}"
        )
        assert "definition" not in item["properties"]
        assert item["properties"]["state"] in {"Started", "Stopped", "Suspended"}
    solution = next(f for f in listed if f["name"] == env.flows.name[0])
    assert solution["properties"]["workflowEntityId"] == env.flows.workflowid[0]
    one = sim.flow(f"{env.env_id}/flows/{env.flows.name[0]}").json()
    assert one["properties"]["definition"]["triggers"]["Recurrence"]["type"] == "Recurrence"
    assert (
        one["properties"]["connectionReferences"]["shared_sharepointonline"]["source"] == "Embedded"
    )
    assert one["properties"]["createdTime"].endswith("0Z")
    assert len(one["properties"]["createdTime"]) == 28


def test_runs_newest_first_paged_filtered_and_limited(sim: Sim) -> None:
    env = prod_env(sim)
    flow = env.flows.name[0]
    runs = env.runs[env.runs.flow_name == flow]
    now = pd.Timestamp(sim.tenant.now)
    shown = runs[runs.start_time <= now]
    first = sim.flow(f"{env.env_id}/flows/{flow}/runs")
    assert first.status_code == 200
    body = first.json()
    names = [r["name"] for r in body["value"]]
    while "nextLink" in body:
        body = sim.get(body["nextLink"], FLOW_SCOPE).json()
        names.extend(r["name"] for r in body["value"])
    assert len(names) == len(set(names)) == len(shown) > 100
    assert len(first.json()["value"]) == 50
    starts = shown.set_index("name").loc[names, "start_time"]
    assert starts.is_monotonic_decreasing
    running_run = first.json()["value"][0]
    assert running_run["properties"]["status"] == "Running"
    assert "endTime" not in running_run["properties"]
    # A run that started before the clock and ends after it is listed as Running, no outcome.
    crossing = shown[shown.end_time > now]
    assert len(crossing)
    listed = {r["name"]: r for r in first.json()["value"]}
    for name in crossing.name:
        props = listed[name]["properties"]
        assert props["status"] == "Running"
        assert not {"endTime", "code", "error"} & set(props)

    failed = sim.flow(
        f"{env.env_id}/flows/{flow}/runs",
        **{
            "$filter": (
                "status eq 'Failed' and startTime ge 2026-11-05T00:00:00Z "
                "and startTime lt 2026-11-12T00:00:00Z"
            )
        },
    ).json()
    expected = shown[
        (shown.status == "Failed")
        & (shown.start_time >= "2026-11-05T00:00:00Z")
        & (shown.start_time < "2026-11-12T00:00:00Z")
    ]
    assert sorted(r["name"] for r in failed["value"]) == sorted(expected.name)
    run = failed["value"][0]
    assert run["type"] == "Microsoft.ProcessSimple/environments/flows/runs"
    assert run["properties"]["error"] == {
        "code": "ActionFailed",
        "message": "An action failed. No dependent actions succeeded.",
    }
    assert run["properties"]["trigger"]["name"] == "Recurrence"
    assert run["properties"]["correlation"]["clientTrackingId"].endswith("CU00")
    top = sim.flow(f"{env.env_id}/flows/{flow}/runs", **{"$top": "3"}).json()
    assert [r["name"] for r in top["value"]] == names[:3]
    assert "nextLink" not in top
    bad = sim.flow(
        f"{env.env_id}/flows/{flow}/runs",
        **{"$filter": "status eq 'Failed' or status eq 'Cancelled'"},
    )
    assert bad.status_code == 400
    assert bad.json()["error"]["code"] == "InvalidQueryParameterValue"


def test_run_with_actions_and_the_documented_404s(sim: Sim) -> None:
    env = prod_env(sim)
    flow = env.flows.name[0]
    listed = sim.flow(
        f"{env.env_id}/flows/{flow}/runs", **{"$filter": "status eq 'Failed'", "$top": "1"}
    ).json()
    run = listed["value"][0]["name"]
    plain = sim.flow(f"{env.env_id}/flows/{flow}/runs/{run}").json()
    assert plain["name"] == run
    assert "actions" not in plain["properties"]
    detailed = sim.flow(
        f"{env.env_id}/flows/{flow}/runs/{run}", **{"$expand": "properties/actions"}
    ).json()
    action = detailed["properties"]["actions"]["Get_items"]
    assert action["status"] == "Failed"
    assert action["retryHistory"][0]["code"] == "TooManyRequests"

    future = env.runs[
        (env.runs.flow_name == flow) & (env.runs.start_time > pd.Timestamp(sim.tenant.now))
    ]
    assert len(future)
    hidden = sim.flow(f"{env.env_id}/flows/{flow}/runs/{future.name.iloc[0]}")
    assert hidden.status_code == 404
    assert hidden.json()["error"]["code"] == "WorkflowRunNotFound"
    other_flow = sim.flow(f"{env.env_id}/flows/{env.flows.name[1]}/runs/{run}")
    assert other_flow.status_code == 404
    assert other_flow.json()["error"]["code"] == "WorkflowRunNotFound"
    no_flow = sim.flow(f"{env.env_id}/flows/00000000-0000-0000-0000-000000000000")
    assert no_flow.status_code == 404
    assert no_flow.json()["error"]["code"] == "FlowNotFound"
    no_env = sim.flow("00000000-0000-0000-0000-000000000000/flows")
    assert no_env.status_code == 404
    assert no_env.json()["error"]["code"] == "EnvironmentNotFound"
    no_version = sim.get(
        f"{sim.base}/flow/providers/Microsoft.ProcessSimple/environments/{env.env_id}/flows",
        FLOW_SCOPE,
    )
    assert no_version.status_code == 400
    assert no_version.json()["error"]["code"] == "MissingApiVersionParameter"
    empty = sim.flow(f"{env.env_id}/flows/{env.flows.name[2]}/runs").json()
    assert empty == {"value": []}


# -- determinism, client files, logs -----------------------------------------------------

REQUESTS: list[tuple[str, dict[str, str], dict[str, str]]] = [
    (
        "plugintracelogs",
        {"prefer": 'odata.maxpagesize=50,odata.include-annotations="*"'},
        {"$orderby": "createdon desc"},
    ),
    ("sdkmessageprocessingsteps", {}, {"$expand": "plugintypeid($select=typename)"}),
    ("asyncoperations", {}, {"$filter": "statuscode eq 31", "$count": "true"}),
]


def bodies(sim: Sim) -> list[str]:
    out = []
    for table, headers, params in REQUESTS:
        out.append(sim.dv(PROD, table, headers, **params).text.replace(sim.base, "BASE"))
    env = prod_env(sim)
    flow = env.flows.name[0]
    out.append(sim.flow(f"{env.env_id}/flows").text.replace(sim.base, "BASE"))
    out.append(sim.flow(f"{env.env_id}/flows/{flow}/runs").text.replace(sim.base, "BASE"))
    out.append(bap(sim, **{"api-version": "2020-10-01"}).text.replace(sim.base, "BASE"))
    return out


def test_same_seed_gives_byte_identical_bodies_and_another_seed_differs(sim: Sim) -> None:
    mine = bodies(sim)
    assert mine == bodies(sim)
    options = SimOptions(seed=7, scale="tiny", max_requests=100_000)
    with serving(make_tenant(7), options) as other:
        assert bodies(other) == mine
    with serving(make_tenant(8), options) as other:
        assert bodies(other)[0] != mine[0]


def test_client_files_point_at_the_server_and_keep_the_secret_out_of_the_config(
    sim: Sim, tmp_path: Path
) -> None:
    sim.server.write_client_files(tmp_path / "out")
    out = (tmp_path / "out").resolve()
    assert (out / "ca.pem").read_bytes() == sim.server.ca_pem
    text = (out / "auditor.toml").read_text()
    assert text.startswith(
        f"# Written by `auditor sim serve`: the simulated tenant at {sim.base}.\n"
    )
    config = tomllib.loads(text)
    assert config == {
        "tenant_id": TENANT_ID,
        "environments": "all",
        "auth": {"method": "client-secret", "client_id": CLIENT_ID, "authority_host": sim.base},
        "apis": {"admin_url": f"{sim.base}/bap", "flow_url": f"{sim.base}/flow"},
        "http": {
            "ca_bundle": str(out / "ca.pem"),
            # The client paces itself within the budget this simulator enforces.
            "requests_per_window": sim.server.options.max_requests,
            "request_window_seconds": sim.server.options.window_s,
        },
    }
    assert CLIENT_SECRET not in text
    assert stat.S_IMODE(os.stat(out / "env").st_mode) == 0o600
    variables = '"$AZURE_CLIENT_SECRET" "$SSL_CERT_FILE"'
    script = f'set -a; . "{out / "env"}"; set +a; printf "%s\\n%s" {variables}'
    shown = subprocess.run(
        ["sh", "-c", script],
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": os.environ["PATH"]},
    )
    assert shown.stdout.split("\n") == [CLIENT_SECRET, str(out / "ca.pem")]


def test_no_token_or_secret_reaches_the_logs(sim: Sim, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    sim.dv(PROD, "organizations")
    sim.flow(f"{prod_env(sim).env_id}/flows")
    sim.request_token(FLOW_SCOPE, secret="wrong")
    assert sim.server.issued_tokens
    for token in sim.server.issued_tokens:
        assert token not in caplog.text
    assert CLIENT_SECRET not in caplog.text


def test_each_server_has_its_own_ca_and_a_free_port() -> None:
    tenant = make_tenant()
    with SimServer(tenant, SimOptions()) as one, SimServer(tenant, SimOptions()) as two:
        assert one.base_url != two.base_url
        assert one.ca_pem != two.ca_pem
        assert one.base_url.startswith("https://127.0.0.1:")
        # A client trusting the other server's CA cannot connect.
        from .conftest import trust

        with httpx.Client(verify=trust(two.ca_pem)) as client, pytest.raises(httpx.ConnectError):
            client.get(f"{one.base_url}/{TENANT_ID}/v2.0/.well-known/openid-configuration")
    assert np.all([one._thread is None, two._thread is None])


def test_hostile_text_is_served_verbatim_as_json(sim: Sim) -> None:
    names = [r["name"] for r in sim.dv(PROD, "sdkmessageprocessingsteps").json()["value"]]
    assert any("<script>" in n for n in names)
    assert any(n.split(": ", 1)[1].startswith("=HYPERLINK") for n in names)
    raw = sim.dv(PROD, "sdkmessageprocessingsteps").content
    assert "Prüfung".encode() in raw  # UTF-8, not \u escapes
    assert json.loads(raw)


# -- the generated tenant and the collectors' own queries --------------------------------

QUERIES = Path(__file__).resolve().parents[2] / "queries"


def query_file(name: str) -> str:
    """A query file of `queries/` as one request line: path and query, comments dropped."""
    lines = [ln.strip() for ln in (QUERIES / name).read_text().splitlines()]
    text = "".join(ln for ln in lines if ln and not ln.startswith("#"))
    assert text.startswith("GET ")
    return text[4:]


@pytest.fixture(scope="module")
def generated() -> Iterator[Sim]:
    """The scenario generator's tiny tenant, served with its own action renderer."""
    scenario = pytest.importorskip("auditor.sim.scenario")
    tenant = scenario.generate(7, "tiny")
    server = SimServer(tenant, SimOptions(seed=7, scale="tiny", max_requests=100_000))
    server.start()
    from .conftest import trust

    ctx = trust(server.ca_pem)
    try:
        with httpx.Client(verify=ctx, timeout=30.0) as http:
            yield Sim(server, http, ctx)
    finally:
        server.stop()


def stamp(value: Any) -> str:
    return pd.Timestamp(value).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.mark.parametrize("name", sorted(p.name for p in (QUERIES / "dataverse").glob("*.odata")))
def test_every_collector_query_runs_against_the_generated_tenant(generated: Sim, name: str) -> None:
    tenant = generated.tenant
    request = query_file(f"dataverse/{name}").format(
        start=stamp(tenant.start), end=stamp(tenant.end)
    )
    headers = {
        "prefer": (
            "odata.maxpagesize=100,"
            'odata.include-annotations="OData.Community.Display.V1.FormattedValue"'
        )
    }
    envs = bap(generated, **{"api-version": "2020-10-01"}).json()["value"]
    for env_item in envs:
        linked = env_item["properties"].get("linkedEnvironmentMetadata", {})
        if "instanceUrl" not in linked:
            continue
        slug = linked["domainName"]
        url: str | None = f"{linked['instanceUrl']}api/data/v9.2/{request}"
        rows: list[dict[str, Any]] = []
        while url:
            answer = generated.dv_url(url, slug, headers)
            assert answer.status_code == 200, answer.text
            rows.extend(answer.json()["value"])
            url = answer.json().get("@odata.nextLink")
        entity_set = request.split("?")[0]
        env = tenant.environment(slug)
        assert env is not None
        frame = env.tables[entity_set]
        key = frame.columns[0]
        assert len({r[key] for r in rows}) == len(rows)
        if entity_set in ("plugintracelogs", "flowruns"):
            assert len(rows) == int((frame.createdon <= pd.Timestamp(tenant.now)).sum())
        if entity_set == "sdkmessageprocessingsteps":
            assert len(rows) == int((frame.customizationlevel == 1).sum())
            assert all("sdkmessageid" in r and "plugintypeid" in r for r in rows)


def test_flow_queries_and_action_results_of_the_generated_tenant(generated: Sim) -> None:
    tenant = generated.tenant
    start, end = stamp(tenant.start), stamp(tenant.end)
    checked = 0
    for env in tenant.environments:
        listed = generated.flow(f"{env.env_id}/flows").json()["value"]
        assert sorted(f["name"] for f in listed) == sorted(env.flows.name)
        for flow in listed:
            path = query_file("flow_api/runs.odata").format(
                environment=env.env_id, flow=flow["name"], start=start, end=end
            )
            answer = generated.get(f"{generated.base}/flow/{path}", FLOW_SCOPE)
            assert answer.status_code == 200, answer.text
            runs = answer.json()["value"]
            expected = env.runs[
                (env.runs.flow_name == flow["name"])
                & (env.runs.start_time <= pd.Timestamp(tenant.now))
            ]
            if "nextLink" not in answer.json():
                assert len(runs) == len(expected)
            for run in runs[:2]:
                detail_path = query_file("flow_api/run_actions.odata").format(
                    environment=env.env_id, flow=flow["name"], run=run["name"]
                )
                detail = generated.get(f"{generated.base}/flow/{detail_path}", FLOW_SCOPE)
                assert detail.status_code == 200, detail.text
                actions = detail.json()["properties"]["actions"]
                assert actions
                assert all("status" in a for a in actions.values())
                if detail.json()["properties"]["status"] != "Running":
                    assert all(a["status"] != "Running" for a in actions.values())
                checked += 1
    assert checked > 10


def test_denied_flow_runs_answer_403_and_flows_stay_readable(sim: Sim) -> None:
    env = sim.tenant.environment(DEV)
    assert env is not None
    flow = env.flows.name[0]
    assert sim.flow(f"{env.env_id}/flows").status_code == 200
    runs = sim.flow(f"{env.env_id}/flows/{flow}/runs")
    assert runs.status_code == 403
    assert runs.json()["error"]["code"] == "Forbidden"


def test_forged_skiptoken_and_writes_are_refused(sim: Sim) -> None:
    forged = sim.dv(PROD, "plugintracelogs", None, **{"$skiptoken": "page2"})
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "0x80060888"
    url = f"{sim.base}/dv/{PROD}/api/data/v9.2/plugintracelogs"
    token = sim.token(sim.dv_scope(PROD))
    post = sim.http.post(url, json={}, headers={"authorization": f"Bearer {token}"})
    assert post.status_code == 405


def test_paging_a_query_evaluates_it_once(sim: Sim) -> None:
    assert sim.server.app is not None
    store = sim.server.app.store(PROD)
    before = store.index_builds
    params = {"$filter": "depth ge 1", "$orderby": "performanceexecutionduration desc"}
    _, pages = sim.page_all(PROD, "plugintracelogs", 100, **params)
    assert pages > 5
    assert store.index_builds == before + 1


def test_responses_carry_the_simulated_clock_as_date(tmp_path: Path) -> None:
    """Clients take a scan's end from the tenant's Date header: it must be the sim's clock."""
    from auditor.sim.scenario import generate

    tenant = generate(7, "tiny")
    with SimServer(tenant, SimOptions(seed=7, scale="tiny")) as server:
        ctx = ssl.create_default_context(cadata=server.ca_pem.decode())
        with httpx.Client(verify=ctx) as client:
            answer = client.get(f"{server.base_url}/bap/providers/x")
        assert email.utils.parsedate_to_datetime(answer.headers["date"]) == tenant.now
        assert len(answer.headers.get_list("date")) == 1


def test_the_maker_route_acts_for_the_caller_and_an_app_owns_no_flow(sim: Sim) -> None:
    # The maker route lists the caller's own flows; an app-only token made none of them, so
    # it sees none, solution flows or not, and another maker's runs are refused.
    env = prod_env(sim)
    flow = env.flows.name[0]
    for include in ("", "includeSolutionCloudFlows"):
        listed = sim.flow(f"{env.env_id}/flows", route="maker", include=include)
        assert listed.status_code == 200
        assert listed.json()["value"] == []
    runs = sim.flow(f"{env.env_id}/flows/{flow}/runs", route="maker")
    assert runs.status_code == 403
    assert runs.json()["error"]["code"] == "Forbidden"
    assert sim.flow(f"{env.env_id}/flows/{flow}/runs").status_code == 200


def test_the_admin_list_holds_solution_flows_only_when_asked(sim: Sim) -> None:
    env = prod_env(sim)
    everything = sim.flow(f"{env.env_id}/flows").json()["value"]
    assert sorted(f["name"] for f in everything) == sorted(env.flows.name)
    plain = sim.flow(f"{env.env_id}/flows", include="").json()["value"]
    outside = env.flows[env.flows.workflowid.isna()]
    assert 0 < len(outside) < len(env.flows)
    assert sorted(f["name"] for f in plain) == sorted(outside.name)
    assert not any("workflowEntityId" in f["properties"] for f in plain)


def test_an_app_not_registered_as_management_app_is_refused_by_admin_routes(sim: Sim) -> None:
    assert sim.server.app is not None
    app = sim.server.app
    env = prod_env(sim)
    registered = app.options
    app.options = dataclasses.replace(registered, management_app=False)
    try:
        bap = sim.get(
            f"{sim.base}/bap/providers/Microsoft.BusinessAppPlatform/scopes/admin/environments",
            ADMIN_SCOPE,
            None,
            **{"api-version": "2020-10-01"},
        )
        flows = sim.flow(f"{env.env_id}/flows")
        dataverse = sim.dv(PROD, "organizations")
    finally:
        app.options = registered
    for answer in (bap, flows):
        assert answer.status_code == 403
        error = answer.json()["error"]
        assert error["code"] == "Forbidden"
        assert "does not have permission to access the path" in error["message"]
        assert sim.tenant.client_id in error["message"]
    # Dataverse does not care: its access is the application user's security role.
    assert dataverse.status_code == 200


def test_repetition_count_only_when_included(sim: Sim) -> None:
    env = prod_env(sim)
    flow = env.flows.name[0]
    run = sim.flow(f"{env.env_id}/flows/{flow}/runs").json()["value"][0]["name"]
    path = f"{env.env_id}/flows/{flow}/runs/{run}"
    assert sim.server.app is not None
    app = sim.server.app
    renderer = app._render_actions
    loop = {"Apply_to_each": {"status": "Succeeded", "type": "Foreach", "repetitionCount": 3}}
    app._render_actions = lambda *_: loop
    try:
        plain = sim.flow(path, **{"$expand": "properties/actions"}).json()
        counted = sim.flow(
            path, **{"$expand": "properties/actions", "include": "repetitionCount"}
        ).json()
    finally:
        app._render_actions = renderer
    assert plain["properties"]["actions"]["Apply_to_each"] == {
        "status": "Succeeded",
        "type": "Foreach",
    }
    assert counted["properties"]["actions"]["Apply_to_each"]["repetitionCount"] == 3


def test_dataverse_sets_an_affinity_cookie_and_counts_requests_that_send_it_back() -> None:
    """Dataverse routes a client that keeps its affinity cookie to one web server; the
    simulator counts such requests, so a collector that kept cookies would be seen."""
    with serving(make_tenant(), SimOptions(seed=7, scale="tiny", max_requests=100_000)) as sim:
        first = sim.dv(PROD, "organizations")
        assert first.status_code == 200
        assert first.headers["set-cookie"].startswith("ARRAffinity=")
        assert sim.server.stats.affinity_cookies == 0
        flows = sim.flow(f"{sim.server.tenant.environments[0].env_id}/flows")
        assert "set-cookie" not in flows.headers  # a Dataverse cookie, not the flow API's
        sim.dv(PROD, "organizations")  # httpx.Client keeps cookies: this one sends it back
        assert sim.server.stats.affinity_cookies == 1
