"""A wearable ward end to end: simulator → real bleak → hub → tile, and the device picker."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from app.main import RunOptions, Vigil
from app.ui.device_picker import DevicePicker
from app.ui.main_window import MainWindow
from app.ward import WardConfig, with_wearable_beds
from devices.frames import ConnectionState
from devices.simulator import DeviceSpec, SimulatorThread, dbus_daemon_path, use_bus

pytestmark = pytest.mark.skipif(
    dbus_daemon_path() is None, reason="dbus-daemon not installed (Debian package 'dbus')"
)

STRAP = "C0:DE:00:01:00:01"
OXIMETER = "C0:DE:00:02:00:01"
THERMOMETER = "C0:DE:00:03:00:01"


@pytest.fixture
def simulator() -> Iterator[SimulatorThread]:
    saved = os.environ.get("DBUS_SYSTEM_BUS_ADDRESS")
    sim = SimulatorThread(
        (
            DeviceSpec("chest_strap", address=STRAP),
            DeviceSpec("pulse_oximeter", address=OXIMETER),
            DeviceSpec("thermometer", address=THERMOMETER),
        )
    )
    use_bus(sim.start())
    yield sim
    sim.stop()
    if saved is None:
        os.environ.pop("DBUS_SYSTEM_BUS_ADDRESS", None)
    else:
        os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = saved


def _wearable_ward(qtbot, auto_assign: bool):
    ward = with_wearable_beds(WardConfig("Wearables", ()), 1)
    vigil = Vigil(
        RunOptions(ward=ward, store=False, audio=False, ble=True, auto_assign=auto_assign)
    )
    window = MainWindow(ward.title, list(vigil.beds.values()), clinical=vigil.clinical)
    qtbot.addWidget(window)
    window.resize(1280, 720)
    window.show()
    vigil.start()
    window.bed_view.ble = vigil.ble
    return vigil, window


def test_auto_assigned_wearables_stream_to_the_bed_tile(qtbot, simulator) -> None:
    vigil, window = _wearable_ward(qtbot, auto_assign=True)
    try:
        bed = vigil.beds["bed1"]
        tile = window.ward_view.tiles[0]
        qtbot.waitUntil(
            lambda: bed.ring("ecg") is not None and bed.ring("ecg").end_index > 260, timeout=20_000
        )
        assert bed.ring("ecg").fs_hz == 130
        qtbot.waitUntil(lambda: {"spo2", "temp"} <= set(bed.numerics), timeout=20_000)
        qtbot.waitUntil(lambda: tile.ecg.frames_drawn > 3, timeout=10_000)
        tile.refresh_text()
        assert tile.numerics["spo2"].text() != "--"
        assert bed.state.state is ConnectionState.STREAMING
        assert set(vigil.ble.assignments()["bed1"]) == {STRAP, OXIMETER, THERMOMETER}
    finally:
        vigil.stop()
        window.close()


def test_device_picker_scans_and_assigns(qtbot, simulator) -> None:
    vigil, window = _wearable_ward(qtbot, auto_assign=False)
    try:
        picker = DevicePicker(vigil.ble, "bed1", "Bed 1")
        qtbot.addWidget(picker)
        picker.scan()
        qtbot.waitUntil(lambda: picker.table.rowCount() == 3, timeout=20_000)
        kinds = {picker.table.item(r, 1).text() for r in range(3)}
        assert kinds == {"ECG chest strap", "Pulse oximeter", "Thermometer"}
        row = next(r for r in range(3) if picker.table.item(r, 3).text() == STRAP)
        picker.table.selectRow(row)
        picker.assign_selected()
        bed = vigil.beds["bed1"]
        qtbot.waitUntil(
            lambda: bed.ring("ecg") is not None and bed.ring("ecg").end_index > 130, timeout=20_000
        )
        assert vigil.ble.assignments() == {"bed1": (STRAP,)}
    finally:
        vigil.stop()
        window.close()
