"""Which bleak backend the BLE thread uses: the platform's own, or Vigil's on Bumble.

The choice is a short text, from ``vigil run --ble SPEC`` or the ``VIGIL_BLE``
environment variable:

* ``""``, ``platform``, ``bleak`` or ``bluez``: bleak's platform backend (BlueZ on
  Linux, CoreBluetooth on macOS, WinRT on Windows);
* ``bumble:TRANSPORT``: :mod:`devices.ble_bumble`, bleak on a Bumble host
  opened on a Bumble HCI transport, e.g. ``bumble:tcp-client:127.0.0.1:40123``
  for ``vigil simulate --host bumble``.

A :class:`BleBackend` gives the keyword arguments that send ``BleakScanner`` and
``BleakClient`` (and so bleak-retry-connector's ``establish_connection``, which
passes them on) to the chosen backend, and owns what that backend keeps open.
This module imports neither Bumble nor anything else heavy.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Final

#: Environment variable the app reads when ``--ble`` is not given.
ENV_VAR: Final = "VIGIL_BLE"
PLATFORM_NAMES: Final = ("", "platform", "bleak", "bluez")
BUMBLE_PREFIX: Final = "bumble:"


class BleSpecError(ValueError):
    """A ``--ble`` / ``VIGIL_BLE`` value that names no usable backend."""


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """A parsed backend choice.

    Parameters
    ----------
    kind
        ``"platform"`` or ``"bumble"``.
    transport
        Bumble HCI transport (``tcp-client:HOST:PORT`` …); empty for the platform.
    """

    kind: str = "platform"
    transport: str = ""

    def __str__(self) -> str:
        return f"{BUMBLE_PREFIX}{self.transport}" if self.kind == "bumble" else "platform"


def parse_ble_spec(text: str | None) -> BackendSpec:
    """Read a backend choice.

    Raises
    ------
    BleSpecError
        For anything but the forms in the module notes; a ``tcp-client`` or
        ``tcp-server`` transport must end in ``HOST:PORT`` with a port 1-65535.
    """
    text = (text or "").strip()
    if text.lower() in PLATFORM_NAMES:
        return BackendSpec()
    if not text.lower().startswith(BUMBLE_PREFIX):
        raise BleSpecError(
            f"unknown BLE backend {text!r}: use 'platform' or 'bumble:TRANSPORT' "
            "(e.g. bumble:tcp-client:127.0.0.1:PORT from `vigil simulate --host bumble`)"
        )
    transport = text[len(BUMBLE_PREFIX) :].strip()
    scheme, _, rest = transport.partition(":")
    if not scheme or not rest:
        raise BleSpecError(
            f"{text!r}: the Bumble transport is missing (bumble:tcp-client:HOST:PORT)"
        )
    if scheme in ("tcp-client", "tcp-server"):
        host, _, port = rest.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise BleSpecError(f"{text!r}: expected {scheme}:HOST:PORT with a port 1-65535")
    return BackendSpec("bumble", transport)


class BleBackend:
    """bleak's platform backend: nothing to open, no extra arguments.

    Subclasses (:class:`devices.ble_bumble.BumbleBackend`) open their transport
    lazily in :meth:`ready` and close it in :meth:`close`; both run on the BLE loop.
    """

    spec: BackendSpec = BackendSpec()

    @property
    def uses_bluez(self) -> bool:
        """Does bleak talk to BlueZ (so bleak-retry-connector's D-Bus helpers apply)?"""
        return sys.platform.startswith("linux")

    async def ready(self) -> None:
        """Make sure the backend can be used (BLE loop); raise if it cannot."""

    def scanner_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``BleakScanner``."""
        return {}

    def client_kwargs(self) -> dict[str, Any]:
        """Extra keyword arguments for ``BleakClient`` / ``establish_connection``."""
        return {}

    async def close(self) -> None:
        """Release what :meth:`ready` opened (BLE loop, after every device is stopped)."""


def make_backend(spec: BackendSpec | str | None) -> BleBackend:
    """The backend a spec names (Bumble is imported only when asked for)."""
    if not isinstance(spec, BackendSpec):
        spec = parse_ble_spec(spec)
    if spec.kind == "bumble":
        from devices.ble_bumble import BumbleBackend  # noqa: PLC0415

        return BumbleBackend(spec)
    return BleBackend()
