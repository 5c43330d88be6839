"""Typed frames from the store, cut to the window and environments."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd

from auditor.frames import Frames, Window, flow_definitions, load_frames
from auditor.store import Store

END = datetime(2026, 1, 8, tzinfo=UTC)


def write(store: Store, scan: int, env: str, table: str, rows: list[dict[str, Any]]) -> None:
    store.write_page(
        scan_id=scan,
        environment_id=env,
        query_id=table,
        unit="all",
        table=table,
        rows=rows,
        next_link=None,
        done=True,
    )


def make_store(path: Path) -> Store:
    store = Store.open(path)
    scan = store.begin_scan(
        window_start=END - timedelta(days=30), window_end=END, arguments={}, started=END
    )
    inside, outside = "2026-01-05T00:00:00Z", "2025-12-01T00:00:00Z"
    for env in ("e1", "e2"):
        write(
            store,
            scan,
            env,
            "flow_api_runs",
            [
                {"flow_name": "f", "run_name": "in", "start_time": inside, "status": "Failed"},
                {"flow_name": "f", "run_name": "old", "start_time": outside, "status": "Failed"},
            ],
        )
        write(
            store,
            scan,
            env,
            "flow_run_actions",
            [
                {"flow_name": "f", "run_name": "in", "action_name": "A", "status": "Skipped"},
                {"flow_name": "f", "run_name": "old", "action_name": "A", "status": "Skipped"},
            ],
        )
        write(
            store,
            scan,
            env,
            "plugintracelogs",
            [
                {
                    "plugintracelogid": "t1",
                    "performanceexecutionstarttime": inside,
                    "depth": 1,
                    "messageblock": "x" * 1000,
                },
                {"plugintracelogid": "t2", "createdon": outside},
            ],
        )
    write(
        store,
        scan,
        "e1",
        "flows",
        [
            {"flow_name": "f", "display_name": "API flow", "state": "Started", "workflowid": "W1"},
            {"flow_name": "g", "state": "Started", "definition": '{"definition": {}}'},
        ],
    )
    write(
        store,
        scan,
        "e1",
        "workflows",
        [
            {"workflowid": "w1", "name": "Solution flow", "statecode": 1, "clientdata": "{}"},
            {"workflowid": "w2", "name": "Unlisted", "statecode": 0, "clientdata": "{}"},
        ],
    )
    return store


def test_frames_are_typed_and_cut_to_window_and_environments(tmp_path: Path) -> None:
    with make_store(tmp_path / "s.duckdb") as store:
        frames = load_frames(store, environments=["e1"])
    assert frames.window == Window(END - timedelta(days=7), END)
    assert list(frames.flow_api_runs["run_name"]) == ["in"]
    assert list(frames.flow_run_actions["run_name"]) == ["in"]
    assert list(frames.plugintracelogs["plugintracelogid"]) == ["t1"]
    assert "messageblock" not in frames.plugintracelogs
    dtypes = frames.plugintracelogs.dtypes
    assert str(dtypes["depth"]) == "Int64"
    assert str(dtypes["performanceexecutionstarttime"]) == "datetime64[us, UTC]"
    assert str(dtypes["issystemcreated"]) == "boolean"
    assert dtypes["plugintracelogid"] == "str"
    assert set(frames.flows["environment_id"]) == {"e1"}


def test_rows_come_in_key_order_whatever_order_they_were_stored_in(tmp_path: Path) -> None:
    """Environments are read side by side, so pages reach the store in a different order
    from scan to scan; the frames (and so the reports' findings and evidence) do not."""
    with Store.open(tmp_path / "s.duckdb") as store:
        scan = store.begin_scan(
            window_start=END - timedelta(days=30), window_end=END, arguments={}, started=END
        )
        for env in ("e3", "e1", "e2"):
            steps = [{"stepid": f"s{n}", "name": f"{env} {n}"} for n in (9, 2, 5)]
            write(store, scan, env, "plugin_steps", steps)
            runs = [
                {"flow_name": flow, "run_name": "r", "start_time": "2026-01-05T00:00:00Z"}
                for flow in ("z", "a", "m")
            ]
            write(store, scan, env, "flow_api_runs", runs)
        frames = load_frames(store)
    steps = frames.plugin_steps
    assert list(zip(steps["environment_id"], steps["stepid"], strict=True)) == [
        (env, step) for env in ("e1", "e2", "e3") for step in ("s2", "s5", "s9")
    ]
    runs = frames.flow_api_runs
    assert list(zip(runs["environment_id"], runs["flow_name"], strict=True)) == [
        (env, flow) for env in ("e1", "e2", "e3") for flow in ("a", "m", "z")
    ]


def test_a_wider_window_reaches_older_rows(tmp_path: Path) -> None:
    with make_store(tmp_path / "s.duckdb") as store:
        frames = load_frames(store, window=Window(END - timedelta(days=60), END))
    assert len(frames.flow_api_runs) == 4
    assert len(frames.flow_run_actions) == 4


def test_flow_definitions_join_the_flow_api_and_workflows(tmp_path: Path) -> None:
    with make_store(tmp_path / "s.duckdb") as store:
        frames = load_frames(store)
    out = flow_definitions(frames).set_index("flow_id")
    assert out.loc["f", "workflowid"] == "w1"  # GUIDs are stored lower-case
    assert out.loc["f", "source"] == "clientdata"
    assert out.loc["g", "source"] == "flow-api"
    assert out.loc["w2", "state"] == "Stopped"  # a workflow the API did not list
    assert out.loc["w2", "display_name"] == "Unlisted"


def test_frames_built_in_memory_are_typed_and_complete() -> None:
    frames = Frames.from_frames(
        Window(END - timedelta(days=1), END),
        flow_api_runs=pd.DataFrame({"run_name": ["r"], "start_time": ["2026-01-07T00:00:00Z"]}),
    )
    assert str(frames.flow_api_runs["start_time"].dtype) == "datetime64[us, UTC]"
    assert frames.plugintracelogs.empty
    assert "retry_count" in frames.flow_run_actions
