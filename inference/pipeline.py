"""Per-patient streaming analyzer: ECG samples in, classified beats out.

The same :class:`BedAnalyzer` serves the live ward (fed a few hundred
milliseconds at a time on the inference thread) and `vigil analyze` (fed a
whole record in large blocks), so what a clinician sees live is what the
offline report scores.

Stages: :class:`~inference.qrs.StreamingQrsDetector` on the primary lead →
:class:`~inference.beat_stream.StreamingBeatClassifier` on up to two leads → each
beat gets the signal quality of the second it falls in.
"""

from __future__ import annotations

import logging
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from inference.beats import beat_calls
from inference.qrs import StreamingQrsDetector

if TYPE_CHECKING:
    from inference.beats import BeatClassifier

logger = logging.getLogger(__name__)

CLASSES: Final = ("N", "S", "V", "F", "Q")
#: Heart rate is the mean of this many most recent RR intervals (disclosed on screen).
HR_AVERAGE_BEATS: Final = 12
#: RR intervals older than this are not used for the heart rate.
HR_LOOKBACK_S: Final = 20.0
#: Offline analysis feeds the streaming analyzer in blocks of this length. Results do
#: not depend on it; long blocks amortise each push's fixed cost (5 min: ~20 % faster
#: than 1 min on a 30-min record, a few MB of samples in flight).
OFFLINE_BLOCK_S: Final = 300.0


def default_model_path() -> Path:
    """The beat model shipped in ``resources/models``."""
    import sys

    frozen = getattr(sys, "_MEIPASS", None)
    root = Path(frozen) if frozen else Path(__file__).resolve().parent.parent
    return root / "resources" / "models" / "beatcnn.safetensors"


@dataclass(frozen=True, slots=True)
class Beat:
    """One detected and classified heartbeat.

    Parameters
    ----------
    sample_index
        R-peak position as an absolute sample counter of the primary lead.
    symbol
        AAMI class: ``N``, ``S``, ``V``, ``F`` or ``Q``.
    probabilities
        Class probabilities in :data:`CLASSES` order.
    quality
        Signal quality (0..1) of the second the beat is in.
    model_probabilities
        The network's probabilities for this beat alone, before the patient's
        look-alike beats refined V and F (:mod:`inference.beat_memory`); empty
        when no model ran.
    """

    sample_index: int
    symbol: str
    probabilities: tuple[float, ...]
    quality: float
    model_probabilities: tuple[float, ...] = ()


class BedAnalyzer:
    """Streaming analysis of one patient's ECG.  Belongs to one thread.

    Parameters
    ----------
    fs_hz
        Sampling rate of the leads.
    n_leads
        Leads pushed per block (1 or 2; lead 0 is used for QRS detection).
    classifier
        A loaded :class:`~inference.beats.BeatClassifier` owned by this
        thread, or None to detect beats without classifying them (symbol Q).
    first_index
        Absolute counter of the first sample that will be pushed.
    """

    def __init__(
        self,
        fs_hz: float,
        n_leads: int = 1,
        classifier: BeatClassifier | None = None,
        *,
        first_index: int = 0,
    ) -> None:
        from inference.beat_stream import StreamingBeatClassifier  # noqa: PLC0415

        self.fs_hz = float(fs_hz)
        self.n_leads = max(1, min(int(n_leads), 2))
        self.first_index = int(first_index)
        self.model_version = classifier.version if classifier is not None else ""
        self._qrs = StreamingQrsDetector(fs_hz)
        self._clf = (
            StreamingBeatClassifier(classifier, fs_hz, self.n_leads)
            if classifier is not None
            else None
        )
        self._quality: deque[float] = deque(maxlen=600)
        self._quality_start = 0  # window number of self._quality[0]
        self._window = self._qrs.quality_window_samples
        self.samples_pushed = 0
        #: R peaks (absolute samples) the detector reported in the latest push or
        #: flush; their beats follow once classified, up to a few seconds later.
        self.detected_peaks: list[int] = []

    def push(self, leads: np.ndarray) -> list[Beat]:
        """Feed ``(n_leads, k)`` samples (mV, NaN for gaps); returns beats now complete."""
        block = np.asarray(leads, dtype=np.float64)
        if block.ndim == 1:
            block = block[None, :]
        block = block[: self.n_leads]
        if block.shape[0] < self.n_leads:  # a second lead that stopped arriving
            pad = np.full((self.n_leads - block.shape[0], block.shape[1]), np.nan)
            block = np.vstack([block, pad])
        peaks = self._qrs.push(block[0])
        self.detected_peaks = [p + self.first_index for p in peaks]
        self._take_quality()
        self.samples_pushed += block.shape[1]
        return self._classify(block, peaks, final=False)

    def flush(self) -> list[Beat]:
        """End of data: decide and classify what is left."""
        peaks = self._qrs.flush()
        self.detected_peaks = [p + self.first_index for p in peaks]
        self._take_quality()
        return self._classify(np.zeros((self.n_leads, 0)), peaks, final=True)

    @property
    def settled_until(self) -> int:
        """Absolute sample before which every R peak has been detected and reported."""
        return min(self._qrs.settled_until, self._qrs.samples_received) + self.first_index

    def _take_quality(self) -> None:
        for q, _reason in self._qrs.take_quality():
            if len(self._quality) == self._quality.maxlen:
                self._quality_start += 1
            self._quality.append(q)

    def quality_at(self, sample: int) -> float:
        """Signal quality of the window holding relative ``sample`` (1.0 if not yet scored)."""
        k = sample // self._window - self._quality_start
        if 0 <= k < len(self._quality):
            return float(self._quality[k])
        return 1.0

    def _classify(self, block: np.ndarray, peaks: Sequence[int], final: bool) -> list[Beat]:
        if self._clf is None:
            ready = np.asarray(peaks, dtype=np.int64)
            probs = np.tile(np.array([0, 0, 0, 0, 1], np.float32), (len(ready), 1))
            model = [()] * len(ready)
        else:
            ready, probs = self._clf.push(
                block, np.asarray(peaks, dtype=np.int64), settled_until=self._qrs.settled_until
            )
            raw = self._clf.model_probabilities
            if final:
                more, more_probs = self._clf.flush()
                ready = np.concatenate([ready, more])
                probs = np.vstack([probs, more_probs])
                raw = np.vstack([raw, self._clf.model_probabilities])
            model = [tuple(p) for p in np.round(raw.astype(np.float64), 4).tolist()]
        # Whole-array conversions first: per-beat numpy scalar work cost more than the CNN.
        symbols = [CLASSES[k] for k in beat_calls(probs).tolist()] if len(probs) else []
        rounded = np.round(np.asarray(probs, dtype=np.float64), 4).tolist()
        return [
            Beat(r + self.first_index, sym, tuple(p), self.quality_at(r), m)
            for r, sym, p, m in zip(
                np.asarray(ready).tolist(), symbols, rounded, model, strict=True
            )
        ]


def heart_rate_bpm(beat_samples: Sequence[int], fs_hz: float, now_sample: int) -> float:
    """Mean heart rate over the last :data:`HR_AVERAGE_BEATS` RR intervals.

    Only beats within :data:`HR_LOOKBACK_S` of ``now_sample`` count; NaN when
    fewer than three such beats exist (too little to call a rate).
    """
    recent = [
        b
        for b in beat_samples[-(HR_AVERAGE_BEATS + 1) :]
        if now_sample - b <= HR_LOOKBACK_S * fs_hz
    ]
    if len(recent) < 3:
        return math.nan
    rr = np.diff(recent) / fs_hz
    return float(60.0 / rr.mean())


def pvcs_per_minute(beats: Sequence[Beat], fs_hz: float, now_sample: int) -> int:
    """V beats in the last 60 s."""
    return sum(1 for b in beats if b.symbol == "V" and now_sample - b.sample_index <= 60 * fs_hz)


@dataclass(frozen=True)
class RecordAnalysis:
    """Beats of a whole record analysed offline."""

    record: str
    fs_hz: float
    lead_labels: tuple[str, ...]
    beats: tuple[Beat, ...]
    model_version: str
    n_samples: int
    primary_lead: np.ndarray  # the lead that drove detection (mV), for rhythm analysis


def analyze_leads(
    leads: np.ndarray,
    fs_hz: float,
    classifier: BeatClassifier | None,
    *,
    block_s: float = OFFLINE_BLOCK_S,
) -> list[Beat]:
    """Run the streaming analyzer over ``(n_leads, n)`` samples in large blocks."""
    leads = np.atleast_2d(np.asarray(leads, dtype=np.float64))
    analyzer = BedAnalyzer(fs_hz, leads.shape[0], classifier)
    step = max(1, int(block_s * fs_hz))
    beats: list[Beat] = []
    for start in range(0, leads.shape[1], step):
        beats.extend(analyzer.push(leads[:, start : start + step]))
    beats.extend(analyzer.flush())
    return beats


def analyze_record(
    path: str | Path, classifier: BeatClassifier | None, *, lead: int = 0
) -> RecordAnalysis:
    """Analyse a WFDB record or BIDMC CSV recording.

    Parameters
    ----------
    path
        Record path without extension (or a BIDMC ``*_Signals.csv[.gz]``).
    classifier
        The beat model, or None for detection only.
    lead
        Which ECG lead drives QRS detection: 0 is the primary monitoring lead
        (MLII/II where the record has it), 1 the other lead.

    Raises
    ------
    devices.recording.RecordingError
        The record cannot be read.
    ValueError
        ``lead`` does not exist in the record.
    """
    from devices.recording import load_recording  # noqa: PLC0415

    rec = load_recording(path)
    ecg = [rec.streams[name] for name in ("ecg", "ecg2") if name in rec.streams]
    if not 0 <= lead < len(ecg):
        raise ValueError(f"{path}: lead {lead} not present (record has {len(ecg)} ECG lead(s))")
    ordered = [ecg[lead], *[s for i, s in enumerate(ecg) if i != lead]]
    n = min(len(s.samples) for s in ordered)
    leads = np.vstack([s.samples[:n] for s in ordered])
    beats = analyze_leads(leads, ordered[0].fs_hz, classifier)
    return RecordAnalysis(
        rec.name,
        ordered[0].fs_hz,
        tuple(s.label for s in ordered),
        tuple(beats),
        classifier.version if classifier is not None else "",
        n,
        leads[0],
    )
