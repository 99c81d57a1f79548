"""BLE source pieces that need no bus: runtime thread, backoff, decoding and gap marking."""

from __future__ import annotations

import asyncio
import threading
import time

import numpy as np
import pytest

from devices import gatt
from devices.ble import HEALTH_SERVICES, BleSource, kind_of
from devices.ble_runtime import THREAD_NAME, BleRuntime
from devices.ble_session import HR, PMD_DATA, Backoff, DeviceSession
from devices.frames import DeviceState, Numeric, SampleBlock
from devices.gatt_pmd import PMD_EPOCH


class Sink:
    def __init__(self) -> None:
        self.blocks: list[SampleBlock] = []
        self.numerics: list[Numeric] = []
        self.states: list[DeviceState] = []

    def on_block(self, bed_id: str, block: SampleBlock) -> None:
        self.blocks.append(block)

    def on_numeric(self, bed_id: str, numeric: Numeric) -> None:
        self.numerics.append(numeric)

    def on_state(self, bed_id: str, state: DeviceState) -> None:
        self.states.append(state)


def _frame(first_sample_s: float, n: int = 73) -> bytes:
    last_ns = round((first_sample_s + (n - 1) / 130 - PMD_EPOCH.timestamp()) * 1e9)
    return gatt.encode(gatt.PmdEcgFrame(last_ns, tuple(range(n))))


def _session(sink: Sink, assigned: bool = True) -> DeviceSession:
    return DeviceSession("c0:de:00:01:00:01", "bed-1", sink, lambda bed, addr: assigned)


def test_runtime_runs_one_loop_and_joins() -> None:
    rt = BleRuntime()
    rt.start()
    try:

        async def where() -> tuple[str, asyncio.AbstractEventLoop]:
            return threading.current_thread().name, asyncio.get_running_loop()

        name, loop = rt.call(where())
        assert name == THREAD_NAME and loop is rt.loop
        assert rt.call(where())[1] is loop  # the same loop every time, never asyncio.run
        assert rt.thread_cpu_s() >= 0.0
    finally:
        rt.stop()
    assert not rt.running
    assert not [t for t in threading.enumerate() if t.name == THREAD_NAME]


def test_source_stop_joins_its_own_thread() -> None:
    source = BleSource(Sink())
    assert source.runtime.running
    source.stop()
    source.stop()  # twice is harmless
    assert not source.runtime.running
    with pytest.raises(RuntimeError):
        source.assign("bed-1", "C0:DE:00:01:00:01")
    with pytest.raises(ValueError):
        BleSource(Sink(), signal_loss_s=12.0)


def test_backoff_doubles_to_a_ceiling_and_resets() -> None:
    b = Backoff(0.25, 2.0)
    assert [b.take() for _ in range(6)] == [0.25, 0.5, 1.0, 2.0, 2.0, 2.0]
    b.reset()
    assert b.take() == 0.25


def test_kind_from_services() -> None:
    assert kind_of([gatt.full_uuid(0x180D)]) == "chest_strap"
    assert kind_of([gatt.full_uuid(0x1822), gatt.full_uuid(0x180F)]) == "pulse_oximeter"
    assert kind_of([]) == "unknown"
    assert len(HEALTH_SERVICES) == 5


def test_ecg_blocks_are_contiguous_then_marked_after_a_hole() -> None:
    sink = Sink()
    s = _session(sink)
    t = 1_800_000_000.0
    s._safe(PMD_DATA, s._on_ecg, _frame(t))
    s._safe(PMD_DATA, s._on_ecg, _frame(t + 73 / 130))
    s._safe(PMD_DATA, s._on_ecg, _frame(t + 5 * 73 / 130))  # three frames never came
    a, b, c = sink.blocks
    assert (a.first_index, b.first_index) == (0, 73) and not b.gap_before
    assert c.gap_before and c.first_index == 5 * 73  # the counter stays in step with time
    assert a.fs_hz == 130 and a.units == "mV"
    assert np.allclose(a.samples[:3], [0.0, 0.001, 0.002])
    assert a.t0_s == pytest.approx(t, abs=1e-6)
    assert s.counters["gaps"] == 1


def test_malformed_and_foreign_packets_are_counted_not_raised() -> None:
    sink = Sink()
    s = _session(sink)
    for junk in (b"", b"\x00\x01", b"\xff" * 7, _frame(1e9)[:-1]):
        s._safe(PMD_DATA, s._on_ecg, junk)
    s._safe(HR, s._on_hr, b"\x10\x48")  # RR flag without RR
    assert s.counters["malformed"] == 5 and not sink.blocks
    foreign = _session(sink, assigned=False)
    foreign._safe(HR, foreign._on_hr, gatt.encode(gatt.HeartRateMeasurement(70)))
    assert not sink.numerics and foreign.counters["unassigned"] == 1


def test_rr_gap_from_rr_sum_against_wall_clock() -> None:
    sink = Sink()
    s = _session(sink)
    hr = gatt.encode(gatt.HeartRateMeasurement(75, True, None, (0.8,)))
    for _ in range(3):
        s._safe(HR, s._on_hr, hr)
        s._last_hr_mono -= 0.8  # as if 0.8 s passed: RR covers the wall clock
    s._last_hr_mono -= 4.0  # four seconds with no notification
    s._safe(HR, s._on_hr, hr)
    rr_blocks = [b for b in sink.blocks if b.stream == "rr"]
    assert [b.gap_before for b in rr_blocks] == [False, False, False, True]
    assert [b.first_index for b in rr_blocks] == [0, 1, 2, 3]
    assert [n.value for n in sink.numerics if n.name == "hr"] == [75.0] * 4


def test_no_contact_reads_as_no_heart_rate() -> None:
    sink = Sink()
    s = _session(sink)
    s._safe(HR, s._on_hr, gatt.encode(gatt.HeartRateMeasurement(0, False)))
    [hr] = [n for n in sink.numerics if n.name == "hr"]
    assert np.isnan(hr.value) and hr.source == "C0:DE:00:01:00:01"
    assert time.time() - hr.t_s < 5
