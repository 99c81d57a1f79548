"""The simulator's fake BlueZ seen through plain bleak, and `vigil simulate`'s entry point."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from bleak import BleakClient, BleakScanner

from devices import gatt
from devices.gatt_pmd import PMD_CONTROL_POINT, PMD_DATA
from devices.simulator import SimulatorProcess, dbus_daemon_path, main, use_bus

needs_dbus = pytest.mark.skipif(
    dbus_daemon_path() is None,
    reason="dbus-daemon not installed (Debian package 'dbus'); the BLE simulator needs it",
)

SCENARIO = """
name = "truncation and link loss"
[[device]]
kind = "strap"
address = "C0:DE:00:01:00:07"
mtu = 23
[[device.event]]
at_s = 1.5
kind = "link_loss"
[[device]]
kind = "thermometer"
address = "C0:DE:00:03:00:07"
period_s = 1
"""


def test_main_refuses_bad_arguments(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[device]]\nkind = "toaster"\n')
    assert main(["--scenario", str(bad)]) == 2
    assert main(["--devices", "fridge"]) == 2
    assert main(["--host", "bumble", "--devices", ""]) == 2


def test_main_bumble_host_prints_the_transport(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--host", "bumble", "--devices", "strap", "--duration", "0.3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("VIGIL_BLE=bumble:tcp-client:127.0.0.1:")
    assert "C0:DE:00:01:00:01" in lines[1]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        assert main(["--host", "bumble", "--port", port, "--duration", "0.3"]) == 3


@needs_dbus
def test_cli_process_truncation_filter_and_link_loss(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(SCENARIO)
    sim = SimulatorProcess(scenario=scenario)
    address = sim.start()
    assert address.startswith("unix:path=")
    use_bus(address)
    try:
        asyncio.run(_exercise())
    finally:
        rc = sim.stop()
    assert rc == 0
    assert any("C0:DE:00:01:00:07" in line for line in sim.device_lines)


async def _exercise() -> None:
    # SetDiscoveryFilter: asking for thermometers finds only the thermometer.
    found = await BleakScanner.discover(timeout=1.0, service_uuids=[gatt.full_uuid(0x1809)])
    assert [d.address for d in found] == ["C0:DE:00:03:00:07"]

    strap = await BleakScanner.find_device_by_address("C0:DE:00:01:00:07", timeout=3.0)
    assert strap is not None
    lost = asyncio.Event()
    frames: list[bytes] = []
    indications: list[bytes] = []
    async with BleakClient(strap, disconnected_callback=lambda _c: lost.set()) as client:
        await client.start_notify(PMD_CONTROL_POINT, lambda _c, d: indications.append(bytes(d)))
        await client.start_notify(
            PMD_DATA, lambda _c, d: frames.append(bytes(d)), bluez={"use_start_notify": False}
        )
        await client.write_gatt_char(
            PMD_CONTROL_POINT, gatt.encode(gatt.PmdStartMeasurement()), True
        )
        # The scenario drops the link 1.5 s after connecting.
        await asyncio.wait_for(lost.wait(), 5.0)
        assert not client.is_connected
    # The PMD response arrives as an indication after the write.
    assert gatt.decode(PMD_CONTROL_POINT, indications[0]).ok
    # MTU 23: every 229-byte ECG frame was cut to 20 bytes and no longer decodes.
    assert frames and {len(f) for f in frames} == {20}
    with pytest.raises(gatt.GattDecodeError):
        gatt.decode(PMD_DATA, frames[0])
