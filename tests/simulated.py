"""Collect a simulated tenant into a store through the CLI, for tests that compare analysis,
verdicts and reports with the ground truth."""

from __future__ import annotations

import hashlib
import os
import pickle
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.sim.launch import serve_process
from auditor.sim.scenario import generate
from auditor.sim.truth import compute_truth

_CACHE: dict[str, tuple[Path, dict[str, Any]]] = {}
# How long a test waits for a collection another pytest-xdist worker is making: longer than
# any collection takes; pytest-timeout still bounds the test.
_WAIT_SECONDS = 900.0


def collect_tenant(
    seed: int,
    scale: str,
    folder: Path,
    *,
    action_sample: int,
    deny: Iterable[tuple[str, str]] = (),
) -> tuple[Path, dict[str, Any]]:
    """Serve the tenant of `seed`/`scale` in a child process (its own CPU core) and collect
    it with `auditor collect --all-environments`; returns the store and the tenant's truth."""
    # Every run's action detail is read at once: far more than the 6000 requests per 5
    # minutes service protection admits. The comparison needs complete data, so the limit is
    # lifted here; honouring it is tested on its own.
    extra = ["--max-requests", "10000000"]
    for env, table in deny:
        extra += ["--deny", f"{env}:{table}"]
    process, _url = serve_process(folder, seed=seed, scale=scale, extra=extra)
    try:
        tenant = generate(seed, scale)
        store = folder / "store.duckdb"
        result = CliRunner().invoke(
            app,
            [
                "--config",
                str(folder / "auditor.toml"),
                "collect",
                "--all-environments",
                "--store",
                str(store),
                "--action-sample",
                str(action_sample),
            ],
            env={"AZURE_CLIENT_SECRET": tenant.client_secret},
        )
        assert result.exit_code == 0, result.output
        return store, compute_truth(tenant)
    finally:
        process.terminate()
        process.communicate(timeout=30)


def _session_folder(factory: pytest.TempPathFactory) -> Path:
    """Where this test session keeps its collections: its base temporary directory, or under
    pytest-xdist the one all workers of the session share (each worker's is a child of it)."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent
    folder = base / "collected"
    folder.mkdir(exist_ok=True)
    return folder


def _collected_once(
    name: str,
    factory: pytest.TempPathFactory,
    collect: Callable[[Path], tuple[Path, dict[str, Any]]],
) -> tuple[Path, dict[str, Any]]:
    """The store and truth of collection `name`, made by the first test of the session (in
    any pytest-xdist worker) that asks for it; the others wait for it and reuse it."""
    if name in _CACHE:
        return _CACHE[name]
    root = _session_folder(factory)
    folder, done, failed = root / name, root / f"{name}.done", root / f"{name}.failed"
    try:
        os.close(os.open(root / f"{name}.claim", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        deadline = time.monotonic() + _WAIT_SECONDS
        while not done.exists():
            if failed.exists():
                pytest.fail(f"collecting {name} failed in another worker: {failed.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"collecting {name} in another worker took too long")
            time.sleep(0.2)
    else:
        folder.mkdir()
        try:
            store, truth = collect(folder)
            (folder / "truth.pickle").write_bytes(pickle.dumps(truth))
        except BaseException as error:
            failed.write_text(repr(error)[:2000], encoding="utf-8")
            raise
        # The marker last: a waiting worker reads the folder only once it is complete.
        done.write_text(store.name, encoding="utf-8")
    store = folder / done.read_text(encoding="utf-8")
    truth = pickle.loads((folder / "truth.pickle").read_bytes())  # noqa: S301 - written above
    _CACHE[name] = (store, truth)
    return _CACHE[name]


def collected_copy(
    seed: int,
    scale: str,
    factory: pytest.TempPathFactory,
    *,
    action_sample: int = 1000,
    deny: Iterable[tuple[str, str]] = (),
) -> tuple[Path, dict[str, Any]]:
    """A private copy of the store of one collection, made once per test session (several
    test modules compare the same tenants with the truth), also across pytest-xdist workers."""
    denied = sorted(deny)
    key = hashlib.sha256(repr(denied).encode()).hexdigest()[:12] if denied else "all"
    store, truth = _collected_once(
        f"{scale}-{seed}-sample{action_sample}-{key}",
        factory,
        lambda folder: collect_tenant(
            seed, scale, folder, action_sample=action_sample, deny=denied
        ),
    )
    copy = factory.mktemp(f"{scale}-{seed}") / "store.duckdb"
    shutil.copy(store, copy)
    return copy, truth
