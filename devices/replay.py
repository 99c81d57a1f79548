"""Replay a recording as if it were a live bedside device.

:class:`ReplaySource` paces a :class:`~devices.recording.Recording` in real
time (times a speed factor) on its own thread, loops at the end, and delivers
:class:`~devices.frames.SampleBlock` and :class:`~devices.frames.Numeric`
records to a :class:`~devices.frames.SourceSink`.  Per-stream sample counters
and timestamps keep increasing across loops, exactly as a wearable's would.

The pacing logic is in :meth:`ReplaySource.pump`, which takes the clock
reading as an argument, so tests drive it with an injected clock and no
thread.  A file that cannot be read turns the bed's state to
:attr:`~devices.frames.ConnectionState.FAILED` with the file named; other beds
are unaffected because each source has its own thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Final

import numpy as np

from devices.frames import ConnectionState, DeviceState, Numeric, SampleBlock, SourceSink
from devices.recording import Recording, RecordingError, load_recording

logger = logging.getLogger(__name__)

#: How often the replay thread wakes to emit samples; wearables deliver a
#: notification every few tens of milliseconds, so this resembles them.
TICK_S: Final = 0.04
#: Longest stretch emitted at once after a stall (a suspended laptop, a
#: debugger): beyond this the replay skips ahead and marks a gap instead of
#: flooding the buffers.
MAX_CATCH_UP_S: Final = 5.0


class ReplaySource:
    """Plays one recording into one bed.

    Parameters
    ----------
    bed_id
        Bed that receives the data.
    path_or_recording
        A path (read on the replay thread, so a slow or bad file never blocks
        the caller) or an already loaded :class:`Recording`.
    sink
        Receives blocks, numerics and states; called on the replay thread.
    speed
        Replay speed factor (1.0 = real time).
    clock
        Monotonic clock in seconds; injectable for tests.
    start_s
        Offset into the recording where playback starts.
    """

    def __init__(
        self,
        bed_id: str,
        path_or_recording: str | Path | Recording,
        sink: SourceSink,
        *,
        speed: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        start_s: float = 0.0,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed must be positive, got {speed}")
        self.bed_id = bed_id
        self._source = path_or_recording
        self._sink = sink
        self.speed = float(speed)
        self._clock = clock
        self._start_s = float(start_s)
        self.recording: Recording | None = (
            path_or_recording if isinstance(path_or_recording, Recording) else None
        )
        self._t_start: float | None = None
        self._emitted: dict[str, int] = {}
        self._numeric_pos: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.samples_emitted = 0
        self.gaps = 0

    @property
    def device(self) -> str:
        """The file being replayed, as shown on the bed tile."""
        if self.recording is not None:
            return self.recording.name
        return Path(str(self._source)).name

    # -- pacing ------------------------------------------------------------------
    def load(self) -> Recording:
        """Read the recording if not yet read; raises :class:`RecordingError`."""
        if self.recording is None:
            self.recording = load_recording(self._source)  # type: ignore[arg-type]
        return self.recording

    def pump(self, now: float) -> int:
        """Emit everything due at clock reading ``now``; returns samples emitted."""
        rec = self.load()
        if self._t_start is None:
            self._t_start = now
            for name, stream in rec.streams.items():
                self._emitted[name] = int(round(self._start_s * stream.fs_hz))
        elapsed_rec_s = (now - self._t_start) * self.speed + self._start_s
        total = 0
        for name, stream in rec.streams.items():
            due = int(elapsed_rec_s * stream.fs_hz)
            done = self._emitted[name]
            gap = False
            max_n = int(MAX_CATCH_UP_S * self.speed * stream.fs_hz) + 1
            if due - done > max_n:
                logger.warning(
                    "replay stalled; skipping ahead",
                    extra={"bed": self.bed_id, "stream": name, "samples": due - done - max_n},
                )
                done = due - max_n
                gap = True
                self.gaps += 1
            if due > done:
                self._emit_stream(stream, done, due, gap)
                total += due - done
                self._emitted[name] = due
        self._emit_numerics(rec, elapsed_rec_s)
        self.samples_emitted += total
        return total

    def _emit_stream(self, stream, start: int, stop: int, gap: bool) -> None:
        n = len(stream.samples)
        idx = start
        while idx < stop:
            pos = idx % n
            take = min(stop - idx, n - pos)
            block = SampleBlock(
                stream=stream.name,
                fs_hz=stream.fs_hz,
                first_index=idx,
                t0_s=idx / stream.fs_hz,
                samples=stream.samples[pos : pos + take],
                units=stream.units,
                gap_before=gap and idx == start,
            )
            self._sink.on_block(self.bed_id, block)
            idx += take

    def _emit_numerics(self, rec: Recording, elapsed_rec_s: float) -> None:
        duration = rec.duration_s
        for name, series in rec.numerics.items():
            pos = self._numeric_pos.get(name)
            if pos is None:
                pos = int(np.searchsorted(series.t_s, self._start_s))
            n = len(series.t_s)
            while n:
                loop, i = divmod(pos, n)
                t = series.t_s[i] + loop * duration
                if t > elapsed_rec_s:
                    break
                value = float(series.values[i])
                self._sink.on_numeric(
                    self.bed_id, Numeric(name, value, series.units, t, self.device)
                )
                pos += 1
            self._numeric_pos[name] = pos

    # -- thread ------------------------------------------------------------------
    def start(self) -> None:
        """Start the replay thread (idempotent)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name=f"replay-{self.bed_id}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Stop and join the replay thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.error("replay thread did not stop", extra={"bed": self.bed_id})
            self._thread = None

    def _state(self, state: ConnectionState, detail: str = "") -> None:
        self._sink.on_state(
            self.bed_id,
            DeviceState(self.device, state, detail, time.monotonic(), {"gaps": self.gaps}),
        )

    def _run(self) -> None:
        self._state(ConnectionState.CONNECTING, f"reading {self.device}")
        try:
            self.load()
        except RecordingError as exc:
            logger.error("cannot replay recording", extra={"bed": self.bed_id, "error": str(exc)})
            self._state(ConnectionState.FAILED, str(exc))
            return
        except Exception as exc:  # a bug in a reader must not take the ward down
            logger.exception("unexpected error reading recording", extra={"bed": self.bed_id})
            self._state(ConnectionState.FAILED, f"{self._source}: {exc}")
            return
        self._state(ConnectionState.STREAMING, self.device)
        try:
            while not self._stop.is_set():
                self.pump(self._clock())
                self._stop.wait(TICK_S)
        except Exception as exc:
            logger.exception("replay failed", extra={"bed": self.bed_id})
            self._state(ConnectionState.FAILED, f"replay error: {exc}")
            return
        self._state(ConnectionState.DISCONNECTED, "stopped")
