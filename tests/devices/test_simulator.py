"""Simulator models and scenarios, without D-Bus."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from devices import gatt
from devices.gatt_pmd import PMD_CONTROL_POINT, PMD_DATA, PMD_EPOCH
from devices.simulator.models import (
    BATTERY_LEVEL,
    ECG_SAMPLES_PER_FRAME,
    HR_MEASUREMENT,
    PLX_CONTINUOUS,
    ChestStrap,
    PulseOximeter,
    make_wearable,
)
from devices.simulator.scenario import (
    DeviceSpec,
    ScenarioError,
    devices_from_list,
    load_scenario,
    merge,
    parse_scenario,
)
from devices.simulator.signals import ECG_FS_HZ, load_ecg, synthetic_ecg

T0 = 1_700_000_000.0
DEMO_RECORD = str(Path(__file__).resolve().parents[2] / "resources" / "demo" / "101")


def _strap(**kw: object) -> ChestStrap:
    spec = merge(None, (DeviceSpec(kind="chest_strap", **kw),)).devices[0]  # type: ignore[arg-type]
    return ChestStrap(spec, T0)


def _start_ecg(strap: ChestStrap, now: float) -> gatt.PmdControlResponse:
    [(char, payload)] = strap.write(PMD_CONTROL_POINT, gatt.encode(gatt.PmdStartMeasurement()), now)
    assert char == PMD_CONTROL_POINT
    return gatt.decode(PMD_CONTROL_POINT, payload)


def test_scenario_toml(tmp_path: Path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(
        """
name = "drop"
[[device]]
kind = "strap"
record = "101"
mtu = 23
[[device.event]]
at_s = 2.5
kind = "link_loss"
refuse_reconnects = 2
[[device]]
kind = "oximeter"
"""
    )
    sc = load_scenario(path)
    assert sc.name == "drop"
    strap, oxi = sc.devices
    assert (strap.kind, strap.mtu, strap.record) == ("chest_strap", 23, "101")
    assert strap.events[0].kind == "link_loss" and strap.events[0].refuse_reconnects == 2
    assert oxi.kind == "pulse_oximeter" and oxi.address != strap.address


@pytest.mark.parametrize(
    "data",
    [
        {"device": [{"kind": "toaster"}]},
        {"device": [{"kind": "strap", "mtuu": 23}]},
        {"device": [{"kind": "strap", "mtu": 10}]},
        {"device": [{"kind": "strap", "event": [{"at_s": 1, "kind": "explode"}]}]},
        {"colour": "red"},
    ],
)
def test_scenario_errors(data: dict) -> None:
    with pytest.raises(ScenarioError):
        parse_scenario(data)


def test_device_list_gives_unique_addresses() -> None:
    specs = merge(None, devices_from_list("strap*3,oximeter,thermometer,bp"))
    kinds = [d.kind for d in specs.devices]
    assert kinds == ["chest_strap"] * 3 + ["pulse_oximeter", "thermometer", "bp_cuff"]
    assert len({d.address for d in specs.devices}) == 6
    with pytest.raises(ScenarioError):
        devices_from_list("strap*x")
    with pytest.raises(ScenarioError):
        devices_from_list("fridge")


def test_ecg_from_record_is_130_hz_with_beats() -> None:
    src = load_ecg(DEMO_RECORD, duration_s=60)
    assert src.label == "101"
    # The loop is cut between two beats, so it is a little shorter than asked.
    assert 55 * ECG_FS_HZ <= len(src.samples_uv) <= 60 * ECG_FS_HZ
    # Record 101 runs about 70-80 bpm; its R peaks are around 1-2 mV.
    assert 60 <= len(src.beat_times_s) <= 100
    assert 500 < np.percentile(np.abs(src.samples_uv), 99.9) < 5000


def test_missing_record_falls_back_to_synthetic() -> None:
    src = load_ecg("no-such-record", duration_s=20, hr_bpm=60)
    assert src.label == "synthetic"
    assert len(src.beat_times_s) == pytest.approx(20, abs=2)


def test_beats_loop_across_the_end() -> None:
    src = synthetic_ecg(60, duration_s=10)
    d = src.duration_s
    beats = src.beats_between(d - 2.0, d + 2.0)
    assert len(beats) in (3, 4, 5)
    assert np.all(np.diff(beats) > 0.5)


def test_chest_strap_streams_130_hz_with_timestamps() -> None:
    strap = _strap(record=DEMO_RECORD)
    subs = {HR_MEASUREMENT, PMD_DATA, PMD_CONTROL_POINT, BATTERY_LEVEL}
    assert _start_ecg(strap, T0).ok
    frames = []
    hr = []
    for step in range(1, 201):  # 10 s in 50 ms steps
        for char, payload in strap.due(T0 + step * 0.05, subs):
            record = gatt.decode(char, payload)
            if char == PMD_DATA:
                frames.append(record)
            elif char == HR_MEASUREMENT:
                hr.append(record)
    n = sum(len(f.samples_uv) for f in frames)
    assert all(len(f.samples_uv) == ECG_SAMPLES_PER_FRAME for f in frames)
    assert n == pytest.approx(10 * ECG_FS_HZ, abs=ECG_SAMPLES_PER_FRAME)
    # Consecutive frames are 73 samples apart on the sensor clock.
    steps_ns = np.diff([f.timestamp_ns for f in frames])
    assert np.allclose(steps_ns, ECG_SAMPLES_PER_FRAME / ECG_FS_HZ * 1e9, atol=2)
    last_s = PMD_EPOCH.timestamp() + frames[-1].timestamp_ns / 1e9
    assert last_s == pytest.approx(T0 + n / ECG_FS_HZ - 1 / ECG_FS_HZ, abs=1e-3)
    assert len(hr) == 10 and all(50 <= h.bpm <= 110 for h in hr)
    rr_sum = sum(sum(h.rr_intervals_s) for h in hr)
    assert rr_sum == pytest.approx(10, abs=2.0)


def test_pmd_control_point_answers() -> None:
    strap = _strap()
    assert _start_ecg(strap, T0).ok
    again = _start_ecg(strap, T0)
    assert again.status_name == "ALREADY_IN_STATE"
    bad = gatt.PmdStartMeasurement(settings=((0, (250,)), (1, (14,))))
    strap.write(PMD_CONTROL_POINT, gatt.encode(gatt.PmdStopMeasurement()), T0)
    [(_, payload)] = strap.write(PMD_CONTROL_POINT, gatt.encode(bad), T0)
    assert gatt.decode(PMD_CONTROL_POINT, payload).status_name == "INVALID_SAMPLE_RATE"
    [(_, payload)] = strap.write(PMD_CONTROL_POINT, gatt.encode(gatt.PmdGetSettings()), T0)
    settings = gatt.decode(PMD_CONTROL_POINT, payload)
    assert settings.ok and dict(settings.settings) == {0: (130,), 1: (14,)}
    [(_, payload)] = strap.write(PMD_CONTROL_POINT, b"\x7f", T0)
    assert gatt.decode(PMD_CONTROL_POINT, payload).status_name == "INVALID_OP_CODE"


def test_link_drop_loses_samples_and_timestamps_show_it() -> None:
    strap = _strap()
    subs = {PMD_DATA}
    _start_ecg(strap, T0)
    first = [gatt.decode(PMD_DATA, p) for _, p in strap.due(T0 + 2.0, subs)]
    strap.on_link_down()
    assert not strap.ecg_running
    _start_ecg(strap, T0 + 5.0)
    later = [gatt.decode(PMD_DATA, p) for _, p in strap.due(T0 + 7.0, subs)]
    gap_s = (later[0].timestamp_ns - first[-1].timestamp_ns) / 1e9
    sent_s = len(later[0].samples_uv) / ECG_FS_HZ
    assert gap_s - sent_s > 2.5  # ~3 s of samples never sent


def test_clock_drift_speeds_up_the_sensor() -> None:
    fast = _strap(clock_drift_ppm=50_000)  # 5 % fast, exaggerated to be visible
    _start_ecg(fast, T0)
    n = sum(len(gatt.decode(PMD_DATA, p).samples_uv) for _, p in fast.due(T0 + 20.0, {PMD_DATA}))
    assert n == pytest.approx(20 * 1.05 * ECG_FS_HZ, abs=ECG_SAMPLES_PER_FRAME)


def test_contact_loss_and_battery_drain() -> None:
    strap = _strap(battery_percent=80, battery_drain_pct_per_min=60)
    strap.contact = False
    out = dict(strap.due(T0 + 1.0, {HR_MEASUREMENT, BATTERY_LEVEL}))
    hr = gatt.decode(0x2A37, out[HR_MEASUREMENT])
    assert hr.sensor_contact is False and hr.rr_intervals_s == ()
    assert gatt.decode(0x2A19, out[BATTERY_LEVEL]).percent == 79
    assert gatt.decode(0x2A19, strap.read(BATTERY_LEVEL, T0 + 30)).percent == 50


def test_oximeter_reports_nan_off_finger() -> None:
    spec = merge(None, (DeviceSpec(kind="pulse_oximeter"),)).devices[0]
    oxi = make_wearable(spec, T0)
    assert isinstance(oxi, PulseOximeter)
    on = gatt.decode(0x2A5F, dict(oxi.due(T0 + 1.0, {PLX_CONTINUOUS}))[PLX_CONTINUOUS])
    assert 85 <= on.spo2 <= 100
    oxi.contact = False
    off = gatt.decode(0x2A5F, dict(oxi.due(T0 + 2.0, {PLX_CONTINUOUS}))[PLX_CONTINUOUS])
    assert math.isnan(off.spo2) and off.device_status & (1 << 11)


@pytest.mark.parametrize("kind", ["thermometer", "bp_cuff"])
def test_periodic_measurements_decode(kind: str) -> None:
    spec = merge(None, (DeviceSpec(kind=kind, period_s=2.0),)).devices[0]
    dev = make_wearable(spec, T0)
    [char] = [c.uuid for s, cs in dev.services.items() for c in cs if "indicate" in c.flags]
    items = dev.due(T0 + 6.0, {char})
    assert len(items) == 3
    for _, payload in items:
        record = gatt.decode(char, payload)
        assert record.timestamp is not None
