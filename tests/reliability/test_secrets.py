"""Secrets stay secret: the client secret and every token the tenant issued appear in no byte
the auditor writes (store, reports, evidence, console, debug logs, tracebacks).

The scan is made to fail in places on purpose (expired tokens, server errors, resets, a
denied table, short-lived tokens), because error paths are where credentials leak: an
exception message that quotes a request, a debug line that dumps headers, a reason stored
with a query.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.reliability


def _every_file(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def _leaks(blob: bytes, secrets: dict[str, str]) -> list[str]:
    return [name for name, value in secrets.items() if value.encode() in blob]


def test_no_secret_or_token_in_any_byte_written(serve: Any, tmp_path: Path) -> None:
    tenant = serve(
        "tiny",
        faults={"expire": 0.05, "500": 0.03, "reset": 0.02},
        token_lifetime_s=2,
        latency_ms=10,
        deny=frozenset({("contoso-production", "plugintracelogs")}),
    )
    work = tmp_path / "work"
    work.mkdir()
    store, out = work / "store.duckdb", work / "report"
    process = tenant.start_collect(store)  # warm the store, then the whole scheduled scan
    process.communicate(timeout=300)
    scan = tenant.run(
        "--debug", "-vv", "scan", "--all-environments", "--store", str(store), "--out", str(out)
    )
    assert scan.returncode == 0, scan.stderr[-2000:]

    issued = tenant.server.issued_tokens
    assert len(issued) >= 8, "the scan must have used several tokens"
    secrets = {"client secret": tenant.tenant.client_secret}
    for number, token in enumerate(issued):
        secrets[f"token {number}"] = token
        secrets[f"signature of token {number}"] = token.rsplit(".", 1)[1]

    # The debug output must have been rich enough to carry them, had they not been redacted.
    console = scan.stdout + scan.stderr
    assert "HTTP Request: GET" in console
    assert "[REDACTED]" in console
    written = _every_file(work)
    assert {path.suffix for path in written} >= {".duckdb", ".html", ".md", ".json", ".csv"}
    found = {"console": _leaks(console.encode(), secrets)}
    for path in written:
        found[str(path.relative_to(work))] = _leaks(path.read_bytes(), secrets)
    assert not any(found.values()), {where: names for where, names in found.items() if names}
    print(
        json.dumps(
            {
                "tokens_issued": len(issued),
                "files_searched": len(written),
                "bytes_searched": sum(path.stat().st_size for path in written) + len(console),
                "expired_token_answers": tenant.stats.faults["expire"],
            }
        )
    )
