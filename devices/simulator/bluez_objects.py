"""The ``org.bluez`` D-Bus interfaces the simulator exports (BlueZ 5.6x API subset).

These classes only describe the interfaces; behaviour lives in
:mod:`devices.simulator.bluez`, which each object calls back into. Interfaces and
properties follow BlueZ's ``doc/org.bluez.Adapter.rst``, ``org.bluez.Device.rst``,
``org.bluez.GattService.rst`` and ``org.bluez.GattCharacteristic.rst``: what
bleak's BlueZ backend reads, and little more.
"""

# No `from __future__ import annotations`: dbus-fast reads these annotations at run
# time, and a postponed `-> None` would reach it as the string "None".
from typing import TYPE_CHECKING, Annotated, Any, Final

from dbus_fast import DBusError, PropertyAccess
from dbus_fast.annotations import (
    DBusBool,
    DBusBytes,
    DBusDict,
    DBusInt16,
    DBusObjectPath,
    DBusSignature,
    DBusStr,
    DBusUInt16,
    DBusUInt32,
)
from dbus_fast.service import ServiceInterface, dbus_property, method
from dbus_fast.signature import Variant

if TYPE_CHECKING:
    from devices.simulator.bluez import FakeBluez, VirtualDevice

StrList = Annotated[list[str], DBusSignature("as")]
ObjList = Annotated[list[str], DBusSignature("ao")]
ManufacturerDict = Annotated[dict[int, Variant], DBusSignature("a{qv}")]
FdAndMtu = Annotated[list[Any], DBusSignature("hq")]

ERROR_FAILED: Final = "org.bluez.Error.Failed"
ERROR_NOT_CONNECTED: Final = "org.bluez.Error.NotConnected"
ERROR_NOT_PERMITTED: Final = "org.bluez.Error.NotPermitted"
ERROR_NOT_SUPPORTED: Final = "org.bluez.Error.NotSupported"
ERROR_IN_PROGRESS: Final = "org.bluez.Error.InProgress"

ADAPTER_ADDRESS: Final = "00:1A:7D:DA:71:13"


class Adapter1(ServiceInterface):
    """``org.bluez.Adapter1`` at ``/org/bluez/hci0``."""

    def __init__(self, host: "FakeBluez") -> None:
        super().__init__("org.bluez.Adapter1")
        self._host = host

    @method()
    def StartDiscovery(self) -> None:
        self._host.start_discovery()

    @method()
    def StopDiscovery(self) -> None:
        if not self._host.stop_discovery():
            raise DBusError(ERROR_FAILED, "No discovery started")

    @method()
    def SetDiscoveryFilter(self, properties: DBusDict) -> None:
        uuids = properties.get("UUIDs")
        self._host.set_discovery_filter(
            [u.lower() for u in uuids.value] if uuids is not None else []
        )

    @method()
    def GetDiscoveryFilters(self) -> StrList:
        return ["UUIDs", "RSSI", "Transport", "DuplicateData", "Discoverable", "Pattern"]

    @method()
    def RemoveDevice(self, device: DBusObjectPath) -> None:
        self._host.remove_device(device)

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return ADAPTER_ADDRESS

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "public"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return "vigil-sim"

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return "vigil-sim"

    @dbus_property(access=PropertyAccess.READ)
    def Class(self) -> DBusUInt32:
        return 0

    @dbus_property(access=PropertyAccess.READ)
    def Powered(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Discoverable(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Pairable(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Discovering(self) -> DBusBool:
        return self._host.discovering

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> StrList:
        return []

    @dbus_property(access=PropertyAccess.READ)
    def Roles(self) -> StrList:
        return ["central"]


class Device1(ServiceInterface):
    """``org.bluez.Device1`` for one virtual wearable."""

    def __init__(self, dev: "VirtualDevice") -> None:
        super().__init__("org.bluez.Device1")
        self._dev = dev

    @method()
    async def Connect(self) -> None:
        await self._dev.connect()

    @method()
    async def Disconnect(self) -> None:
        await self._dev.disconnect()

    @method()
    def Pair(self) -> None:
        raise DBusError(ERROR_NOT_SUPPORTED, "pairing is not simulated")

    @method()
    def CancelPairing(self) -> None:
        raise DBusError("org.bluez.Error.DoesNotExist", "no pairing in progress")

    @dbus_property(access=PropertyAccess.READ)
    def Address(self) -> DBusStr:
        return self._dev.model.address

    @dbus_property(access=PropertyAccess.READ)
    def AddressType(self) -> DBusStr:
        return "random"

    @dbus_property(access=PropertyAccess.READ)
    def Name(self) -> DBusStr:
        return self._dev.model.name

    @dbus_property(access=PropertyAccess.READ)
    def Alias(self) -> DBusStr:
        return self._dev.model.name

    @dbus_property(access=PropertyAccess.READ)
    def Appearance(self) -> DBusUInt16:
        return self._dev.model.appearance

    @dbus_property(access=PropertyAccess.READ)
    def Adapter(self) -> DBusObjectPath:
        return self._dev.adapter_path

    @dbus_property(access=PropertyAccess.READ)
    def Paired(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Bonded(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Trusted(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Blocked(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def LegacyPairing(self) -> DBusBool:
        return False

    @dbus_property(access=PropertyAccess.READ)
    def Connected(self) -> DBusBool:
        return self._dev.connected

    @dbus_property(access=PropertyAccess.READ)
    def ServicesResolved(self) -> DBusBool:
        return self._dev.services_resolved

    @dbus_property(access=PropertyAccess.READ)
    def RSSI(self) -> DBusInt16:
        return self._dev.rssi

    @dbus_property(access=PropertyAccess.READ)
    def TxPower(self) -> DBusInt16:
        return 0

    @dbus_property(access=PropertyAccess.READ)
    def UUIDs(self) -> StrList:
        return self._dev.model.advertised_uuids

    @dbus_property(access=PropertyAccess.READ)
    def ManufacturerData(self) -> ManufacturerDict:
        return {k: Variant("ay", v) for k, v in self._dev.model.manufacturer_data.items()}

    @dbus_property(access=PropertyAccess.READ)
    def ServiceData(self) -> DBusDict:
        return {}


class GattService1(ServiceInterface):
    """``org.bluez.GattService1``."""

    def __init__(self, uuid: str, device_path: str, handle: int) -> None:
        super().__init__("org.bluez.GattService1")
        self._uuid = uuid
        self._device_path = device_path
        self._handle = handle

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self._uuid

    @dbus_property(access=PropertyAccess.READ)
    def Device(self) -> DBusObjectPath:
        return self._device_path

    @dbus_property(access=PropertyAccess.READ)
    def Primary(self) -> DBusBool:
        return True

    @dbus_property(access=PropertyAccess.READ)
    def Includes(self) -> ObjList:
        return []

    @dbus_property(access=PropertyAccess.READ)
    def Handle(self) -> DBusUInt16:
        return self._handle


class GattCharacteristic1(ServiceInterface):
    """``org.bluez.GattCharacteristic1``; reads, writes and subscriptions go to the device."""

    def __init__(
        self,
        dev: "VirtualDevice",
        uuid: str,
        service_path: str,
        flags: tuple[str, ...],
        handle: int,
    ) -> None:
        super().__init__("org.bluez.GattCharacteristic1")
        self._dev = dev
        self.uuid = uuid
        self._service_path = service_path
        self.flags = flags
        self._handle = handle
        self.value = b""
        self.notifying = False
        self.notify_acquired = False

    @method()
    def ReadValue(self, options: DBusDict) -> DBusBytes:
        if "read" not in self.flags:
            raise DBusError(ERROR_NOT_PERMITTED, "Read not permitted")
        self.value = self._dev.read(self.uuid)
        return self.value

    @method()
    def WriteValue(self, value: DBusBytes, options: DBusDict) -> None:
        if "write" not in self.flags and "write-without-response" not in self.flags:
            raise DBusError(ERROR_NOT_PERMITTED, "Write not permitted")
        self._dev.write(self.uuid, bytes(value))

    @method()
    def StartNotify(self) -> None:
        if not {"notify", "indicate"} & set(self.flags):
            raise DBusError(ERROR_NOT_SUPPORTED, "Notify not supported")
        if self.notify_acquired:
            raise DBusError(ERROR_NOT_PERMITTED, "Notify acquired")
        if not self.notifying:
            self.notifying = True
            self.emit_properties_changed({"Notifying": True})
            self._dev.subscription_changed(self.uuid, True)

    @method()
    def StopNotify(self) -> None:
        if self.notifying:
            self.notifying = False
            self.emit_properties_changed({"Notifying": False})
            self._dev.subscription_changed(self.uuid, False)

    @method()
    def AcquireNotify(self, options: DBusDict) -> FdAndMtu:
        if not {"notify", "indicate"} & set(self.flags):
            raise DBusError(ERROR_NOT_SUPPORTED, "Notify not supported")
        if self.notifying or self.notify_acquired:
            raise DBusError(ERROR_IN_PROGRESS, "Notify already enabled")
        fd = self._dev.acquire_notify(self.uuid)
        self.notify_acquired = True
        self.emit_properties_changed({"NotifyAcquired": True})
        return [fd, self._dev.model.spec.mtu]

    def released(self) -> None:
        """The acquired socket was closed by either side."""
        if self.notify_acquired:
            self.notify_acquired = False
            self.emit_properties_changed({"NotifyAcquired": False})

    def notify(self, payload: bytes) -> None:
        """Deliver a notification the way BlueZ does for StartNotify: a Value change."""
        self.value = payload
        self.emit_properties_changed({"Value": payload})

    @dbus_property(access=PropertyAccess.READ)
    def UUID(self) -> DBusStr:
        return self.uuid

    @dbus_property(access=PropertyAccess.READ)
    def Service(self) -> DBusObjectPath:
        return self._service_path

    @dbus_property(access=PropertyAccess.READ)
    def Value(self) -> DBusBytes:
        return self.value

    @dbus_property(access=PropertyAccess.READ)
    def Notifying(self) -> DBusBool:
        return self.notifying

    @dbus_property(access=PropertyAccess.READ)
    def NotifyAcquired(self) -> DBusBool:
        return self.notify_acquired

    @dbus_property(access=PropertyAccess.READ)
    def Flags(self) -> StrList:
        return list(self.flags)

    @dbus_property(access=PropertyAccess.READ)
    def MTU(self) -> DBusUInt16:
        return self._dev.model.spec.mtu

    @dbus_property(access=PropertyAccess.READ)
    def Handle(self) -> DBusUInt16:
        return self._handle
