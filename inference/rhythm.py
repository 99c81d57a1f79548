"""Rhythm episodes and alarms for one bed, streaming: beats + raw ECG in, episodes out.

:class:`RhythmAnalyzer` is fed, block by block on the bed's inference
thread, the raw primary-lead samples and the classified beats that
:class:`~inference.pipeline.BedAnalyzer` returned for the same block.  It
reports :class:`EpisodeUpdate` s (an episode began, its alarm is raised, it
ended, its alarm may clear) that :func:`alarm_conditions` turns into
:class:`~inference.conditions.AlarmCondition` updates for the alarm manager.
:func:`analyze_rhythm` runs the same object over a whole record, feeding
each beat when the live pipeline would have had it, so offline episode
timing (``alarm_sample``) is what a nurse would have seen.

What it calls, in the clinic's words (defaults are Vigil's, all settable in
:class:`RhythmSettings`; bedside practice from the issue: Philips asystole =
no QRS for 4 s, 3-10 s configurable elsewhere):

========== ============================================================ ========
kind       call                                                         priority
========== ============================================================ ========
asystole   no QRS for ``asystole_s`` (4 s) on a quiet but attached lead high
vf         VF/flutter probability high for 2 s running (raw-ECG model)  high
vt         ``vt_alarm_beats`` (5) or more V beats in a row above 100 bpm high
vt_run     3-4 V beats in a row above 100 bpm (non-sustained run)       low
couplet    exactly 2 V beats in a row                                   none
bigeminy   3+ cycles of one beat then a V; trigeminy: two beats then V  low
pvc        more than ``pvc_per_min`` V beats in the last minute         low
af         irregularly irregular RR between non-ectopic beats           medium
svt        5+ S beats in a row above 100 bpm                            low
pause      no QRS for ``pause_s`` (2.5 s) on a quiet lead              medium
brady      HR below the patient's low limit for 5 s (beyond the         medium,
           derived extreme limit for 3 s: escalates)                    high
tachy      HR above the patient's high limit for 5 s (likewise)         medium
noise      ECG too noisy to analyse (a would-be call was suppressed)    low
lead_off   flat line, signal loss or saturation for 3 s                 low
========== ============================================================ ========

Asystole, VF and VT latch (IEC 60601-1-8 practice for lethal arrhythmias).
``noise`` and ``lead_off`` are technical alarms.  Signal-quality gating: a
pause or asystole is called only when the raw lead is attached *and* quiet in
the QRS band since the last beat, and the beats before the silence were of
usable quality; activity without beats, or silence after noisy "beats", is
``noise``.  A V run whose surrounding beats are of poor quality is ``noise``,
not VT.  While the lead is off or VF is called, beat-based calls are
suspended; while ``noise`` is open, no new brady/tachy call starts.
``afl`` (atrial flutter) is in the vocabulary but not called yet: flutter
with variable block shows as ``af``.

Live use, on the bed's inference thread::

    bed = BedAnalyzer(fs, n_leads, classifier, first_index=i0)
    rhythm = RhythmAnalyzer(fs, limits, first_index=i0)
    ...
    beats = bed.push(block)                        # (n_leads, k) mV
    updates = rhythm.push(block[0], beats)         # primary lead + its beats
    manager.submit_all(alarm_conditions(updates, bed_id, fs, t0_s=t0))
    for u in updates: ...                          # onset/offset -> event list, store

Decisions fall once per second of signal (:attr:`RhythmAnalyzer.hop_samples`),
so block size does not change them; ``EpisodeUpdate.sample`` is the second
at which the change was decided.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Final

import numpy as np

from inference.conditions import AlarmCondition, Priority
from inference.rhythm_analyzer import RhythmAnalyzer
from inference.rhythm_types import (
    ALARM,
    CLEAR,
    DEFAULT_MERGE_S,
    DEFAULT_PRIORITIES,
    KINDS,
    LATCHING,
    OFFSET,
    ONSET,
    TECHNICAL,
    UPDATE,
    Episode,
    EpisodeUpdate,
    RhythmSettings,
)
from inference.vitals import PatientLimits

if TYPE_CHECKING:
    from inference.pipeline import Beat

logger = logging.getLogger(__name__)

__all__ = [
    "ALARM",
    "CLEAR",
    "DEFAULT_MERGE_S",
    "DEFAULT_PRIORITIES",
    "KINDS",
    "LATCHING",
    "OFFSET",
    "ONSET",
    "TECHNICAL",
    "UPDATE",
    "Episode",
    "EpisodeUpdate",
    "RhythmAnalyzer",
    "RhythmSettings",
    "alarm_conditions",
    "ATRIAL_KINDS",
    "analyze_rhythm",
    "beats_in_rhythm",
    "live_arrival_samples",
]

#: Rhythms with no organised atrial activity of the sinus node's: no beat can
#: be called a premature atrial (S) beat during them.
ATRIAL_KINDS: Final = frozenset({"af", "afl"})


def beats_in_rhythm(beats: Sequence[Beat], spans: Iterable[tuple[int, int | None]]) -> list[Beat]:
    """Final beat classes given the rhythm: S beats inside AF or flutter become N.

    A supraventricular ectopic beat is premature against the sinus rhythm; in
    AF or flutter there is no sinus rhythm to be premature against, and the
    irregular ventricular response makes many normally conducted beats look
    premature to the beat classifier. ANSI/AAMI EC57 databases label the beats
    of those episodes N (MIT-BIH's annotators do), so Vigil does too. The
    class probabilities are kept as the classifier gave them.

    Parameters
    ----------
    beats
        Classified beats.
    spans
        ``(onset_sample, offset_sample)`` of the AF and flutter episodes
        (offset None: still open).

    Returns
    -------
    list of Beat
        The beats, with S changed to N inside the spans.
    """
    closed = [(start, np.iinfo(np.int64).max if end is None else end) for start, end in spans]
    if not closed:
        return list(beats)
    return [
        replace(beat, symbol="N")
        if beat.symbol == "S" and any(s <= beat.sample_index <= e for s, e in closed)
        else beat
        for beat in beats
    ]


def live_arrival_samples(
    beat_samples: Sequence[int], fs_hz: float, *, classified: bool = True
) -> np.ndarray:
    """When the live pipeline would hand each beat to the rhythm analyzer.

    Models :class:`~inference.pipeline.BedAnalyzer`: the QRS detector reports
    a peak within 0.25 s (0.35 s is assumed); the beat classifier then waits for
    0.5 s of signal after the peak and for the next peak, or, when none comes,
    until the detector has settled 3 s past the peak (its settled point trails
    the newest sample by the energy-peak half-width plus the R-wave search).

    Parameters
    ----------
    beat_samples
        R-peak samples in increasing order.
    fs_hz
        Sampling rate.
    classified
        False for a detection-only analyzer (no classifier wait).
    """
    from inference.features import CONTEXT_AFTER_S, POST_RR_CAP_S  # noqa: PLC0415
    from inference.qrs import LATENCY_S, settled_lag_samples  # noqa: PLC0415

    r = np.asarray(beat_samples, dtype=np.int64)
    latency = int(np.ceil((LATENCY_S + 0.1) * fs_hz))
    if not classified or len(r) == 0:
        return r + int(np.ceil(LATENCY_S * fs_hz))
    after = r + int(np.ceil(CONTEXT_AFTER_S * fs_hz)) + 1
    nxt = np.concatenate((r[1:] + latency, [np.iinfo(np.int64).max]))
    cap = r + int(np.ceil(POST_RR_CAP_S * fs_hz)) + settled_lag_samples(fs_hz)
    return np.maximum(after, np.minimum(nxt, cap))


def analyze_rhythm(
    beats: Sequence[Beat],
    ecg_lead: np.ndarray,
    fs_hz: float,
    *,
    limits: PatientLimits | None = None,
    settings: RhythmSettings | None = None,
    classified: bool = True,
) -> list[Episode]:
    """Run the streaming :class:`RhythmAnalyzer` over a whole record.

    Each beat is fed at the second the live pipeline would have delivered it
    (:func:`live_arrival_samples`), and its R peak when the detector would have
    reported it, so ``alarm_sample`` is the live alarm time.

    Parameters
    ----------
    beats
        The record's beats (from :func:`inference.pipeline.analyze_record`).
    ecg_lead
        The primary lead in mV (NaN for gaps), sample 0 = beat sample 0.
    fs_hz
        Sampling rate.
    limits, settings
        Patient limits and rhythm settings.
    classified
        Whether the beats came from a classifier (sets the modelled latency).

    Returns
    -------
    list of Episode
        Every episode, closed at the end of the record at the latest.
    """
    x = np.asarray(ecg_lead, dtype=np.float64).ravel()
    ordered = sorted(beats, key=lambda b: b.sample_index)
    peaks = [b.sample_index for b in ordered]
    arrival = live_arrival_samples(peaks, fs_hz, classified=classified)
    detected = live_arrival_samples(peaks, fs_hz, classified=False)
    analyzer = RhythmAnalyzer(fs_hz, limits, settings)
    hop = analyzer.hop_samples
    j = d = 0
    for start in range(0, len(x), hop):
        stop = min(start + hop, len(x))
        k, e = j, d
        while k < len(ordered) and arrival[k] <= stop:
            k += 1
        while e < len(peaks) and detected[e] <= stop:
            e += 1
        analyzer.push(x[start:stop], ordered[j:k], peaks[d:e])
        j, d = k, e
    analyzer.push(np.empty(0), ordered[j:], peaks[d:])
    analyzer.finish()
    return analyzer.episodes


def alarm_conditions(
    updates: Iterable[EpisodeUpdate], bed_id: str, fs_hz: float, *, t0_s: float = 0.0
) -> list[AlarmCondition]:
    """Turn episode updates into alarm-manager conditions (raise, update, clear).

    Parameters
    ----------
    updates
        From :meth:`RhythmAnalyzer.push` / :meth:`RhythmAnalyzer.finish`.
    bed_id
        The bed.
    fs_hz
        Sampling rate, to turn the decision sample into seconds.
    t0_s
        Source-clock time of absolute sample 0.

    Returns
    -------
    list of AlarmCondition
        ``alarm`` and ``update`` give an active condition, ``clear`` its clear;
        ``onset``/``offset`` of non-alarming episodes give nothing.
    """
    out: list[AlarmCondition] = []
    for u in updates:
        ep = u.episode
        if u.change not in (ALARM, UPDATE, CLEAR) or ep.priority == Priority.NONE:
            continue
        cond = AlarmCondition(
            bed_id=bed_id,
            kind=ep.kind,
            priority=ep.priority,
            message=ep.message,
            value=ep.value,
            limit=ep.limit,
            latching=ep.latching,
            technical=ep.technical,
            active=u.change != CLEAR,
            t_s=t0_s + u.sample / fs_hz,
            source="rhythm",
        )
        out.append(cond)
    return out
