"""Fault soak: a fifth of all requests fail, and the store still ends row for row identical.

The quality bar (docs/architecture.md, "Quality bars"): with 20 % of requests failing (429,
5xx, resets, timeouts) the store ends row for row identical to a fault-free scan. Malformed
JSON bodies are part of the mix: a page that does not parse is retried, never stored half.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from auditor.store import Store
from tests.reliability.conftest import SMALL_SAMPLE, assert_no_duplicates, assert_same_store

pytestmark = pytest.mark.reliability

FAULTS = {"429": 0.04, "500": 0.04, "503": 0.03, "reset": 0.03, "timeout": 0.03, "badjson": 0.03}


def test_a_fifth_of_requests_failing_leaves_the_store_identical(
    serve: Any, clean_small: tuple[Path, float], tmp_path: Path
) -> None:
    assert sum(FAULTS.values()) == pytest.approx(0.20)
    clean, clean_seconds = clean_small
    # Timeouts stall 2 s against a client that gives up after 1 s; 429s ask for 50 ms (each
    # pauses the whole host: waiting out Retry-After is tested with real limits elsewhere).
    faulty = serve("small", faults=FAULTS, timeout_s=2.0, retry_after_s=0.05)
    started = time.monotonic()
    result = faulty.collect(tmp_path / "faulty.duckdb", *SMALL_SAMPLE, env={"AUDITOR_TIMEOUT": "1"})
    faulty_seconds = time.monotonic() - started
    assert result.returncode == 0, result.stderr

    rows = assert_same_store(clean, tmp_path / "faulty.duckdb")
    assert_no_duplicates(tmp_path / "faulty.duckdb")
    with Store.open(tmp_path / "faulty.duckdb", read_only=True) as store:
        queries = store.scan_queries(1)
        scan = store.scan(1)
    # Every query that the fault-free scan collected was collected, none partially.
    assert scan.status == "partial"  # one environment has no Dataverse, as in the clean scan
    assert set(queries["status"]) == {"collected", "not-collected"}
    # The summary says what the faults cost.
    assert f"{int(queries['retries'].sum()):,} retries" in result.stdout
    stats = faulty.stats.snapshot()
    injected = sum(stats["faults"].values())
    assert injected >= 0.15 * stats["requests"]
    for kind in FAULTS:
        assert stats["faults"][kind] > 0, f"no {kind} fault was injected"
    print(
        json.dumps(
            {
                "rows": rows,
                "requests": stats["requests"],
                "faults": stats["faults"],
                "fault_share": round(injected / stats["requests"], 3),
                "client_retries": int(queries["retries"].sum()),
                "client_429s": int(queries["throttled"].sum()),
                "clean_seconds": round(clean_seconds, 1),
                "faulty_seconds": round(faulty_seconds, 1),
            }
        )
    )
