"""Per-stream ring buffer: sources push, views and analyzers pull.

High-rate samples never travel as Qt signals (DESIGN.md rule 3): a source pushes
each :class:`~devices.frames.SampleBlock` into the stream's ring, and the
30 Hz render timer or the analyzer reads a contiguous window by absolute sample
counter.  The lock is held only for the copy in and the copy out.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class RingWindow:
    """A contiguous window read from a :class:`RingBuffer`.

    Parameters
    ----------
    first_index
        Absolute counter of ``samples[0]``.
    samples
        Read-only float32 copy of the window.
    fs_hz
        Sampling rate of the stream.
    """

    first_index: int
    samples: np.ndarray
    fs_hz: float

    @property
    def end_index(self) -> int:
        """Counter of the sample after the last one in the window."""
        return self.first_index + len(self.samples)


class RingBuffer:
    """A fixed-capacity circular buffer indexed by absolute sample counter.

    Parameters
    ----------
    capacity
        Number of samples kept; older samples are overwritten.
    fs_hz
        Sampling rate of the stream (carried into windows for the reader).

    Notes
    -----
    A block whose ``first_index`` jumps ahead of the buffer's end fills the
    hole with NaN, so that a gap shows as a gap in the trace; a block that
    starts before the end (a duplicate) has its overlapping part dropped and
    counted in :attr:`overlapped`.
    """

    def __init__(self, capacity: int, fs_hz: float) -> None:
        if capacity <= 0:
            raise ValueError(f"capacity must be positive, got {capacity}")
        self._data = np.full(capacity, np.nan, dtype=np.float32)
        self._capacity = capacity
        self.fs_hz = float(fs_hz)
        self._end = 0  # absolute counter of the next sample to be written
        self._start: int | None = None  # counter of the first sample ever written
        self._lock = threading.Lock()
        self.pushed = 0
        self.overlapped = 0
        self.gap_samples = 0

    @property
    def capacity(self) -> int:
        """Number of samples the buffer holds."""
        return self._capacity

    @property
    def end_index(self) -> int:
        """Counter of the sample after the newest one."""
        with self._lock:
            return self._end

    @property
    def start_index(self) -> int:
        """Counter of the oldest sample still held."""
        with self._lock:
            return self._oldest()

    def _oldest(self) -> int:
        if self._start is None:
            return self._end
        return max(self._start, self._end - self._capacity)

    def push(self, first_index: int, samples: np.ndarray) -> int:
        """Append samples that start at absolute counter ``first_index``.

        Returns the number of samples actually stored (0 for a full duplicate).
        """
        values = np.asarray(samples, dtype=np.float32)
        n = len(values)
        if n == 0:
            return 0
        with self._lock:
            if self._start is None:
                self._start = first_index
                self._end = first_index
            if first_index < self._end:
                skip = self._end - first_index
                self.overlapped += min(skip, n)
                if skip >= n:
                    return 0
                values = values[skip:]
                first_index = self._end
            if first_index > self._end:
                hole = first_index - self._end
                self.gap_samples += hole
                fill = min(hole, self._capacity)
                self._write(np.full(fill, np.nan, np.float32), first_index - fill)
            self._write(values, first_index)
            self._end = first_index + len(values)
            self.pushed += len(values)
            return len(values)

    def _write(self, values: np.ndarray, at_index: int) -> None:
        cap = self._capacity
        if len(values) > cap:
            at_index += len(values) - cap
            values = values[-cap:]
        pos = at_index % cap
        first = min(cap - pos, len(values))
        self._data[pos : pos + first] = values[:first]
        if first < len(values):
            self._data[: len(values) - first] = values[first:]

    def read(self, start_index: int, stop_index: int) -> RingWindow:
        """Copy out samples ``[start_index, stop_index)``, clipped to what is held."""
        with self._lock:
            lo = max(start_index, self._oldest())
            hi = min(stop_index, self._end)
            if hi <= lo:
                out = np.empty(0, dtype=np.float32)
                lo = max(lo, min(start_index, self._end))
            else:
                cap = self._capacity
                pos = lo % cap
                n = hi - lo
                first = min(cap - pos, n)
                out = np.empty(n, dtype=np.float32)
                out[:first] = self._data[pos : pos + first]
                if first < n:
                    out[first:] = self._data[: n - first]
        out.flags.writeable = False
        return RingWindow(lo, out, self.fs_hz)

    def latest(self, n_samples: int) -> RingWindow:
        """Copy out the newest ``n_samples`` samples (fewer if not yet held)."""
        with self._lock:
            end = self._end
        return self.read(end - n_samples, end)
