"""Precision and recall of the definition checks on real exported flows.

`auditor lint` runs over every flow of this folder (see README.md: 142 flows from five public
repositories, with their commits and licences), and each definition check's findings are
compared with the labels in `labels/*.csv`, written by reading the definitions against the
platform rules in README.md. A `fail` finding on a flow labelled `pass` or `n/a` is a false
positive, a flow labelled `fail` without a `fail` finding a false negative. The table is
printed (`pytest -s tests/corpus`) and every check must reach 90 % precision and recall.
"""

from __future__ import annotations

import csv
from collections import Counter
from functools import cache
from pathlib import Path
from typing import Any

from auditor.lint.run import lint
from auditor.settings import Settings

CORPUS = Path(__file__).parent
CHECKS = (
    "flow-no-error-handling",
    "flow-handled-failure-succeeds",
    "flow-invoked-no-response",
    "flow-event-trigger-no-condition",
    "flow-update-trigger-unfiltered",
    "flow-updates-own-trigger",
    "flow-retry-none-unhandled",
    "flow-sequential-loop",
    "flow-monolithic",
    "flow-repeated-block",
)
THRESHOLD = 0.9


def labels() -> dict[tuple[str, str], tuple[str, str]]:
    """(flow path below tests/corpus, check) -> (expect, why)."""
    out: dict[tuple[str, str], tuple[str, str]] = {}
    for path in sorted((CORPUS / "labels").glob("*.csv")):
        with path.open(newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                key = (row["flow"], row["check"])
                assert key not in out, f"{path.name}: {key} labelled twice"
                assert row["expect"] in ("fail", "pass", "n/a"), f"{path.name}: {row}"
                assert row["why"].strip(), f"{path.name}: {key} has no reason"
                out[key] = (row["expect"], row["why"])
    return out


@cache
def predictions() -> dict[tuple[str, str], str]:
    """(flow path below tests/corpus, check) -> the status of its finding ("" when none)."""
    model = lint([CORPUS], Settings()).model.to_json()
    file_of: dict[str, str] = {}
    for finding in model["findings"]:
        if finding["check_id"] == "flow-definition-unreadable" and finding["location"]:
            path = Path(finding["location"]["file"]).resolve()
            file_of[finding["resource_id"]] = path.relative_to(CORPUS.resolve()).as_posix()
    out: dict[tuple[str, str], str] = {}
    for finding in model["findings"]:
        check = finding["check_id"]
        if check not in CHECKS:
            continue
        if check == "flow-repeated-block":
            if finding["status"] == "fail":
                for row in finding["evidence"]:
                    out[(file_of[row["flow_id"]], check)] = "fail"
            continue
        flow = file_of.get(finding["resource_id"])
        if flow is not None:
            out[(flow, check)] = finding["status"]
    return out


def score() -> list[dict[str, Any]]:
    """One row per check: labelled fails and passes, true and false positives, precision and
    recall (None where undefined), and the flows on which tool and label disagree."""
    found, labelled = predictions(), labels()
    table = []
    for check in CHECKS:
        counts: Counter[str] = Counter()
        wrong = []
        for (flow, label_check), (expect, why) in sorted(labelled.items()):
            if label_check != check:
                continue
            counts[expect] += 1
            failed = found.get((flow, check)) == "fail"
            if failed and expect == "fail":
                counts["tp"] += 1
            elif failed:
                counts["fp"] += 1
                wrong.append(f"false fail  {flow}: labelled {expect} ({why})")
            elif expect == "fail":
                counts["fn"] += 1
                status = found.get((flow, check)) or "no finding"
                wrong.append(f"missed fail {flow}: {status} ({why})")
        flagged, positives = counts["tp"] + counts["fp"], counts["tp"] + counts["fn"]
        table.append(
            {
                "check": check,
                "fails": counts["fail"],
                "passes": counts["pass"],
                "n/a": counts["n/a"],
                "tp": counts["tp"],
                "fp": counts["fp"],
                "fn": counts["fn"],
                "precision": counts["tp"] / flagged if flagged else None,
                "recall": counts["tp"] / positives if positives else None,
                "wrong": wrong,
            }
        )
    return table


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f} %"


def test_every_flow_is_labelled_for_every_check() -> None:
    flows = {flow for flow, _ in labels()}
    on_disk = {
        p.relative_to(CORPUS).as_posix()
        for p in CORPUS.rglob("*.json")
        if p.parent.name.lower() == "workflows" or p.name == "definition.json"
    }
    assert flows == on_disk
    assert len(flows) >= 80
    assert len({flow.split("/", 1)[0] for flow in flows}) >= 4
    for flow in flows:
        assert {check for f, check in labels() if f == flow} == set(CHECKS), flow


def test_precision_and_recall_per_check() -> None:
    table = score()
    print()
    print(f"{'check':34} {'fails':>5} {'passes':>6} {'n/a':>4} {'precision':>9} {'recall':>7}")
    for row in table:
        print(
            f"{row['check']:34} {row['fails']:5} {row['passes']:6} {row['n/a']:4} "
            f"{_pct(row['precision']):>9} {_pct(row['recall']):>7}"
        )
    for row in table:
        for line in row["wrong"]:
            print(f"  {row['check']}: {line}")
    low = [
        row["check"]
        for row in table
        if any(v is not None and v < THRESHOLD for v in (row["precision"], row["recall"]))
    ]
    assert not low, f"below {THRESHOLD:.0%}: {low}"


def test_checks_are_tested_on_both_sides() -> None:
    """A check with no labelled fail (or pass) in the corpus would score without being tested
    on that side: every check has both."""
    for row in score():
        assert row["fails"] > 0, row["check"]
        assert row["passes"] > 0, row["check"]


def test_messages_name_actions_as_the_designer_shows_them() -> None:
    """The designer shows an action's key with underscores as spaces; no message of a
    definition check spells a key with underscores (the key stays in values and evidence)."""
    model = lint([CORPUS], Settings()).model.to_json()
    keys: set[str] = set()
    for finding in model["findings"]:
        for row in finding["evidence"] or ():
            for column in ("action_name", "catch_action", "start_action", "guarded_action"):
                value = row.get(column)
                if isinstance(value, str) and "_" in value and len(value) > 6:
                    keys.add(value)
    assert keys  # the corpus has such keys: the test can fail
    messages = [f["message"] for f in model["findings"] if f["check_id"] in CHECKS]
    spelled = sorted({key for key in keys for message in messages if key in message})
    assert not spelled
