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
import random
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.hostile.harness import Ran, assert_unchanged, run_auditor, snapshot

DATAVERSE = "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"
UPDATE = "20bebb1b-ea3e-db11-86a7-000a3a5473e8"  # the Update message, the same everywhere
KINDS = 5  # kinds of action the flows are drawn from: the most repeated blocks per action
PEAK_MB = 1_000
REPORTS_MB = 20
# The larger size, interpreter start included: 5 to 7 s on a quiet 2-core machine; the old
# grouping took 27 s for the flows (and the old reports were 150 MB for the steps).
SECONDS = 20
GROWTH = 3.0  # time at twice the input over time at the input


def _update(field: str, after: str | None) -> dict[str, Any]:
    return {
        "type": "OpenApiConnection",
        "inputs": {
            "host": {
                "connectionName": "shared_commondataserviceforapps",
                "operationId": "UpdateRecord",
                "apiId": DATAVERSE,
            },
            "parameters": {"entityName": "accounts", "recordId": "@{guid()}", field: "x"},
        },
        "runAfter": {after: ["Succeeded"]} if after else {},
    }


def write_flows(folder: Path, actions: int, flows: int = 3) -> Path:
    """An unpacked solution of `flows` flows of `actions` top-level actions, each an Update
    of one of five columns drawn at random: every five-action window recurs in many places,
    within each flow and across the three, and thousands are repeated blocks. Grouping the
    windows by filtering them once per repeated one took 62 s at 3 x 6,000 actions."""
    rng = random.Random(7)
    (folder / "Workflows").mkdir(parents=True)
    for index in range(flows):
        body: dict[str, Any] = {}
        after: str | None = None
        for n in range(actions):
            body[f"Update_{n}"] = _update(f"item/column{rng.randrange(KINDS)}", after)
            after = f"Update_{n}"
        trigger = {"manual": {"type": "Request", "kind": "Button", "inputs": {"schema": {}}}}
        document = {"properties": {"definition": {"triggers": trigger, "actions": body}}}
        name = f"Hostile{index}-{str(uuid.UUID(int=index + 1)).upper()}.json"
        (folder / "Workflows" / name).write_text(json.dumps(document), encoding="utf-8")
    return folder


def write_steps(path: Path, steps: int) -> Path:
    """A solution zip whose customizations.xml registers `steps` Update steps without
    filtering attributes (each a `plugin-update-unfiltered` finding). Written record by
    record: a child forked from a big test process reports that size as its peak."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        with archive.open("customizations.xml", "w") as xml:
            xml.write(b"<ImportExportXml><SdkMessageProcessingSteps>\n")
            for n in range(steps):
                xml.write(
                    f'<SdkMessageProcessingStep Name="Plugins.Account{n}: Update of account" '
                    f'SdkMessageProcessingStepId="{{{uuid.UUID(int=n + 1)}}}"><SdkMessageId>'
                    f"{UPDATE}</SdkMessageId><PrimaryEntity>account</PrimaryEntity><Mode>0"
                    "</Mode><Rank>1</Rank><Stage>40</Stage></SdkMessageProcessingStep>\n".encode()
                )
            xml.write(b"</SdkMessageProcessingSteps></ImportExportXml>")
        archive.writestr(
            "solution.xml",
            "<ImportExportXml><SolutionManifest><UniqueName>Hostile</UniqueName>"
            "</SolutionManifest></ImportExportXml>",
        )
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
    assert large.seconds < SECONDS, large.seconds
    assert large.seconds < GROWTH * small.seconds, (small.seconds, large.seconds)
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
