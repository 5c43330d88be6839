"""The scenario generator: determinism, the query contract, consistency between parts."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any
from uuid import UUID

import numpy as np
import pandas as pd
import pytest

from auditor.sim import odata
from auditor.sim.apis.common import Context, Limits, stamp7
from auditor.sim.apis.flow_runs import FlowRuns
from auditor.sim.model import NAVIGATIONS, PRIMARY_KEYS, SimEnvironment, SimOptions, SimTenant
from auditor.sim.names import HOSTILE, guid_list, guids
from auditor.sim.scenario import generate, render_actions

QUERIES = Path(__file__).resolve().parents[2] / "queries" / "dataverse"
ISO7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
WORKFLOW_STATUS = {
    "NotSpecified", "Paused", "Running", "Waiting", "Succeeded", "Skipped", "Suspended",
    "Cancelled", "Failed", "Faulted", "TimedOut", "Aborted", "Ignored",
}  # fmt: skip
JOB_STATES = {(0, 0), (0, 10), (1, 10), (2, 20), (3, 30), (3, 31), (3, 32)}
EFFECT_TYPES = {"openapiconnection", "openapiconnectionwebhook", "http", "workflow", "response"}


@pytest.fixture(scope="module")
def tiny() -> SimTenant:
    return generate(7, "tiny")


@pytest.fixture(scope="module")
def small() -> SimTenant:
    return generate(7, "small")


def _dv_envs(tenant: SimTenant) -> list[SimEnvironment]:
    return [e for e in tenant.environments if e.has_dataverse]


def _env(tenant: SimTenant, name: str) -> SimEnvironment:
    return next(e for e in tenant.environments if e.display_name == name)


def _ns(series: pd.Series) -> Any:
    return series.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _walk(actions: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for name, action in actions.items():
        yield name, action
        for key in ("actions",):
            if isinstance(action.get(key), Mapping):
                yield from _walk(action[key])
        for key in ("else", "default"):
            if isinstance(action.get(key), Mapping):
                yield from _walk(action[key].get("actions") or {})
        for case in (action.get("cases") or {}).values():
            yield from _walk(case.get("actions") or {})


def _is_effect(action: Mapping[str, Any]) -> bool:
    kind = str(action.get("type", "")).lower()
    inputs = action.get("inputs") or {}
    if kind not in EFFECT_TYPES:
        return False
    if kind == "http":
        return str(inputs.get("method", "GET")).upper() != "GET"
    if kind.startswith("openapi"):
        op = str(inputs["host"]["operationId"])
        return not op.startswith(("Get", "List", "Search", "Retrieve", "Read"))
    return True


# Determinism and speed ----------------------------------------------------------------------


def test_same_seed_gives_identical_frames(tiny: SimTenant) -> None:
    again = generate(7, "tiny")
    assert (again.tenant_id, again.client_id, again.client_secret) == (
        tiny.tenant_id, tiny.client_id, tiny.client_secret,
    )  # fmt: skip
    for a, b in zip(tiny.environments, again.environments, strict=True):
        assert a.env_id == b.env_id
        assert list(a.tables) == list(b.tables)
        for name, frame in a.tables.items():
            assert frame.equals(b.tables[name]), name
        assert a.flows.equals(b.flows)
        assert a.runs.equals(b.runs)


def test_different_seed_gives_a_different_tenant(tiny: SimTenant) -> None:
    other = generate(8, "tiny")
    assert other.tenant_id != tiny.tenant_id
    a, b = tiny.environments[0], other.environments[0]
    assert set(a.flows["name"]).isdisjoint(set(b.flows["name"]))
    counts_a = [len(e.runs) for e in tiny.environments]
    counts_b = [len(e.runs) for e in other.environments]
    assert counts_a != counts_b


def test_scales_differ_and_unknown_scale_is_refused(tiny: SimTenant) -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        generate(7, "huge")
    assert len(tiny.environments) == 3


def test_tiny_generates_quickly() -> None:
    began = time.perf_counter()
    generate(11, "tiny")
    assert time.perf_counter() - began < 3.0  # target under 1 s; generous for slow CI


def test_clock_window(tiny: SimTenant) -> None:
    assert tiny.now.isoformat() == "2026-11-15T12:00:00+00:00"
    assert tiny.now - tiny.start == pd.Timedelta(days=7) - pd.Timedelta(hours=1)
    assert tiny.end - tiny.now == pd.Timedelta(hours=12)
    for env in _dv_envs(tiny):
        traces = _ns(env.tables["plugintracelogs"]["createdon"])
        assert traces.min() >= pd.Timestamp(tiny.start).value
        assert traces.max() <= pd.Timestamp(tiny.end).value


# The query contract ----------------------------------------------------------------------------


def _query_columns() -> dict[str, set[str]]:
    """Columns each query file selects, filters or orders on, per entity set."""
    out: dict[str, set[str]] = {}
    navs = {nav: n.target_entity_set for per in NAVIGATIONS.values() for nav, n in per.items()}
    for path in sorted(QUERIES.glob("*.odata")):
        text = "\n".join(
            line.strip() for line in path.read_text().splitlines() if not line.startswith("#")
        )
        entity = re.search(r"GET (\w+)", text)
        assert entity is not None
        top = entity.group(1)
        select = re.search(r"[?&]\$select=([\w,]+)", text)
        assert select is not None, path
        out.setdefault(top, set()).update(select.group(1).split(","))
        for nav, cols in re.findall(r"(\w+)\(\$select=([\w,]+)", text):
            out.setdefault(navs[nav], set()).update(cols.split(","))
        for clause in re.findall(r"\$(?:filter|orderby)=([^\n]+)", text):
            for word in re.findall(r"\b([a-z_][a-z_0-9]*)\b", clause):
                if word not in {
                    "eq",
                    "ne",
                    "gt",
                    "ge",
                    "lt",
                    "le",
                    "and",
                    "or",
                    "not",
                    "asc",
                    "desc",
                    "null",
                    "start",
                    "end",
                }:
                    out[top].add(word)
    return out


def test_every_query_column_is_present(small: SimTenant) -> None:
    wanted = _query_columns()
    assert {"plugintracelogs", "sdkmessages", "pluginassemblies"} <= set(wanted)
    for env in _dv_envs(small):
        for entity_set, cols in wanted.items():
            frame = env.tables[entity_set]
            missing = cols - set(frame.columns)
            assert not missing, (env.display_name, entity_set, missing)


def test_dtypes_follow_the_model(tiny: SimTenant) -> None:
    allowed = {"object", "Int64", "Float64", "boolean", "datetime64[ns, UTC]"}
    for env in _dv_envs(tiny):
        for name, frame in env.tables.items():
            for col in frame.columns:
                assert str(frame[col].dtype) in allowed, (name, col, frame[col].dtype)
            key = PRIMARY_KEYS[name]
            assert frame[key].is_unique, name
            ids = frame[key].dropna()
            assert ids.str.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}").all(), name
        # Dataverse keeps whole seconds.
        for col in ("createdon", "startedon", "completedon"):
            values = _ns(env.tables["asyncoperations"][col].dropna())
            assert (values % 1_000_000_000 == 0).all(), col
    runs = tiny.environments[0].runs
    assert str(runs["start_time"].dtype) == "datetime64[ns, UTC]"
    assert (_ns(runs["start_time"]) % 100 == 0).all()  # 100 ns ticks, as the flow API writes


# Referential integrity and consistency ---------------------------------------------------------


def test_plugin_rows_point_at_existing_steps(small: SimTenant) -> None:
    for env in _dv_envs(small):
        t = env.tables
        steps = set(t["sdkmessageprocessingsteps"]["sdkmessageprocessingstepid"])
        traced = set(t["plugintracelogs"]["pluginstepid"].dropna())
        assert traced <= steps
        jobs = t["asyncoperations"]
        owners = set(jobs.loc[jobs["operationtype"] == 1, "_owningextensionid_value"])
        assert owners
        assert owners <= steps
        st = t["sdkmessageprocessingsteps"]
        assert set(st["_sdkmessageid_value"]) <= set(t["sdkmessages"]["sdkmessageid"])
        assert set(st["_sdkmessagefilterid_value"]) <= set(
            t["sdkmessagefilters"]["sdkmessagefilterid"]
        )
        assert set(st["_plugintypeid_value"]) <= set(t["plugintypes"]["plugintypeid"])
        assert set(t["plugintypes"]["_pluginassemblyid_value"]) <= set(
            t["pluginassemblies"]["pluginassemblyid"]
        )
        # Documented enum values only.
        assert set(st["stage"]) <= {10, 20, 40}
        assert set(st["mode"]) <= {0, 1}
        assert set(st.loc[st["mode"] == 1, "stage"]) <= {40}  # async only in post-operation
        assert {0, 1} <= set(st["customizationlevel"])  # system steps the query filters out
        traces = t["plugintracelogs"]
        assert set(traces["mode"]) <= {0, 1}
        assert set(traces["operationtype"]) <= {1, 2}
        pairs = set(zip(jobs["statecode"], jobs["statuscode"], strict=True))
        assert pairs <= JOB_STATES
        assert set(jobs["operationtype"]) == {1, 10, 79}


def test_trace_rows_follow_the_trace_setting(small: SimTenant) -> None:
    for env in _dv_envs(small):
        setting = int(env.tables["organizations"]["plugintracelogsetting"].iloc[0])
        traces = env.tables["plugintracelogs"]
        if setting == 0:
            assert traces.empty
        elif setting == 1:
            assert len(traces)
            assert traces["exceptiondetails"].notna().all()
        else:
            failed = traces["exceptiondetails"].notna()
            assert 0 < failed.sum() < len(traces)
    settings = {e.display_name: int(e.tables["organizations"]["plugintracelogsetting"].iloc[0])
                for e in _dv_envs(small)}  # fmt: skip
    assert settings == {
        "Contoso Production": 2, "Contoso Sales Sandbox": 1, "Fabrikam Operations": 2,
        "Contoso Dev": 0,
    }  # fmt: skip


def test_exception_details_have_the_documented_shape(tiny: SimTenant) -> None:
    traces = tiny.environments[0].tables["plugintracelogs"]
    details = traces["exceptiondetails"].dropna()
    assert len(details)
    assert details.str.startswith(
        "Exception type: System.ServiceModel.FaultException`1"
        "[Microsoft.Xrm.Sdk.OrganizationServiceFault]"
    ).all()
    assert details.str.contains("<OrganizationServiceFault", regex=False).all()
    assert details.str.contains("<ErrorCode>-2147220891</ErrorCode>", regex=False).all()


def test_flow_tables_agree_with_the_flow_api(small: SimTenant) -> None:
    for env in _dv_envs(small):
        t = env.tables
        flows, runs = env.flows, env.runs
        workflows = t["workflows"].set_index("workflowid")
        solution = flows[flows["workflowid"].notna()]
        assert set(solution["workflowid"]) == set(workflows.index)
        for wid, dfn in zip(solution["workflowid"], solution["definition"], strict=True):
            data = json.loads(workflows.loc[wid, "clientdata"])
            assert data["schemaVersion"] == "1.0.0.0"
            assert data["properties"]["definition"] == json.loads(dfn)
        # flowruns are the flow API runs of solution flows: same name, times, status (in
        # Dataverse's words: Success for the flow API's Succeeded).
        fr = t["flowruns"].set_index("name")
        api = runs.set_index("name").loc[fr.index]
        assert (api["status"].replace({"Succeeded": "Success"}) == fr["status"]).all()
        assert (_ns(api["start_time"]) // 10**9 == _ns(fr["starttime"]) // 10**9).all()
        assert set(fr["_workflow_value"]) <= set(workflows.index)
        assert (_ns(fr["createdon"]) >= _ns(fr["endtime"])).all()
        assert set(fr["status"]) <= {"Success", "Failed", "Cancelled"}
        assert set(fr["triggertype"]) <= {"Automated", "Scheduled", "Manual"}
        outside = flows[flows["workflowid"].isna()]["name"]
        assert not set(runs.loc[runs["flow_name"].isin(outside), "name"]) & set(fr.index)
        # Child-flow calls point at existing workflows; their runs name the parent run.
        for dfn in flows["definition"]:
            for _, action in _walk(json.loads(dfn)["actions"]):
                if action["type"] == "Workflow":
                    assert action["inputs"]["host"]["workflowReferenceName"] in workflows.index
        children = fr[fr["parentrunid"].notna()]
        assert set(children["parentrunid"]) <= set(runs["name"])
        assert (children["isprimary"] == 0).all()
        # One callback registration per Dataverse-triggered solution flow that is on.
        cb = t["callbackregistrations"]
        assert set(cb["name"]) <= set(solution.loc[solution["state"] == "Started", "workflowid"])
        assert set(cb["message"]) <= set(range(1, 8))
    sandbox = _env(small, "Contoso Sales Sandbox")
    assert set(sandbox.tables["flowevents"]["eventtype"]) == {"FlowRunIngestion"}
    assert "IngestionRateDataLoss" in set(sandbox.tables["flowevents"]["eventcode"])
    for env in _dv_envs(small):
        if env is not sandbox:
            assert env.tables["flowevents"].empty
    teams = _env(small, "Contoso Teams")
    assert not teams.has_dataverse
    assert not teams.tables
    assert len(teams.flows)
    assert teams.flows["workflowid"].isna().all()


def test_dataverse_triggered_runs_have_trigger_jobs(small: SimTenant) -> None:
    env = _env(small, "Contoso Production")
    jobs = env.tables["asyncoperations"]
    expander = jobs[jobs["operationtype"] == 79]
    flows = env.flows
    dv = flows[flows["definition"].str.contains("SubscribeWebhookTrigger", regex=False)
               & flows["workflowid"].notna()]  # fmt: skip
    runs = env.runs[env.runs["flow_name"].isin(dv["name"])]
    assert len(runs)
    assert set(runs["client_tracking_id"]) <= set(expander["correlationid"])
    per_flow = expander.groupby("_workflowactivationid_value").size()
    run_counts = runs.groupby("flow_name").size()
    for name, wid in zip(dv["name"], dv["workflowid"], strict=True):
        assert per_flow.get(wid, 0) >= run_counts.get(name, 0)
    # Some trigger executions found the trigger condition false: more jobs than runs.
    assert len(expander) > len(runs)


def test_correlation_chains_link_plugins_jobs_and_flow_runs(small: SimTenant) -> None:
    env = _env(small, "Contoso Production")
    traces = env.tables["plugintracelogs"]
    at = [set(traces.loc[traces["depth"] == k, "correlationid"]) for k in (1, 2, 3)]
    chains = at[0] & at[1] & at[2]
    jobs = env.tables["asyncoperations"]
    async_corr = set(jobs.loc[jobs["operationtype"] == 1, "correlationid"])
    run_corr = set(env.runs["client_tracking_id"])
    linked = chains & async_corr & run_corr
    assert len(linked) >= 5


def test_messy_environment_carries_the_planted_problems(small: SimTenant) -> None:
    env = _env(small, "Contoso Production")
    traces = env.tables["plugintracelogs"]
    assert (traces["performanceexecutionduration"] > 108_000).sum() >= 5
    jobs = env.tables["asyncoperations"]
    done = jobs[(jobs["operationtype"] == 1) & (jobs["statecode"] == 3)].dropna(
        subset=["startedon"]
    )
    latency = (_ns(done["startedon"]) - _ns(done["createdon"])) / 1e6
    assert np.percentile(latency, 95) > 600_000
    assert {(3, 31), (3, 32)} <= set(zip(jobs["statecode"], jobs["statuscode"], strict=True))
    # Retries postponed to a later time are planted; by "now" most have resumed and completed.
    plan = env.job_plan
    planned = set(zip(plan["_sim_state"], plan["_sim_status"], strict=True))
    assert (1, 10) in planned
    assert plan.loc[plan["_sim_state"] == 1, "postponeuntil"].notna().all()
    assert jobs.loc[jobs["statecode"] == 1, "postponeuntil"].notna().all()
    assert (jobs["retrycount"] > 0).any()
    failed = env.runs[env.runs["status"] == "Failed"]
    assert failed["error_message"].isna().any()
    assert failed["error_message"].notna().any()
    clean = _env(small, "Fabrikam Operations")
    cj = clean.tables["asyncoperations"]
    cdone = cj[(cj["operationtype"] == 1) & (cj["statecode"] == 3)].dropna(subset=["startedon"])
    assert np.percentile((_ns(cdone["startedon"]) - _ns(cdone["createdon"])) / 1e6, 95) < 60_000
    assert clean.runs.loc[clean.runs["status"] == "Failed", "error_message"].notna().all()


def test_names_include_non_ascii_and_hostile_text(small: SimTenant) -> None:
    env = _env(small, "Contoso Production")
    texts = {
        "flow names": " ".join(env.flows["display_name"]),
        "step names": " ".join(env.tables["sdkmessageprocessingsteps"]["name"]),
        "trace messages": " ".join(env.tables["plugintracelogs"]["messageblock"].dropna()),
        "error messages": " ".join(env.tables["asyncoperations"]["message"].dropna())
        + " ".join(env.runs["error_message"].dropna()),
    }
    for where, text in texts.items():
        assert any(h in text for h in HOSTILE), where
    names = " ".join(env.flows["display_name"])
    assert "請求書の承認" in names
    assert "Rechnungsprüfung – Eingang" in names
    assert "<script>alert(1)</script>" in names


# Action results -------------------------------------------------------------------------------


def _rendered(tenant: SimTenant, env: SimEnvironment) -> Iterator[tuple[Any, Any, Any]]:
    flows = env.flows.set_index("name", drop=False)
    for record in env.runs.to_dict("records"):
        run = {str(k): v for k, v in record.items()}
        flow = {str(k): v for k, v in flows.loc[run["flow_name"]].items()}
        yield flow, run, render_actions(tenant, env, flow, run)


def test_render_actions_is_deterministic(tiny: SimTenant) -> None:
    env = tiny.environments[0]
    again = generate(7, "tiny")
    for (flow, run, actions), (_, _, other) in zip(
        _rendered(tiny, env), _rendered(again, again.environments[0]), strict=True
    ):
        assert actions == other
        assert actions == render_actions(tiny, env, flow, run)


def test_render_actions_follow_the_run(tiny: SimTenant) -> None:
    seen = {"failed": 0, "unnecessary": 0, "retried": 0, "exhausted": 0, "cancelled": 0}
    for env in tiny.environments:
        for flow, run, actions in _rendered(tiny, env):
            definition = json.loads(flow["definition"])
            all_actions = dict(_walk(definition["actions"]))
            assert set(actions) <= set(all_actions)
            start, end = pd.Timestamp(run["start_time"]), pd.Timestamp(run["end_time"])
            for name, result in actions.items():
                assert result["status"] in WORKFLOW_STATUS
                assert ISO7.match(result["startTime"])
                assert ISO7.match(result["endTime"])
                assert (
                    start
                    <= pd.Timestamp(result["startTime"])
                    <= pd.Timestamp(result["endTime"])
                    <= end
                ), name
                assert result["correlation"]["clientTrackingId"] == run["client_tracking_id"]
                for entry in result.get("retryHistory", []):
                    assert entry["code"] == "TooManyRequests"
                    assert entry["error"]["error"]["code"] == "429"
                    seen["retried"] += 1
                if result.get("retryHistory") and result["status"] == "Failed":
                    seen["exhausted"] += 1
            statuses = [r["status"] for r in actions.values()]
            if run["status"] == "Failed":
                seen["failed"] += 1
                assert "Failed" in statuses
            if run["status"] == "Cancelled":
                seen["cancelled"] += 1
                assert "Cancelled" in statuses
            effects = [n for n, a in all_actions.items() if _is_effect(a)]
            if run["_sim_outcome"] == 1:  # intended as an unnecessary run
                seen["unnecessary"] += 1
                assert all(actions.get(n, {"status": "Skipped"})["status"] == "Skipped"
                           for n in effects)  # fmt: skip
            if run["status"] == "Succeeded" and run["_sim_outcome"] == 0:
                assert any(actions[n]["status"] == "Succeeded" for n in effects if n in actions)
    assert all(v > 0 for v in seen.values()), seen


def test_render_actions_lists_nested_actions(tiny: SimTenant) -> None:
    env = tiny.environments[0]
    flows = env.flows.set_index("name", drop=False)
    mono = flows[flows["_sim_role"] == "monolith"].iloc[0]
    run = env.runs[env.runs["flow_name"] == mono["name"]].iloc[0]
    actions = render_actions(
        tiny, env, {str(k): v for k, v in mono.items()}, {str(k): v for k, v in run.items()}
    )
    assert len(actions) > 60
    loop = actions["Apply_to_each_record"]
    assert loop["repetitionCount"] == 25


def test_ids_drawn_at_once_equal_ids_drawn_a_few_at_a_time() -> None:
    # render_actions draws a run's ids in one call; the ids must be those of one draw per
    # action, in order (the generator's bytes are one stream), so a seed keeps its tenant.
    together = guids(np.random.Generator(np.random.PCG64(11)), 1 + 3 + 5 + 1)
    rng = np.random.Generator(np.random.PCG64(11))
    apart = [str(i) for n in (1, 3, 5, 1) for i in guids(rng, n)]
    assert [str(i) for i in together] == apart
    assert all(UUID(i).version == 4 and str(UUID(i)) == i for i in apart)
    # The list form render_actions uses gives the same ids from the same draw.
    assert guid_list(np.random.Generator(np.random.PCG64(11)), 10) == apart


def test_a_run_read_through_the_api_equals_its_row(tiny: SimTenant) -> None:
    # The flow API reads a run's row from cached column arrays, not a pandas row.
    env = next(e for e in tiny.environments if len(e.runs))
    runs = FlowRuns(Context(tiny, "https://sim", SimOptions(seed=7, scale="tiny"), Limits()))
    for position in (0, len(env.runs) // 2, len(env.runs) - 1):
        row = runs._row(env.runs, position)
        expected = env.runs.iloc[position].to_dict()
        assert row.keys() == expected.keys()
        assert all(row[c] == v or (pd.isna(v) and pd.isna(row[c])) for c, v in expected.items())


@pytest.mark.parametrize(
    "value",
    [
        "2026-11-08T12:00:00.123456Z",
        "2026-11-08T12:00:00.1234567+05:00",
        "2026-11-08T12:00:00",
        "1999-12-31T23:59:59.999999Z",
    ],
)
def test_one_time_is_written_as_a_column_of_times_is(value: str) -> None:
    # stamp7 formats one time without building a column; the text must be the same.
    expected = odata.format_timestamps(pd.Series([pd.Timestamp(value)]), 7)[0]
    assert stamp7(pd.Timestamp(value)) == expected
    if pd.Timestamp(value).nanosecond == 0:  # a datetime holds microseconds
        assert stamp7(pd.Timestamp(value).to_pydatetime()) == expected
    assert stamp7(None) is None
    assert stamp7(pd.NaT) is None
