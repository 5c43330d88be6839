"""The reductions give the same frames and findings on every engine and every source.

The simulator's small tenant (seed 7) is collected into a store once. Then:
- the store path (DuckDB over the store) gives exactly the findings the row-level pandas
  analysis gave before the reductions moved into SQL (`today_findings.json.gz`, written by
  that code on the same tenant; measured values equal to 1e-9);
- the store exported by `auditor export` and read as a lake folder gives every reduced
  frame equal on DuckDB and on Spark in local mode (counts exactly, percentiles to 1e-9),
  and the same findings as the store path;
- a folder laid out as Link to Microsoft Fabric exports Dataverse (a Delta table per logical
  name and environment, Dataverse's column names, older versions of rows and soft-deleted
  rows) analysed by `auditor analyze --engine spark --lake` gives the store path's verdicts.
"""

from __future__ import annotations

import gc
import gzip
import json
import math
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from simulated import collected_copy
from typer.testing import CliRunner

from auditor.analysis.actions import effect_actions, linked_flows
from auditor.analysis.definitions import definition_frames
from auditor.analysis.jobs import JOB_CODES
from auditor.analysis.plugins import (
    LOOP_DEPTH,
    NEAR_TIMEOUT_SHARE,
    SYNC_GUIDELINE_MS,
    TIMEOUT_MS,
    step_modes,
)
from auditor.analysis.runs import flow_ids
from auditor.analysis.statuses import RUN_VOCABULARIES
from auditor.analyze import findings_frame
from auditor.checks import run_checks
from auditor.checks.base import MAX_EVIDENCE_ROWS
from auditor.checks.evidence import Evidence
from auditor.cli import app
from auditor.engine.engines import local_spark
from auditor.engine.reducer import Reducer
from auditor.engine.sources import ROW_TABLES
from auditor.explore.export import export
from auditor.frames import DEFAULT_WINDOW, Frames, Window, flow_definitions, load_frames
from auditor.settings import Settings
from auditor.store import Store

# Py4J leaves the sockets of Spark's gateway to the garbage collector.
pytestmark = [
    pytest.mark.slow,
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

TODAY = Path(__file__).with_name("today_findings.json.gz")
NEAR_MS = 108_000.0  # near-platform-timeout's default limit


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, _truth = collected_copy(7, "small", tmp_path_factory)
    return store


@pytest.fixture(scope="module")
def exported(small: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("exported")
    with Store.open(small, read_only=True, files_in=folder) as store:
        export(store, folder, "parquet", tables=ROW_TABLES)
    return folder


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    session = local_spark("auditor-tests", cores=2)
    yield session
    session.stop()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()  # the gateway's sockets, now rather than in another module's test


def _window(store: Store) -> Window:
    scan = store.latest_scan()
    assert scan is not None
    return Window.last(DEFAULT_WINDOW, scan.window_end)


def _reduced(reducer: Reducer, frames: Frames) -> dict[str, pd.DataFrame]:
    """Every reduction the analysis asks for, each in a stable row order."""
    definitions = flow_definitions(frames)
    runs = reducer.runs(flow_ids(definitions), RUN_VOCABULARIES)
    actions = reducer.actions(effect_actions(definition_frames(definitions)[1]))
    jobs = reducer.jobs(JOB_CODES)
    # Every Expander job of the small tenant names a known flow: forget half the flows so
    # that some name none.
    unlinked = reducer.unlinked_expanders(
        JOB_CODES, linked_flows(definitions).iloc[::2], MAX_EVIDENCE_ROWS
    )
    steps = reducer.step_traces(
        step_modes(frames.plugin_steps),
        sync_guideline_ms=SYNC_GUIDELINE_MS,
        near_timeout_ms=NEAR_TIMEOUT_SHARE * TIMEOUT_MS,
        loop_depth=LOOP_DEPTH,
    )
    out = {
        "run_stats": runs.stats,
        "run_days": runs.days,
        "kept_runs": runs.kept,
        "sampled_runs": actions.sampled,
        "action_retries": actions.retries,
        "action_durations": actions.durations,
        "job_stats": jobs.by_type,
        "job_owners": jobs.by_owner,
        "queue_latency_p95": jobs.queue_p95,
        "expanders": jobs.expanders,
        "kept_jobs": jobs.kept,
        "unlinked_expanders": unlinked,
        "step_traces": steps,
        "trace_depths": reducer.trace_depths(),
        "trace_owners_near": reducer.trace_owners_near(NEAR_MS),
        "async_trace_outcomes": reducer.async_trace_outcomes(),
    }
    return {name: _comparable(frame) for name, frame in out.items()}


def _comparable(frame: pd.DataFrame) -> pd.DataFrame:
    """Columns by name, times in UTC, numbers as floats, empty columns as nulls, rows sorted
    by every column."""
    out = frame.reindex(columns=sorted(frame.columns))
    for column in out.columns:
        values = out[column]
        if values.isna().all():  # no value: its type is the engine's guess
            out[column] = pd.Series([None] * len(values), index=values.index, dtype=object)
        elif pd.api.types.is_datetime64_any_dtype(values):
            out[column] = pd.to_datetime(values, utc=True)
        elif pd.api.types.is_bool_dtype(values):
            out[column] = values.astype(bool)
        elif pd.api.types.is_numeric_dtype(values):
            out[column] = values.astype("float64")
        else:
            out[column] = values.astype(object).where(values.notna(), None)
    floats = [c for c in out.columns if pd.api.types.is_float_dtype(out[c])]
    keys = [c for c in out.columns if c not in floats] + floats
    return out.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)


def assert_same_frames(left: dict[str, pd.DataFrame], right: dict[str, pd.DataFrame]) -> None:
    assert left.keys() == right.keys()
    for name in left:
        a, b = left[name], right[name]
        assert list(a.columns) == list(b.columns), name
        assert len(a) == len(b), f"{name}: {len(a)} rows against {len(b)}"
        assert len(a) > 0, f"{name} is empty: the comparison would prove nothing"
        for column in a.columns:
            where = f"{name}.{column}"
            if pd.api.types.is_float_dtype(a[column]) and column.endswith("_ms"):
                pd.testing.assert_series_equal(
                    a[column], b[column], check_exact=False, rtol=1e-9, atol=0, obj=where
                )
            else:  # counts, keys, flags and texts: exactly
                pd.testing.assert_series_equal(a[column], b[column], check_exact=True, obj=where)


def _findings(store: Store, reducer: Reducer) -> list[dict[str, Any]]:
    frames = load_frames(store, window=_window(store), skip=ROW_TABLES)
    evidence = Evidence(frames, reducer)
    table = findings_frame(run_checks(evidence, Settings())).fillna("")
    return [
        {**row, "measured": json.loads(row["measured"]), "evidence": json.loads(row["evidence"])}
        for row in table.to_dict("records")
    ]


def assert_same_findings(got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    """Equal findings; the coverage findings' `*_from` values (where the rows were read,
    which differs between a lake and the store by design) are left out of the comparison."""
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        a, b = _without_sources(a), _without_sources(b)
        where = (b["check_id"], b["environment_id"], b["resource_id"])
        assert {k: v for k, v in a.items() if k != "measured"} == {
            k: v for k, v in b.items() if k != "measured"
        }, where
        assert _close(a["measured"], b["measured"]), (where, a["measured"], b["measured"])


def _without_sources(finding: dict[str, Any]) -> dict[str, Any]:
    measured = {k: v for k, v in finding["measured"].items() if not k.endswith("_from")}
    return {**finding, "measured": measured}


def _close(a: Any, b: Any) -> bool:
    """Equal, floats to a relative 1e-9 (the engines' percentiles differ in the last bits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_close(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, (int, float)) and not isinstance(b, bool):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=0)
    return bool(a == b)


def test_the_store_path_gives_the_findings_of_the_row_level_pandas_analysis(small: Path) -> None:
    expected = json.loads(gzip.decompress(TODAY.read_bytes()))
    with Store.open(small, read_only=True) as store:
        reducer = Reducer.over_store(store, _window(store), None)
        try:
            got = _findings(store, reducer)
        finally:
            reducer.close()
    assert len(expected) > 4000
    assert_same_findings(got, expected)


def test_duckdb_and_spark_reduce_an_exported_lake_to_the_same_frames_and_findings(
    small: Path, exported: Path, spark: Any
) -> None:
    with Store.open(small, read_only=True) as store:
        window = _window(store)
        frames = load_frames(store, window=window, skip=ROW_TABLES)
        on_store = Reducer.over_store(store, window, None)
        on_duckdb = Reducer.over_store(store, window, None, lake=exported)
        on_spark = Reducer.over_store(
            store, window, None, engine="spark", lake=exported, spark=spark
        )
        try:
            assert set(on_spark.sources.values()) == {
                f"export {exported / f'{t}.parquet'}" for t in ROW_TABLES
            }
            store_frames = _reduced(on_store, frames)
            assert_same_frames(_reduced(on_duckdb, frames), store_frames)
            assert_same_frames(_reduced(on_spark, frames), store_frames)
            expected = _findings(store, on_store)
            on_lake = _findings(store, on_duckdb)
            assert_same_findings(on_lake, expected)
            assert_same_findings(_findings(store, on_spark), expected)
            sourced = [f["measured"] for f in on_lake if "plugintracelogs_from" in f["measured"]]
            assert sourced  # the coverage findings say the rows came from the export
            assert all(m["plugintracelogs_from"].startswith("export ") for m in sourced)
            assert not any("plugintracelogs_from" in f["measured"] for f in expected)
        finally:
            for reducer in (on_store, on_duckdb, on_spark):
                reducer.close()


# A lake as Link to Microsoft Fabric lays it out -------------------------------------------


def fabric_lake(store_path: Path, folder: Path) -> tuple[Path, dict[str, int]]:
    """The store's flow runs, trace logs and system jobs as Delta tables named by Dataverse
    logical name, one folder per environment, with Dataverse's columns and system columns
    (`Id`, `versionnumber`, `SinkModifiedOn`, the delete flag spelt `isDeleted` in one table
    and `IsDelete` in the others). Added as the exports would write them: older versions of
    some trace rows (each ran near the platform's limit) and of some completed jobs (still in
    progress then), delete markers (an empty row flagged deleted, as an append-only export
    writes a delete) for some runs, traces and jobs, and trace rows flagged deleted that keep
    their data (a table merged in place, after Dataverse's 24-hour retention deleted them):
    none may change a figure. The layout and columns follow
    https://learn.microsoft.com/power-apps/maker/data-platform/azure-synapse-link-select-fno-data#working-with-data-and-metadata
    (Id, IsDelete, versionnumber, SinkModifiedOn) and
    https://learn.microsoft.com/power-apps/maker/data-platform/export-data-lake-faq (append-only
    deletes, latest version per Id); the simulator serves the Web API, not a lake, so the
    lake is built here from its tables."""
    from deltalake import write_deltalake

    added = {"superseded": 0, "markers": 0, "deleted_with_data": 0}
    with Store.open(store_path, read_only=True) as store:
        runs = store._frame("SELECT * FROM flowruns ORDER BY environment_id, flowrunid")
        traces = store._frame(
            "SELECT * FROM plugintracelogs ORDER BY environment_id, plugintracelogid"
        )
        jobs = store._frame(
            "SELECT * FROM asyncoperations ORDER BY environment_id, asyncoperationid"
        )
    synced = pd.Timestamp("2026-12-01T00:00:00Z")
    for env in sorted(set(runs["environment_id"]) | set(traces["environment_id"])):
        env_jobs = jobs[jobs["environment_id"] == env].drop(columns="environment_id")
        live = env_jobs.assign(Id=env_jobs["asyncoperationid"], versionnumber=1000, IsDelete=False)
        # Earlier versions of completed jobs, still in progress then: the latest must count.
        done = live[live["statecode"] == 3]
        older = done.head(20).assign(statecode=2, statuscode=20, versionnumber=10)
        markers = _markers(live.iloc[-30:], "Id", "IsDelete")
        added["superseded"] += len(older)
        added["markers"] += len(markers)
        table = pd.concat([live, older, markers], ignore_index=True)
        if not table.empty:
            table["SinkModifiedOn"] = synced
            write_deltalake(str(folder / env / "asyncoperation"), table)

        env_runs = runs[runs["environment_id"] == env].drop(columns="environment_id")
        env_runs = env_runs.rename(columns={"workflow_ref": "workflow"})
        live = env_runs.assign(Id=env_runs["flowrunid"], versionnumber=1000, isDeleted=False)
        markers = _markers(live.head(30), "Id", "isDeleted")
        added["markers"] += len(markers)
        table = pd.concat([live, markers], ignore_index=True)
        if not table.empty:
            table["SinkModifiedOn"] = synced
            write_deltalake(str(folder / env / "flowrun"), table)

        env_traces = traces[traces["environment_id"] == env].drop(columns="environment_id")
        live = env_traces.assign(
            Id=env_traces["plugintracelogid"], versionnumber=1000, IsDelete=False
        )
        live.loc[live.index[-10:], "IsDelete"] = True  # retention deleted them: data kept
        older = live.head(20).assign(performanceexecutionduration=119_000, versionnumber=10)
        markers = _markers(live.iloc[20:50], "Id", "IsDelete")
        added["superseded"] += len(older)
        added["markers"] += len(markers)
        added["deleted_with_data"] += int(live["IsDelete"].sum())
        table = pd.concat([live, older, markers], ignore_index=True)
        if not table.empty:
            table["SinkModifiedOn"] = synced
            write_deltalake(str(folder / env / "plugintracelog"), table)
    return folder, added


def _markers(rows: pd.DataFrame, key: str, flag: str) -> pd.DataFrame:
    """Delete markers of `rows`: the key and system columns only, a later version."""
    empty = rows.iloc[:0].reindex(range(len(rows)))  # every column null
    empty[key] = rows[key].to_numpy()
    empty["versionnumber"] = 2000
    empty[flag] = True
    return empty


def _verdicts(store_path: Path) -> list[tuple[str, str, str, str, str]]:
    """Every stored finding's check, environment, resource, status and message."""
    with Store.open(store_path, read_only=True) as store:
        scan = store.latest_scan()
        assert scan is not None
        found = store.findings(scan.scan_id)
    return sorted(
        (str(r.check_id), str(r.environment_id), str(r.resource_id), str(r.status), r.message)
        for r in found.itertuples()
    )


def test_analyze_with_spark_on_a_fabric_link_lake_gives_the_store_paths_verdicts(
    small: Path, tmp_path: Path, spark: Any
) -> None:
    lake, added = fabric_lake(small, tmp_path / "lake")
    assert min(added.values()) > 0, added
    assert (lake / next(iter(sorted(p.name for p in lake.iterdir()))) / "flowrun").is_dir()
    by_store, by_lake = tmp_path / "store.duckdb", tmp_path / "lake.duckdb"
    shutil.copy(small, by_store)
    shutil.copy(small, by_lake)
    runner = CliRunner()
    plain = runner.invoke(app, ["--quiet", "analyze", "--store", str(by_store)])
    assert plain.exit_code == 0, plain.output
    ran = runner.invoke(
        app,
        ["analyze", "--store", str(by_lake), "--engine", "spark", "--lake", str(lake)],
    )
    assert ran.exit_code == 0, ran.output
    assert "Rows reduced by spark" in ran.output
    assert "flowruns from lake" in ran.output
    assert "plugintracelogs from lake" in ran.output
    assert "asyncoperations from lake" in ran.output
    assert "flow_api_runs from" not in ran.output  # the flow API's runs: from the store
    assert _verdicts(by_lake) == _verdicts(by_store)
    # The coverage findings say which source fed which figure.
    with Store.open(by_lake, read_only=True) as store:
        scan = store.latest_scan()
        assert scan is not None
        found = store.findings(scan.scan_id)
    traces = found[found["check_id"] == "coverage-trace-executions"]
    judged = [json.loads(m) for m in traces["measured"] if "setting" in json.loads(m)]
    assert judged  # (environments without Dataverse have a gap finding instead)
    for values in judged:
        assert values["plugintracelogs_from"].startswith("lake ")
        assert values["flowruns_from"].startswith("lake ")
        assert (values["flow_api_runs_from"], values["rest_from"]) == ("store", "store")
