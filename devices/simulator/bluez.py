"""A fake ``org.bluez`` on a private bus: bleak's own BlueZ backend drives the wearables.

:class:`FakeBluez` owns the adapter and one :class:`VirtualDevice` per wearable. It
behaves the way ``bluetoothd`` is seen to behave by a BlueZ client
(FIELD-NOTES.md):

* devices are reported while discovery runs by RSSI updates on ``Device1``;
* ``Connect`` sets ``Connected``, exports the GATT objects, then sets
  ``ServicesResolved``; ``le-connection-abort-by-local`` is answered only after
  ``Connected`` has flipped True→False, as BlueZ does;
* link loss emits ``ServicesResolved: false``, then ``Connected: false``, removes
  the GATT objects and closes AcquireNotify sockets;
* notifications are cut to MTU−3 bytes; the PMD response is indicated after the
  write response.

Everything runs on one asyncio loop (the simulator's), never the app's.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import time
from typing import Final

from dbus_fast import BusType, DBusError, Message, RequestNameReply
from dbus_fast.aio import MessageBus

from devices.simulator.bluez_objects import (
    ERROR_FAILED,
    Adapter1,
    Device1,
    GattCharacteristic1,
    GattService1,
)
from devices.simulator.hosting import HostedWearable
from devices.simulator.models import Wearable, make_wearable
from devices.simulator.scenario import Scenario

logger = logging.getLogger(__name__)

BLUEZ_NAME: Final = "org.bluez"
ADAPTER_PATH: Final = "/org/bluez/hci0"
ADVERTISING_INTERVAL_S: Final = 0.25
CONNECT_LATENCY_S: Final = 0.03


class VirtualDevice(HostedWearable):
    """One wearable on the fake adapter: its D-Bus objects and link state."""

    def __init__(self, host: FakeBluez, model: Wearable) -> None:
        super().__init__(model)
        self.host = host
        self.adapter_path = ADAPTER_PATH
        self.path = f"{ADAPTER_PATH}/dev_{model.address.replace(':', '_')}"
        self.iface = Device1(self)
        self._connected = False
        self.services_resolved = False
        self.rssi = model.spec.rssi_dbm
        self.chars: dict[str, GattCharacteristic1] = {}
        self._exported: list[str] = []
        self._acquired: dict[str, tuple[socket.socket, int]] = {}

    # -- link ----------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected

    def _emit(self, name: str, value: bool) -> None:
        if name == "Connected":
            self._connected = value
        elif name == "ServicesResolved":
            self.services_resolved = value
        self.iface.emit_properties_changed({name: value})

    async def connect(self) -> None:
        """``Device1.Connect`` with the scripted refusals and aborts."""
        if self.connected:
            return
        wait = self.hidden_until - time.time()
        if wait > 0:
            # A device that is not advertising cannot be connected to until it is.
            await asyncio.sleep(min(wait, 5.0))
        refusal = self.take_refusal()
        if refusal == "refused":
            await asyncio.sleep(0.1)
            self.refusal_delivered()
            raise DBusError(ERROR_FAILED, "Software caused connection abort")
        if refusal is not None:
            # BlueZ really connected before cancelling: clients wait for the flip.
            self._emit("Connected", True)
            await asyncio.sleep(0.02)
            self._emit("Connected", False)
            self.refusal_delivered()
            raise DBusError(ERROR_FAILED, "le-connection-abort-by-local")
        await asyncio.sleep(CONNECT_LATENCY_S)
        self._emit("Connected", True)
        self._export_gatt()
        self._emit("ServicesResolved", True)
        self.on_connected()

    async def disconnect(self) -> None:
        """``Device1.Disconnect`` from the client."""
        if self.connected:
            self._drop_link("disconnect")

    def _drop_link(self, why: str) -> None:
        self._emit("ServicesResolved", False)
        self._emit("Connected", False)
        self._unexport_gatt()
        for char in list(self._acquired):
            self._release(char)
        self.on_link_down(why)

    # -- GATT objects ---------------------------------------------------------

    def _export_gatt(self) -> None:
        bus = self.host.bus
        handle = 0x000A
        for service_uuid, chars in self.model.services.items():
            service_path = f"{self.path}/service{handle:04x}"
            bus.export(service_path, GattService1(service_uuid, self.path, handle))
            self._exported.append(service_path)
            handle += 1
            for spec in chars:
                char_path = f"{service_path}/char{handle:04x}"
                char = GattCharacteristic1(self, spec.uuid, service_path, spec.flags, handle)
                bus.export(char_path, char)
                self.chars[spec.uuid] = char
                self._exported.append(char_path)
                handle += 2  # value handle + CCCD, as a real table would
            handle += 1

    def _unexport_gatt(self) -> None:
        for path in reversed(self._exported):
            self.host.bus.unexport(path)
        self._exported.clear()
        self.chars.clear()

    def read(self, char: str) -> bytes:
        return self._cut(self.model.read(char, time.time()))

    def write(self, char: str, data: bytes) -> None:
        indications = self.model.write(char, data, time.time())
        if indications:
            # The indication must follow the write response, as a sensor's does.
            asyncio.get_running_loop().call_later(0.005, self.send_all, indications)

    def subscription_changed(self, char: str, on: bool) -> None:
        if on:
            self.subscribed.add(char)
        else:
            self.subscribed.discard(char)

    def acquire_notify(self, char: str) -> int:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ours.setblocking(False)
        # Keep our copy of the client's end until teardown: closing it before
        # dbus-fast has sent the reply would hand the client a dead descriptor.
        self._acquired[char] = (ours, theirs.detach())
        self.subscribed.add(char)
        return self._acquired[char][1]

    def _release(self, char: str) -> None:
        ours, theirs = self._acquired.pop(char)
        ours.close()
        with contextlib.suppress(OSError):
            socket.close(theirs)
        self.subscribed.discard(char)
        if char in self.chars:
            self.chars[char].released()

    # -- streaming ----------------------------------------------------------

    def _cut(self, payload: bytes) -> bytes:
        return payload[: self.model.spec.mtu - 3]

    def _deliver(self, char: str, payload: bytes) -> None:
        payload = self._cut(payload)
        acquired = self._acquired.get(char)
        if acquired is not None:
            try:
                acquired[0].send(payload)
            except BlockingIOError:
                self.counters["dropped_full"] += 1
            except OSError:
                self._release(char)
            return
        iface = self.chars.get(char)
        if iface is not None:
            iface.notify(payload)


class FakeBluez:
    """The fake ``bluetoothd``: adapter ``hci0`` and the scenario's wearables.

    Parameters
    ----------
    scenario
        The devices and their faults.
    bus_address
        Address of the private bus (``unix:path=…``).
    """

    def __init__(self, scenario: Scenario, bus_address: str) -> None:
        self.scenario = scenario
        self.bus_address = bus_address
        self.bus: MessageBus = None  # type: ignore[assignment]  (set by start)
        self.adapter = Adapter1(self)
        self.devices: dict[str, VirtualDevice] = {}
        self._discovery_sessions = 0
        self._filter_uuids: set[str] = set()
        self._advertiser: asyncio.Task[None] | None = None

    @property
    def discovering(self) -> bool:
        return self._discovery_sessions > 0

    async def start(self) -> None:
        """Connect to the bus, own ``org.bluez`` and export the adapter and devices."""
        self.bus = await MessageBus(
            bus_address=self.bus_address, bus_type=BusType.SYSTEM, negotiate_unix_fd=True
        ).connect()
        reply = await self.bus.request_name(BLUEZ_NAME)
        if reply != RequestNameReply.PRIMARY_OWNER:
            raise RuntimeError(f"could not own {BLUEZ_NAME}: {reply}")
        self.bus.export(ADAPTER_PATH, self.adapter)
        now = time.time()
        for spec in self.scenario.devices:
            dev = VirtualDevice(self, make_wearable(spec, now))
            self.devices[spec.address] = dev
            self.bus.export(dev.path, dev.iface)
        logger.info("fake BlueZ serving %d device(s)", len(self.devices))

    async def stop(self) -> None:
        """Drop every link and leave the bus."""
        if self._advertiser is not None:
            self._advertiser.cancel()
        for dev in self.devices.values():
            dev.stop()
        if self.bus is not None and self.bus.connected:
            # Let the last signals leave before the socket closes.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._ping(), 1.0)
            self.bus.disconnect()

    async def _ping(self) -> None:
        await self.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus.Peer",
                member="Ping",
            )
        )

    # -- adapter -----------------------------------------------------------------

    def start_discovery(self) -> None:
        self._discovery_sessions += 1
        if self._discovery_sessions == 1:
            self.adapter.emit_properties_changed({"Discovering": True})
            self._advertiser = asyncio.get_running_loop().create_task(self._advertise())

    def stop_discovery(self) -> bool:
        if self._discovery_sessions == 0:
            return False
        self._discovery_sessions -= 1
        if self._discovery_sessions == 0:
            if self._advertiser is not None:
                self._advertiser.cancel()
                self._advertiser = None
            self._filter_uuids.clear()
            self.adapter.emit_properties_changed({"Discovering": False})
        return True

    def set_discovery_filter(self, uuids: list[str]) -> None:
        self._filter_uuids = set(uuids)

    def remove_device(self, path: str) -> None:
        # Devices stay known to this adapter; a removed one is simply re-reported.
        for dev in self.devices.values():
            if dev.path == path and dev.connected:
                dev.link_loss()

    async def _advertise(self) -> None:
        """While discovering, report each advertising device by an RSSI update."""
        rng = random.Random(self.scenario.seed)
        while True:
            for dev in self.devices.values():
                if not dev.advertising:
                    continue
                uuids = set(dev.model.advertised_uuids)
                if self._filter_uuids and not (uuids & self._filter_uuids):
                    continue
                dev.rssi = dev.model.spec.rssi_dbm + rng.randint(-3, 3)
                dev.iface.emit_properties_changed({"RSSI": dev.rssi})
            await asyncio.sleep(ADVERTISING_INTERVAL_S)

    # -- hooks for tests and scenarios ------------------------------------------------

    def device(self, address: str) -> VirtualDevice:
        return self.devices[address.upper()]

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-device counters (notifications, connects, refusals, malformed sent …)."""
        return {a: dict(d.counters) for a, d in self.devices.items()}
