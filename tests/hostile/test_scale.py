"""Hostile sizes for `auditor lint`: files anyone can commit may hold thousands of actions
per flow or hundreds of thousands of plug-in steps in a small zip. The lint must grow
linearly with them, in time and memory, and its reports must stay a few MB.

Both inputs are built here, at test time, at two sizes; each size is linted as a pipeline
runs it (`run_auditor`) and the test checks the time, the growth from one size to twice
it (measured in the same test: 2 is linear, 4 quadratic), the peak memory, the size of
`out/`, the exit code, and that nothing outside `out/` changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from auditor.sim.hostile_solutions import write_repeated_flows, write_unfiltered_steps
from tests.hostile.harness import Ran, assert_unchanged, run_auditor, snapshot

PEAK_MB = 1_000
REPORTS_MB = 20
# CPU seconds of the larger size, interpreter start included: 5 to 7 s on a quiet 2-core
# machine; the old grouping took 27 s for the flows (and the old reports were 150 MB for the
# steps). CPU, not wall time: under a load of 11 on 2 cores the steps took 23 s of wall time.
SECONDS = 20
GROWTH = 3.0  # CPU time at twice the input over CPU time at the input


def write_flows(folder: Path, actions: int) -> Path:
    """Three flows of `actions` top-level actions (see `write_repeated_flows`): grouping
    their repeated blocks by filtering the windows once per repeated one took 62 s at
    3 x 6,000 actions."""
    write_repeated_flows(folder, actions)
    return folder


def write_steps(path: Path, steps: int) -> Path:
    """A solution zip of `steps` unfiltered Update steps (see `write_unfiltered_steps`)."""
    write_unfiltered_steps(path, steps)
    return path


def _lint(work: Path, source: Path) -> tuple[Ran, dict[str, Any]]:
    """`auditor lint SOURCE --out out` in `work`; checks what every size must meet and
    returns the run and its report.json."""
    out = work / "out"
    before = snapshot(work, skip=[out])
    ran = run_auditor(["lint", source.name, "--out", "out"], cwd=work, timeout=120)
    assert_unchanged(before, snapshot(work, skip=[out]))
    assert ran.code == 0, ran.stderr[-3000:]
    assert "Traceback" not in ran.stderr
    assert not ran.error_lines(), ran.stderr[-3000:]
    assert ran.peak_mb < PEAK_MB, ran.peak_mb
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert written < REPORTS_MB * 2**20, written
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return ran, report


def _twice(tmp_path: Path, size: int, write: Callable[[Path, int], Path]) -> list[Any]:
    """The input at `size` and at twice it, each linted in a folder of its own."""
    runs = []
    for n in (size, 2 * size):
        work = tmp_path / str(n)
        work.mkdir()
        runs.append((n, *_lint(work, write(work / "input", n))))
    (_, small, _), (_, large, _) = runs
    assert large.cpu_seconds < SECONDS, large.cpu_seconds
    assert large.cpu_seconds < GROWTH * small.cpu_seconds, (small.cpu_seconds, large.cpu_seconds)
    return runs


def _counts(report: dict[str, Any], check: str, status: str = "fail") -> tuple[int, int, int]:
    """(findings listed, findings in all, findings left out) of a check and status."""
    listed = sum(1 for f in report["findings"] if (f["check_id"], f["status"]) == (check, status))
    count = next(
        c for c in report["finding_counts"] if (c["check_id"], c["status"]) == (check, status)
    )
    return listed, count["findings"], count["left_out"]


def test_three_flows_of_thousands_of_actions_lint_in_linear_time(tmp_path: Path) -> None:
    """3 x 3,000 and 3 x 6,000 actions: thousands of repeated blocks, each judged once."""
    for _, _, report in _twice(tmp_path, 3_000, write_flows):
        listed, found, left_out = _counts(report, "flow-repeated-block")
        assert found > 100
        assert (listed, left_out) == (min(found, 1_000), max(0, found - 1_000))
        answer = next(a for a in report["answers"] if a["id"] == "decomposed-steps")
        assert answer["verdict"] == "do-not-check"


def test_fifty_thousand_plugin_steps_lint_in_linear_time_with_bounded_reports(
    tmp_path: Path,
) -> None:
    """25,000 and 50,000 unfiltered Update steps in a zip of a few hundred KB: every step
    is judged and counted, the reports list the first 1,000."""
    for steps, ran, report in _twice(
        tmp_path, 25_000, lambda path, n: write_steps(path.with_suffix(".zip"), n)
    ):
        assert f"{steps:,} plug-in step(s)" in ran.stderr
        assert _counts(report, "plugin-update-unfiltered") == (1_000, steps, steps - 1_000)
        answer = next(a for a in report["answers"] if a["id"] == "trigger-conditions")
        assert answer["verdict"] == "do-not-check"
        assert answer["coverage"]["step"]["audited"] == steps
        sarif = json.loads((tmp_path / str(steps) / "out" / "report.sarif").read_text("utf-8"))
        rules = [r["ruleId"] for r in sarif["runs"][0]["results"]]
        assert rules.count("plugin-update-unfiltered") == 1_000
        assert sarif["runs"][0]["properties"]["resultsLeftOut"] == {
            "plugin-update-unfiltered": steps - 1_000
        }
