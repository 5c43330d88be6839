"""The ground truth: the expected verdict profile, and counts that match the frames."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from auditor.sim.model import VISIBLE_BY, SimTenant
from auditor.sim.scenario import generate, render_actions
from auditor.sim.truth import ANSWERS, THRESHOLDS, compute_truth, is_effect, write_truth

EXPECTED_SMALL = {
    "Contoso Production": ["do-not-check"] * 5,
    "Contoso Sales Sandbox": ["do-not-check", "check", "check", "needs-review", "needs-review"],
    "Fabrikam Operations": ["check", "check", "check", "check", "needs-review"],
    "Contoso Dev": ["check", "needs-review", "do-not-check", "needs-review", "needs-review"],
    "Contoso Teams": ["needs-review"] * 5,
}


@pytest.fixture(scope="module")
def small() -> SimTenant:
    return generate(7, "small")


@pytest.fixture(scope="module")
def small_truth(small: SimTenant) -> dict[str, Any]:
    return compute_truth(small)


def _ns(series: pd.Series) -> Any:
    return series.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _by_name(truth: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in truth["environments"]}


def test_small_seed_7_has_the_expected_verdict_profile(small_truth: dict[str, Any]) -> None:
    got = {e["name"]: [e["verdicts"][a] for a in ANSWERS] for e in small_truth["environments"]}
    assert got == EXPECTED_SMALL
    for env in small_truth["environments"]:
        assert set(env["verdict_reasons"]) == set(ANSWERS)
        assert all(env["verdict_reasons"][a] for a in ANSWERS)
        # One scan is never continuous evaluation: performance is never "check".
        assert env["verdicts"]["sufficient-performance"] != "check"


def test_truth_shape_and_serialisation(small_truth: dict[str, Any]) -> None:
    assert list(small_truth)[:5] == ["seed", "scale", "now", "tenant_id", "thresholds"]
    assert small_truth["now"] == "2026-11-15T12:00:00Z"
    assert small_truth["seed"] == 7
    assert small_truth["scale"] == "small"
    assert small_truth["thresholds"] == THRESHOLDS
    env = small_truth["environments"][0]
    assert list(env)[:9] == [
        "id", "name", "slug", "has_dataverse", "trace_setting", "row_counts", "table_rows",
        "verdicts", "verdict_reasons",
    ]  # fmt: skip
    assert set(env["metrics"]) == {"queue_latency_p95_ms", "flows", "steps", "noisiest_flows"}
    json.dumps(small_truth)  # JSON-serialisable: no numpy scalars


def test_truth_is_deterministic(tmp_path: Path) -> None:
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    write_truth(7, "tiny", a)
    write_truth(7, "tiny", b)
    assert a.read_bytes() == b.read_bytes()
    write_truth(8, "tiny", b)
    assert a.read_bytes() != b.read_bytes()
    assert json.loads(a.read_text(encoding="utf-8"))["scale"] == "tiny"


def _visible(frame: pd.DataFrame, column: str | None, now: int) -> pd.DataFrame:
    if column is None:
        return frame
    values = _ns(frame[column])
    shown: pd.DataFrame = frame.loc[values <= now]
    return shown


def test_counts_equal_the_frames_at_now(small: SimTenant, small_truth: dict[str, Any]) -> None:
    now = pd.Timestamp(small.now).value
    by_name = _by_name(small_truth)
    for env in small.environments:
        truth = by_name[env.display_name]
        counts = truth["row_counts"]
        runs = env.runs[_ns(env.runs["start_time"]) <= now]
        assert counts["flows"] == len(env.flows)
        assert counts["flow_runs"] == len(runs)
        assert sum(m["runs"] for m in truth["metrics"]["flows"].values()) == len(runs)
        finished = runs[_ns(runs["end_time"]) <= now]
        assert sum(m["failed_runs"] for m in truth["metrics"]["flows"].values()) == int(
            (finished["status"] == "Failed").sum()
        )
        if not env.has_dataverse:
            assert set(counts) == {"flows", "flow_runs"}
            continue
        t = {k: _visible(v, VISIBLE_BY[k], now) for k, v in env.tables.items()}
        steps = t["sdkmessageprocessingsteps"]
        assert counts["sdkmessageprocessingsteps"] == int((steps["customizationlevel"] == 1).sum())
        assert counts["plugintracelogs"] == len(t["plugintracelogs"])
        assert counts["asyncoperations"] == len(t["asyncoperations"])
        assert counts["flowruns"] == len(t["flowruns"])
        assert counts["flowevents"] == len(t["flowevents"])
        assert counts["workflows"] == len(t["workflows"])
        assert counts["organizations"] == 1
        assert truth["table_rows"]["sdkmessageprocessingsteps"] == len(steps)
        # Later rows exist and are hidden until the clock moves.
        assert len(env.tables["plugintracelogs"]) >= counts["plugintracelogs"]
        per_step = t["plugintracelogs"].groupby("pluginstepid").size()
        for sid, metric in truth["metrics"]["steps"].items():
            assert metric["executions"] == int(per_step.get(sid, 0))


def test_facts_match_independent_queries(small: SimTenant, small_truth: dict[str, Any]) -> None:
    prod = next(e for e in small.environments if e.display_name == "Contoso Production")
    truth = _by_name(small_truth)["Contoso Production"]
    t = prod.tables
    steps = t["sdkmessageprocessingsteps"]
    update_id = t["sdkmessages"].set_index("name").loc["Update", "sdkmessageid"]
    unfiltered = steps[
        (steps["customizationlevel"] == 1)
        & (steps["statecode"] == 0)
        & (steps["_sdkmessageid_value"] == update_id)
        & steps["filteringattributes"].isna()
    ]
    assert (
        sorted(unfiltered["sdkmessageprocessingstepid"])
        == truth["facts"]["unfiltered_update_steps"]
    )
    # The disabled unfiltered step and the system steps do not count.
    assert len(steps[(steps["_sdkmessageid_value"] == update_id)
                     & steps["filteringattributes"].isna()]) > len(unfiltered)  # fmt: skip
    traces = t["plugintracelogs"]
    assert truth["facts"]["near_timeout_executions"] == int(
        (traces["performanceexecutionduration"] > THRESHOLDS["near_timeout_ms"]).sum()
    )
    assert truth["metrics"]["queue_latency_p95_ms"] > THRESHOLDS["queue_latency_p95_ms"]
    clean = _by_name(small_truth)["Fabrikam Operations"]
    assert clean["metrics"]["queue_latency_p95_ms"] < THRESHOLDS["queue_latency_p95_ms"] / 10


def test_unnecessary_runs_match_rendered_actions() -> None:
    tenant = generate(7, "tiny")
    truth = compute_truth(tenant)
    env = tenant.environments[0]
    metrics = truth["environments"][0]["metrics"]["flows"]
    now = pd.Timestamp(tenant.now).value
    flows = env.flows.set_index("name", drop=False)
    counted: dict[str, int] = {}
    runs = env.runs[(_ns(env.runs["start_time"]) <= now) & (_ns(env.runs["end_time"]) <= now)]
    for run in runs.to_dict("records"):
        flow = flows.loc[run["flow_name"]].to_dict()
        actions = render_actions(tenant, env, flow, run)
        definition = json.loads(flow["definition"])
        effects = [n for n, a in _walk(definition["actions"]) if is_effect(a)]
        if all(actions.get(n, {"status": "Skipped"})["status"] == "Skipped" for n in effects):
            # The truth keys a flow as the auditor does: its workflowid if it has one.
            key = flow["workflowid"] or run["flow_name"]
            counted[key] = counted.get(key, 0) + 1
    assert {n: m["unnecessary_runs"] for n, m in metrics.items() if m["unnecessary_runs"]} == (
        counted
    )
    noisiest = truth["environments"][0]["metrics"]["noisiest_flows"]
    assert noisiest[0] == max(counted, key=lambda n: (counted[n], n))


def _walk(actions: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for name, action in actions.items():
        out.append((name, action))
        if isinstance(action.get("actions"), dict):
            out.extend(_walk(action["actions"]))
        for key in ("else", "default"):
            if isinstance(action.get(key), dict):
                out.extend(_walk(action[key].get("actions") or {}))
        for case in (action.get("cases") or {}).values():
            out.extend(_walk(case.get("actions") or {}))
    return out


def test_advancing_the_clock_reveals_about_one_percent_per_100_minutes() -> None:
    tenant = generate(7, "tiny")
    before = compute_truth(tenant)
    tenant.advance(timedelta(minutes=100))
    after = compute_truth(tenant)
    for b, a in zip(before["environments"], after["environments"], strict=True):
        for key, n in b["row_counts"].items():
            assert a["row_counts"][key] >= n
    grow_b = before["environments"][0]["row_counts"]["plugintracelogs"]
    grow_a = after["environments"][0]["row_counts"]["plugintracelogs"]
    assert 0 < grow_a - grow_b < 0.05 * grow_b
    tenant.advance(timedelta(days=30))
    assert tenant.now == tenant.end
