"""The store's errors: DuckDB's failures of the file said as what they mean to the user.

A DuckDB error meaning the file is damaged or cannot be written, wherever it happens, becomes
a `StoreDamaged` or `StoreUnwritable`; any other passes as it is.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import duckdb

from auditor.errors import AuditorError
from auditor.terminal import clean


class StoreError(AuditorError):
    """The store cannot be opened, upgraded or written."""

    exit_code = 3
    default_hint = (
        "Check the --store path (or AUDITOR_STORE); to start afresh, collect into a new store, "
        "e.g. --store new.duckdb."
    )


class StoreDamaged(StoreError):
    """The store file is corrupt: a checksum does not match, or DuckDB cannot read it."""

    default_hint = (
        "Restore the store from a copy, or collect into a new store, e.g. --store new.duckdb."
    )


class StoreUnwritable(StoreError):
    """A write to the store failed: the disk is full, a file size limit, a read-only disk."""

    default_hint = (
        "Free disk space (or raise the file size limit), or move the store to a disk with room "
        "(--store); what was stored before is kept, and running the command again continues "
        "from there."
    )


class AlreadyOpen(StoreError):
    """This process has the store open already, with other settings."""


# The operating system's reasons a write fails for want of room or permission.
_WRITE_FAILED = re.compile(
    "|".join(
        re.escape(os.strerror(code))
        for code in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT, errno.EROFS, errno.EACCES)
    )
)
_DAMAGE = re.compile(r"corrupt|checksum|could not read", re.IGNORECASE)
_CHECKSUM_AT = re.compile(r"checksum.*? in block at location (\d+)")
_SHORT_AT = re.compile(r"Could not read enough bytes.*?read (\d+) bytes from location (\d+)")


def store_failure(path: Path, exc: duckdb.Error, *, writing: bool) -> StoreError | None:
    """The StoreError for a DuckDB error meaning the file is damaged or cannot be written;
    None for any other error. `writing`: the statement wrote to the store (a read that
    fails for want of room is writing some other file)."""
    text = str(exc)
    # DuckDB stops using a database after a failed checkpoint or a corrupt read: "fatal".
    fatal = isinstance(exc, duckdb.FatalException)
    reason = _WRITE_FAILED.search(text)
    if reason:
        # Without a write to the store, it is a file the query writes, or the store's access
        # rights when opening it: not the store's failure.
        if writing or fatal:
            return StoreUnwritable(f"the store {clean(path)} cannot be written ({reason.group(0)})")
        return None
    damaged = isinstance(exc, duckdb.SerializationException | duckdb.InternalException)
    if fatal or damaged or _DAMAGE.search(text):
        return StoreDamaged(f"the store {clean(path)} is damaged ({_damage(text)})")
    return None


def _damage(text: str) -> str:
    """DuckDB's account of the damage, short and on one line."""
    checksum = _CHECKSUM_AT.search(text)
    if checksum:
        return f"a checksum does not match, in the block at byte {checksum.group(1)}"
    short = _SHORT_AT.search(text)
    if short:
        size, at = short.groups()
        return f"the file is cut short: no {size} bytes at byte {at}"
    first = text.strip().splitlines()[0] if text.strip() else "DuckDB could not read it"
    return clean(re.sub(r' ?"[^"]*"', "", first), 200)  # the path is said already


def open_error(path: Path, exc: duckdb.Error, *, writing: bool) -> StoreError:
    """Says why DuckDB could not open the file, and what to do about it."""
    text = str(exc)
    if "different configuration" in text:
        return AlreadyOpen(
            f"the store {path} is already open in this process, with other settings",
            hint="Open the store once and share it; this is a bug in the auditor, please "
            "report it.",
        )
    if re.search(r"\block on file|conflicting lock", text, re.IGNORECASE):
        pid = re.search(r"\(PID (\d+)\)", text)
        return StoreError(
            f"the store {path} is in use by another process"
            + (f" (PID {pid.group(1)})" if pid else ""),
            hint="Wait for the other auditor (collect or report) to finish, or use another "
            "--store.",
        )
    failure = store_failure(path, exc, writing=writing)
    if failure is not None:
        return failure
    if "not a valid DuckDB database" in text:
        return StoreError(
            f"{path} is not a DuckDB store",
            hint="--store must name an auditor store (a .duckdb file); move this file away or "
            "choose another path, e.g. --store new.duckdb.",
        )
    if "version" in text.lower():
        return StoreError(
            f"{path} was written by a different DuckDB version: {clean(text, 300)}",
            hint="Upgrade the auditor, or collect into a new store, e.g. --store new.duckdb.",
        )
    return StoreError(f"cannot open the store {path}: {clean(text, 300)}")
