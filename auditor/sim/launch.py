"""Run `auditor sim serve` in a child process: for benchmarks and tests that want the
simulator on its own CPU core, driven exactly as a user runs it."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path


def serve_process(
    folder: Path,
    *,
    seed: int = 7,
    scale: str = "small",
    latency_ms: float = 0.0,
    extra: Sequence[str] = (),
) -> tuple[subprocess.Popen[str], str]:
    """Start the simulator writing its client files to `folder`; returns it and its URL.
    `extra` are more `auditor sim serve` options (--deny, --max-requests, --faults ...).

    Raises RuntimeError with the simulator's error output when it exits before serving.
    """
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and fixed arguments
        [
            sys.executable,
            "-m",
            "auditor",
            "sim",
            "serve",
            "--port",
            "0",
            "--seed",
            str(seed),
            "--scale",
            scale,
            "--latency-ms",
            str(latency_ms),
            "--ca-out",
            str(folder),
            *extra,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "COLUMNS": "200"},  # the URL line must not wrap
    )
    assert process.stdout is not None
    for line in process.stdout:
        if " at https://" in line:
            return process, line.rsplit(" at ", 1)[1].strip()
    _, errors = process.communicate(timeout=30)
    raise RuntimeError(f"the simulator exited before serving: {errors.strip()}")


def client_environment(folder: Path) -> dict[str, str]:
    """The variables the simulator wrote to `folder/env` (the client secret, the CA path),
    as `set -a; . env` would set them."""
    out: dict[str, str] = {}
    for line in (folder / "env").read_text(encoding="utf-8").splitlines():
        for word in shlex.split(line):
            name, _, value = word.partition("=")
            out[name] = value
    return out
