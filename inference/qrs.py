"""QRS detection at any sampling rate, streaming with bounded latency.

The detector finds R peaks in one ECG lead sampled anywhere from 125 to
1000 Hz, and says per stretch of signal how far its output can be trusted.
It runs the same code live and offline: :class:`StreamingQrsDetector` is fed
blocks of samples and returns R peaks at most :data:`LATENCY_S` after each
peak; :func:`detect_qrs` feeds a whole record through the same object, so both
give the same peaks.

How it decides, in the clinic's terms:

1. **QRS energy.**  A causal 5-20 Hz band-pass keeps the steep QRS slopes and
   drops baseline wander, most of the P and T waves and mains hum; its slope
   is squared and averaged over 100 ms, and the square root of that is the
   "QRS energy" trace (linear in amplitude, so wide ventricular beats are not
   dwarfed by narrow ones).  The average runs on integers so that feeding a
   record in one block or sample by sample gives bit-identical numbers.
2. **Candidates** are peaks of the energy trace that dominate ±50 ms.  Each
   is placed on the R wave (largest deflection of the baseline-corrected ECG
   in the 190 ms before the energy peak) and scored by its steepest slope.
3. **Adaptive thresholds** in the manner of Pan and Tompkins [1]_: running
   levels of beat peaks and of noise peaks, the threshold a fixed fraction
   between them, halved when a beat is overdue (1.66 mean RR), and a T-wave
   test (within 360 ms of a beat and less than half its slope).  There is no
   look-back search, which would break the latency bound.
4. **Look-ahead within the latency budget.**  A candidate waits until 240 ms
   after its R peak.  A larger candidate within the 200 ms refractory period
   replaces it, and a much steeper deflection 100-240 ms later (the QRS that
   follows a tall P wave or an artefact) vetoes it.
5. **Learning.**  Levels are learnt over the first 2 s, again after any
   gap of 1 s or more (NaN samples), since electrodes may have moved, and
   again after 5 s without a beat (levels set by an artefact, or a lasting
   fall in amplitude).  Beats of a learning period come out at its end,
   later than the bound.  The threshold never falls below the QRS energy of
   a ~0.1 mV complex, so a quiet asystole stays free of invented beats.

Signal quality is reported per 1 s window (0 = unusable, 1 = clean) with a
reason: ``gap`` (mostly NaN), ``flat`` (a flat line: under 0.02 mV peak to
peak), ``saturated`` (a fifth of the samples at the window's extremes:
clipped at a rail), ``noisy`` (the median QRS energy, relative to the beat
level of the last clean stretch, is high), or ``ok``.  A quiet signal with
no beats (asystole) is *not* low quality: that call is the rhythm logic's.

References
----------
.. [1] J. Pan, W. J. Tompkins, "A real-time QRS detection algorithm",
   IEEE Trans. Biomed. Eng. 32(3):230-236, 1985.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass
from typing import Final

import numpy as np

from inference.qrs_frontend import Candidate, QrsFrontEnd, unfound_lag_samples
from inference.qrs_quality import (
    QUALITY_FLAT,
    QUALITY_GAP,
    QUALITY_NOISY,
    QUALITY_OK,
    QUALITY_SATURATED,
    QualityScorer,
    QualitySettings,
    WindowMeasure,
    measure_windows,
)

logger = logging.getLogger(__name__)

#: Longest delay between an R peak and the push that reports it (outside
#: learning periods).
LATENCY_S: Final = 0.25
MIN_FS_HZ: Final = 100.0
MAX_FS_HZ: Final = 2000.0

_BATCH_BLOCK: Final = 1 << 20
_HISTORY_S: Final = 4.0
_NEVER: Final = 1 << 62

__all__ = [
    "LATENCY_S",
    "QUALITY_FLAT",
    "QUALITY_GAP",
    "QUALITY_NOISY",
    "QUALITY_OK",
    "QUALITY_SATURATED",
    "QrsParameters",
    "QrsResult",
    "StreamingQrsDetector",
    "detect_qrs",
]


@dataclass(frozen=True, slots=True)
class QrsParameters:
    """Tunable settings, in physiological units (seconds, Hz, ratios)."""

    band_low_hz: float = 5.0
    band_high_hz: float = 20.0
    baseline_cutoff_hz: float = 0.5
    baseline_order: int = 1
    integration_s: float = 0.10
    peak_halfwidth_s: float = 0.05
    r_search_s: float = 0.19
    refractory_s: float = 0.20
    twave_window_s: float = 0.36
    twave_slope_ratio: float = 0.5
    same_complex_ratio: float = 0.5
    threshold_fraction: float = 0.3
    overdue_rr_factor: float = 1.66
    overdue_threshold_factor: float = 0.5
    rr_history: int = 8
    min_qrs_energy: float = 3.0
    relearn_after_s: float = 5.0
    learning_s: float = 2.0
    decision_delay_s: float = 0.24
    veto_start_s: float = 0.10
    veto_slope_ratio: float = 1.2
    gap_reset_s: float = 1.0
    quality_window_s: float = 1.0
    flat_mv: float = 0.02
    saturated_fraction: float = 0.2
    noise_floor_clean: float = 0.15
    noise_floor_unusable: float = 0.45
    quality_level_update: float = 0.7


@dataclass(frozen=True, slots=True)
class QrsResult:
    """R peaks and signal quality of one lead.

    Parameters
    ----------
    r_peaks
        R-peak sample indices (int64, ascending).
    beat_quality
        Quality 0..1 of the window holding each R peak.
    quality
        Quality 0..1 per window of ``quality_window_samples`` samples,
        window ``k`` starting at sample ``k * quality_window_samples``.
    quality_reason
        Why each window scored as it did (``ok``, ``gap``, ``flat``,
        ``saturated``, ``noisy``).
    quality_window_samples
        Window length in samples.
    fs_hz
        Sampling rate.
    """

    r_peaks: np.ndarray
    beat_quality: np.ndarray
    quality: np.ndarray
    quality_reason: tuple[str, ...]
    quality_window_samples: int
    fs_hz: float


@dataclass(slots=True)
class _Pending:
    cand: Candidate
    deadline: int


class StreamingQrsDetector:
    """Causal QRS detector fed block by block.

    Parameters
    ----------
    fs_hz
        Sampling rate of the lead (125-1000 Hz intended).
    params
        Detector settings; defaults suit adult ECG.

    Notes
    -----
    Belongs to one thread (the bed's analyzer).  :meth:`push` returns each
    R peak once, no later than :data:`LATENCY_S` after it except in learning
    periods; :meth:`flush` reports what the end of the data decides.
    """

    def __init__(self, fs_hz: float, params: QrsParameters | None = None) -> None:
        if not MIN_FS_HZ <= fs_hz <= MAX_FS_HZ:
            raise ValueError(f"sampling rate {fs_hz} Hz outside {MIN_FS_HZ}-{MAX_FS_HZ} Hz")
        p = params or QrsParameters()
        self.fs_hz = float(fs_hz)
        self.params = p
        self._front = QrsFrontEnd(
            fs_hz,
            (p.band_low_hz, p.band_high_hz),
            p.baseline_cutoff_hz,
            p.baseline_order,
            p.integration_s,
            p.peak_halfwidth_s,
            p.r_search_s,
            p.gap_reset_s,
        )
        sec = lambda s: max(1, int(round(s * fs_hz)))  # noqa: E731
        self._h = self._front.h
        self._refractory = sec(p.refractory_s)
        self._twave = sec(p.twave_window_s)
        self._delay = int(p.decision_delay_s * fs_hz)
        self._veto_start = sec(p.veto_start_s)
        self._learn = sec(p.learning_s)
        self._relearn = sec(p.relearn_after_s)
        self.quality_window_samples = sec(p.quality_window_s)
        self._keep = max(sec(_HISTORY_S), self._learn + sec(p.r_search_s) + 4 * self._h)
        # Decision state.
        self._queue: deque[Candidate] = deque()
        self._pending: _Pending | None = None
        self._learn_end: int | None = self._learn
        self._learn_start = 0
        self._spk = 0.0
        self._npk = 0.0
        self._rr: deque[int] = deque(maxlen=p.rr_history)
        self._rr_sum = 0  # of the intervals in _rr (integers, so exact)
        self._last: Candidate | None = None
        self._last_gap_end = -1
        self._silence_from = 0  # last beat, or end of the last learning period
        self._next_quality = 0
        self._measured = 0  # quality windows measured so far
        self._window_measures: deque[WindowMeasure] = deque()
        self._quality_settings = QualitySettings(
            p.flat_mv,
            p.saturated_fraction,
            p.noise_floor_clean,
            p.noise_floor_unusable,
            p.quality_level_update,
        )
        self._quality = QualityScorer(self._quality_settings)
        self._peaks_out: list[int] = []
        self._quality_out: list[tuple[float, str]] = []
        self._flushed = False

    # ------------------------------------------------------------------ API
    def push(self, samples: np.ndarray) -> list[int]:
        """Feed the next block of samples (mV; NaN for missing samples).

        Parameters
        ----------
        samples
            1-D block continuing the previous one.

        Returns
        -------
        list of int
            R peaks (absolute sample indices) decided by this block.
        """
        if self._flushed:
            raise RuntimeError("detector already flushed")
        x = np.asarray(samples, dtype=np.float64).ravel()
        self._queue.extend(self._front.push(x))
        self._note_window_measures()
        self._advance(self._front.n)
        # Trimmed only now: events of this block may look back into it.
        self._front.hist.trim(self._keep)
        out, self._peaks_out = self._peaks_out, []
        return out

    def flush(self) -> list[int]:
        """Decide what is left at the end of the data; the detector is then spent."""
        if not self._flushed:
            self._queue.extend(self._front.finish())
            self._advance(_NEVER)
            self._flushed = True
        out, self._peaks_out = self._peaks_out, []
        return out

    def take_quality(self) -> list[tuple[float, str]]:
        """Quality windows completed since the last call, in order, as (quality, reason)."""
        out, self._quality_out = self._quality_out, []
        return out

    @property
    def settled_until(self) -> int:
        """Absolute sample before which every R peak has been reported.

        Later pushes report no peak before it. Outside learning periods it
        trails the newest sample by about a quarter of a second; peaks found
        while the detector learns (the start, after a long gap or a silence)
        hold it back until they are decided.
        """
        if self._flushed:
            return _NEVER
        settled = self._front.first_unfound_r
        if self._queue:
            settled = min(settled, min(c.r for c in self._queue))
        if self._pending is not None:
            settled = min(settled, self._pending.cand.r)
        return settled

    @property
    def samples_received(self) -> int:
        """Number of samples pushed so far."""
        return self._front.n

    # ------------------------------------------------------- decision stage
    def _advance(self, data_end: int) -> None:
        """Process, in time order, every event whose data ends before ``data_end``.

        Events: the end of a NaN gap, the end of a learning period, the
        arrival of a candidate (its energy peak confirmed ``h`` samples
        later), the decision deadline of the pending candidate, the end of a
        quality window, and a silence long enough to learn again.  Ties go
        in that order.  Because every event is timed by the data it needs,
        block boundaries cannot change the order.
        """
        q_len = self.quality_window_samples
        front, queue, h = self._front, self._queue, self._h
        gap_ends, n = front.gap_ends, front.n  # no event adds data
        while True:
            learn_end, pending = self._learn_end, self._pending
            t_gap = abs(gap_ends[0]) if gap_ends else _NEVER
            t_learn = learn_end if learn_end is not None else _NEVER
            t_dead = pending.deadline if pending is not None else _NEVER
            t_cand = _NEVER
            if queue:
                c = queue[0]
                t_cand = c.peak + h
                if learn_end is not None:
                    t_cand = max(t_cand, learn_end)
                elif pending is not None and c.r - pending.cand.r > self._refractory:
                    t_cand = max(t_cand, t_dead + 1)
            t_quality = self._next_quality + q_len - 1
            if t_quality >= n:
                t_quality = _NEVER
            t_silence = _NEVER
            if learn_end is None and pending is None:
                t_silence = self._silence_from + self._relearn
                if t_silence >= n:
                    t_silence = _NEVER
            t = min(t_gap, t_learn, t_cand, t_dead, t_quality, t_silence)
            if t >= data_end or t >= _NEVER:
                break
            if t == t_gap:
                self._on_gap_end(gap_ends.popleft())
            elif t == t_learn:
                self._on_learned()
            elif t == t_cand:
                self._on_candidate(queue.popleft())
            elif t == t_dead:
                self._on_deadline()
            elif t == t_quality:
                self._on_quality_window()
            else:
                self._on_silence(t)
        if data_end >= _NEVER:
            self._final_quality()

    def _on_gap_end(self, marker: int) -> None:
        end = abs(marker)
        self._last_gap_end = end
        if marker < 0:  # long gap: forget the patient's levels and learn again
            if self._pending:
                self._commit(self._pending.cand)
                self._pending = None
            self._rr.clear()
            self._rr_sum = 0
            self._last = None
            self._learn_start = end
            self._learn_end = end + self._learn

    def _on_silence(self, now: int) -> None:
        """No beat for ``relearn_after_s``: learn the levels again from now.

        Recovers from levels set by an artefact or from a lasting fall in
        amplitude (electrode moved); the absolute floor of the threshold
        keeps a flat or quiet asystole free of invented beats.
        """
        self._rr.clear()
        self._rr_sum = 0
        self._last = None
        self._learn_start = now
        self._learn_end = now + self._learn

    def _on_learned(self) -> None:
        """Set the beat and noise levels from the learning period's QRS energy."""
        assert self._learn_end is not None
        hist = self._front.hist
        a = max(self._learn_start, hist.start) - hist.start
        b = min(self._learn_end, hist.end) - hist.start
        seg = hist.energy[a : max(b, a + 1)]
        peak = float(seg.max(initial=0.0))
        if peak <= 0.0 and self._learn_end < self._front.n:
            # Nothing but silence or gap so far: keep learning.
            self._learn_start = self._learn_end
            self._learn_end += self._learn
            return
        self._spk = 0.6 * peak
        self._quality.reset(self._spk)
        self._npk = 0.5 * float(np.median(seg)) if len(seg) else 0.0
        self._silence_from = self._learn_end
        self._learn_end = None

    def _threshold(self, cand: Candidate) -> float:
        p = self.params
        th = self._npk + p.threshold_fraction * (self._spk - self._npk)
        since = cand.r - (self._last.r if self._last is not None else self._silence_from)
        expected = self._rr_sum / len(self._rr) if self._rr else self.fs_hz
        if since > p.overdue_rr_factor * expected:
            th *= p.overdue_threshold_factor
        return max(th, p.min_qrs_energy)

    def _noise(self, cand: Candidate) -> None:
        self._npk = 0.125 * cand.energy + 0.875 * self._npk

    def _on_candidate(self, cand: Candidate) -> None:
        pend = self._pending
        if pend is not None:
            if cand.r - pend.cand.r <= self._refractory:
                if cand.energy > pend.cand.energy:
                    self._pending = _Pending(cand, self._deadline(cand))
                return
        last = self._last
        if last is not None and cand.r - last.r <= self._refractory:
            return
        th = self._threshold(cand)
        if cand.energy <= th:
            self._noise(cand)
            return
        if last is not None and cand.r - last.r < self._twave:
            if cand.slope < self.params.twave_slope_ratio * last.slope:
                self._noise(cand)  # a T wave: shallower than the beat before it
                return
            if cand.slope <= last.slope and self._same_complex(last, cand):
                return
        self._pending = _Pending(cand, self._deadline(cand))

    def _same_complex(self, last: Candidate, cand: Candidate) -> bool:
        """True when QRS energy never falls back between two candidates.

        Separate beats have an isoelectric stretch between them; the late
        hump of one wide ventricular complex does not.
        """
        hist = self._front.hist
        a = max(last.peak, hist.start) - hist.start
        b = cand.peak - hist.start
        if b - a < 2:
            return True
        trough = float(hist.energy[a:b].min())
        return trough > self.params.same_complex_ratio * min(cand.energy, last.energy)

    def _deadline(self, cand: Candidate) -> int:
        return max(cand.r + self._delay, cand.peak)

    def _on_deadline(self) -> None:
        pend = self._pending
        assert pend is not None
        self._pending = None
        cand = pend.cand
        hist = self._front.hist
        a = max(cand.r + self._veto_start, cand.peak + 1, hist.start) - hist.start
        b = min(pend.deadline + 1, hist.end) - hist.start
        if b > a and float(hist.slope[a:b].max()) > self.params.veto_slope_ratio * cand.slope:
            self._noise(cand)
            return
        self._commit(cand)

    def _commit(self, cand: Candidate) -> None:
        p = self.params
        overdue = False
        if self._last is not None:
            rr = cand.r - self._last.r
            if self._rr:
                overdue = rr > p.overdue_rr_factor * (self._rr_sum / len(self._rr))
            if self._last_gap_end <= self._last.r and self._rr.maxlen:
                if len(self._rr) == self._rr.maxlen:
                    self._rr_sum -= self._rr[0]
                self._rr.append(rr)
                self._rr_sum += rr
        weight = 0.25 if overdue else 0.125
        self._spk = weight * cand.energy + (1.0 - weight) * self._spk
        self._last = cand
        self._silence_from = cand.r
        self._peaks_out.append(cand.r)

    # ------------------------------------------------------------ quality
    def _on_quality_window(self) -> None:
        self._next_quality += self.quality_window_samples
        self._score_window(self._window_measures.popleft())

    def _final_quality(self) -> None:
        # A last, partial window still gets a verdict.
        if self._next_quality < self._front.n:
            width = self._front.n - self._next_quality
            a = self._next_quality - self._front.hist.start
            measure = measure_windows(
                self._front.hist.raw[a:],
                self._front.hist.energy[a:],
                width,
                1,
                self._quality_settings,
            )
            self._score_window(measure[0])
            self._next_quality = self._front.n

    def _score_window(self, measure: WindowMeasure) -> None:
        level = None if self._learn_end is not None else self._spk
        self._quality_out.append(self._quality.score(measure, level))

    def _note_window_measures(self) -> None:
        """Measure every quality window completed by the samples just added."""
        w = self.quality_window_samples
        done = self._front.n // w
        if done > self._measured:
            a = self._measured * w - self._front.hist.start
            self._window_measures.extend(
                measure_windows(
                    self._front.hist.raw[a:],
                    self._front.hist.energy[a:],
                    w,
                    done - self._measured,
                    self._quality_settings,
                )
            )
            self._measured = done


def settled_lag_samples(fs_hz: float, params: QrsParameters | None = None) -> int:
    """How far :attr:`StreamingQrsDetector.settled_until` trails the newest sample
    when no candidate awaits a decision (a stop, for instance)."""
    p = params or QrsParameters()
    return unfound_lag_samples(fs_hz, p.peak_halfwidth_s, p.r_search_s)


def detect_qrs(ecg: np.ndarray, fs_hz: float, params: QrsParameters | None = None) -> QrsResult:
    """Detect R peaks in a whole lead (the batch form of :class:`StreamingQrsDetector`).

    Parameters
    ----------
    ecg
        1-D lead in mV; NaN marks missing samples.
    fs_hz
        Sampling rate (125-1000 Hz intended).
    params
        Detector settings.

    Returns
    -------
    QrsResult
        R peaks, per-beat and per-window signal quality.
    """
    x = np.asarray(ecg, dtype=np.float64).ravel()
    det = StreamingQrsDetector(fs_hz, params)
    peaks: list[int] = []
    for i in range(0, len(x), _BATCH_BLOCK):
        peaks.extend(det.push(x[i : i + _BATCH_BLOCK]))
    peaks.extend(det.flush())
    windows = det.take_quality()
    quality = np.array([q for q, _ in windows], dtype=np.float64)
    reasons = tuple(r for _, r in windows)
    r_peaks = np.asarray(peaks, dtype=np.int64)
    idx = np.minimum(r_peaks // det.quality_window_samples, max(len(quality) - 1, 0))
    beat_quality = quality[idx] if len(quality) else np.zeros(len(r_peaks))
    return QrsResult(
        r_peaks=r_peaks,
        beat_quality=beat_quality,
        quality=quality,
        quality_reason=reasons,
        quality_window_samples=det.quality_window_samples,
        fs_hz=float(fs_hz),
    )
