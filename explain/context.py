"""What the beat classifier saw for one beat, its baseline, and how to show it (NumPy only).

:func:`beat_context` rebuilds the model's inputs for one beat from the ECG
and the detected R peaks exactly as :mod:`inference.features` builds them
live (waveform per lead, waveform minus the patient's running template, RR
features), keeping what the explanation needs beside them (the template, the
QRS amplitude scale, the beats before).

**Baseline** (the "nothing unusual" reference every attribution method
compares with; it decides the story, captum issue #1124): the patient's
running template in both leads with a zero difference channel, and the RR
features of a beat on time at the patient's own median RR (every log ratio of
this beat's intervals to the median is 0, i.e. a ratio of 1; irregularity
and the patient's RR level are kept). When the model does not call that
template N (e.g. it drifted onto ectopic beats), the median of the patient's
last beats the model called N replaces it (:func:`recent_normal_baseline`).
"""

from __future__ import annotations

import functools
import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from inference import features as ft
from inference.beats import CLASSES, beat_calls

if TYPE_CHECKING:
    from explain.segments import Delineation

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT_BEATS: Final = 48
RECENT_NORMAL_BEATS: Final = 8
MIN_RECENT_NORMAL_BEATS: Final = 3
#: Intervals that, for a beat on time, equal the patient's median RR.
_ON_TIME_AS_MEDIAN: Final = ("pre-RR", "post-RR", "local mean RR", "previous RR")


@dataclass(frozen=True)
class BeatRequest:
    """A beat to explain, with the signal before it that gives the patient's context.

    Parameters
    ----------
    leads
        ``(n_leads, n_samples)`` mV (1-D for one lead), NaN in gaps; lead 0 is
        the primary lead, only the first two are used (as by the classifier).
    fs_hz
        Sampling rate.
    r_peaks
        Absolute R-peak sample indices (sorted) of the beats in ``leads``, as the
        pipeline detected them, including the one after the explained beat.
    beat_index
        Position in ``r_peaks`` of the beat to explain.
    sample_offset
        Absolute sample index of ``leads[:, 0]``.
    lead_labels
        Names of the leads, for display.
    method
        ``"ig"``, ``"deeplift"`` or ``"occlusion"``.
    target
        Class to explain; default the predicted one.
    faithfulness
        Compute the faithfulness figures (adds about half the compute).
    called_probabilities
        The probabilities the bed's analysis gave this beat (after the patient's
        beat memory, :mod:`inference.beat_memory`); None when not known. Its
        class is the call explained unless ``target`` says otherwise.
    context_beats
        Beats before this one whose waveforms rebuild the patient's running
        template and QRS amplitude (None: every beat from the start of
        ``leads``, exactly as a pipeline started there saw it).

    Notes
    -----
    RR features always read every peak given: pass the peaks of the last few
    minutes (``inference.features.RR_HISTORY_BEATS`` beats) so they equal the
    live ones. The template is an exponential average (weight 1/8) of matching
    beats, so 48 beats of context leave < 0.2 % of an older start in it.
    """

    leads: np.ndarray
    fs_hz: float
    r_peaks: np.ndarray
    beat_index: int
    sample_offset: int = 0
    lead_labels: tuple[str, ...] = ()
    method: str = "ig"
    target: str | None = None
    faithfulness: bool = True
    context_beats: int | None = DEFAULT_CONTEXT_BEATS
    called_probabilities: tuple[float, ...] | None = None


@dataclass(frozen=True)
class BeatContext:
    """What the classifier saw for one beat, and everything needed to show it."""

    waves: np.ndarray  # (4, T) model input
    scalars: np.ndarray  # (N_SCALARS,)
    template: np.ndarray  # (2, T) patient's template, in QRS-amplitude units
    scale_mv: np.ndarray  # (2,) running QRS amplitude per lead
    present: np.ndarray  # (2,) bool
    history_waves: np.ndarray  # (k, 4, T) the beats before it (for the recent-normal baseline)
    history_scalars: np.ndarray  # (k, N_SCALARS)
    r_sample: int  # absolute R peak


def beat_context(
    leads: np.ndarray,
    fs_hz: float,
    r_peaks: np.ndarray,
    beat_index: int,
    sample_offset: int = 0,
    context_beats: int | None = DEFAULT_CONTEXT_BEATS,
) -> BeatContext:
    """Rebuild the classifier's inputs for beat ``beat_index`` (NumPy only).

    The patient's state starts fresh ``context_beats`` beats before it (None:
    at the first peak), as a stream started there would.

    Raises
    ------
    ValueError
        ``beat_index`` outside ``r_peaks`` or peaks not increasing.
    """
    leads = np.atleast_2d(np.asarray(leads, dtype=np.float32))
    peaks = np.asarray(r_peaks, dtype=np.int64)
    if not 0 <= beat_index < len(peaks):
        raise ValueError(f"beat_index {beat_index} outside the {len(peaks)} peaks given")
    if np.any(np.diff(peaks) <= 0):
        raise ValueError("r_peaks must be strictly increasing")
    start = 0 if context_beats is None else max(0, beat_index - int(context_beats))
    targets = np.arange(start, beat_index + 1)
    windows = ft.filtered_windows(leads, fs_hz, peaks[targets], sample_offset)
    inputs = ft.beat_inputs(
        leads,
        fs_hz,
        peaks,
        targets,
        ft.PatientState(),
        sample_offset=sample_offset,
        windows=windows,
    )
    waves, scalars = inputs.waves[-1], inputs.scalars[-1]
    own_mv, present = windows[0][-1], windows[1][-1]
    scale = np.ones(ft.MAX_LEADS, dtype=np.float32)
    for lead in np.flatnonzero(present):
        k = int(np.argmax(np.abs(waves[lead])))
        if waves[lead, k] != 0:
            scale[lead] = own_mv[lead, k] / waves[lead, k]
    template = (waves[: ft.MAX_LEADS] - waves[ft.MAX_LEADS :]) * present[:, None]
    first = max(0, len(targets) - 1 - ft.RR_BASELINE_BEATS)
    return BeatContext(
        waves=waves,
        scalars=scalars,
        template=template.astype(np.float32),
        scale_mv=scale,
        present=present,
        history_waves=inputs.waves[first:-1],
        history_scalars=inputs.scalars[first:-1],
        r_sample=int(peaks[beat_index]),
    )


def template_baseline(ctx: BeatContext) -> tuple[np.ndarray, np.ndarray]:
    """The patient's usual beat, on time: ``(waves (4, T), scalars)``."""
    waves = np.concatenate([ctx.template, np.zeros_like(ctx.template)]).astype(np.float32)
    return waves, rr_baseline(ctx.scalars)


def _feature(name: str) -> int | None:
    return ft.RR_FEATURE_NAMES.index(name) if name in ft.RR_FEATURE_NAMES else None


@functools.cache
def _rr_baseline_rules() -> tuple[tuple[int, float | int | None], ...]:
    """Per RR feature: 0.0 (log ratio 1), the index of the feature to copy, or None (keep).

    Read from the feature names (``"log A / B"``): on time, every interval in
    :data:`_ON_TIME_AS_MEDIAN` is the median RR, so ``log pre-RR / median RR`` → 0
    and ``log pre-RR / 0.8 s`` → the value of ``log median RR / 0.8 s``.
    Anything else (irregularity, the patient's RR level) is kept.
    """
    rules: list[tuple[int, float | int | None]] = []
    for k, name in enumerate(ft.RR_FEATURE_NAMES):
        rule: float | int | None = None
        if name.startswith("log ") and " / " in name:
            num, den = (part.strip() for part in name[4:].split(" / ", 1))
            num = "median RR" if num in _ON_TIME_AS_MEDIAN else num
            den = "median RR" if den in _ON_TIME_AS_MEDIAN else den
            if num == den:
                rule = 0.0
            elif (num, den) != tuple(p.strip() for p in name[4:].split(" / ", 1)):
                rule = _feature(f"log {num} / {den}")
                if rule is None:
                    logger.warning("no on-time baseline for RR feature %r; kept as is", name)
        rules.append((k, rule))
    return tuple(rules)


def rr_baseline(scalars: np.ndarray) -> np.ndarray:
    """RR features of a beat on time at the patient's median RR (presence flags kept)."""
    base = np.array(scalars, dtype=np.float32, copy=True)
    for k, rule in _rr_baseline_rules():
        if isinstance(rule, float):
            base[k] = rule
        elif isinstance(rule, int):
            base[k] = scalars[rule]
    return base


def rr_intervals_s(scalars: np.ndarray) -> tuple[float, float, float]:
    """``(pre-RR, post-RR, median RR)`` in seconds, read back from the RR features."""
    level = _feature("log median RR / 0.8 s")
    median = math.exp(float(scalars[level])) * ft.NOMINAL_RR_S if level is not None else math.nan
    k_pre, k_post = _feature("log pre-RR / median RR"), _feature("log post-RR / median RR")
    pre = median * math.exp(float(scalars[k_pre])) if k_pre is not None else math.nan
    post = median * math.exp(float(scalars[k_post])) if k_post is not None else math.nan
    return pre, post, median


def recent_normal_baseline(
    ctx: BeatContext, history_probs: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Median of the last beats called N (with their difference to this beat's template)."""
    called_n = np.flatnonzero(beat_calls(history_probs) == CLASSES.index("N"))
    if len(called_n) < MIN_RECENT_NORMAL_BEATS:
        return None
    chosen = ctx.history_waves[called_n[-RECENT_NORMAL_BEATS:], : ft.MAX_LEADS]
    own = np.median(chosen, axis=0) * ctx.present[:, None]
    waves = np.concatenate([own, (own - ctx.template) * ctx.present[:, None]]).astype(np.float32)
    return waves, rr_baseline(ctx.scalars)


def by_lead(waves: np.ndarray) -> np.ndarray:
    """``(…, 4, T)`` model channels → ``(…, 2 leads, 2 kinds, T)`` (kind 0 beat, 1 difference)."""
    shape = waves.shape[:-2] + (2, ft.MAX_LEADS, waves.shape[-1])
    return np.swapaxes(waves.reshape(shape), -3, -2)


def by_channel(waves: np.ndarray) -> np.ndarray:
    """Inverse of :func:`by_lead`."""
    return np.swapaxes(waves, -3, -2).reshape(
        waves.shape[:-3] + (2 * ft.MAX_LEADS, waves.shape[-1])
    )


def display_window(
    request: BeatRequest, ctx: BeatContext, baseline_waves: np.ndarray
) -> dict[str, np.ndarray | int]:
    """The beat's window at the recording's own rate, and the baseline drawn in its frame.

    Returns
    -------
    dict
        ``time_s`` (relative to R, 0.625 s before to 0.445 s after, like the
        model's window), ``waveform_mv`` ``(leads, n)`` raw samples (NaN outside
        the data), ``baseline_mv`` the baseline beat (the model's filtered view
        plus the window's straight line, which the model removes), ``r_index``.
    """
    fs = float(request.fs_hz)
    leads = np.atleast_2d(np.asarray(request.leads, dtype=np.float64))[: ft.MAX_LEADS]
    before = round(ft.PRE_SAMPLES / ft.MODEL_FS_HZ * fs)
    after = round((ft.POST_SAMPLES - 1) / ft.MODEL_FS_HZ * fs)
    r = ctx.r_sample - request.sample_offset
    lo, hi = r - before, r + after + 1
    window = np.full((len(leads), hi - lo), np.nan)
    src_lo, src_hi = max(lo, 0), min(hi, leads.shape[1])
    window[:, src_lo - lo : src_hi - lo] = leads[:, src_lo:src_hi]
    time_s = np.arange(-before, after + 1) / fs
    model_t = (np.arange(ft.WINDOW_SAMPLES) - ft.PRE_SAMPLES) / ft.MODEL_FS_HZ
    baseline = np.full_like(window, np.nan)
    for lead in range(len(leads)):
        if not ctx.present[lead]:
            continue
        seen = np.interp(time_s, model_t, ctx.waves[lead] * ctx.scale_mv[lead])
        base = np.interp(time_s, model_t, baseline_waves[lead] * ctx.scale_mv[lead])
        ok = np.isfinite(window[lead])
        if ok.sum() > 2:
            # The model's view has its straight line removed; put that line back for drawing.
            line = np.polyfit(time_s[ok], window[lead, ok] - seen[ok], 1)
            baseline[lead] = base + np.polyval(line, time_s)
    return {"time_s": time_s, "waveform_mv": window, "baseline_mv": baseline, "r_index": before}


def beat_measurements(
    ctx: BeatContext,
    baseline_waves: np.ndarray,
    delin: Delineation,
    model_t: np.ndarray,
    pre_rr_s: float,
    post_rr_s: float,
    median_rr_s: float,
) -> dict[str, object]:
    """Clinical measurements of the beat for the sentence and the JSON.

    ``qrs_correlation_with_usual`` is the correlation of the beat with the
    baseline beat over the delineated QRS (model view, present leads).
    """
    qrs = (model_t >= delin.qrs_on_s) & (model_t <= delin.qrs_off_s)
    corr = None
    if qrs.sum() >= 3 and ctx.present.any():
        beat = ctx.waves[: ft.MAX_LEADS][ctx.present][:, qrs].ravel()
        usual = baseline_waves[: ft.MAX_LEADS][ctx.present][:, qrs].ravel()
        if np.std(beat) > 0 and np.std(usual) > 0:
            corr = float(np.corrcoef(beat, usual)[0, 1])
    return {
        "qrs_ms": delin.qrs_ms,
        "p_present": delin.p_present,
        "pr_ms": delin.pr_ms,
        "pre_rr_ms": 1000.0 * pre_rr_s,
        "post_rr_ms": 1000.0 * post_rr_s,
        "baseline_rr_ms": 1000.0 * median_rr_s,
        "rr_pre_pct": 100.0 * pre_rr_s / median_rr_s,
        "rr_post_pct": 100.0 * post_rr_s / median_rr_s,
        "qrs_correlation_with_usual": corr,
        "noisy": delin.noisy,
    }
