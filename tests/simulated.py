"""Collect a simulated tenant into a store through the CLI, for tests that compare analysis,
verdicts and reports with the ground truth."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from auditor.cli import app
from auditor.sim.launch import serve_process
from auditor.sim.scenario import generate
from auditor.sim.truth import compute_truth

_CACHE: dict[tuple[int, str, int, frozenset[tuple[str, str]]], tuple[Path, dict[str, Any]]] = {}


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


def collected_copy(
    seed: int,
    scale: str,
    factory: pytest.TempPathFactory,
    *,
    action_sample: int = 1000,
    deny: Iterable[tuple[str, str]] = (),
) -> tuple[Path, dict[str, Any]]:
    """A private copy of the store of one collection, made once per test session (several
    test modules compare the same tenants with the truth)."""
    key = (seed, scale, action_sample, frozenset(deny))
    if key not in _CACHE:
        folder = factory.mktemp(f"{scale}-{seed}-collected")
        _CACHE[key] = collect_tenant(seed, scale, folder, action_sample=action_sample, deny=deny)
    store, truth = _CACHE[key]
    copy = factory.mktemp(f"{scale}-{seed}") / "store.duckdb"
    shutil.copy(store, copy)
    return copy, truth
