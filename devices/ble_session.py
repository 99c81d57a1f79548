"""One wearable assigned to a bed: connect, subscribe, decode, deliver, reconnect forever.

Everything here runs on the BLE thread (:mod:`devices.ble_runtime`). A
:class:`DeviceSession` keeps its per-device stream state (sample counters, last
sensor timestamp, RR bookkeeping) across reconnects, so data lost while the link
was down shows up as ``SampleBlock.gap_before`` on the first block after it.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from typing import Any, Final

import numpy as np
from bleak import BleakClient
from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.device import BLEDevice
from bleak_retry_connector import BleakClientWithServiceCache, establish_connection, get_device

from devices import gatt
from devices.ble_backend import BleBackend
from devices.frames import (
    ECG_LEAD_I,
    ConnectionState,
    DeviceState,
    Numeric,
    SampleBlock,
    SourceSink,
)
from devices.gatt_pmd import PMD_CONTROL_POINT, PMD_DATA, PMD_EPOCH

logger = logging.getLogger(__name__)

ECG_FS_HZ: Final = 130.0
#: Stream of RR intervals: one sample per beat, in seconds, irregularly spaced (fs 0).
RR_STREAM: Final = "rr"
_PMD_EPOCH_UNIX: Final = PMD_EPOCH.timestamp()
_U = gatt.full_uuid
HR: Final = _U(gatt.HEART_RATE_MEASUREMENT)
BATTERY: Final = _U(gatt.BATTERY_LEVEL)
PLX_CONT: Final = _U(gatt.PLX_CONTINUOUS)
PLX_SPOT: Final = _U(gatt.PLX_SPOT_CHECK)
TEMP: Final = _U(gatt.TEMPERATURE_MEASUREMENT)
BP: Final = _U(gatt.BLOOD_PRESSURE_MEASUREMENT)
#: Characteristics that stream continuously; silence on them means signal loss.
STREAMING_CHARS: Final = frozenset({HR, PLX_CONT, PMD_DATA})
PMD_RESPONSE_TIMEOUT_S: Final = 3.0


class Backoff:
    """Reconnect delays: doubling from ``first_s`` up to ``max_s``, forever."""

    def __init__(self, first_s: float = 0.25, max_s: float = 2.0) -> None:
        self.first_s, self.max_s = first_s, max_s
        self.next_s = first_s

    def take(self) -> float:
        delay = self.next_s
        self.next_s = min(self.next_s * 2, self.max_s)
        return delay

    def reset(self) -> None:
        self.next_s = self.first_s


class DeviceSession:
    """A device's life on the BLE loop.

    Parameters
    ----------
    address
        The wearable's Bluetooth address.
    bed_id
        The bed it is assigned to.
    sink
        Where data goes; called on the BLE thread.
    accepts
        ``accepts(bed_id, address)``: still assigned? Checked for every delivery,
        so a bed never gets data from a device that is no longer its own.
    signal_loss_s
        Silence (on streaming characteristics) or link down time after which the
        session reports :attr:`ConnectionState.SIGNAL_LOSS`.
    backoff
        Delays between reconnect attempts.
    backend
        The bleak backend (:mod:`devices.ble_backend`); bleak's platform backend
        when not given.
    """

    def __init__(
        self,
        address: str,
        bed_id: str,
        sink: SourceSink,
        accepts: Callable[[str, str], bool],
        signal_loss_s: float = 8.0,
        backoff: Backoff | None = None,
        backend: BleBackend | None = None,
    ) -> None:
        self.address = address.upper()
        self.backend = backend or BleBackend()
        self.bed_id = bed_id
        self.sink = sink
        self.accepts = accepts
        self.signal_loss_s = signal_loss_s
        self.backoff = backoff or Backoff()
        self.state = ConnectionState.DISCONNECTED
        self.counters: dict[str, int] = {"malformed": 0, "gaps": 0, "reconnects": 0, "connects": 0}
        self.client: BleakClient | None = None
        self.subscribed: list[str] = []
        self.name = ""
        self._task: asyncio.Task[None] | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._link_down = asyncio.Event()
        self._stopping = False
        self._last_data = time.monotonic()
        self._streams_data = False
        self._reported_malformed = 0
        self._pmd_response: asyncio.Future[gatt.PmdControlResponse] | None = None
        # stream bookkeeping, kept across reconnects
        self._ecg_next_index = 0
        self._ecg_last_ns: int | None = None
        self._rr_index = 0
        self._rr_debt_s = 0.0
        self._rr_gap_pending = False
        self._last_hr_mono: float | None = None
        self._last_rr_s = 1.0

    # -- life -------------------------------------------------------------------

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=f"ble {self.address}")
        self._watchdog = asyncio.get_running_loop().create_task(
            self._watch(), name=f"watch {self.address}"
        )

    async def _run(self) -> None:
        first = True
        while not self._stopping:
            self._set_state(ConnectionState.CONNECTING if first else self._down_state(), "")
            try:
                await self._connect_and_subscribe()
                first = False
                self.backoff.reset()
                await self._link_down.wait()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # every failure leads to another try
                logger.info("%s: connection attempt failed: %s", self.address, exc)
                self._set_state(self._down_state(), f"{type(exc).__name__}: {exc}"[:200])
            finally:
                await self._drop_client()
            if self._stopping:
                break
            self.counters["reconnects"] += 1
            await asyncio.sleep(self.backoff.take())

    def _down_state(self) -> ConnectionState:
        if self.state == ConnectionState.SIGNAL_LOSS:
            return ConnectionState.SIGNAL_LOSS  # the alarm stays until data returns
        return ConnectionState.RECONNECTING

    async def _find(self) -> BLEDevice:
        await self.backend.ready()
        # bleak-retry-connector's get_device asks BlueZ over D-Bus: other backends scan.
        device = await get_device(self.address) if self.backend.uses_bluez else None
        if device is None:
            from bleak import BleakScanner  # noqa: PLC0415

            device = await BleakScanner.find_device_by_address(
                self.address, timeout=5.0, **self.backend.scanner_kwargs()
            )
        if device is None:
            raise LookupError(f"{self.address} not found")
        return device

    async def _connect_and_subscribe(self) -> None:
        device = await self._find()
        self.name = device.name or self.name
        self._link_down.clear()
        client = await establish_connection(
            BleakClientWithServiceCache,
            device,
            self.name or self.address,
            disconnected_callback=self._on_disconnected,
            max_attempts=2,
            **self.backend.client_kwargs(),
        )
        self.client = client
        self.counters["connects"] += 1
        await self._subscribe(client)
        self._last_data = time.monotonic()
        self._set_state(ConnectionState.STREAMING, self.name)

    def _on_disconnected(self, _client: BleakClient) -> None:
        """bleak's disconnected callback (BLE thread)."""
        self._link_down.set()
        fut = self._pmd_response
        if fut is not None and not fut.done():
            # The start's indication will never come: fail now, not at the timeout.
            fut.set_exception(ConnectionError("link lost while starting PMD streaming"))

    async def _subscribe(self, client: BleakClient) -> None:
        chars = {c.uuid.lower(): c for c in client.services.characteristics.values()}
        self.subscribed = []
        self._streams_data = bool(STREAMING_CHARS & chars.keys())
        handlers: list[tuple[str, Callable[[bytes], None]]] = [
            (HR, self._on_hr),
            (PLX_CONT, self._on_plx),
            (PLX_SPOT, self._on_plx),
            (TEMP, self._on_temperature),
            (BP, self._on_bp),
            (BATTERY, self._on_battery),
        ]
        for uuid, handler in handlers:
            char = chars.get(uuid)
            if char is None:
                continue
            if uuid == BATTERY and "read" in char.properties:
                self._safe(uuid, handler, bytes(await client.read_gatt_char(char)))
            if {"notify", "indicate"} & set(char.properties):
                await client.start_notify(char, self._callback(uuid, handler))
                self.subscribed.append(uuid)
        if PMD_CONTROL_POINT in chars and PMD_DATA in chars:
            await self._start_pmd(client, chars[PMD_CONTROL_POINT], chars[PMD_DATA])

    async def _start_pmd(
        self, client: BleakClient, cp: BleakGATTCharacteristic, data: BleakGATTCharacteristic
    ) -> None:
        await client.start_notify(cp, self._callback(PMD_CONTROL_POINT, self._on_pmd_response))
        self.subscribed.append(PMD_CONTROL_POINT)
        # AcquireNotify: frames arrive on a socket, not as D-Bus signals.
        await client.start_notify(
            data, self._callback(PMD_DATA, self._on_ecg), bluez={"use_start_notify": False}
        )
        self.subscribed.append(PMD_DATA)
        self._pmd_response = asyncio.get_running_loop().create_future()
        await client.write_gatt_char(cp, gatt.encode(gatt.PmdStartMeasurement()), response=True)
        reply = await asyncio.wait_for(self._pmd_response, PMD_RESPONSE_TIMEOUT_S)
        if not reply.ok and reply.status != gatt.PmdStatus.ALREADY_IN_STATE:
            raise RuntimeError(f"PMD start refused: {reply.status_name}")

    async def _drop_client(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        try:
            await asyncio.wait_for(client.disconnect(), 5.0)
        except Exception as exc:
            logger.debug("%s: disconnect after drop: %s", self.address, exc)

    async def stop(self) -> None:
        """Shutdown order for one device: stop notifications → disconnect → end tasks."""
        self._stopping = True
        client = self.client
        if client is not None and client.is_connected:
            try:
                if PMD_DATA in self.subscribed:
                    cp = client.services.get_characteristic(PMD_CONTROL_POINT)
                    if cp is not None:
                        await asyncio.wait_for(
                            client.write_gatt_char(
                                cp, gatt.encode(gatt.PmdStopMeasurement()), True
                            ),
                            2.0,
                        )
                for uuid in reversed(self.subscribed):
                    await asyncio.wait_for(client.stop_notify(uuid), 2.0)
            except Exception as exc:
                logger.info("%s: stopping notifications: %s", self.address, exc)
        self.subscribed = []
        await self._drop_client()
        for task in (self._task, self._watchdog):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        self._set_state(ConnectionState.DISCONNECTED, "stopped")

    # -- state ------------------------------------------------------------------

    def _set_state(self, state: ConnectionState, detail: str) -> None:
        if state == self.state and detail == "":
            return
        self.state = state
        self._emit_state(detail)

    def _emit_state(self, detail: str = "") -> None:
        self._reported_malformed = self.counters["malformed"]
        snapshot = DeviceState(
            self.address, self.state, detail, time.monotonic(), dict(self.counters)
        )
        try:
            self.sink.on_state(self.bed_id, snapshot)
        except Exception:
            logger.exception("%s: sink.on_state failed", self.address)

    async def _watch(self) -> None:
        """Signal loss within ``signal_loss_s`` (+0.5 s) of the last sample; counter updates."""
        while True:
            await asyncio.sleep(0.5)
            silent = time.monotonic() - self._last_data
            link_down = self.client is None or not self.client.is_connected
            watched = self._streams_data or link_down
            if (
                watched
                and silent > self.signal_loss_s
                and self.state != ConnectionState.SIGNAL_LOSS
            ):
                self._set_state(ConnectionState.SIGNAL_LOSS, f"no data for {silent:.1f} s")
            elif self.counters["malformed"] != self._reported_malformed:
                self._emit_state("malformed packets dropped")

    def _got_data(self) -> None:
        self._last_data = time.monotonic()
        if self.state == ConnectionState.SIGNAL_LOSS and self.client is not None:
            self._set_state(ConnectionState.STREAMING, "data resumed")

    # -- decoding and delivery ---------------------------------------------------------

    def _callback(
        self, uuid: str, handler: Callable[[Any], None]
    ) -> Callable[[Any, bytearray], None]:
        def on_notify(_char: Any, data: bytearray) -> None:
            self._safe(uuid, handler, bytes(data))

        return on_notify

    def _safe(self, uuid: str, handler: Callable[[Any], None], payload: bytes) -> None:
        """Decode and deliver one value; a bad packet is counted, never raised."""
        if not self.accepts(self.bed_id, self.address):
            self.counters["unassigned"] = self.counters.get("unassigned", 0) + 1
            return
        try:
            record = gatt.decode(uuid, payload)
        except gatt.GattDecodeError as exc:
            self.counters["malformed"] += 1
            logger.debug("%s: malformed %s: %s", self.address, uuid, exc)
            return
        try:
            handler(record)
        except Exception:
            self.counters["errors"] = self.counters.get("errors", 0) + 1
            logger.exception("%s: handling %s failed", self.address, uuid)

    def _numeric(self, name: str, value: float | None, units: str) -> None:
        v = math.nan if value is None else float(value)
        self.sink.on_numeric(self.bed_id, Numeric(name, v, units, time.time(), self.address))

    def _on_ecg(self, frame: gatt.PmdEcgFrame) -> None:
        n = len(frame.samples_uv)
        period_ns = 1e9 / ECG_FS_HZ
        first_ns = frame.timestamp_ns - (n - 1) * period_ns
        gap = False
        if self._ecg_last_ns is not None:
            lost = (first_ns - self._ecg_last_ns) / period_ns - 1.0
            if abs(lost) > 1.5:
                gap = True
                self.counters["gaps"] += 1
                if lost > 0:
                    # Keep the counter in step with time: skip the samples never received.
                    self._ecg_next_index += min(round(lost), int(3600 * ECG_FS_HZ))
        self._ecg_last_ns = frame.timestamp_ns
        samples = np.asarray(frame.samples_uv, dtype=np.float32) / 1000.0
        block = SampleBlock(
            stream=ECG_LEAD_I,
            fs_hz=ECG_FS_HZ,
            first_index=self._ecg_next_index,
            t0_s=_PMD_EPOCH_UNIX + first_ns / 1e9,
            samples=samples,
            units="mV",
            gap_before=gap,
        )
        self._ecg_next_index += n
        self._got_data()
        self.sink.on_block(self.bed_id, block)

    def _on_hr(self, m: gatt.HeartRateMeasurement) -> None:
        now = time.monotonic()
        contact = m.sensor_contact is not False
        self._numeric("hr", float(m.bpm) if contact and m.bpm > 0 else None, "bpm")
        rr = m.rr_intervals_s
        if self._last_hr_mono is not None:
            # Beats not covered by RR intervals show up as wall time the RR sum misses;
            # in a clean stream the running difference (floored at 0, since the first
            # notification carries beats from before it) stays within about one RR.
            self._rr_debt_s = max(0.0, self._rr_debt_s + (now - self._last_hr_mono) - sum(rr))
            if self._rr_debt_s > 0.5 + 1.5 * self._last_rr_s:
                # Marked on the next RR block, which may be a few notifications away.
                self._rr_gap_pending = True
                self.counters["gaps"] += 1
                self._rr_debt_s = 0.0
        self._last_hr_mono = now
        self._got_data()
        if rr:
            self._last_rr_s = rr[-1]
            block = SampleBlock(
                stream=RR_STREAM,
                fs_hz=0.0,
                first_index=self._rr_index,
                t0_s=time.time() - sum(rr),
                samples=np.asarray(rr, dtype=np.float32),
                units="s",
                gap_before=self._rr_gap_pending,
            )
            self._rr_gap_pending = False
            self._rr_index += len(rr)
            self.sink.on_block(self.bed_id, block)

    def _on_plx(self, m: gatt.PlxContinuous | gatt.PlxSpotCheck) -> None:
        self._got_data()
        self._numeric("spo2", m.spo2, "%")
        self._numeric("pulse", m.pulse_rate, "bpm")

    def _on_temperature(self, m: gatt.TemperatureMeasurement) -> None:
        self._got_data()
        self._numeric("temp", m.celsius, "°C")

    def _on_bp(self, m: gatt.BloodPressureMeasurement) -> None:
        self._got_data()
        self._numeric("nibp_sys", m.systolic_mmhg, "mmHg")
        self._numeric("nibp_dia", m.diastolic_mmhg, "mmHg")
        self._numeric("nibp_mean", m.mean_mmhg, "mmHg")

    def _on_battery(self, m: gatt.BatteryLevel) -> None:
        self._numeric("battery", m.percent, "%")

    def _on_pmd_response(self, r: Any) -> None:
        if isinstance(r, gatt.PmdControlResponse) and r.op_code == 2:
            fut = self._pmd_response
            if fut is not None and not fut.done():
                fut.set_result(r)
