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
