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
    # Every run's action detail is read at once: far more than the 6000 requests per 5
    # minutes service protection admits. The comparison needs complete data, so the limit is
    # lifted here; honouring it is tested on its own.
    server = SimServer(tenant, SimOptions(seed=seed, scale=scale, max_requests=10_000_000))
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
