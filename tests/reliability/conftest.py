"""The reliability suite's harness: a simulated tenant served in this process, collected by
`auditor collect` in a child process, exactly as a user runs it.

The collector runs as its own process so that it can be killed with SIGKILL, so that its
output, logs and exceptions can be searched byte for byte, and so that it has a CPU core of
its own while the simulator answers from a thread of the test process.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from auditor.sim.model import SimOptions
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from auditor.store import TABLES, Store

pytestmark = pytest.mark.reliability


class Tenant:
    """A simulated tenant served in-process, with its client files in `folder`."""

    def __init__(self, folder: Path, scale: str, options: SimOptions) -> None:
        self.tenant = generate(options.seed, scale)
        self.server = SimServer(self.tenant, options)
        self.server.start()
        self.folder = folder
        self.server.write_client_files(folder)
        self.config = folder / "auditor.toml"

    @property
    def stats(self) -> Any:
        """The simulator's counters (requests, faults, 429s, 401s, token requests)."""
        return self.server.stats

    def environment(self, **extra: str) -> dict[str, str]:
        """The collector's environment: the secret, the CA, and `extra` settings."""
        return {
            **os.environ,
            "AZURE_CLIENT_SECRET": self.tenant.client_secret,
            "SSL_CERT_FILE": str(self.folder / "ca.pem"),
            "COLUMNS": "200",
            **extra,
        }

    def command(self, *args: str) -> list[str]:
        """`python -m auditor --config <this tenant> ARGS`."""
        return [sys.executable, "-m", "auditor", "--config", str(self.config), *args]

    def start_collect(
        self, store: Path, *args: str, env: Mapping[str, str] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start `auditor collect --all-environments` into `store` (not waiting for it)."""
        return subprocess.Popen(
            self.command("collect", "--all-environments", "--store", str(store), *args),
            env=self.environment(**(env or {})),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )

    def collect(
        self, store: Path, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run `auditor collect --all-environments` into `store` to the end."""
        args = ("collect", "--all-environments", "--store", str(store), *args)
        return self.run(*args, env=env, timeout=timeout)

    def run(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run `auditor --config <this tenant> ARGS` to the end, output captured."""
        return subprocess.run(
            self.command(*args),
            env=self.environment(**(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    """`serve(scale, **SimOptions)`: a tenant served until the test ends."""
    started: list[Tenant] = []

    def start(scale: str = "tiny", **options: Any) -> Tenant:
        folder = tmp_path / f"sim{len(started)}"
        tenant = Tenant(folder, scale, SimOptions(seed=7, scale=scale, **options))
        started.append(tenant)
        return tenant

    yield start
    for tenant in started:
        tenant.stop()


def table_contents(path: Path) -> dict[str, pd.DataFrame]:
    """Every data table of a store, sorted by its key, for row-for-row comparison."""
    contents = {}
    with Store.open(path, read_only=True) as store:
        for name, spec in TABLES.items():
            keys = ", ".join(spec.key)
            query = f"SELECT * FROM {name} ORDER BY {keys}"  # noqa: S608 - names from TABLES
            frame = store._frame(query).reset_index(drop=True)
            if name == "environments":  # two simulators answer on two ports
                frame["dataverse_url"] = frame["dataverse_url"].str.replace(
                    r"127\.0\.0\.1:\d+", "sim", regex=True
                )
            contents[name] = frame
    return contents


def assert_same_store(expected: Path, got: Path) -> int:
    """Both stores hold the same rows in every data table; returns the rows compared."""
    left, right = table_contents(expected), table_contents(got)
    for name in TABLES:
        pd.testing.assert_frame_equal(left[name], right[name], obj=name)
    return sum(len(frame) for frame in left.values())


def assert_no_duplicates(path: Path) -> None:
    """No table holds two rows with the same key."""
    with Store.open(path, read_only=True) as store:
        for name, spec in TABLES.items():
            keys = ", ".join(spec.key)
            found = store._frame(
                f"SELECT count(*) AS n FROM (SELECT {keys} FROM {name}"  # noqa: S608
                f" GROUP BY {keys} HAVING count(*) > 1)"
            )
            assert int(found["n"].iloc[0]) == 0, f"{name} has duplicated keys"


SMALL_SAMPLE = ("--action-sample", "5")  # runs per flow read with their actions at scale small


def _clean(folder: Path, scale: str, *args: str) -> tuple[Path, float]:
    tenant = Tenant(folder / "sim", scale, SimOptions(seed=7, scale=scale))
    try:
        started = time.monotonic()
        result = tenant.collect(folder / "clean.duckdb", *args)
        seconds = time.monotonic() - started
    finally:
        tenant.stop()
    assert result.returncode == 0, result.stderr
    return folder / "clean.duckdb", seconds


@pytest.fixture(scope="session")
def clean_small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """A fault-free collection of the `small` tenant (seed 7, `SMALL_SAMPLE`) and the seconds
    it took: the store every disturbed collection of the same tenant must equal."""
    return _clean(tmp_path_factory.mktemp("clean-small"), "small", *SMALL_SAMPLE)


@pytest.fixture(scope="session")
def clean_tiny(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, float]:
    """The same for the `tiny` tenant with the default sample."""
    return _clean(tmp_path_factory.mktemp("clean-tiny"), "tiny")
