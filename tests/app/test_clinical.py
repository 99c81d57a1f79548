"""Clinical watch: numerics, states and health checks become the right alarms."""

from __future__ import annotations

from app.alarms import Priority
from app.clinical import SIGNAL_LOSS_S, WARD_ID, ClinicalWatch
from app.hub import BedModel, WardHub
from devices.frames import ConnectionState, DeviceState, Numeric


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _ward(clock: FakeClock):
    beds = {
        "bed1": BedModel("bed1", "Bed 1", "A", "1"),
        "bed2": BedModel("bed2", "Bed 2", "B", "2"),
    }
    watch = ClinicalWatch(beds, clock=clock)
    hub = WardHub(beds, clock=clock)
    hub.numeric_listeners.append(watch.on_numeric)
    hub.state_listeners.append(watch.on_state)
    return beds, hub, watch


def test_a_failed_source_raises_a_technical_alarm_naming_it_on_that_bed_only() -> None:
    clock = FakeClock()
    _, hub, watch = _ward(clock)
    hub.on_state(
        "bed1", DeviceState("119", ConnectionState.FAILED, "/data/119.hea: cannot read", clock.t)
    )
    d1, d2 = watch.manager.bed_display("bed1"), watch.manager.bed_display("bed2")
    assert d1.technical and d1.priority is Priority.MEDIUM and "119.hea" in d1.message
    assert d2.priority is Priority.NONE
    hub.on_state("bed1", DeviceState("119", ConnectionState.STREAMING, "", clock.t))
    assert watch.manager.bed_display("bed1").priority is Priority.NONE


def test_a_silent_streaming_bed_raises_signal_loss_and_clears_when_data_returns() -> None:
    import numpy as np

    from devices.frames import SampleBlock

    clock = FakeClock()
    beds, hub, watch = _ward(clock)
    hub.on_state("bed1", DeviceState("strap", ConnectionState.STREAMING, "", clock.t))
    hub.on_block("bed1", SampleBlock("ecg", 130.0, 0, 0.0, np.zeros(130)))
    clock.t += SIGNAL_LOSS_S - 1
    watch.tick()
    assert watch.manager.bed_display("bed1").priority is Priority.NONE
    clock.t += 2
    watch.tick()
    shown = watch.manager.bed_display("bed1")
    assert shown.technical and "Signal loss" in shown.message
    hub.on_block("bed1", SampleBlock("ecg", 130.0, 130, 1.0, np.zeros(130)))
    watch.tick()
    assert watch.manager.bed_display("bed1").priority is Priority.NONE


def test_spo2_below_limit_alarms_after_its_delay() -> None:
    clock = FakeClock()
    _, hub, watch = _ward(clock)
    for t in range(0, 40):
        hub.on_numeric("bed2", Numeric("spo2", 84.0, "%", float(t), "oximeter"))
    shown = watch.manager.bed_display("bed2")
    assert shown.priority >= Priority.MEDIUM
    assert "SpO" in shown.message and "84" in shown.message


def test_ward_health_checks_raise_and_clear_a_ward_alarm() -> None:
    clock = FakeClock()
    _, _, watch = _ward(clock)
    failing = {"on": True}
    watch.health_checks.append(
        lambda: [("store_error", "Recording to disk failing: disk full", failing["on"])]
    )
    watch.tick()
    assert "disk full" in watch.manager.bed_display(WARD_ID).message
    failing["on"] = False
    watch.tick()
    assert watch.manager.bed_display(WARD_ID).priority is Priority.NONE
