"""Beat-sequence stage of rhythm analysis: runs, ectopy patterns and RR irregularity.

These trackers read the classified beat stream (AAMI symbols N, S, V, F, Q
and R-peak samples) and report what the sequence shows; they do not decide
priorities or alarms -- :class:`inference.rhythm.RhythmAnalyzer` does.

* :class:`RunTracker` -- consecutive beats of one class (V for ventricular
  runs, S for supraventricular runs) with their rate.
* :class:`PatternTracker` -- ventricular bigeminy (every second beat a V)
  and trigeminy (every third beat a V) as counted cycles.
* :class:`IrregularityTracker` -- RR irregularity of the beats between
  ectopics over a sliding window, the basis of the atrial-fibrillation call.

AF in the clinic's words: "irregularly irregular" ventricular response with
no dominant RR interval.  The tracker keeps the last ``window`` RR intervals
between consecutive non-ectopic beats (an interval touching a V or S beat is
left out, so ectopy patterns such as atrial or ventricular bigeminy are not
mistaken for AF) and scores them with two descriptors used in the AF
literature: the share of successive RR differences larger than a fraction of
the mean RR (a normalised pNNx), and the normalised RMSSD [1]_ [2]_.

References
----------
.. [1] S. Dash, K. H. Chon, S. Lu, E. A. Raeder, "Automatic real time
   detection of atrial fibrillation", Ann. Biomed. Eng. 37(9):1701-1709, 2009.
.. [2] K. Tateno, L. Glass, "Automatic detection of atrial fibrillation using
   the coefficient of variation and density histograms of RR and deltaRR
   intervals", Med. Biol. Eng. Comput. 39:664-671, 2001.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import Final

import numpy as np

#: Symbols that are ectopic (not part of the underlying rhythm's RR series).
ECTOPIC: Final = frozenset({"V", "S"})


@dataclass(slots=True)
class Run:
    """Consecutive beats of one class.

    Attributes
    ----------
    samples
        R-peak samples of the run's beats.
    qualities
        Signal quality of each beat.
    """

    samples: list[int] = field(default_factory=list)
    qualities: list[float] = field(default_factory=list)

    @property
    def beats(self) -> int:
        """Number of beats in the run."""
        return len(self.samples)

    def rate_bpm(self, fs_hz: float) -> float:
        """Mean rate over the run's own RR intervals (NaN for a single beat)."""
        if len(self.samples) < 2:
            return math.nan
        span = (self.samples[-1] - self.samples[0]) / fs_hz
        return 60.0 * (len(self.samples) - 1) / span if span > 0 else math.nan

    @property
    def mean_quality(self) -> float:
        """Mean signal quality of the run's beats."""
        return float(np.mean(self.qualities)) if self.qualities else 1.0


class RunTracker:
    """Tracks the current run of beats whose symbol is ``symbol``.

    Parameters
    ----------
    symbol
        The AAMI class of the run (``"V"`` or ``"S"``).
    """

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.current = Run()

    def add(self, sample: int, symbol: str, quality: float) -> Run | None:
        """Take the next beat; return the run it ended (if any), else None."""
        if symbol == self.symbol:
            self.current.samples.append(sample)
            self.current.qualities.append(quality)
            return None
        return self.reset()

    def reset(self) -> Run | None:
        """End the current run (e.g. at a gap in analysis); return it if not empty."""
        ended, self.current = self.current, Run()
        return ended if ended.beats else None


@dataclass(slots=True)
class Pattern:
    """A repeated ectopy pattern: ``cycles`` V beats each after ``period - 1`` others."""

    period: int
    onset_sample: int = 0
    last_sample: int = 0
    cycles: int = 0


class PatternTracker:
    """Counts bigeminy (period 2) or trigeminy (period 3) cycles.

    A cycle is a V beat preceded by exactly ``period - 1`` non-V beats since
    the previous V beat; the pattern holds while each V keeps that spacing.
    """

    def __init__(self, period: int) -> None:
        self.period = period
        self._since_v: int | None = None  # non-V beats since the last V (None: no V yet)
        self._first_of_cycle: int | None = None  # first beat of the current cycle
        self._prev_sample: int | None = None
        self.current = Pattern(period)

    def add(self, sample: int, symbol: str) -> Pattern | None:
        """Take the next beat; return the pattern it ended (if any), else None."""
        ended: Pattern | None = None
        if symbol == "V":
            if self._since_v == self.period - 1:
                if self.current.cycles == 0:
                    self.current.onset_sample = self._first_of_cycle or sample
                    self.current.cycles = 1  # the previous V closed the first cycle
                self.current.cycles += 1
                self.current.last_sample = sample
            else:
                ended = self._end()
            self._since_v = 0
            self._first_of_cycle = self._prev_sample
        else:
            if self._since_v is not None:
                self._since_v += 1
                if self._since_v >= self.period:
                    ended = self._end()
        self._prev_sample = sample
        return ended

    def _end(self) -> Pattern | None:
        ended, self.current = self.current, Pattern(self.period)
        return ended if ended.cycles else None

    def reset(self) -> Pattern | None:
        """Forget the sequence (gap in analysis); return the pattern it ended."""
        self._since_v = None
        self._first_of_cycle = None
        self._prev_sample = None
        return self._end()


@dataclass(frozen=True, slots=True)
class Irregularity:
    """RR irregularity of the last window of non-ectopic intervals.

    Attributes
    ----------
    irregular_share
        Share of successive RR differences above the threshold fraction of the mean RR.
    nrmssd
        RMSSD of the intervals divided by their mean.
    onset_sample
        First beat of the window.
    end_sample
        Last beat of the window.
    mean_rr_s
        Mean RR of the window in seconds.
    """

    irregular_share: float
    nrmssd: float
    onset_sample: int
    end_sample: int
    mean_rr_s: float


class IrregularityTracker:
    """Sliding window of RR intervals between consecutive non-ectopic beats.

    Parameters
    ----------
    fs_hz
        Sampling rate of the beat samples.
    window
        Number of RR intervals scored.
    delta_fraction
        A successive difference counts as irregular above this fraction of the mean RR.
    max_rr_s
        Longer intervals (pauses, missed beats) are not used.
    """

    def __init__(
        self, fs_hz: float, window: int = 32, delta_fraction: float = 0.1, max_rr_s: float = 2.0
    ) -> None:
        self.fs_hz = fs_hz
        self.window = window
        self.delta_fraction = delta_fraction
        self.max_rr = max_rr_s * fs_hz
        self._rr: deque[tuple[int, int]] = deque(maxlen=window)  # (start, end) sample pairs
        self._prev: tuple[int, str] | None = None

    def add(self, sample: int, symbol: str) -> Irregularity | None:
        """Take the next beat; return the window's irregularity once it is full."""
        prev, self._prev = self._prev, (sample, symbol)
        if prev is None or prev[1] in ECTOPIC or symbol in ECTOPIC:
            return None
        rr = sample - prev[0]
        if rr <= 0 or rr > self.max_rr:
            return None
        self._rr.append((prev[0], sample))
        if len(self._rr) < self.window:
            return None
        return self.score()

    def score(self) -> Irregularity | None:
        """Irregularity of the intervals held now (None if fewer than a window)."""
        if len(self._rr) < self.window:
            return None
        rr = np.array([b - a for a, b in self._rr], dtype=np.float64)
        mean = float(rr.mean())
        d = np.diff(rr)
        share = float(np.mean(np.abs(d) > self.delta_fraction * mean))
        nrmssd = float(np.sqrt(np.mean(d * d)) / mean)
        return Irregularity(share, nrmssd, self._rr[0][0], self._rr[-1][1], mean / self.fs_hz)

    def reset(self) -> None:
        """Forget the intervals (gap in analysis)."""
        self._rr.clear()
        self._prev = None
