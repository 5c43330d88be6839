"""Runs the auditor as a user would, in a subprocess bounded in memory and time, and checks
what an operator relies on: the exit code, one error line (no traceback), and that nothing
outside the output folder changed.

The memory bound is the address-space limit (RLIMIT_AS) of the child: a run that would grow
past it fails with a MemoryError instead of taking the machine down, and the child's peak
resident set (`VmHWM`, read while it runs) is returned for the test to compare with its own
bound.
"""

from __future__ import annotations

import hashlib
import os
import resource
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Address space the child may reserve. Importing pandas, numpy and DuckDB reserves about
# 400 MB of address space before any work, and each DuckDB database about 600 MB more when
# it starts (the analysis's reductions run in one, `auditor lint`'s too); the tests' bound on
# real memory is `peak_mb`.
ADDRESS_SPACE_MB = 3072


@dataclass(frozen=True)
class Ran:
    """How one run of the auditor ended."""

    code: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float
    # User and system CPU of the child (`wait4`): the work it did, which other processes on
    # a busy machine do not lengthen as they lengthen `seconds`.
    cpu_seconds: float = 0.0

    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.startswith("error:")]

    def assert_one_line_error(self, code: int, *needles: str) -> str:
        """Exit `code`, exactly one `error:` line holding every needle, no traceback."""
        assert self.code == code, (self.code, self.stderr[-3000:])
        assert "Traceback" not in self.stderr, self.stderr[-3000:]
        lines = self.error_lines()
        assert len(lines) == 1, self.stderr[-3000:]
        for needle in needles:
            assert needle in lines[0], (needle, lines[0])
        return lines[0]


def clean_environment(home: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The process environment without the machine's tenant settings, one thread per
    numeric library (so the address space stays small), and a private HOME."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AUDITOR_", "AZURE_"))}
    env.update(
        HOME=str(home),
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
        COLUMNS="200",
        PYTHONDONTWRITEBYTECODE="1",
    )
    env.update(extra or {})
    return env


def run_auditor(
    args: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    memory_mb: int = ADDRESS_SPACE_MB,
    timeout: float = 120,
    stdin: int | None = subprocess.DEVNULL,
    file_size_mb: float | None = None,
) -> Ran:
    """`python -m auditor ARGS` in `cwd`, limited to `memory_mb` of address space; with
    `file_size_mb`, no file it writes may grow past that (writes then fail with EFBIG, as on
    a full disk)."""
    limit = memory_mb * 1024 * 1024

    def bound() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        if file_size_mb is not None:
            size = int(file_size_mb * 1024 * 1024)
            # Ignored, SIGXFSZ no longer kills the process: the write fails with EFBIG.
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, size))

    environment = dict(env) if env is not None else clean_environment(cwd)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, "-m", "auditor", *args],
            cwd=cwd,
            env=environment,
            stdin=stdin,
            stdout=out,
            stderr=err,
            preexec_fn=bound,
        )
        deadline = started + timeout
        peak_kb = 0
        while True:
            peak_kb = max(peak_kb, _high_water_kb(process.pid))
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                os.wait4(process.pid, 0)
                raise AssertionError(f"auditor {' '.join(args)} ran past {timeout} s")
            time.sleep(0.01)
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Ran(
            process.returncode,
            out.read().decode("utf-8", "replace"),
            err.read().decode("utf-8", "replace"),
            seconds,
            peak_kb / 1024,
            usage.ru_utime + usage.ru_stime,
        )


def _high_water_kb(pid: int) -> int:
    """The child's peak resident set so far (`VmHWM`). Not `wait4`'s `ru_maxrss`, which
    counts the memory of the test process the child was forked from."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass  # gone already: its last reading stands
    return 0


def snapshot(root: Path, *, skip: Sequence[Path] = ()) -> dict[str, tuple[int, int, str]]:
    """Every path below `root` (links not followed) with its mode, size and content hash;
    paths under `skip` left out."""
    skipped = [Path(p).resolve() for p in skip]
    seen: dict[str, tuple[int, int, str]] = {}
    for folder, folders, files in os.walk(root):
        for name in [*folders, *files]:
            path = Path(folder, name)
            if any(path.absolute() == s or s in path.absolute().parents for s in skipped):
                continue
            info = path.lstat()
            digest = ""
            if path.is_file() and not path.is_symlink():
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_symlink():
                digest = os.readlink(path)
            seen[str(path.relative_to(root))] = (info.st_mode, info.st_size, digest)
    return seen


def assert_unchanged(before: Mapping[str, object], after: Mapping[str, object]) -> None:
    """Nothing outside the output folder appeared, disappeared or changed."""
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    assert not added, {"added": added}
    assert not removed, {"removed": removed}
    assert not changed, {"changed": changed}
