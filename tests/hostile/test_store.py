"""A store file that is not what it claims, or a disk that fills, ends in one line and exit 3.

`--store` may name anything: a SQLite database (which DuckDB would offer to read by
downloading an extension), an empty or a text file, a DuckDB store with a flipped block or
header, another program's DuckDB database. Each is refused with a line saying which, and the
file is never changed (hashed before and after). A collection whose store writes fail (the
file size limit of the harness fails them with EFBIG, as a full disk fails them with ENOSPC)
stops with one line and exit 3, keeps what it stored, and its files are owner-only.
"""

from __future__ import annotations

import sqlite3
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from auditor.sim.model import SimOptions
from auditor.sim.scenario import generate
from auditor.sim.server import SimServer
from auditor.store import Store
from tests.hostile.harness import Ran, assert_unchanged, clean_environment, run_auditor, snapshot

T0 = datetime(2024, 5, 1, tzinfo=UTC)
# Where a proxy would be: a download DuckDB tried anyway would fail here, not leave the host.
NO_NETWORK = {"HTTPS_PROXY": "http://127.0.0.1:9", "HTTP_PROXY": "http://127.0.0.1:9"}


def run(tmp_path: Path, *args: str, file_size_mb: float | None = None) -> Ran:
    """`auditor ARGS` in `tmp_path` (its HOME too), bounded; nothing but `out/` may change."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    before = snapshot(tmp_path, skip=[tmp_path / "out"])
    ran = run_auditor(
        list(args),
        cwd=tmp_path,
        env=clean_environment(home, NO_NETWORK),
        timeout=60,
        file_size_mb=file_size_mb,
    )
    assert_unchanged(before, snapshot(tmp_path, skip=[tmp_path / "out"]))
    assert ran.seconds < 30, ran.seconds
    assert ran.peak_mb < 600, ran.peak_mb
    # DuckDB keeps what it downloads under HOME: it never tried.
    assert not (home / ".duckdb").exists()
    return ran


def analysed_store(path: Path, rows: int = 3000) -> None:
    """A real store: a completed scan of `rows` trace logs, and an analysis of it."""
    with Store.open(path) as store:
        scan_id = store.begin_scan(
            window_start=T0 - timedelta(days=7), window_end=T0, arguments={}, started=T0
        )
        store.write_page(
            scan_id=scan_id,
            environment_id="env",
            query_id="plugintracelogs",
            unit="w0",
            table="plugintracelogs",
            rows=[
                {
                    "plugintracelogid": str(uuid.UUID(int=n)),
                    "typename": f"Contoso.Plugins.Step{n % 40}",
                    "messageblock": f"trace {n} " + "x" * 200,
                    "createdon": "2024-04-30T10:00:00Z",
                    "performanceexecutionduration": n,
                }
                for n in range(rows)
            ],
            next_link=None,
            done=True,
        )
        store.finish_scan(scan_id, status="completed", ended=T0)
        store.replace_findings(
            scan_id,
            analyzed=T0,
            window_start=T0 - timedelta(days=7),
            window_end=T0,
            environments=None,
            thresholds={},
            findings=pd.DataFrame(),
        )


def flip_blocks_of(path: Path, table: str) -> None:
    """Flips 64 bytes of every block holding `table`'s data, in the middle of the file: its
    checksums no longer match, while the file's header and catalogue stay readable."""
    with duckdb.connect(str(path), read_only=True) as con:
        (size,) = con.execute("SELECT block_size FROM pragma_database_size()").fetchone() or (0,)
        blocks = con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info(?) WHERE block_id >= 0", [table]
        ).fetchall()
    assert size
    assert blocks
    data = bytearray(path.read_bytes())
    for (block,) in blocks:
        # Three 4 KiB headers, then the blocks, each after its own 8-byte checksum (a block
        # only partly used is checked over its used part: the bytes right after it).
        at = 3 * 4096 + int(block) * size + 8
        data[at : at + 64] = bytes(b ^ 0xFF for b in data[at : at + 64])
    path.write_bytes(bytes(data))


def sqlite_file(path: Path) -> None:
    with sqlite3.connect(path) as con:
        con.execute("CREATE TABLE notes (body TEXT)")
        con.execute("INSERT INTO notes VALUES ('not a store')")
    con.close()


@pytest.mark.parametrize(
    ("make", "looks_like"),
    [
        (sqlite_file, "is a SQLite database, not a DuckDB store"),
        (lambda path: path.write_bytes(b""), "is an empty file, not a DuckDB store"),
        (lambda path: path.write_text("id,name\n1,x\n" * 500), "is a text file, not a DuckDB"),
    ],
    ids=["sqlite", "empty", "text"],
)
@pytest.mark.parametrize("command", ["analyze", "report"])
def test_a_file_that_is_not_a_duckdb_store_is_named_and_left_alone(
    tmp_path: Path, make: object, looks_like: str, command: str
) -> None:
    store = tmp_path / "s.duckdb"
    make(store)  # type: ignore[operator]
    args = [command, "--store", "s.duckdb"] + (["--out", "out"] if command == "report" else [])
    ran = run(tmp_path, *args)
    ran.assert_one_line_error(3, looks_like)
    assert "download" not in ran.stderr.lower()
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["analyze", "report"])
def test_a_store_with_a_damaged_data_block_is_damaged_for_analyze_and_report(
    tmp_path: Path, command: str
) -> None:
    store = tmp_path / "s.duckdb"
    analysed_store(store)
    flip_blocks_of(store, "plugintracelogs")
    args = [command, "--store", "s.duckdb"] + (["--out", "out"] if command == "report" else [])
    ran = run(tmp_path, *args)
    line = ran.assert_one_line_error(3, "s.duckdb is damaged", "a checksum does not match")
    assert "not an auditor store" not in line
    assert "Restore the store from a copy" in ran.stderr
    assert not (tmp_path / "out").exists()


def flip_main_header(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[16:24] = bytes(b ^ 0xFF for b in data[16:24])  # after the magic bytes at 8
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        flip_main_header,
        lambda path: flip_blocks_of(path, "meta"),
        lambda path: path.write_bytes(path.read_bytes()[:20_000]),
    ],
    ids=["file-header", "meta-table", "cut-short"],
)
def test_a_damaged_header_or_schema_table_is_damaged_not_a_foreign_file(
    tmp_path: Path, damage: object
) -> None:
    store = tmp_path / "s.duckdb"
    analysed_store(store, rows=100)
    damage(store)  # type: ignore[operator]
    for command in ("analyze", "report"):
        args = [command, "--store", "s.duckdb"] + (["--out", "out"] if command == "report" else [])
        line = run(tmp_path, *args).assert_one_line_error(3, "s.duckdb is damaged")
        assert "not an auditor store" not in line


def test_another_programs_duckdb_database_is_not_an_auditor_store(tmp_path: Path) -> None:
    with duckdb.connect(str(tmp_path / "s.duckdb")) as con:
        con.execute("CREATE TABLE t (x INTEGER)")
        con.execute("INSERT INTO t VALUES (1), (2)")
    for command in ("analyze", "report"):
        args = [command, "--store", "s.duckdb"] + (["--out", "out"] if command == "report" else [])
        run(tmp_path, *args).assert_one_line_error(
            3, "is a DuckDB database but not an auditor store"
        )


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """A tiny simulated tenant, its client files in `tmp_path/sim`."""
    tenant = generate(7, "tiny")
    with SimServer(tenant, SimOptions(seed=7, scale="tiny")) as server:
        server.write_client_files(tmp_path / "sim")
        env = clean_environment(
            tmp_path,
            {
                "AZURE_CLIENT_SECRET": tenant.client_secret,
                "SSL_CERT_FILE": str(tmp_path / "sim" / "ca.pem"),
                **NO_NETWORK,
                "NO_PROXY": "127.0.0.1",
            },
        )
        yield tmp_path, env


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_full_disk_stops_the_collection_with_one_line_and_keeps_what_was_stored(
    served: tuple[Path, dict[str, str]],
) -> None:
    folder, env = served
    args = ["--config", "sim/auditor.toml", "collect", "--all-environments"]
    ran = run_auditor(
        [*args, "--store", "data/s.duckdb"], cwd=folder, env=env, timeout=120, file_size_mb=0.05
    )
    ran.assert_one_line_error(
        3, "data/s.duckdb cannot be written (File too large); the collection stopped"
    )
    assert "run `auditor collect` again" in ran.stderr
    assert ran.seconds < 60, ran.seconds
    assert ran.peak_mb < 600, ran.peak_mb
    store = folder / "data" / "s.duckdb"
    # Owner-only: the folder made for the store, the store and its write-ahead log.
    assert mode(store.parent) == 0o700
    assert mode(store) == 0o600
    assert mode(store.with_name("s.duckdb.wal")) == 0o600
    # The scan is left unfinished with the pages committed before, so the next run resumes.
    with Store.open(store, read_only=True) as opened:
        scan = opened.unfinished_scan()
        assert scan is not None
        assert opened.count("checkpoints") > 0
