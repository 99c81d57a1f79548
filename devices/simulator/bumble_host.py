"""The Bumble host of the simulator: virtual controllers on one link, real ATT/GATT.

Every virtual wearable is a Bumble ``Device`` with its own virtual ``Controller``
on a shared in-process ``LocalLink``; it advertises, accepts connections and serves
its GATT table as a peripheral. One more controller on the same link belongs to the
app: its HCI is served on a TCP port (H4 framing, as ``bumble.apps.controllers``
does), and Vigil's Bumble backend for bleak (:mod:`devices.ble_bumble`) opens it
with ``tcp-client:127.0.0.1:PORT``. Between the two, every byte is a real HCI
command or ACL packet carrying real ATT: MTU exchange, discovery, CCCD writes,
notifications and confirmed indications.

Faults over real ATT (see :mod:`devices.simulator.hosting` for the shared part):

* link loss: both controllers report *Connection Timeout* (0x08), as after a
  supervision timeout, without a goodbye on the link;
* refused reconnects: the wearable accepts, then terminates at once with
  0x14 (*low resources*); ``le_abort_connects`` terminates with 0x3E
  (*connection failed to be established*), what BlueZ reports as
  ``le-connection-abort-by-local``;
* hidden: the wearable stops advertising, so connection attempts time out;
* MTU: the wearable's GATT server negotiates at most ``spec.mtu``, and its ATT
  layer cuts notifications to MTU − 3 bytes;
* malformed packets, contact loss, battery, clock drift: as on every host.

Two changes to the app's virtual controller make it behave like a real one:
*LE Create Connection Cancel* ends the pending connection with a failed
*Connection Complete* (Bumble 0.0.236's controller leaves it pending, so a timed
out connect would hang the host); and when the app's TCP client goes away, its
links drop, so the wearables advertise again for the next app.

RSSI: Bumble's virtual controller reports -50 dBm for every advertisement.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Final

from bumble import gatt, hci
from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData
from bumble.device import (
    AdvertisingEventProperties,
    AdvertisingParameters,
    AdvertisingSet,
    Connection,
    Device,
)
from bumble.link import LocalLink
from bumble.transport.common import PacketParser

from devices import gatt as vigil_gatt
from devices.simulator.hosting import HostedWearable
from devices.simulator.models import Wearable, make_wearable
from devices.simulator.scenario import Scenario

logger = logging.getLogger(__name__)

#: What the app passes to ``--ble`` (and ``VIGIL_BLE``): ``bumble:`` + a Bumble transport.
TRANSPORT_PREFIX: Final = "bumble:"
ADVERTISING_INTERVAL_MS: Final = 100.0
#: The app controller's own address (static random: top two bits set).
APP_CONTROLLER_ADDRESS: Final = "F0:0D:00:00:00:01"
_REFUSAL_REASON: Final = {
    "refused": hci.HCI_ErrorCode.REMOTE_DEVICE_TERMINATED_CONNECTION_DUE_TO_LOW_RESOURCES_ERROR,
    "le-connection-abort-by-local": hci.HCI_ErrorCode.CONNECTION_FAILED_TO_BE_ESTABLISHED_ERROR,
}
#: A refusing wearable ends the link as soon as it is up, before any ATT exchange.
REFUSE_AFTER_S: Final = 0.0
_PROPERTY: Final = {
    "read": gatt.Characteristic.Properties.READ,
    "write": gatt.Characteristic.Properties.WRITE,
    "write-without-response": gatt.Characteristic.Properties.WRITE_WITHOUT_RESPONSE,
    "notify": gatt.Characteristic.Properties.NOTIFY,
    "indicate": gatt.Characteristic.Properties.INDICATE,
}


def _address(text: str) -> hci.Address:
    # Simulator addresses (C0:DE:…) are valid static random addresses.
    return hci.Address(text, hci.Address.RANDOM_DEVICE_ADDRESS)


def _same(a: hci.Address, b: hci.Address) -> bool:
    return a.to_string(False) == b.to_string(False)


class AppController(Controller):
    """The app's virtual controller, with the two fixes described in the module notes."""

    def on_hci_le_create_connection_cancel_command(
        self, _command: hci.HCI_LE_Create_Connection_Cancel_Command
    ) -> hci.HCI_StatusReturnParameters:
        """Vol 4, Part E 7.8.13: cancel, then a Connection Complete with status 0x02."""
        pending = self.pending_le_connection
        if pending is None:
            return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.COMMAND_DISALLOWED_ERROR)
        self.pending_le_connection = None
        failed = hci.HCI_LE_Connection_Complete_Event(
            status=hci.HCI_ErrorCode.UNKNOWN_CONNECTION_IDENTIFIER_ERROR,
            connection_handle=0,
            role=hci.Role.CENTRAL,
            peer_address_type=pending.peer_address_type,
            peer_address=pending.peer_address,
            connection_interval=0,
            peripheral_latency=0,
            supervision_timeout=0,
            central_clock_accuracy=0,
        )
        # After the Command Complete that the caller sends for this return value.
        asyncio.get_running_loop().call_soon(self.send_hci_packet, failed)
        return hci.HCI_StatusReturnParameters(hci.HCI_ErrorCode.SUCCESS)

    def app_gone(self) -> None:
        """The app's host went away: drop its links and forget what it asked for."""
        self.pending_le_connection = None
        self.le_scan_enable = False
        for connection in list(self.le_connections.values()):
            drop_link(self, connection)


def drop_link(controller: Controller, connection: Any) -> None:
    """End a link on both controllers with *Connection Timeout*, as a radio loss does."""
    reason = hci.HCI_ErrorCode.CONNECTION_TIMEOUT_ERROR
    peer = controller.link.find_le_controller(connection.peer_address)
    controller.on_le_disconnected(connection, reason)
    if peer is None:
        return
    for peer_connection in list(peer.le_connections.values()):
        if _same(peer_connection.peer_address, connection.self_address):
            peer.on_le_disconnected(peer_connection, reason)


class _HostSink:
    """Controller → app: H4 packets onto the TCP stream."""

    def __init__(self, transport: asyncio.WriteTransport) -> None:
        self.transport = transport

    def on_packet(self, packet: bytes) -> None:
        if not self.transport.is_closing():
            self.transport.write(packet)


class HciServer:
    """The app controller's HCI on a TCP port; one app at a time."""

    def __init__(self, controller: AppController) -> None:
        self.controller = controller
        self.server: asyncio.Server | None = None
        self.client: asyncio.Transport | None = None
        self.port = 0

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen; returns the port (an ephemeral one when ``port`` is 0)."""
        self.server = await asyncio.get_running_loop().create_server(
            lambda: _HciProtocol(self), host, port
        )
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def stop(self) -> None:
        if self.client is not None:
            self.client.close()
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None


class _HciProtocol(asyncio.Protocol):
    def __init__(self, server: HciServer) -> None:
        self.server = server
        self.parser = PacketParser(server.controller)
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.server.client is not None:
            logger.warning("a second app tried to use the simulator's controller; refused")
            transport.close()
            return
        self.transport = transport
        self.server.client = transport
        self.server.controller.host = _HostSink(transport)
        logger.info("app connected to the HCI port")

    def data_received(self, data: bytes) -> None:
        if self.transport is not None:
            self.parser.feed_data(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is None or self.server.client is not self.transport:
            return
        self.server.client = None
        self.server.controller.host = None
        self.server.controller.app_gone()
        logger.info("app left the HCI port")


class BumbleWearable(HostedWearable):
    """One wearable as a Bumble peripheral on its own virtual controller."""

    def __init__(self, link: LocalLink, model: Wearable) -> None:
        super().__init__(model)
        self.controller = Controller(f"wearable {model.address}", link=link)
        self.address = _address(model.address)
        self.device = Device.with_hci(model.name, self.address, self.controller, self.controller)
        self.device.gatt_server.max_mtu = model.spec.mtu
        self.chars: dict[str, gatt.Characteristic] = {}
        self.connection: Connection | None = None
        self.advertising_set: AdvertisingSet | None = None
        self._visible_task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        self._build_gatt()
        self.device.on("connection", self._on_connection)

    def _build_gatt(self) -> None:
        for service_uuid, specs in self.model.services.items():
            chars = []
            for spec in specs:
                props = gatt.Characteristic.Properties(0)
                for flag in spec.flags:
                    props |= _PROPERTY[flag]
                char: gatt.Characteristic = gatt.Characteristic(
                    spec.uuid,
                    props,
                    gatt.Characteristic.READABLE | gatt.Characteristic.WRITEABLE,
                    gatt.CharacteristicValue(
                        read=lambda _c, u=spec.uuid: self.model.read(u, time.time()),
                        write=lambda _c, value, u=spec.uuid: self._on_write(u, bytes(value)),
                    ),
                )
                char.on(
                    "subscription",
                    lambda _b, notify, indicate, u=spec.uuid: self._on_subscription(
                        u, notify or indicate
                    ),
                )
                self.chars[spec.uuid] = char
                chars.append(char)
            self.device.add_service(gatt.Service(service_uuid, chars))

    def advertising_data(self) -> bytes:
        """Flags, name, services (16- and 128-bit), appearance, manufacturer data."""
        sig_base = vigil_gatt.full_uuid(0)[8:]
        uuids = self.model.advertised_uuids
        short = b"".join(
            int(u[4:8], 16).to_bytes(2, "little") for u in uuids if u.endswith(sig_base)
        )
        long = b"".join(UUID(u).to_bytes(force_128=True) for u in uuids if not u.endswith(sig_base))
        fields: list[tuple[int, bytes]] = [
            (AdvertisingData.FLAGS, bytes([0x06])),  # LE general discoverable, no BR/EDR
            (AdvertisingData.COMPLETE_LOCAL_NAME, self.model.name.encode()),
            (AdvertisingData.APPEARANCE, self.model.appearance.to_bytes(2, "little")),
        ]
        if short:
            fields.append((AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS, short))
        if long:
            fields.append((AdvertisingData.COMPLETE_LIST_OF_128_BIT_SERVICE_CLASS_UUIDS, long))
        for company, data in self.model.manufacturer_data.items():
            fields.append(
                (AdvertisingData.MANUFACTURER_SPECIFIC_DATA, company.to_bytes(2, "little") + data)
            )
        return bytes(AdvertisingData(fields))

    async def start(self) -> None:
        await self.device.power_on()
        # Extended (non-legacy) advertising: name, services and Polar's data in one PDU.
        self.advertising_set = await self.device.create_advertising_set(
            advertising_parameters=AdvertisingParameters(
                advertising_event_properties=AdvertisingEventProperties(
                    is_connectable=True, is_scannable=False, is_legacy=False
                ),
                primary_advertising_interval_min=ADVERTISING_INTERVAL_MS,
                primary_advertising_interval_max=ADVERTISING_INTERVAL_MS,
                own_address_type=hci.OwnAddressType.RANDOM,
            ),
            random_address=self.address,
            advertising_data=self.advertising_data(),
            auto_start=True,
        )

    # -- link -------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self.connection is not None

    def _on_connection(self, connection: Connection) -> None:
        """Bumble's connection event (simulator loop)."""
        refusal = self.take_refusal()
        if refusal is not None:
            reason = _REFUSAL_REASON[refusal]
            connection.on("disconnection", lambda _r: self._show())
            asyncio.get_running_loop().call_later(
                REFUSE_AFTER_S, self._spawn, self._refuse(connection, reason)
            )
            return
        self.connection = connection
        connection.on("disconnection", self._on_disconnection)
        self.on_connected()

    async def _refuse(self, connection: Connection, reason: int) -> None:
        with contextlib.suppress(Exception):
            await connection.disconnect(reason)
        self.refusal_delivered()

    def _on_disconnection(self, reason: int) -> None:
        """The link ended, whoever ended it (simulator loop)."""
        self.connection = None
        for task in list(self._sends):
            task.cancel()
        self.on_link_down(hci.HCI_Constant.error_name(reason))
        self._show()

    def _drop_link(self, why: str) -> None:
        for connection in list(self.controller.le_connections.values()):
            drop_link(self.controller, connection)
        logger.info("%s: %s", self.model.name, why)

    def link_loss(self, refuse_reconnects: int = 0, hidden_s: float = 0.0) -> None:
        super().link_loss(refuse_reconnects, hidden_s)
        self._show()

    def _show(self) -> None:
        """Advertise again once no longer hidden (and not connected)."""
        if self._visible_task is not None:
            self._visible_task.cancel()
        self._visible_task = asyncio.get_running_loop().create_task(self._advertise_when_visible())

    async def _advertise_when_visible(self) -> None:
        adv = self.advertising_set
        if adv is None:
            return
        wait_s = self.hidden_until - time.time()
        if wait_s > 0:
            if adv.enabled:
                await adv.stop()
            await asyncio.sleep(wait_s)
        if not self.connected and not adv.enabled:
            await adv.start()

    # -- GATT -------------------------------------------------------------------

    def _on_subscription(self, char: str, on: bool) -> None:
        if on:
            self.subscribed.add(char)
        else:
            self.subscribed.discard(char)

    def _on_write(self, char: str, data: bytes) -> None:
        indications = self.model.write(char, data, time.time())
        if indications:
            # The indication must follow the write response, as a sensor's does.
            asyncio.get_running_loop().call_later(0.005, self.send_all, indications)

    def _deliver(self, char: str, payload: bytes) -> None:
        attribute = self.chars.get(char)
        connection = self.connection
        if attribute is None or connection is None:
            return
        if attribute.properties & gatt.Characteristic.Properties.NOTIFY:
            send = self.device.notify_subscriber(connection, attribute, payload)
        else:
            send = self.device.indicate_subscriber(connection, attribute, payload)
        self._spawn(send)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._sends.add(task)
        task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.counters["send_errors"] += 1
            logger.debug("%s: send failed: %r", self.model.name, task.exception())

    def stop(self) -> None:
        super().stop()
        if self._visible_task is not None:
            self._visible_task.cancel()
        for task in list(self._sends):
            task.cancel()


class BumbleHost:
    """The scenario's wearables on a Bumble link, and the app's controller on TCP.

    Parameters
    ----------
    scenario
        The devices and their faults.
    port
        TCP port for the app's HCI (0: any free port; see :attr:`transport`).
    """

    def __init__(self, scenario: Scenario, port: int = 0) -> None:
        self.scenario = scenario
        self.requested_port = port
        self.link = LocalLink()
        self.app_controller: AppController | None = None
        self.hci_server: HciServer | None = None
        self.devices: dict[str, BumbleWearable] = {}

    @property
    def transport(self) -> str:
        """What the app's ``--ble`` takes, e.g. ``bumble:tcp-client:127.0.0.1:40123``."""
        assert self.hci_server is not None
        return f"{TRANSPORT_PREFIX}tcp-client:127.0.0.1:{self.hci_server.port}"

    async def start(self) -> None:
        """Start every wearable (advertising) and listen for the app."""
        self.app_controller = AppController("vigil-app", link=self.link)
        self.app_controller.random_address = APP_CONTROLLER_ADDRESS
        now = time.time()
        for spec in self.scenario.devices:
            wearable = BumbleWearable(self.link, make_wearable(spec, now))
            self.devices[spec.address] = wearable
            await wearable.start()
        self.hci_server = HciServer(self.app_controller)
        await self.hci_server.start(port=self.requested_port)
        logger.info("Bumble host serving %d device(s) on %s", len(self.devices), self.transport)

    async def stop(self) -> None:
        """Drop every link, close the HCI port."""
        for wearable in self.devices.values():
            wearable.stop()
        if self.hci_server is not None:
            await self.hci_server.stop()
        await asyncio.sleep(0)  # let the disconnection events run

    def device(self, address: str) -> BumbleWearable:
        return self.devices[address.upper()]

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-device counters (notifications, connects, refusals, malformed sent …)."""
        return {a: dict(d.counters) for a, d in self.devices.items()}
