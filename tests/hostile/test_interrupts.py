"""A scheduler stopping a scan (Ctrl-C, SIGTERM) gets one line saying it resumes, the exit
code of the signal, and a next run that does resume (item 11 of the hostile-input review)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from auditor.sim.model import SimOptions
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from tests.hostile.harness import clean_environment, run_auditor


@contextmanager
def _tenant(folder: Path, **options: Any) -> Iterator[dict[str, str]]:
    """A tiny simulated tenant served with `options`, its client files in `folder`; yields
    the environment a scheduled `auditor` runs with."""
    tenant = generate(7, "tiny")
    with SimServer(tenant, SimOptions(seed=7, scale="tiny", **options)) as server:
        server.write_client_files(folder)
        yield clean_environment(
            folder,
            {"AZURE_CLIENT_SECRET": tenant.client_secret, "SSL_CERT_FILE": str(folder / "ca.pem")},
        )


def _start(
    args: list[str], folder: Path, env: dict[str, str], started: Callable[[], None]
) -> subprocess.Popen[str]:
    """`auditor ARGS` as a child whose stderr the test reads, started as `started` says."""
    return subprocess.Popen(
        [sys.executable, "-m", "auditor", *args],
        cwd=folder,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=started,
    )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A tiny tenant answering every request 400 ms late, so a collection lasts a while
    (about 13 s here: the signal at 6 s finds it busy)."""
    with _tenant(tmp_path, latency_ms=400) as env:
        yield tmp_path, env


def _as_from_a_terminal() -> None:
    """Ctrl-C as a terminal delivers it: not ignored, even when the tests themselves were
    started in the background (where a shell ignores SIGINT for its children)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)


def _as_a_background_job() -> None:
    """A script's background job: the shell starts it with Ctrl-C ignored."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    ("signum", "name", "code", "started"),
    [
        (signal.SIGINT, "SIGINT", 130, _as_from_a_terminal),
        (signal.SIGTERM, "SIGTERM", 143, _as_from_a_terminal),
        (signal.SIGTERM, "SIGTERM", 143, _as_a_background_job),
    ],
    ids=["ctrl-c", "sigterm", "sigterm-to-a-background-job"],
)
def test_an_interrupted_collection_says_it_resumes_and_does(
    served: tuple[Path, dict[str, str]],
    signum: int,
    name: str,
    code: int,
    started: Callable[[], None],
) -> None:
    folder, env = served
    args = ["--config", str(folder / "auditor.toml"), "collect", "--all-environments"]
    args += ["--store", "s.duckdb"]
    process = _start(["--quiet", *args], folder, env, started)
    time.sleep(6)  # signed in, pages stored
    assert process.poll() is None, process.communicate()
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    assert process.returncode == code, stderr[-3000:]
    assert "Traceback" not in stderr
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted:")]
    assert lines == [f"interrupted: stopped by {name}; every page collected so far is stored."], (
        stderr
    )
    assert "the scan resumes where it stopped" in stderr
    resumed = run_auditor(args, cwd=folder, env=env, timeout=240)
    assert resumed.code == 0, resumed.stderr[-3000:]
    assert "(resumed)" in resumed.stdout
    assert resumed.peak_mb < 1000


def test_a_long_service_protection_pause_is_logged_at_verbose(tmp_path: Path) -> None:
    """A scheduler's log at -v says why a collection went quiet: the tenant answered 429 with
    a Retry-After (here after 20 requests in its 5-minute window), and every request waits."""
    with _tenant(tmp_path, max_requests=20) as env:
        # The client believes Dataverse's documented budget: the tenant refuses first.
        env = {**env, "AUDITOR_REQUESTS_PER_WINDOW": "6000"}
        args = ["-v", "--config", str(tmp_path / "auditor.toml"), "collect"]
        args += ["--all-environments", "--store", "s.duckdb"]
        process = _start(args, tmp_path, env, _as_from_a_terminal)
        with process:
            assert process.stderr is not None
            said = ""
            try:
                for line in process.stderr:
                    if re.search(r"HTTP 429; every request to it waits \d+s", line):
                        said = line
                        break
            finally:
                process.kill()
    assert said.startswith("INFO auditor.http: 127.0.0.1:"), said
    assert "the scan goes on after" in said
