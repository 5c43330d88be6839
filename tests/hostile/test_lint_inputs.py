"""Hostile files for `auditor lint`: it reads only what it was asked to, within a budget per
run, and says what it left out.

A pull request can commit links, FIFOs, sparse files and crafted zips, and a pipeline runs
`auditor lint` on them. Every input is built here, at test time, in `tmp_path`; the auditor
runs as a pipeline runs it (`run_auditor`), and each test checks the time, the peak memory,
the exit code, the messages, and that nothing outside `out/` changed.
"""

from __future__ import annotations

import json
import os
import shutil
import warnings
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.harness import Ran, assert_unchanged, run_auditor, snapshot

FIXTURES = Path(__file__).parents[1] / "lint" / "fixtures"
SECRET = "s3cret-token-4f1d9a"
INVOICE_FLOW = "Workflows/ContosoInvoiceSync-5C6D7E8F-9A0B-EE11-8179-000D3A1B2C3D.json"
REFUSED = "lint reads regular files only, and follows no link it was not given"


def _lint(tmp_path: Path, *paths: str, timeout: float = 60, **options: Any) -> Ran:
    """`auditor lint PATHS --out out` in `tmp_path`, which must be left as it was outside
    `out/` (files bigger than 16 MB compared by size and time: hashing them is the slow part)."""
    out = tmp_path / "out"
    before = snapshot(tmp_path, skip=[out, *_big(tmp_path)]), _stats(_big(tmp_path))
    ran = run_auditor(["lint", *paths, "--out", "out"], cwd=tmp_path, timeout=timeout, **options)
    after = snapshot(tmp_path, skip=[out, *_big(tmp_path)]), _stats(_big(tmp_path))
    assert_unchanged(before[0], after[0])
    assert before[1] == after[1]
    assert "Traceback" not in ran.stderr, ran.stderr[-3000:]
    return ran


def _succeeded(ran: Ran) -> None:
    """Exit 0 with no error line: what could not be read is in the report, not on stderr."""
    assert ran.code == 0, ran.stderr[-3000:]
    assert not ran.error_lines(), ran.stderr[-3000:]


def _lint_with_open_stdin(tmp_path: Path, *paths: str, timeout: float) -> Ran:
    """`_lint` with stdin a pipe whose writing end stays open: reading it would block."""
    reading, writing = os.pipe()
    try:
        return _lint(tmp_path, *paths, timeout=timeout, stdin=reading)
    finally:
        os.close(reading)
        os.close(writing)


def _big(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.lstat().st_size > 16 * 1024 * 1024]


def _stats(paths: list[Path]) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in paths}


def _report(tmp_path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((tmp_path / "out" / "report.json").read_text("utf-8"))
    return loaded


def _errors(report: dict[str, Any]) -> list[str]:
    return [f["message"] for f in report["findings"] if f["status"] == "error"]


def _warnings(ran: Ran) -> list[str]:
    return [line for line in ran.stderr.splitlines() if line.startswith("warning:")]


def _workflows(tmp_path: Path) -> Path:
    """An unpacked solution (one folder of flows) to add hostile files to."""
    shutil.copytree(FIXTURES / "unpacked", tmp_path / "sol")
    return tmp_path / "sol" / "src" / "Workflows"


def test_links_fifos_and_devices_below_a_folder_are_refused_not_followed(
    tmp_path: Path,
) -> None:
    """A link to /dev/zero grew to 2.7 GB and a MemoryError, a FIFO or a link to /dev/stdin
    hung the job, a link out of PATH was read. Each is now an error finding naming it; the
    secret behind the link appears nowhere; stdin is a pipe that is never closed, so reading
    it would hang past the timeout."""
    workflows = _workflows(tmp_path)
    (tmp_path / "secret.txt").write_text(SECRET, encoding="utf-8")
    hostile = {
        "Zero-0A0B0C0D-1111-EE11-8179-000D3A1B2C3D.json": "a symbolic link",
        "Secret-0A0B0C0D-2222-EE11-8179-000D3A1B2C3D.json": "a symbolic link",
        "Stdin-0A0B0C0D-3333-EE11-8179-000D3A1B2C3D.json": "a symbolic link",
        "Fifo-0A0B0C0D-4444-EE11-8179-000D3A1B2C3D.json": "a FIFO (named pipe)",
    }
    names = list(hostile)
    os.symlink("/dev/zero", workflows / names[0])
    os.symlink(tmp_path / "secret.txt", workflows / names[1])
    os.symlink("/dev/stdin", workflows / names[2])
    os.mkfifo(workflows / names[3])
    ran = _lint_with_open_stdin(tmp_path, "sol", timeout=20)
    _succeeded(ran)
    assert ran.seconds < 20
    assert ran.peak_mb < 400, ran.peak_mb
    report = _report(tmp_path)
    assert report["scan"]["status"] == "partial"
    assert sorted(_errors(report)) == sorted(
        f"sol/src/Workflows/{name}: not read: {what}; {REFUSED}" for name, what in hostile.items()
    )
    assert len(report["findings"]) > len(hostile)  # the four real flows were linted
    written = b"".join(p.read_bytes() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert SECRET.encode() not in written
    assert SECRET not in ran.stdout + ran.stderr
    assert not _warnings(ran)


def test_a_link_to_a_folder_the_reader_reads_is_reported_not_entered(tmp_path: Path) -> None:
    """`Workflows -> elsewhere`: not entered, even to read flows, and said so."""
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "Stolen-0A0B0C0D-5555-EE11-8179-000D3A1B2C3D.json").write_text(
        SECRET, encoding="utf-8"
    )
    shutil.copytree(FIXTURES / "solution_zip", tmp_path / "sol")
    shutil.rmtree(tmp_path / "sol" / "Workflows")
    os.symlink(tmp_path / "elsewhere", tmp_path / "sol" / "Workflows")
    ran = _lint(tmp_path, "sol", timeout=30)
    _succeeded(ran)
    assert ran.seconds < 30
    assert ran.peak_mb < 400, ran.peak_mb
    errors = _errors(_report(tmp_path))
    assert f"sol/Workflows: not read: a symbolic link; {REFUSED}" in errors
    assert SECRET not in json.dumps(_report(tmp_path))


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda root: os.mkfifo(root / "pipe.json"), "is a FIFO (named pipe), not a file"),
        (lambda root: os.symlink("/dev/zero", root / "pipe.json"), "is a device, not a file"),
        (lambda root: os.symlink("/dev/stdin", root / "pipe.json"), "not a file or folder"),
    ],
)
def test_a_path_that_is_a_fifo_or_a_device_is_a_usage_error(
    tmp_path: Path, make: Any, says: str
) -> None:
    """Named on the command line, a link is followed (the user named it), but only to a file
    or a folder: a FIFO or a device is refused before it is opened."""
    make(tmp_path)
    ran = _lint_with_open_stdin(tmp_path, "pipe.json", timeout=20)
    ran.assert_one_line_error(2, "pipe.json", says)
    assert ran.seconds < 20
    assert ran.peak_mb < 400
    assert not (tmp_path / "out").exists()


def test_sixty_sparse_60_mb_files_are_refused_by_size_without_reading(tmp_path: Path) -> None:
    """60 sparse files of 60 MB (8 KB on disk each) ended in a MemoryError: each is over the
    per-file limit of a flow definition and is refused before a byte is read."""
    workflows = tmp_path / "sol" / "Workflows"
    workflows.mkdir(parents=True)
    for n in range(60):
        with (workflows / f"Big{n}-{n:08x}-1111-EE11-8179-000D3A1B2C3D.json").open("wb") as f:
            f.truncate(60 * 1024 * 1024)
    ran = _lint(tmp_path, "sol")
    _succeeded(ran)
    assert ran.seconds < 60
    assert ran.peak_mb < 400, ran.peak_mb
    errors = _errors(_report(tmp_path))
    assert len(errors) == 60
    assert all(e.endswith("not read: 60 MB, over the 8 MB limit") for e in errors), errors[:3]
    assert "Linted 0 file(s)" in ran.stderr


def test_the_run_budget_stops_reading_and_says_what_it_left_out(tmp_path: Path) -> None:
    """60 sparse files just under the per-file limit (480 MB in all): reading stops at the
    run's budget of flow definitions, one warning line says where, and the report is
    partial with an error finding saying so."""
    workflows = tmp_path / "sol" / "Workflows"
    workflows.mkdir(parents=True)
    for n in range(60):
        with (workflows / f"Big{n:02d}-{n:08x}-1111-EE11-8179-000D3A1B2C3D.json").open("wb") as f:
            f.truncate(8 * 1024 * 1024 - 1024)
    ran = _lint(tmp_path, "sol")
    _succeeded(ran)
    assert ran.seconds < 60
    assert ran.peak_mb < 800, ran.peak_mb
    (warning,) = _warnings(ran)
    assert warning.startswith(
        "warning: lint budget reached (over 128 MB of flow definitions): reading stopped at "
        "sol/Workflows/Big16-"
    )
    assert warning.endswith("; 44 file(s) left out; the report covers what was read")
    report = _report(tmp_path)
    assert report["scan"]["status"] == "partial"
    budget = [e for e in _errors(report) if "lint budget reached" in e]
    assert len(budget) == 1
    assert "44 file(s) left out" in budget[0]


def test_the_same_large_zip_three_times_is_read_once_within_the_budget(tmp_path: Path) -> None:
    """`lint z.zip z.zip z.zip` used 1.6 GB. The zip inflates to 496 MB (the former per-zip
    limit was 512 MB) in members under the per-member limit: it is read once, and reading
    stops at the run's 256 MB."""
    pad = (b"<x/>" + b" " * (1024 * 1024 - 4)) * 62
    with zipfile.ZipFile(tmp_path / "z.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        z.writestr("solution.xml", "<ImportExportXml/>")
        for n in range(8):
            step = (
                f'<SdkMessageProcessingStep Name="P{n}: Update of account" '
                f'SdkMessageProcessingStepId="{{0a0b0c0d-{n:04d}-ee11-8179-000d3a1b2c3d}}">'
                "<Stage>40</Stage></SdkMessageProcessingStep>"
            )
            z.writestr(
                f"SdkMessageProcessingSteps/{{{n}}}.xml",
                b"<Steps>" + step.encode() + pad + b"</Steps>",
            )
    assert (tmp_path / "z.zip").stat().st_size < 4 * 1024 * 1024
    ran = _lint(tmp_path, "z.zip", "z.zip", "z.zip")
    _succeeded(ran)
    assert ran.seconds < 60
    assert ran.peak_mb < 500, ran.peak_mb
    (warning,) = _warnings(ran)
    assert (
        "(over 256 MB read in all): reading stopped at z.zip!SdkMessageProcessingSteps/{4}"
        in warning
    )
    assert "4 file(s) left out" in warning
    assert "4 plug-in step(s)" in ran.stderr


@pytest.mark.parametrize(
    ("second", "named"),
    [
        (INVOICE_FLOW, f"{INVOICE_FLOW} twice;"),
        (INVOICE_FLOW.replace("/", "\\"), f"{INVOICE_FLOW} twice;"),
        ("Customizations.xml", "customizations.xml twice (also as Customizations.xml);"),
    ],
)
def test_a_zip_member_held_twice_is_an_error_finding_and_neither_copy_is_read(
    tmp_path: Path, second: str, named: str
) -> None:
    """Another extractor may take the other copy: the lint trusts neither."""
    source = FIXTURES / "solution_zip"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns of the duplicate name it writes
        with zipfile.ZipFile(tmp_path / "dup.zip", "w", zipfile.ZIP_DEFLATED) as z:
            for file in sorted(source.rglob("*")):
                if file.is_file():
                    z.write(file, file.relative_to(source).as_posix())
            z.writestr(second, b'{"properties": {"definition": {"triggers": {}, "actions": {}}}}')
    ran = _lint(tmp_path, "dup.zip", timeout=30)
    _succeeded(ran)
    assert ran.seconds < 30
    assert ran.peak_mb < 400
    report = _report(tmp_path)
    assert report["scan"]["status"] == "partial"
    twice = [e for e in _errors(report) if "twice" in e]
    assert twice
    assert all(e.endswith("another extractor may read the other copy") for e in twice)
    assert any(named in e for e in twice), twice
    flows = {f["resource_id"] for f in report["findings"] if f["resource_kind"] == "flow"}
    if "customizations" in named:
        assert "0 plug-in step(s)" in ran.stderr  # customizations.xml, its steps, not read
    else:
        assert "5c6d7e8f-9a0b-ee11-8179-000d3a1b2c3d" not in flows
