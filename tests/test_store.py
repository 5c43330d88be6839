"""The DuckDB store: schema and versions, atomic pages, upserts, coercion, scans, timing."""

from __future__ import annotations

import hashlib
import os
import signal
import stat
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pytest

from auditor.errors import AuditorError
from auditor.store import (
    BOOKKEEPING,
    SCHEMA_VERSION,
    TABLES,
    Checkpoint,
    Store,
    StoreDamaged,
    StoreError,
    StoreUnwritable,
    TableSpec,
)
from auditor.store import schema as store_schema
from auditor.store.errors import store_failure

T0 = datetime(2024, 5, 1, tzinfo=UTC)
ENV = "11111111-1111-1111-1111-111111111111"
OTHER_ENV = "Default-22222222-2222-2222-2222-222222222222"


@pytest.fixture
def store(tmp_path: Path) -> Any:
    with Store.open(tmp_path / "data" / "auditor.duckdb") as opened:
        yield opened


def new_scan(store: Store, *, started: datetime = T0) -> int:
    return store.begin_scan(
        window_start=started - timedelta(days=7),
        window_end=started,
        arguments={"since": "7d", "environments": [ENV]},
        started=started,
    )


def trace(n: int, **fields: Any) -> dict[str, Any]:
    """A plug-in trace log row as Dataverse returns it (with an OData annotation)."""
    row: dict[str, Any] = {
        "@odata.etag": 'W/"1"',
        "plugintracelogid": str(uuid.UUID(int=n)),
        "typename": "Contoso.Plugins.Validate",
        "messagename": "Update",
        "primaryentity": "account",
        "mode": 0,
        "operationtype": 1,
        "depth": 1,
        "correlationid": str(uuid.UUID(int=10_000 + n)),
        "performanceexecutionstarttime": "2024-05-01T10:00:00Z",
        "performanceexecutionduration": 120,
        "issystemcreated": False,
        "createdon": "2024-05-01T10:00:01Z",
    }
    row.update(fields)
    return row


def write(
    store: Store,
    rows: Sequence[Mapping[str, Any]],
    *,
    scan_id: int = 1,
    table: str = "plugintracelogs",
    environment_id: str = ENV,
    unit: str = "w0",
    next_link: str | None = None,
    done: bool = False,
) -> int:
    return store.write_page(
        scan_id=scan_id,
        environment_id=environment_id,
        query_id=table,
        unit=unit,
        table=table,
        rows=rows,
        next_link=next_link,
        done=done,
    )


# --- schema, versions, opening ---------------------------------------------------------------


def test_a_new_store_gets_every_table_with_its_types_key_and_the_schema_version(
    tmp_path: Path,
) -> None:
    path = tmp_path / "nested" / "dir" / "auditor.duckdb"
    with Store.open(path) as store:
        assert store.path == path
        assert path.is_file()
        version = store._frame("SELECT value FROM meta WHERE key = 'schema_version'")
        assert version["value"].tolist() == [str(SCHEMA_VERSION)]
        for name, spec in {**TABLES, **BOOKKEEPING}.items():
            columns = store._frame(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_name = ? ORDER BY ordinal_position",
                [name],
            )
            assert list(zip(columns["column_name"], columns["data_type"], strict=True)) == list(
                spec.columns
            ), name
            key = store._frame(
                "SELECT constraint_column_names FROM duckdb_constraints()"
                " WHERE table_name = ? AND constraint_type = 'PRIMARY KEY'",
                [name],
            )
            assert tuple(key["constraint_column_names"].tolist()[0]) == spec.key, name


def test_every_data_table_has_the_environment_id_and_a_key_that_includes_it() -> None:
    for name, spec in TABLES.items():
        assert ("environment_id", "VARCHAR") in spec.columns, name
        assert "environment_id" in spec.key, name
    assert TABLES["flow_run_actions"].key == (
        "environment_id",
        "flow_name",
        "run_name",
        "action_name",
    )
    assert TABLES["action_samples"].names()[0] == "scan_id"


def test_a_table_spec_with_a_key_outside_its_columns_is_refused() -> None:
    with pytest.raises(ValueError, match="invalid table spec"):
        TableSpec(columns=(("a", "VARCHAR"),), key=("b",))
    with pytest.raises(ValueError, match="invalid table spec"):
        TableSpec(columns=(("a", "TEXTISH"),), key=("a",))


def test_reopening_a_store_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "auditor.duckdb"
    with Store.open(path) as store:
        scan_id = new_scan(store)
        write(store, [trace(1), trace(2)], scan_id=scan_id, next_link="https://x/next")
    with Store.open(path) as store:
        assert store.count("plugintracelogs") == 2
        assert store.latest_scan() is not None
        assert store.checkpoint(scan_id, ENV, "plugintracelogs", "w0") == Checkpoint(
            next_link="https://x/next", done=False, rows=2, pages=1
        )
    with Store.open(path, read_only=True) as store:
        assert store.count("plugintracelogs", ENV) == 2


def test_read_only_open_of_a_missing_store_says_to_collect_first(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match=r"no store at .*run auditor collect first") as info:
        Store.open(tmp_path / "missing.duckdb", read_only=True)
    assert info.value.exit_code == 3
    assert isinstance(info.value, AuditorError)
    assert not (tmp_path / "missing.duckdb").exists()


def test_a_read_only_store_refuses_writes_with_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "auditor.duckdb"
    Store.open(path).close()
    with Store.open(path, read_only=True) as store, pytest.raises(StoreError, match="failed"):
        write(store, [trace(1)])


def test_a_file_that_is_not_duckdb_is_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "notes.duckdb"
    path.write_text("just some text, not a database\n" * 100)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="not a DuckDB store") as info:
            Store.open(path, read_only=read_only)
        assert "--store" in info.value.hint
    assert path.read_text().startswith("just some text")


def test_a_duckdb_file_of_another_program_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE sales (id INTEGER)")
    with pytest.raises(StoreError, match="not an auditor store") as info:
        Store.open(path)
    assert "new.duckdb" in info.value.hint


def _hash(*paths: Path) -> list[str]:
    return [hashlib.sha256(p.read_bytes()).hexdigest() if p.exists() else "" for p in paths]


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def test_a_new_store_its_log_and_the_folders_made_for_it_are_owner_only(tmp_path: Path) -> None:
    umask = _current_umask()
    path = tmp_path / "made" / "for-it" / "auditor.duckdb"
    with Store.open(path) as store:
        write(store, [trace(1)], scan_id=new_scan(store))
        wal = path.with_name("auditor.duckdb.wal")
        assert wal.exists()  # what DuckDB creates itself, with the umask's mode
        for file in (path, wal):
            assert stat.S_IMODE(file.stat().st_mode) == 0o600, file
    for folder in (path.parent, path.parent.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert _current_umask() == umask  # restored once the last store closed


def test_a_store_that_followed_the_umask_is_made_owner_only_when_opened_for_writing(
    tmp_path: Path,
) -> None:
    path = tmp_path / "auditor.duckdb"
    Store.open(path).close()
    path.chmod(0o644)
    with Store.open(path, read_only=True):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644  # a read-only open changes nothing
    with Store.open(path):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_duckdb_installs_and_loads_no_extension_and_a_writing_store_reads_no_other_file(
    tmp_path: Path,
) -> None:
    other = tmp_path / "other.csv"
    other.write_text("a\n1\n")
    with Store.open(tmp_path / "auditor.duckdb") as store:
        settings = store._frame(
            "SELECT name, value FROM duckdb_settings() WHERE name IN"
            " ('autoinstall_known_extensions', 'autoload_known_extensions',"
            " 'enable_external_access')"
        )
        assert dict(zip(settings["name"], settings["value"], strict=True)) == {
            "autoinstall_known_extensions": "false",
            "autoload_known_extensions": "false",
            "enable_external_access": "false",
        }
        with pytest.raises(duckdb.PermissionException):
            store._frame("SELECT * FROM read_csv(?)", [str(other)])


def test_files_in_is_the_one_folder_duckdb_may_write_into(tmp_path: Path) -> None:
    path = tmp_path / "auditor.duckdb"
    Store.open(path).close()
    allowed = tmp_path / "export"
    allowed.mkdir()
    with Store.open(path, read_only=True, files_in=allowed) as store:
        store._frame(f"COPY scans TO '{allowed / 'scans.csv'}'")
        assert (allowed / "scans.csv").exists()
        for elsewhere in (tmp_path / "scans.csv", allowed / ".." / "escaped.csv"):
            with pytest.raises(duckdb.PermissionException):
                store._frame(f"COPY scans TO '{elsewhere}'")
    assert not (tmp_path / "escaped.csv").exists()


@pytest.mark.parametrize(
    ("head", "kind"),
    [
        (b"SQLite format 3\x00" + bytes(100), "is a SQLite database"),
        (b"", "is an empty file"),
        ("Zeile \u00e9\n".encode() * 1000, "is a text file"),
        (bytes(range(256)) * 20, "is a file without a DuckDB header"),
    ],
    ids=["sqlite", "empty", "text", "binary"],
)
def test_a_file_without_the_duckdb_header_is_named_by_what_it_looks_like(
    tmp_path: Path, head: bytes, kind: str
) -> None:
    path = tmp_path / "s.duckdb"
    path.write_bytes(head)
    for read_only in (False, True):
        with pytest.raises(StoreError, match=f"{kind}, not a DuckDB store"):
            Store.open(path, read_only=read_only)
    assert path.read_bytes() == head
    assert not path.with_name("s.duckdb.wal").exists()


def test_a_link_to_a_missing_file_is_not_followed_to_create_a_store(tmp_path: Path) -> None:
    target = tmp_path / "elsewhere" / "planted.duckdb"
    target.parent.mkdir()
    link = tmp_path / "auditor.duckdb"
    link.symlink_to(target)
    with pytest.raises(StoreError, match="symbolic link to a file that does not exist"):
        Store.open(link)
    assert not target.exists()


def test_a_pipe_at_the_store_path_is_refused_without_waiting_on_it(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    os.mkfifo(path)
    for read_only in (False, True):
        with pytest.raises(StoreError, match="not a regular file"):
            Store.open(path, read_only=read_only)


def test_a_duckdb_file_holding_a_macro_is_not_an_auditor_store(tmp_path: Path) -> None:
    # A macro may shadow a built-in the auditor calls (lower, coalesce, ...): SQL from the file.
    path = tmp_path / "auditor.duckdb"
    Store.open(path).close()
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE MACRO lower(x) AS 'from the file'")
    before = _hash(path)
    for read_only in (False, True):
        with pytest.raises(StoreError, match=r"not an auditor store \(it holds a macro"):
            Store.open(path, read_only=read_only)
    assert _hash(path) == before


_LEAVE_A_LOG = textwrap.dedent(
    """
    import os, sys, duckdb

    con = duckdb.connect(sys.argv[1])
    con.execute("SET checkpoint_threshold = '1GB'")
    con.execute("CREATE TABLE sales (id INTEGER)")
    con.execute("INSERT INTO sales SELECT range FROM range(1000)")
    os._exit(0)  # killed: what it wrote is in the log, not yet in the file
    """
)


def test_another_programs_database_is_refused_before_duckdb_replays_its_log_into_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "other.duckdb"
    script = tmp_path / "leave.py"
    script.write_text(_LEAVE_A_LOG)
    subprocess.run([sys.executable, str(script), str(path)], check=True)
    wal = path.with_name("other.duckdb.wal")
    assert wal.exists()
    before = _hash(path, wal)
    with pytest.raises(StoreError, match="not an auditor store"):
        Store.open(path)
    assert _hash(path, wal) == before


def _flip_blocks_of(path: Path, table: str) -> None:
    """Flips bytes at the start of every block of `table`'s data (after its checksum)."""
    with duckdb.connect(str(path), read_only=True) as con:
        blocks = con.execute(
            "SELECT DISTINCT block_id FROM pragma_storage_info(?) WHERE block_id >= 0", [table]
        ).fetchall()
    data = bytearray(path.read_bytes())
    for (block,) in blocks:
        at = 3 * 4096 + int(block) * 262_144 + 8
        data[at : at + 64] = bytes(b ^ 0xFF for b in data[at : at + 64])
    path.write_bytes(bytes(data))


def test_a_damaged_block_met_while_reading_is_a_store_damaged_kept_as_the_failure(
    tmp_path: Path,
) -> None:
    path = tmp_path / "auditor.duckdb"
    with Store.open(path) as store:
        write(store, [trace(n) for n in range(2000)], scan_id=new_scan(store))
    _flip_blocks_of(path, "plugintracelogs")
    with Store.open(path, read_only=True) as store:
        assert store.failure is None
        with pytest.raises(StoreDamaged, match=r"is damaged \(a checksum does not match") as info:
            store._frame("SELECT * FROM plugintracelogs")
        assert store.failure is info.value
        assert isinstance(info.value.__cause__, duckdb.Error)
        assert "Restore the store from a copy" in info.value.hint
        assert info.value.exit_code == 3


_PATH = Path("/data/auditor.duckdb")


@pytest.mark.parametrize(
    ("error", "writing", "expected", "says"),
    [
        (
            duckdb.IOException(
                'IO Error: Could not write file "/data/auditor.duckdb.wal": No space left on device'
            ),
            True,
            StoreUnwritable,
            "cannot be written (No space left on device)",
        ),
        (
            duckdb.TransactionException(
                "TransactionContext Error: Failed to commit: Could not write file"
                ' "/data/auditor.duckdb.wal": File too large'
            ),
            True,
            StoreUnwritable,
            "cannot be written (File too large)",
        ),
        (
            duckdb.FatalException(
                "FATAL Error: Failed: database has been invalidated because of a previous fatal"
                ' error. Original error: "Failed to create checkpoint because of error: Could not'
                ' write file "/data/auditor.duckdb": File too large"'
            ),
            False,
            StoreUnwritable,
            "cannot be written (File too large)",
        ),
        (
            duckdb.Error(
                "Corrupt database file: computed checksum 1 does not match stored checksum 2 in"
                " block at location 1323008"
            ),
            False,
            StoreDamaged,
            "is damaged (a checksum does not match, in the block at byte 1323008)",
        ),
        (
            duckdb.IOException(
                'IO Error: Could not read enough bytes from file "/data/auditor.duckdb":'
                " attempted to read 262144 bytes from location 1585152"
            ),
            False,
            StoreDamaged,
            "is damaged (the file is cut short: no 262144 bytes at byte 1585152)",
        ),
        (duckdb.SerializationException("Serialization Error: bad"), False, StoreDamaged, "bad"),
        # A file an export writes, not the store: the export reports it.
        (
            duckdb.IOException(
                'IO Error: Could not write file "/out/x.csv": No space left on device'
            ),
            False,
            None,
            "",
        ),
        (duckdb.ConstraintException("Constraint Error: Duplicate key"), True, None, ""),
        (
            duckdb.InvalidInputException(
                "Invalid Input Error: Cannot execute statement of type INSERT on database"
                ' "auditor" which is attached in read-only mode!'
            ),
            True,
            None,
            "",
        ),
    ],
    ids=[
        "enospc",
        "efbig-commit",
        "fatal-checkpoint",
        "checksum",
        "short-read",
        "serial",
        "export-file",
        "duplicate-key",
        "read-only",
    ],
)
def test_what_a_duckdb_error_means_for_the_store(
    error: duckdb.Error, writing: bool, expected: type[StoreError] | None, says: str
) -> None:
    failure = store_failure(_PATH, error, writing=writing)
    if expected is None:
        assert failure is None
        return
    assert type(failure) is expected
    assert failure is not None
    assert says in failure.message
    assert "\n" not in failure.message


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from auditor.store import Store

    with Store.open(Path(sys.argv[1])):
        print("open", flush=True)
        time.sleep(60)
    """
)


@pytest.mark.reliability
def test_a_store_in_use_by_another_process_is_reported_with_its_pid(tmp_path: Path) -> None:
    path = tmp_path / "busy.duckdb"
    script = tmp_path / "holder.py"
    script.write_text(_HOLDER)
    holder = subprocess.Popen(
        [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "open\n"
        for read_only in (False, True):
            with pytest.raises(
                StoreError, match=f"in use by another process \\(PID {holder.pid}\\)"
            ) as info:
                Store.open(path, read_only=read_only)
            assert "Wait for the other auditor" in info.value.hint
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()
    with Store.open(path) as store:
        assert store.latest_scan() is None


def test_opening_the_same_store_twice_in_one_process_with_other_settings_is_a_store_error(
    tmp_path: Path,
) -> None:
    path = tmp_path / "auditor.duckdb"
    with Store.open(path), pytest.raises(StoreError, match="already open in this process"):
        Store.open(path, read_only=True)


def test_a_directory_is_not_a_store(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="is a directory"):
        Store.open(tmp_path)


def _fake_version_zero_store(path: Path) -> None:
    """A store as an imaginary earlier auditor wrote it: `flows` without `definition`."""
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        con.execute("INSERT INTO meta VALUES ('schema_version', '0')")
        con.execute(
            "CREATE TABLE flows (environment_id VARCHAR, flow_name VARCHAR,"
            " display_name VARCHAR, state VARCHAR, created_time TIMESTAMP,"
            " last_modified_time TIMESTAMP, workflowid VARCHAR, suspension_reason VARCHAR,"
            " trigger_type VARCHAR, PRIMARY KEY (environment_id, flow_name))"
        )
        con.execute(
            "INSERT INTO flows VALUES ('e', 'f1', 'Old flow', 'Started', NULL, NULL, NULL, NULL,"
            " 'Recurrence')"
        )


def _schema_version(path: Path) -> str:
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return str(rows[0][0])


def test_an_older_store_is_migrated_when_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    _fake_version_zero_store(path)
    ran: list[int] = []

    def add_definition(con: duckdb.DuckDBPyConnection) -> None:
        ran.append(1)
        con.execute("ALTER TABLE flows ADD COLUMN definition VARCHAR")
        con.execute("ALTER TABLE flows ADD COLUMN api_name VARCHAR")

    monkeypatch.setitem(store_schema.MIGRATIONS, 1, add_definition)
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", 1)
    with Store.open(path) as store:
        assert ran == [1]
        flows = store._frame("SELECT flow_name, display_name, definition FROM flows")
        assert flows.to_dict("records") == [
            {"flow_name": "f1", "display_name": "Old flow", "definition": None}
        ]
        assert store.count("plugintracelogs") == 0  # tables new since version 0 were created
        store.write_page(
            scan_id=1,
            environment_id="e",
            query_id="flows",
            unit="all",
            table="flows",
            rows=[{"flow_name": "f2", "definition": {"triggers": {}}}],
            next_link=None,
            done=True,
        )
    assert _schema_version(path) == "1"
    with Store.open(path) as store:  # a second open has nothing left to migrate
        assert ran == [1]
        assert store.count("flows") == 2


def test_schema_4_keys_solution_flows_and_their_history_by_workflowid(tmp_path: Path) -> None:
    # A store of schema 3 keyed a flow by its flow API name; from schema 4 a solution flow is
    # keyed by its workflowid, so its runs stay one history if the API's name changes.
    path = tmp_path / "v3.duckdb"
    with Store.open(path) as store:
        store.write_page(
            scan_id=1,
            environment_id="e",
            query_id="flows",
            unit="",
            table="flows",
            rows=[
                {"flow_name": "api-1", "workflowid": "WF-1", "api_name": "api-1"},
                {"flow_name": "api-2", "workflowid": None, "api_name": "api-2"},
            ],
            next_link=None,
            done=True,
        )
        for flow in ("api-1", "api-2"):
            store.write_page(
                scan_id=1,
                environment_id="e",
                query_id="flow_runs",
                unit=flow,
                table="flow_api_runs",
                rows=[{"flow_name": flow, "run_name": "r1", "status": "Succeeded"}],
                next_link=None,
                done=True,
            )
    with duckdb.connect(str(path)) as con:
        con.execute("ALTER TABLE flows DROP COLUMN api_name")
        con.execute("UPDATE meta SET value = '3' WHERE key = 'schema_version'")
    with Store.open(path) as store:
        flows = store._frame("SELECT flow_name, api_name FROM flows ORDER BY api_name")
        runs = store._frame("SELECT flow_name FROM flow_api_runs ORDER BY flow_name")
    assert flows.to_dict("records") == [
        {"flow_name": "wf-1", "api_name": "api-1"},
        {"flow_name": "api-2", "api_name": "api-2"},
    ]
    assert runs["flow_name"].tolist() == ["api-2", "wf-1"]
    assert _schema_version(path) == str(store_schema.SCHEMA_VERSION)


def test_a_failing_migration_leaves_the_store_unchanged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    _fake_version_zero_store(path)

    def broken(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("ALTER TABLE flows ADD COLUMN definition VARCHAR")
        con.execute("ALTER TABLE no_such_table ADD COLUMN x INTEGER")

    monkeypatch.setitem(store_schema.MIGRATIONS, 1, broken)
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", 1)
    with pytest.raises(StoreError, match=r"upgrading .* from store schema 0 failed"):
        Store.open(path)
    assert _schema_version(path) == "0"
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute("SELECT * FROM flows").description
        assert "definition" not in [c[0] for c in columns]


def test_an_older_store_without_a_migration_says_to_collect_into_a_new_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    _fake_version_zero_store(path)
    monkeypatch.delitem(store_schema.MIGRATIONS, 1, raising=False)
    with pytest.raises(StoreError, match="store schema 0, which this auditor cannot upgrade") as e:
        Store.open(path)
    assert "collect into a new store, e.g. --store new.duckdb" in e.value.hint.lower()
    assert _schema_version(path) == "0"


def test_an_older_store_opened_read_only_is_not_migrated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "old.duckdb"
    _fake_version_zero_store(path)
    monkeypatch.setitem(store_schema.MIGRATIONS, 1, lambda con: None)
    monkeypatch.setattr(store_schema, "SCHEMA_VERSION", 1)
    with pytest.raises(StoreError, match="needs upgrading") as info:
        Store.open(path, read_only=True)
    assert "auditor collect" in info.value.hint
    assert _schema_version(path) == "0"


def test_a_newer_store_says_to_upgrade_the_auditor(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    Store.open(path).close()
    with duckdb.connect(str(path)) as con:
        con.execute(
            "UPDATE meta SET value = ? WHERE key = 'schema_version'", [str(SCHEMA_VERSION + 1)]
        )
    for read_only in (False, True):
        with pytest.raises(StoreError, match="newer auditor") as info:
            Store.open(path, read_only=read_only)
        assert "upgrade the auditor" in info.value.hint.lower()


# --- pages: atomicity, upserts, coercion -----------------------------------------------------


def test_a_page_and_its_checkpoint_are_written_together_or_not_at_all(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan_id = new_scan(store)
    write(store, [trace(1), trace(2)], scan_id=scan_id, next_link="link-1")
    before = store.checkpoint(scan_id, ENV, "plugintracelogs", "w0")
    seen_inside: list[int] = []
    real_checkpoint = store._put_checkpoint

    def fail_after_the_rows(*args: Any, **kwargs: Any) -> None:
        # The rows of the page are in the table at this point, inside the transaction...
        seen_inside.append(store.count("plugintracelogs"))
        raise RuntimeError("killed between the rows and the checkpoint")

    monkeypatch.setattr(store, "_put_checkpoint", fail_after_the_rows)
    page = [trace(2, typename="Changed"), trace(3), trace(4)]
    with pytest.raises(RuntimeError, match="killed"):
        write(store, page, scan_id=scan_id, next_link="link-2")
    assert seen_inside == [4]
    # ...and gone after the failure, together with the checkpoint that never advanced.
    assert store.count("plugintracelogs") == 2
    assert (
        store._frame("SELECT typename FROM plugintracelogs ORDER BY 1")["typename"].tolist()
        == ["Contoso.Plugins.Validate"] * 2
    )
    assert store.checkpoint(scan_id, ENV, "plugintracelogs", "w0") == before

    def database_error(*args: Any, **kwargs: Any) -> None:
        store._run("INSERT INTO checkpoints (scan_id) VALUES (NULL)")  # violates the key

    monkeypatch.setattr(store, "_put_checkpoint", database_error)
    with pytest.raises(StoreError, match="writing a page of plugintracelogs") as info:
        write(store, page, scan_id=scan_id, next_link="link-2")
    assert "resumes from the last checkpoint" in info.value.hint
    assert store.count("plugintracelogs") == 2
    assert store.checkpoint(scan_id, ENV, "plugintracelogs", "w0") == before

    monkeypatch.setattr(store, "_put_checkpoint", real_checkpoint)
    assert write(store, page, scan_id=scan_id, next_link="link-2") == 3
    assert store.count("plugintracelogs") == 4
    assert store.checkpoint(scan_id, ENV, "plugintracelogs", "w0") == Checkpoint(
        next_link="link-2", done=False, rows=5, pages=2
    )


_WRITER = textwrap.dedent(
    """
    import sys, uuid
    from pathlib import Path
    from auditor.store import Store

    store = Store.open(Path(sys.argv[1]))
    checkpoint = store.checkpoint(1, "env", "traces", "w")
    for page in range(checkpoint.pages if checkpoint else 0, 10_000):  # resume
        rows = [
            {"plugintracelogid": str(uuid.UUID(int=page * 1000 + i)), "messageblock": "x" * 500}
            for i in range(1000)
        ]
        store.write_page(scan_id=1, environment_id="env", query_id="traces", unit="w",
                         table="plugintracelogs", rows=rows, next_link=f"page-{page + 1}",
                         done=False)
        print(page, flush=True)
    """
)


@pytest.mark.reliability
def test_a_process_killed_while_writing_leaves_whole_pages_with_their_checkpoints(
    tmp_path: Path,
) -> None:
    path = tmp_path / "killed.duckdb"
    script = tmp_path / "writer.py"
    script.write_text(_WRITER)
    previous_pages = 0  # each writer resumes where the killed one stopped
    for pages_before_kill, extra_delay in ((1, 0.0), (3, 0.013), (6, 0.031)):
        process = subprocess.Popen(
            [sys.executable, str(script), str(path)], stdout=subprocess.PIPE, text=True
        )
        assert process.stdout is not None
        for _ in range(pages_before_kill):
            assert process.stdout.readline(), "the writer stopped before it was killed"
        time.sleep(extra_delay)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
        process.stdout.close()
        with Store.open(path) as store:
            checkpoint = store.checkpoint(1, "env", "traces", "w")
            assert checkpoint is not None
            assert checkpoint.rows == checkpoint.pages * 1000
            assert store.count("plugintracelogs") == checkpoint.rows
            assert checkpoint.next_link == f"page-{checkpoint.pages}"
            assert checkpoint.pages >= pages_before_kill + previous_pages
            previous_pages = checkpoint.pages


def test_rows_with_the_same_key_are_one_row_and_the_last_one_wins(store: Store) -> None:
    scan_id = new_scan(store)
    written = write(
        store,
        [trace(1, depth=1), trace(2), trace(1, depth=2), trace(1, depth=3)],
        scan_id=scan_id,
    )
    assert written == 2
    assert store._frame(
        "SELECT depth FROM plugintracelogs WHERE plugintracelogid = ?", [str(uuid.UUID(int=1))]
    )["depth"].tolist() == [3]
    # The same key on a later page (an overlapping incremental fetch) replaces the row...
    write(store, [trace(1, depth=4, typename="New")], scan_id=scan_id)
    row = store._frame("SELECT depth, typename FROM plugintracelogs ORDER BY plugintracelogid")
    assert row.iloc[0].to_dict() == {"depth": 4, "typename": "New"}
    assert store.count("plugintracelogs") == 2
    # A page mixing new and known keys inserts the new and replaces the known.
    write(store, [trace(5), trace(2, depth=7), trace(6)], scan_id=scan_id)
    got = store._frame("SELECT plugintracelogid, depth FROM plugintracelogs ORDER BY 1")
    assert got["depth"].tolist() == [4, 7, 1, 1]
    assert store.count("plugintracelogs") == 4
    # ...but the same key in another environment is another row.
    write(store, [trace(1)], scan_id=scan_id, environment_id=OTHER_ENV)
    assert store.count("plugintracelogs") == 5
    assert store.count("plugintracelogs", OTHER_ENV) == 1


def test_guids_are_stored_lower_case_so_that_keys_from_different_apis_match(
    store: Store,
) -> None:
    upper = "A0B1C2D3-E4F5-4A6B-8C7D-9E0F1A2B3C4D"
    write(store, [trace(1, plugintracelogid=upper, correlationid=upper)])
    write(store, [trace(1, plugintracelogid=upper.lower(), depth=9)])
    stored = store._frame("SELECT plugintracelogid, depth FROM plugintracelogs")
    assert stored.to_dict("records") == [{"plugintracelogid": upper.lower(), "depth": 9}]
    # Environment ids are not GUID columns: "Default-..." keeps its case.
    write(store, [trace(2)], environment_id=OTHER_ENV)
    assert store.count("plugintracelogs", OTHER_ENV) == 1


def test_a_row_without_its_key_is_refused_before_anything_is_written(store: Store) -> None:
    scan_id = new_scan(store)
    with pytest.raises(
        StoreError, match=r"1 row\(s\) for plugintracelogs have no plugintracelogid"
    ):
        write(store, [trace(1), trace(2, plugintracelogid=None)], scan_id=scan_id)
    assert store.count("plugintracelogs") == 0
    assert store.checkpoint(scan_id, ENV, "plugintracelogs", "w0") is None


def test_bad_values_become_null_and_odd_ones_are_kept(store: Store) -> None:
    big = "é" * 1_000_000
    rows: list[dict[str, Any]] = [
        {
            "asyncoperationid": "1",
            "operationtype": 4242,  # an enum value nobody documented: kept
            "statecode": "abc",
            "statuscode": "30",
            "depth": 2**40,  # does not fit an INTEGER
            "retrycount": 3.5,
            "errorcode": "-2147220970",
            "executiontimespan": "1.25",
            "createdon": "not a date",
            "startedon": "now",
            "completedon": 1714557600,
            "postponeuntil": "2024-02-30T00:00:00Z",
            "message": {"code": 5, "detail": ["a", "b"]},
            "friendlymessage": ["x", 1],
            "name": big,
            "messagename": 12,
            "requestid": "lone \ud800 surrogate",
            "primaryentitytype": "nul\x00inside",
            "unknown_column": "ignored",
        },
        {
            "asyncoperationid": "2",
            "operationtype": True,  # a bool is not a number
            "statecode": 3.0,
            "retrycount": "7",
            "errorcode": 2**70,
            "executiontimespan": "fast",
            "createdon": "2024-05-01T10:00:00+02:00",
        },
        {"asyncoperationid": "3"},  # every other field missing
    ]
    assert write(store, rows, table="asyncoperations") == 3
    got = store._frame("SELECT * FROM asyncoperations ORDER BY asyncoperationid")
    first, second, third = (got.iloc[i] for i in range(3))
    assert first["operationtype"] == 4242
    assert pd.isna(first["statecode"])
    assert first["statuscode"] == 30
    assert pd.isna(first["depth"])
    assert pd.isna(first["retrycount"])
    assert first["errorcode"] == -2147220970
    assert first["executiontimespan"] == 1.25
    for column in ("createdon", "startedon", "completedon", "postponeuntil"):
        assert pd.isna(first[column]), column
    assert first["message"] == '{"code": 5, "detail": ["a", "b"]}'
    assert first["friendlymessage"] == '["x", 1]'
    assert first["name"] == big
    assert first["messagename"] == "12"
    assert first["requestid"] == "lone \\ud800 surrogate"
    assert first["primaryentitytype"] == "nul\x00inside"
    assert "unknown_column" not in got.columns
    assert pd.isna(second["operationtype"])
    assert second["statecode"] == 3
    assert second["retrycount"] == 7
    assert pd.isna(second["errorcode"])
    assert pd.isna(second["executiontimespan"])
    assert second["createdon"] == pd.Timestamp("2024-05-01T08:00:00Z")
    assert third.drop(["environment_id", "asyncoperationid"]).isna().all()
    assert third["environment_id"] == ENV


def test_numpy_numbers_count_like_plain_ones(store: Store) -> None:
    samples = pd.DataFrame({"flow_name": ["f"], "runs_in_window": [80], "sampled": [50]})
    row = {str(k): v for k, v in samples.iloc[0].to_dict().items()}
    rows = [{**row, "failed_in_window": np.int64(3), "sampled_failed": np.True_}]
    write(store, rows, table="action_samples")
    got = store._frame(
        "SELECT runs_in_window, failed_in_window, sampled, sampled_failed FROM action_samples"
    )
    assert got.iloc[0].tolist()[:3] == [80, 3, 50]
    assert pd.isna(got.iloc[0]["sampled_failed"])  # a bool is not a count, numpy's neither


def test_booleans_accept_bools_zero_one_and_true_false_text_only(store: Store) -> None:
    values = [True, False, 1, 0, "true", "false", "True", "yes", 2, None, {"x": 1}]
    rows = [{"workflowid": f"w{i}", "ismanaged": v} for i, v in enumerate(values)]
    write(store, rows, table="workflows")
    got = store._frame("SELECT workflowid, ismanaged FROM workflows")
    by_id = dict(zip(got["workflowid"], got["ismanaged"], strict=True))
    assert [None if pd.isna(by_id[f"w{i}"]) else bool(by_id[f"w{i}"]) for i in range(11)] == [
        True, False, True, False, True, False, True, None, None, None, None
    ]  # fmt: skip


def test_timestamps_are_stored_as_utc_and_read_back_timezone_aware(store: Store) -> None:
    cest = timezone(timedelta(hours=2))
    rows: list[dict[str, Any]] = [
        {"flowrunid": "z", "starttime": "2024-05-01T10:00:00Z"},
        {"flowrunid": "offset", "starttime": "2024-05-01T12:00:00+02:00"},
        {"flowrunid": "fraction", "starttime": "2024-05-01T10:00:00.1234567Z"},
        {"flowrunid": "aware", "starttime": datetime(2024, 5, 1, 12, tzinfo=cest)},
        {"flowrunid": "naive", "starttime": datetime(2024, 5, 1, 10)},
    ]
    write(store, rows, table="flowruns")
    got = store._frame("SELECT flowrunid, starttime FROM flowruns")
    assert str(got["starttime"].dtype).endswith(", UTC]")
    by_id = dict(zip(got["flowrunid"], got["starttime"], strict=True))
    ten = pd.Timestamp("2024-05-01T10:00:00Z")
    assert by_id["z"] == by_id["offset"] == by_id["aware"] == by_id["naive"] == ten
    assert by_id["fraction"] == ten + pd.Timedelta(microseconds=123456)
    # The column holds UTC wall time whatever the session's time zone.
    assert store._frame("SELECT typeof(starttime) AS t FROM flowruns LIMIT 1")["t"][0] == (
        "TIMESTAMP"
    )


def test_action_samples_get_the_scan_id_from_the_store(store: Store) -> None:
    first = new_scan(store)
    second = new_scan(store)
    sample = [{"flow_name": "f", "runs_in_window": 80, "failed_in_window": 5, "sampled": 50}]
    for scan_id in (first, second):
        write(store, sample, scan_id=scan_id, table="action_samples")
    got = store._frame("SELECT scan_id, sampled, sampled_failed FROM action_samples ORDER BY 1")
    assert got["scan_id"].tolist() == [first, second]
    assert got["sampled"].tolist() == [50, 50]
    assert got["sampled_failed"].isna().all()


def test_unknown_tables_and_statuses_are_programming_errors(store: Store) -> None:
    with pytest.raises(ValueError, match="unknown data table"):
        write(store, [], table="nope")
    with pytest.raises(ValueError, match="unknown table"):
        store.count("nope")
    with pytest.raises(ValueError, match="scan status"):
        store.finish_scan(new_scan(store), status="done", ended=T0)
    with pytest.raises(ValueError, match="query status"):
        store.record_query(
            scan_id=1, environment_id=ENV, query_id="q", status="ok", rows=0, requests=0,
            retries=0, throttled=0,
        )  # fmt: skip


# --- checkpoints, scans, watermarks ----------------------------------------------------------


def test_checkpoints_accumulate_rows_and_pages_and_mark_done(store: Store) -> None:
    scan_id = new_scan(store)
    assert store.checkpoint(scan_id, ENV, "plugintracelogs", "w0") is None
    write(store, [trace(1), trace(2)], scan_id=scan_id, next_link="n1")
    write(store, [], scan_id=scan_id, next_link="n2")  # an empty page still advances
    assert store.checkpoint(scan_id, ENV, "plugintracelogs", "w0") == Checkpoint(
        next_link="n2", done=False, rows=2, pages=2
    )
    write(store, [trace(3)], scan_id=scan_id, next_link=None, done=True)
    assert store.checkpoint(scan_id, ENV, "plugintracelogs", "w0") == Checkpoint(
        next_link=None, done=True, rows=3, pages=3
    )
    # Units, environments and scans have checkpoints of their own.
    write(store, [trace(4)], scan_id=scan_id, unit="w1", next_link="m1")
    assert store.checkpoint(scan_id, ENV, "plugintracelogs", "w1") == Checkpoint(
        next_link="m1", done=False, rows=1, pages=1
    )
    assert store.checkpoint(scan_id, OTHER_ENV, "plugintracelogs", "w0") is None
    assert store.checkpoint(scan_id + 1, ENV, "plugintracelogs", "w0") is None


def test_scans_begin_finish_and_are_found_again(store: Store) -> None:
    assert store.latest_scan() is None
    assert store.unfinished_scan() is None
    first = new_scan(store)
    assert first == 1
    info = store.scan(first)
    assert info.status == "running"
    assert info.ended is None
    assert info.started == T0
    assert info.started.tzinfo is not None
    assert info.window_start == T0 - timedelta(days=7)
    assert info.arguments == {"since": "7d", "environments": [ENV]}
    assert store.unfinished_scan() == info

    store.finish_scan(first, status="partial", ended=T0 + timedelta(minutes=5))
    assert store.unfinished_scan() is None
    finished = store.scan(first)
    assert finished.status == "partial"
    assert finished.ended == T0 + timedelta(minutes=5)

    second = new_scan(store, started=T0 + timedelta(days=1))
    assert second == 2
    latest = store.latest_scan()
    assert latest is not None
    assert latest.scan_id == 2
    assert store.unfinished_scan() == latest
    with pytest.raises(StoreError, match="no scan 99"):
        store.scan(99)
    with pytest.raises(StoreError, match="no scan 99"):
        store.finish_scan(99, status="failed", ended=T0)


def test_query_outcomes_are_upserted_and_listed_per_scan(store: Store) -> None:
    scan_id = new_scan(store)
    common: dict[str, Any] = {"scan_id": scan_id, "requests": 3, "retries": 1, "throttled": 0}
    store.record_query(environment_id=ENV, query_id="workflows", status="partial", rows=5, **common)
    store.record_query(
        environment_id=ENV, query_id="workflows", status="collected", rows=9, **common
    )
    store.record_query(
        environment_id=OTHER_ENV,
        query_id="plugintracelogs",
        status="not-collected",
        rows=0,
        reason="403 Forbidden: missing prvReadPluginTraceLog",
        hint="Grant the application user read access to plug-in trace logs.",
        **common,
    )
    frame = store.scan_queries(scan_id)
    assert frame[["environment_id", "query_id", "status", "rows"]].to_dict("records") == [
        {"environment_id": ENV, "query_id": "workflows", "status": "collected", "rows": 9},
        {
            "environment_id": OTHER_ENV,
            "query_id": "plugintracelogs",
            "status": "not-collected",
            "rows": 0,
        },
    ]
    assert frame["reason"].tolist()[1].startswith("403")
    assert store.scan_queries(scan_id + 1).empty


def test_the_next_window_starts_where_the_last_scan_that_collected_the_environment_ended(
    store: Store,
) -> None:
    def scan(day: int, status: str, outcomes: dict[str, str]) -> None:
        scan_id = new_scan(store, started=T0 + timedelta(days=day))
        for env, query_status in outcomes.items():
            store.record_query(
                scan_id=scan_id, environment_id=env, query_id="q", status=query_status,
                rows=1, requests=1, retries=0, throttled=0,
            )  # fmt: skip
        if status != "running":
            store.finish_scan(scan_id, status=status, ended=T0 + timedelta(days=day, hours=1))

    assert store.last_completed_window_end(ENV) is None
    scan(0, "completed", {ENV: "collected"})
    scan(1, "partial", {ENV: "partial", OTHER_ENV: "not-collected"})
    scan(2, "failed", {ENV: "collected"})
    scan(3, "running", {ENV: "collected"})
    scan(4, "partial", {ENV: "not-collected", OTHER_ENV: "collected"})
    assert store.last_completed_window_end(ENV) == T0 + timedelta(days=1)
    assert store.last_completed_window_end(OTHER_ENV) == T0 + timedelta(days=4)
    assert store.last_completed_window_end("never-seen") is None


def test_watermarks_are_set_read_back_as_utc_and_can_move_with_a_page(store: Store) -> None:
    assert store.watermark(ENV, "plugintracelogs") is None
    store.set_watermark(
        ENV, "plugintracelogs", datetime(2024, 5, 1, 12, tzinfo=timezone(timedelta(hours=2)))
    )
    mark = store.watermark(ENV, "plugintracelogs")
    assert mark == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert mark is not None
    assert mark.utcoffset() == timedelta(0)
    store.set_watermark(ENV, "plugintracelogs", datetime(2024, 5, 2, 10))  # naive: UTC
    assert store.watermark(ENV, "plugintracelogs") == datetime(2024, 5, 2, 10, tzinfo=UTC)
    assert store.watermark(OTHER_ENV, "plugintracelogs") is None

    store.write_page(
        scan_id=1, environment_id=ENV, query_id="plugintracelogs", unit="w0",
        table="plugintracelogs", rows=[trace(1)], next_link=None, done=True,
        watermark=datetime(2024, 5, 3, tzinfo=UTC),
    )  # fmt: skip
    assert store.watermark(ENV, "plugintracelogs") == datetime(2024, 5, 3, tzinfo=UTC)


# --- full replacement, counts ----------------------------------------------------------------


def test_replacing_an_environments_table_drops_rows_gone_from_the_source(store: Store) -> None:
    scan_id = new_scan(store)

    def replace(env: str, rows: list[dict[str, Any]]) -> int:
        return store.replace_environment_table(
            scan_id=scan_id, environment_id=env, query_id="workflows", table="workflows",
            rows=rows,
        )  # fmt: skip

    flows = [{"workflowid": f"f{i}", "name": f"Flow {i}", "category": 5} for i in range(3)]
    assert replace(ENV, flows) == 3
    assert replace(OTHER_ENV, flows[:2]) == 2
    # f0 was deleted in the tenant, f1 renamed; the same key twice counts once.
    changed: list[dict[str, Any]] = [{"workflowid": "f1", "name": "Renamed"}, flows[2], flows[2]]
    assert replace(ENV, changed) == 2
    got = store._frame(
        "SELECT workflowid, name FROM workflows WHERE environment_id = ? ORDER BY 1", [ENV]
    )
    assert got.to_dict("records") == [
        {"workflowid": "f1", "name": "Renamed"},
        {"workflowid": "f2", "name": "Flow 2"},
    ]
    assert store.count("workflows", OTHER_ENV) == 2
    assert store.checkpoint(scan_id, ENV, "workflows", "all") == Checkpoint(
        next_link=None, done=True, rows=2, pages=1
    )
    assert replace(ENV, []) == 0
    assert store.count("workflows", ENV) == 0
    assert store.count("workflows", OTHER_ENV) == 2


def test_replacing_action_samples_keeps_the_samples_of_earlier_scans(store: Store) -> None:
    first, second = new_scan(store), new_scan(store)
    for scan_id, names in ((first, ["a", "b"]), (second, ["a"])):
        store.replace_environment_table(
            scan_id=scan_id, environment_id=ENV, query_id="samples", table="action_samples",
            rows=[{"flow_name": n, "sampled": 1} for n in names],
        )  # fmt: skip
    assert store.count("action_samples", ENV) == 3


def test_a_failed_replacement_keeps_the_previous_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan_id = new_scan(store)
    rows = [{"stepid": "s1"}, {"stepid": "s2"}]
    store.replace_environment_table(
        scan_id=scan_id, environment_id=ENV, query_id="steps", table="plugin_steps", rows=rows
    )

    def fail(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("disk gone")

    monkeypatch.setattr(store, "_put_checkpoint", fail)
    with pytest.raises(RuntimeError):
        store.replace_environment_table(
            scan_id=scan_id, environment_id=ENV, query_id="steps", table="plugin_steps",
            rows=[{"stepid": "s3"}],
        )  # fmt: skip
    assert sorted(store._frame("SELECT stepid FROM plugin_steps")["stepid"]) == ["s1", "s2"]


def test_table_counts_cover_every_data_table_per_environment(store: Store) -> None:
    scan_id = new_scan(store)
    write(store, [trace(1), trace(2)], scan_id=scan_id)
    write(store, [trace(1)], scan_id=scan_id, environment_id=OTHER_ENV)
    write(store, [{"environment_id": "ignored", "display_name": "Prod"}], table="environments")
    store.record_query(
        scan_id=scan_id, environment_id=ENV, query_id="q", status="collected", rows=2,
        requests=1, retries=0, throttled=0,
    )  # fmt: skip
    counts = store.table_counts()
    assert set(counts) == set(TABLES)
    assert counts["plugintracelogs"] == {ENV: 2, OTHER_ENV: 1}
    assert counts["environments"] == {ENV: 1}  # the store sets environment_id itself
    assert counts["workflows"] == {}
    assert store.count("scan_queries") == 1


# --- speed -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_timing_80_pages_of_5000_trace_logs(tmp_path: Path) -> None:
    """Prints how long pages take; asserts only that they do not slow down badly (400 k rows:
    enough for a slowdown with the table's size to show, small enough for CI)."""
    pages, size = 80, 5000
    template = trace(0, messageblock="Trace: " + "x" * 300, exceptiondetails=None)
    store = Store.open(tmp_path / "timing.duckdb")
    scan_id = new_scan(store)
    seconds: list[float] = []
    started = time.perf_counter()
    for page in range(pages):
        rows = [
            {
                **template,
                "plugintracelogid": str(uuid.UUID(int=page * size + i)),
                "performanceexecutionduration": i,
            }
            for i in range(size)
        ]
        begin = time.perf_counter()
        write(store, rows, scan_id=scan_id, next_link=f"n{page}")
        seconds.append(time.perf_counter() - begin)
    total = time.perf_counter() - started
    # An overlapping page (every key already stored) takes the slower replacing path.
    again = [
        {**template, "plugintracelogid": str(uuid.UUID(int=i)), "depth": 2} for i in range(size)
    ]
    begin = time.perf_counter()
    write(store, again, scan_id=scan_id, unit="overlap")
    overlap = time.perf_counter() - begin
    count = store.count("plugintracelogs")
    assert store._frame("SELECT count(*) AS n FROM plugintracelogs WHERE depth = 2")["n"][0] == size
    close_begin = time.perf_counter()
    store.close()
    close = time.perf_counter() - close_begin
    first, last = statistics.median(seconds[:20]), statistics.median(seconds[-20:])
    print(
        f"\n{pages} pages x {size} rows: total {total:.1f} s (rows built in Python included), "
        f"write_page median first 20 {first * 1000:.0f} ms, last 20 {last * 1000:.0f} ms, "
        f"p95 {sorted(seconds)[int(pages * 0.95)] * 1000:.0f} ms, "
        f"max {max(seconds) * 1000:.0f} ms, a page of known keys {overlap * 1000:.0f} ms, "
        f"close {close:.1f} s"
    )
    assert count == pages * size
    assert last < max(4 * first, 0.25)


def test_a_batch_of_units_marks_each_done_with_its_rows(store: Store) -> None:
    scan = new_scan(store)
    write = dict(scan_id=scan, environment_id="env", table="flow_api_runs")
    # A unit half read page by page, then finished in a batch with others.
    store.write_page(
        **write, query_id="flow_runs", unit="a", rows=[{"flow_name": "a", "run_name": "r0"}],
        next_link="https://next", done=False,
    )  # fmt: skip
    runs = [{"flow_name": name, "run_name": f"r{i}"} for name in "abc" for i in range(2)]
    units = [("flow_runs", "a", 2), ("flow_runs", "b", 2), ("flow_runs", "c", 0)]
    units += [("flow_runs", "c", 2)]  # named twice: the last count is kept
    assert store.write_units(**write, rows=runs, units=units) == 6
    for unit in "abc":
        assert store.checkpoint(scan, "env", "flow_runs", unit) == Checkpoint(None, True, 2, 1)
    assert store.write_units(**write, rows=[], units=[]) == 0
