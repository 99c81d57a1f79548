"""Real bleak (BlueZ backend) against the simulator's fake org.bluez on a private bus.

The scenario bodies (``check_*``) take a started :class:`SimulatorThread` of either
host; test_ble_bumble.py runs the same ones on the Bumble host.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from devices.ble import BleSource
from devices.ble_runtime import THREAD_NAME
from devices.frames import ConnectionState, DeviceState, Numeric, SampleBlock
from devices.simulator import DeviceSpec, SimulatorThread, dbus_daemon_path, use_bus

pytestmark = pytest.mark.skipif(
    dbus_daemon_path() is None,
    reason="dbus-daemon not installed (Debian package 'dbus'); the BLE simulator needs it",
)


class RecordingSink:
    """A SourceSink that keeps everything it is given (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.blocks: list[tuple[str, SampleBlock, float]] = []
        self.numerics: list[tuple[str, Numeric]] = []
        self.states: list[tuple[str, DeviceState]] = []
        self.threads: set[str] = set()

    def on_block(self, bed_id: str, block: SampleBlock) -> None:
        with self.lock:
            self.blocks.append((bed_id, block, time.time()))
            self.threads.add(threading.current_thread().name)

    def on_numeric(self, bed_id: str, numeric: Numeric) -> None:
        with self.lock:
            self.numerics.append((bed_id, numeric))

    def on_state(self, bed_id: str, state: DeviceState) -> None:
        with self.lock:
            self.states.append((bed_id, state))

    def ecg(self, bed: str | None = None, since: float = 0.0) -> list[SampleBlock]:
        with self.lock:
            return [
                b
                for bed_id, b, t in self.blocks
                if b.stream == "ecg" and t >= since and (bed is None or bed_id == bed)
            ]

    def ecg_samples(self, since: float = 0.0) -> int:
        return sum(len(b.samples) for b in self.ecg(since=since))

    def numeric(self, name: str, bed: str | None = None) -> list[Numeric]:
        with self.lock:
            return [
                n
                for bed_id, n in self.numerics
                if n.name == name and (bed is None or bed_id == bed)
            ]

    def state_names(self, address: str) -> list[ConnectionState]:
        with self.lock:
            return [s.state for _, s in self.states if s.device == address]

    def last_state(self, address: str) -> DeviceState | None:
        with self.lock:
            found = [s for _, s in self.states if s.device == address]
        return found[-1] if found else None


def wait_for(check: Callable[[], object], timeout_s: float, what: str) -> float:
    """Poll ``check`` until truthy; return the time it took, or fail with ``what``."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        if check():
            return time.monotonic() - t0
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


RECORD = str(Path(__file__).resolve().parents[2] / "resources" / "demo" / "101")
STRAP = "C0:DE:00:01:00:01"
OXIMETER = "C0:DE:00:02:00:01"
THERMOMETER = "C0:DE:00:03:00:01"
CUFF = "C0:DE:00:04:00:01"
STRAP_2 = "C0:DE:00:01:00:02"


def source_for(sim: SimulatorThread, sink: RecordingSink, **kwargs: float) -> BleSource:
    """A BleSource on the backend that reaches ``sim`` (platform for bluez, Bumble's spec)."""
    backend = sim.address if sim.host_kind == "bumble" else None
    return BleSource(sink, backend=backend, **kwargs)


STREAM_DEVICES = (
    DeviceSpec("chest_strap", address=STRAP, record=RECORD),
    DeviceSpec("pulse_oximeter", address=OXIMETER),
)
FOUR_WEARABLES = (
    DeviceSpec("chest_strap", address=STRAP, le_abort_connects=1),
    DeviceSpec("pulse_oximeter", address=OXIMETER),
    DeviceSpec("thermometer", address=THERMOMETER, period_s=1.0),
    DeviceSpec("bp_cuff", address=CUFF, period_s=1.0),
    DeviceSpec("chest_strap", address=STRAP_2, mtu=23),
)


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[SimulatorThread]:
    simulator = SimulatorThread(request.param)
    use_bus(simulator.start())
    yield simulator
    simulator.stop()


def _ble_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == THREAD_NAME]


@pytest.mark.parametrize("sim", [STREAM_DEVICES], indirect=True)
def test_stream_link_loss_signal_loss_reconnect(sim: SimulatorThread) -> None:
    check_stream_link_loss_signal_loss_reconnect(sim)


@pytest.mark.parametrize("sim", [FOUR_WEARABLES], indirect=True)
def test_four_wearables_one_bed_storm_and_isolation(sim: SimulatorThread) -> None:
    check_four_wearables_one_bed_storm_and_isolation(sim)


def check_stream_link_loss_signal_loss_reconnect(sim: SimulatorThread) -> None:
    """Scan → stream → link loss → signal loss → reconnect → stream → clean shutdown."""
    sink = RecordingSink()
    source = source_for(sim, sink, signal_loss_s=1.5, backoff_max_s=0.5)
    try:
        found = source.scan(timeout_s=1.0).result(10)
        kinds = {d.address: d.kind for d in found}
        assert kinds == {STRAP: "chest_strap", OXIMETER: "pulse_oximeter"}
        assert all(d.name and d.rssi_dbm < 0 for d in found)

        source.assign("bed-1", STRAP).result(5)
        source.assign("bed-1", OXIMETER).result(5)
        wait_for(lambda: sink.ecg_samples() > 0, 10, "first ECG frame")
        t0 = time.time()
        time.sleep(3.0)
        n = sink.ecg_samples(since=t0)
        assert abs(n - 3.0 * 130) <= 130, n  # within 1 s of expected
        blocks = sink.ecg()
        assert all(b.fs_hz == 130 and b.units == "mV" for b in blocks)
        assert all(
            b.end_index == nxt.first_index for b, nxt in zip(blocks, blocks[1:], strict=False)
        )
        assert max(abs(b.samples).max() for b in blocks) > 0.3  # real QRS complexes in mV
        hr = sink.numeric("hr")
        assert hr and all(40 <= h.value <= 150 for h in hr)
        assert sink.numeric("spo2") and sink.numeric("battery")
        assert any(b.stream == "rr" for _, b, _ in sink.blocks)
        assert {ConnectionState.CONNECTING, ConnectionState.STREAMING} <= set(
            sink.state_names(STRAP)
        )

        # Link loss: the strap vanishes for 3 s, then refuses one reconnect.
        sim.link_loss(STRAP, refuse_reconnects=1, hidden_s=3.0)
        lost_at = time.time()
        wait_for(
            lambda: ConnectionState.SIGNAL_LOSS in sink.state_names(STRAP), 4.0, "signal loss state"
        )
        assert ConnectionState.RECONNECTING in sink.state_names(STRAP)
        visible_at = lost_at + 3.0
        wait_for(lambda: sink.ecg(since=visible_at), 12, "ECG after reconnect")
        resumed = sink.ecg(since=visible_at)[0]
        assert time.time() - visible_at < 8.0
        assert resumed.gap_before  # the sensor timestamps show the hole
        assert sink.last_state(STRAP).state == ConnectionState.STREAMING
        t1 = time.time()
        time.sleep(2.0)
        n = sink.ecg_samples(since=t1)
        assert abs(n - 2.0 * 130) <= 130, n
        states = source.device_states().result(5)
        assert states[STRAP].counters["gaps"] >= 1
        assert states[STRAP].counters["reconnects"] >= 1
        assert sim.stats()[STRAP]["refused"] == 1
        assert any(b.gap_before for _, b, _ in sink.blocks if b.stream == "rr")
        assert sink.threads == {THREAD_NAME}
    finally:
        source.stop()
    # Shutdown order: notifications stopped, devices disconnected, thread joined.
    assert not _ble_threads()
    assert sink.last_state(STRAP).state == ConnectionState.DISCONNECTED
    assert not any(sim.call(lambda h: [d.connected for d in h.devices.values()]))
    assert sim.call(lambda h: h.device(STRAP).model.ecg_running) is False


def check_four_wearables_one_bed_storm_and_isolation(sim: SimulatorThread) -> None:
    """Four wearables on one bed, one on another; aborts, MTU 23, a malformed storm."""
    sink = RecordingSink()
    source = source_for(sim, sink, signal_loss_s=5.0, backoff_max_s=0.5)
    try:
        for address in (STRAP, OXIMETER, THERMOMETER, CUFF):
            source.assign("bed-2", address)
        source.assign("bed-3", STRAP_2)
        with pytest.raises(ValueError):
            source.assign("bed-2", STRAP_2)
        assert source.assignments() == {
            "bed-2": (STRAP, OXIMETER, THERMOMETER, CUFF),
            "bed-3": (STRAP_2,),
        }

        def bed2_complete() -> bool:
            return all(
                sink.numeric(n, "bed-2") for n in ("hr", "spo2", "temp", "nibp_sys")
            ) and bool(sink.ecg("bed-2"))

        wait_for(bed2_complete, 12, "all four wearables on bed 2")
        assert sim.stats()[STRAP]["le_aborts"] == 1  # bleak retried through the abort
        temp = sink.numeric("temp", "bed-2")[-1]
        assert 35.0 < temp.value < 38.5 and temp.units == "°C"
        sys_ = sink.numeric("nibp_sys", "bed-2")[-1]
        assert 100 < sys_.value < 145 and sys_.units == "mmHg"
        # Data only from a bed's own devices.
        with sink.lock:
            sources = {(bed, n.source) for bed, n in sink.numerics}
        assert {s for b, s in sources if b == "bed-2"} <= {STRAP, OXIMETER, THERMOMETER, CUFF}
        assert {s for b, s in sources if b == "bed-3"} == {STRAP_2}
        # MTU 23 cuts every PMD frame to 20 bytes: all dropped as malformed, HR still flows.
        wait_for(lambda: sink.numeric("hr", "bed-3"), 5, "HR from the MTU-23 strap")
        assert not sink.ecg("bed-3")

        # A storm of malformed packets on the bed-2 strap: counted, and the stream lives on.
        sim.malformed_storm(STRAP, duration_s=1.5, rate=1.0)
        time.sleep(1.6)
        t0 = time.time()
        wait_for(lambda: sink.ecg("bed-2", since=t0), 3, "ECG after the storm")
        states = source.device_states().result(5)
        assert states[STRAP].counters["malformed"] >= 2
        assert states[STRAP_2].counters["malformed"] >= 1
        assert states[STRAP].state == ConnectionState.STREAMING
        reported = sink.last_state(STRAP)
        assert reported is not None and reported.counters["malformed"] >= 2

        # Unassigning stops that device's data for the bed at once.
        source.unassign(OXIMETER).result(10)
        n_before = len(sink.numeric("spo2", "bed-2"))
        time.sleep(1.5)
        assert len(sink.numeric("spo2", "bed-2")) == n_before
        assert not math.isnan(sink.numeric("hr", "bed-2")[-1].value)
    finally:
        source.stop()
    assert not _ble_threads()
