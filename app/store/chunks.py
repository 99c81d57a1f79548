"""How the writer gathers sample blocks into chunks (writer thread only).

Sources deliver small blocks (tens of samples).  Compressing each alone would
waste most of the codec's gain, so contiguous blocks of one stream grow one
*segment* of up to ``max_samples``; at every commit the segment is encoded
whole and its row inserted or replaced.  Readers thus see each committed
sample within a commit interval, and the file ends up with one well
compressed row per ``max_samples``.  A segment closes early at a gap, a change
of rate or units, and at the end of its session; it leaves memory once closed
and committed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from devices.frames import SampleBlock

BYTES_PER_SAMPLE = 4


@dataclass(slots=True, eq=False)
class Segment:
    """Contiguous samples of one stream that will be one ``sample_chunks`` row."""

    session_id: int
    stream: str
    fs_hz: float
    units: str
    first_index: int
    t0_s: float
    gap_before: bool
    parts: list[np.ndarray] = field(default_factory=list)
    n: int = 0
    committed_n: int = 0
    rowid: int | None = None
    closed: bool = False
    blocks_uncommitted: int = 0
    gain_hint: float | None = None

    @property
    def end_index(self) -> int:
        """Counter of the sample after the last one held."""
        return self.first_index + self.n

    def samples(self) -> np.ndarray:
        """All samples held, joined once and kept joined."""
        if len(self.parts) != 1:
            self.parts = [np.concatenate(self.parts)] if self.parts else [np.empty(0, np.float32)]
        return self.parts[0]


class SegmentBook:
    """The open segment of each (session, stream), and closed ones awaiting commit.

    Parameters
    ----------
    max_samples
        Size at which a segment closes and the next block opens a new one.
    """

    def __init__(self, max_samples: int) -> None:
        if max_samples <= 0:
            raise ValueError("max_samples must be positive")
        self.max_samples = max_samples
        self._open: dict[tuple[int, str], Segment] = {}
        self._segments: list[Segment] = []
        self.uncommitted_samples = 0

    def add(self, session_id: int, block: SampleBlock) -> None:
        """Append a block, splitting it where it would overfill a segment."""
        key = (session_id, block.stream)
        data = block.samples
        index, t0_s = block.first_index, block.t0_s
        gap = block.gap_before
        while data.size:
            seg = self._open.get(key)
            if seg is not None and not (
                not gap
                and index == seg.end_index
                and block.fs_hz == seg.fs_hz
                and block.units == seg.units
                and seg.n < self.max_samples
            ):
                gap = gap or index != seg.end_index
                seg.closed = True
                seg = None
            if seg is None:
                seg = Segment(session_id, block.stream, block.fs_hz, block.units, index, t0_s, gap)
                self._open[key] = seg
                self._segments.append(seg)
            take = min(data.size, self.max_samples - seg.n)
            seg.parts.append(data[:take])
            seg.n += take
            self.uncommitted_samples += take
            data = data[take:]
            index += take
            # Event-timed streams (fs 0, e.g. RR intervals) keep the block's time.
            t0_s += take / block.fs_hz if block.fs_hz > 0 else 0.0
            gap = False
        seg = self._open.get(key)
        if seg is not None:
            seg.blocks_uncommitted += 1

    def close_session(self, session_id: int) -> None:
        """Close the segments of a session that has ended."""
        for key in [k for k in self._open if k[0] == session_id]:
            self._open.pop(key).closed = True

    def dirty(self) -> list[Segment]:
        """Segments with samples not yet committed, oldest first."""
        return [seg for seg in self._segments if seg.n > seg.committed_n]

    def committed(self, seg: Segment, n: int, rowid: int) -> tuple[int, int]:
        """Record that ``seg``'s first ``n`` samples are in row ``rowid``.

        Returns
        -------
        tuple[int, int]
            Samples and blocks newly stored.
        """
        new = n - seg.committed_n
        seg.committed_n = n
        seg.rowid = rowid
        self.uncommitted_samples -= new
        blocks = seg.blocks_uncommitted if n == seg.n else 0
        if n == seg.n:
            seg.blocks_uncommitted = 0
        return new, blocks

    def forget_committed(self) -> None:
        """Drop closed segments whose every sample is on disk."""
        self._segments = [s for s in self._segments if not (s.closed and s.committed_n == s.n)]

    def discard(self, seg: Segment) -> tuple[int, int]:
        """Give up on a segment that can never be written; returns samples and blocks lost."""
        lost = seg.n - seg.committed_n
        self.uncommitted_samples -= lost
        self._segments.remove(seg)
        if self._open.get((seg.session_id, seg.stream)) is seg:
            del self._open[(seg.session_id, seg.stream)]
        return lost, seg.blocks_uncommitted

    def held(self) -> list[Segment]:
        """Every segment still in memory."""
        return list(self._segments)
