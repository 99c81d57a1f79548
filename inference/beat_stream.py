"""Beat classification as samples and detected R peaks arrive, equal to classifying offline.

:class:`StreamingBeatClassifier` holds one patient's recent samples and peaks,
classifies each beat as soon as its context is complete and keeps the patient
state (template, amplitude scale, beat memory) that :meth:`BeatClassifier.classify`
builds over a whole record, so a live bed and `vigil analyze` give the same
answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from inference import features as ft
from inference.beat_memory import PatientBeatMemory
from inference.beats import CLASSES, BeatClassifier, checked_inputs


@dataclass
class StreamingBeatClassifier:
    """Classify beats as samples and detected R peaks arrive, same answers as offline.

    Push each new block of samples together with the R peaks detected so far
    that are not yet pushed; each call returns the beats whose context became
    complete (0.5 s of signal after the peak, and the next peak or, without
    one, no peak possible within 3 s of it). Probabilities equal those of
    :meth:`BeatClassifier.classify` on the whole record (to float rounding; a
    beat sitting within rounding of a threshold, such as the first ensemble
    member's sure-normal probability or the memory's look-alike limit, may
    fall on the other side).

    The detector must report a peak within ``peak_latency_s`` of signal after it,
    unless each push says up to which sample every peak has been reported
    (``settled_until``, as :attr:`inference.qrs.StreamingQrsDetector.settled_until`).

    Parameters
    ----------
    classifier
        The loaded model (same thread as this object).
    fs_hz
        Sampling rate of the pushed samples.
    n_leads
        Number of rows in each pushed block.
    peak_latency_s
        Longest delay of the QRS detector, in seconds of signal.
    """

    classifier: BeatClassifier
    fs_hz: float
    n_leads: int = 1
    peak_latency_s: float = 0.5
    _buf: np.ndarray = field(init=False, repr=False)
    _buf_start: int = field(default=0, init=False)
    _peaks: list[int] = field(default_factory=list, init=False, repr=False)
    _next: int = field(default=0, init=False)  # position in _peaks of the first unsent beat
    _state: ft.PatientState = field(default_factory=ft.PatientState, init=False, repr=False)
    _memory: PatientBeatMemory = field(default_factory=PatientBeatMemory, init=False, repr=False)
    #: The network's own probabilities (before the patient beat memory) of the beats
    #: the latest :meth:`push` or :meth:`flush` returned, in the same order.
    model_probabilities: np.ndarray = field(
        default_factory=lambda: np.zeros((0, len(CLASSES)), np.float32), init=False, repr=False
    )

    def __post_init__(self) -> None:
        checked_inputs(np.zeros((self.n_leads, 1)), self.fs_hz, np.zeros(0, np.int64))
        self._buf = np.zeros((self.n_leads, 0), np.float32)
        self._after = math.ceil(ft.CONTEXT_AFTER_S * self.fs_hz)
        self._before = math.ceil(ft.CONTEXT_BEFORE_S * self.fs_hz)
        self._latency = int(math.ceil(self.peak_latency_s * self.fs_hz))
        self._cap = int(math.ceil(ft.POST_RR_CAP_S * self.fs_hz))
        self._settled = 0  # every peak before this sample has been pushed

    @property
    def samples_seen(self) -> int:
        """Absolute index one past the last pushed sample."""
        return self._buf_start + self._buf.shape[1]

    def push(
        self,
        samples: np.ndarray,
        r_peaks: np.ndarray | list[int] = (),
        settled_until: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Add samples and newly detected peaks; return ``(peaks, probabilities)`` now ready.

        Parameters
        ----------
        samples
            ``(n_leads, k)`` mV (1-D when one lead), continuing the stream.
        r_peaks
            Absolute sample indices of new R peaks, increasing and after every
            peak pushed before.
        settled_until
            Absolute sample before which no further peak will come; None means
            ``peak_latency_s`` before the newest sample.

        Returns
        -------
        peaks
            int64 absolute indices of the beats classified by this call.
        probabilities
            float32 ``(len(peaks), 5)``.
        """
        block = np.asarray(samples, dtype=np.float32)
        if block.ndim == 1:
            block = block[None, :]
        if block.shape[0] != self.n_leads:
            raise ValueError(f"expected {self.n_leads} lead(s), got {block.shape[0]}")
        self._buf = np.concatenate([self._buf, block], axis=1)
        for p in np.asarray(r_peaks, dtype=np.int64).tolist():
            if self._peaks and p <= self._peaks[-1]:
                raise ValueError(f"R peak {p} is not after the previous one {self._peaks[-1]}")
            self._peaks.append(int(p))
        if settled_until is None:
            settled_until = self.samples_seen - self._latency
        self._settled = max(self._settled, min(int(settled_until), self.samples_seen))
        return self._emit(final=False)

    def flush(self) -> tuple[np.ndarray, np.ndarray]:
        """Classify the remaining beats as if the record ended here (end of a replay)."""
        return self._emit(final=True)

    def _emit(self, final: bool) -> tuple[np.ndarray, np.ndarray]:
        end = self.samples_seen
        ready = self._next
        while ready < len(self._peaks):
            r = self._peaks[ready]
            # Without a next peak, the post-RR is the cap once no peak can come
            # within the cap's reach of this one.
            complete = end >= r + self._after + 1 and (
                ready + 1 < len(self._peaks) or self._settled >= r + self._cap
            )
            if not (complete or final):
                break
            ready += 1
        if ready == self._next:
            self._trim()
            self.model_probabilities = np.zeros((0, len(CLASSES)), np.float32)
            return np.zeros(0, np.int64), self.model_probabilities.copy()
        peaks = np.asarray(self._peaks, dtype=np.int64)
        targets = np.arange(self._next, ready)
        inputs = ft.beat_inputs(
            self._buf, self.fs_hz, peaks, targets, self._state, sample_offset=self._buf_start
        )
        self.model_probabilities = self.classifier.classify_inputs(inputs)
        probs = self._memory.refine(inputs.waves, self.model_probabilities)
        self._next = ready
        self._trim()
        return peaks[targets], probs

    def _trim(self) -> None:
        """Forget peaks and samples that no pending or future beat can need."""
        keep_peaks = max(self._next - ft.RR_HISTORY_BEATS - 1, 0)
        if keep_peaks:
            del self._peaks[:keep_peaks]
            self._next -= keep_peaks
        # A peak not yet reported lies after the settled point.
        first_needed = self._settled
        if self._next < len(self._peaks):
            first_needed = min(first_needed, self._peaks[self._next])
        drop = first_needed - self._before - 1 - self._buf_start
        if drop > 0:
            self._buf = self._buf[:, drop:]
            self._buf_start += drop
