"""Qt-free explanation service: flagged events → beat explanations on the explain thread.

:class:`ExplainService` owns the explain thread (its own copy of the beat
model: DESIGN.md rule 4) and turns a flagged event into a
:class:`~explain.context.BeatRequest` built from the bed's ring buffers and the
beats the analyzer found, exactly the context the live classifier saw.
Results are cached per event, written to the store beside the event, and
handed to a callback on the explain thread (the UI re-emits it through a
queued signal).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from app.hub import BedModel
from devices.frames import ECG_LEAD_I, ECG_LEAD_II
from explain.rhythm import DRIVING_CLASS  # the beat class that drives each rhythm kind

logger = logging.getLogger(__name__)

#: Seconds of signal before the explained beat given as patient context.
CONTEXT_BEFORE_S: Final = 60.0
#: Seconds after the beat (the model reads 0.5 s and the next R peak).
CONTEXT_AFTER_S: Final = 2.5


@dataclass(frozen=True)
class BeatSelection:
    """The beat an explanation is about."""

    bed_id: str
    sample_index: int
    symbol: str


def pick_beat(
    bed: BedModel, onset_sample: int, kind: str, window_s: float = 12.0
) -> BeatSelection | None:
    """The beat that best represents an event: the first beat of the driving class
    at or after its onset (within ``window_s``), else the most uncertain beat near it."""
    ring = bed.ring(ECG_LEAD_I)
    if ring is None or not bed.beats:
        return None
    fs = ring.fs_hz
    lo, hi = onset_sample - int(2 * fs), onset_sample + int(window_s * fs)
    near = [
        b for b in bed.beats[:-1] if lo <= b.sample_index <= hi
    ]  # the last beat has no successor yet
    if not near:
        return None
    want = DRIVING_CLASS.get(kind)
    chosen = next((b for b in near if want and b.symbol == want), None)
    if chosen is None:
        chosen = next((b for b in near if b.symbol != "N"), None) or min(
            near, key=lambda b: b.confidence
        )
    return BeatSelection(bed.bed_id, chosen.sample_index, chosen.symbol)


def build_request(bed: BedModel, beat_sample: int, method: str = "ig"):
    """A :class:`~explain.context.BeatRequest` for one beat from the bed's rings and beats.

    Raises
    ------
    LookupError
        The beat is no longer (or not yet) held in memory with its context.
    """
    from explain.context import BeatRequest  # noqa: PLC0415

    ring = bed.ring(ECG_LEAD_I)
    if ring is None:
        raise LookupError(f"{bed.label}: no ECG")
    fs = ring.fs_hz
    start = max(ring.start_index, beat_sample - int(CONTEXT_BEFORE_S * fs))
    stop = min(ring.end_index, beat_sample + int(CONTEXT_AFTER_S * fs))
    lead1 = ring.read(start, stop)
    if lead1.first_index > beat_sample or lead1.end_index <= beat_sample:
        raise LookupError(f"{bed.label}: beat at sample {beat_sample} is no longer in memory")
    start = lead1.first_index
    leads = [np.asarray(lead1.samples, dtype=np.float64)]
    labels = ["ECG"]
    ring2 = bed.ring(ECG_LEAD_II)
    if ring2 is not None:
        second = ring2.read(start, start + len(lead1.samples))
        lead2 = np.full(len(lead1.samples), np.nan)
        off = second.first_index - start
        lead2[off : off + len(second.samples)] = second.samples
        leads.append(lead2)
        labels.append("ECG 2")
    peaks = np.array(
        sorted(
            {
                b.sample_index
                for b in bed.beats
                if start <= b.sample_index < start + len(lead1.samples)
            }
        ),
        dtype=np.int64,
    )
    where = np.flatnonzero(peaks == beat_sample)
    if not len(where):
        raise LookupError(f"{bed.label}: no detected beat at sample {beat_sample}")
    called = next(
        (b.probabilities for b in bed.beats if b.sample_index == beat_sample and b.probabilities),
        None,
    )
    return BeatRequest(
        leads=np.vstack(leads),
        fs_hz=fs,
        r_peaks=peaks,
        beat_index=int(where[0]),
        sample_offset=int(start),
        lead_labels=tuple(labels),
        method=method,
        called_probabilities=called,
    )


class ExplainService:
    """Explanations for flagged events, computed on the explain thread.

    Parameters
    ----------
    beds
        The ward's bed models.
    model_path
        Beat model weights (None: the shipped model).
    on_result
        Called on the explain thread with ``(key, explanation_dict, error)``.
    store_explanation
        Called with ``(key, explanation_dict, model_version)`` for each result.
    """

    def __init__(
        self,
        beds: dict[str, BedModel],
        *,
        model_path: Path | None = None,
        on_result: Callable[[object, dict | None, str | None], None] | None = None,
        store_explanation: Callable[[object, dict, str], None] | None = None,
    ) -> None:
        self.beds = beds
        self._model_path = model_path
        self.on_result = on_result
        self._store = store_explanation
        self._thread = None
        self._lock = threading.Lock()
        self.results: dict[object, dict] = {}
        self.errors: dict[object, str] = {}
        self.latencies_ms: list[float] = []

    def _ensure_thread(self):
        if self._thread is None:
            from explain.worker import ExplainerThread  # noqa: PLC0415 (torch/captum off the start-up path)
            from inference.pipeline import default_model_path  # noqa: PLC0415

            self._thread = ExplainerThread(self._model_path or default_model_path())
        return self._thread

    def request(self, key: object, bed_id: str, beat_sample: int, method: str = "ig") -> None:
        """Explain the beat at ``beat_sample`` of ``bed_id``; the result arrives via ``on_result``."""
        bed = self.beds[bed_id]
        try:
            req = build_request(bed, beat_sample, method)
        except LookupError as exc:
            self._finish(key, None, str(exc))
            return
        self._ensure_thread().submit(req, lambda exp, err: self._done(key, exp, err))

    def _done(self, key: object, explanation, error: BaseException | None) -> None:
        if error is not None or explanation is None:
            self._finish(key, None, f"explanation failed: {error}")
            return
        data = explanation.to_dict()
        self.latencies_ms.append(float(explanation.latency_ms))
        if self._store is not None:
            try:
                self._store(key, data, explanation.model_version)
            except Exception:
                logger.exception("storing an explanation failed")
        self._finish(key, data, None)

    def _finish(self, key: object, data: dict | None, error: str | None) -> None:
        with self._lock:
            if data is not None:
                self.results[key] = data
            else:
                self.errors[key] = error or "unknown error"
        if self.on_result is not None:
            self.on_result(key, data, error)

    def stop(self) -> None:
        """Finish queued explanations and stop the explain thread."""
        if self._thread is not None:
            self._thread.close()
            self._thread = None
