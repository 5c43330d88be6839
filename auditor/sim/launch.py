"""Start, wait for and stop the simulator: `auditor sim serve` in a child process (for the
demo, benchmarks and tests that want the simulator on its own CPU core, driven exactly as a
user runs it), or a server in this process (`auditor sim serve` itself)."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from auditor.sim.model import SimOptions
    from auditor.sim.server import SimServer


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


@contextmanager
def stopped_after(process: subprocess.Popen[str]) -> Iterator[subprocess.Popen[str]]:
    """Run the block, then stop the simulator child and wait for it to exit (also when the
    block fails), so no simulator outlives the command that started it."""
    try:
        yield process
    finally:
        process.terminate()
        process.communicate(timeout=30)


@contextmanager
def serving(options: SimOptions, port: int = 0) -> Iterator[tuple[SimServer, str]]:
    """The simulated tenant of `options.seed` and `options.scale`, served in this process on
    127.0.0.1:`port` (0: a free one) for the block; yields the server and its base URL."""
    from auditor.sim.scenario import generate
    from auditor.sim.server import SimServer

    server = SimServer(generate(options.seed, options.scale), options, port=port)
    base_url = server.start()
    try:
        yield server, base_url
    finally:
        server.stop()


def wait_for_interrupt() -> None:
    """Block until Ctrl-C or SIGTERM: how `auditor sim serve` is stopped."""
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
