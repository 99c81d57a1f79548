"""Vigil's BLE wearable simulator: virtual chest straps, oximeters, thermometers, BP cuffs.

Two hosts carry the same wearables (:mod:`devices.simulator.models`) and faults:

* ``bluez`` (default): a fake ``org.bluez`` on a private D-Bus bus, so the app's
  unmodified bleak code path (BlueZ backend) finds, connects to and streams from
  them (Linux);
* ``bumble``: Bumble virtual controllers carrying real ATT/GATT; the app's
  controller is served on a TCP port and the app selects Vigil's bleak backend on
  Bumble with ``--ble bumble:tcp-client:127.0.0.1:PORT`` (any OS).

Python API::

    from devices.simulator import SimulatorThread, devices_from_list, use_bus
    with SimulatorThread(devices_from_list("strap,oximeter")) as sim:
        use_bus(sim.address)          # before bleak first uses D-Bus
        ...
        sim.link_loss("C0:DE:00:01:00:01", refuse_reconnects=2)

    with SimulatorThread(devices_from_list("strap"), host="bumble") as sim:
        source = BleSource(sink, backend=sim.address)   # "bumble:tcp-client:127.0.0.1:PORT"

Command line (``vigil simulate`` calls :func:`main`)::

    vigil simulate [--host bluez|bumble] [--port N] [--devices strap*2,oximeter,thermometer,bp]
                   [--scenario FILE] [--duration S]

prints ``DBUS_SYSTEM_BUS_ADDRESS=unix:path=…`` (bluez) or
``VIGIL_BLE=bumble:tcp-client:127.0.0.1:PORT`` (bumble), then one line per
wearable, and runs until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from devices.simulator.bus import DbusDaemonMissing, PrivateBus, dbus_daemon_path
from devices.simulator.runner import (
    ADDRESS_PREFIX,
    BLE_PREFIX,
    SimulatorProcess,
    SimulatorThread,
    use_bus,
)
from devices.simulator.scenario import (
    DeviceSpec,
    Event,
    Scenario,
    ScenarioError,
    devices_from_list,
    load_scenario,
    merge,
    parse_scenario,
)

if TYPE_CHECKING:
    from devices.simulator.bluez import FakeBluez
    from devices.simulator.bumble_host import BumbleHost

__all__ = [
    "DeviceSpec",
    "Event",
    "Scenario",
    "ScenarioError",
    "SimulatorProcess",
    "SimulatorThread",
    "dbus_daemon_path",
    "devices_from_list",
    "load_scenario",
    "main",
    "parse_scenario",
    "use_bus",
]

logger = logging.getLogger(__name__)

DEFAULT_DEVICES = "strap,oximeter,thermometer,bp"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vigil simulate",
        description="Run virtual BLE wearables behind a fake BlueZ (private D-Bus bus) "
        "or Bumble virtual controllers (TCP).",
    )
    p.add_argument(
        "--host", choices=["bluez", "bumble"], default="bluez", help="Bluetooth host to simulate"
    )
    p.add_argument(
        "--port",
        type=int,
        default=0,
        help="bumble host: TCP port of the app's controller (default: any free port)",
    )
    p.add_argument(
        "--devices",
        default=None,
        help=f"comma-separated kinds, KIND*N for several (default with no scenario: {DEFAULT_DEVICES})",
    )
    p.add_argument("--scenario", default=None, help="scenario TOML file (devices and faults)")
    p.add_argument(
        "--duration", type=float, default=0.0, help="stop after S seconds (0: run until Ctrl-C)"
    )
    p.add_argument("--log-level", default="WARNING")
    return p


async def _serve(scenario: Scenario, address: str, duration_s: float, port: int = 0) -> None:
    """Run a host until Ctrl-C/SIGTERM or ``duration_s``; ``address`` empty means Bumble."""
    host: FakeBluez | BumbleHost
    if address:
        from devices.simulator.bluez import FakeBluez  # noqa: PLC0415

        host = FakeBluez(scenario, address)
        await host.start()
        print(f"{ADDRESS_PREFIX}{address}", flush=True)  # noqa: T201 (the CLI's output)
    else:
        from devices.simulator.bumble_host import BumbleHost  # noqa: PLC0415

        host = BumbleHost(scenario, port)
        await host.start()
        print(f"{BLE_PREFIX}{host.transport}", flush=True)  # noqa: T201
    for dev in scenario.devices:
        print(f"  {dev.kind:<15} {dev.address}  {dev.name}", flush=True)  # noqa: T201
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        if duration_s > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), duration_s)
        else:
            await stop.wait()
    finally:
        await host.stop()


def main(argv: Sequence[str] | None = None) -> int:
    """``vigil simulate``: start the private bus and the virtual wearables; run until Ctrl-C.

    Returns
    -------
    int
        0 on a clean stop, 2 for bad arguments or scenario, 3 when ``dbus-daemon``
        is missing (bluez), Bumble is not installed or its port is taken (bumble).
    """
    args = _parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=args.log_level.upper(), format="%(levelname)s %(name)s: %(message)s"
        )
    try:
        scenario = load_scenario(args.scenario) if args.scenario else None
        devices_text = (
            args.devices if args.devices is not None else ("" if scenario else DEFAULT_DEVICES)
        )
        scenario = merge(scenario, devices_from_list(devices_text))
    except (ScenarioError, OSError) as exc:
        logger.error("%s", exc)
        return 2
    if not scenario.devices:
        logger.error("no devices to simulate")
        return 2
    if args.host == "bumble":
        return _run_bumble(scenario, args.duration, args.port)
    bus = PrivateBus()
    try:
        address = bus.start()
    except DbusDaemonMissing as exc:
        logger.error("%s", exc)
        return 3
    try:
        asyncio.run(_serve(scenario, address, args.duration))
    except KeyboardInterrupt:
        pass
    finally:
        bus.stop()
    return 0


def _run_bumble(scenario: Scenario, duration_s: float, port: int) -> int:
    try:
        import bumble  # noqa: F401, PLC0415
    except ImportError:
        logger.error("the Bumble host needs the 'bumble' package (pip install bumble==0.0.236)")
        return 3
    try:
        asyncio.run(_serve(scenario, "", duration_s, port))
    except KeyboardInterrupt:
        pass
    except OSError as exc:  # the port is taken or cannot be bound
        logger.error("cannot serve the app's controller on port %d: %s", port, exc)
        return 3
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
