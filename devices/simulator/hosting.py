"""What every simulator host does with a wearable, whatever carries its bytes.

A :class:`HostedWearable` wraps a model (:mod:`devices.simulator.models`) with the
parts of a virtual device that do not depend on the Bluetooth host: the scripted
faults (link loss with refused reconnects and hidden time, contact loss, malformed
storms, battery jumps), the streaming loop that asks the model what is due, payload
damage, and the counters. A host subclasses it and supplies three things: whether
the link is up (:attr:`connected`), how one value leaves (:meth:`_deliver`) and how
a link is dropped (:meth:`_drop_link`).

The fake BlueZ (:mod:`devices.simulator.bluez`) and the Bumble host
(:mod:`devices.simulator.bumble_host`) both build on it, so a scenario means the
same thing on either. Everything runs on the simulator's asyncio loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from dataclasses import replace
from typing import Final

from devices.simulator.models import Wearable
from devices.simulator.scenario import Event

logger = logging.getLogger(__name__)

#: Longest the streaming loop sleeps, so new subscriptions start promptly.
MAX_IDLE_S: Final = 0.1


class HostedWearable:
    """A wearable model plus its faults, counters and streaming loop.

    Parameters
    ----------
    model
        The virtual wearable (knows nothing about the host).
    """

    def __init__(self, model: Wearable) -> None:
        self.model = model
        self.subscribed: set[str] = set()
        self.refuse_left = 0
        self.le_abort_left = model.spec.le_abort_connects
        self.hidden_until = 0.0
        self.storm_until = 0.0
        self.storm_rate = 0.0
        self.rng = random.Random(model.spec.seed)
        self.counters: Counter[str] = Counter()
        #: Set to a list to keep every value sent, as sent (golden tests).
        self.sent: list[tuple[str, bytes]] | None = None
        #: Wall time the last refusal reached the central (for reconnect timing).
        self.last_refused_at = 0.0
        self._stream_task: asyncio.Task[None] | None = None
        self._event_tasks: list[asyncio.Task[None]] = []
        self._first_connect: float | None = None

    # -- what a host supplies ------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Is a central connected right now?"""
        raise NotImplementedError

    def _deliver(self, char: str, payload: bytes) -> None:
        """Send one notification or indication to the connected central."""
        raise NotImplementedError

    def _drop_link(self, why: str) -> None:
        """End the connection now, as the radio would (no goodbye to the central)."""
        raise NotImplementedError

    # -- link life -----------------------------------------------------------------

    @property
    def advertising(self) -> bool:
        """Would the wearable be seen by a scan now?"""
        return not self.connected and time.time() >= self.hidden_until

    def link_loss(self, refuse_reconnects: int = 0, hidden_s: float = 0.0) -> None:
        """Drop the link as if the wearable went out of range.

        Parameters
        ----------
        refuse_reconnects
            Refuse the next N connection attempts.
        hidden_s
            Stop advertising (and so accept no connection) for this long.
        """
        self.refuse_left = refuse_reconnects
        self.hidden_until = time.time() + hidden_s
        self.counters["link_losses"] += 1
        if self.connected:
            self._drop_link("link loss")

    def on_connected(self) -> None:
        """A connection is up: start streaming, and the scenario's clock on the first one."""
        self.counters["connects"] += 1
        self._stream_task = asyncio.get_running_loop().create_task(
            self._stream(), name=f"stream {self.model.address}"
        )
        if self._first_connect is None:
            self._first_connect = time.time()
            self._event_tasks = [
                asyncio.get_running_loop().create_task(self._run_event(e))
                for e in self.model.spec.events
            ]
        logger.info("%s connected", self.model.name)

    def on_link_down(self, why: str) -> None:
        """The connection has ended (either side): stop streaming, forget subscriptions."""
        if self._stream_task is not None:
            self._stream_task.cancel()
            self._stream_task = None
        self.subscribed.clear()
        self.model.on_link_down()
        logger.info("%s disconnected (%s)", self.model.name, why)

    def take_refusal(self) -> str | None:
        """Should this connection attempt be refused? Returns the reason, or ``None``."""
        self.counters["connect_calls"] += 1
        if self.refuse_left > 0:
            self.refuse_left -= 1
            self.counters["refused"] += 1
            return "refused"
        if self.le_abort_left > 0:
            self.le_abort_left -= 1
            self.counters["le_aborts"] += 1
            return "le-connection-abort-by-local"
        return None

    def refusal_delivered(self) -> None:
        """A refusal has reached the central: from here on, the next attempt may succeed."""
        self.last_refused_at = time.time()

    @property
    def allowed_since(self) -> float:
        """Wall time from which the scripted faults let a connection through."""
        return max(self.hidden_until, self.last_refused_at)

    # -- values ------------------------------------------------------------------------

    def damage(self, payload: bytes) -> bytes:
        """Break a payload the ways radios and firmware do."""
        self.counters["malformed_sent"] += 1
        how = self.rng.randrange(3)
        if how == 0 and len(payload) > 1:
            return payload[: self.rng.randrange(1, len(payload))]
        if how == 1:
            return payload + bytes(self.rng.randrange(256) for _ in range(self.rng.randint(1, 3)))
        return bytes([0xFF]) + payload[1:2]  # flags promise every optional field

    def send_all(self, items: list[tuple[str, bytes]]) -> None:
        for char, payload in items:
            self.send(char, payload)

    def send(self, char: str, payload: bytes) -> None:
        """Deliver one value if the central listens for it (damaged during a storm)."""
        if not self.connected or char not in self.subscribed:
            return
        rate = self.storm_rate if time.time() < self.storm_until else self.model.spec.malformed_rate
        if rate > 0 and self.rng.random() < rate:
            payload = self.damage(payload)
        self.counters["notifications"] += 1
        if self.sent is not None:
            self.sent.append((char, payload))
        self._deliver(char, payload)

    async def _stream(self) -> None:
        try:
            while self.connected:
                self.send_all(self.model.due(time.time(), self.subscribed))
                nxt = self.model.next_due(time.time(), self.subscribed)
                await asyncio.sleep(min(max(nxt - time.time() + 1e-4, 0.001), MAX_IDLE_S))
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("%s: streaming stopped", self.model.name)

    async def _run_event(self, event: Event) -> None:
        assert self._first_connect is not None
        await asyncio.sleep(max(0.0, self._first_connect + event.at_s - time.time()))
        logger.info("%s: scenario event %s", self.model.name, event.kind)
        if event.kind == "link_loss":
            self.link_loss(event.refuse_reconnects, event.hidden_s)
        elif event.kind == "contact_loss":
            self.model.contact = False
            await asyncio.sleep(event.duration_s)
            self.model.contact = True
        elif event.kind == "malformed_storm":
            self.storm_rate = event.rate
            self.storm_until = time.time() + event.duration_s
        elif event.kind == "battery":
            elapsed_min = self.model.clock.elapsed(time.time()) / 60.0
            drain = self.model.spec.battery_drain_pct_per_min
            self.model.spec = replace(
                self.model.spec, battery_percent=round(event.percent + drain * elapsed_min)
            )

    def stop(self) -> None:
        """Cancel scripted events and drop any link (simulator shutting down)."""
        for task in self._event_tasks:
            task.cancel()
        if self.connected:
            self._drop_link("simulator stopping")
