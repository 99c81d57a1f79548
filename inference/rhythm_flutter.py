"""Atrial flutter inside an irregular rhythm: organised atrial waves at 230-350 per minute.

Flutter with variable AV block gives an irregular ventricular response and no
discrete P waves, so the beat-stream AF call (:mod:`inference.rhythm_beats`
plus :mod:`inference.rhythm_pwave`) takes it for AF. What tells them apart is
the atrial activity itself: flutter waves come from one macro-reentrant
circuit, a periodic wave with a cycle length of about 200-260 ms that
treatment can stretch [1]_ (textbooks give 250-350 per minute), while
fibrillatory waves are disorganised. Looking at atrial activity in the
absence of the QRST complexes follows Holm et al. [2]_.

:func:`atrial_periodicity` looks at the TQ stretches of a window (between
the end of one T wave and the next QRS, where only atrial activity is left)
and finds the strongest periodicity with a cycle length in the flutter band
and how strong it is (pooled autocorrelation, the organisation index).
:class:`FlutterDetector` calls flutter when the organisation index is at
least :data:`MIN_ORGANISATION` in :data:`CONFIRM_CHECKS` consecutive checks,
and hands back after as many checks without it. The checks run while the
ventricular response is irregular (variable block); flutter with a fixed
2:1 block at about 150/min leaves no TQ stretch long enough to see two
flutter cycles and is left to the rate alarms.

References
----------
.. [1] F. G. Cosio, "Atrial flutter, typical and atypical: a review",
   Arrhythm. Electrophysiol. Rev. 6(2):55-62, 2017.
.. [2] M. Holm, S. Pehrson, M. Ingemansson et al., "Non-invasive assessment of
   the atrial cycle length during atrial fibrillation in man: introducing,
   validating and illustrating a new ECG method", Cardiovasc. Res.
   38(1):69-81, 1998.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

#: Flutter band of the atrial dominant frequency (230-350 waves per minute,
#: cycle length 170-260 ms).
FLUTTER_BAND_HZ: Final = (3.8, 5.8)
#: Organisation index (autocorrelation at the atrial cycle length) for flutter.
MIN_ORGANISATION: Final = 0.6
#: Stretches between complexes needed for a decision.
MIN_SEGMENTS: Final = 3
#: Window analysed at each check, and the time between checks.
WINDOW_S: Final = 8.0
CHECK_EVERY_S: Final = 4.0
#: Consecutive checks that switch AF to flutter and back.
CONFIRM_CHECKS: Final = 3
#: Ventricular complex left out around each R peak (seconds before, after).
COMPLEX_S: Final = (0.05, 0.35)


@dataclass(frozen=True, slots=True)
class AtrialPeriodicity:
    """Periodicity of the atrial activity between the complexes of one window.

    Attributes
    ----------
    dominant_hz
        Atrial rate (Hz) of the strongest periodicity in the flutter band.
    organisation
        Pooled autocorrelation at that cycle length (1: perfectly periodic).
    """

    dominant_hz: float
    organisation: float

    @property
    def flutter_like(self) -> bool:
        """Organised atrial waves in the flutter band."""
        return self.organisation >= MIN_ORGANISATION


def atrial_periodicity(
    band: np.ndarray, beats: list[tuple[int, str]], fs_hz: float
) -> AtrialPeriodicity | None:
    """Periodicity of the atrial activity between the ventricular complexes of a window.

    Parameters
    ----------
    band
        1-30 Hz band-passed ECG of the window (mV).
    beats
        ``(sample within the window, AAMI symbol)`` of its beats, in order.
    fs_hz
        Sampling rate.

    Returns
    -------
    AtrialPeriodicity or None
        None when fewer than :data:`MIN_SEGMENTS` stretches between complexes
        are long enough, or they have missing samples.

    Notes
    -----
    Each stretch from :data:`COMPLEX_S` after one R peak to
    :data:`COMPLEX_S` before the next (the TQ interval, where only atrial
    activity is left) is detrended, and their autocorrelations are pooled;
    the dominant atrial cycle is the lag of the largest pooled
    autocorrelation within the flutter cycle lengths, and the organisation
    index is that autocorrelation (1 for a perfectly periodic wave).
    Cancelling the QRST complexes with a template instead would remove
    flutter waves, which are phase-locked to the conducted beats.
    """
    x = np.asarray(band, dtype=np.float64)
    after, before = int(round(COMPLEX_S[1] * fs_hz)), int(round(COMPLEX_S[0] * fs_hz))
    lo_lag = int(round(fs_hz / FLUTTER_BAND_HZ[1]))
    hi_lag = int(round(fs_hz / FLUTTER_BAND_HZ[0]))
    min_len = int(1.4 * hi_lag)
    acf = np.zeros(hi_lag + 2)
    energy = 0.0
    segments = 0
    positions = [b for b, _ in beats]
    for r0, r1 in zip(positions, positions[1:], strict=False):
        seg = x[max(r0 + after, 0) : min(r1 - before, len(x))]
        if len(seg) < min_len:
            continue
        if not np.all(np.isfinite(seg)):
            return None
        ramp = np.arange(len(seg), dtype=np.float64)
        seg = seg - np.polyval(np.polyfit(ramp, seg, 1), ramp)
        energy += float(seg @ seg)
        for lag in range(lo_lag // 2, hi_lag + 2):
            # Scaled to the full segment length, so short overlaps are not favoured.
            acf[lag] += float(seg[:-lag] @ seg[lag:]) * len(seg) / (len(seg) - lag)
        segments += 1
    if segments < MIN_SEGMENTS or energy <= 0.0:
        return None
    lag = lo_lag + int(np.argmax(acf[lo_lag : hi_lag + 1]))
    r = acf / energy
    # A periodic wave peaks at its cycle length and swings negative at half of
    # it; slow content (T-wave tails, P waves, wander) decays monotonically.
    periodic = r[lag] >= r[lag - 1] and r[lag] >= r[lag + 1] and r[lag // 2] <= 0.0
    organisation = float(np.clip(r[lag], -1.0, 1.0)) if periodic else 0.0
    return AtrialPeriodicity(fs_hz / lag, organisation)


class FlutterDetector:
    """Debounced flutter-versus-fibrillation decision during an irregular rhythm.

    Belongs to the bed's inference thread; :meth:`check` is called every
    :data:`CHECK_EVERY_S` while an AF or flutter episode is open.
    """

    def __init__(self) -> None:
        self.flutter = False
        self._streak = 0

    def check(self, periodicity: AtrialPeriodicity | None) -> bool:
        """Take one window's periodicity (None: unusable); return the current decision."""
        if periodicity is None:
            return self.flutter
        if periodicity.flutter_like != self.flutter:
            self._streak += 1
            if self._streak >= CONFIRM_CHECKS:
                self.flutter = not self.flutter
                self._streak = 0
        else:
            self._streak = 0
        return self.flutter

    def reset(self) -> None:
        """Back to fibrillation (episode ended, gap in analysis)."""
        self.flutter = False
        self._streak = 0
