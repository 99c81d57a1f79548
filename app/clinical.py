"""Qt-free clinical watch: turns numerics, device states and analyzer output into alarms.

:class:`ClinicalWatch` owns the :class:`~app.alarms.AlarmManager` and one
:class:`~inference.vitals.VitalsMonitor` per bed.  It listens to the
:class:`~app.hub.WardHub` (numerics, states: called on source and analyzer
threads, serialised by a per-bed lock), takes rhythm conditions from the
inference thread, and is ticked once a second by the GUI's slow timer for
time-based behaviour (audio pause expiry, reminders, stale data, signal loss).

Technical conditions it raises itself:

* ``source_failed`` (medium) — a recording that cannot be read, a device that
  failed; the message names the file or device.
* ``signal_loss`` (medium) — a bed that was streaming has delivered no sample
  for :data:`SIGNAL_LOSS_S` (IEC 60601-2-27 asks for the HR alarm within 10 s;
  losing the signal must be announced within that time too).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Final

from app.alarms import AlarmCondition, AlarmLogEntry, AlarmManager, AlarmSettings, Priority
from app.hub import BedModel
from devices.frames import ConnectionState, DeviceState, Numeric
from inference.vitals import PatientLimits, VitalsMonitor

logger = logging.getLogger(__name__)

#: A streaming bed silent for this long raises "signal loss".
SIGNAL_LOSS_S: Final = 8.0
#: Pseudo-bed of ward-wide technical alarms (the store, the model).
WARD_ID: Final = "ward"
#: Rhythm kinds whose live alarm is left to the HR limit alarms of the vitals
#: (one source per bed for rate alarms, so a bradycardia does not alarm twice).
RATE_KINDS_FROM_VITALS: Final = frozenset({"brady", "tachy"})


class ClinicalWatch:
    """Alarm logic of the ward.

    Parameters
    ----------
    beds
        The ward's bed models.
    audio
        The alarm sound output (or None for silent runs).
    on_log
        Receives every alarm-log update (store writer); must not block.
    clock
        Monotonic clock (injectable for tests).
    """

    def __init__(
        self,
        beds: dict[str, BedModel],
        *,
        audio=None,
        on_log: Callable[[AlarmLogEntry], None] | None = None,
        settings: AlarmSettings | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.beds = beds
        self._clock = clock
        self.manager = AlarmManager(settings, clock=clock, audio=audio, on_log=on_log)
        self._vitals = {bed_id: VitalsMonitor(bed_id) for bed_id in beds}
        self._locks = {bed_id: threading.Lock() for bed_id in beds}
        self._raised_loss: set[str] = set()
        self._ward_raised: set[str] = set()
        #: Polled on every tick for ward-wide health: returns (kind, message, active) triples.
        self.health_checks: list[Callable[[], Iterable[tuple[str, str, bool]]]] = []
        #: Called on every tick after the checks (e.g. explaining new events).
        self.tick_hooks: list[Callable[[], None]] = []

    # -- inputs (any thread) -------------------------------------------------------------
    def on_numeric(self, bed_id: str, numeric: Numeric) -> None:
        """A numeric arrived (source or analyzer thread)."""
        vm = self._vitals.get(bed_id)
        if vm is None:
            return
        with self._locks[bed_id]:
            updates = vm.update(numeric)
        self.manager.submit_all(updates)

    def on_state(self, bed_id: str, state: DeviceState) -> None:
        """A source changed state (source thread)."""
        if bed_id not in self._vitals:
            return
        if state.state is ConnectionState.FAILED:
            self.manager.submit(
                AlarmCondition(
                    bed_id,
                    "source_failed",
                    Priority.MEDIUM,
                    f"Source failed: {state.detail}",
                    technical=True,
                    t_s=state.t_s,
                    source=state.device,
                )
            )
        elif state.state is ConnectionState.SIGNAL_LOSS:
            self._raise_loss(bed_id, f"Signal loss: {state.device}")
        elif state.state is ConnectionState.STREAMING:
            self.manager.submit(
                AlarmCondition(
                    bed_id, "source_failed", Priority.MEDIUM, "", technical=True, active=False
                )
            )

    def on_conditions(self, conditions: Iterable[AlarmCondition]) -> None:
        """Rhythm/technical conditions from the inference thread."""
        self.manager.submit_all(c for c in conditions if c.kind not in RATE_KINDS_FROM_VITALS)

    def ward_technical(
        self, kind: str, message: str, active: bool, priority: Priority = Priority.MEDIUM
    ) -> None:
        """Raise or clear a ward-wide technical condition (store failure, model missing)."""
        if active == (kind in self._ward_raised):
            return
        if active:
            self._ward_raised.add(kind)
        else:
            self._ward_raised.discard(kind)
        self.manager.submit(
            AlarmCondition(
                WARD_ID, kind, priority, message, technical=True, active=active, t_s=self._clock()
            )
        )

    # -- staff actions ---------------------------------------------------------------------
    def set_limits(self, bed_id: str, limits: PatientLimits) -> None:
        """Apply new per-patient limits; raised alarms are re-checked at once."""
        with self._locks[bed_id]:
            updates = self._vitals[bed_id].set_limits(limits)
        self.manager.submit_all(updates)
        logger.info("limits changed", extra={"bed": bed_id, "limits": str(limits)})

    def limits(self, bed_id: str) -> PatientLimits:
        """The limits in force for a bed."""
        return self._vitals[bed_id].limits

    def news2_text(self, bed_id: str) -> str:
        """The bed's NEWS2 line (partial scores name the missing inputs)."""
        with self._locks[bed_id]:
            return self._vitals[bed_id].news2().text

    # -- time (GUI thread, 1 Hz) -------------------------------------------------------------
    def tick(self) -> None:
        """Advance time: stale vitals, signal loss, audio pause and reminders."""
        now = self._clock()
        for bed_id, bed in self.beds.items():
            silent = bed.last_sample_at > 0 and now - bed.last_sample_at > SIGNAL_LOSS_S
            streaming = bed.state.state in (ConnectionState.STREAMING, ConnectionState.SIGNAL_LOSS)
            if silent and streaming:
                self._raise_loss(
                    bed_id, f"Signal loss: no data for {now - bed.last_sample_at:.0f} s"
                )
            elif not silent and bed_id in self._raised_loss:
                self._raised_loss.discard(bed_id)
                self.manager.submit(
                    AlarmCondition(
                        bed_id, "signal_loss", Priority.MEDIUM, "", technical=True, active=False
                    )
                )
            latest = [n.t_s for n in bed.numerics.values()]
            if latest:
                with self._locks[bed_id]:
                    updates = self._vitals[bed_id].tick(max(latest))
                self.manager.submit_all(updates)
        for check in self.health_checks:
            try:
                for kind, message, active in check():
                    self.ward_technical(kind, message, active)
            except Exception:
                logger.exception("health check failed")
        for hook in self.tick_hooks:
            try:
                hook()
            except Exception:
                logger.exception("tick hook failed")
        self.manager.tick()

    def _raise_loss(self, bed_id: str, message: str) -> None:
        self._raised_loss.add(bed_id)
        self.manager.submit(
            AlarmCondition(
                bed_id, "signal_loss", Priority.MEDIUM, message, technical=True, t_s=self._clock()
            )
        )
