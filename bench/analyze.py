"""Analysis time and peak memory: load the frames of a store, analyse them, run every check.

For each scale (small, medium, large) a store is collected once from the simulator (no
latency) into bench/.cache and reused; `--refresh` collects again. Each scale is then analysed
in a fresh Python process, so its peak RSS is that of one analysis, not of the collection or
of the scales before it. The child times `load_frames`, each main analysis frame of
`Evidence` (forced one by one, to show where the time goes) and `run_checks`, and reports
rows loaded, seconds, peak RSS and findings. The parent prints them with the growth factors
between scales (time factor / rows factor near 1 means cost grows linearly) and whether
`large` meets the analysis bar of docs/architecture.md ("Quality bars"): 1 M plug-in traces +
500 k flow runs + 50 k sampled action runs analysed in under 30 s and 3 GB on 2 cores.

The action sample is 52 runs per flow: at scale large that samples about 50 k runs, the
bar's size (the default, 50, gives 48 k). The simulator runs with service protection's
request-count window lifted (`--max-requests`): with Dataverse's 6000 requests per 300 s per
environment the collector gave up on part of the sample (21 k of 50 k runs).

Usage: python bench/analyze.py [--scales small,medium,large] [--seed 7] [--refresh]
       [--profile large]   (a second, cProfiled run of a scale; the profile on stderr)
Figures, not assertions: see bench/README.md.
"""

from __future__ import annotations

import argparse
import cProfile
import itertools
import json
import os
import pstats
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from collect import Simulator, collect  # bench/collect.py: the same `auditor collect` run

from auditor.store import Store

BENCH = Path(__file__).resolve().parent
CACHE = BENCH / ".cache"
SCALES = ("small", "medium", "large")
ACTION_SAMPLE = 52

# Evidence's main analysis frames, forced in this order (each reuses the ones before it).
STAGES = (
    "definitions",
    "parsed",
    "catch_paths",
    "flows",
    "runs",
    "run_summary",
    "action_results",
    "trace_coverage",
    "steps",
    "unfiltered_steps",
    "jobs",
    "job_owners",
    "queue_latency",
)

# The bar for the DuckDB path at scale large (docs/large-tenants.md).
BAR_ENGINE_SECONDS = 8.0
BAR_ENGINE_MB = 1024

# The analysis bar of docs/architecture.md, "Quality bars".
BAR_SECONDS = 30.0
BAR_MB = 3 * 1024
BAR_ROWS = {"traces": 1_000_000, "flow_api_runs": 500_000, "sampled_runs": 50_000}


# Collection (parent) --------------------------------------------------------------------


def store_for(scale: str, seed: int, sample: int, *, refresh: bool) -> Path:
    """The cached store of a scale, collected from the simulator when missing or refreshed."""
    path = CACHE / f"{scale}-seed{seed}-sample{sample}.duckdb"
    if path.exists() and not refresh:
        Store.open(path).close()  # a store of an older schema is upgraded once, here
        return path
    CACHE.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="auditor-bench-analyze-"))
    print(f"collecting scale {scale} (seed {seed}, action sample {sample}) ...", flush=True)
    started = time.monotonic()
    # No request-count window: at scale large the action sample alone is about 12 k requests
    # per environment, over the 6000 per 300 s of Dataverse's service protection.
    extra = ("--seed", str(seed), "--max-requests", str(10**9))
    partial = work / "store.duckdb"  # moved into the cache only once complete
    with Simulator(work / "sim", scale, 0.0, extra) as sim:
        collect(sim, partial, "--all-environments", "--action-sample", str(sample))
    partial.replace(path)
    shutil.rmtree(work, ignore_errors=True)
    print(f"collected scale {scale} in {time.monotonic() - started:.0f}s into {path}", flush=True)
    return path


# The row tables the engine reduces where they are (`auditor.engine.sources.ROW_TABLES`).
REDUCED_TABLES = (
    "plugintracelogs",
    "flow_api_runs",
    "flow_run_actions",
    "flowruns",
    "asyncoperations",
)

# The tables a synthetic copy multiplies: every event table, each row copied with a new key.
SYNTHETIC_KEYS = {
    "plugintracelogs": "plugintracelogid",
    "flow_api_runs": "run_name",
    "flowruns": "flowrunid",
    "asyncoperations": "asyncoperationid",
    "flow_run_actions": "run_name",
}


def synthetic_store(source: Path, factor: int) -> Path:
    """`source` with every event table `factor` times over (copy k of a row gets its key
    suffixed `~k`: same flows, steps and times, so each flow and step has `factor` times the
    runs and executions). Built once into bench/.cache."""
    import duckdb

    path = source.with_name(f"{source.stem}-x{factor}.duckdb")
    if path.exists():
        return path
    print(f"building {path.name} ({factor}x {source.name}) ...", flush=True)
    partial = path.with_suffix(".partial")
    partial.unlink(missing_ok=True)
    shutil.copy(source, partial)
    with duckdb.connect(str(partial)) as connection:
        for table, key in SYNTHETIC_KEYS.items():
            columns = [row[0] for row in connection.execute(f"DESCRIBE {table}").fetchall()]
            select = ", ".join(f"{c} || '~' || k AS {c}" if c == key else c for c in columns)
            connection.execute(
                f"INSERT INTO {table} SELECT {select} FROM {table},"  # noqa: S608 - our names
                f" range(1, {factor}) AS copies(k)"
            )
        connection.execute("CHECKPOINT")
    partial.replace(path)
    return path


def engines_report(results: dict[str, dict[str, Any]]) -> None:
    """Seconds, peak memory and rows per core-second of each engine run."""
    cores = os.cpu_count() or 1
    print(
        f"\n{'run':<22} {'rows':>12} {'reduced':>11} {'reduce s':>9} {'total s':>8}"
        f" {'peak MB':>8} {'reduced/core-s':>15} {'rows/core-s':>12}"
    )
    for name, result in results.items():
        rows = groups(result)["total"]
        reduced = sum(result["rows"][t] for t in REDUCED_TABLES)
        total = _total(result)
        print(
            f"{name:<22} {rows:>12,} {reduced:>11,} {result['reduce_s']:>9.1f} {total:>8.1f}"
            f" {result['peak_mb']:>8,.0f} {reduced / result['reduce_s'] / cores:>15,.0f}"
            f" {rows / total / cores:>12,.0f}"
        )
    base, big = results.get("large duckdb"), results.get("large x10 duckdb")
    if base and big:
        rows = groups(big)["total"] / groups(base)["total"]
        seconds = _total(big) / _total(base)
        memory = big["peak_mb"] / base["peak_mb"]
        print(
            f"large -> x10 (duckdb): rows x{rows:.2f}, time x{seconds:.2f}, peak MB x{memory:.2f}"
            f" ({'at most linear' if seconds <= rows and memory <= rows else 'MORE than linear'})"
        )
    if base:
        met = _total(base) < BAR_ENGINE_SECONDS and base["peak_mb"] < BAR_ENGINE_MB
        print(
            f"large, duckdb: {_total(base):.1f} s (bar {BAR_ENGINE_SECONDS:.0f} s),"
            f" {base['peak_mb']:,.0f} MB peak (bar {BAR_ENGINE_MB:,} MB):"
            f" {'MET' if met else 'NOT MET'}"
        )


def analyse_in_child(store: Path, *, profile: bool, engine: str = "duckdb") -> dict[str, Any]:
    """Runs this file with --child in a fresh interpreter; its last stdout line is JSON."""
    command = [sys.executable, str(Path(__file__).resolve()), "--child", str(store)]
    command += ["--engine", engine]
    if profile:
        command.append("--profile-child")
    done = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# Analysis (child) -----------------------------------------------------------------------


def peak_mb() -> float:
    """Peak resident set of this process: VmHWM, which starts afresh with the process's own
    memory; ru_maxrss keeps the parent's peak across fork and exec (a parent that built the
    synthetic store reported its 2.3 GB as every child's peak)."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(store_path: Path, *, profile: bool, engine: str) -> None:
    """Loads, reduces, analyses and checks one store; prints the figures as one JSON line."""
    from auditor.checks import REGISTRY, run_checks
    from auditor.checks.evidence import Evidence
    from auditor.engine.reducer import Reducer
    from auditor.engine.sources import ROW_TABLES
    from auditor.frames import DEFAULT_WINDOW, FRAME_TABLES, Window, load_frames
    from auditor.settings import Settings
    from auditor.store import Store

    spark = None
    if engine == "spark":
        from auditor.engine.engines import local_spark

        spark = local_spark("auditor-bench")
    baseline = peak_mb()  # the interpreter and its imports
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    started = time.perf_counter()
    store = Store.open(store_path, read_only=True)
    scan = store.latest_scan()
    assert scan is not None
    window = Window.last(DEFAULT_WINDOW, scan.window_end)
    frames = load_frames(store, window=window, skip=ROW_TABLES)
    store.release_cache()  # as `open_scan` does
    loaded = time.perf_counter()
    reducer = Reducer.over_store(store, window, None, engine=engine, spark=spark)
    placed = time.perf_counter()  # Spark: the store's rows copied to Parquet for it
    evidence = Evidence(frames, reducer)
    # The definitions, which say what an effect action is: pandas, not a reduction.
    _ = evidence.parsed
    parsed = time.perf_counter()
    evidence.reduce()
    store.release_cache()
    reduced = time.perf_counter()
    row_counts = reducer.row_counts()
    stages: dict[str, float] = {}
    for stage in STAGES:
        before = time.perf_counter()
        getattr(evidence, stage)
        stages[stage] = time.perf_counter() - before
    analysed = time.perf_counter()
    # One check at a time (run_checks of each alone): the same findings, timed per check.
    settings = Settings()
    findings: list[Any] = []
    checks: dict[str, float] = {}
    for check in REGISTRY:
        before = time.perf_counter()
        findings.extend(run_checks(evidence, settings, [check]))
        checks[check.id] = time.perf_counter() - before
    checked = time.perf_counter()
    evidence.close()
    store.close()
    if profiler is not None:
        profiler.disable()
        stats = pstats.Stats(profiler, stream=sys.stderr)
        stats.sort_stats("cumulative").print_stats(40)
        stats.sort_stats("tottime").print_stats(25)

    rows = {name: len(frames.table(name)) for name in FRAME_TABLES}
    rows.update(row_counts)  # the row tables, reduced where they are
    statuses: dict[str, int] = {}
    for finding in findings:
        statuses[finding.status] = statuses.get(finding.status, 0) + 1
    print(
        json.dumps(
            {
                "rows": rows,
                "sampled_runs": len(evidence.action_reduction.sampled),
                "load_s": loaded - started,
                "parse_s": parsed - placed,
                "reduce_s": (placed - loaded) + (reduced - parsed),
                "stages_s": stages,
                "analysis_s": analysed - loaded,
                "checks_s": checked - analysed,
                "per_check_s": checks,
                "peak_mb": peak_mb(),
                "baseline_mb": baseline,
                "findings": len(findings),
                "statuses": statuses,
            }
        )
    )


# Report (parent) ------------------------------------------------------------------------


def groups(result: dict[str, Any]) -> dict[str, int]:
    """Rows per table group; `other` is configuration and bookkeeping."""
    rows: dict[str, int] = result["rows"]
    out = {
        "traces": rows["plugintracelogs"],
        "flow_api_runs": rows["flow_api_runs"],
        "flowruns": rows["flowruns"],
        "action_rows": rows["flow_run_actions"],
        "sampled_runs": result["sampled_runs"],
        "jobs": rows["asyncoperations"],
    }
    counted = {
        "plugintracelogs",
        "flow_api_runs",
        "flowruns",
        "flow_run_actions",
        "asyncoperations",
    }
    out["other"] = sum(n for name, n in rows.items() if name not in counted)
    out["total"] = sum(rows.values())
    return out


def report(results: dict[str, dict[str, Any]], seed: int, sample: int) -> None:
    print(
        f"\nseed {seed}, action sample {sample}, machine {os.cpu_count()} cores, "
        f"python {sys.version.split()[0]}"
    )
    header = (
        f"{'scale':<7} {'traces':>9} {'api runs':>9} {'dv runs':>9} {'act rows':>9} "
        f"{'sampled':>8} {'jobs':>8} {'other':>6} {'total':>10}"
    )
    print(header)
    for scale, result in results.items():
        g = groups(result)
        print(
            f"{scale:<7} {g['traces']:>9,} {g['flow_api_runs']:>9,} {g['flowruns']:>9,} "
            f"{g['action_rows']:>9,} {g['sampled_runs']:>8,} {g['jobs']:>8,} {g['other']:>6,} "
            f"{g['total']:>10,}"
        )
    print(
        f"\n{'scale':<7} {'load s':>7} {'analyse s':>9} {'checks s':>8} {'total s':>8} "
        f"{'peak MB':>8} {'rows/s':>10} {'findings':>8} {'cpu load':>8}"
    )
    for scale, result in results.items():
        total = result["load_s"] + result["analysis_s"] + result["checks_s"]
        print(
            f"{scale:<7} {result['load_s']:>7.1f} {result['analysis_s']:>9.1f} "
            f"{result['checks_s']:>8.1f} {total:>8.1f} {result['peak_mb']:>8,.0f} "
            f"{groups(result)['total'] / total:>10,.0f} {result['findings']:>8,} "
            f"{result['load_before']:>8.2f}"
        )
    print("\nseconds per analysis frame (Evidence property, forced in this order):")
    print(f"{'frame':<17}" + "".join(f"{scale:>9}" for scale in results))
    for stage in STAGES:
        print(
            f"{stage:<17}"
            + "".join(f"{result['stages_s'][stage]:>9.2f}" for result in results.values())
        )
    print(
        f"{'(imports, MB)':<17}"
        + "".join(f"{result['baseline_mb']:>9.0f}" for result in results.values())
    )

    print("\nslowest checks (seconds):")
    for scale, result in results.items():
        slowest = sorted(result["per_check_s"].items(), key=lambda item: -item[1])[:5]
        print(f"{scale:<7} " + ", ".join(f"{name} {seconds:.2f}" for name, seconds in slowest))

    pairs = [(a, b) for a, b in itertools.pairwise(SCALES) if {a, b} <= set(results)]
    if pairs:
        print("\ngrowth      rows x   time x   time x / rows x   peak MB x")
        for a, b in pairs:
            rows = groups(results[b])["total"] / groups(results[a])["total"]
            seconds = _total(results[b]) / _total(results[a])
            memory = results[b]["peak_mb"] / results[a]["peak_mb"]
            print(
                f"{a + '->' + b:<11} {rows:>6.2f} {seconds:>8.2f} {seconds / rows:>17.2f} "
                f"{memory:>11.2f}"
            )
    if "large" in results:
        large = results["large"]
        g = groups(large)
        seconds, memory = _total(large), large["peak_mb"]
        met = seconds < BAR_SECONDS and memory < BAR_MB
        print(
            "\nbar (docs/architecture.md): 1 M traces + 500 k flow runs + 50 k sampled action runs"
            f" in < {BAR_SECONDS:.0f} s and < {BAR_MB / 1024:.0f} GB peak on 2 cores"
        )
        labels = {
            "traces": "traces",
            "flow_api_runs": "flow API runs",
            "sampled_runs": "sampled runs",
        }
        print(
            "large holds "
            + ", ".join(
                f"{g[name]:,} {labels[name]} ({g[name] / n:.0%} of the bar's)"
                for name, n in BAR_ROWS.items()
            )
            + f", plus {g['flowruns']:,} Dataverse flow runs and {g['jobs']:,} system jobs"
        )
        print(
            f"large: {seconds:.1f} s (bar {BAR_SECONDS:.0f} s), {memory:,.0f} MB peak "
            f"(bar {BAR_MB:,} MB): {'MET' if met else 'NOT MET'}"
        )


def _total(result: dict[str, Any]) -> float:
    return float(result["load_s"] + result["analysis_s"] + result["checks_s"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", default=",".join(SCALES), help="comma-separated")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--action-sample", type=int, default=ACTION_SAMPLE)
    parser.add_argument("--refresh", action="store_true", help="collect the stores again")
    parser.add_argument(
        "--profile", default="", help="comma-separated scales to run under cProfile (stderr)"
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--engine", default="duckdb", help=argparse.SUPPRESS)
    parser.add_argument("--profile-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--engines",
        action="store_true",
        help="scale large and a synthetic 10x large, each on DuckDB and on Spark local",
    )
    args = parser.parse_args()
    if args.child is not None:
        child(args.child, profile=args.profile_child, engine=args.engine)
        return

    scales = [s.strip() for s in args.scales.split(",") if s.strip()]
    unknown = set(scales) - set(SCALES)
    if unknown:
        parser.error(f"unknown scale(s): {', '.join(sorted(unknown))}")
    if args.engines:
        large = store_for("large", args.seed, args.action_sample, refresh=args.refresh)
        runs = {
            "large duckdb": (large, "duckdb"),
            "large x10 duckdb": (synthetic_store(large, 10), "duckdb"),
            "large spark local": (large, "spark"),
            "large x10 spark local": (synthetic_store(large, 10), "spark"),
        }
        measured: dict[str, dict[str, Any]] = {}
        for name, (store, engine) in runs.items():
            load = os.getloadavg()[0]
            print(f"analysing {name} (load average {load:.2f}) ...", flush=True)
            measured[name] = analyse_in_child(store, profile=False, engine=engine)
            measured[name]["load_before"] = load
        engines_report(measured)
        print(json.dumps(measured))
        return
    profiled = {s.strip() for s in args.profile.split(",") if s.strip()}
    # Collect every store first: no analysis runs while the simulator holds a core.
    stores = {
        scale: store_for(scale, args.seed, args.action_sample, refresh=args.refresh)
        for scale in scales
    }
    results: dict[str, dict[str, Any]] = {}
    for scale in scales:
        # Other work on the machine slows the analysis: the load says how quiet it was.
        load = os.getloadavg()[0]
        print(f"analysing scale {scale} (load average {load:.2f}) ...", flush=True)
        results[scale] = analyse_in_child(stores[scale], profile=False)
        results[scale]["load_before"] = load
        if scale in profiled:  # a second run: cProfile slows the analysis it measures
            analyse_in_child(stores[scale], profile=True)
    report(results, args.seed, args.action_sample)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
