"""The README is the front door: its test command is the one CI runs."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_ci_runs_the_readme_test_command() -> None:
    ci = (REPO / ".ci" / "run").read_text()
    command = re.search(r"^TEST_COMMAND='(.+)'$", ci, re.MULTILINE)
    assert command is not None
    readme = (REPO / "README.md").read_text()
    assert f"\n{command.group(1)}\n" in readme
    assert "venv" in command.group(1)
    assert "pip install" in command.group(1)


def test_the_readme_lists_every_check_with_its_default_thresholds() -> None:
    from auditor.checks import REGISTRY

    text = (REPO / "README.md").read_text(encoding="utf-8")
    for check in REGISTRY:
        line = next((row for row in text.splitlines() if row.startswith(f"| `{check.id}` |")), None)
        assert line is not None, check.id
        for threshold in check.meta.thresholds:
            assert f"`{threshold.name}` = {threshold.default}" in line, (check.id, threshold.name)
