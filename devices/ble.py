"""Bluetooth LE wearables as a Vigil data source (bleak, BlueZ backend; Qt-free).

The app owns one :class:`BleSource` for its lifetime. It scans for health
wearables, assigns them to beds (several per bed: chest strap, oximeter,
thermometer, BP cuff), keeps each one connected forever with back-off, and
delivers decoded data to a :class:`~devices.frames.SourceSink` on the BLE thread:

* ``on_block``: ECG stream ``"ecg"`` in mV at 130 Hz (Polar PMD), and RR intervals
  as stream ``"rr"`` (one sample per beat, seconds, ``fs_hz == 0``); a block after
  lost data has ``gap_before`` set (from PMD sensor timestamps, or from RR sums
  falling behind the wall clock);
* ``on_numeric``: ``hr``, ``spo2``, ``pulse``, ``temp``, ``nibp_sys``/``_dia``/``_mean``,
  ``battery``;
* ``on_state``: :class:`~devices.frames.DeviceState` on every connection change,
  ``SIGNAL_LOSS`` within ``signal_loss_s`` + 0.5 s of the last sample, and when
  the ``malformed`` / ``gaps`` / ``reconnects`` counters move.

Typical use from the GUI thread::

    source = BleSource(sink)                 # starts the BLE thread
    fut = source.scan(timeout_s=4)           # concurrent.futures.Future[list[FoundDevice]]
    source.assign("bed-3", "C0:DE:00:01:00:01")
    ...
    source.stop()                            # at exit; see "Shutdown order"

The bleak backend is bleak's platform backend unless ``backend`` says otherwise
(:mod:`devices.ble_backend`): ``BleSource(sink, backend="bumble:tcp-client:127.0.0.1:PORT")``
runs the same sessions on Vigil's bleak backend on Bumble (:mod:`devices.ble_bumble`).

Shutdown order (tested in tests/devices/test_ble_integration.py and test_ble_bumble.py):

1. stop PMD streaming and every notification on every device (``stop_notify``);
2. disconnect every client and wait for bleak's disconnected callback;
3. cancel the device tasks and watchdogs and wait for them;
4. close the backend's transport (the Bumble HCI transport; nothing for the platform);
5. stop the event loop and join the BLE thread (only if this source started it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from dataclasses import dataclass
from typing import Final

from bleak import BleakScanner

from devices import gatt
from devices.ble_backend import BackendSpec, BleBackend, make_backend
from devices.ble_runtime import BleRuntime
from devices.ble_session import Backoff, DeviceSession
from devices.frames import ConnectionState, DeviceState, SourceSink
from devices.gatt_pmd import PMD_SERVICE

logger = logging.getLogger(__name__)

#: Services a bed can use: heart rate, pulse oximeter, thermometer, blood pressure, Polar PMD.
HEALTH_SERVICES: Final = (
    gatt.full_uuid(gatt.HEART_RATE_SERVICE),
    gatt.full_uuid(gatt.PULSE_OXIMETER_SERVICE),
    gatt.full_uuid(gatt.HEALTH_THERMOMETER_SERVICE),
    gatt.full_uuid(gatt.BLOOD_PRESSURE_SERVICE),
    PMD_SERVICE,
)
_KIND_BY_SERVICE: Final = (
    (PMD_SERVICE, "chest_strap"),
    (gatt.full_uuid(gatt.HEART_RATE_SERVICE), "chest_strap"),
    (gatt.full_uuid(gatt.PULSE_OXIMETER_SERVICE), "pulse_oximeter"),
    (gatt.full_uuid(gatt.HEALTH_THERMOMETER_SERVICE), "thermometer"),
    (gatt.full_uuid(gatt.BLOOD_PRESSURE_SERVICE), "bp_cuff"),
)


@dataclass(frozen=True, slots=True)
class FoundDevice:
    """A wearable seen while scanning, for the device picker.

    Parameters
    ----------
    address
        Bluetooth address (what :meth:`BleSource.assign` takes).
    name
        Advertised name, or ``""``.
    rssi_dbm
        Signal strength of the last advertisement.
    services
        Advertised service UUIDs (128-bit, lower case).
    kind
        ``"chest_strap"``, ``"pulse_oximeter"``, ``"thermometer"``, ``"bp_cuff"``
        or ``"unknown"``, from the services.
    """

    address: str
    name: str
    rssi_dbm: int
    services: tuple[str, ...]
    kind: str


def kind_of(services: tuple[str, ...] | list[str]) -> str:
    """What sort of wearable advertises these services."""
    lowered = {s.lower() for s in services}
    return next((k for uuid, k in _KIND_BY_SERVICE if uuid in lowered), "unknown")


async def scan_devices(
    timeout_s: float = 4.0,
    services: tuple[str, ...] = HEALTH_SERVICES,
    backend: BleBackend | None = None,
) -> list[FoundDevice]:
    """Scan (on the BLE loop) for wearables advertising any of ``services``; strongest first."""
    backend = backend or BleBackend()
    await backend.ready()
    found = await BleakScanner.discover(
        timeout=timeout_s,
        service_uuids=list(services),
        return_adv=True,
        **backend.scanner_kwargs(),
    )
    out = [
        FoundDevice(
            address=dev.address.upper(),
            name=adv.local_name or dev.name or "",
            rssi_dbm=adv.rssi,
            services=tuple(s.lower() for s in adv.service_uuids),
            kind=kind_of(adv.service_uuids),
        )
        for dev, adv in found.values()
    ]
    return sorted(out, key=lambda d: -d.rssi_dbm)


class BleSource:
    """All BLE wearables of the workstation.

    Parameters
    ----------
    sink
        Receives data and states; called on the BLE thread.
    runtime
        The app's :class:`BleRuntime`; one is created and started if not given
        (and then stopped by :meth:`stop`).
    signal_loss_s
        Silence after which a device reports ``SIGNAL_LOSS`` (≤ 9.5 keeps the
        technical alarm within IEC 60601-2-27's 10 s).
    backoff_max_s
        Longest wait between reconnect attempts.
    backend
        Which bleak backend: a :class:`~devices.ble_backend.BackendSpec` or its text
        (``"bumble:tcp-client:127.0.0.1:PORT"``); bleak's platform backend when not
        given. A Bumble transport is opened on first use, not here.

    Raises
    ------
    devices.ble_backend.BleSpecError
        For a ``backend`` text that names no backend.

    Notes
    -----
    Every public method may be called from any thread; they return
    ``concurrent.futures.Future`` objects or plain values and never block on BLE
    I/O except :meth:`stop`.
    """

    def __init__(
        self,
        sink: SourceSink,
        runtime: BleRuntime | None = None,
        signal_loss_s: float = 8.0,
        backoff_max_s: float = 2.0,
        backend: BackendSpec | str | None = None,
    ) -> None:
        if signal_loss_s > 9.5:
            raise ValueError("signal_loss_s above 9.5 s would miss the 10 s technical alarm")
        self.backend = make_backend(backend)
        self.sink = sink
        self._own_runtime = runtime is None
        self.runtime = runtime or BleRuntime()
        self.runtime.start()
        self.signal_loss_s = signal_loss_s
        self.backoff_max_s = backoff_max_s
        self._lock = threading.Lock()
        self._bed_of: dict[str, str] = {}  # address → bed
        self._sessions: dict[str, DeviceSession] = {}  # touched on the BLE thread only
        self._stopped = False

    # -- scanning and assignment ---------------------------------------------------

    def check_backend(self) -> concurrent.futures.Future[None]:
        """Open the backend now (a Bumble transport, say); the future fails if it cannot."""
        return self.runtime.submit(self.backend.ready())

    def scan(self, timeout_s: float = 4.0) -> concurrent.futures.Future[list[FoundDevice]]:
        """Start a scan; the future resolves to the wearables found."""
        return self.runtime.submit(scan_devices(timeout_s, backend=self.backend))

    def assign(self, bed_id: str, address: str) -> concurrent.futures.Future[None]:
        """Attach a wearable to a bed and start keeping it connected.

        Raises
        ------
        ValueError
            If the device is already assigned to another bed.
        """
        address = address.upper()
        with self._lock:
            if self._stopped:
                raise RuntimeError("BleSource is stopped")
            owner = self._bed_of.get(address)
            if owner is not None and owner != bed_id:
                raise ValueError(f"{address} is assigned to {owner}; unassign it first")
            self._bed_of[address] = bed_id
        return self.runtime.submit(self._start_session(bed_id, address))

    async def _start_session(self, bed_id: str, address: str) -> None:
        if address in self._sessions:
            return
        session = DeviceSession(
            address,
            bed_id,
            self.sink,
            self.accepts,
            signal_loss_s=self.signal_loss_s,
            backoff=Backoff(max_s=self.backoff_max_s),
            backend=self.backend,
        )
        self._sessions[address] = session
        session.start()

    def unassign(self, address: str) -> concurrent.futures.Future[None]:
        """Detach a wearable from its bed: its data stops at once, then it is disconnected."""
        address = address.upper()
        with self._lock:
            self._bed_of.pop(address, None)
        return self.runtime.submit(self._stop_session(address))

    async def _stop_session(self, address: str) -> None:
        session = self._sessions.pop(address, None)
        if session is not None:
            await session.stop()

    def accepts(self, bed_id: str, address: str) -> bool:
        """Is ``address`` (still) assigned to ``bed_id``? Data from others is dropped."""
        return self._bed_of.get(address.upper()) == bed_id

    def assignments(self) -> dict[str, tuple[str, ...]]:
        """Bed → addresses of its wearables."""
        with self._lock:
            beds: dict[str, list[str]] = {}
            for address, bed in self._bed_of.items():
                beds.setdefault(bed, []).append(address)
        return {bed: tuple(sorted(a)) for bed, a in beds.items()}

    def device_states(self) -> concurrent.futures.Future[dict[str, DeviceState]]:
        """Current state and counters of every assigned device."""

        async def collect() -> dict[str, DeviceState]:
            return {
                a: DeviceState(a, s.state, s.name, 0.0, dict(s.counters))
                for a, s in self._sessions.items()
            }

        return self.runtime.submit(collect())

    # -- shutdown ----------------------------------------------------------------------

    def stop(self, timeout_s: float = 15.0) -> None:
        """Stop notifications, disconnect, end device tasks, then stop the BLE thread.

        Blocks up to ``timeout_s``; call it from the GUI thread at exit, never from
        the BLE thread.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            self._bed_of.clear()
        if self.runtime.running:
            try:
                self.runtime.call(self._stop_all(), timeout_s)
            except Exception:
                logger.exception("BLE shutdown did not finish cleanly")
        if self._own_runtime:
            self.runtime.stop()

    async def _stop_all(self) -> None:
        sessions = list(self._sessions.values())
        self._sessions.clear()
        results = await asyncio.gather(*(s.stop() for s in sessions), return_exceptions=True)
        for session, result in zip(sessions, results, strict=True):
            if isinstance(result, BaseException):
                logger.error("%s: stop failed: %r", session.address, result)
        await self.backend.close()

    @property
    def stopped(self) -> bool:
        return self._stopped


__all__ = [
    "HEALTH_SERVICES",
    "BackendSpec",
    "BleRuntime",
    "BleSource",
    "ConnectionState",
    "FoundDevice",
    "kind_of",
    "scan_devices",
]
