"""Exit codes: 0 all good; 1 a verdict at or above `--fail-on`; 2 usage or configuration error;
3 authentication or collection failure; 130 or 143 when Ctrl-C or SIGTERM stopped the run.

An `AuditorError` prints one line and its hint; the traceback only with `--debug`.
"""

from __future__ import annotations

import functools
import signal
import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer

from auditor.cli.context import cli_context
from auditor.cli.output import err
from auditor.errors import AuditorError, Terminated
from auditor.terminal import markup

P = ParamSpec("P")
R = TypeVar("R")

_terminated = threading.Event()

# Commands that collect: an interrupted one resumes where it stopped on the next run, since
# every page is stored with its checkpoint in one transaction.
COLLECTING = frozenset({"collect", "scan", "demo"})


def terminate(signum: int, _frame: object) -> None:
    """SIGTERM (a scheduler stopping the job) is handled as Ctrl-C is: asyncio then cancels
    the collection's tasks in order, and every store transaction ends or rolls back."""
    _terminated.set()
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        # A background job of a script starts with Ctrl-C ignored; SIGTERM must still stop it.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.raise_signal(signal.SIGINT)


def report_error(exc: AuditorError, *, debug: bool) -> None:
    """One line and its hint on stderr (the traceback too with --debug)."""
    if debug:
        traceback.print_exception(exc, file=sys.stderr)
    # Messages can carry tenant text and TOML keys like [auth]: never read them as markup.
    err.print(f"[bold red]error:[/] {markup(exc.message)}", soft_wrap=True)
    err.print(f"[dim]hint:[/] {markup(exc.hint)}", soft_wrap=True)


def report_interrupt(command: str, exc: KeyboardInterrupt) -> int:
    """One line saying what an interrupt left behind; the exit code of the signal."""
    sigterm = _terminated.is_set() or isinstance(exc, Terminated)
    name, code = ("SIGTERM", 143) if sigterm else ("SIGINT", 130)
    if command in COLLECTING:
        what = "every page collected so far is stored"
        hint = "Run the same command again: the scan resumes where it stopped."
    else:
        what = "no file was left half-written"
        hint = "Run the command again."
    err.print(f"[bold yellow]interrupted:[/] stopped by {name}; {what}.", soft_wrap=True)
    err.print(f"[dim]hint:[/] {hint}", soft_wrap=True)
    return code


def handles_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn an AuditorError into one line, a hint and the documented exit code; Ctrl-C and
    SIGTERM into one line saying whether the scan resumes, and 130 or 143. The command takes
    typer's context as `ctx` (for --debug)."""

    @functools.wraps(command)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except AuditorError as exc:
            report_error(exc, debug=_debug(kwargs))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt as exc:
            if _debug(kwargs):
                traceback.print_exception(exc, file=sys.stderr)
            raise typer.Exit(report_interrupt(command.__name__, exc)) from None

    return wrapper


def _debug(kwargs: dict[str, Any]) -> bool:
    """--debug, from the context every command takes as `ctx`."""
    ctx = kwargs.get("ctx")
    return ctx is not None and cli_context(ctx).debug
