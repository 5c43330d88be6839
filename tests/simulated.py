"""Collect a simulated tenant into a store through the CLI, for tests that compare analysis
with the ground truth."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from auditor.cli import app
from auditor.sim.model import SimOptions
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from auditor.sim.truth import compute_truth


def collect_tenant(
    seed: int, scale: str, folder: Path, *, action_sample: int
) -> tuple[Path, dict[str, Any]]:
    """Serve the tenant of `seed`/`scale` in this process and collect it with
    `auditor collect --all-environments`; returns the store and the tenant's truth."""
    tenant = generate(seed, scale)
    server = SimServer(tenant, SimOptions(seed=seed, scale=scale))
    server.start()
    try:
        server.write_client_files(folder)
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
            env={
                "AZURE_CLIENT_SECRET": tenant.client_secret,
                "SSL_CERT_FILE": str(folder / "ca.pem"),
            },
        )
        assert result.exit_code == 0, result.output
        return store, compute_truth(tenant)
    finally:
        server.stop()
