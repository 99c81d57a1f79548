"""Schema creation, forward migrations, and files that are not ours."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlite_utils

from app.store import CURRENT_VERSION, StoreReader, StoreVersionError, StoreWriter, schema
from app.store.errors import StoreCorruptError

TABLES = {
    "schema_version",
    "beds",
    "patients",
    "sessions",
    "sample_chunks",
    "numerics",
    "device_states",
    "beats",
    "events",
    "explanations",
    "reviews",
}


def test_empty_file_is_migrated_to_the_current_schema(store_file: Path) -> None:
    store_file.touch()  # a 0-byte file is an empty SQLite database
    with StoreWriter(store_file):
        pass
    db = sqlite_utils.Database(store_file)
    assert TABLES <= set(db.table_names())
    assert schema.schema_version(db) == CURRENT_VERSION
    assert db["sample_chunks"].columns_dict["blob"] is bytes
    db.close()


def test_forward_migration_runs_once_and_is_recorded(store_file: Path) -> None:
    def add_ward_column(db: sqlite_utils.Database) -> None:
        db["beds"].add_column("ward", str)

    steps = [*schema.MIGRATIONS, add_ward_column]
    with StoreWriter(store_file):
        pass
    db = sqlite_utils.Database(store_file)
    assert schema.migrate(db, store_file, migrations=steps) == len(steps)
    assert schema.migrate(db, store_file, migrations=steps) == len(steps)  # idempotent
    assert "ward" in db["beds"].columns_dict
    assert [r["version"] for r in db["schema_version"].rows] == list(range(1, len(steps) + 1))
    db.close()
    # This Vigil knows fewer migrations than the file has: refuse, never downgrade.
    with pytest.raises(StoreVersionError, match="newer Vigil"):
        StoreReader(store_file)
    with pytest.raises(StoreVersionError, match=str(store_file)):
        StoreWriter(store_file).start()


def test_failed_migration_leaves_the_file_as_it_was(store_file: Path) -> None:
    def broken(db: sqlite_utils.Database) -> None:
        db["beds"].add_column("ward", str)
        raise RuntimeError("migration bug")

    with StoreWriter(store_file):
        pass
    db = sqlite_utils.Database(store_file)
    with pytest.raises(RuntimeError):
        schema.migrate(db, store_file, migrations=[*schema.MIGRATIONS, broken])
    assert "ward" not in db["beds"].columns_dict
    assert schema.schema_version(db) == CURRENT_VERSION
    db.close()


def test_a_foreign_sqlite_file_is_refused_not_migrated(store_file: Path) -> None:
    with sqlite3.connect(store_file) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY)")
    conn.close()
    with pytest.raises(StoreCorruptError, match="not a Vigil store"):
        StoreWriter(store_file).start()
    with pytest.raises(StoreCorruptError, match=str(store_file)):
        StoreReader(store_file)
    assert sqlite_utils.Database(store_file).table_names() == ["invoices"]


def test_reader_needs_an_existing_store(tmp_path: Path) -> None:
    missing = tmp_path / "none.sqlite3"
    with pytest.raises(Exception, match="no Vigil store"):
        StoreReader(missing)
    assert not missing.exists()
