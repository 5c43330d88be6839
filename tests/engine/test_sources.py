"""Lake folders read by DuckDB: Dataverse's names, versions, delete markers, and the errors a
folder the auditor cannot read gets (a hint, never a traceback)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.engine.reducer import Reducer
from auditor.errors import UsageError
from auditor.frames import Window, empty_frame

END = datetime(2026, 11, 15, 12, tzinfo=UTC)
WINDOW = Window.last(timedelta(days=7), END)
ENV = "11111111-1111-4111-8111-111111111111"


def _traces(**columns: list[object]) -> pd.DataFrame:
    n = len(next(iter(columns.values())))
    base = {
        "plugintracelogid": [f"t{i}" for i in range(n)],
        "pluginstepid": ["step-a"] * n,
        "typename": ["Contoso.Plugin"] * n,
        "mode": [0] * n,
        "depth": [1] * n,
        "performanceexecutionduration": [100] * n,
        "performanceexecutionstarttime": [END - timedelta(hours=1)] * n,
        "createdon": [END - timedelta(hours=1)] * n,
        "exceptiondetails": [None] * n,
    }
    return pd.DataFrame({**base, **columns})


def _lake(tmp_path: Path, traces: pd.DataFrame) -> Path:
    """A lake of one environment's trace logs (Dataverse layout) and no runs (export layout:
    a lake may mix them, table by table)."""
    lake = tmp_path / "lake"
    folder = lake / ENV / "plugintracelog"
    folder.mkdir(parents=True)
    traces.to_parquet(folder / "part-0.parquet")
    for table in ("flow_api_runs", "flow_run_actions", "flowruns", "asyncoperations"):
        empty_frame(table).to_parquet(lake / f"{table}.parquet")
    return lake


def _steps(reducer: Reducer) -> pd.Series:
    modes = pd.DataFrame({"environment_id": [ENV], "stepid": ["step-a"], "mode": [0.0]})
    found = reducer.step_traces(
        modes, sync_guideline_ms=2000, near_timeout_ms=108_000, loop_depth=8
    ).set_index("stepid")
    return found.loc["step-a"]


def test_the_latest_version_counts_and_delete_markers_do_not(tmp_path: Path) -> None:
    rows = _traces(performanceexecutionduration=[100, 200, 300])
    rows["Id"] = rows["plugintracelogid"]
    rows["versionnumber"] = 5
    rows["IsDelete"] = False
    older = rows.head(1).assign(versionnumber=1, performanceexecutionduration=119_000)
    marker = rows.iloc[:0].reindex(range(1))  # every column null (an empty body)
    marker = marker.assign(Id="t1", versionnumber=9, IsDelete=True)
    retained = rows.iloc[2:3].assign(versionnumber=7, IsDelete=True)  # deleted, data kept
    lake = _lake(tmp_path, pd.concat([rows, older, marker, retained], ignore_index=True))
    reducer = Reducer.over_store(None, WINDOW, [ENV], lake=lake)
    try:
        step = _steps(reducer)
        assert reducer.sources["plugintracelogs"].startswith("lake ")
    finally:
        reducer.close()
    # t0 at its version 5 (not the older 119 s one), t1 as before its marker, t2 deleted
    # with its data (retention): three executions, none near the limit.
    assert (step["executions"], step["near_timeout"], step["max_ms"]) == (3, 0, 300.0)


def test_without_versions_every_row_counts(tmp_path: Path) -> None:
    lake = _lake(tmp_path, _traces(performanceexecutionduration=[100, 200]))
    reducer = Reducer.over_store(None, WINDOW, [ENV], lake=lake)
    try:
        assert _steps(reducer)["executions"] == 2
    finally:
        reducer.close()


def test_a_table_of_csv_files_is_refused_with_a_hint(tmp_path: Path) -> None:
    folder = tmp_path / "lake" / ENV / "plugintracelog"
    folder.mkdir(parents=True)
    (folder / "2026.csv").write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(UsageError, match="neither a Delta log nor Parquet") as raised:
        Reducer.over_store(None, WINDOW, [ENV], lake=tmp_path / "lake")
    assert "Fabric" in (raised.value.hint or "")


def test_one_environments_tables_need_one_environment(tmp_path: Path) -> None:
    folder = tmp_path / "lake" / "plugintracelog"
    folder.mkdir(parents=True)
    _traces(depth=[1]).to_parquet(folder / "part-0.parquet")
    with pytest.raises(UsageError, match="holds one environment's tables"):
        Reducer.over_store(None, WINDOW, [ENV, "other"], lake=tmp_path / "lake")


def test_a_missing_lake_and_a_table_neither_has_are_errors(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        Reducer.over_store(None, WINDOW, [ENV], lake=tmp_path / "nowhere")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UsageError, match="no flow_api_runs table and no store"):
        Reducer.over_store(None, WINDOW, [ENV], lake=empty)


def test_analyze_refuses_an_unknown_engine(tmp_path: Path) -> None:
    ran = CliRunner().invoke(
        app, ["analyze", "--store", str(tmp_path / "s.duckdb"), "--engine", "pandas"]
    )
    assert ran.exit_code != 0
    assert "--engine takes duckdb or spark" in ran.output
