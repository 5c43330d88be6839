"""`auditor trace`, `history`, `diff` and `export` as a user meets them, on simulated stores."""

from __future__ import annotations

import json
import shlex
import ssl
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pandas as pd
import pytest
from simulated import collected_copy
from typer.testing import CliRunner

from auditor.cli import app
from auditor.explore.export import EXPORT_TABLES
from auditor.sim.launch import serve_process
from auditor.sim.scenario import generate
from auditor.store import Store

runner = CliRunner()
WIDE = {"COLUMNS": "250"}


def invoke(*args: str, env: dict[str, str] | None = None) -> Any:
    return runner.invoke(app, list(args), env={**WIDE, **(env or {})})


# --- trace -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    store, _truth = collected_copy(7, "tiny", tmp_path_factory, action_sample=50)
    return store


def simulated_chain() -> dict[str, Any]:
    """A correlation id the simulator made into a chain: synchronous plug-ins at depth 1, 2
    and 3, an async plug-in job, and a Dataverse-triggered flow run, with their names."""
    tenant = generate(7, "tiny")
    for env in tenant.environments:
        traces = env.tables.get("plugintracelogs")
        if traces is None or traces.empty:
            continue
        jobs, runs = env.tables["asyncoperations"], env.runs
        for corr, chain in traces.groupby("correlationid"):
            sync = chain[chain["mode"] == 0].set_index("depth")
            job = jobs[(jobs["correlationid"] == corr) & (jobs["operationtype"] == 1)]
            run = runs[runs["client_tracking_id"] == corr]
            if {1, 2, 3} <= set(sync.index) and len(job) == 1 and len(run) == 1:
                return {
                    "id": str(corr),
                    "plugins": [str(sync.loc[d, "typename"]) for d in (1, 2, 3)],
                    "job": str(job["name"].iloc[0]),
                    "run": str(run["name"].iloc[0]),
                }
    raise AssertionError("the tiny tenant has no chain")


def test_trace_shows_a_simulated_chain_in_order(tiny_store: Path) -> None:
    chain = simulated_chain()
    result = invoke("trace", chain["id"].upper(), "--json", "--store", str(tiny_store))
    assert result.exit_code == 0, result.output
    entries = json.loads(result.output)["entries"]

    def position(kind: str, test: Any) -> int:
        found = [k for k, e in enumerate(entries) if e["kind"] == kind and test(e)]
        assert len(found) == 1, (kind, entries)
        return found[0]

    order = [
        position("plugin", lambda e, d=depth: e["depth"] == d and "asynchronous" not in e["detail"])
        for depth in (1, 2, 3)
    ]
    order.append(position("system-job", lambda e: e["name"] == chain["job"]))
    order.append(position("flow-run", lambda e: e["record_id"] == chain["run"]))
    assert order == sorted(order), entries
    run = entries[order[-1]]
    assert run["status"] == "Succeeded"
    assert run["duration_ms"] > 0
    assert "started by the Dataverse trigger job" in run["detail"]
    # The trigger job that started the run precedes it.
    trigger = [e for e in entries if e["kind"] == "system-job" and "flow trigger" in e["detail"]]
    assert trigger
    assert entries.index(trigger[0]) < order[-1]
    assert [e["indent"] for e in (entries[k] for k in order[:3])] == [0, 1, 2]

    # People see the same five, in the same order, on an indented timeline.
    shown = invoke("trace", chain["id"], "--store", str(tiny_store))
    assert shown.exit_code == 0, shown.output
    at = 0
    for text in [*chain["plugins"], chain["job"], chain["run"]]:
        at = shown.output.index(text, at) + len(text)
    assert "  └ plug-in" in shown.output
    # Tenant text is shown as it is (the simulator's flow names carry markup), not as markup.
    assert run["name"] in shown.output


# --- history and diff ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with three analysed scans of the tiny tenant, its clock moved on between them.

    The simulated history ends 12 h after its start clock, so each step is 6 h: a step of
    12 h would leave the third scan nothing new to collect.
    """
    folder = tmp_path_factory.mktemp("three-scans")
    process, url = serve_process(folder, seed=7, scale="tiny")
    try:
        secret = dict(
            shlex.split(line)[0].split("=", 1)
            for line in (folder / "env").read_text(encoding="utf-8").splitlines()
            if line.strip()
        )["AZURE_CLIENT_SECRET"]
        store = folder / "store.duckdb"
        config = ["--config", str(folder / "auditor.toml")]
        trust = ssl.create_default_context(cafile=str(folder / "ca.pem"))
        for scan in range(3):
            if scan:
                httpx.post(
                    f"{url}/_sim/clock", params={"advance_minutes": 360}, verify=trust
                ).raise_for_status()
            collected = invoke(
                *config,
                "collect",
                "--all-environments",
                "--store",
                str(store),
                env={"AZURE_CLIENT_SECRET": secret},
            )
            assert collected.exit_code == 0, collected.output
            analysed = invoke(*config, "analyze", "--store", str(store))
            assert analysed.exit_code == 0, analysed.output
        return store
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_history_shows_a_row_per_scan_with_trends(three_scans: Path) -> None:
    with duckdb.connect(str(three_scans), read_only=True) as con:
        new_rows = con.execute(
            "SELECT scan_id, sum(rows) FROM scan_queries GROUP BY ALL ORDER BY 1"
        ).fetchall()
    assert [s for s, _ in new_rows] == [1, 2, 3]
    assert all(n > 0 for _, n in new_rows)  # every scan brought new data

    result = invoke("history", "--json", "--store", str(three_scans))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    scans = data["scans"]
    assert [s["scan_id"] for s in scans] == [1, 2, 3]
    assert [s["time"] for s in scans] == sorted({s["time"] for s in scans})
    for scan in scans:
        assert list(scan["verdicts"]) == data["answers"]
        assert set(scan["verdicts"].values()) <= {"check", "do-not-check", "needs-review"}
        assert 0 < scan["failure_rate"] < 1
        assert scan["unnecessary_runs"] > 0
        assert scan["plugin_p95_ms"] > 0
        assert scan["flow_p95_ms"] > 0
    assert scans[0]["trends"] == {}
    for scan in scans[1:]:
        assert set(scan["trends"]) == {
            "failure_rate",
            "unnecessary_runs",
            "plugin_p95_ms",
            "flow_p95_ms",
        }
        assert set(scan["trends"].values()) <= {"↑", "↓", "→"}
    # The stored findings add up to the failure rate shown.
    with Store.open(three_scans, read_only=True) as store:
        rates = store.findings(3)
    measured = [
        json.loads(m) for m in rates.loc[rates["check_id"] == "flow-failure-rate", "measured"]
    ]
    failed, runs = sum(m["failed"] for m in measured), sum(m["runs"] for m in measured)
    assert scans[2]["failure_rate"] == pytest.approx(failed / runs, abs=1e-6)

    table = invoke("history", "--store", str(three_scans))
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if line.startswith("│ ")]
    assert [r.split("│")[1].strip() for r in rows] == ["1", "2", "3"]

    one = invoke("history", "--env", "Contoso Production", "--json", "--store", str(three_scans))
    assert one.exit_code == 0, one.output
    assert json.loads(one.output)["environment"] == "Contoso Production"


def findings_by_key(store: Path, scan_id: int) -> dict[tuple[str, str, str], tuple[str, str]]:
    with duckdb.connect(str(store), read_only=True) as con:
        rows = con.execute(
            "SELECT check_id, coalesce(environment_id, ''), coalesce(resource_id, ''), status,"
            " message FROM findings WHERE scan_id = ?",
            [scan_id],
        ).fetchall()
    return {(c, e, r): (s, m) for c, e, r, s, m in rows}


def test_diff_lists_what_changed_between_two_scans(three_scans: Path) -> None:
    a, b = findings_by_key(three_scans, 1), findings_by_key(three_scans, 3)
    appeared = {k for k, (s, _) in b.items() if s == "fail" and a.get(k, ("",))[0] != "fail"}
    gone = {k for k, (s, _) in a.items() if s == "fail" and b.get(k, ("",))[0] != "fail"}
    changed = {k for k in a.keys() & b.keys() if a[k] != b[k]} - appeared - gone
    status = {k for k in changed if a[k][0] != b[k][0]}
    assert status  # the scans differ

    result = invoke("diff", "1", "3", "--json", "--store", str(three_scans))
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)

    def keys(rows: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {(r["check_id"], r["environment_id"] or "", r["resource_id"] or "") for r in rows}

    assert keys(data["appeared"]) == appeared
    assert keys(data["disappeared"]) == gone
    assert keys(data["changed"]) == changed
    assert keys([r for r in data["changed"] if r["change"] == "status"]) == status

    shown = invoke("diff", "previous", "latest", "--limit", "500", "--store", str(three_scans))
    assert shown.exit_code == 0, shown.output
    assert "Scan 2 → scan 3" in shown.output
    # Scan 3 is the third scan in 30 days: the scan-history coverage gap closes there.
    full = invoke("diff", "1", "3", "--limit", "500", "--store", str(three_scans))
    assert "Status changed" in full.output
    assert "coverage-scan-history" in full.output
    assert "not-assessed → pass" in full.output
    summary = full.output.splitlines()[0]
    assert f"{len(appeared)} appeared, {len(gone)} disappeared, {len(changed)} changed" in summary


# --- export --------------------------------------------------------------------------------


def test_export_parquet_loads_with_the_stores_row_counts(three_scans: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    result = invoke("export", "--format", "parquet", "--out", str(out), "--store", str(three_scans))
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} == {f"{t}.parquet" for t in EXPORT_TABLES}
    with Store.open(three_scans, read_only=True) as store:
        counts = {t: store.count(t) for t in EXPORT_TABLES}
    assert counts["plugintracelogs"] > 0
    assert counts["findings"] > 0
    for table, expected in counts.items():
        frame = pd.read_parquet(out / f"{table}.parquet")
        assert len(frame) == expected, table
    runs = pd.read_parquet(out / "flow_api_runs.parquet")
    assert str(runs["start_time"].dt.tz) == "UTC"

    csv = invoke(
        "export", "-f", "csv", "-o", str(out), "-t", "plugintracelogs", "--store", str(three_scans)
    )
    assert csv.exit_code == 0, csv.output
    assert len(pd.read_csv(out / "plugintracelogs.csv")) == counts["plugintracelogs"]


# --- a new user's mistakes ---------------------------------------------------------------


def assert_one_line_error(result: Any, code: int, *words: str) -> None:
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == code, result.output
    assert len(lines) == 2, result.output
    assert lines[0].startswith("error:")
    assert lines[1].startswith("hint:")
    for word in words:
        assert word in result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    "args",
    [
        ("trace", "35aa827f-f009-4d86-988b-80eb3a4a37e9"),
        ("history",),
        ("diff", "1", "2"),
        ("export", "--out", "exported"),
    ],
)
def test_an_empty_or_missing_store_is_one_line_and_a_hint(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    empty = tmp_path / "empty.duckdb"
    Store.open(empty).close()
    assert_one_line_error(invoke(*args, "--store", str(empty)), 3, "no scan", "auditor collect")
    missing = tmp_path / "missing.duckdb"
    assert_one_line_error(invoke(*args, "--store", str(missing)), 3, "no store")
    assert not missing.exists()
    assert not (tmp_path / "exported").exists()


def test_misspelt_names_and_unknown_ids_suggest_what_exists(
    tiny_store: Path, three_scans: Path
) -> None:
    tiny = ["--store", str(tiny_store)]
    chain = simulated_chain()["id"]
    typo = chain[:-1] + ("0" if chain[-1] != "0" else "1")
    assert_one_line_error(invoke("trace", typo, *tiny), 2, "did you mean", chain, "auditor trace")
    assert_one_line_error(invoke("trace", "not-an-id", *tiny), 2, "e.g. `auditor trace")
    # Collected but never analysed: history says what to run.
    assert_one_line_error(invoke("history", *tiny), 3, "auditor analyze")
    scans = ["--store", str(three_scans)]
    assert_one_line_error(
        invoke("history", "--env", "Contoso Prodution", *scans), 2, "contoso production"
    )
    assert_one_line_error(invoke("diff", "1", "9", *scans), 2, "scan 9", "Analysed scans: 1, 2, 3")
    assert_one_line_error(invoke("diff", "lastest", "1", *scans), 2, "'lastest'", "history")
    assert_one_line_error(
        invoke("export", "--table", "plugintracelog", "--out", "x", *tiny), 2, "'plugintracelogs'"
    )
    assert_one_line_error(invoke("export", "--format", "xlsx", *tiny), 2, "parquet or csv")
