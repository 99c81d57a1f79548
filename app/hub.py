"""Qt-free hub that receives everything the sources deliver and keeps it per bed.

:class:`WardHub` is the :class:`~devices.frames.SourceSink` every source writes
to.  It routes each block into the bed's per-stream :class:`RingBuffer` (for
views and analyzers to pull) and, when a store is attached, onto the store's
queue.  It is called on source threads (replay, BLE); everything it touches is
either lock-protected (rings) or a single atomic reference swap (numerics and
state dictionaries), so the GUI thread can read without locking.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from devices.frames import ConnectionState, DeviceState, Numeric, SampleBlock
from devices.ring import RingBuffer

logger = logging.getLogger(__name__)

#: Seconds of each stream kept in memory: enough for a 20 s event strip and
#: the analyzer's look-back; older data is in the store.
RING_SECONDS: Final = 120.0


#: Source name of numerics computed by Vigil's own ECG analysis.
ECG_ANALYSIS_SOURCE: Final = "ECG analysis"
#: Seconds an ECG-derived HR keeps precedence over a device-reported HR.
HR_PRECEDENCE_S: Final = 10.0

#: Connection states from worst to best: a bed shows its worst device's state.
STATE_RANK: Final = (
    ConnectionState.FAILED,
    ConnectionState.SIGNAL_LOSS,
    ConnectionState.RECONNECTING,
    ConnectionState.DISCONNECTED,
    ConnectionState.CONNECTING,
    ConnectionState.SCANNING,
    ConnectionState.STREAMING,
)

#: Beat marks kept per bed for drawing (about two minutes at normal rates).
MAX_BEAT_MARKS: Final = 300


@dataclass(frozen=True, slots=True)
class BeatMark:
    """A detected beat as drawn on the waveform: where it is and what it was called."""

    sample_index: int
    symbol: str
    confidence: float = 1.0
    probabilities: tuple[float, ...] = ()  # N, S, V, F, Q as the analysis called them


@dataclass
class BedModel:
    """Everything the ward knows about one bed right now.

    Attributes are replaced, never mutated in place, by source threads, so a
    reader on another thread always sees a consistent value.
    """

    bed_id: str
    label: str
    patient: str
    patient_id: str
    rings: dict[str, RingBuffer] = field(default_factory=dict)
    numerics: dict[str, Numeric] = field(default_factory=dict)
    numeric_received_at: dict[str, float] = field(default_factory=dict)
    state: DeviceState = field(
        default_factory=lambda: DeviceState("", ConnectionState.DISCONNECTED, "not started")
    )
    units: dict[str, str] = field(default_factory=dict)
    last_sample_at: float = 0.0
    beats: tuple[BeatMark, ...] = ()
    device_states: dict[str, DeviceState] = field(default_factory=dict)

    def add_beats(self, marks: list[BeatMark]) -> None:
        """Append beat marks (analyzer thread); readers see a consistent tuple."""
        if marks:
            self.beats = (*self.beats, *marks)[-MAX_BEAT_MARKS:]

    def ring(self, stream: str) -> RingBuffer | None:
        """The ring of ``stream`` or None if that stream has not arrived yet."""
        return self.rings.get(stream)


class WardHub:
    """Routes source output to bed models and the store.

    Parameters
    ----------
    beds
        The bed models, by bed id.
    store_block, store_numeric, store_state
        Optional callables that queue data for the store (non-blocking).
    clock
        Monotonic clock, injectable for tests.
    """

    def __init__(
        self,
        beds: dict[str, BedModel],
        *,
        store_block: Callable[[str, SampleBlock], None] | None = None,
        store_numeric: Callable[[str, Numeric], None] | None = None,
        store_state: Callable[[str, DeviceState], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.beds = beds
        self._store_block = store_block
        self._store_numeric = store_numeric
        self._store_state = store_state
        self._clock = clock
        self._lock = threading.Lock()  # guards the counters and ring creation
        self.samples_received = 0
        self.samples_to_ring = 0
        self.samples_to_store = 0
        self.unknown_bed_blocks = 0
        #: Called after a numeric is recorded, on the delivering thread.
        self.numeric_listeners: list[Callable[[str, Numeric], None]] = []
        #: Called after a state change is recorded, on the delivering thread.
        self.state_listeners: list[Callable[[str, DeviceState], None]] = []

    def _bed(self, bed_id: str) -> BedModel | None:
        bed = self.beds.get(bed_id)
        if bed is None:
            with self._lock:
                self.unknown_bed_blocks += 1
            logger.warning("data for unknown bed dropped", extra={"bed": bed_id})
        return bed

    def on_block(self, bed_id: str, block: SampleBlock) -> None:
        """Receive a block; called on a source thread."""
        n = len(block.samples)
        with self._lock:
            self.samples_received += n
        bed = self._bed(bed_id)
        if bed is None:
            return
        if block.fs_hz <= 0:
            # Event-timed streams (RR intervals from a chest strap, one value per
            # beat) are recorded but have no ring: views draw sampled signals only.
            self._queue_block(bed_id, block, n)
            return
        ring = bed.rings.get(block.stream)
        if ring is None or ring.fs_hz != block.fs_hz:
            with self._lock:
                ring = bed.rings.get(block.stream)
                if ring is None or ring.fs_hz != block.fs_hz:
                    ring = RingBuffer(int(RING_SECONDS * block.fs_hz), block.fs_hz)
                    bed.rings = {**bed.rings, block.stream: ring}
                    bed.units = {**bed.units, block.stream: block.units}
        stored = ring.push(block.first_index, block.samples)
        bed.last_sample_at = self._clock()
        with self._lock:
            self.samples_to_ring += stored
        self._queue_block(bed_id, block, n)

    def _queue_block(self, bed_id: str, block: SampleBlock, n: int) -> None:
        if self._store_block is None:
            return
        try:
            self._store_block(bed_id, block)
        except Exception:  # the store reports its own failures as technical alarms
            logger.exception("store queue refused a block", extra={"bed": bed_id})
            return
        with self._lock:
            self.samples_to_store += n

    def on_numeric(self, bed_id: str, numeric: Numeric) -> None:
        """Receive a numeric; called on a source or analyzer thread."""
        bed = self._bed(bed_id)
        if bed is None:
            return
        if numeric.name == "hr" and numeric.source != ECG_ANALYSIS_SOURCE:
            # HR counted from the ECG outranks a device's own HR while it is fresh.
            ecg_hr = bed.numerics.get("hr")
            fresh = self._clock() - bed.numeric_received_at.get("hr", -1e9) < HR_PRECEDENCE_S
            if ecg_hr is not None and ecg_hr.source == ECG_ANALYSIS_SOURCE and fresh:
                numeric = Numeric(
                    "hr_device", numeric.value, numeric.units, numeric.t_s, numeric.source
                )
        bed.numerics = {**bed.numerics, numeric.name: numeric}
        bed.numeric_received_at = {**bed.numeric_received_at, numeric.name: self._clock()}
        if self._store_numeric is not None:
            try:
                self._store_numeric(bed_id, numeric)
            except Exception:
                logger.exception("store queue refused a numeric", extra={"bed": bed_id})
        for listener in self.numeric_listeners:
            try:
                listener(bed_id, numeric)
            except Exception:  # alarm logic must never take a source down
                logger.exception("numeric listener failed", extra={"bed": bed_id})

    def on_state(self, bed_id: str, state: DeviceState) -> None:
        """Receive a connection-state change; called on a source thread."""
        bed = self._bed(bed_id)
        if bed is None:
            return
        bed.device_states = {**bed.device_states, state.device: state}
        bed.state = min(bed.device_states.values(), key=lambda s: STATE_RANK.index(s.state))
        log = logger.warning if state.state is ConnectionState.FAILED else logger.info
        log(
            "bed source state",
            extra={"bed": bed_id, "state": state.state.value, "detail": state.detail},
        )
        if self._store_state is not None:
            try:
                self._store_state(bed_id, state)
            except Exception:
                logger.exception("store queue refused a state", extra={"bed": bed_id})
        for listener in self.state_listeners:
            try:
                listener(bed_id, state)
            except Exception:
                logger.exception("state listener failed", extra={"bed": bed_id})

    def counters(self) -> dict[str, int]:
        """A consistent snapshot of the sample counters."""
        with self._lock:
            return {
                "received": self.samples_received,
                "to_ring": self.samples_to_ring,
                "to_store": self.samples_to_store,
                "unknown_bed_blocks": self.unknown_bed_blocks,
            }
