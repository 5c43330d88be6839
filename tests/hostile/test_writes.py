"""Every file the auditor writes: links already in `--out` are replaced or refused, never
followed; a write that fails (a full disk, `--out` naming a file) is one line and exit 3 and
leaves complete files or none; files are owner-only (0600) and folders made 0700, whatever
the umask.

The reports come from a lint of a flow built here, so most tests need no tenant; `report`
and `export` use the simulator's tiny tenant, collected once per session and analysed here.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from simulated import collected_copy

from auditor.errors import WriteError
from auditor.sim.model import SimOptions
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from tests.hostile.harness import Ran, assert_unchanged, run_auditor, snapshot

REPORTS = ("report.md", "report.html", "report.json", "report.sarif")
SECONDS = 60  # a subprocess that imports pandas and DuckDB, on a loaded test machine
PEAK_MB = 600
# Below report.html of the flow built here (about 85 KB) and above report.md (about 24 KB):
# the run fails part-way through its formats.
FULL_DISK_MB = 0.05


def _flow_folder(root: Path) -> Path:
    """`src/Workflows/Flow-<guid>.json`: one recurrence flow, as a solution export holds it."""
    definition = {
        "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/"
        "2016-06-01/workflowdefinition.json#",
        "contentVersion": "1.0.0.0",
        "triggers": {
            "Recurrence": {"type": "Recurrence", "recurrence": {"frequency": "Day", "interval": 1}}
        },
        "actions": {"Compose": {"runAfter": {}, "type": "Compose", "inputs": "@utcNow()"}},
    }
    folder = root / "src" / "Workflows"
    folder.mkdir(parents=True)
    flow = folder / "Flow-3F2A9C1E-5B7D-EE11-8179-000D3A1B2C3D.json"
    flow.write_text(json.dumps({"properties": {"definition": definition}}), encoding="utf-8")
    return root / "src"


def _run(args: list[str], root: Path, file_size_mb: float | None = None) -> Ran:
    """The auditor in `root`, bounded in time and memory."""
    ran = run_auditor(args, cwd=root, file_size_mb=file_size_mb)
    assert ran.seconds < SECONDS, ran.seconds
    assert ran.peak_mb < PEAK_MB, ran.peak_mb
    return ran


def _lint(root: Path, out: str = "out", file_size_mb: float | None = None) -> Ran:
    return _run(["lint", "src", "--out", out], root, file_size_mb)


def _assert_complete(out: Path) -> None:
    """Every report in `out` parses to its end, and no temporary file is left."""
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")], list(out.rglob("*"))
    for name in ("report.json", "report.sarif"):
        if (out / name).exists():
            json.loads((out / name).read_text(encoding="utf-8"))
    if (out / "report.html").exists():
        assert (out / "report.html").read_text(encoding="utf-8").rstrip().endswith("</html>")
    for csv in (out / "evidence").glob("*.csv") if (out / "evidence").is_dir() else []:
        assert csv.read_bytes().endswith(b"\r\n"), csv


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def _assert_private(out: Path) -> None:
    """`out` and every folder below it 0700, every file 0600."""
    assert _mode(out) == 0o700, oct(_mode(out))
    for path in out.rglob("*"):
        want = 0o700 if path.is_dir() else 0o600
        assert _mode(path) == want, (path, oct(_mode(path)))


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    """A permissive umask for this process and the children it starts meanwhile."""
    before = os.umask(mask)
    try:
        yield
    finally:
        os.umask(before)


@pytest.fixture(scope="module")
def analysed_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny tenant's store (shared with the other suites), analysed once for `report`."""
    store, _truth = collected_copy(7, "tiny", tmp_path_factory, action_sample=50)
    ran = run_auditor(["--quiet", "analyze", "--store", str(store)], cwd=store.parent)
    assert ran.code == 0, ran.stderr[-3000:]
    return store


# --- links already in --out ----------------------------------------------------------------


def test_a_link_at_a_report_is_replaced_and_its_target_untouched(tmp_path: Path) -> None:
    _flow_folder(tmp_path)
    (tmp_path / "victim").write_text("the victim's own text\n", encoding="utf-8")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "report.md").symlink_to("../victim")
    before = snapshot(tmp_path, skip=[tmp_path / "out"])
    ran = _lint(tmp_path)
    assert ran.code == 0, ran.stderr[-3000:]
    assert_unchanged(before, snapshot(tmp_path, skip=[tmp_path / "out"]))
    report = tmp_path / "out" / "report.md"
    assert not report.is_symlink()
    assert report.is_file()
    assert "victim" not in report.read_text(encoding="utf-8")
    _assert_complete(tmp_path / "out")


def test_a_link_at_the_evidence_folder_is_refused_and_nothing_written(
    tmp_path: Path, analysed_store: Path
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "findings.csv").write_text("someone else's\n", encoding="utf-8")
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.md").write_text("the previous report\n", encoding="utf-8")
    (out / "evidence").symlink_to("../elsewhere")
    before = snapshot(tmp_path)
    ran = _run(["report", "--store", str(analysed_store), "--out", "out"], tmp_path)
    ran.assert_one_line_error(3, "out/evidence", "symbolic link")
    # All or nothing: the refusal comes before any report is renamed into place.
    assert_unchanged(before, snapshot(tmp_path))


@pytest.mark.parametrize("command", ["lint", "report", "export"])
def test_out_itself_a_link_is_refused(
    tmp_path: Path, command: str, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "out").symlink_to("elsewhere")
    if command == "lint":
        _flow_folder(tmp_path)
        args = ["lint", "src", "--out", "out"]
    else:
        store = request.getfixturevalue("analysed_store")
        args = [command, "--store", str(store), "--out", "out"]
    before = snapshot(tmp_path)
    _run(args, tmp_path).assert_one_line_error(3, "out", "symbolic link")
    assert_unchanged(before, snapshot(tmp_path))


def test_export_refuses_a_link_at_a_tables_file(tmp_path: Path, analysed_store: Path) -> None:
    (tmp_path / "victim").write_text("the victim's own text\n", encoding="utf-8")
    (tmp_path / "out").mkdir(mode=0o700)
    (tmp_path / "out" / "flows.csv").symlink_to("../victim")
    before = snapshot(tmp_path)
    args = ["export", "-f", "csv", "--store", str(analysed_store), "--out", "out"]
    _run(args, tmp_path).assert_one_line_error(3, "flows.csv", "symbolic link")
    assert_unchanged(before, snapshot(tmp_path))


# --- write errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["lint", "report", "export", "truth"])
def test_out_naming_a_file_is_one_line_and_the_file_unchanged(
    tmp_path: Path, command: str, request: pytest.FixtureRequest
) -> None:
    (tmp_path / "out").write_text("not a folder\n", encoding="utf-8")
    if command == "lint":
        _flow_folder(tmp_path)
        args = ["lint", "src", "--out", "out"]
    elif command == "truth":
        args = ["sim", "truth", "--scale", "tiny", "--out", "out/truth.json"]
    else:
        store = request.getfixturevalue("analysed_store")
        args = [command, "--store", str(store), "--out", "out"]
    before = snapshot(tmp_path)
    _run(args, tmp_path).assert_one_line_error(3, "out", "not a folder")
    assert_unchanged(before, snapshot(tmp_path))


def test_a_full_disk_part_way_through_the_formats_leaves_no_truncated_report(
    tmp_path: Path,
) -> None:
    _flow_folder(tmp_path)
    ran = _lint(tmp_path, file_size_mb=FULL_DISK_MB)
    ran.assert_one_line_error(3, "report.html", "File too large")
    assert "hint:" in ran.stderr
    # Nothing was there before, and nothing is: report.md (small enough) was not renamed
    # into place either, as the set is renamed only once every file is complete.
    assert not [p.name for p in (tmp_path / "out").iterdir()]


def test_a_full_disk_keeps_the_previous_complete_reports(tmp_path: Path) -> None:
    _flow_folder(tmp_path)
    assert _lint(tmp_path).code == 0
    previous = {name: (tmp_path / "out" / name).read_bytes() for name in REPORTS}
    _lint(tmp_path, file_size_mb=FULL_DISK_MB).assert_one_line_error(3, "report.html")
    _assert_complete(tmp_path / "out")
    assert {p.name for p in (tmp_path / "out").iterdir()} == set(REPORTS)
    assert {name: (tmp_path / "out" / name).read_bytes() for name in REPORTS} == previous


@pytest.mark.parametrize("command", ["report", "export-parquet", "export-csv"])
def test_a_full_disk_in_report_or_export_is_one_line_and_leaves_no_partial_file(
    tmp_path: Path, analysed_store: Path, command: str
) -> None:
    name, _, fmt = command.partition("-")
    args = [name, "--store", str(analysed_store), "--out", "out", *(["-f", fmt] if fmt else [])]
    ran = _run(args, tmp_path, file_size_mb=FULL_DISK_MB)
    ran.assert_one_line_error(3, "cannot write out/", "File too large")
    assert "free space" in ran.stderr  # the hint
    out = tmp_path / "out"
    assert not [p for p in out.rglob("*") if p.is_file()], list(out.rglob("*"))


def test_a_full_disk_in_sim_truth_keeps_the_previous_file(tmp_path: Path) -> None:
    (tmp_path / "truth.json").write_text('{"previous": true}\n', encoding="utf-8")
    args = ["sim", "truth", "--scale", "tiny", "--out", "truth.json"]
    _run(args, tmp_path, file_size_mb=0.005).assert_one_line_error(3, "truth.json")
    assert json.loads((tmp_path / "truth.json").read_text(encoding="utf-8")) == {"previous": True}
    assert [p.name for p in tmp_path.iterdir()] == ["truth.json"]


# --- modes ------------------------------------------------------------------------------------


def test_lint_reports_are_owner_only_whatever_the_umask(tmp_path: Path) -> None:
    _flow_folder(tmp_path)
    with _umask(0):
        ran = _lint(tmp_path, out="deep/out")
    assert ran.code == 0, ran.stderr[-3000:]
    _assert_private(tmp_path / "deep")


@pytest.mark.parametrize(
    "args",
    [
        ["report", "--out", "out"],
        ["export", "--out", "out"],
        ["export", "-f", "csv", "--out", "out"],
        ["sim", "truth", "--scale", "tiny", "--out", "out/truth.json"],
    ],
    ids=["report", "export-parquet", "export-csv", "sim-truth"],
)
def test_reports_evidence_exports_and_truth_are_owner_only_whatever_the_umask(
    tmp_path: Path, args: list[str], request: pytest.FixtureRequest
) -> None:
    if args[0] != "sim":
        args = [*args, "--store", str(request.getfixturevalue("analysed_store"))]
    with _umask(0):
        ran = _run(args, tmp_path)
    assert ran.code == 0, ran.stderr[-3000:]
    _assert_private(tmp_path / "out")
    if args[0] == "report":
        assert list((tmp_path / "out" / "evidence").glob("*.csv"))
        _assert_complete(tmp_path / "out")


def test_the_simulators_client_files_are_owner_only_and_never_through_a_link(
    tmp_path: Path,
) -> None:
    server = SimServer(generate(7, "tiny"), SimOptions(seed=7, scale="tiny"))
    server.start()
    try:
        with _umask(0):
            server.write_client_files(tmp_path / "ca-out")
        _assert_private(tmp_path / "ca-out")
        assert {p.name for p in (tmp_path / "ca-out").iterdir()} == {
            "ca.pem",
            "env",
            "auditor.toml",
        }
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "linked").symlink_to("elsewhere")
        with pytest.raises(WriteError, match="symbolic link"):
            server.write_client_files(tmp_path / "linked")
        assert not list((tmp_path / "elsewhere").iterdir())
    finally:
        server.stop()
