"""A bleak backend written on Bumble: scan, connect and GATT through a Bumble host.

bleak 3.1 lets ``BleakScanner(backend=…)`` and ``BleakClient(backend=…)`` take a
:class:`~bleak.backends.scanner.BaseBleakScanner` /
:class:`~bleak.backends.client.BaseBleakClient` subclass; it passes its other
keyword arguments on to them. :class:`BumbleBackend` hands both classes a shared
:class:`BumbleHost` that way (keyword ``bumble_host``), so everything above them —
:mod:`devices.ble_session`, bleak-retry-connector — runs unchanged.

One :class:`BumbleHost` per BLE loop: one Bumble ``Device`` (the host stack) on one
HCI transport, opened lazily on first use and closed by
:meth:`devices.ble.BleSource.stop`. Every callback here (advertisements,
notifications, disconnections) is called on the BLE thread, by Bumble's host
reading the transport on that loop.

bleak-retry-connector: ``establish_connection(BleakClientWithServiceCache, device,
name, backend=BumbleClient, bumble_host=host)`` works as is: it passes the extra
keyword arguments (and its own ``_is_retry_client``) to ``BleakClient``; its BlueZ
helpers see a ``BLEDevice`` whose details are not BlueZ's and step aside. Its
``get_device`` (BlueZ's D-Bus) must not be used with this backend; the session
scans instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final, TypeVar

from bleak.backends.characteristic import BleakGATTCharacteristic
from bleak.backends.client import BaseBleakClient, NotifyCallback
from bleak.backends.descriptor import BleakGATTDescriptor
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData, AdvertisementDataCallback, BaseBleakScanner
from bleak.backends.service import BleakGATTService, BleakGATTServiceCollection
from bleak.exc import BleakError
from bumble import hci
from bumble.core import UUID, AdvertisingData
from bumble.device import Advertisement, Connection, Device, Peer
from bumble.gatt import Characteristic
from bumble.transport import open_transport

from devices.ble_backend import BackendSpec, BleBackend

logger = logging.getLogger(__name__)

OPEN_TIMEOUT_S: Final = 5.0
#: Longest wait for a connectable advertisement (the controller allows one pending connect).
CONNECT_TIMEOUT_S: Final = 5.0
#: What Vigil asks for; the wearable's server answers with its own limit (H10: 232).
REQUESTED_MTU: Final = 247
#: The host's own static random address (top two bits set).
HOST_ADDRESS: Final = "F0:0D:5E:C0:00:01"
DISCONNECT_TIMEOUT_S: Final = 5.0
T = TypeVar("T")
_ADV = AdvertisingData.Type
_PROPERTY_NAMES: Final = {
    Characteristic.Properties.BROADCAST: "broadcast",
    Characteristic.Properties.READ: "read",
    Characteristic.Properties.WRITE_WITHOUT_RESPONSE: "write-without-response",
    Characteristic.Properties.WRITE: "write",
    Characteristic.Properties.NOTIFY: "notify",
    Characteristic.Properties.INDICATE: "indicate",
    Characteristic.Properties.AUTHENTICATED_SIGNED_WRITES: "authenticated-signed-writes",
    Characteristic.Properties.EXTENDED_PROPERTIES: "extended-properties",
}


def uuid_text(value: UUID) -> str:
    """A Bumble UUID as bleak writes UUIDs: 128-bit, lower case."""
    return str(uuid.UUID(bytes=bytes(reversed(value.to_bytes(force_128=True)))))


def advertisement_data(adv: Advertisement) -> AdvertisementData:
    """bleak's view of one Bumble advertisement report."""
    name: str | None = None
    services: list[str] = []
    manufacturer: dict[int, bytes] = {}
    service_data: dict[str, bytes] = {}
    tx_power: int | None = None
    for kind, value in adv.data.ad_structures:
        if kind in (_ADV.COMPLETE_LOCAL_NAME, _ADV.SHORTENED_LOCAL_NAME):
            name = value.decode("utf-8", "replace")
        elif kind in (
            _ADV.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
            _ADV.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        ):
            services += [
                uuid_text(UUID.from_bytes(value[i : i + 2])) for i in range(0, len(value) - 1, 2)
            ]
        elif kind in (
            _ADV.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
            _ADV.INCOMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS,
        ):
            services += [
                uuid_text(UUID.from_bytes(value[i : i + 16])) for i in range(0, len(value) - 15, 16)
            ]
        elif kind == _ADV.MANUFACTURER_SPECIFIC_DATA and len(value) >= 2:
            manufacturer[int.from_bytes(value[:2], "little")] = bytes(value[2:])
        elif kind == _ADV.SERVICE_DATA_16_BIT_UUID and len(value) >= 2:
            service_data[uuid_text(UUID.from_bytes(value[:2]))] = bytes(value[2:])
        elif kind == _ADV.TX_POWER_LEVEL and value:
            tx_power = int.from_bytes(value[:1], "little", signed=True)
    return AdvertisementData(
        local_name=name,
        manufacturer_data=manufacturer,
        service_data=service_data,
        # Bumble appends the scan response to the advertisement: fields may repeat.
        service_uuids=list(dict.fromkeys(services)),
        tx_power=tx_power,
        rssi=adv.rssi,
        platform_data=(adv,),
    )


class BumbleHost:
    """The Bumble host stack of one BLE loop, on one HCI transport.

    Parameters
    ----------
    transport
        A Bumble transport name, e.g. ``tcp-client:127.0.0.1:40123``.
    """

    def __init__(self, transport: str) -> None:
        self.transport_name = transport
        self.device: Device | None = None
        self._transport: Any = None
        self._lock = asyncio.Lock()  # created unbound; first used on the BLE loop
        self._connect_lock = asyncio.Lock()
        self._listeners: dict[object, Callable[[Advertisement], None]] = {}
        self._scanning = False
        self.addresses: dict[str, hci.Address] = {}  # "C0:DE:…" → address with its type
        self.clients: set[BumbleClient] = set()

    async def open(self) -> Device:
        """Open the transport and power the host on (once; BLE loop).

        Raises
        ------
        BleakError
            When the transport cannot be opened or the controller does not answer.
        """
        async with self._lock:
            if self.device is not None:
                return self.device
            try:
                transport = await asyncio.wait_for(
                    open_transport(self.transport_name), OPEN_TIMEOUT_S
                )
            except Exception as exc:
                raise BleakError(
                    f"Bumble transport {self.transport_name} unreachable: {exc or type(exc).__name__}"
                ) from exc
            device = Device.with_hci(
                "Vigil", hci.Address(HOST_ADDRESS), transport.source, transport.sink
            )
            device.on("advertisement", self._on_advertisement)
            try:
                await asyncio.wait_for(device.power_on(), OPEN_TIMEOUT_S)
            except Exception as exc:
                await transport.close()
                raise BleakError(
                    f"Bumble controller on {self.transport_name} did not answer: {exc!r}"
                ) from exc
            self._transport = transport
            self.device = device
            transport.source.terminated.add_done_callback(
                lambda _f: self._on_transport_lost(transport)
            )
            logger.info("Bumble host up on %s", self.transport_name)
            return device

    def _on_transport_lost(self, transport: Any) -> None:
        """The controller went away (BLE thread): every link is lost with it."""
        if transport is not self._transport:
            return
        logger.error("Bumble transport %s lost", self.transport_name)
        self.device, self._transport, self._scanning = None, None, False
        for client in list(self.clients):
            client.link_lost(hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)

    async def close(self) -> None:
        """Close the transport (BLE loop; after every client has disconnected)."""
        async with self._lock:
            transport, self._transport, self.device = self._transport, None, None
            self._scanning = False
            if transport is not None:
                with contextlib.suppress(Exception):
                    await transport.close()
                logger.info("Bumble host on %s closed", self.transport_name)

    # -- scanning ------------------------------------------------------------------

    def _on_advertisement(self, adv: Advertisement) -> None:
        self.addresses[adv.address.to_string(False)] = adv.address
        for listener in list(self._listeners.values()):
            listener(adv)

    async def listen(self, token: object, listener: Callable[[Advertisement], None]) -> None:
        """Receive advertisements until :meth:`unlisten`; scanning runs while anyone listens."""
        device = await self.open()
        self._listeners[token] = listener
        if not self._scanning:
            self._scanning = True
            await device.start_scanning(active=True, filter_duplicates=False)

    async def unlisten(self, token: object) -> None:
        self._listeners.pop(token, None)
        if not self._listeners and self._scanning and self.device is not None:
            self._scanning = False
            with contextlib.suppress(Exception):
                await self.device.stop_scanning()

    async def connect(self, address: str, timeout_s: float) -> Connection:
        """Connect to a peripheral (one attempt at a time: the controller allows one)."""
        device = await self.open()
        peer = self.addresses.get(address.upper()) or hci.Address(
            address, hci.Address.RANDOM_DEVICE_ADDRESS
        )
        async with self._connect_lock:
            try:
                return await device.connect(peer, timeout=timeout_s)
            except Exception as exc:
                raise BleakError(
                    f"{address}: no connection within {timeout_s:.1f} s ({exc!r}); device not found?"
                ) from exc


class BumbleScanner(BaseBleakScanner):
    """bleak scanner backend on a :class:`BumbleHost` (keyword ``bumble_host``)."""

    def __init__(
        self,
        detection_callback: AdvertisementDataCallback | None,
        service_uuids: list[str] | None,
        scanning_mode: str = "active",
        *,
        bumble_host: BumbleHost,
        **kwargs: Any,
    ) -> None:
        super().__init__(detection_callback, service_uuids)
        self.host = bumble_host

    async def start(self) -> None:
        self.seen_devices = {}
        await self.host.listen(self, self._on_advertisement)

    async def stop(self) -> None:
        await self.host.unlisten(self)

    def _on_advertisement(self, adv: Advertisement) -> None:
        """Every advertisement report (BLE thread)."""
        data = advertisement_data(adv)
        if not self.is_allowed_uuid(data.service_uuids):
            return
        address = adv.address.to_string(False)
        device = self.create_or_update_device(address, address, data.local_name, adv.address, data)
        self.call_detection_callbacks(device, data)


class BumbleClient(BaseBleakClient):
    """bleak client backend on a :class:`BumbleHost` (keyword ``bumble_host``).

    The disconnected callback is called (BLE thread) when the link ends without
    :meth:`disconnect` having been asked for: link loss, refusal, transport loss.
    """

    def __init__(
        self,
        address_or_ble_device: BLEDevice | str,
        *,
        disconnected_callback: Callable[[], None] | None = None,
        timeout: float = 10.0,
        bumble_host: BumbleHost,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            address_or_ble_device, disconnected_callback=disconnected_callback, timeout=timeout
        )
        self.host = bumble_host
        self._name = (
            address_or_ble_device.name if isinstance(address_or_ble_device, BLEDevice) else None
        )
        self.connection: Connection | None = None
        self.peer: Peer | None = None
        self._lost: asyncio.Future[int] | None = None
        self._leaving = False
        self._subscribers: dict[int, Callable[[bytes], None]] = {}

    @property
    def name(self) -> str:
        return self._name or self.address

    @property
    def mtu_size(self) -> int:
        return self.connection.att_mtu if self.connection is not None else 23

    @property
    def is_connected(self) -> bool:
        return self.connection is not None and self._lost is not None and not self._lost.done()

    # -- connection ------------------------------------------------------------------

    async def connect(self, pair: bool, timeout: float | None = None, **kwargs: Any) -> None:
        if pair:
            logger.warning(
                "%s: pairing is not supported on the Bumble backend; ignored", self.address
            )
        wait_s = min(timeout or self._timeout, self._timeout, CONNECT_TIMEOUT_S)
        connection = await self.host.connect(self.address, wait_s)
        self.connection = connection
        self._lost = asyncio.get_running_loop().create_future()
        self._leaving = False
        self.host.clients.add(self)
        connection.on("disconnection", self.link_lost)
        if connection.device.lookup_connection(connection.handle) is not connection:
            # Refused at once: the link ended before this coroutine resumed.
            self.link_lost(hci.HCI_ErrorCode.CONNECTION_FAILED_TO_BE_ESTABLISHED_ERROR)
        try:
            self.peer = Peer(connection)
            await self._io(self.peer.request_mtu(REQUESTED_MTU))
            await self._io(self.peer.discover_all())
            self.services = self._collect_services(self.peer)
        except BaseException:
            with contextlib.suppress(Exception):
                await self.disconnect()
            raise
        logger.debug("%s: connected, MTU %d", self.address, connection.att_mtu)

    def link_lost(self, reason: int) -> None:
        """Bumble's disconnection event, or the transport going away (BLE thread)."""
        lost = self._lost
        if lost is None or lost.done():
            return
        lost.set_result(reason)
        self.host.clients.discard(self)
        self._subscribers.clear()
        logger.info("%s: link ended: %s", self.address, hci.HCI_Constant.error_name(reason))
        if not self._leaving and self._disconnected_callback is not None:
            self._disconnected_callback()

    async def disconnect(self) -> None:
        connection, lost = self.connection, self._lost
        if connection is None or lost is None or lost.done():
            return
        self._leaving = True
        with contextlib.suppress(Exception):
            await connection.disconnect()
        try:
            await asyncio.wait_for(asyncio.shield(lost), DISCONNECT_TIMEOUT_S)
        except TimeoutError:
            self.link_lost(hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR)

    async def pair(self, *args: Any, **kwargs: Any) -> None:
        raise BleakError("pairing is not supported on Vigil's Bumble backend")

    async def unpair(self) -> None:
        raise BleakError("pairing is not supported on Vigil's Bumble backend")

    async def _io(self, operation: Awaitable[T]) -> T:
        """Await a GATT operation; a link that ends meanwhile raises ``BleakError``.

        Bumble cancels a pending ATT request when the link drops; without this the
        caller would see a ``CancelledError`` that is not its own.
        """
        lost = self._lost
        if lost is None or lost.done():
            if asyncio.iscoroutine(operation):
                operation.close()  # never started: no "never awaited" warning
            raise BleakError(f"{self.address}: not connected")
        task = asyncio.ensure_future(operation)
        try:
            await asyncio.wait({task, lost}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if task.cancelled() or not task.done():
            raise BleakError(f"{self.address}: disconnected during a GATT operation")
        exc = task.exception()
        if exc is not None:
            raise BleakError(f"{self.address}: {exc!r}") from exc
        return task.result()

    def _collect_services(self, peer: Peer) -> BleakGATTServiceCollection:
        collection = BleakGATTServiceCollection()
        for service in peer.services:
            bleak_service = BleakGATTService(service, service.handle, uuid_text(service.uuid))
            collection.add_service(bleak_service)
            for char in service.characteristics:
                props = [n for bit, n in _PROPERTY_NAMES.items() if char.properties & bit]
                bleak_char = BleakGATTCharacteristic(
                    char,
                    char.handle,
                    uuid_text(char.uuid),
                    props,
                    lambda: self.mtu_size - 3,
                    bleak_service,
                )
                collection.add_characteristic(bleak_char)
                for descriptor in char.descriptors:
                    collection.add_descriptor(
                        BleakGATTDescriptor(
                            descriptor, descriptor.handle, uuid_text(descriptor.type), bleak_char
                        )
                    )
        return collection

    # -- GATT ------------------------------------------------------------------------

    def _require_peer(self) -> Peer:
        if self.peer is None or not self.is_connected:
            raise BleakError(f"{self.address}: not connected")
        return self.peer

    async def read_gatt_char(
        self, characteristic: BleakGATTCharacteristic, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._io(peer.read_value(characteristic.obj)))

    async def read_gatt_descriptor(
        self, descriptor: BleakGATTDescriptor, *, use_cached: bool = False, **kwargs: Any
    ) -> bytearray:
        peer = self._require_peer()
        return bytearray(await self._io(peer.read_value(descriptor.obj)))

    async def write_gatt_char(
        self, characteristic: BleakGATTCharacteristic, data: Any, response: bool
    ) -> None:
        peer = self._require_peer()
        await self._io(peer.write_value(characteristic.obj, bytes(data), with_response=response))

    async def write_gatt_descriptor(self, descriptor: BleakGATTDescriptor, data: Any) -> None:
        peer = self._require_peer()
        await self._io(peer.write_value(descriptor.obj, bytes(data), with_response=True))

    async def start_notify(
        self, characteristic: BleakGATTCharacteristic, callback: NotifyCallback, **kwargs: Any
    ) -> None:
        """Subscribe (notifications preferred over indications); ``callback`` runs on the BLE thread."""
        self._require_peer()

        def on_value(value: bytes) -> None:
            callback(bytearray(value))

        await self._io(characteristic.obj.subscribe(on_value, prefer_notify=True))
        self._subscribers[characteristic.handle] = on_value

    async def stop_notify(self, characteristic: BleakGATTCharacteristic) -> None:
        self._require_peer()
        subscriber = self._subscribers.pop(characteristic.handle, None)
        await self._io(characteristic.obj.unsubscribe(subscriber))


class BumbleBackend(BleBackend):
    """:class:`~devices.ble_backend.BleBackend` for a Bumble HCI transport."""

    def __init__(self, spec: BackendSpec) -> None:
        self.spec = spec
        self.host = BumbleHost(spec.transport)

    @property
    def uses_bluez(self) -> bool:
        return False

    async def ready(self) -> None:
        await self.host.open()

    def scanner_kwargs(self) -> dict[str, Any]:
        return {"backend": BumbleScanner, "bumble_host": self.host}

    def client_kwargs(self) -> dict[str, Any]:
        return {"backend": BumbleClient, "bumble_host": self.host}

    async def close(self) -> None:
        await self.host.close()
