"""Collection cost: window length, service protection, environments side by side, CPU, and
throughput against a sequential pager with incremental scans.

Each case starts `auditor sim serve` in its own process (seed 7) and runs `auditor collect
--all-environments` (or one environment) against it in a child process, each into a fresh
store; the figures of all cases are printed together at the end, as ratios measured in this
one run. Figures, not assertions: see bench/README.md.

Cases (`--cases`, comma-separated; all by default):
- `window`: scale small, no latency, service protection lifted: `--since 7d` against
  `--since 3650d` (the same data): requests and seconds of each and their ratio.
- `cpu`: with `--before DIR` (an export of an older commit, `git archive`): the collector's
  CPU seconds (user + system of the child) per 1,000 requests and per 100,000 rows, for the
  `--since 7d` collection by that code and by this one, in turns (`--cpu-repeats`, 2).
- `pages`: a one-row page written with its checkpoint, 300 times, into a store whose
  checkpoint table holds 0, 100,000 and 400,000 rows: milliseconds per page at each size.
- `protection`: scale medium, 100 ms latency, the simulator's service protection on at its
  defaults (6,000 requests per 300 s and 52 concurrent per budget: each environment's
  Dataverse, each environment's flow API routes, the admin API): the scan's seconds against
  what the busiest budget allows (`bounds`: the sliding window's least time, its windows or
  its latency x cap taken apart, and its requests as a steady rate), the share of each
  reached, and the 429s the simulator answered.
- `side-by-side`: the `protection` tenant's largest environment alone, on a new simulator of
  the same seed: the tenant's seconds against it.
- `throughput`: scale medium, 100 ms latency, protection lifted, the default action sample:
  the default cap (16 per environment API), then an incremental scan after 100 simulated
  minutes; and a sequential pager on a simulator of its own, run beside the other cases:
  the environments one after another, each with `--max-concurrency 1` (one request at a
  time per API; an environment's Dataverse and flow API are read side by side, so the
  pager is a little faster than one request at a time and the speedup is understated).

Usage: python bench/collect.py [--cases window,cpu,pages,protection,side-by-side,throughput]
       [--before DIR] [--no-sequential]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import ssl
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from auditor.queries import default_catalog
from auditor.sim.launch import client_environment, serve_process
from auditor.store import Store

UNLIMITED = ("--max-requests", "1000000000")
LATENCY_MS = 100.0
CAP = 16
PER_WINDOW, WINDOW_S = 6000, 300.0  # the simulator's defaults, Dataverse's documented numbers
CHILD_CPU_LOCK = threading.Lock()  # RUSAGE_CHILDREN counts every child: one measured at once


class Simulator:
    """`auditor sim serve` in its own process, stopped when the block ends."""

    def __init__(self, folder: Path, scale: str, latency_ms: float, extra: Sequence[str]) -> None:
        self.folder = folder
        self.process, self.url = serve_process(
            folder, scale=scale, latency_ms=latency_ms, extra=extra
        )

    def __enter__(self) -> Simulator:
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)

    def advance(self, minutes: int) -> None:
        trust = ssl.create_default_context(cafile=str(self.folder / "ca.pem"))
        httpx.post(f"{self.url}/_sim/clock", params={"advance_minutes": minutes}, verify=trust)

    def throttled(self) -> int:
        """429s of service protection the simulator answered so far (from its stats route)."""
        trust = ssl.create_default_context(cafile=str(self.folder / "ca.pem"))
        stats = httpx.get(f"{self.url}/_sim/stats", verify=trust).json()
        return int(stats["throttled"])


def environment_ids(sim: Simulator) -> list[str]:
    """The environments a scan of the simulator reads, as `auditor environments` lists them."""
    command = [sys.executable, "-m", "auditor", "--config", str(sim.folder / "auditor.toml")]
    listed = subprocess.run(
        [*command, "environments", "--json"],
        env={**os.environ, **client_environment(sim.folder)},
        check=True,
        capture_output=True,
        text=True,
    )
    return [str(env["id"]) for env in json.loads(listed.stdout)]


def collect(
    sim: Simulator,
    store: Path,
    *flags: str,
    code: Path | None = None,
    cpu: bool = False,
) -> dict[str, float]:
    """`auditor collect` in a child process; its seconds and, with `cpu`, its CPU seconds.
    `code` runs an exported older version of the auditor instead of this one."""
    environment = {**os.environ, **client_environment(sim.folder)}
    config = sim.folder / "auditor.toml"
    if code is not None:
        environment["PYTHONPATH"] = str(code)
        config = _older_config(config)
    command = [sys.executable, "-m", "auditor", "--quiet", "--config", str(config), "collect"]
    command += ["--store", str(store), *flags]
    with CHILD_CPU_LOCK if cpu else contextlib.nullcontext():
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        # Run from the store's folder: `python -m` puts the working directory first on the
        # path, and from the repository root that would import this code, not `code`.
        subprocess.run(
            command, env=environment, check=True, stdout=subprocess.DEVNULL, cwd=store.parent
        )
        seconds = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {"seconds": seconds, "cpu_s": used if cpu else float("nan")}


def _older_config(config: Path) -> Path:
    """The simulator's configuration without the settings older code does not know."""
    lines = config.read_text().splitlines()
    kept = [line for line in lines if not line.startswith(("requests_per_window", "request_w"))]
    older = config.with_name("auditor-older.toml")
    older.write_text("\n".join(kept) + "\n")
    return older


def figures(store: Path, scan_id: int = 1) -> dict[str, Any]:
    """Rows and requests of a scan, and requests per service-protection budget."""
    with Store.open(store, read_only=True) as opened:
        queries = opened.scan_queries(scan_id)
    sources = {q: spec.source for q, spec in default_catalog().items()}
    budgets = queries.groupby([queries["environment_id"], queries["query_id"].map(sources)])
    per_budget = budgets["requests"].sum()
    per_environment = queries.groupby("environment_id")["requests"].sum()
    return {
        "rows": int(queries["rows"].sum()),
        "requests": int(queries["requests"].sum()),
        "throttled": int(queries["throttled"].sum()),
        "budgets": sorted((int(n) for n in per_budget), reverse=True),
        "largest_environment": str(per_environment.idxmax()),
    }


def bounds(budgets: Sequence[int], latency_s: float, cap: int) -> dict[str, float]:
    """What the service-protection budgets allow at best, three ways (seconds).

    Each budget (one environment's API) has its own cap of `cap` requests in flight and its
    own sliding window of 6,000 requests per 300 s.
    - `sliding`: the least time: a budget's request i cannot go before floor(i / 6000)
      windows have passed, and the requests of its last window then need latency x cap;
      the busiest budget decides.
    - `windows or latency`: the larger of the busiest budget's whole windows and its
      requests at latency x cap (the two bounds taken apart).
    - `rate`: the busiest budget's requests at 6,000 per 300 s as a steady rate; a sliding
      window admits a burst first, so a scan can beat this one.
    """
    most = max(budgets, default=0)
    full = (most - 1) // PER_WINDOW if most else 0
    return {
        "sliding": full * WINDOW_S + (most - full * PER_WINDOW) * latency_s / cap,
        "windows or latency": max(full * WINDOW_S, most * latency_s / cap),
        "rate": most * WINDOW_S / PER_WINDOW,
    }


def window_case(work: Path, results: dict[str, Any], before: Path | None, repeats: int) -> None:
    with Simulator(work / "sim-window", "small", 0.0, UNLIMITED) as sim:
        for since in ("7d", "3650d"):
            store = work / f"window-{since}.duckdb"
            run = collect(sim, store, "--all-environments", "--since", since, cpu=True)
            results[f"since {since}"] = {**run, **figures(store)}
            _say(f"since {since}", results[f"since {since}"])
        if before is None:
            return
        # Before and after in turns, so a busy moment of the machine weighs on both alike.
        for turn in range(1, repeats + 1):
            for label, code in ((f"cpu {turn}, before", before), (f"cpu {turn}, after", None)):
                store = work / f"cpu-{turn}-{'before' if code else 'after'}.duckdb"
                flags = ("--all-environments", "--since", "7d")
                run = collect(sim, store, *flags, code=code, cpu=True)
                results[label] = {**run, **figures(store)}
                _say(label, results[label])


def pages_case(results: dict[str, Any], work: Path) -> None:
    """A page's write (rows and checkpoint in one transaction) into a store whose checkpoint
    table holds 0, then 100,000, then 400,000 rows: milliseconds per page at each size."""
    timings: dict[str, Any] = {}
    with Store.open(work / "pages.duckdb") as store:
        store_id = 1  # the filler rows are of scan 2: only the table's size matters
        held = 0
        for size in (0, 100_000, 400_000):
            if size > held:
                filler = pd.DataFrame(
                    {
                        "scan_id": store_id + 1,
                        "environment_id": "env",
                        "query_id": "q",
                        "unit": [f"u{i}" for i in range(held, size)],
                        "next_link": None,
                        "done": True,
                        "rows": 1,
                        "pages": 1,
                    }
                )
                with store._transaction():
                    store._con.register("_filler", filler)
                    store._run("INSERT INTO checkpoints SELECT * FROM _filler")
                    store._con.unregister("_filler")
                held = size
            started = time.perf_counter()
            for page in range(300):
                store.write_page(
                    scan_id=store_id,
                    environment_id="env",
                    query_id="plugintracelogs",
                    unit=f"w{size}-{page // 3}",
                    table="plugintracelogs",
                    rows=[{"plugintracelogid": f"t{size}-{page}", "createdon": "2026-11-01"}],
                    next_link=None if page % 3 == 2 else "next",
                    done=page % 3 == 2,
                )
            timings[f"{size:,}"] = (time.perf_counter() - started) / 300 * 1000
    results["pages"] = timings
    print(f"pages: {timings}", file=sys.stderr)


def protection_case(work: Path, results: dict[str, Any], side_by_side: bool) -> None:
    with Simulator(work / "sim-protection", "medium", LATENCY_MS, ()) as sim:
        store = work / "protection.duckdb"
        run = collect(sim, store, "--all-environments")
        results["protection"] = {**run, **figures(store), "answered_429": sim.throttled()}
        _say("protection", results["protection"])
    if not side_by_side:
        return
    largest = results["protection"]["largest_environment"]
    with Simulator(work / "sim-alone", "medium", LATENCY_MS, ()) as sim:
        store = work / "alone.duckdb"
        run = collect(sim, store, "--environment", largest)
        results["largest alone"] = {**run, **figures(store), "answered_429": sim.throttled()}
        _say("largest alone", results["largest alone"])


def throughput_case(work: Path, results: dict[str, Any]) -> None:
    with Simulator(work / "sim-concurrent", "medium", LATENCY_MS, UNLIMITED) as sim:
        store = work / "concurrent.duckdb"
        results["concurrent"] = {**collect(sim, store, "--all-environments"), **figures(store)}
        _say("concurrent", results["concurrent"])
        sim.advance(100)
        run = collect(sim, store, "--all-environments")
        results["incremental"] = {**run, **figures(store, 2)}
        _say("incremental", results["incremental"])


def sequential_case(work: Path, results: dict[str, Any]) -> None:
    """A sequential pager: the environments one after another (a scan each), each with one
    request at a time per API (`--max-concurrency 1`); an environment's Dataverse and flow
    API are still read side by side, so this is a little faster than one request at a
    time, and the speedup against it is understated, not overstated."""
    # A new simulator of the same seed starts at the first scan's clock: the same tenant.
    with Simulator(work / "sim-sequential", "medium", LATENCY_MS, UNLIMITED) as sim:
        store = work / "sequential.duckdb"
        seconds = 0.0
        for env in environment_ids(sim):
            flags = ("--environment", env, "--max-concurrency", "1")
            seconds += collect(sim, store, *flags)["seconds"]
        with Store.open(store, read_only=True) as opened:
            latest = opened.latest_scan()
        scans = [figures(store, scan) for scan in range(1, latest.scan_id + 1 if latest else 1)]
        results["sequential"] = {
            "seconds": seconds,
            "cpu_s": float("nan"),
            "rows": sum(scan["rows"] for scan in scans),
            "requests": sum(scan["requests"] for scan in scans),
            "throttled": sum(scan["throttled"] for scan in scans),
        }
        _say("sequential", results["sequential"])


def _say(label: str, run: dict[str, Any]) -> None:
    print(f"{label}: {run['requests']:,} requests in {run['seconds']:.1f}s", file=sys.stderr)


def report(results: dict[str, Any]) -> None:
    latency = LATENCY_MS / 1000
    print(f"seed 7, machine {os.cpu_count()} cores, python {sys.version.split()[0]}")
    print(f"{'run':<18} {'rows':>9} {'requests':>9} {'seconds':>8} {'cpu s':>7} {'429s':>6}")
    for label, run in results.items():
        if label == "pages":
            continue
        answered = run.get("answered_429", run["throttled"])
        print(
            f"{label:<18} {run['rows']:>9,} {run['requests']:>9,} {run['seconds']:>8.1f} "
            f"{run['cpu_s']:>7.1f} {answered:>6,}"
        )
    if "since 3650d" in results:
        week, decade = results["since 7d"], results["since 3650d"]
        requests = decade["requests"] / week["requests"]
        seconds = decade["seconds"] / week["seconds"]
        print(
            f"window: --since 3650d / --since 7d: requests x{requests:.2f}, "
            f"seconds x{seconds:.2f} (bar: within 1.5x)"
        )
        for side in ("before", "after"):
            runs = [run for label, run in results.items() if label.endswith(f", {side}")]
            if runs:
                cpu = sum(run["cpu_s"] for run in runs)
                requests = sum(run["requests"] for run in runs)
                rows = sum(run["rows"] for run in runs)
                print(
                    f"cpu {side} ({len(runs)} runs): {cpu / requests * 1000:.2f} s per 1,000 "
                    f"requests, {cpu / rows * 100_000:.2f} s per 100,000 rows"
                )
    if "pages" in results:
        timings = results["pages"]
        first, last = next(iter(timings.values())), list(timings.values())[-1]
        sizes = ", ".join(f"{ms:.2f} ms at {size}" for size, ms in timings.items())
        print(
            f"page writes (one row, with its checkpoint) by checkpoint rows held: {sizes}; "
            f"x{last / first:.2f} from the first to the last"
        )
    if "protection" in results:
        run = results["protection"]
        limits = bounds(run["budgets"], latency, CAP)
        shares = "; ".join(
            f"{name} {seconds:.1f}s ({seconds / run['seconds']:.0%} of it)"
            for name, seconds in limits.items()
        )
        print(
            f"protection: requests per budget {run['budgets']}; scan {run['seconds']:.1f}s; "
            f"bounds: {shares} (bar: at least 90%); 429s answered {run['answered_429']:,}"
        )
    if "largest alone" in results:
        ratio = results["protection"]["seconds"] / results["largest alone"]["seconds"]
        print(
            f"side by side: tenant {results['protection']['seconds']:.1f}s / largest environment "
            f"alone {results['largest alone']['seconds']:.1f}s = x{ratio:.2f} (bar: at most 1.3x)"
        )
    if "concurrent" in results:
        run = results["concurrent"]
        least = run["requests"] * latency / CAP
        own = max(run["budgets"]) * latency / CAP
        print(
            f"throughput: all requests x latency / cap {least:.1f}s (the figure kept since the "
            f"first runs, when one cap served the whole host); concurrent run "
            f"{run['seconds']:.1f}s = {least / run['seconds']:.0%} of it; the busiest "
            f"environment API's requests x latency / cap {own:.1f}s = {own / run['seconds']:.0%}"
        )
        if "sequential" in results:
            slow = results["sequential"]
            print(
                f"speedup over the sequential pager (environments in turn, one request at a "
                f"time per API): "
                f"{slow['seconds'] / run['seconds']:.1f}x "
                f"({slow['seconds'] / slow['requests'] * 1000:.0f} ms per request)"
            )
        if "incremental" in results:
            share = results["incremental"]["requests"] / run["requests"]
            print(
                f"incremental scan: {results['incremental']['requests']:,} requests = "
                f"{share:.1%} of the first scan's"
            )
    print(json.dumps(results))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="window,cpu,pages,protection,side-by-side,throughput")
    parser.add_argument("--before", type=Path, help="an export of an older commit (cpu case)")
    parser.add_argument("--cpu-repeats", type=int, default=2, help="turns of before and after")
    parser.add_argument("--no-sequential", action="store_true", help="skip the hour-long pager")
    args = parser.parse_args()
    cases = set(args.cases.split(","))
    work = Path(tempfile.mkdtemp(prefix="auditor-bench-"))
    results: dict[str, Any] = {}
    sequential: dict[str, Any] = {}
    beside = None
    if "throughput" in cases and not args.no_sequential:
        beside = threading.Thread(target=sequential_case, args=(work, sequential))
        beside.start()
    if cases & {"window", "cpu"}:
        window_case(work, results, args.before if "cpu" in cases else None, args.cpu_repeats)
    if "pages" in cases:
        pages_case(results, work)
    if cases & {"protection", "side-by-side"}:
        protection_case(work, results, "side-by-side" in cases)
    if "throughput" in cases:
        throughput_case(work, results)
    if beside is not None:
        beside.join()
        results.update(sequential)
    report(results)


if __name__ == "__main__":
    main()
