"""Fixtures shared by every test: a clean environment and redacted logging."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
import respx.mocks

from auditor.aiohttp_transport import AiohttpTransport
from auditor.logs import install_redaction

install_redaction()


class ScanTransportMocker(respx.mocks.HTTPCoreMocker):
    """respx's default mocker (httpcore's pools, under httpx's own transports and MSAL's
    sign-in), extended to the scan's aiohttp transport, whose requests and responses are
    httpx's already. respx picks a mocker by name (`respx.mock(using=...)`)."""

    name = "httpcore-and-scan"
    targets: ClassVar[list[str]] = [
        *respx.mocks.HTTPCoreMocker.targets,
        "auditor.aiohttp_transport.AiohttpTransport",
    ]

    @classmethod
    def to_httpx_request(cls, **kwargs: Any) -> httpx.Request:
        request = kwargs["request"]
        if isinstance(request, httpx.Request):
            # A copy, as the request was when sent: a retry signs the same request again.
            return httpx.Request(
                request.method,
                request.url,
                headers=request.headers.copy(),
                content=request.content,
                extensions=dict(request.extensions),
            )
        return super().to_httpx_request(**kwargs)  # type: ignore[no-any-return]

    @classmethod
    async def from_async_httpx_response(
        cls, httpx_response: httpx.Response, target: object, **kwargs: Any
    ) -> Any:
        if isinstance(target, AiohttpTransport):
            return httpx_response
        return await super().from_async_httpx_response(httpx_response, target, **kwargs)


respx.mocks.DEFAULT_MOCKER = ScanTransportMocker.name

# A pytest-xdist worker starts with COLUMNS=80 and LINES=24 in its environment. The command
# line's rich consoles are made when auditor.cli is imported (at collection) and would keep
# that width for good, ignoring the COLUMNS a test passes to CliRunner; a plain `pytest` has
# neither variable. Dropped before any test module imports the CLI.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

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


# The longest test files (`pytest --durations`), longest first: they start first, so under
# pytest-xdist (`--dist loadfile --no-loadscope-reorder` in pyproject.toml) no worker is
# still in one of them while the others have run out of tests. Only the order changes.
_LONGEST_FIRST = (
    "tests/reliability/test_fault_soak.py",
    "tests/analysis/test_truth_metrics.py",
    "tests/test_collect.py",
    "tests/reliability/test_crash_resume.py",
    "tests/hostile/test_interrupts.py",
)


# Files that start last: Spark's JVM keeps both cores busy for a minute, so it runs when the
# other worker has little left to slow down. (Beside it, a collection stopped by a full store
# once left sockets open: asyncio's TLS close before the handshake starts, closed since by
# `auditor.aiohttp_transport`; that test now passes beside two busy loops, 12 runs of 12.)
_LAST = ("tests/engine/test_parity.py",)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Move the files of `_LONGEST_FIRST` to the front and those of `_LAST` to the end;
    every file's tests stay together and in their order (the sort is stable)."""

    def rank(item: pytest.Item) -> int:
        file = item.nodeid.split("::", 1)[0]
        if file in _LAST:
            return len(_LONGEST_FIRST) + 1
        return _LONGEST_FIRST.index(file) if file in _LONGEST_FIRST else len(_LONGEST_FIRST)

    items.sort(key=rank)
