"""The feature stage of the QRS detector: filters, QRS energy, candidates.

:class:`QrsFrontEnd` turns blocks of raw ECG into the traces the decision
stage in :mod:`inference.qrs` looks at (baseline-corrected ECG, absolute
slope of the 5-20 Hz band, QRS energy) and into candidate beats: peaks of the
QRS energy that dominate ±``peak_halfwidth_s``, each placed on its R wave and
scored by its steepest slope.  It also notes where NaN gaps end.  Everything
is causal and carried across blocks, so any block split gives the same
candidates; a candidate is reported once the energy ``h`` samples after its
peak is known.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Final

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from inference.dsp import (
    StreamingFilter,
    StreamingMovingRms,
    design_bandpass,
    design_highpass,
    window_max,
)

# Slopes are clipped at 20 V/s, far beyond any ECG (see StreamingMovingRms).
_MAX_SLOPE_MV_PER_S: Final = 2.0e4


@dataclass(slots=True)
class Candidate:
    """A possible beat."""

    peak: int  # sample of the QRS-energy peak
    r: int  # R-peak sample
    energy: float
    slope: float


@dataclass(slots=True)
class History:
    """The last few seconds of per-sample traces, addressed by absolute index."""

    start: int = 0
    raw: np.ndarray = field(default_factory=lambda: np.empty(0))
    centred: np.ndarray = field(default_factory=lambda: np.empty(0))
    slope: np.ndarray = field(default_factory=lambda: np.empty(0))
    energy: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def end(self) -> int:
        return self.start + len(self.raw)

    def append(
        self, raw: np.ndarray, centred: np.ndarray, slope: np.ndarray, energy: np.ndarray
    ) -> None:
        self.raw = np.concatenate((self.raw, raw))
        self.centred = np.concatenate((self.centred, centred))
        self.slope = np.concatenate((self.slope, slope))
        self.energy = np.concatenate((self.energy, energy))

    def trim(self, keep: int) -> None:
        drop = len(self.raw) - keep
        if drop > 0:
            self.raw, self.centred = self.raw[drop:], self.centred[drop:]
            self.slope, self.energy = self.slope[drop:], self.energy[drop:]
            self.start += drop


def samples_of(seconds: float, fs_hz: float) -> int:
    """A duration as a whole number of samples, at least one."""
    return max(1, int(round(seconds * fs_hz)))


def unfound_lag_samples(fs_hz: float, peak_halfwidth_s: float, r_search_s: float) -> int:
    """How far :attr:`QrsFrontEnd.first_unfound_r` trails the newest sample.

    A candidate is confirmed one half-width after its energy peak, and its R
    wave may lie up to the R-wave search before that peak.
    """
    return samples_of(peak_halfwidth_s, fs_hz) + samples_of(r_search_s, fs_hz)


class QrsFrontEnd:
    """Filters and candidate finder of one lead (one thread).

    Parameters
    ----------
    fs_hz
        Sampling rate.
    band_hz
        QRS band (low, high) in Hz.
    baseline_hz, baseline_order
        High-pass that centres the ECG for placing R waves.
    integration_s
        QRS-energy averaging window.
    peak_halfwidth_s
        A candidate dominates the energy this far either side.
    r_search_s
        The R wave is sought this far back from the energy peak.
    gap_reset_s
        NaN runs at least this long are marked long gaps.
    """

    def __init__(
        self,
        fs_hz: float,
        band_hz: tuple[float, float],
        baseline_hz: float,
        baseline_order: int,
        integration_s: float,
        peak_halfwidth_s: float,
        r_search_s: float,
        gap_reset_s: float,
    ) -> None:
        self.fs_hz = float(fs_hz)
        self._band = StreamingFilter(design_bandpass(fs_hz, band_hz[0], band_hz[1], 2))
        self._baseline = StreamingFilter(design_highpass(fs_hz, baseline_hz, baseline_order))
        self.h = samples_of(peak_halfwidth_s, fs_hz)
        self._r_search = samples_of(r_search_s, fs_hz)
        self._gap_reset = samples_of(gap_reset_s, fs_hz)
        self._energy = StreamingMovingRms(samples_of(integration_s, fs_hz), _MAX_SLOPE_MV_PER_S)
        self.n = 0  # samples received
        self._last_band = np.nan
        # History starts with silent padding at negative indices so that
        # look-back windows near the start need no special case.
        pad = self._r_search + 3 * self.h
        self.hist = History(
            start=-pad,
            raw=np.full(pad, np.nan),
            centred=np.zeros(pad),
            slope=np.zeros(pad),
            energy=np.zeros(pad),
        )
        self._scanned = 0  # next energy sample not yet tested as a peak
        self._nan_run = 0
        #: End of each NaN run, in order; negative (``-end``) for a long gap.
        self.gap_ends: deque[int] = deque()

    @property
    def first_unfound_r(self) -> int:
        """No candidate found after now has its R wave before this sample.

        While data streams in it trails the newest sample by
        :func:`unfound_lag_samples`.
        """
        return self._scanned - self._r_search

    def push(self, x: np.ndarray) -> list[Candidate]:
        """Take the next block (float64 mV); return the candidates it confirms."""
        if len(x) == 0:
            return []
        self._features(x)
        return self._find_candidates(final=False)

    def finish(self) -> list[Candidate]:
        """Candidates left at the end of the data (the future counts as silence)."""
        return self._find_candidates(final=True)

    def _features(self, x: np.ndarray) -> None:
        band = self._band.process(x)
        centred = self._baseline.process(x)
        slope = np.empty_like(band)
        slope[0] = band[0] - self._last_band
        np.subtract(band[1:], band[:-1], out=slope[1:])
        slope *= self.fs_hz
        self._last_band = band[-1]
        gaps = not np.isfinite(slope).all()
        if gaps:  # the filters put NaN over gaps; no slope there
            slope[~np.isfinite(slope)] = 0.0
            centred[~np.isfinite(centred)] = 0.0
        energy = self._energy.process(slope)
        self._note_gaps(x)
        np.abs(slope, out=slope)
        self.hist.append(x, centred, slope, energy)
        self.n += len(x)

    def _note_gaps(self, x: np.ndarray) -> None:
        """Queue the end of every NaN run; a run of ``gap_reset_s`` or more is marked long."""
        bad = ~np.isfinite(x)
        if not bad.any() and not self._nan_run:
            return
        prefix = np.int8(1 if self._nan_run else 0)
        step = np.diff(bad.astype(np.int8), prepend=prefix)
        starts = np.flatnonzero(step == 1).tolist()
        ends = np.flatnonzero(step == -1).tolist()
        run_starts = ([-self._nan_run] if self._nan_run else []) + starts
        for run_start, end in zip(run_starts, ends, strict=False):
            at = self.n + end
            self.gap_ends.append(-at if end - run_start >= self._gap_reset else at)
        if bad[-1]:
            self._nan_run = len(x) - run_starts[len(ends)]
        else:
            self._nan_run = 0

    def _find_candidates(self, final: bool) -> list[Candidate]:
        h, hist = self.h, self.hist
        first = max(self._scanned, hist.start + self._r_search + 2 * h)
        last = hist.end if final else hist.end - h  # exclusive
        if last <= first:
            return []
        e = hist.energy
        lo = first - h - hist.start
        seg = e[lo : last + h - hist.start]
        if final:
            seg = np.concatenate((seg, np.full(h, -np.inf)))
        n = last - first
        left = window_max(seg[: n + h - 1], h)[:n]
        right = window_max(seg[h + 1 :], h)[:n]
        centre = seg[h : h + n]
        peaks = np.flatnonzero((centre >= left) & (centre > right) & (centre > 0)) + first
        self._scanned = last
        if len(peaks) == 0:
            return []
        rel = peaks - hist.start
        width = self._r_search
        starts = np.maximum(rel - width + 1, 0)
        win_c = sliding_window_view(np.abs(hist.centred), width)[starts]
        r_rel = np.minimum(starts + np.argmax(win_c, axis=1), rel)
        # The candidate's own steepest slope, from just before its R wave to
        # its energy peak (so a T wave is not credited with the QRS before it).
        span = width + h
        s_starts = np.maximum(rel - span + 1, 0)
        win_s = sliding_window_view(hist.slope, span)[s_starts]
        before_r = (s_starts[:, None] + np.arange(span)) < (r_rel - h)[:, None]
        slopes = np.where(before_r, 0.0, win_s).max(axis=1)
        r = r_rel + hist.start
        return [
            Candidate(peak=pk, r=rr, energy=en, slope=sl)
            for pk, rr, en, sl in zip(
                peaks.tolist(), r.tolist(), e[rel].tolist(), slopes.tolist(), strict=True
            )
        ]
