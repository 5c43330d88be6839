"""Opening the store file safely: the checks on the file before DuckDB writes to it, and
DuckDB's settings.

The file is checked before DuckDB writes to it: its first bytes must be DuckDB's header (a
SQLite database, an empty or a text file is named as such). DuckDB never installs or loads
an extension for the store, and a read-write store reads and writes no file but its own. The
store, its write-ahead log and the folders created for it are owner-only: they hold tenant
telemetry.
"""

from __future__ import annotations

import codecs
import os
import stat
import threading
from pathlib import Path

import duckdb

from auditor.errors import WriteError
from auditor.files import private_dir
from auditor.store.errors import StoreError, open_error

# DuckDB never installs or loads an extension for the store: a file it does not recognise
# (a SQLite database) would otherwise make it download a reader for it from the internet.
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
# A DuckDB file starts with a checksum (8 bytes) and the magic bytes "DUCK"
# (https://duckdb.org/docs/stable/internals/storage).
_MAGIC_AT = 8
_MAGIC = b"DUCK"
_HEADER_BYTES = 4096
_KINDS = (
    (b"SQLite format 3\x00", "a SQLite database"),
    (b"PAR1", "a Parquet file"),
    (b"PK\x03\x04", "a ZIP archive"),
)
# What an auditor store never holds: SQL that came with the file.
FOREIGN_OBJECTS = (
    "SELECT 'a view' FROM duckdb_views() WHERE NOT internal AND NOT temporary"
    " UNION ALL SELECT 'a macro' FROM duckdb_functions() WHERE NOT internal"
    " AND function_type IN ('macro', 'table_macro')"
    " UNION ALL SELECT 'a computed or default column' FROM duckdb_columns()"
    " WHERE NOT internal AND column_default IS NOT NULL"
    " UNION ALL SELECT 'a CHECK constraint' FROM duckdb_constraints()"
    " WHERE constraint_type = 'CHECK' LIMIT 1"
)


def check_location(path: Path, *, read_only: bool) -> bool:
    """Whether a store file exists at `path`; a StoreError for a folder, a device or a pipe,
    or a missing store that a read-only open cannot create."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if path.is_symlink():
            raise StoreError(
                f"{path} is a symbolic link to a file that does not exist; the auditor does not "
                "create a store through a link",
                hint="Remove the link, or give the path of the store itself with --store.",
            ) from None
        if read_only:
            raise StoreError(
                f"no store at {path}; run auditor collect first",
                hint="Run `auditor collect`, or point --store (AUDITOR_STORE) at an existing "
                "store.",
            ) from None
        return False
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc.strerror or exc}") from exc
    if stat.S_ISDIR(mode):
        raise StoreError(
            f"{path} is a directory, not a store file",
            hint="Give the path of a .duckdb file, e.g. --store auditor-data/auditor.duckdb.",
        )
    if not stat.S_ISREG(mode):
        raise StoreError(
            f"{path} is not a regular file (a device, a pipe or a socket), not a DuckDB store",
            hint="Give the path of a .duckdb file, e.g. --store auditor-data/auditor.duckdb.",
        )
    return True


def check_header(path: Path) -> None:
    """Reads the first bytes of an existing file: a StoreError, naming what the file looks
    like, when it is not a DuckDB file. Nothing is written."""
    try:
        # Non-blocking: a pipe put at the path meanwhile must not hang the open.
        handle = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        try:
            head = os.read(handle, _HEADER_BYTES)
        finally:
            os.close(handle)
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc.strerror or exc}") from exc
    if head[_MAGIC_AT : _MAGIC_AT + len(_MAGIC)] == _MAGIC:
        return
    raise StoreError(
        f"{path} is {_kind(head)}, not a DuckDB store",
        hint="--store must name an auditor store (a .duckdb file); the file was not changed. "
        "Move it away or choose another path, e.g. --store new.duckdb.",
    )


def _kind(head: bytes) -> str:
    """What the first bytes of a file that is not a DuckDB file look like."""
    if not head:
        return "an empty file"
    for magic, kind in _KINDS:
        if head.startswith(magic):
            return kind
    try:
        # Incremental: a character cut at the end of what was read is not an error.
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "a file without a DuckDB header"
    return "a text file" if "\x00" not in text else "a file without a DuckDB header"


def create_folder(folder: Path) -> None:
    """The folder of a new store: an existing one is used as it is, a missing one is made
    owner-only (0700)."""
    if folder.is_dir():
        return
    try:
        private_dir(folder)
    except WriteError as exc:
        raise StoreError(
            f"cannot create the folder of the store: {exc.message}",
            hint="Choose a writable location with --store or AUDITOR_STORE.",
        ) from exc


def connect(
    path: Path, *, read_only: bool, files_in: Path | None, external: bool | None = None
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection to the store. DuckDB reads and writes no other file, unless
    `files_in` names the one folder it may write into (an export's `COPY ... TO`)."""
    config = dict(_CONFIG)
    allow = bool(external)
    if not allow and files_in is None:
        config["enable_external_access"] = False
    try:
        connection = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.Error as exc:
        raise open_error(path, exc, writing=not read_only) from exc
    if files_in is not None:
        folder = str(Path(files_in).absolute()).replace("'", "''").rstrip("/") + "/"
        try:
            # Only this way round: DuckDB takes no new folders once external access is off.
            connection.execute(f"SET allowed_directories = ['{folder}']")
            connection.execute("SET enable_external_access = false")
        except duckdb.Error as exc:
            connection.close()
            raise open_error(path, exc, writing=not read_only) from exc
    return connection


def owner_only(path: Path) -> None:
    """The store and its write-ahead log readable by their owner only (a store made by an
    earlier auditor followed the umask)."""
    for file in (path, path.with_name(path.name + ".wal")):
        try:
            mode = os.stat(file).st_mode
            if stat.S_IMODE(mode) & 0o077:
                os.chmod(file, stat.S_IMODE(mode) & 0o700)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StoreError(
                f"cannot make the store {file} owner-only: {exc.strerror or exc}",
                hint="Check that you own the store file, or collect into a new store with --store.",
            ) from exc


class PrivateFiles:
    """While a store is open, files the process creates are owner-only (umask 077): DuckDB
    creates the write-ahead log and its temporary files itself, with the umask's mode, and
    they hold tenant telemetry. Counted, so the last store closed restores the umask."""

    _lock = threading.Lock()
    _open = 0
    _saved = 0

    @classmethod
    def acquire(cls) -> None:
        with cls._lock:
            if cls._open == 0:
                cls._saved = os.umask(0o077)
                os.umask(cls._saved | 0o077)
            cls._open += 1

    @classmethod
    def release(cls) -> None:
        with cls._lock:
            cls._open -= 1
            if cls._open == 0:
                os.umask(cls._saved)
