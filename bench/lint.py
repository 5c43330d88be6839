"""`auditor lint` on a folder of 100 flow definitions of realistic size.

Writes an unpacked solution (pac / SolutionPackager layout) with 100 cloud flows of about
5 to 200 KB each (55 KB on average; the exported flows of the CoE and approvals kits run from
1 to 150 KB), shaped like them (Dataverse triggers, conditions, loops, try/catch scopes,
connector actions with their parameters) and 40 plug-in steps, then times
`auditor lint <folder> --out <dir>` in a child process: the whole command, interpreter start
included, as a pipeline step runs it.
Figures, not assertions: see bench/README.md (the goal: under 5 s).

Then the hostile rows, inputs anyone can commit to a pull request, built at run time: three
flows of 6,000 actions, each an Update of one of five columns drawn at random (every
five-action window recurs in many places: thousands of `flow-repeated-block` findings), and
a solution zip whose customizations.xml holds 200,000 Update plug-in steps without filtering
attributes (each a `plugin-update-unfiltered` finding). Each is linted at half and at full
size in the same run, for the time, the peak memory of the child (from `wait4`), the size of
the reports written and the ratio of full to half: 2 is linear, 4 quadratic. The goal is
under 10 s and under 1 GB each. `--before DIR` lints the same inputs with the auditor of
another checkout too (an export of an earlier commit), for ratios measured in one run.

Usage: python bench/lint.py [--flows 100] [--seed 7] [--no-hostile] [--before DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from auditor.sim.hostile_solutions import write_repeated_flows, write_unfiltered_steps

DATAVERSE = "/providers/Microsoft.PowerApps/apis/shared_commondataserviceforapps"
OFFICE = "/providers/Microsoft.PowerApps/apis/shared_office365"
TABLES = ("account", "contact", "incident", "opportunity", "cat_request", "cat_approval")


def connector_action(rng: random.Random, name: str, after: str | None) -> dict[str, Any]:
    """A Dataverse or Outlook action with the parameters real exports carry."""
    dataverse = rng.random() < 0.7
    operation = rng.choice(("ListRecords", "GetItem", "UpdateRecord", "CreateRecord"))
    params: dict[str, Any] = (
        {
            "entityName": rng.choice(TABLES),
            "$select": ",".join(f"cat_field{n}" for n in range(rng.randint(3, 12))),
            "$filter": f"statecode eq 0 and cat_status eq {rng.randint(1, 9)}",
            "item/cat_description": "@{triggerOutputs()?['body/cat_description']}" * 3,
        }
        if dataverse
        else {
            "emailMessage/To": "@{outputs('Get_owner')?['body/internalemailaddress']}",
            "emailMessage/Subject": f"Request @{{triggerOutputs()?['body/cat_name']}} {name}",
            "emailMessage/Body": "<p>" + "Your request was processed. " * 12 + "</p>",
        }
    )
    action: dict[str, Any] = {
        "type": "OpenApiConnection",
        "inputs": {
            "host": {
                "connectionName": "shared_commondataserviceforapps"
                if dataverse
                else "shared_office365",
                "operationId": operation if dataverse else "SendEmailV2",
                "apiId": DATAVERSE if dataverse else OFFICE,
            },
            "parameters": params,
            "authentication": "@parameters('$authentication')",
        },
        "runAfter": {after: ["Succeeded"]} if after else {},
    }
    if rng.random() < 0.2:
        action["runtimeConfiguration"] = {"paginationPolicy": {"minimumItemCount": 5000}}
    if rng.random() < 0.15:
        action["retryPolicy"] = {"type": "exponential", "count": 4, "interval": "PT10S"}
    return action


def actions(rng: random.Random, prefix: str, count: int, depth: int = 0) -> dict[str, Any]:
    """`count` actions in runAfter order, some of them conditions, loops or scopes."""
    out: dict[str, Any] = {}
    after: str | None = None
    for n in range(count):
        name = f"{prefix}_{n}"
        roll = rng.random()
        if depth < 3 and roll < 0.12:
            out[name] = {
                "type": "If",
                "expression": {"and": [{"equals": ["@triggerBody()?['statecode']", 0]}]},
                "actions": actions(rng, f"{name}_yes", rng.randint(2, 6), depth + 1),
                "else": {"actions": actions(rng, f"{name}_no", rng.randint(1, 4), depth + 1)},
                "runAfter": {after: ["Succeeded"]} if after else {},
            }
        elif depth < 3 and roll < 0.2:
            out[name] = {
                "type": "Foreach",
                "foreach": f"@outputs('{after or 'Trigger'}')?['body/value']",
                "actions": actions(rng, f"{name}_each", rng.randint(2, 5), depth + 1),
                "runAfter": {after: ["Succeeded"]} if after else {},
                "runtimeConfiguration": {"concurrency": {"repetitions": rng.choice((1, 20, 50))}},
            }
        elif roll < 0.3:
            out[name] = {
                "type": "Compose",
                "inputs": {"id": "@{guid()}", "note": "x" * rng.randint(50, 400)},
                "runAfter": {after: ["Succeeded"]} if after else {},
            }
        else:
            out[name] = connector_action(rng, name, after)
        after = name
    return out


def flow(rng: random.Random, index: int) -> dict[str, Any]:
    """A solution flow (clientdata shape) with a Dataverse trigger and a try/catch."""
    message = rng.choice((1, 3, 3, 4))
    parameters: dict[str, Any] = {
        "subscriptionRequest/message": message,
        "subscriptionRequest/entityname": rng.choice(TABLES),
        "subscriptionRequest/scope": 4,
    }
    if rng.random() < 0.6:
        parameters["subscriptionRequest/filteringattributes"] = "statecode,cat_status"
    size = rng.choice((4, 6, 9, 12, 16, 22))
    body = actions(rng, "Step", size)
    definition = {
        "$schema": "https://schema.management.azure.com/providers/Microsoft.Logic/schemas/"
        "2016-06-01/workflowdefinition.json#",
        "contentVersion": "1.0.0.0",
        "parameters": {
            "$connections": {"defaultValue": {}, "type": "Object"},
            "$authentication": {"defaultValue": {}, "type": "SecureObject"},
        },
        "triggers": {
            "When_a_row_is_added,_modified_or_deleted": {
                "type": "OpenApiConnectionWebhook",
                "inputs": {
                    "host": {
                        "connectionName": "shared_commondataserviceforapps",
                        "operationId": "SubscribeWebhookTrigger",
                        "apiId": DATAVERSE,
                    },
                    "parameters": parameters,
                    "authentication": "@parameters('$authentication')",
                },
            }
        },
        "actions": {
            "Try": {"type": "Scope", "actions": body, "runAfter": {}},
            "Catch": {
                "type": "Scope",
                "actions": {
                    "Terminate": {
                        "type": "Terminate",
                        "inputs": {"runStatus": "Failed", "runError": {"code": "500"}},
                        "runAfter": {},
                    }
                },
                "runAfter": {"Try": ["Failed", "TimedOut"]},
            },
        },
    }
    return {
        "properties": {
            "connectionReferences": {
                "shared_commondataserviceforapps": {
                    "runtimeSource": "embedded",
                    "connection": {"connectionReferenceLogicalName": f"cat_dataverse_{index}"},
                    "api": {"name": "shared_commondataserviceforapps"},
                }
            },
            "definition": definition,
        },
        "schemaVersion": "1.0.0.0",
    }


def write_solution(folder: Path, flows: int, seed: int) -> list[int]:
    """The unpacked solution; returns the size in bytes of each flow file."""
    rng = random.Random(seed)
    (folder / "Workflows").mkdir(parents=True)
    (folder / "SdkMessageProcessingSteps").mkdir()
    sizes = []
    for index in range(flows):
        guid = str(uuid.UUID(int=rng.getrandbits(128))).upper()
        name = f"Flow{index:03d}"
        path = folder / "Workflows" / f"{name}-{guid}.json"
        path.write_text(json.dumps(flow(rng, index), indent=2), encoding="utf-8")
        sizes.append(path.stat().st_size)
        (folder / "Workflows" / f"{name}-{guid}.json.data.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?>\n<Workflow WorkflowId="{{{guid}}}" '
            f'Name="{name}">\n  <JsonFileName>/Workflows/{name}-{guid}.json</JsonFileName>\n'
            "  <Type>1</Type>\n  <Category>5</Category>\n  <StateCode>1</StateCode>\n"
            "  <StatusCode>2</StatusCode>\n</Workflow>\n",
            encoding="utf-8",
        )
    update = "20bebb1b-ea3e-db11-86a7-000a3a5473e8"
    for index in range(40):
        stepid = str(uuid.UUID(int=rng.getrandbits(128)))
        filtering = "name,statecode" if index % 2 else ""
        (folder / "SdkMessageProcessingSteps" / f"{{{stepid}}}.xml").write_text(
            f'<?xml version="1.0" encoding="utf-8"?>\n<SdkMessageProcessingStep '
            f'Name="Plugins.AccountPlugin{index}: Update of account" '
            f'SdkMessageProcessingStepId="{{{stepid}}}">\n'
            f"  <SdkMessageId>{update}</SdkMessageId>\n  <PrimaryEntity>account</PrimaryEntity>\n"
            f"  <FilteringAttributes>{filtering}</FilteringAttributes>\n"
            "  <Mode>0</Mode>\n  <Rank>1</Rank>\n  <Stage>40</Stage>\n"
            "</SdkMessageProcessingStep>\n",
            encoding="utf-8",
        )
    return sizes


# Hostile inputs: built by auditor.sim.hostile_solutions, shared with the scale tests.


@dataclass(frozen=True)
class Lint:
    """One `auditor lint` child: wall seconds, peak RSS, reports' size, its summary line."""

    seconds: float
    peak_mb: float
    reports_mb: float
    results: int
    summary: str


def timed_lint(source: Path, out: Path, checkout: Path | None = None) -> Lint:
    """`auditor lint SOURCE --out OUT` in a child process; with `checkout`, the auditor of
    that folder (run from it, so it is the one imported).

    The peak memory is the child's own high-water mark (`VmHWM`, polled): the `ru_maxrss`
    that `wait4` returns also counts the parent's size when the child was forked."""
    command = [sys.executable, "-m", "auditor", "lint", str(source), "--out", str(out)]
    env = {**os.environ, "PYTHONPATH": str(checkout)} if checkout else None
    peak_kb = 0
    with tempfile.TemporaryFile() as err:
        started = time.monotonic()
        child = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=err, cwd=checkout or source.parent, env=env
        )
        while True:
            peak_kb = max(peak_kb, _high_water_kb(child.pid))
            pid, status, _ = os.wait4(child.pid, os.WNOHANG)
            if pid:
                break
            time.sleep(0.01)
        seconds = time.monotonic() - started
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    code = os.waitstatus_to_exitcode(status)
    if code not in (0, 1):
        sys.exit(f"auditor lint {source} failed ({code}): {stderr[-2000:]}")
    sarif = json.loads((out / "report.sarif").read_text(encoding="utf-8"))
    written = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    lines = [line for line in stderr.splitlines() if line.startswith(("Linted", "warning:"))]
    return Lint(
        seconds,
        peak_kb / 1024,
        written / 2**20,
        len(sarif["runs"][0]["results"]),
        " ".join(lines),
    )


def _high_water_kb(pid: int) -> int:
    """A running process's peak resident memory so far (Linux), 0 once it has exited."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return int(found.group(1)) if found else 0


def hostile(work: Path, before: Path | None) -> None:
    """The hostile rows: each input at half and full size, timed in this one run; with
    `before`, each also linted by that checkout's auditor."""
    cases: tuple[tuple[str, int, Callable[[Path, int], int], str], ...] = (
        ("3 flows x {n:,} actions", 6_000, write_repeated_flows, "flows"),
        ("{n:,} plug-in steps (zip)", 200_000, write_unfiltered_steps, "steps.zip"),
    )
    print(f"\nhostile inputs, load average {os.getloadavg()[0]:.2f} before the first run")
    print(
        f"{'hostile input':30} {'run':>6} {'input MB':>8} {'seconds':>8} {'peak MB':>8} "
        f"{'reports MB':>10} {'results':>8}"
    )
    runs = (("before", before), ("now", None)) if before else (("now", None),)
    for label, full, write, name in cases:
        timings: dict[str, list[float]] = {}
        for n in (full // 2, full):
            source = work / f"{n}-{name}"
            size = write(source, n)
            for run, checkout in runs:
                out = work / f"out-{run}-{source.name}"
                ran = timed_lint(source, out, checkout)
                shutil.rmtree(out)  # the old reports of 200,000 steps are 670 MB
                timings.setdefault(run, []).append(ran.seconds)
                print(
                    f"{label.format(n=n):30} {run:>6} {size / 2**20:8.1f} {ran.seconds:8.2f} "
                    f"{ran.peak_mb:8.0f} {ran.reports_mb:10.1f} {ran.results:8,}"
                )
                print(f"  {_read(ran.summary)}")
            if source.is_dir():
                shutil.rmtree(source)
            else:
                source.unlink()
        for run, (half, whole) in timings.items():
            print(f"  {run}: full / half {whole / half:.2f} (2 is linear, 4 quadratic)")
        if before:
            print(f"  full size, now / before: {timings['now'][1] / timings['before'][1]:.2f}")


def _read(summary: str) -> str:
    """What the lint read and found, from its summary line (without the timing)."""
    return re.sub(r" in [0-9.]+s;", ";", summary)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--no-hostile", action="store_true", help="skip the hostile rows")
    parser.add_argument(
        "--before", type=Path, help="lint the hostile inputs with this checkout's auditor too"
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="auditor-bench-lint-"))
    solution = work / "src"
    sizes = write_solution(solution, args.flows, args.seed)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "auditor", "lint", str(solution), "--out", str(work / "out")],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"auditor lint failed ({done.returncode}): {done.stderr}")
    sarif = json.loads((work / "out" / "report.sarif").read_text(encoding="utf-8"))
    results = len(sarif["runs"][0]["results"])
    print(
        f"{args.flows} flows: {statistics.mean(sizes) / 1024:.0f} KB mean, "
        f"{min(sizes) / 1024:.0f}-{max(sizes) / 1024:.0f} KB, {sum(sizes) / 2**20:.1f} MB in all; "
        "40 plug-in steps"
    )
    print(f"auditor lint: {seconds:.2f} s wall (interpreter start included), {results} results")
    print(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "")
    if not args.no_hostile:
        hostile(work, args.before.resolve() if args.before else None)


if __name__ == "__main__":
    main()
