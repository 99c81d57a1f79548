"""Signal quality of an ECG lead per window, as the QRS detector reports it.

Each window (1 s by default) gets a figure from 0 (unusable) to 1 (clean)
and a reason the rhythm logic can act on:

* ``gap``: more than half of the samples missing (NaN);
* ``flat``: a flat line, under 0.02 mV peak to peak (lead off, no signal);
* ``saturated``: a fifth or more of the samples sit at the window's extremes,
  the mark of an amplifier clipped at its rail;
* ``noisy``: the median QRS-band energy, relative to the beat level of the
  last clean stretch, is high (muscle tremor, electrode motion);
* ``ok``.

A quiet window without beats (asystole) is not low quality: deciding that
there is no beat is the rhythm logic's call, not a verdict on the signal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

QUALITY_OK: Final = "ok"
QUALITY_GAP: Final = "gap"
QUALITY_FLAT: Final = "flat"
QUALITY_SATURATED: Final = "saturated"
QUALITY_NOISY: Final = "noisy"


@dataclass(frozen=True, slots=True)
class WindowMeasure:
    """What one window's samples say before any beat level is known."""

    verdict: str | None  # gap, flat or saturated; None if the raw signal looks usable
    energy_median: float  # median QRS-band energy in the window


@dataclass(frozen=True, slots=True)
class QualitySettings:
    """Thresholds of the quality figure (mV and ratios)."""

    flat_mv: float = 0.02
    saturated_fraction: float = 0.2
    noise_floor_clean: float = 0.15
    noise_floor_unusable: float = 0.45
    level_update: float = 0.7


def measure_windows(
    raw: np.ndarray, energy: np.ndarray, width: int, count: int, settings: QualitySettings
) -> list[WindowMeasure]:
    """Measure ``count`` consecutive windows of ``width`` samples.

    Parameters
    ----------
    raw
        At least ``width * count`` raw samples (mV, NaN for missing).
    energy
        The QRS energy trace over the same samples.
    width, count
        Window length in samples and number of windows.
    settings
        Thresholds.

    Returns
    -------
    list of WindowMeasure
        One per window, in order.
    """
    raw = raw[: width * count].reshape(count, width)
    energy = energy[: width * count].reshape(count, width)
    finite = np.isfinite(raw)
    n_finite = finite.sum(axis=1)
    lo = np.where(finite, raw, np.inf).min(axis=1)
    hi = np.where(finite, raw, -np.inf).max(axis=1)
    at_rail = ((raw == lo[:, None]) | (raw == hi[:, None])).sum(axis=1)
    medians = np.median(energy, axis=1).tolist()
    out: list[WindowMeasure] = []
    for k in range(count):
        verdict: str | None = None
        if n_finite[k] < 0.5 * width:
            verdict = QUALITY_GAP
        elif hi[k] - lo[k] < settings.flat_mv:
            verdict = QUALITY_FLAT
        elif at_rail[k] >= settings.saturated_fraction * n_finite[k]:
            verdict = QUALITY_SATURATED
        out.append(WindowMeasure(verdict, medians[k]))
    return out


class QualityScorer:
    """Turns window measures into quality figures against the beat level.

    The beat level used is frozen while the signal is noisy: noise accepted
    as beats would otherwise raise the level and make the noise look small.
    Belongs to one detector (one thread).
    """

    def __init__(self, settings: QualitySettings) -> None:
        self._settings = settings
        self._level = 0.0

    def reset(self, beat_level: float) -> None:
        """Start again from a freshly learnt beat level."""
        self._level = beat_level

    def score(self, measure: WindowMeasure, beat_level: float | None) -> tuple[float, str]:
        """Quality 0..1 and reason of one window.

        Parameters
        ----------
        measure
            The window's measure.
        beat_level
            The detector's current QRS-energy level of beats; ``None`` while
            it is still learning (the noise test is then skipped).

        Returns
        -------
        tuple
            ``(quality, reason)``.
        """
        s = self._settings
        if measure.verdict is not None:
            return 0.0, measure.verdict
        if beat_level is None or beat_level <= 0.0:
            return 1.0, QUALITY_OK
        level = self._level if self._level > 0.0 else beat_level
        floor = measure.energy_median / level
        span = s.noise_floor_unusable - s.noise_floor_clean
        quality = min(max((s.noise_floor_unusable - floor) / span, 0.0), 1.0)
        if quality >= s.level_update:
            self._level = beat_level
        return quality, (QUALITY_OK if quality >= 0.5 else QUALITY_NOISY)
