"""The inference thread: pulls each bed's new ECG from its rings and analyses it.

One :class:`AnalysisWorker` thread serves every bed (DESIGN.md: analyzer hop on
the inference thread, ``torch.set_num_threads(1)``).  Every hop it reads the
samples that arrived since the last hop (friture's pull model — no per-sample
signals), feeds the bed's :class:`~inference.pipeline.BedAnalyzer`, and
publishes what it found: beat marks for the waveform, the heart rate and PVC
count as numerics, beats to the store, and beats to any listener (the rhythm
and alarm logic).

A bed whose analysis raises is logged, counted and restarted from the newest
data; the other beds carry on.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from app.hub import ECG_ANALYSIS_SOURCE as ANALYSIS_SOURCE
from app.hub import BeatMark, BedModel, WardHub
from devices.frames import ECG_LEAD_I, ECG_LEAD_II, Numeric
from inference.conditions import AlarmCondition
from inference.pipeline import Beat, BedAnalyzer, heart_rate_bpm, pvcs_per_minute
from inference.rhythm import ATRIAL_KINDS, RhythmAnalyzer, alarm_conditions, beats_in_rhythm
from inference.vitals import PatientLimits

logger = logging.getLogger(__name__)

#: How often the worker pulls new samples.
HOP_S: Final = 0.25
#: Beats kept per bed for HR and PVC counts.
BEAT_HISTORY: Final = 400


@dataclass
class _BedState:
    analyzer: BedAnalyzer
    rhythm: RhythmAnalyzer
    next_index: int
    fs_hz: float
    n_leads: int
    beats: list[Beat] = field(default_factory=list)
    errors: int = 0
    published_at: int = -(10**12)  # sample index of the last HR/PVC numerics


class AnalysisWorker:
    """Runs beat analysis for every bed on one thread.

    Parameters
    ----------
    beds
        The ward's bed models (rings are read, beat marks written).
    hub
        Where derived numerics go (so they reach the tile and the store).
    model_path
        Beat model weights; None uses the shipped model.  If the model cannot
        be loaded, beats are still detected (HR works) and a technical error is
        reported once.
    on_beats
        Called on the inference thread with ``(bed_id, beats)`` after each hop.
    """

    def __init__(
        self,
        beds: dict[str, BedModel],
        hub: WardHub,
        *,
        model_path: Path | None = None,
        on_beats: Callable[[str, list[Beat]], None] | None = None,
        store_beat: Callable[[str, Beat, str], None] | None = None,
        on_conditions: Callable[[list[AlarmCondition]], None] | None = None,
        limits_of: Callable[[str], PatientLimits] | None = None,
    ) -> None:
        self._beds = beds
        self._hub = hub
        self._model_path = model_path
        self._on_beats = on_beats
        self._store_beat = store_beat
        self._on_conditions = on_conditions
        self._limits_of = limits_of
        self.episodes_opened = 0
        self._states: dict[str, _BedState] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.classifier = None
        self.model_error: str | None = None
        self.model_version = ""
        self.hops = 0
        self.busy_s = 0.0
        self.beats_found = 0

    def start(self) -> None:
        """Start the inference thread."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="inference", daemon=True)
            self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop and join the inference thread."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.error("inference thread did not stop in time")
            self._thread = None

    def _load_model(self) -> None:
        try:
            import torch  # noqa: PLC0415 (imported on the inference thread, off the start-up path)

            from inference.beats import BeatClassifier  # noqa: PLC0415
            from inference.pipeline import default_model_path  # noqa: PLC0415

            torch.set_num_threads(1)
            self.classifier = BeatClassifier.from_file(self._model_path or default_model_path())
            self.model_version = self.classifier.version
        except Exception as exc:  # a missing or wrong model degrades to detection only
            self.model_error = str(exc)
            logger.error(
                "beat model unavailable; detecting beats without classifying",
                extra={"error": str(exc)},
            )

    def _run(self) -> None:
        self._load_model()
        while not self._stop.is_set():
            t0 = time.perf_counter()
            for bed in list(self._beds.values()):
                try:
                    self._hop(bed)
                except Exception:
                    logger.exception(
                        "analysis of a bed failed; restarting it", extra={"bed": bed.bed_id}
                    )
                    state = self._states.pop(bed.bed_id, None)
                    if state is not None:
                        state.errors += 1
            self.hops += 1
            self.busy_s += time.perf_counter() - t0
            self._stop.wait(HOP_S)

    def _hop(self, bed: BedModel) -> None:
        ring = bed.ring(ECG_LEAD_I)
        if ring is None:
            return
        state = self._states.get(bed.bed_id)
        end = ring.end_index
        if state is None or state.fs_hz != ring.fs_hz:
            n_leads = 2 if bed.ring(ECG_LEAD_II) is not None else 1
            start = max(ring.start_index, end - int(2 * ring.fs_hz))
            analyzer = BedAnalyzer(ring.fs_hz, n_leads, self.classifier, first_index=start)
            limits = self._limits_of(bed.bed_id) if self._limits_of is not None else None
            rhythm = RhythmAnalyzer(ring.fs_hz, limits, first_index=start)
            state = _BedState(analyzer, rhythm, start, ring.fs_hz, n_leads)
            self._states[bed.bed_id] = state
        if end <= state.next_index:
            return
        if state.next_index < ring.start_index:  # fell behind the ring: restart from what is held
            logger.warning("analysis fell behind; skipping ahead", extra={"bed": bed.bed_id})
            self._states.pop(bed.bed_id)
            return
        lead1 = ring.read(state.next_index, end).samples
        leads = [lead1]
        if state.n_leads == 2:
            ring2 = bed.ring(ECG_LEAD_II)
            second = ring2.read(state.next_index, end) if ring2 is not None else None
            lead2 = np.full(len(lead1), np.nan, np.float32)
            if second is not None and len(second.samples):
                off = second.first_index - state.next_index
                take = min(len(second.samples), len(lead1) - off)
                if take > 0:
                    lead2[off : off + take] = second.samples[:take]
            leads.append(lead2)
        state.next_index = end
        block = np.vstack(leads)
        beats = state.analyzer.push(block)
        self._rhythm(bed.bed_id, state, block[0], beats)
        # Beats that arrive while AF or flutter is called are shown and stored with
        # their final class in that rhythm (no S beats), as `vigil analyze` writes them.
        atrial = [
            (ep.onset_sample, None)
            for kind, ep in state.rhythm.open_episodes.items()
            if kind in ATRIAL_KINDS
        ]
        beats = beats_in_rhythm(beats, atrial)
        if not beats:
            self._publish_rate(bed, state, end)
            return
        self.beats_found += len(beats)
        state.beats = (state.beats + beats)[-BEAT_HISTORY:]
        bed.add_beats(
            [
                BeatMark(b.sample_index, b.symbol, max(b.probabilities), b.probabilities)
                for b in beats
            ]
        )
        if self._store_beat is not None:
            for b in beats:
                self._store_beat(bed.bed_id, b, self.model_version)
        if self._on_beats is not None:
            self._on_beats(bed.bed_id, beats)
        self._publish_rate(bed, state, end)

    def _rhythm(
        self, bed_id: str, state: _BedState, primary: np.ndarray, beats: list[Beat]
    ) -> None:
        """Rhythm episodes from this hop's samples and beats → alarm conditions."""
        if self._limits_of is not None:
            state.rhythm.set_limits(self._limits_of(bed_id))
        updates = state.rhythm.push(
            primary, beats, state.analyzer.detected_peaks, state.analyzer.settled_until
        )
        self.episodes_opened += sum(1 for u in updates if u.change == "onset")
        if updates and self._on_conditions is not None:
            self._on_conditions(alarm_conditions(updates, bed_id, state.fs_hz))

    def _publish_rate(self, bed: BedModel, state: _BedState, now_index: int) -> None:
        # Numerics are refreshed once a second of signal, as a monitor's are; the
        # hop is faster only so that beats reach the screen quickly.
        if now_index - state.published_at < state.fs_hz:
            return
        state.published_at = now_index
        t_s = now_index / state.fs_hz
        hr = heart_rate_bpm([b.sample_index for b in state.beats], state.fs_hz, now_index)
        if not math.isnan(hr):
            self._hub.on_numeric(
                bed.bed_id, Numeric("hr", round(hr, 1), "bpm", t_s, ANALYSIS_SOURCE)
            )
        pvc = pvcs_per_minute(state.beats, state.fs_hz, now_index)
        self._hub.on_numeric(
            bed.bed_id, Numeric("pvc_per_min", float(pvc), "/min", t_s, ANALYSIS_SOURCE)
        )

    def stats(self) -> dict:
        """Counters for the run report."""
        return {
            "hops": self.hops,
            "busy_s": round(self.busy_s, 3),
            "beats": self.beats_found,
            "model_version": self.model_version,
            "model_error": self.model_error,
            "bed_restarts": sum(s.errors for s in self._states.values()),
            "episodes_opened": self.episodes_opened,
        }
