"""Waves of one beat (P, QRS, T and the PR/ST segments) and the clinical sentence.

Delineation method (derivative and threshold based, in the spirit of Laguna
et al., "Automatic detection of wave boundaries in multilead ECG signals:
validation with the CSE database", Comput. Biomed. Res. 27:45-60, 1994; the
wavelet delineator of Martínez et al., IEEE TBME 51(4):570-581, 2004 is the
better-validated alternative):

1. Each lead of the beat window is detrended (least-squares line) and low-passed
   twice with a zero-phase Butterworth filter: at 40 Hz for the QRS and at
   12 Hz for the P and T waves.
2. **QRS**: the multilead slope (spatial velocity ``sqrt(sum_l (w_l x_l')^2)``,
   each lead weighted by its QRS-slope-to-median-slope ratio so a noisy lead
   weighs little) is thresholded at 7 % of its maximum near the R peak; the
   supra-threshold run around R, bridging dips shorter than 24 ms (the R apex
   and Q/S turning points), gives QRS onset and end.
3. **Isoelectric level**: the mean of the 12 Hz signal 25-5 ms before QRS onset.
4. **P wave**: the largest deviation from that level 300-30 ms before QRS onset
   (and at least 380 ms after the previous R, past its T wave)
   whose prominence (scipy ``find_peaks``) is at least 0.03 mV, 3 % of the QRS
   amplitude and three times the high-frequency noise, with a width of
   30-160 ms at 20 % of its prominence (those points are its onset and end);
   it must be twice as prominent as any other hump from 250 ms before the zone
   (the TP segment), which rejects the fibrillatory waves of AF; the hump with
   the best prominence-to-noise ratio over the leads wins. No such hump: "no P
   wave".
5. **T wave**: the most prominent hump of the 12 Hz signal from 80 ms after
   QRS end to the window end (or 100 ms before the next R); its end is the
   tangent method (the steepest descending slope after the peak, extended to
   the isoelectric line), its start the mirror image.

Shares (:func:`segment_shares`) split the absolute attribution mass between
the segments and the RR features; they sum to 1.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Final

import numpy as np

from explain import SEGMENT_NAMES

QRS_LOWPASS_HZ: Final = 40.0
WAVE_LOWPASS_HZ: Final = 12.0
QRS_SLOPE_FRACTION: Final = 0.07
QRS_BRIDGE_S: Final = 0.012
QRS_PEAK_SEARCH_S: Final = 0.06
QRS_REACH_BEFORE_S: Final = 0.20
QRS_REACH_AFTER_S: Final = 0.25
QRS_AMPLITUDE_REACH_S: Final = 0.08
ISOELECTRIC_S: Final = (0.025, 0.005)  # before QRS onset
P_ZONE_S: Final = (0.30, 0.03)  # before QRS onset
P_MIN_MV: Final = 0.03
P_MIN_FRACTION: Final = 0.03  # of the QRS peak-to-peak
P_MAX_FRACTION: Final = 0.6
P_MIN_WIDTH_S: Final = 0.03  # at 20 % of its prominence
P_MAX_WIDTH_S: Final = 0.16
P_EDGE_FRACTION: Final = 0.2
P_NOISE_RATIO: Final = 0.33
NOISY_RATIO: Final = 0.08  # 12-40 Hz RMS / QRS amplitude above which a strip is noisy
P_DOMINANCE: Final = 2.0  # times the next most prominent hump before the QRS
P_COMPETITOR_REACH_S: Final = 0.25  # how far before the P zone rival humps count
EXPECTED_P_S: Final = (0.22, 0.08)  # where a P wave would be, before QRS onset
T_AFTER_QRS_S: Final = 0.08
T_BEFORE_NEXT_R_S: Final = 0.10
EARLIEST_AFTER_PREVIOUS_R_S: Final = 0.38  # the previous T wave is over
ST_DEFAULT_S: Final = 0.10

#: Clinical thresholds of the sentence (QRS ≥ 120 ms is wide: Surawicz et al.,
#: AHA/ACCF/HRS recommendations for the standardisation of the ECG, part III,
#: Circulation 119:e235-e240, 2009). Prematurity and pause limits are Vigil's wording.
WIDE_QRS_MS: Final = 120.0
EARLY_RR_PCT: Final = 85.0
LATE_RR_PCT: Final = 115.0
PAUSE_AFTER_PCT: Final = 120.0
UNLIKE_USUAL_CORRELATION: Final = 0.9
MENTION_SHARE: Final = 0.05

_SEGMENT_PHRASE: Final = {
    "P": "the P wave",
    "PR": "the PR segment",
    "QRS": "the QRS",
    "ST": "the ST segment",
    "T": "the T wave",
    "previous": "the preceding beat",
    "other": "the rest of the window",
}
#: Segments in time order; ``previous`` is the end of the preceding beat (QRS
#: and T) where an early beat brings it into the window.
SEGMENTS: Final = SEGMENT_NAMES
PREVIOUS_BEAT_BEFORE_R_S: Final = 0.1


@dataclass(frozen=True)
class Delineation:
    """Wave boundaries of one beat, seconds relative to its R peak.

    ``p_*`` are None when no P wave was found; ``t_off_s`` is the window end
    when the T wave runs past it (``t_end_in_window`` False).
    """

    qrs_on_s: float
    qrs_off_s: float
    p_present: bool
    p_on_s: float | None
    p_peak_s: float | None
    p_off_s: float | None
    t_on_s: float | None
    t_peak_s: float | None
    t_off_s: float | None
    t_end_in_window: bool
    window_s: tuple[float, float]
    previous_r_s: float | None = None
    noise_ratio: float = 0.0

    @property
    def noisy(self) -> bool:
        """Too much high-frequency noise for the boundaries to be trusted."""
        return self.noise_ratio > NOISY_RATIO

    @property
    def qrs_ms(self) -> float:
        """QRS duration."""
        return 1000.0 * (self.qrs_off_s - self.qrs_on_s)

    @property
    def pr_ms(self) -> float | None:
        """PR interval (P onset to QRS onset), None without a P wave."""
        return None if self.p_on_s is None else 1000.0 * (self.qrs_on_s - self.p_on_s)

    def spans(self) -> dict[str, tuple[float, float] | None]:
        """``{segment: (start_s, end_s)}``; P is the expected P area when no P wave is seen."""
        lo, hi = self.window_s
        earliest = (
            lo
            if self.previous_r_s is None
            else max(lo, self.previous_r_s + EARLIEST_AFTER_PREVIOUS_R_S)
        )
        if self.p_present and self.p_on_s is not None and self.p_off_s is not None:
            p = (self.p_on_s, self.p_off_s)
            pr = (self.p_off_s, self.qrs_on_s)
        else:
            p_lo = max(earliest, self.qrs_on_s - EXPECTED_P_S[0])
            p_hi = max(p_lo, self.qrs_on_s - EXPECTED_P_S[1])
            p, pr = (p_lo, p_hi), (p_hi, self.qrs_on_s)
        t_on = self.t_on_s if self.t_on_s is not None else min(hi, self.qrs_off_s + ST_DEFAULT_S)
        t_off = self.t_off_s if self.t_off_s is not None else hi
        previous = None
        if self.previous_r_s is not None and earliest > lo:
            previous = (max(lo, self.previous_r_s - PREVIOUS_BEAT_BEFORE_R_S), earliest)
        return {
            "previous": previous,
            "P": p,
            "PR": pr,
            "QRS": (self.qrs_on_s, self.qrs_off_s),
            "ST": (self.qrs_off_s, t_on),
            "T": (t_on, t_off),
        }

    def labels(self, time_s: np.ndarray) -> np.ndarray:
        """Segment name of each time (QRS wins overlaps, then P, PR, ST, T, previous; else ``other``)."""
        out = np.full(len(time_s), "other", dtype=object)
        spans = self.spans()
        for name in ("previous", "T", "ST", "PR", "P", "QRS"):  # later ones overwrite earlier ones
            span = spans[name]
            if span is not None and span[1] > span[0]:
                out[(time_s >= span[0]) & (time_s < span[1])] = name
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "qrs_on_s": self.qrs_on_s,
            "qrs_off_s": self.qrs_off_s,
            "p_present": self.p_present,
            "p_on_s": self.p_on_s,
            "p_peak_s": self.p_peak_s,
            "p_off_s": self.p_off_s,
            "t_on_s": self.t_on_s,
            "t_peak_s": self.t_peak_s,
            "t_off_s": self.t_off_s,
            "t_end_in_window": self.t_end_in_window,
            "noise_ratio": self.noise_ratio,
            "noisy": self.noisy,
        }


@functools.lru_cache(maxsize=16)
def _lowpass(cutoff_hz: float, fs_hz: float) -> tuple[np.ndarray, np.ndarray]:
    from scipy.signal import butter

    return butter(2, min(cutoff_hz, 0.45 * fs_hz) / (fs_hz / 2.0))


def _clean(window: np.ndarray) -> np.ndarray:
    """Gaps filled by linear interpolation, then the least-squares line removed."""
    x = np.array(window, dtype=np.float64)
    t = np.arange(x.shape[1], dtype=np.float64)
    for row in x:
        bad = ~np.isfinite(row)
        if bad.all():
            row[:] = 0.0
        elif bad.any():
            row[bad] = np.interp(t[bad], t[~bad], row[~bad])
        row -= np.polyval(np.polyfit(t, row, 1), t)
    return x


def delineate(
    window_mv: np.ndarray,
    fs_hz: float,
    r_index: int,
    present: np.ndarray | None = None,
    *,
    pre_rr_s: float | None = None,
    post_rr_s: float | None = None,
) -> Delineation:
    """Find QRS, P and T in one beat window.

    Parameters
    ----------
    window_mv
        ``(n_leads, n)`` samples of the beat (mV, NaN allowed), R peak at ``r_index``.
    fs_hz
        Sampling rate of the window (≥ 100 Hz).
    r_index
        Position of the R peak in the window.
    present
        Which leads to use (default: those with finite, non-flat samples).
    pre_rr_s, post_rr_s
        RR intervals before and after the beat, to keep the P search after the
        previous beat and the T search before the next one.

    Returns
    -------
    Delineation
    """
    from scipy.ndimage import maximum_filter1d
    from scipy.signal import filtfilt

    win = np.atleast_2d(np.asarray(window_mv, dtype=np.float64))
    if present is None:
        present = np.array(
            [np.isfinite(r).mean() > 0.7 and np.nanmax(r) - np.nanmin(r) > 0.01 for r in win]
        )
    use = np.flatnonzero(np.asarray(present, dtype=bool)[: len(win)])
    if len(use) == 0:
        use = np.array([0])
    n = win.shape[1]
    fs = float(fs_hz)
    x = _clean(win[use])
    q = filtfilt(*_lowpass(QRS_LOWPASS_HZ, fs), x, axis=1)
    s = filtfilt(*_lowpass(WAVE_LOWPASS_HZ, fs), x, axis=1)

    def idx(offset_s: float) -> int:
        return int(np.clip(r_index + round(offset_s * fs), 0, n - 1))

    amp_lo, amp_hi = idx(-QRS_AMPLITUDE_REACH_S), idx(QRS_AMPLITUDE_REACH_S) + 1
    amp = np.maximum(np.ptp(q[:, amp_lo:amp_hi], axis=1), 0.05)
    c_lo, c_hi = idx(-QRS_PEAK_SEARCH_S), idx(QRS_PEAK_SEARCH_S) + 1
    d = np.abs(np.gradient(q, axis=1)) * fs
    # Spatial velocity (mV/s), each lead weighted by its QRS-slope-to-typical-slope ratio,
    # so a noisy lead (muscle artefact) cannot stretch the QRS.
    snr = d[:, c_lo:c_hi].max(axis=1) / np.maximum(np.median(d, axis=1), 1e-6)
    weight = snr / snr.sum()
    slope = np.sqrt(((d * weight[:, None]) ** 2).sum(axis=0))
    lo, hi = idx(-QRS_REACH_BEFORE_S), idx(QRS_REACH_AFTER_S)
    k_peak = c_lo + int(np.argmax(slope[c_lo:c_hi]))
    thr = QRS_SLOPE_FRACTION * slope[k_peak]
    bridged = maximum_filter1d(slope, 2 * max(1, round(QRS_BRIDGE_S * fs)) + 1) > thr
    i = k_peak
    while i > lo and bridged[i - 1]:
        i -= 1
    j = k_peak
    while j < hi and bridged[j + 1]:
        j += 1
    above = slope > thr
    on = i + int(np.argmax(above[i : k_peak + 1]))
    off = j - int(np.argmax(above[k_peak : j + 1][::-1]))

    def rel(k: float) -> float:
        return (k - r_index) / fs

    iso_lo, iso_hi = (
        max(0, on - round(ISOELECTRIC_S[0] * fs)),
        max(1, on - round(ISOELECTRIC_S[1] * fs)),
    )
    iso = s[:, iso_lo:iso_hi].mean(axis=1)
    dev = s - iso[:, None]
    earliest = 0 if pre_rr_s is None else idx(-pre_rr_s + EARLIEST_AFTER_PREVIOUS_R_S)
    p = _find_p(
        dev,
        q - s,
        amp,
        max(earliest, on - round(P_ZONE_S[0] * fs)),
        on - round(P_ZONE_S[1] * fs),
        earliest,
        fs,
    )
    t_hi = n - 1 if post_rr_s is None else min(n - 1, idx(post_rr_s - T_BEFORE_NEXT_R_S))
    t = _find_t(dev, amp, off + round(T_AFTER_QRS_S * fs), t_hi, off)
    p_on, p_peak, p_off = (None, None, None) if p is None else tuple(rel(k) for k in p)
    t_on, t_peak, t_off, t_in = (None, None, None, True) if t is None else t
    return Delineation(
        qrs_on_s=rel(on),
        qrs_off_s=rel(off),
        p_present=p is not None,
        p_on_s=p_on,
        p_peak_s=p_peak,
        p_off_s=p_off,
        t_on_s=None if t_on is None else rel(t_on),
        t_peak_s=None if t_peak is None else rel(t_peak),
        t_off_s=None if t_off is None else rel(t_off),
        t_end_in_window=t_in,
        window_s=(rel(0), rel(n - 1) + 1.0 / fs),
        previous_r_s=None if pre_rr_s is None else -pre_rr_s,
        noise_ratio=_noise_ratio(q - s, amp, weight, on, off),
    )


def _noise_ratio(hf: np.ndarray, amp: np.ndarray, weight: np.ndarray, on: int, off: int) -> float:
    """RMS of the 12-40 Hz band outside the QRS over the QRS peak-to-peak, leads weighted."""
    outside = np.ones(hf.shape[1], dtype=bool)
    outside[max(0, on) : off + 1] = False
    if not outside.any():
        return 0.0
    rms = np.sqrt(np.mean(hf[:, outside] ** 2, axis=1))
    return float(np.sum(weight * rms / amp))


def _find_p(
    dev: np.ndarray, noise: np.ndarray, amp: np.ndarray, lo: int, hi: int, earliest: int, fs: float
) -> tuple[int, int, int] | None:
    """``(onset, peak, offset)`` of the clearest P hump in ``[lo, hi)``, or None.

    Humps from ``earliest`` on (the TP segment) compete: the P wave must be at
    least :data:`P_DOMINANCE` times as prominent as any other, which the
    fibrillatory waves of AF are not.
    """
    from scipy.signal import find_peaks

    if hi - lo < round(0.04 * fs):
        return None
    start = max(earliest, lo - round(P_COMPETITOR_REACH_S * fs), 0)
    width = (round(P_MIN_WIDTH_S * fs), round(P_MAX_WIDTH_S * fs))
    best: tuple[float, tuple[int, int, int]] | None = None
    for lead in range(len(dev)):
        region = dev[lead, start:hi]
        noise_mv = float(np.sqrt(np.mean(noise[lead, lo:hi] ** 2)))
        floor = max(P_MIN_MV, P_MIN_FRACTION * amp[lead], noise_mv / P_NOISE_RATIO)
        humps = []  # (prominence, peak, left, right) of both polarities
        for sign in (1.0, -1.0):
            peaks, props = find_peaks(
                sign * region, prominence=0.0, width=width, rel_height=1.0 - P_EDGE_FRACTION
            )
            humps += zip(
                props["prominences"], peaks + start, props["left_ips"] + start,
                props["right_ips"] + start, strict=True,
            )  # fmt: skip
        humps.sort(key=lambda h: -h[0])
        inside = [h for h in humps if lo <= h[1] < hi]
        if not inside:
            continue
        prom, k, left, right = inside[0]
        rival = max((h[0] for h in humps if h[1] != k), default=0.0)
        if prom < floor or prom > P_MAX_FRACTION * amp[lead] or prom < P_DOMINANCE * rival:
            continue
        score = prom / max(noise_mv, 1e-3)  # the clearest hump, on the cleanest lead
        if best is None or score > best[0]:
            best = (score, (int(left), int(k), int(np.ceil(right))))
    return None if best is None else best[1]


def _find_t(
    dev: np.ndarray, amp: np.ndarray, lo: int, hi: int, qrs_off: int
) -> tuple[float, int, float, bool] | None:
    """``(onset, peak, offset, end_in_window)`` of the T wave (fractional indices), or None."""
    from scipy.signal import find_peaks

    if hi - lo < 4:
        return None
    best: tuple[float, int, int] | None = None  # (prominence / amplitude, lead, index)
    for lead in range(len(dev)):
        for sign in (1.0, -1.0):
            # The most prominent hump, so an ST depression does not pass for the T wave.
            peaks, props = find_peaks(sign * dev[lead, lo : hi + 1], prominence=0.0)
            if len(peaks):
                m = int(np.argmax(props["prominences"]))
                score = props["prominences"][m] / amp[lead]
                if best is None or score > best[0]:
                    best = (score, lead, lo + int(peaks[m]))
    if best is None:  # a monotonic stretch: its largest deviation
        lead = int(np.argmax(np.abs(dev[:, lo : hi + 1]).max(axis=1) / amp))
        k = lo + int(np.argmax(np.abs(dev[lead, lo : hi + 1])))
    else:
        _, lead, k = best
    y = dev[lead]
    sign = np.sign(y[k]) or 1.0
    dy = np.gradient(y)
    n = len(y)
    end, in_window = float(hi), hi < n - 1
    if k < hi:
        m = k + int(np.argmax(-sign * dy[k : hi + 1]))
        if -sign * dy[m] > 0:
            end = m - y[m] / dy[m]
            in_window = end <= n - 1
    start = float(qrs_off)
    if k > qrs_off:
        m = qrs_off + int(np.argmax(sign * dy[qrs_off : k + 1]))
        if sign * dy[m] > 0:
            start = m - y[m] / dy[m]
    return float(np.clip(start, qrs_off, k)), k, float(np.clip(end, k, n - 1)), bool(in_window)


def segment_shares(
    time_s: np.ndarray, lead_attribution: np.ndarray, rr_attribution: np.ndarray, d: Delineation
) -> tuple[dict[str, float], dict[str, float]]:
    """Absolute and signed attribution shares per segment.

    Parameters
    ----------
    time_s
        Time of each attribution sample relative to R.
    lead_attribution
        ``(n_leads, len(time_s))`` attribution per lead.
    rr_attribution
        Attribution of each RR feature.
    d
        The beat's delineation.

    Returns
    -------
    shares
        ``{segment: |mass| / total}`` over :data:`SEGMENTS`, summing to 1 (all
        zero when there is no attribution at all).
    signed
        ``{segment: signed mass / total}`` (positive supports the explained class).
    """
    labels = d.labels(np.asarray(time_s))
    a = np.atleast_2d(np.asarray(lead_attribution, dtype=np.float64))
    rr = np.asarray(rr_attribution, dtype=np.float64)
    total = float(np.abs(a).sum() + np.abs(rr).sum())
    shares: dict[str, float] = {}
    signed: dict[str, float] = {}
    for name in SEGMENTS:
        part = rr if name == "RR" else a[:, labels == name]
        shares[name] = float(np.abs(part).sum() / total) if total > 0 else 0.0
        signed[name] = float(part.sum() / total) if total > 0 else 0.0
    return shares, signed


def _timing_phrase(rr_pre_pct: float) -> tuple[str, str]:
    """(timing words, RR phrase for the evidence part)."""
    if rr_pre_pct < EARLY_RR_PCT:
        return f"early (RR {rr_pre_pct:.0f} % of baseline)", "the short RR"
    if rr_pre_pct > LATE_RR_PCT:
        return f"late (RR {rr_pre_pct:.0f} % of baseline)", "the long RR"
    return f"on time (RR {rr_pre_pct:.0f} % of baseline)", "the RR timing"


def clinical_sentence(
    explained: str,
    probability: float,
    predicted: str,
    predicted_probability: float,
    measurements: dict[str, Any],
    shares: dict[str, float],
    signed: dict[str, float],
    *,
    informative: bool = True,
    toward: bool = True,
    called: tuple[str, float] | None = None,
) -> str:
    """One sentence a clinician reads in seconds.

    Example: ``"Called V (0.97): QRS wide (138 ms), unlike the usual beat, and
    early (RR 62 % of baseline), no P wave; 71 % of the evidence on the QRS,
    18 % on the short RR."``

    ``informative`` False: the model scores the beat much as the patient's usual
    beat, so the shares are not told. ``toward`` False: the beat is *less* like
    the explained class than the usual beat, and the shares say what argues
    against it.

    ``called`` ``(class, probability)``: the bed's final call where the patient's
    look-alike beats (:mod:`inference.beat_memory`) changed the network's; the
    head then names both.
    """
    if called is not None and called[0] != predicted:
        head = (
            f"Called {called[0]} ({called[1]:.2f}) as this patient's similar earlier beats were; "
            f"this beat alone scores {predicted} {predicted_probability:.2f}"
        )
        if explained != predicted:
            head += f", {explained} {probability:.2f}"
    elif explained == predicted:
        shown = called[1] if called is not None else probability  # the bed's final figure
        head = f"Called {predicted} ({shown:.2f})"
    else:
        head = f"Evidence for {explained} ({probability:.2f}); called {predicted} ({predicted_probability:.2f})"
    qrs = measurements["qrs_ms"]
    words = "noisy strip, measurements uncertain: " if measurements.get("noisy") else ""
    words += f"QRS {'wide' if qrs >= WIDE_QRS_MS else 'narrow'} ({qrs:.0f} ms)"
    corr = measurements.get("qrs_correlation_with_usual")
    if corr is not None and corr < UNLIKE_USUAL_CORRELATION:
        words += ", unlike the usual beat,"
    timing, rr_phrase = _timing_phrase(measurements["rr_pre_pct"])
    words += f" and {timing}"
    post = measurements.get("rr_post_pct")
    if post is not None and measurements["rr_pre_pct"] < EARLY_RR_PCT and post > PAUSE_AFTER_PCT:
        words += f", pause after (RR {post:.0f} %)"
    if measurements.get("p_present"):
        pr = measurements.get("pr_ms")
        words += ", P wave present" + (f" (PR {pr:.0f} ms)" if pr is not None else "")
    else:
        words += ", no P wave"
    if not informative:
        return (
            f"{head}: {words}; the model scores it much as the patient's usual beat, "
            "so there is little evidence to show."
        )
    ranked = sorted(
        (n for n in SEGMENTS if shares.get(n, 0.0) >= MENTION_SHARE), key=lambda n: -shares[n]
    )
    parts = []
    sign = 1.0 if toward else -1.0
    for k, name in enumerate(ranked[:2]):
        phrase = rr_phrase if name == "RR" else _SEGMENT_PHRASE[name]
        odd = sign * signed.get(name, 0.0) < -0.5 * shares[name]
        note = (" (against)" if toward else " (for)") if odd else ""
        lead_in = " of the evidence" if k == 0 else ""
        parts.append(f"{100 * shares[name]:.0f} %{lead_in} on {phrase}{note}")
    tail = ", ".join(parts) if parts else "evidence spread thinly over the window"
    if not toward:
        tail = f"less like {explained} than the usual beat: {tail}"
    return f"{head}: {words}; {tail}."
