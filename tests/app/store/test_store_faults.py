"""Faults: locked database, full disk, damaged file, bad items, memory bound."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from store_helpers import blocks_of, same_bits, special_values

from app.store import StoreCorruptError, StoreReader, StoreWriter, move_aside
from app.store.writer import THREAD_NAME
from devices.frames import Numeric, SampleBlock


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another program's connection holding the write lock (as a DB browser might)."""
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO beds (id, label) VALUES ('other', 'held')")
    return conn


def test_locked_database_is_retried_until_the_lock_goes(store_file: Path) -> None:
    writer = StoreWriter(store_file, commit_interval_s=0.1, busy_timeout_s=0.1)
    writer.start()
    try:
        sid = writer.start_session("bed-1")
        assert writer.flush(5.0)
        x = special_values(np.random.default_rng(0), 3000)
        other = hold_write_lock(store_file)
        for block in blocks_of(x, np.random.default_rng(1)):
            writer.submit_block(sid, block)
        assert wait_for(lambda: writer.stats()["error_kind"] == "locked")
        stats = writer.stats()
        assert stats["samples_stored"] == 0 and stats["blocks_pending"] > 0
        assert stats["errors"] >= 1 and not stats["ok"]
        assert (
            "database is locked" in stats["last_error"] and str(store_file) in stats["last_error"]
        )
        other.execute("ROLLBACK")
        other.close()
        assert writer.flush(10.0)
        stats = writer.stats()
        assert stats["ok"] and stats["samples_stored"] == 3000 and stats["blocks_pending"] == 0
        with StoreReader(store_file) as reader:
            assert same_bits(reader.read_samples(sid, "ecg")[1], x)
    finally:
        writer.stop()


def test_stop_while_locked_reports_what_was_lost(store_file: Path) -> None:
    writer = StoreWriter(store_file, commit_interval_s=0.1, busy_timeout_s=0.1)
    writer.start()
    sid = writer.start_session("bed-1")
    assert writer.flush(5.0)
    other = hold_write_lock(store_file)
    try:
        writer.submit_block(sid, SampleBlock("ecg", 360.0, 0, 0.0, np.ones(700, np.float32)))
        assert writer.stop(timeout=0.5) is False
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert not any(t.name == THREAD_NAME for t in threading.enumerate())
    stats = writer.stats()
    assert stats["samples_dropped"] == 700 and stats["blocks_pending"] == 0


def test_full_disk_holds_data_and_recovers(store_file: Path) -> None:
    with StoreWriter(store_file):
        pass
    with sqlite3.connect(store_file) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.close()
    writer = StoreWriter(store_file, commit_interval_s=0.1, pragmas={"max_page_count": pages + 3})
    writer.start()
    try:
        sid = writer.start_session("bed-1")
        # noise does not compress: 200 k samples need far more than 3 pages
        x = np.random.default_rng(5).normal(size=200_000).astype(np.float32)
        for block in blocks_of(x, np.random.default_rng(6)):
            writer.submit_block(sid, block)
        assert wait_for(lambda: writer.stats()["error_kind"] == "disk full")
        stats = writer.stats()
        assert "database or disk is full" in stats["last_error"]
        assert str(store_file) in stats["last_error"]
        assert stats["samples_stored"] < 200_000 and stats["samples_dropped"] == 0
        # space is freed: everything held in memory gets written
        writer.submit_maintenance(lambda conn: conn.execute("PRAGMA max_page_count = 1000000"))
        assert writer.flush(10.0)
        assert writer.stats()["samples_stored"] == 200_000 and writer.stats()["ok"]
        with StoreReader(store_file) as reader:
            assert same_bits(reader.read_samples(sid, "ecg")[1], x)
    finally:
        writer.stop()


def test_memory_bound_drops_and_counts(store_file: Path) -> None:
    writer = StoreWriter(
        store_file, commit_interval_s=0.1, busy_timeout_s=0.05, max_pending_bytes=40_000
    )
    writer.start()
    sid = writer.start_session("bed-1")
    assert writer.flush(5.0)
    other = hold_write_lock(store_file)
    try:
        for i in range(30):
            writer.submit_block(
                sid, SampleBlock("ecg", 360.0, i * 1000, 0.0, np.ones(1000, np.float32))
            )
        assert wait_for(lambda: writer.stats()["samples_dropped"] > 0)
        assert writer.stats()["error_kind"] == "dropped"
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert writer.flush(10.0)
    writer.stop()
    stats = writer.stats()
    assert stats["samples_stored"] + stats["samples_dropped"] == 30_000
    assert 0 < stats["samples_stored"] <= 10_000
    with StoreReader(store_file) as reader:
        first, got = reader.read_samples(sid, "ecg", 0, 30_000)
        assert np.count_nonzero(~np.isnan(got)) == stats["samples_stored"]


def test_a_bad_item_is_dropped_alone(writer: StoreWriter, store_file: Path) -> None:
    sid = writer.start_session("bed-1")
    writer.submit_numeric(sid, Numeric("hr", 60.0, "bpm", 1.0))

    def buggy(db: object) -> None:
        raise KeyError("program error in a caller")

    writer.submit(buggy, what="buggy call")
    writer.submit(lambda db: db.execute("INSERT INTO no_such_table VALUES (1)"), what="bad SQL")
    writer.submit_numeric(sid, Numeric("hr", 61.0, "bpm", 2.0))
    writer.submit_block(sid, SampleBlock("ecg", 360.0, 0, 0.0, np.ones(100, np.float32)))
    assert writer.flush(5.0)
    stats = writer.stats()
    assert stats["errors"] == 2 and stats["rows_dropped"] == 2 and stats["ok"]
    assert "bad SQL" in stats["last_error"]
    with StoreReader(store_file) as reader:
        assert [n.value for n in reader.numerics(sid)] == [60.0, 61.0]
        assert len(reader.read_samples(sid, "ecg")[1]) == 100


def test_garbage_file_gives_a_clear_error_naming_it(store_file: Path) -> None:
    store_file.write_bytes(np.random.default_rng(0).bytes(64 * 1024))
    with pytest.raises(StoreCorruptError, match=str(store_file)) as caught:
        StoreWriter(store_file).start()
    assert "not a SQLite database or damaged" in str(caught.value)
    assert not any(t.name == THREAD_NAME for t in threading.enumerate())
    with pytest.raises(StoreCorruptError, match=str(store_file)):
        StoreReader(store_file)
    moved = move_aside(store_file)
    assert moved.exists() and not store_file.exists()
    with StoreWriter(store_file) as writer:
        assert writer.start_session("bed-1") == 1


def test_damaged_chunk_is_named_on_read(writer: StoreWriter, store_file: Path) -> None:
    sid = writer.start_session("bed-1")
    writer.submit_block(sid, SampleBlock("ecg", 360.0, 0, 0.0, np.ones(100, np.float32)))
    assert writer.flush(5.0)
    writer.submit(lambda db: db.execute("UPDATE sample_chunks SET blob = x'00ff00'"))
    assert writer.flush(5.0)
    with (
        StoreReader(store_file) as reader,
        pytest.raises(StoreCorruptError, match="sample chunk 1"),
    ):
        reader.read_samples(sid, "ecg")
