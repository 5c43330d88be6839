"""Fixtures shared by every test: a clean environment and redacted logging."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.logs import install_redaction

install_redaction()

# Variables that would make a test depend on the machine it runs on.
_MACHINE_VARIABLES = ("AUDITOR_", "AZURE_")


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AUDITOR_* / AZURE_* from the machine, a private cache dir, a private cwd."""
    for name in list(os.environ):
        if name.startswith(_MACHINE_VARIABLES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def anyio_backend() -> str:
    """Async tests run on asyncio, like the auditor."""
    return "asyncio"


def pytest_addoption(parser: pytest.Parser) -> None:
    """`pytest --update-golden` rewrites tests/golden/ from the current output, and the
    renderers' fixture tests/report/fixtures/tiny-model.json from tests/golden/report.json."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        default=False,
        help="rewrite the golden report files in tests/golden/ and the renderer fixture "
        "tests/report/fixtures/tiny-model.json instead of comparing",
    )
