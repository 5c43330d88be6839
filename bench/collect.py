"""Collection throughput: concurrent windows vs a sequential nextLink pager, and increments.

Starts `auditor sim serve` (scale medium, 100 ms latency per request) in its own process,
then runs `auditor collect` against it, each into a fresh store, on the same seed and with
the product's default sample of 50 runs per flow read with their actions:
1. with the default concurrency cap (16 per host);
2. then, the simulator's clock advanced by 100 minutes (about 1 % new data), an incremental
   collection into the first store;
3. with `--max-concurrency 1` (one request at a time: a sequential nextLink pager), on a
   simulator restarted at the first scan's clock. At 100 ms per request this run takes
   over an hour at scale medium.

Prints rows, requests, seconds and rows per second of each run, the speedup, the bound set
by latency x concurrency cap (requests x latency / cap), and the incremental scan's requests
as a share of the first scan's. Figures, not assertions: see bench/README.md.

Usage: python bench/collect.py [--scale medium] [--latency-ms 100] [--action-sample 50]
       [--no-sequential]
"""

from __future__ import annotations

import argparse
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from auditor.sim.launch import client_environment, serve_process
from auditor.store import Store


def collect(folder: Path, store: Path, *flags: str) -> float:
    """`auditor collect --all-environments` against the simulator whose files are in
    `folder`, in a child process; returns the seconds it took."""
    environment = {**os.environ, **client_environment(folder)}
    started = time.monotonic()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "auditor",
            "--quiet",
            "--config",
            str(folder / "auditor.toml"),
            "collect",
            "--all-environments",
            "--store",
            str(store),
            *flags,
        ],
        env=environment,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.monotonic() - started


def figures(store: Path, scan_id: int) -> tuple[int, int]:
    with Store.open(store, read_only=True) as opened:
        queries = opened.scan_queries(scan_id)
    return int(queries["rows"].sum()), int(queries["requests"].sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="medium")
    parser.add_argument("--latency-ms", type=float, default=100.0)
    parser.add_argument("--action-sample", default="50")
    parser.add_argument("--cap", type=int, default=16)
    parser.add_argument(
        "--no-sequential",
        action="store_true",
        help="skip the sequential pager (over an hour at scale medium): no speedup figure",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="auditor-bench-"))
    sample = ("--action-sample", args.action_sample)
    runs: dict[str, dict[str, float]] = {}

    def timed(label: str, folder: Path, store: Path, cap: int, scan_id: int) -> None:
        seconds = collect(folder, store, "--max-concurrency", str(cap), *sample)
        rows, requests = figures(store, scan_id)
        runs[label] = {"cap": cap, "rows": rows, "requests": requests, "seconds": seconds}
        print(f"{label}: {requests:,} requests in {seconds:.1f}s", file=sys.stderr, flush=True)

    # Service protection lifted (as in bench/analyze.py): at scale medium a default scan reads
    # about 37 k run details, and honouring 6000 requests per 5 minutes per environment would
    # measure the waits for the limit's window, not the collector's concurrency.
    unlimited = ("--max-requests", "1000000000")
    process, base_url = serve_process(
        work / "sim", scale=args.scale, latency_ms=args.latency_ms, extra=unlimited
    )
    try:
        timed("concurrent", work / "sim", work / "concurrent.duckdb", args.cap, 1)
        trust = ssl.create_default_context(cafile=str(work / "sim" / "ca.pem"))
        httpx.post(f"{base_url}/_sim/clock", params={"advance_minutes": 100}, verify=trust)
        timed("incremental", work / "sim", work / "concurrent.duckdb", args.cap, 2)
    finally:
        process.terminate()
        process.wait(timeout=30)
    # A new simulator of the same seed starts at the first scan's clock: the same tenant.
    if not args.no_sequential:
        process, _ = serve_process(
            work / "sim2", scale=args.scale, latency_ms=args.latency_ms, extra=unlimited
        )
        try:
            timed("sequential", work / "sim2", work / "sequential.duckdb", 1, 1)
        finally:
            process.terminate()
            process.wait(timeout=30)

    latency = args.latency_ms / 1000
    print(
        f"scale {args.scale}, latency {args.latency_ms:.0f} ms, action sample "
        f"{args.action_sample}, machine {os.cpu_count()} cores"
    )
    print(f"{'run':<12} {'cap':>4} {'rows':>10} {'requests':>9} {'seconds':>9} {'rows/s':>9}")
    for label in ("concurrent", "sequential", "incremental"):
        if label not in runs:
            continue
        run = runs[label]
        print(
            f"{label:<12} {run['cap']:>4.0f} {run['rows']:>10,.0f} {run['requests']:>9,.0f} "
            f"{run['seconds']:>9.1f} {run['rows'] / run['seconds']:>9,.0f}"
        )
    concurrent = runs["concurrent"]
    bound = concurrent["requests"] * latency / args.cap
    if "sequential" in runs:
        speedup = runs["sequential"]["seconds"] / concurrent["seconds"]
        print(f"speedup over the sequential pager: {speedup:.1f}x")
    print(
        f"bound (requests x latency / cap): {bound:.1f}s; concurrent run reached "
        f"{bound / concurrent['seconds']:.0%} of it"
    )
    print(
        f"incremental scan: {runs['incremental']['requests']:,} requests = "
        f"{runs['incremental']['requests'] / concurrent['requests']:.1%} of the first scan's"
    )
    print(json.dumps(runs))


if __name__ == "__main__":
    main()
