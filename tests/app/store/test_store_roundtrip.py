"""What goes into the store comes back exactly, from a separate connection."""

from __future__ import annotations

import json
import math
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import platformdirs
import pytest
from store_helpers import blocks_of, same_bits, special_values

from app.store import StoreReader, StoreWriter, default_data_dir, store_path
from app.store.writer import THREAD_NAME
from devices.frames import ConnectionState, DeviceState, Numeric, SampleBlock


def test_samples_round_trip_bit_exact(writer: StoreWriter, store_file: Path) -> None:
    rng = np.random.default_rng(7)
    sid = writer.start_session("bed-1", bed_label="Bed 1", source="test")
    ecg = special_values(rng, 20_000)
    pleth = rng.normal(size=3_000).astype(np.float32)  # off any grid: the fallback codec
    for block in blocks_of(ecg, rng) + blocks_of(pleth, rng, stream="pleth", fs=125.0, first=500):
        writer.submit_block(sid, block)
    assert writer.flush(5.0)
    with StoreReader(store_file) as reader:
        first, got = reader.read_samples(sid, "ecg")
        assert first == 0 and same_bits(got, ecg)
        first, got = reader.read_samples(sid, "pleth")
        assert first == 500 and same_bits(got, pleth)
        first, got = reader.read_samples(sid, "ecg", 4000, 9000)
        assert first == 4000 and same_bits(got, ecg[4000:9000])
        streams = {s.stream: s for s in reader.streams(sid)}
        assert streams["ecg"].samples_stored == 20_000 and streams["ecg"].gaps == 0
        assert streams["pleth"].fs_hz == 125.0 and streams["pleth"].first_index == 500
    stats = json.loads(json.dumps(writer.stats()))  # JSON-able for --stats-json
    assert stats["samples_submitted"] == stats["samples_stored"] == 23_000
    assert stats["blocks_pending"] == 0 and stats["errors"] == 0 and stats["ok"]


def test_missing_samples_read_back_as_nan(writer: StoreWriter, store_file: Path) -> None:
    sid = writer.start_session("bed-2")
    a = np.arange(100, dtype=np.float32)
    b = np.arange(100, 150, dtype=np.float32)
    writer.submit_block(sid, SampleBlock("ecg", 250.0, 0, 0.0, a))
    writer.submit_block(sid, SampleBlock("ecg", 250.0, 130, 0.52, b, gap_before=True))
    assert writer.flush(5.0)
    with StoreReader(store_file) as reader:
        first, got = reader.read_samples(sid, "ecg", -10, 200)
        assert first == -10 and len(got) == 210
        assert (
            np.isnan(got[:10]).all() and np.isnan(got[110:140]).all() and np.isnan(got[190:]).all()
        )
        assert same_bits(got[10:110], a) and same_bits(got[140:190], b)
        assert reader.streams(sid)[0].gaps == 1
        assert reader.read_samples(sid, "resp")[1].size == 0


def test_commit_is_visible_to_another_connection_within_a_second(store_file: Path) -> None:
    writer = StoreWriter(store_file, commit_interval_s=1.0)
    writer.start()
    try:
        sid = writer.start_session("bed-1")
        reader = StoreReader(store_file)
        writer.submit_block(sid, SampleBlock("ecg", 360.0, 0, 0.0, np.ones(360, np.float32)))
        submitted = time.monotonic()
        seen = 0
        while time.monotonic() - submitted < 3.0 and not seen:
            seen = len(reader.read_samples(sid, "ecg")[1])
            time.sleep(0.02)
        latency = time.monotonic() - submitted
        reader.close()
        assert seen == 360
        assert latency < 1.5
    finally:
        writer.stop()


def test_rows_round_trip(writer: StoreWriter, store_file: Path) -> None:
    sid = writer.start_session(
        "bed-3", bed_label="Bed 3", patient_id="p-9", patient_name="Ada Lovelace", mrn="MRN9"
    )
    writer.submit_numeric(sid, Numeric("hr", 72.0, "bpm", 1.0, "replay"))
    writer.submit_numeric(sid, Numeric("spo2", math.nan, "%", 1.0, "replay"))
    writer.submit_state(
        sid, DeviceState("AA:BB", ConnectionState.SIGNAL_LOSS, "no data", 2.5, {"gaps": 3})
    )
    writer.submit_beat(
        sid, "ecg", 1234, "V", probabilities={"N": 0.1, "V": 0.9}, model_version="m1"
    )
    eid = writer.submit_event(
        sid, "vt", "high", 10.0, value=180.0, limit=150.0, details={"beats": 5}
    )
    writer.update_event(
        eid, offset_s=14.5, acknowledged_by="nurse A", acknowledged_at="2026-01-01T00:00:00Z"
    )
    writer.submit_explanation(eid, {"qrs": 0.7, "rr": [0.1, 0.2]}, "m1")
    writer.submit_review(eid, "dr B", "disagree", note="artefact")
    with pytest.raises(ValueError):
        writer.submit_review(eid, "dr B", "maybe")
    writer.end_session(sid, ended_at="2026-01-01T01:00:00Z")
    assert writer.flush(5.0)
    with StoreReader(store_file) as reader:
        (session,) = reader.sessions(bed_id="bed-3")
        assert (session.id, session.bed_label, session.patient_name, session.mrn) == (
            sid,
            "Bed 3",
            "Ada Lovelace",
            "MRN9",
        )
        assert session.ended_at == "2026-01-01T01:00:00Z" and session.app_version
        hr, spo2 = reader.numerics(sid)
        assert hr == Numeric("hr", 72.0, "bpm", 1.0, "replay")
        assert spo2.name == "spo2" and math.isnan(spo2.value)
        assert reader.numerics(sid, name="hr", start_s=0.5, stop_s=1.5) == [hr]
        assert reader.states(sid) == [
            DeviceState("AA:BB", ConnectionState.SIGNAL_LOSS, "no data", 2.5, {"gaps": 3})
        ]
        (beat,) = reader.beats(sid, stream="ecg", start_index=1000, stop_index=2000)
        assert (beat.sample_index, beat.symbol, beat.probabilities) == (
            1234,
            "V",
            {"N": 0.1, "V": 0.9},
        )
        (event,) = reader.events(sid)
        assert event.id == eid and event.offset_s == 14.5 and event.limit == 150.0
        assert event.acknowledged_by == "nurse A" and event.details == {"beats": 5}
        assert reader.event(eid) == event and reader.event(eid + 1) is None
        assert reader.explanations(eid)[0].explanation == {"qrs": 0.7, "rr": [0.1, 0.2]}
        (review,) = reader.reviews(eid)
        assert (review.user, review.verdict, review.note) == ("dr B", "disagree", "artefact")


def test_blocks_from_many_threads(writer: StoreWriter, store_file: Path) -> None:
    sid = writer.start_session("bed-4")
    signals = {f"s{i}": special_values(np.random.default_rng(i), 5_000) for i in range(4)}

    def source(stream: str) -> None:
        for block in blocks_of(signals[stream], np.random.default_rng(), stream=stream):
            writer.submit_block(sid, block)

    threads = [threading.Thread(target=source, args=(s,)) for s in signals]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert writer.flush(5.0)
    with StoreReader(store_file) as reader:
        for stream, x in signals.items():
            assert same_bits(reader.read_samples(sid, stream)[1], x)


def test_reopening_keeps_data_and_continues_ids(store_file: Path) -> None:
    x = special_values(np.random.default_rng(3), 1000)
    with StoreWriter(store_file) as w1:
        sid1 = w1.start_session("bed-1")
        w1.submit_block(sid1, SampleBlock("ecg", 360.0, 0, 0.0, x))
    with StoreWriter(store_file) as w2:
        sid2 = w2.start_session("bed-1")
        assert sid2 == sid1 + 1
    with StoreReader(store_file) as reader:
        assert [s.id for s in reader.sessions()] == [sid1, sid2]
        assert same_bits(reader.read_samples(sid1, "ecg")[1], x)
        versions = reader.db.execute("SELECT count(*) FROM schema_version").fetchone()[0]
        assert versions == 1


def test_stop_flushes_and_leaves_no_thread(store_file: Path) -> None:
    writer = StoreWriter(store_file, commit_interval_s=60.0)  # only stop() commits
    writer.start()
    assert any(t.name == THREAD_NAME for t in threading.enumerate())
    sid = writer.start_session("bed-1")
    writer.submit_block(sid, SampleBlock("ecg", 360.0, 0, 0.0, np.zeros(5000, np.float32)))
    assert writer.stop(timeout=5.0)
    assert not any(t.name == THREAD_NAME for t in threading.enumerate())
    assert writer.stats()["samples_stored"] == 5000
    # late submissions are counted, not silently lost
    writer.submit_block(sid, SampleBlock("ecg", 360.0, 5000, 0.0, np.zeros(10, np.float32)))
    assert writer.stats()["samples_dropped"] == 10
    with sqlite3.connect(store_file) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_store_path(tmp_path: Path) -> None:
    assert store_path(tmp_path / "data") == tmp_path / "data" / "vigil.sqlite3"
    assert (tmp_path / "data").is_dir()
    assert default_data_dir() == Path(platformdirs.user_data_dir("vigil", appauthor=False))
