"""A private D-Bus bus from ``dbus-daemon`` (Debian package ``dbus``) for the simulator.

The bus listens on a Unix socket in a fresh temporary folder; its address goes
into ``DBUS_SYSTEM_BUS_ADDRESS`` for the process that runs bleak, whose BlueZ
backend then talks to the simulator instead of the real ``bluetoothd``.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Final

logger = logging.getLogger(__name__)

_CONFIG: Final = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
  <limit name="max_incoming_bytes">1000000000</limit>
  <limit name="max_outgoing_bytes">1000000000</limit>
  <limit name="max_message_size">1000000</limit>
</busconfig>
"""


class DbusDaemonMissing(RuntimeError):
    """``dbus-daemon`` is not installed (Debian: ``apt-get install -y dbus``)."""


def dbus_daemon_path() -> str | None:
    """Where ``dbus-daemon`` is, or None."""
    return shutil.which("dbus-daemon")


class PrivateBus:
    """A ``dbus-daemon`` child process serving one private bus.

    Use as a context manager or call :meth:`start` / :meth:`stop`.
    """

    def __init__(self) -> None:
        self._dir: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self.address = ""

    def start(self, timeout_s: float = 5.0) -> str:
        """Start the daemon and return its address (``unix:path=…``)."""
        exe = dbus_daemon_path()
        if exe is None:
            raise DbusDaemonMissing("dbus-daemon not found; install the Debian package 'dbus'")
        self._dir = Path(tempfile.mkdtemp(prefix="vigil-bus-"))
        socket = self._dir / "bus"
        config = self._dir / "bus.conf"
        config.write_text(_CONFIG.format(socket=socket))
        self._proc = subprocess.Popen(
            [exe, f"--config-file={config}", "--nofork", "--nopidfile"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout_s
        while not socket.exists():
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                raise RuntimeError(f"dbus-daemon exited: {err.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError("dbus-daemon did not create its socket in time")
            time.sleep(0.01)
        self.address = f"unix:path={socket}"
        logger.info("private D-Bus bus at %s (pid %d)", self.address, self._proc.pid)
        return self.address

    def stop(self) -> None:
        """Terminate the daemon and remove its folder."""
        if self._proc is not None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            if self._proc.stderr:
                self._proc.stderr.close()
            self._proc = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def __enter__(self) -> PrivateBus:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def environ_for(address: str) -> dict[str, str]:
    """A copy of the environment that points bleak's BlueZ backend at ``address``."""
    env = dict(os.environ)
    env["DBUS_SYSTEM_BUS_ADDRESS"] = address
    return env
