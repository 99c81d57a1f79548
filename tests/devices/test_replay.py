"""Replay: pacing with an injected clock, looping, numerics, bad files."""

from __future__ import annotations

import gzip
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from devices.frames import ConnectionState, DeviceState, Numeric, SampleBlock
from devices.recording import Recording, RecordingError, Stream, load_recording
from devices.replay import MAX_CATCH_UP_S, ReplaySource


class CollectingSink:
    """A real sink that keeps what it is given."""

    def __init__(self) -> None:
        self.blocks: list[tuple[str, SampleBlock]] = []
        self.numerics: list[tuple[str, Numeric]] = []
        self.states: list[tuple[str, DeviceState]] = []

    def on_block(self, bed_id: str, block: SampleBlock) -> None:
        self.blocks.append((bed_id, block))

    def on_numeric(self, bed_id: str, numeric: Numeric) -> None:
        self.numerics.append((bed_id, numeric))

    def on_state(self, bed_id: str, state: DeviceState) -> None:
        self.states.append((bed_id, state))

    def samples(self, stream: str) -> np.ndarray:
        blocks = [b for _, b in self.blocks if b.stream == stream]
        return np.concatenate([b.samples for b in blocks]) if blocks else np.empty(0)


def _tiny_recording(n: int = 50, fs: float = 10.0) -> Recording:
    ecg = Stream("ecg", fs, np.arange(n, dtype=np.float32), "mV", "II")
    return Recording("tiny", {"ecg": ecg})


def test_pacing_follows_the_injected_clock_and_speed() -> None:
    sink = CollectingSink()
    src = ReplaySource("b1", _tiny_recording(), sink, speed=2.0)
    src.pump(100.0)
    assert src.pump(100.0) == 0
    assert src.pump(101.0) == 20  # 1 s at 2x of a 10 Hz stream
    assert src.pump(101.25) == 5
    np.testing.assert_array_equal(sink.samples("ecg"), np.arange(25, dtype=np.float32))


def test_replay_loops_with_monotonic_counters_and_timestamps() -> None:
    sink = CollectingSink()
    src = ReplaySource("b1", _tiny_recording(n=50), sink)
    src.pump(0.0)
    src.pump(3.0)
    src.pump(7.2)  # 72 samples: one full loop of 50 and 22 more
    blocks = [b for _, b in sink.blocks]
    counters = [b.first_index for b in blocks]
    assert counters == sorted(counters)
    for a, b in zip(blocks, blocks[1:], strict=False):
        assert b.first_index == a.end_index
        assert b.t0_s == pytest.approx(b.first_index / 10.0)
    got = sink.samples("ecg")
    assert len(got) == 72
    np.testing.assert_array_equal(got[50:], np.arange(22, dtype=np.float32))


def test_a_stall_skips_ahead_and_marks_a_gap() -> None:
    sink = CollectingSink()
    src = ReplaySource("b1", _tiny_recording(n=10_000, fs=10.0), sink)
    src.pump(0.0)
    src.pump(MAX_CATCH_UP_S * 4)
    blocks = [b for _, b in sink.blocks]
    assert blocks[0].gap_before
    assert sum(len(b.samples) for b in blocks) <= MAX_CATCH_UP_S * 10 + 1
    assert src.gaps == 1


def test_bidmc_numerics_are_replayed_at_their_times(demo_dir: Path) -> None:
    sink = CollectingSink()
    src = ReplaySource("b7", demo_dir / "bidmc_01", sink)
    src.pump(0.0)
    src.pump(3.5)
    hr = [n for _, n in sink.numerics if n.name == "hr"]
    assert [n.t_s for n in hr] == [0.0, 1.0, 2.0, 3.0]
    assert all(n.units == "bpm" and 30 < n.value < 200 for n in hr)
    streams = {b.stream for _, b in sink.blocks}
    assert {"ecg", "ecg2", "pleth", "resp"} <= streams


def test_wfdb_record_reads_leads_in_mv(demo_dir: Path) -> None:
    rec = load_recording(demo_dir / "119")
    assert rec.streams["ecg"].label == "MLII" and rec.streams["ecg"].fs_hz == 360
    assert rec.streams["ecg2"].label == "V1"
    assert rec.streams["ecg"].units == "mV"
    assert 0.5 < np.nanmax(rec.streams["ecg"].samples) - np.nanmin(rec.streams["ecg"].samples) < 10


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RecordingError, match="no such recording"):
        load_recording(tmp_path / "nothing")


def test_truncated_wfdb_signal_file_names_the_record(tmp_path: Path, demo_dir: Path) -> None:
    shutil.copy(demo_dir / "101.hea", tmp_path / "101.hea")
    (tmp_path / "101.dat").write_bytes((demo_dir / "101.dat").read_bytes()[:1000])
    with pytest.raises(RecordingError, match="101"):
        load_recording(tmp_path / "101")


def test_corrupt_gzip_csv_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bidmc_99_Signals.csv.gz"
    bad.write_bytes(b"\x1f\x8b this is not gzip")
    with pytest.raises(RecordingError, match="bidmc_99_Signals.csv.gz"):
        load_recording(tmp_path / "bidmc_99")


def test_csv_with_ragged_rows_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bidmc_98_Signals.csv.gz"
    path.write_bytes(gzip.compress(b"Time [s], RESP, PLETH, II\n0,1,2,3\n0.008,1,2\n"))
    with pytest.raises(RecordingError, match="columns"):
        load_recording(tmp_path / "bidmc_98")


def test_a_bad_bed_fails_alone_while_a_good_bed_streams(tmp_path: Path, demo_dir: Path) -> None:
    sink = CollectingSink()
    bad = ReplaySource("bad", tmp_path / "missing", sink)
    good = ReplaySource("good", demo_dir / "800", sink)
    bad.start()
    good.start()
    try:
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(b == "good" for b, _ in sink.blocks):
            time.sleep(0.05)
    finally:
        bad.stop()
        good.stop()
    failed = [s for b, s in sink.states if b == "bad" and s.state is ConnectionState.FAILED]
    assert failed and "missing" in failed[0].detail
    assert any(b == "good" for b, _ in sink.blocks)
