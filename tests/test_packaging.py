"""A non-editable install works: the wheel carries queries/ and reports/ and finds them."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_wheel_installs_and_finds_its_queries(tmp_path: Path) -> None:
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(wheels),
            str(REPO),
        ],
        check=True,
    )
    wheel = next(wheels.glob("pp_telemetry_auditor-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "auditor/_data/queries/catalog.toml" in names
    assert "auditor/_data/queries/dataverse/plugintracelogs.odata" in names
    assert "auditor/_data/reports/README.md" in names

    # A new venv with the wheel; the dependencies come from this test's environment through a
    # .pth file, placed after the venv's own site-packages so the wheel's copy wins.
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
        check=True,
    )
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    (Path(site) / "zz_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    helped = subprocess.run(
        [str(venv / "bin" / "auditor"), "--help"],
        cwd=elsewhere,
        check=True,
        capture_output=True,
        text=True,
    )
    assert "Simulated tenant" in helped.stdout
    probe = (
        "import auditor.queries as q, auditor.resources as r; "
        "spec = q.default_catalog()['plugintracelogs']; "
        "print(r.data_dir('queries')); print(spec.file); print(spec.entity_set)"
    )
    found = subprocess.run(
        [str(python), "-c", probe], cwd=elsewhere, check=True, capture_output=True, text=True
    ).stdout.split()
    assert found[0] == str(Path(site) / "auditor" / "_data" / "queries")
    assert found[1].startswith(found[0])
    assert found[2] == "plugintracelogs"
