"""Raw-ECG stage of rhythm analysis: lead-off checks, QRS activity and VF detection.

The beat stream alone cannot tell a flat line from a heart that stopped, nor
ventricular fibrillation (no QRS complexes at all) from noise, so
:class:`SignalStage` looks at the primary lead itself, once per second:

* **Lead off / signal loss** -- a second that is mostly missing samples
  (``gap``), has no deflection at all (``flat``: peak-to-peak below
  :attr:`SignalParameters.flat_mv`, far below the baseline noise of any
  attached electrode), or sits at an amplifier rail (``saturated``).
* **QRS activity** -- the 5-20 Hz band (where QRS slopes live) is kept per
  sample for the last seconds, so asystole can be confirmed on the raw
  signal ("no QRS-like deflection since the last beat") and not only on the
  beat stream, which arrives with the classifier's latency.
* **VF probability** -- every second, the last :data:`VF_WINDOW_S` of the
  1-30 Hz band are described by fourteen features and scored by a small
  perceptron (:data:`VF_MODEL`, fitted by :mod:`inference.rhythm_vf_train`).
  The features are classic shockable-rhythm descriptors: the share of samples above 20 % of the window's peak
  (threshold-crossing occupancy, after Arafat et al. [1]_), the dominant
  frequency and the share of power within 1 Hz of it (VF is a narrow-band
  3-8 Hz oscillation), the share of power above 12 Hz (Barro et al. [2]_: QRS
  complexes and muscle noise have it, VF has little), the VF-filter leakage
  of Kuo and Dillman [3]_, and the steepest slope relative to a sinusoid of
  the window's amplitude and dominant frequency (QRS complexes are much
  steeper than that sinusoid, VF is not); plus how QRS-like the 5-20 Hz band
  is (rate and regularity of its peaks, its floor between peaks), how steady
  amplitude and spectrum are within the window and against the window two
  seconds earlier (VF is a sustained oscillation, artefact comes in bursts),
  and the share of power below 1.5 Hz (electrode motion).

Everything is computed with causal streaming filters and once per second on
the absolute sample clock, so feeding a record in one block or in 40 ms
blocks gives identical summaries.

References
----------
.. [1] M. A. Arafat, A. W. Chowdhury, M. K. Hasan, "A simple time domain
   algorithm for the detection of ventricular fibrillation in
   electrocardiogram", Signal Image Video Process. 5:1-10, 2011.
.. [2] S. Barro, R. Ruiz, D. Cabello, J. Mira, "Algorithmic sequential
   decision-making in the frequency domain for life threatening ventricular
   arrhythmias and imitative artefacts: a diagnostic system", J. Biomed.
   Eng. 11(4):320-328, 1989.
.. [3] S. Kuo, R. Dillman, "Computer detection of ventricular fibrillation",
   Computers in Cardiology 1978:347-349.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Final

import numpy as np

from inference.dsp import StreamingFilter, design_bandpass
from inference.rhythm_vf_model import VF_MODEL

logger = logging.getLogger(__name__)

#: Analysis step: one summary per second of signal.
HOP_S: Final = 1.0
#: Length of the window the VF features describe.
VF_WINDOW_S: Final = 4.0
#: How much filtered signal is kept for look-back (asystole, beat levels).
RING_S: Final = 12.0
#: Signal at the start of the stream left for the filters to settle.
SETTLE_S: Final = 1.0
#: Largest share of missing samples in a window that still gets a VF probability.
MAX_MISSING_IN_WINDOW: Final = 0.25

STATUS_OK: Final = "ok"
STATUS_LEAD_OFF: Final = "lead_off"

VF_FEATURES: Final = (
    "occupancy", "dominant_hz", "concentration", "hf_share", "leakage", "log_sharpness",
    "amplitude_cv", "low_share", "peak_rate_hz", "peak_interval_cv", "qrs_floor",
    "dominant_change_hz", "concentration_min", "log_amplitude_change",
)  # fmt: skip
#: Features that compare the window with the one two seconds earlier.
_HISTORY_HOPS: Final = 2


@dataclass(frozen=True, slots=True)
class SignalParameters:
    """Settings of the raw-ECG stage (Vigil's defaults).

    Parameters
    ----------
    flat_mv
        A second whose peak-to-peak is below this is a flat line (lead off).
    gap_fraction
        A second with at least this share of missing samples is signal loss.
    saturated_fraction
        A second with at least this share of samples at its own min or max is
        clipped at a rail.
    """

    flat_mv: float = 0.01
    gap_fraction: float = 0.5
    saturated_fraction: float = 0.3


@dataclass(frozen=True, slots=True)
class SecondSummary:
    """What one second of the primary lead looks like.

    Parameters
    ----------
    start_sample, end_sample
        Absolute sample range ``[start, end)``.
    status
        :data:`STATUS_OK` or :data:`STATUS_LEAD_OFF`.
    reason
        ``ok``, ``gap``, ``flat`` or ``saturated``.
    activity_mv
        Largest 5-20 Hz (QRS band) deflection in the second, mV.
    floor_mv
        Median absolute 5-20 Hz value in the second, mV.
    vf_probability
        Probability that the window ending here is VF/flutter; NaN when the
        window is not analysable (missing samples, filters settling).
    features
        The window's :data:`VF_FEATURES` (empty when not analysable).
    """

    start_sample: int
    end_sample: int
    status: str
    reason: str
    activity_mv: float
    floor_mv: float
    vf_probability: float
    features: tuple[float, ...] = ()


def vf_features(vf_band: np.ndarray, qrs_band: np.ndarray, fs_hz: float) -> np.ndarray:
    """The single-window :data:`VF_FEATURES` (all but the last three) of one window.

    Parameters
    ----------
    vf_band
        1-30 Hz band-passed ECG (mV), typically :data:`VF_WINDOW_S` long; NaN
        samples count as zero.
    qrs_band
        The same window band-passed 5-20 Hz.
    fs_hz
        Sampling rate.

    Returns
    -------
    numpy.ndarray
        float64 vector of the first 11 features in :data:`VF_FEATURES` order,
        then the window's amplitude (mV), which :func:`with_history` compares.
    """
    w = np.nan_to_num(np.asarray(vf_band, dtype=np.float64))
    w = w - w.mean()
    n = len(w)
    mag = np.abs(w)
    peak = float(np.percentile(mag, 99)) + 1e-9
    occupancy = float(np.mean(mag > 0.2 * peak))
    # Zero-padded to 0.1 Hz bins; the dominant peak is sought in 1.5-10 Hz
    # so baseline wander left below 1.5 Hz cannot win it.
    nfft = max(n, int(10 * fs_hz))
    power = np.abs(np.fft.rfft(w * np.hanning(n), nfft)) ** 2
    freqs = np.fft.rfftfreq(nfft, 1.0 / fs_hz)
    band = (freqs >= 1.0) & (freqs <= 30.0)
    p, f = power[band], freqs[band]
    total = float(p.sum()) + 1e-12
    k = int(np.argmax(np.where((f >= 1.5) & (f <= 10.0), p, 0.0)))
    dominant = float(f[k])
    concentration = float(p[(f >= dominant - 1.0) & (f <= dominant + 1.0)].sum()) / total
    hf_share = float(p[f >= 12.0].sum()) / total
    low_share = float(p[f < 1.5].sum()) / total
    # Kuo-Dillman leakage: a notch at the window's mean period cancels a
    # sinusoid (VF) but not a train of narrow QRS complexes.
    abs_slope_sum = float(np.abs(np.diff(w)).sum()) + 1e-12
    half_period = max(1, int(math.pi * float(mag.sum()) / abs_slope_sum + 0.5))
    if half_period < n:
        a, b = w[half_period:], w[:-half_period]
        leakage = float(np.abs(a + b).sum() / ((np.abs(a) + np.abs(b)).sum() + 1e-12))
    else:
        leakage = 1.0
    steepest = float(np.percentile(np.abs(np.diff(w)) * fs_hz, 99))
    sharpness = steepest / (peak * 2.0 * math.pi * max(dominant, 1.0))
    sec = max(1, int(round(fs_hz)))
    whole = w[: (n // sec) * sec].reshape(-1, sec)
    p2p = whole.max(axis=1) - whole.min(axis=1)
    amplitude_cv = float(p2p.std() / (p2p.mean() + 1e-9))
    # QRS-like peaks: maxima of the 5-20 Hz envelope above 40 % of the
    # window's largest, at least 200 ms apart.
    q = np.abs(np.nan_to_num(np.asarray(qrs_band, dtype=np.float64)))
    width = max(1, int(0.1 * fs_hz))
    env = np.convolve(q, np.ones(width) / width, mode="same")
    top = float(env.max()) + 1e-12
    cand = (
        np.flatnonzero((env[1:-1] >= env[:-2]) & (env[1:-1] > env[2:]) & (env[1:-1] > 0.4 * top))
        + 1
    )
    peaks: list[int] = []
    for c in cand[np.argsort(-env[cand])]:
        if all(abs(int(c) - p_) >= int(0.2 * fs_hz) for p_ in peaks):
            peaks.append(int(c))
    peaks.sort()
    peak_rate = len(peaks) * fs_hz / n
    intervals = np.diff(peaks)
    peak_cv = float(intervals.std() / intervals.mean()) if len(intervals) >= 2 else 1.0
    qrs_floor = float(np.median(q)) / (float(np.percentile(q, 99)) + 1e-12)
    return np.array(
        [
            occupancy,
            dominant,
            concentration,
            hf_share,
            leakage,
            math.log(max(sharpness, 1e-3)),
            amplitude_cv,
            low_share,
            peak_rate,
            peak_cv,
            qrs_floor,
            peak,
        ]
    )


def with_history(current: np.ndarray, earlier: np.ndarray | None) -> np.ndarray:
    """Append the three features comparing a window with the one two seconds before."""
    if earlier is None:
        extra = [0.0, current[2], 0.0]
    else:
        extra = [
            abs(current[1] - earlier[1]),
            min(current[2], earlier[2]),
            abs(math.log((current[11] + 1e-9) / (earlier[11] + 1e-9))),
        ]
    return np.concatenate((current[:11], extra))


def vf_probability(features: np.ndarray, model: dict | None = None) -> float:
    """Probability of VF/flutter for one full :data:`VF_FEATURES` vector.

    The model is a one-hidden-layer perceptron (tanh) over standardised
    features; see :mod:`inference.rhythm_vf_train` for how it is fitted.
    """
    m = model if model is not None else VF_MODEL
    z = (np.asarray(features, dtype=np.float64) - np.asarray(m["mean"])) / np.asarray(m["scale"])
    hidden = np.tanh(np.asarray(m["w1"]) @ z + np.asarray(m["b1"]))
    logit = float(np.asarray(m["w2"]) @ hidden) + float(m["b2"])
    return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))


class _Ring:
    """The last ``capacity`` samples of a stream, addressed by absolute index."""

    def __init__(self, capacity: int, start: int) -> None:
        self.capacity = capacity
        self.start = start
        self.data = np.empty(0)

    @property
    def end(self) -> int:
        return self.start + len(self.data)

    def append(self, x: np.ndarray) -> None:
        self.data = np.concatenate((self.data, x))
        drop = len(self.data) - self.capacity
        if drop > 0:
            self.data = self.data[drop:]
            self.start += drop

    def get(self, a: int, b: int) -> np.ndarray:
        a, b = max(a, self.start), min(b, self.end)
        if b <= a:
            return np.empty(0)
        return self.data[a - self.start : b - self.start]


class SignalStage:
    """Once-per-second summaries of the primary lead.  Belongs to one thread.

    Parameters
    ----------
    fs_hz
        Sampling rate.
    first_index
        Absolute index of the first sample that will be pushed.
    params
        Thresholds of the lead-off checks.
    model
        VF model (default :data:`VF_MODEL`).
    """

    def __init__(
        self,
        fs_hz: float,
        first_index: int = 0,
        params: SignalParameters | None = None,
        model: dict | None = None,
    ) -> None:
        self.fs_hz = float(fs_hz)
        self.params = params or SignalParameters()
        self.model = model or VF_MODEL
        self.hop = max(1, int(round(HOP_S * fs_hz)))
        self.window = max(self.hop, int(round(VF_WINDOW_S * fs_hz)))
        self._settle = int(round(SETTLE_S * fs_hz))
        cap = int(round(RING_S * fs_hz))
        self._raw = _Ring(cap, first_index)
        self._qrs_band = _Ring(cap, first_index)
        self._vf_band = _Ring(cap, first_index)
        self._qrs_filter = StreamingFilter(design_bandpass(fs_hz, 5.0, 20.0, 2))
        self._vf_filter = StreamingFilter(design_bandpass(fs_hz, 1.0, 30.0, 2))
        self._next_hop = first_index + self.hop
        self._first = first_index
        self._history: list[np.ndarray | None] = [None] * _HISTORY_HOPS

    @property
    def samples_seen(self) -> int:
        """Absolute index one past the last pushed sample."""
        return self._raw.end

    def push(self, samples: np.ndarray) -> list[SecondSummary]:
        """Feed the next samples (mV, NaN for gaps); return the seconds completed."""
        x = np.asarray(samples, dtype=np.float64).ravel()
        out: list[SecondSummary] = []
        pos = 0
        # Split at hop boundaries so each summary sees exactly its own samples.
        while pos < len(x):
            take = min(len(x) - pos, self._next_hop - self._raw.end)
            self._append(x[pos : pos + take])
            pos += take
            if self._raw.end == self._next_hop:
                out.append(self._summarise(self._next_hop - self.hop, self._next_hop))
                self._next_hop += self.hop
        return out

    def _append(self, x: np.ndarray) -> None:
        self._raw.append(x)
        self._qrs_band.append(self._qrs_filter.process(x))
        self._vf_band.append(self._vf_filter.process(x))

    def activity(self, start: int, stop: int) -> float:
        """Largest QRS-band deflection (mV) in absolute ``[start, stop)``; 0 if none kept."""
        seg = self._qrs_band.get(start, stop)
        seg = seg[np.isfinite(seg)]
        return float(np.abs(seg).max()) if len(seg) else 0.0

    def broadband(self, start: int, stop: int) -> np.ndarray:
        """The 1-30 Hz band in absolute ``[start, stop)`` (shorter if not all kept)."""
        return self._vf_band.get(start, stop)

    def lead_off_fraction(self, start: int, stop: int) -> float:
        """Share of missing samples in absolute ``[start, stop)`` (1.0 if none kept)."""
        seg = self._raw.get(start, stop)
        return float(np.mean(~np.isfinite(seg))) if len(seg) else 1.0

    def _summarise(self, start: int, stop: int) -> SecondSummary:
        p = self.params
        raw = self._raw.get(start, stop)
        finite = raw[np.isfinite(raw)]
        qrs = self._qrs_band.get(start, stop)
        qrs = np.abs(qrs[np.isfinite(qrs)])
        activity = float(qrs.max()) if len(qrs) else 0.0
        floor = float(np.median(qrs)) if len(qrs) else 0.0
        status, reason = STATUS_OK, "ok"
        if len(finite) < (1.0 - p.gap_fraction) * max(len(raw), 1):
            status, reason = STATUS_LEAD_OFF, "gap"
        else:
            lo, hi = float(finite.min()), float(finite.max())
            if hi - lo < p.flat_mv:
                status, reason = STATUS_LEAD_OFF, "flat"
            elif np.count_nonzero((finite == lo) | (finite == hi)) >= p.saturated_fraction * len(
                finite
            ):
                status, reason = STATUS_LEAD_OFF, "saturated"
        prob = math.nan
        current: np.ndarray | None = None
        if stop - self._first >= self.window + self._settle:
            vf = self._vf_band.get(stop - self.window, stop)
            missing = float(np.mean(~np.isfinite(vf))) if len(vf) else 1.0
            # Monitors clip and drop samples during VF too (cudb): short gaps are tolerated.
            if len(vf) == self.window and missing <= MAX_MISSING_IN_WINDOW:
                qrs_win = self._qrs_band.get(stop - self.window, stop)
                current = vf_features(vf, qrs_win, self.fs_hz)
        earlier = self._history[0]
        self._history = [*self._history[1:], current]
        features: tuple[float, ...] = ()
        if current is not None:
            full = with_history(current, earlier)
            features = tuple(float(v) for v in full)
            prob = vf_probability(full, self.model)
        return SecondSummary(start, stop, status, reason, activity, floor, prob, features)
