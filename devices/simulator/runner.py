"""Start and stop the BLE simulator: in this process (a thread) or as a child process.

In-process (:class:`SimulatorThread`) is what tests use when they want to pull
faults by hand; a child process (:class:`SimulatorProcess`) keeps the simulator's
CPU off the measured process (bench) and is what ``vigil simulate`` runs.

Two hosts, one ``address`` each:

* ``bluez``: a private ``dbus-daemon`` with a fake ``org.bluez``; the address is the
  bus address: put it in ``DBUS_SYSTEM_BUS_ADDRESS`` (or :func:`use_bus`) before
  bleak first touches D-Bus;
* ``bumble``: Bumble virtual controllers; the address is the app's BLE backend
  spec, ``bumble:tcp-client:127.0.0.1:PORT``, for ``BleSource(backend=…)``,
  ``vigil run --ble`` or ``VIGIL_BLE``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeVar

from devices.simulator.bus import PrivateBus
from devices.simulator.scenario import DeviceSpec, Scenario, load_scenario, merge

if TYPE_CHECKING:
    from devices.simulator.bluez import FakeBluez
    from devices.simulator.bumble_host import BumbleHost

logger = logging.getLogger(__name__)

ADDRESS_PREFIX: Final = "DBUS_SYSTEM_BUS_ADDRESS="
#: What ``vigil simulate --host bumble`` prints before the transport spec.
BLE_PREFIX: Final = "VIGIL_BLE="
HOSTS: Final = ("bluez", "bumble")
T = TypeVar("T")


def use_bus(address: str) -> None:
    """Point this process's bleak (BlueZ backend) at ``address``."""
    os.environ["DBUS_SYSTEM_BUS_ADDRESS"] = address


def _scenario_of(
    devices: Sequence[DeviceSpec] | None, scenario: Scenario | str | Path | None
) -> Scenario:
    if isinstance(scenario, (str, Path)):
        scenario = load_scenario(scenario)
    return merge(scenario, tuple(devices or ()))


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """End what the host left running (streams, Bumble's own tasks) before closing."""
    pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


class SimulatorThread:
    """The simulator on its own asyncio loop in a daemon thread of this process.

    Parameters
    ----------
    devices
        Extra devices (e.g. from :func:`~devices.simulator.scenario.devices_from_list`).
    scenario
        A :class:`Scenario` or the path of a scenario TOML file.
    host
        ``"bluez"`` (fake BlueZ on a private D-Bus) or ``"bumble"`` (Bumble
        virtual controllers, the app's HCI on a TCP port).
    """

    def __init__(
        self,
        devices: Sequence[DeviceSpec] | None = None,
        scenario: Scenario | str | Path | None = None,
        host: str = "bluez",
    ) -> None:
        if host not in HOSTS:
            raise ValueError(f"host must be one of {HOSTS}, not {host!r}")
        self.scenario = _scenario_of(devices, scenario)
        self.host_kind = host
        self._bus = PrivateBus() if host == "bluez" else None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.host: Any = None  # FakeBluez | BumbleHost once started
        self.address = ""

    def _make_host(self) -> FakeBluez | BumbleHost:
        if self.host_kind == "bumble":
            from devices.simulator.bumble_host import BumbleHost  # noqa: PLC0415

            return BumbleHost(self.scenario)
        from devices.simulator.bluez import FakeBluez  # noqa: PLC0415

        return FakeBluez(self.scenario, self.address)

    def start(self, timeout_s: float = 10.0) -> str:
        """Start the host; return its address (bus address, or the ``bumble:`` spec)."""
        if self._bus is not None:
            self.address = self._bus.start()
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self.host = self._make_host()
                loop.run_until_complete(self.host.start())
                if self.host_kind == "bumble":
                    self.address = self.host.transport
            except BaseException as exc:  # noqa: BLE001 (handed to the starting thread)
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.host.stop())
            _cancel_pending(loop)
            loop.close()

        self._thread = threading.Thread(target=run, name="ble-simulator", daemon=True)
        self._thread.start()
        if not ready.wait(timeout_s) or failure:
            self.stop()
            raise RuntimeError(f"simulator did not start: {failure[0] if failure else 'timeout'}")
        return self.address

    def call(self, fn: Callable[[Any], T], timeout_s: float = 5.0) -> T:
        """Run ``fn(host)`` on the simulator's loop and return its result."""
        assert self._loop is not None and self.host is not None
        host = self.host

        async def run() -> T:
            return fn(host)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout_s)

    def link_loss(self, address: str, refuse_reconnects: int = 0, hidden_s: float = 0.0) -> None:
        """Drop a device's link now (see :meth:`VirtualDevice.link_loss`)."""
        self.call(lambda h: h.device(address).link_loss(refuse_reconnects, hidden_s))

    def malformed_storm(self, address: str, duration_s: float, rate: float = 1.0) -> None:
        """Damage ``rate`` of a device's notifications for ``duration_s``."""

        def storm(h: Any) -> None:
            dev = h.device(address)
            dev.storm_rate = rate
            dev.storm_until = time.time() + duration_s

        self.call(storm)

    def set_contact(self, address: str, contact: bool) -> None:
        """Put a wearable on or off the patient's skin."""
        self.call(lambda h: setattr(h.device(address).model, "contact", contact))

    def stats(self) -> dict[str, dict[str, int]]:
        """Per-device counters from the simulator."""
        return self.call(lambda h: h.stats())

    def stop(self) -> None:
        """Stop the host, join its thread, stop the bus."""
        if self._loop is not None and self._thread is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
        self._thread = None
        self._loop = None
        if self._bus is not None:
            self._bus.stop()

    def __enter__(self) -> SimulatorThread:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class SimulatorProcess:
    """``python -m devices.simulator`` as a child process; reads its address line."""

    def __init__(
        self,
        devices: str = "",
        scenario: str | Path | None = None,
        extra_args: Sequence[str] = (),
        host: str = "bluez",
    ) -> None:
        # A frozen Vigil is its own interpreter: its `simulate` subcommand is the entry.
        frozen = getattr(sys, "frozen", False)
        self.args = (
            [sys.executable, "simulate"] if frozen else [sys.executable, "-m", "devices.simulator"]
        )
        if devices:
            self.args += ["--devices", devices]
        if scenario is not None:
            self.args += ["--scenario", str(scenario)]
        if host != "bluez":
            self.args += ["--host", host]
        self.args += list(extra_args)
        self.proc: subprocess.Popen[str] | None = None
        self.address = ""
        self.device_lines: list[str] = []

    def start(self, timeout_s: float = 20.0) -> str:
        """Start the child and wait for its ``DBUS_SYSTEM_BUS_ADDRESS=…`` or ``VIGIL_BLE=…`` line."""
        root = Path(__file__).resolve().parents[2]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH", "")]))
        self.proc = subprocess.Popen(
            self.args, stdout=subprocess.PIPE, stderr=None, text=True, env=env, cwd=root
        )
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            line = line.strip()
            prefix = next((p for p in (ADDRESS_PREFIX, BLE_PREFIX) if line.startswith(p)), None)
            if prefix is not None:
                self.address = line[len(prefix) :]
                threading.Thread(target=self._drain, daemon=True).start()
                return self.address
            self.device_lines.append(line)
        self.stop()
        raise RuntimeError("simulator process did not print its address")

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            self.device_lines.append(line.rstrip())

    def stop(self, timeout_s: float = 5.0) -> int | None:
        """Interrupt the child (as Ctrl-C would) and wait for it."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(2)  # SIGINT
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        return rc

    def __enter__(self) -> SimulatorProcess:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()
