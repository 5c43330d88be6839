"""The renderers' fixture is the golden model: `fixtures/tiny-model.json` is
tests/golden/report.json, which `pytest --update-golden` rewrites (test_end_to_end.py) and
then copies here (this test runs after it)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.sample import FIXTURE

GOLDEN_MODEL = Path(__file__).resolve().parents[1] / "golden" / "report.json"


def test_the_renderer_fixture_is_the_golden_model(request: pytest.FixtureRequest) -> None:
    golden = GOLDEN_MODEL.read_text(encoding="utf-8")
    if request.config.getoption("--update-golden"):
        FIXTURE.write_text(golden, encoding="utf-8")
        return
    assert FIXTURE.read_text(encoding="utf-8") == golden, (
        f"{FIXTURE} differs from {GOLDEN_MODEL}; run "
        "`pytest tests/report/test_end_to_end.py tests/report/test_fixture.py --update-golden` "
        "and review the diff"
    )
