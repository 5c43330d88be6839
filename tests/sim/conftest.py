"""A small hand-made tenant and clients for testing the simulator's server.

The tenant follows `auditor.sim.model` (column names, dtypes, `_sim_` columns) without the
scenario generator, so server tests do not depend on what the generator happens to produce,
and expected answers can be computed here with plain pandas.
"""

from __future__ import annotations

import json
import ssl
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest

from auditor.sim.model import SimEnvironment, SimOptions, SimTenant
from auditor.sim.server import SimServer

START = datetime(2026, 11, 1, tzinfo=UTC)
NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
END = datetime(2026, 11, 16, tzinfo=UTC)
TENANT_ID = "9a1f3c2e-4b5d-4e6f-8a7b-0c1d2e3f4a5b"
CLIENT_ID = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9"
# Quotes, a dollar and a space: the env file must quote it for the shell.
CLIENT_SECRET = "s3cr3t 'q\"$HOME~x"
FLOW_SCOPE = "https://service.flow.microsoft.com/.default"
ADMIN_SCOPE = "https://service.powerapps.com/.default"
FAILED_RUN = "An action failed. No dependent actions succeeded."
HOSTILE = ('=HYPERLINK("http://x","y")', "<script>alert(1)</script>", "Prüfung – Überweisung ✓")


def _guids(rng: np.random.Generator, n: int) -> list[str]:
    return [str(uuid.UUID(bytes=rng.bytes(16), version=4)) for _ in range(n)]


def _times(rng: np.random.Generator, n: int, start: datetime, end: datetime) -> pd.Series:
    span = int((end - start).total_seconds())
    seconds = np.sort(rng.integers(0, span, n))
    return pd.Series(pd.Timestamp(start) + pd.to_timedelta(seconds, unit="s")).astype(
        "datetime64[us, UTC]"
    )


def _steps_tables(rng: np.random.Generator) -> dict[str, pd.DataFrame]:
    messages = pd.DataFrame(
        {
            "sdkmessageid": [
                "9ebdbb1b-ea3e-db11-86a7-000a3a5473e8",
                "20bebb1b-ea3e-db11-86a7-000a3a5473e8",
            ],
            "name": ["Create", "Update"],
        }
    )
    filters = pd.DataFrame(
        {
            "sdkmessagefilterid": _guids(rng, 3),
            "_sdkmessageid_value": [
                messages.sdkmessageid[0],
                messages.sdkmessageid[1],
                messages.sdkmessageid[1],
            ],
            "primaryobjecttypecode": ["account", "account", "contact"],
        }
    )
    assemblies = pd.DataFrame(
        {
            "pluginassemblyid": _guids(rng, 2),
            "name": ["Contoso.Plugins", "Fabrikam.Sync"],
            "version": ["1.0.0.0", "2.3.0.0"],
            "isolationmode": pd.array([2, 2], dtype="Int64"),
            "sourcetype": pd.array([0, 4], dtype="Int64"),
            "ismanaged": [False, True],
        }
    )
    types = pd.DataFrame(
        {
            "plugintypeid": _guids(rng, 3),
            "typename": [
                "Contoso.Plugins.AccountSync",
                "Contoso.Plugins.Audit",
                "Fabrikam.Sync.ContactPush",
            ],
            "name": ["AccountSync", "Audit", "ContactPush"],
            "assemblyname": ["Contoso.Plugins", "Contoso.Plugins", "Fabrikam.Sync"],
            "isworkflowactivity": [False, False, False],
            "_pluginassemblyid_value": [
                assemblies.pluginassemblyid[0],
                assemblies.pluginassemblyid[0],
                assemblies.pluginassemblyid[1],
            ],
        }
    )
    n = 12
    type_index = rng.integers(0, 3, n)
    filter_index = rng.integers(0, 3, n)
    handler = [types.plugintypeid[i] for i in type_index]
    handler[5] = None  # a webhook-like step without a plug-in type
    filter_ids: list[str | None] = [filters.sdkmessagefilterid[i] for i in filter_index]
    filter_ids[7] = None  # a global message
    steps = pd.DataFrame(
        {
            "sdkmessageprocessingstepid": _guids(rng, n),
            "name": [f"Step {i}: {HOSTILE[i % 3]}" for i in range(n)],
            "stage": pd.array(rng.choice([10, 20, 40], n), dtype="Int64"),
            "mode": pd.array(rng.integers(0, 2, n), dtype="Int64"),
            "rank": pd.array(rng.integers(1, 4, n), dtype="Int64"),
            "filteringattributes": [None if i % 3 else "name,telephone1" for i in range(n)],
            "statecode": pd.array([0 if i % 4 else 1 for i in range(n)], dtype="Int64"),
            "statuscode": pd.array([1 if i % 4 else 2 for i in range(n)], dtype="Int64"),
            "customizationlevel": pd.array([1 if i % 5 else 0 for i in range(n)], dtype="Int64"),
            "ismanaged": [bool(i % 2) for i in range(n)],
            "modifiedon": _times(rng, n, START, NOW),
            "_sdkmessageid_value": [filters._sdkmessageid_value[i] for i in filter_index],
            "_sdkmessagefilterid_value": filter_ids,
            "_plugintypeid_value": handler,
            "_eventhandler_value": handler,
            "_sim_expected_noise": rng.random(n),
        }
    )
    return {
        "sdkmessages": messages,
        "sdkmessagefilters": filters,
        "pluginassemblies": assemblies,
        "plugintypes": types,
        "sdkmessageprocessingsteps": steps,
    }


def _traces(rng: np.random.Generator, n: int, step_ids: list[str]) -> pd.DataFrame:
    typenames = np.array(
        [
            "Contoso.Plugins.AccountSync",
            "contoso.plugins.Audit",
            "Fabrikam.Sync.ContactPush",
            *HOSTILE,
        ],
        dtype=object,
    )
    duration = pd.array(rng.integers(1, 4000, n), dtype="Int64")
    duration[rng.random(n) < 0.05] = pd.NA
    failed = rng.random(n) < 0.2
    exceptions = [
        "Exception type: System.ServiceModel.FaultException" if f else None for f in failed
    ]
    return pd.DataFrame(
        {
            "plugintracelogid": _guids(rng, n),
            "typename": typenames[rng.integers(0, len(typenames), n)],
            "messagename": rng.choice(["Create", "Update", "Delete"], n).astype(object),
            "primaryentity": rng.choice(["account", "contact"], n).astype(object),
            "mode": pd.array(rng.integers(0, 2, n), dtype="Int64"),
            "operationtype": pd.array(rng.integers(0, 3, n), dtype="Int64"),
            "depth": pd.array(rng.integers(1, 4, n), dtype="Int64"),
            "correlationid": np.array(_guids(rng, n // 3), dtype=object)[
                rng.integers(0, n // 3, n)
            ],
            "pluginstepid": np.array(step_ids, dtype=object)[rng.integers(0, len(step_ids), n)],
            "performanceexecutionduration": duration,
            "exceptiondetails": exceptions,
            "issystemcreated": rng.random(n) < 0.1,
            "createdon": _times(rng, n, START, END),
            "_sim_slow": rng.random(n) < 0.1,
        }
    )


def _async_jobs(rng: np.random.Generator, n: int, step_ids: list[str]) -> pd.DataFrame:
    created = _times(rng, n, START, END)
    status = rng.choice([30, 31, 32, 10, 0], n)
    state = np.select([status >= 30, status == 10], [3, 1], 0)
    return pd.DataFrame(
        {
            "asyncoperationid": _guids(rng, n),
            "name": [f"Job {i}" for i in range(n)],
            "operationtype": pd.array(rng.choice([1, 10, 79], n), dtype="Int64"),
            "statecode": pd.array(state, dtype="Int64"),
            "statuscode": pd.array(status, dtype="Int64"),
            "retrycount": pd.array(rng.integers(0, 5, n), dtype="Int64"),
            "executiontimespan": rng.random(n) * 10,
            "createdon": created,
            "startedon": created + pd.to_timedelta(rng.integers(0, 600, n), unit="s"),
            "_owningextensionid_value": np.array(step_ids, dtype=object)[
                rng.integers(0, len(step_ids), n)
            ],
        }
    )


def _flows_and_runs(rng: np.random.Generator, env_id: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    names = _guids(rng, 3)
    definition = {
        "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/2016-06-01/workflowdefinition.json#",
        "triggers": {
            "Recurrence": {"type": "Recurrence", "recurrence": {"frequency": "Hour", "interval": 1}}
        },
        "actions": {
            "Get_items": {
                "type": "OpenApiConnection",
                "inputs": {
                    "host": {
                        "apiId": "/providers/Microsoft.PowerApps/apis/shared_sharepointonline",
                        "operationId": "GetItems",
                    }
                },
            }
        },
    }
    refs = {
        "shared_sharepointonline": {
            "connectionName": "shared-sharepointonl-1",
            "source": "Embedded",
            "id": "/providers/Microsoft.PowerApps/apis/shared_sharepointonline",
            "tier": "NotSpecified",
        }
    }
    flows = pd.DataFrame(
        {
            "name": names,
            "display_name": ["Nightly sync", HOSTILE[0], HOSTILE[2]],
            "state": ["Started", "Stopped", "Suspended"],
            "created_time": _times(rng, 3, START - timedelta(days=90), START),
            "last_modified_time": _times(rng, 3, START - timedelta(days=10), START),
            "workflowid": [_guids(rng, 1)[0], None, None],
            "definition": [json.dumps(definition)] * 3,
            "connection_references": [json.dumps(refs)] * 3,
            "_sim_kind": ["recurrence"] * 3,
        }
    )
    counts = [130, 7, 0]
    frames = []
    for flow, count in zip(names, counts, strict=True):
        if not count:
            continue
        start = _times(rng, count, START, END)
        end = start + pd.to_timedelta(rng.integers(1, 600, count), unit="s")
        status = rng.choice(
            ["Succeeded", "Failed", "Cancelled"], count, p=[0.7, 0.25, 0.05]
        ).astype(object)
        frame = pd.DataFrame(
            {
                "flow_name": flow,
                "name": [
                    f"08584{rng.integers(10**14, 10**15)}CU{rng.integers(10, 99)}"
                    for _ in range(count)
                ],
                "start_time": start,
                "end_time": end,
                "status": status,
                "code": np.where(status == "Failed", "ActionFailed", status),
                "error_code": [("ActionFailed" if s == "Failed" else None) for s in status],
                "error_message": [(FAILED_RUN if s == "Failed" else None) for s in status],
                "trigger_name": "Recurrence",
                "client_tracking_id": [
                    f"08584{rng.integers(10**14, 10**15)}CU00" for _ in range(count)
                ],
                "_sim_outcome": rng.integers(0, 3, count),
            }
        )
        frames.append(frame)
    runs = pd.concat(frames, ignore_index=True)
    # One run still going at `now`: no end time yet.
    runs.loc[0, "start_time"] = pd.Timestamp(NOW - timedelta(minutes=5))
    runs.loc[0, "end_time"] = pd.NaT
    runs.loc[0, "status"] = "Running"
    runs.loc[0, ["code", "error_code", "error_message"]] = None
    # One run that started before `now` and fails after it: Running until then.
    runs.loc[1, "start_time"] = pd.Timestamp(NOW - timedelta(minutes=2))
    runs.loc[1, "end_time"] = pd.Timestamp(NOW + timedelta(minutes=5))
    runs.loc[1, ["status", "code", "error_code"]] = ["Failed", "ActionFailed", "ActionFailed"]
    runs.loc[1, "error_message"] = "An action failed. No dependent actions succeeded."
    return flows, runs


def make_tenant(seed: int = 7) -> SimTenant:
    """The hand-made tenant: two Dataverse environments and one without Dataverse."""
    rng = np.random.default_rng(seed)
    prod_id, dev_id = _guids(rng, 2)
    environments = []
    for env_id, slug, name, sku, n_traces in (
        (prod_id, "contoso-prod", "Contoso – Production", "Production", 1200),
        (dev_id, "contoso-dev", HOSTILE[1], "Sandbox", 40),
    ):
        tables = _steps_tables(rng)
        step_ids = list(tables["sdkmessageprocessingsteps"].sdkmessageprocessingstepid)
        tables["plugintracelogs"] = _traces(rng, n_traces, step_ids)
        tables["asyncoperations"] = _async_jobs(rng, 300, step_ids)
        tables["organizations"] = pd.DataFrame(
            {
                "organizationid": _guids(rng, 1),
                "name": [slug],
                "plugintracelogsetting": pd.array([2 if sku == "Production" else 1], dtype="Int64"),
                "flowruntimetoliveinseconds": pd.array([2419200], dtype="Int64"),
            }
        )
        flows, runs = _flows_and_runs(rng, env_id)
        tables["workflows"] = pd.DataFrame(
            {
                "workflowid": [flows.workflowid[0]],
                "name": [flows.display_name[0]],
                "category": pd.array([5], dtype="Int64"),
                "type": pd.array([1], dtype="Int64"),
                "statecode": pd.array([1], dtype="Int64"),
                "statuscode": pd.array([2], dtype="Int64"),
                "clientdata": [
                    json.dumps({"properties": {"definition": json.loads(flows.definition[0])}})
                ],
            }
        )
        environments.append(
            SimEnvironment(env_id, name, sku, slug, True, tables=tables, flows=flows, runs=runs)
        )
    environments.append(
        SimEnvironment(
            f"Default-{TENANT_ID}", "Contoso (default)", "Default", "contoso-default", False
        )
    )
    return SimTenant(
        tenant_id=TENANT_ID,
        client_id=CLIENT_ID,
        client_secret=CLIENT_SECRET,
        seed=seed,
        scale="tiny",
        start=START,
        now=NOW,
        end=END,
        environments=environments,
    )


def stub_actions(
    tenant: SimTenant, env: SimEnvironment, flow_row: pd.Series, run_row: pd.Series
) -> Mapping[str, Any]:
    """A stand-in for `scenario.render_actions`: one action mirroring the run's status."""
    return {
        "Get_items": {
            "startTime": run_row["start_time"].strftime("%Y-%m-%dT%H:%M:%S.0000000Z"),
            "status": "Failed" if run_row["status"] == "Failed" else "Succeeded",
            "code": "NotFound" if run_row["status"] == "Failed" else "OK",
            "retryHistory": [{"code": "TooManyRequests", "clientRequestId": str(flow_row["name"])}],
        }
    }


@dataclass
class Sim:
    """A running server with an HTTP client that trusts only its CA, and token helpers."""

    server: SimServer
    http: httpx.Client
    ctx: ssl.SSLContext
    _tokens: dict[str, str] = field(default_factory=dict)

    @property
    def base(self) -> str:
        return self.server.base_url

    @property
    def tenant(self) -> SimTenant:
        return self.server.tenant

    def dv_scope(self, slug: str) -> str:
        return f"{self.base}/dv/{slug}/.default"

    def request_token(
        self, scope: str, secret: str | None = None, client_id: str | None = None
    ) -> httpx.Response:
        """POST the client-credentials grant (the tenant's own credentials unless given)."""
        return self.http.post(
            f"{self.base}/{self.tenant.tenant_id}/oauth2/v2.0/token",
            data={
                "grant_type": "client_credentials",
                "client_id": client_id or self.tenant.client_id,
                "client_secret": self.tenant.client_secret if secret is None else secret,
                "scope": scope,
            },
        )

    def token(self, scope: str) -> str:
        if scope not in self._tokens:
            answer = self.request_token(scope)
            assert answer.status_code == 200, answer.text
            self._tokens[scope] = answer.json()["access_token"]
        return self._tokens[scope]

    def get(
        self, url: str, scope: str, headers: Mapping[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        sent = {"authorization": f"Bearer {self.token(scope)}", **(headers or {})}
        return self.http.get(url, headers=sent, params=params or None)

    def dv(
        self, slug: str, entity_set: str, headers: Mapping[str, str] | None = None, **params: Any
    ) -> httpx.Response:
        return self.get(
            f"{self.base}/dv/{slug}/api/data/v9.2/{entity_set}",
            self.dv_scope(slug),
            headers,
            **params,
        )

    def dv_url(
        self, url: str, slug: str, headers: Mapping[str, str] | None = None
    ) -> httpx.Response:
        return self.get(url, self.dv_scope(slug), headers)

    def flow(self, path: str, *, route: str = "admin", **params: Any) -> httpx.Response:
        """GET the flow API at `{env}/flows...` through the admin route (the list under
        `/v2/flows`, solution flows included) or, with `route="maker"`, the maker route."""
        params.setdefault("api-version", "2016-11-01")
        root = f"{self.base}/flow/providers/Microsoft.ProcessSimple"
        if route == "maker":
            return self.get(f"{root}/environments/{path}", FLOW_SCOPE, None, **params)
        env, _, rest = path.partition("/")
        if rest == "flows":
            rest = "v2/flows"
            params.setdefault("include", "includeSolutionCloudFlows")
        return self.get(
            f"{root}/scopes/admin/environments/{env}/{rest}", FLOW_SCOPE, None, **params
        )

    def page_all(
        self, slug: str, entity_set: str, page_size: int, **params: Any
    ) -> tuple[list[dict[str, Any]], int]:
        """Follow nextLink to the end; (all rows, number of pages)."""
        headers = {"prefer": f"odata.maxpagesize={page_size}"}
        answer = self.dv(slug, entity_set, headers, **params)
        rows: list[dict[str, Any]] = []
        pages = 0
        while True:
            assert answer.status_code == 200, answer.text
            body = answer.json()
            rows.extend(body["value"])
            pages += 1
            link = body.get("@odata.nextLink")
            if link is None:
                return rows, pages
            assert len(body["value"]) == page_size
            answer = self.dv_url(link, slug, headers)


def trust(ca_pem: bytes) -> ssl.SSLContext:
    """A context that trusts the simulator's CA only (not SSL_CERT_FILE of the machine)."""
    return ssl.create_default_context(cadata=ca_pem.decode("ascii"))


@contextmanager
def serving(tenant: SimTenant, options: SimOptions) -> Iterator[Sim]:
    """Start a server and a client; stop both afterwards."""
    server = SimServer(tenant, options, render_actions=stub_actions)
    server.start()
    ctx = trust(server.ca_pem)
    try:
        with httpx.Client(verify=ctx, timeout=30.0) as http:
            yield Sim(server, http, ctx)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def sim() -> Iterator[Sim]:
    """One fault-free server per test module, over the hand-made tenant."""
    with serving(make_tenant(), SimOptions(seed=7, scale="tiny", max_requests=100_000)) as running:
        yield running
