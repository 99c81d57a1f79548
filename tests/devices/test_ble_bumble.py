"""Real bleak on Vigil's Bumble backend against the simulator's Bumble host (real ATT/GATT).

The streaming, link-loss and four-wearable scenarios are the BlueZ host's
(test_ble_integration.py), run here over Bumble virtual controllers and TCP.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest
from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError
from test_ble_integration import (
    FOUR_WEARABLES,
    OXIMETER,
    RECORD,
    STRAP,
    STREAM_DEVICES,
    RecordingSink,
    check_four_wearables_one_bed_storm_and_isolation,
    check_stream_link_loss_signal_loss_reconnect,
    wait_for,
)

from devices import gatt
from devices.ble import BleSource
from devices.ble_backend import BleSpecError, make_backend, parse_ble_spec
from devices.frames import ConnectionState
from devices.gatt_pmd import PMD_CONTROL_POINT, PMD_DATA
from devices.simulator import DeviceSpec, SimulatorThread

HR = gatt.full_uuid(gatt.HEART_RATE_MEASUREMENT)
PLX = gatt.full_uuid(gatt.PLX_CONTINUOUS)
BATTERY = gatt.full_uuid(gatt.BATTERY_LEVEL)


@pytest.fixture
def sim(request: pytest.FixtureRequest) -> Iterator[SimulatorThread]:
    simulator = SimulatorThread(request.param, host="bumble")
    simulator.start()
    yield simulator
    simulator.stop()


@pytest.mark.parametrize("sim", [STREAM_DEVICES], indirect=True)
def test_stream_link_loss_signal_loss_reconnect(sim: SimulatorThread) -> None:
    check_stream_link_loss_signal_loss_reconnect(sim)


@pytest.mark.parametrize("sim", [FOUR_WEARABLES], indirect=True)
def test_four_wearables_one_bed_storm_and_isolation(sim: SimulatorThread) -> None:
    check_four_wearables_one_bed_storm_and_isolation(sim)


@pytest.mark.parametrize(
    "sim",
    [
        (
            DeviceSpec("chest_strap", address=STRAP, record=RECORD),
            DeviceSpec("pulse_oximeter", address=OXIMETER),
        )
    ],
    indirect=True,
)
def test_payloads_reach_the_app_byte_identical(sim: SimulatorThread) -> None:
    """What the app's bleak callbacks get is exactly what the models encoded."""

    def tap(host: object) -> None:
        for address in (STRAP, OXIMETER):
            host.device(address).sent = []  # type: ignore[attr-defined]

    sim.call(tap)
    received = asyncio.run(_receive(sim.address))
    sent = sim.call(lambda h: {a: list(h.device(a).sent) for a in (STRAP, OXIMETER)})
    for address, values in received.items():
        by_char: dict[str, list[bytes]] = {}
        for char, payload in sent[address]:
            by_char.setdefault(char, []).append(payload)
        for char, payloads in values.items():
            assert payloads, (address, char)
            assert payloads == by_char[char][: len(payloads)], (address, char)
            for payload in payloads:  # and each one is what gatt.encode writes
                assert gatt.encode(gatt.decode(char, payload)) == payload
    assert len(received[STRAP][PMD_DATA][0]) == 229  # 73 samples at MTU 232, as an H10 sends


async def _receive(spec: str) -> dict[str, dict[str, list[bytes]]]:
    backend = make_backend(spec)
    await backend.ready()
    out: dict[str, dict[str, list[bytes]]] = {STRAP: {}, OXIMETER: {}}
    try:
        strap = await BleakScanner.find_device_by_address(STRAP, 3.0, **backend.scanner_kwargs())
        oximeter = await BleakScanner.find_device_by_address(
            OXIMETER, 3.0, **backend.scanner_kwargs()
        )
        assert strap is not None and oximeter is not None
        async with (
            BleakClient(strap, **backend.client_kwargs()) as c1,
            BleakClient(oximeter, **backend.client_kwargs()) as c2,
        ):
            assert c1.mtu_size == 232 and c2.mtu_size == 232
            assert gatt.decode(BATTERY, bytes(await c1.read_gatt_char(BATTERY))).percent == 95

            def keep(address: str, char: str) -> Callable[[object, bytearray], None]:
                return lambda _c, data: out[address].setdefault(char, []).append(bytes(data))

            replies: list[bytes] = []
            await c1.start_notify(PMD_CONTROL_POINT, lambda _c, d: replies.append(bytes(d)))
            await c1.start_notify(HR, keep(STRAP, HR))
            await c1.start_notify(PMD_DATA, keep(STRAP, PMD_DATA))
            await c2.start_notify(PLX, keep(OXIMETER, PLX))
            # Write with and without response; the PMD answers both by indication.
            await c1.write_gatt_char(PMD_CONTROL_POINT, gatt.encode(gatt.PmdGetSettings()), False)
            await c1.write_gatt_char(
                PMD_CONTROL_POINT, gatt.encode(gatt.PmdStartMeasurement()), True
            )
            await asyncio.sleep(2.2)
            await c1.stop_notify(HR)
            n_hr = len(out[STRAP][HR])
            await asyncio.sleep(1.1)
            assert len(out[STRAP][HR]) == n_hr  # stop_notify wrote the CCCD: no more HR
            ops = [gatt.decode(PMD_CONTROL_POINT, r).op_code for r in replies]
            assert ops[:2] == [1, 2] and all(gatt.decode(PMD_CONTROL_POINT, r).ok for r in replies)
    finally:
        await backend.close()
    return out


def test_bad_spec_and_unreachable_transport_raise_a_technical_alarm() -> None:
    with pytest.raises(BleSpecError):
        parse_ble_spec("bumble:tcp-client:localhost")
    with pytest.raises(BleSpecError):
        BleSource(RecordingSink(), backend="bluetooth-please")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sink = RecordingSink()
    source = BleSource(sink, signal_loss_s=1.0, backend=f"bumble:tcp-client:127.0.0.1:{port}")
    try:
        with pytest.raises(BleakError, match="unreachable"):
            source.scan(timeout_s=0.5).result(10)
        source.assign("bed-9", STRAP)
        wait_for(lambda: ConnectionState.SIGNAL_LOSS in sink.state_names(STRAP), 5, "signal loss")
        details = [s.detail for _, s in sink.states]
        assert any("unreachable" in d for d in details), details
    finally:
        t0 = time.monotonic()
        source.stop()
        assert time.monotonic() - t0 < 5
