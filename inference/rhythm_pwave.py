"""P-wave consistency: is there an atrial wave locked to each QRS?

RR irregularity alone calls sinus arrhythmia, frequent ectopy and detector
errors in a noisy stretch "AF". What AF lacks is the P wave: atrial activity
is fibrillatory, so the signal just before each QRS looks different from beat
to beat, while in sinus rhythm (and in most other supraventricular rhythms)
the same P wave sits a fixed PR interval before every QRS.

:class:`PWaveTracker` keeps a running template of the pre-QRS segment
(:data:`P_WINDOW_S` before the R peak, 1-30 Hz band, each segment detrended so
baseline wander and the tail of the previous T wave's slope do not count) and
scores every new beat by its correlation with the template. The median over
the last window of beats is the *P consistency*: close to 1 with a visible P
wave, near 0 in AF. The AF call requires it to be low, the way clinical AF
definitions require "no distinct P waves" [1]_.

On MIT-BIH DS1 (our detected beats, 32-beat windows) the stretches outside AF
have a median consistency of 0.66-0.99 per record (0.81-0.99 where the
underlying rhythm is sinus throughout) and the AF stretches of 201 and 203
0.02-0.05; the thresholds (:class:`~inference.rhythm_types.RhythmSettings`
``af_max_p_consistency`` 0.5, ``af_p_return`` 0.7) sit in that gap.
``python bench/rhythm.py`` scores the AF calls made with it.

References
----------
.. [1] G. Hindricks et al., "2020 ESC Guidelines for the diagnosis and
   management of atrial fibrillation", Eur. Heart J. 42(5):373-498, 2021
   (AF: "irregularly irregular R-R intervals, absence of distinct repeating
   P waves").
"""

from __future__ import annotations

from collections import deque
from typing import Final

import numpy as np

#: Pre-QRS segment scored, as (start, end) seconds before the R peak: the P
#: wave of a normal PR interval (120-200 ms) with the QRS onset left out.
P_WINDOW_S: Final = (0.30, 0.06)
#: Weight of each new segment in the running template.
TEMPLATE_WEIGHT: Final = 0.1


class PWaveTracker:
    """Running P-wave template and the correlation of each beat with it.

    Parameters
    ----------
    fs_hz
        Sampling rate of the segments.
    window
        Number of beats whose correlations make up :attr:`consistency`.
    """

    def __init__(self, fs_hz: float, window: int = 32) -> None:
        self.fs_hz = float(fs_hz)
        self.window = window
        self.length = int(round((P_WINDOW_S[0] - P_WINDOW_S[1]) * fs_hz))
        self._template: np.ndarray | None = None
        self._scores: deque[float] = deque(maxlen=window)
        ramp = np.arange(self.length, dtype=np.float64)
        # Least-squares line fit as one matrix product per segment.
        design = np.stack([ramp, np.ones_like(ramp)], axis=1)
        self._detrend = np.eye(self.length) - design @ np.linalg.pinv(design)

    def offsets(self, r_peak: int) -> tuple[int, int]:
        """Absolute ``[start, stop)`` sample range of the segment before ``r_peak``."""
        start = r_peak - int(round(P_WINDOW_S[0] * self.fs_hz))
        return start, start + self.length

    def add(self, segment: np.ndarray) -> float | None:
        """Score one beat's pre-QRS segment and fold it into the template.

        Parameters
        ----------
        segment
            ``length`` samples of the 1-30 Hz band ending shortly before the R peak.

        Returns
        -------
        float or None
            Correlation with the template before this beat (None for the first
            beat, or a segment of the wrong length or with missing samples,
            which is skipped).
        """
        seg = np.asarray(segment, dtype=np.float64)
        if len(seg) != self.length or not np.all(np.isfinite(seg)):
            return None
        seg = self._detrend @ seg
        score = None
        if self._template is not None:
            denom = float(np.linalg.norm(seg) * np.linalg.norm(self._template))
            score = float(seg @ self._template) / denom if denom > 0 else 0.0
            self._scores.append(score)
            self._template = (1.0 - TEMPLATE_WEIGHT) * self._template + TEMPLATE_WEIGHT * seg
        else:
            self._template = seg
        return score

    @property
    def consistency(self) -> float | None:
        """Median correlation over the last window (None until half a window is scored)."""
        if len(self._scores) < self.window // 2:
            return None
        return float(np.median(self._scores))

    def reset(self) -> None:
        """Forget template and scores (gap in analysis, lead off, VF)."""
        self._template = None
        self._scores.clear()
