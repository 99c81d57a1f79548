"""Per-beat inputs of the beat classifier: waveform windows and RR features.

Everything here is NumPy only (no torch), so the streaming analyzer and the
trainer share one definition of what the model sees.

What the model sees for beat *i* (R peak at sample ``r[i]`` of a record sampled
at ``fs`` Hz):

* **Waveform** — each lead, from 0.625 s before to 0.445 s after the R peak,
  band-limited (windowed-sinc low-pass at 40 Hz) and resampled to
  :data:`MODEL_FS_HZ` in one linear step, with the least-squares straight line
  of the window removed (baseline wander). Amplitude is divided by the
  patient's running QRS amplitude (median peak-to-peak of this beat and the
  16 beats before it), so a big ventricular beat still looks big.
* **Template difference** — this beat minus the patient's running template:
  an exponential average (weight 1/8) of the earlier beats whose QRS matched
  the template (a beat differing by more than half the template's QRS energy
  does not update it; after 12 such beats in a row the template restarts from
  the current beat). It is the patient's recent usual beat, and explanations
  use it as their baseline.
* **RR features** — pre-RR, post-RR, the mean of the last 8 RR intervals and the
  previous RR, as log ratios to the median of the last 32 RR intervals; the
  pre-RR and that median against the median of the last 256 RR intervals (a
  few minutes, so a sustained run of ectopic beats still reads as early); the
  rhythm's irregularity (mean successive difference, and the share of the last
  32 intervals within 10 % of their median, which separates frequent ectopics
  from atrial fibrillation) and the absolute RR level.
* **Lead presence** — one flag per lead (0 when the lead is missing, mostly
  NaN, or flat in this window); an absent lead is fed as zeros.

Context each beat needs (this is what makes streaming equal to offline use):
the samples from ``r[i] - CONTEXT_BEFORE_S`` (0.68 s) to ``r[i] +
CONTEXT_AFTER_S`` (0.5 s), the peaks ``r[i-256] … r[i+1]`` and the
:class:`PatientState` left by beats ``0 … i-1`` (template and the last 16 QRS
amplitudes). When no next peak exists the post-RR is :data:`POST_RR_CAP_S` if
the signal runs on that long after the beat, otherwise the pre-RR stands in.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Final

import numpy as np

from inference.nanstats import nanmean_last, nanmedian_last, sliding_median

#: Bump when anything below changes what the model sees; weights files record it.
FEATURES_VERSION: Final = "1"
MODEL_FS_HZ: Final = 128.0
PRE_SAMPLES: Final = 80  # model samples before the R peak (0.625 s)
POST_SAMPLES: Final = 58  # model samples from the R peak on (to +0.445 s)
WINDOW_SAMPLES: Final = PRE_SAMPLES + POST_SAMPLES
LOWPASS_HZ: Final = 40.0
KERNEL_HALF_WIDTH_S: Final = 0.05  # reach of the resampling kernel
MAX_LEADS: Final = 2
AMPLITUDE_HISTORY_BEATS: Final = 16
RR_BASELINE_BEATS: Final = 32
RR_LONG_BEATS: Final = 256  # a few minutes: keeps a sustained run of ectopics "early"
RR_LOCAL_BEATS: Final = 8
RR_IRREGULARITY_BEATS: Final = 16
POST_RR_CAP_S: Final = 3.0
RR_MIN_S: Final = 0.15
NOMINAL_RR_S: Final = 0.8  # only for a record's first beat and log scaling
QRS_HALF_WIDTH_SAMPLES: Final = 10  # ±78 ms around R for the amplitude measure
MIN_AMPLITUDE_MV: Final = 0.05
ABSENT_NAN_FRACTION: Final = 0.3
FLAT_RANGE_MV: Final = 0.01  # a lead whose window spans less is flat (lead off)

CONTEXT_BEFORE_S: Final = PRE_SAMPLES / MODEL_FS_HZ + KERNEL_HALF_WIDTH_S
CONTEXT_AFTER_S: Final = (POST_SAMPLES - 1) / MODEL_FS_HZ + KERNEL_HALF_WIDTH_S
TEMPLATE_WEIGHT: Final = 0.125
TEMPLATE_MATCH_LIMIT: Final = 0.5  # difference energy / template energy over the QRS
TEMPLATE_RESTART_BEATS: Final = 12
TEMPLATE_QRS: Final = slice(PRE_SAMPLES - 13, PRE_SAMPLES + 19)  # -0.1 s … +0.15 s
_TEMPLATE_QRS_SAMPLES: Final = TEMPLATE_QRS.stop - TEMPLATE_QRS.start
#: Peaks before beat i that its RR features read.
RR_HISTORY_BEATS: Final = RR_LONG_BEATS

RR_FEATURE_NAMES: Final = (
    "log pre-RR / median RR",
    "log post-RR / median RR",
    "log local mean RR / median RR",
    "log pre-RR / previous RR",
    "log post-RR / pre-RR",
    "RR irregularity",
    "log median RR / 0.8 s",
    "log pre-RR / 0.8 s",
    "log pre-RR / long median RR",
    "log median RR / long median RR",
    "fraction of last 32 RR within 10 % of their median",
)
N_RR_FEATURES: Final = len(RR_FEATURE_NAMES)
N_SCALARS: Final = N_RR_FEATURES + MAX_LEADS
N_WAVE_CHANNELS: Final = 2 * MAX_LEADS  # each lead, then each lead minus template


@dataclass(frozen=True, slots=True)
class BeatInputs:
    """Model inputs for a run of beats.

    Attributes
    ----------
    waves
        float32 ``(n_beats, 4, WINDOW_SAMPLES)``: lead 1, lead 2, lead 1 minus
        template, lead 2 minus template, in units of the patient's QRS amplitude.
    scalars
        float32 ``(n_beats, N_SCALARS)``: the RR features then lead presence.
    """

    waves: np.ndarray
    scalars: np.ndarray


@functools.lru_cache(maxsize=32)
def _resampling_operator(fs_hz: float) -> tuple[int, int, np.ndarray]:
    """Linear map from a raw window at ``fs_hz`` to the model window.

    Returns ``(offset_before, offset_after, matrix)``: raw samples
    ``r - offset_before … r + offset_after`` (inclusive) times ``matrix.T``
    give the low-passed, resampled, linearly detrended window.
    """
    before = math.ceil(CONTEXT_BEFORE_S * fs_hz)
    after = math.ceil(CONTEXT_AFTER_S * fs_hz)
    raw_t = np.arange(-before, after + 1, dtype=np.float64) / fs_hz
    out_t = (np.arange(WINDOW_SAMPLES, dtype=np.float64) - PRE_SAMPLES) / MODEL_FS_HZ
    dt = out_t[:, None] - raw_t[None, :]
    cutoff = min(LOWPASS_HZ, 0.45 * fs_hz)
    kernel = np.sinc(2.0 * cutoff * dt)
    taper = np.where(
        np.abs(dt) < KERNEL_HALF_WIDTH_S, 0.5 + 0.5 * np.cos(np.pi * dt / KERNEL_HALF_WIDTH_S), 0.0
    )
    interp = kernel * taper
    interp /= interp.sum(axis=1, keepdims=True)  # unit gain at DC
    design = np.stack([np.ones_like(out_t), out_t], axis=1)
    detrend = np.eye(WINDOW_SAMPLES) - design @ np.linalg.pinv(design)
    return before, after, np.ascontiguousarray((detrend @ interp).T, dtype=np.float32)


def filtered_windows(
    leads: np.ndarray, fs_hz: float, peaks: np.ndarray, sample_offset: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Band-limited model-rate windows of the given beats, before amplitude scaling.

    Parameters
    ----------
    leads
        ``(n_leads, n_samples)`` mV, NaN allowed; at most :data:`MAX_LEADS` are used.
    fs_hz
        Sampling rate of ``leads``.
    peaks
        Absolute R-peak sample indices.
    sample_offset
        Absolute index of ``leads[:, 0]`` (non-zero for a streaming buffer).

    Returns
    -------
    windows
        float32 ``(n_peaks, MAX_LEADS, WINDOW_SAMPLES)`` mV, zeros for absent leads.
    present
        bool ``(n_peaks, MAX_LEADS)``.
    amplitude
        float32 ``(n_peaks, MAX_LEADS)`` QRS peak-to-peak mV, NaN for absent leads.
    """
    before, after, op = _resampling_operator(float(fs_hz))
    peaks = np.asarray(peaks, dtype=np.int64)
    n_peaks = len(peaks)
    windows = np.zeros((n_peaks, MAX_LEADS, WINDOW_SAMPLES), dtype=np.float32)
    present = np.zeros((n_peaks, MAX_LEADS), dtype=bool)
    amplitude = np.full((n_peaks, MAX_LEADS), np.nan, dtype=np.float32)
    n_used = min(leads.shape[0], MAX_LEADS)
    n = leads.shape[1]
    if n_peaks == 0 or n_used == 0 or n == 0:
        return windows, present, amplitude
    raw = _gather_windows(
        np.asarray(leads[:n_used], dtype=np.float32), peaks - sample_offset, before, after
    )
    gappy = np.isnan(raw).any(axis=2) if np.isnan(raw).any() else np.zeros(raw.shape[:2], bool)
    ok = np.ones(raw.shape[:2], dtype=bool)
    if gappy.any():
        # Gaps are filled with the window's median; only gappy windows pay for it.
        rows = raw[gappy]
        ok[gappy] = np.isnan(rows).mean(axis=1) < ABSENT_NAN_FRACTION
        fill = np.nan_to_num(nanmedian_last(rows), nan=0.0)
        raw[gappy] = np.where(np.isnan(rows), fill[:, None], rows)
    filtered = raw @ op
    # A flat (lead-off) window stays flat after filtering; checking it here is cheaper.
    ok &= filtered.max(axis=2) - filtered.min(axis=2) > FLAT_RANGE_MV
    filtered[~ok] = 0.0
    windows[:, :n_used] = filtered.transpose(1, 0, 2)
    present[:, :n_used] = ok.T
    qrs = filtered[
        :, :, PRE_SAMPLES - QRS_HALF_WIDTH_SAMPLES : PRE_SAMPLES + QRS_HALF_WIDTH_SAMPLES
    ]
    amplitude[:, :n_used] = np.where(ok, qrs.max(axis=2) - qrs.min(axis=2), np.nan).T
    return windows, present, amplitude


def _gather_windows(leads: np.ndarray, centres: np.ndarray, before: int, after: int) -> np.ndarray:
    """Copy ``(n_leads, n_beats, before+after+1)`` windows; NaN where they leave the data."""
    n = leads.shape[1]
    width = before + after + 1
    lo = int(centres[0]) - before
    hi = int(centres[-1]) + after + 1
    src = leads[:, max(lo, 0) : min(hi, n)]
    if lo < 0 or hi > n or src.shape[1] < width:
        pad_lo, pad_hi = max(-lo, 0), max(hi - n, 0)
        src = np.pad(src, ((0, 0), (pad_lo, pad_hi)), constant_values=np.nan)
    starts = centres - before - lo
    # Per lead, so the result is C-contiguous (lead, beat, sample): indexing the 2-D
    # window view at once would interleave the leads in memory and make every later
    # reduction over samples several times slower.
    out = np.empty((src.shape[0], len(centres), width), dtype=src.dtype)
    for lead in range(src.shape[0]):
        out[lead] = np.lib.stride_tricks.sliding_window_view(src[lead], width)[starts]
    return out


def _history_index(targets: np.ndarray, depth: int, include_self: bool) -> np.ndarray:
    """Indices ``t-depth … t-1`` (and ``t`` if ``include_self``) for each target, -1 where < 0."""
    stop = 1 if include_self else 0
    idx = targets[:, None] + np.arange(-depth, stop)[None, :]
    return np.where(idx >= 0, idx, -1)


def rr_features(
    peaks: np.ndarray, fs_hz: float, targets: np.ndarray, n_samples_end: int
) -> np.ndarray:
    """RR features of the beats ``targets`` (indices into ``peaks``).

    Parameters
    ----------
    peaks
        All known absolute R-peak indices (sorted); entries before
        ``targets.min() - RR_HISTORY_BEATS`` are not read.
    fs_hz
        Sampling rate.
    targets
        Positions in ``peaks`` of the beats to describe.
    n_samples_end
        Absolute index one past the last sample seen; decides the post-RR of a
        beat without a next peak.

    Returns
    -------
    float32 ``(len(targets), N_RR_FEATURES)``.
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    n = len(peaks)
    rr = np.empty(n, dtype=np.float64)
    if n > 1:
        rr[1:] = np.diff(peaks) / fs_hz
        rr[0] = rr[1]
    elif n == 1:
        rr[0] = NOMINAL_RR_S
    rr = np.clip(rr, RR_MIN_S, POST_RR_CAP_S)
    pre = rr[targets]
    has_next = targets + 1 < n
    tail_s = (n_samples_end - peaks[targets]) / fs_hz
    post = np.where(
        has_next,
        rr[np.minimum(targets + 1, n - 1)],
        np.where(tail_s >= POST_RR_CAP_S, POST_RR_CAP_S, pre),
    )
    rr_nan = np.append(rr, np.nan)  # index -1 reads NaN

    def windowed(depth: int) -> np.ndarray:
        return rr_nan[_history_index(targets, depth - 1, include_self=True)]

    def trailing_median(depth: int) -> np.ndarray:
        if len(targets) > 1 and not np.all(np.diff(targets) == 1):
            return nanmedian_last(windowed(depth))
        first = int(targets[0]) - depth + 1 if len(targets) else 0
        seq = rr[max(first, 0) : int(targets[-1]) + 1] if len(targets) else rr[:0]
        if first < 0:
            seq = np.concatenate([np.full(-first, np.nan), seq])
        return sliding_median(seq, depth)

    recent32 = windowed(RR_BASELINE_BEATS)
    baseline = trailing_median(RR_BASELINE_BEATS)
    # Frequent ectopics leave most intervals at the median; atrial fibrillation does not.
    near = np.abs(recent32 - baseline[:, None]) <= 0.1 * baseline[:, None]
    regular = near.sum(axis=1) / np.maximum((~np.isnan(recent32)).sum(axis=1), 1)
    long_baseline = trailing_median(RR_LONG_BEATS)
    local = nanmean_last(windowed(RR_LOCAL_BEATS))
    prev = rr_nan[np.where(targets >= 1, targets - 1, targets)]
    steps = np.abs(np.diff(windowed(RR_IRREGULARITY_BEATS), axis=1))
    irregular = np.nan_to_num(nanmean_last(steps) / baseline, nan=0.0)
    feats = np.stack(
        [
            np.log(pre / baseline),
            np.log(post / baseline),
            np.log(local / baseline),
            np.log(pre / prev),
            np.log(post / pre),
            irregular,
            np.log(baseline / NOMINAL_RR_S),
            np.log(pre / NOMINAL_RR_S),
            np.log(pre / long_baseline),
            np.log(baseline / long_baseline),
            regular,
        ],
        axis=1,
    )
    return np.clip(feats, -3.0, 3.0).astype(np.float32)


@dataclass
class PatientState:
    """What beat features carry from one beat to the next for one patient.

    Fresh at the start of a record or stream; :func:`beat_inputs` updates it.
    ``match_template`` is the QRS part of the template as the per-beat match
    decisions keep it (float32, step by step). It is carried as is rather than
    cut from ``template`` (computed another way, equal only to rounding), so a
    beat sitting on the match limit is decided the same way however the beats
    are batched: live and offline analysis agree.
    """

    template: np.ndarray = field(
        default_factory=lambda: np.zeros((MAX_LEADS, WINDOW_SAMPLES), np.float32)
    )
    match_template: np.ndarray = field(
        default_factory=lambda: np.zeros((MAX_LEADS, _TEMPLATE_QRS_SAMPLES), np.float32)
    )
    has_template: np.ndarray = field(default_factory=lambda: np.zeros(MAX_LEADS, bool))
    misses: np.ndarray = field(default_factory=lambda: np.zeros(MAX_LEADS, np.int64))
    amplitudes: np.ndarray = field(
        default_factory=lambda: np.full((AMPLITUDE_HISTORY_BEATS, MAX_LEADS), np.nan)
    )
    beats_seen: int = 0


def beat_inputs(
    leads: np.ndarray,
    fs_hz: float,
    peaks: np.ndarray,
    targets: np.ndarray,
    state: PatientState,
    *,
    sample_offset: int = 0,
    windows: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> BeatInputs:
    """Model inputs for consecutive beats, advancing the patient's state.

    Parameters
    ----------
    leads
        ``(n_leads, n_samples)`` mV covering each target's window; NaN allowed.
    fs_hz
        Sampling rate of ``leads``.
    peaks
        Absolute R-peak sample indices, sorted; must include the 32 before the
        first target (when they exist) and the one after the last.
    targets
        Consecutive positions in ``peaks`` of the beats wanted, the first being
        the beat after the last one ``state`` has seen.
    state
        The patient's state; updated in place.
    sample_offset
        Absolute sample index of ``leads[:, 0]``.
    windows
        ``filtered_windows`` of exactly these targets, if already computed.

    Returns
    -------
    BeatInputs
    """
    peaks = np.asarray(peaks, dtype=np.int64)
    targets = np.asarray(targets, dtype=np.int64)
    if windows is None:
        windows = filtered_windows(leads, fs_hz, peaks[targets], sample_offset)
    own, present, amplitude = windows
    scale = _advance_scale(amplitude, state)
    template = _advance_templates(own[None], present[None], [state])[0]
    rr = rr_features(peaks, fs_hz, targets, sample_offset + leads.shape[1])
    return _assemble(own, present, scale, template, rr)


def record_beat_inputs(
    records: list[tuple[np.ndarray, float, np.ndarray]],
) -> list[BeatInputs]:
    """Inputs of every beat of several whole records at once (training).

    Each record is ``(leads, fs_hz, peaks)`` and starts from a fresh
    :class:`PatientState`; the result equals :func:`beat_inputs` per record,
    but the sequential template update runs over all records together.
    """
    windows = [filtered_windows(leads, fs, peaks) for leads, fs, peaks in records]
    states = [PatientState() for _ in records]
    scales = [_advance_scale(w[2], st) for w, st in zip(windows, states, strict=True)]
    longest = max((len(p) for _, _, p in records), default=0)
    own = np.zeros((len(records), longest, MAX_LEADS, WINDOW_SAMPLES), np.float32)
    present = np.zeros((len(records), longest, MAX_LEADS), bool)
    for k, w in enumerate(windows):
        own[k, : len(w[0])] = w[0]
        present[k, : len(w[0])] = w[1]
    templates = _advance_templates(own, present, states)
    out = []
    for k, (leads, fs, peaks) in enumerate(records):
        n = len(peaks)
        rr = rr_features(peaks, fs, np.arange(n), leads.shape[1])
        out.append(_assemble(windows[k][0], windows[k][1], scales[k], templates[k, :n], rr))
    return out


def _assemble(
    own: np.ndarray, present: np.ndarray, scale: np.ndarray, template: np.ndarray, rr: np.ndarray
) -> BeatInputs:
    waves = np.concatenate([own, own - template], axis=1) / np.tile(scale, 2)[..., None]
    waves *= np.tile(present, 2)[..., None]
    scalars = np.concatenate([rr, present.astype(np.float32)], axis=1)
    return BeatInputs(waves.astype(np.float32), scalars.astype(np.float32))


def _advance_scale(amplitude: np.ndarray, state: PatientState) -> np.ndarray:
    """Running QRS amplitude (median of this beat and the 16 before) per lead."""
    k = AMPLITUDE_HISTORY_BEATS
    amp_all = np.concatenate([state.amplitudes, amplitude.astype(np.float64)], axis=0)
    scale = np.stack([sliding_median(amp_all[:, lead], k + 1) for lead in range(MAX_LEADS)], 1)
    state.amplitudes = amp_all[-k:].copy()
    return np.where(np.isfinite(scale), np.maximum(scale, MIN_AMPLITUDE_MV), 1.0).astype(np.float32)


def _advance_templates(
    own: np.ndarray, present: np.ndarray, states: list[PatientState]
) -> np.ndarray:
    """Each beat's template (from earlier beats only), updating the running ones.

    ``own`` is ``(n_patients, n_beats, MAX_LEADS, WINDOW_SAMPLES)``; patients
    are updated side by side. Two passes: the match decisions are sequential
    but read only the QRS part, so a per-beat loop runs over that part alone
    (float32, the same arithmetic on those samples as a whole-window update);
    the whole-window templates then follow from those decisions as an
    exponential average over the matching beats of each stretch between
    (re)starts, computed with a linear filter instead of a per-beat loop.
    """
    n_patients, n_beats, n_leads, _ = own.shape
    qrs = TEMPLATE_QRS
    weight = np.float32(TEMPLATE_WEIGHT)
    limit = np.float32(TEMPLATE_MATCH_LIMIT)
    tmpl0 = np.stack([st.template for st in states]).astype(np.float32)
    has = np.stack([st.has_template for st in states])
    misses = np.stack([st.misses for st in states])
    xq = np.ascontiguousarray(own[..., qrs])
    tq = np.stack([st.match_template for st in states]).astype(np.float32)
    started = np.zeros((n_patients, n_beats, n_leads), dtype=bool)
    matched = np.zeros((n_patients, n_beats, n_leads), dtype=bool)
    restarted = np.zeros((n_patients, n_beats, n_leads), dtype=bool)
    all_have = bool(has.all())
    # Misses can reach the restart count no sooner than this many beats from now, so
    # the (costly, on tiny arrays) check runs only then; numpy calls are per-beat cost.
    until_check = TEMPLATE_RESTART_BEATS - int(misses.max(initial=0))
    for i in range(n_beats):
        x = xq[:, i]
        ok = present[:, i]
        if not all_have:
            start = ok & ~has
            if start.any():
                tq[start] = x[start]
                has = has | start
                started[:, i] = start
                all_have = bool(has.all())
        diff = x - tq
        match = (np.vecdot(diff, diff) <= limit * np.vecdot(tq, tq)) & ok
        matched[:, i] = match
        np.add(tq, weight * diff, out=tq, where=match[..., None])
        misses += ok
        misses[match] = 0
        until_check -= 1
        if until_check <= 0:
            restart = misses >= TEMPLATE_RESTART_BEATS
            if restart.any():
                tq[restart] = x[restart]
                misses[restart] = 0
                restarted[:, i] = restart
            until_check = TEMPLATE_RESTART_BEATS - int(misses.max(initial=0))
    out = np.empty(own.shape, dtype=np.float32)
    for k, st in enumerate(states):
        for lead in range(n_leads):
            st.template[lead] = _template_track(
                own[k, :, lead],
                tmpl0[k, lead],
                bool(st.has_template[lead]),
                started[k, :, lead],
                matched[k, :, lead],
                restarted[k, :, lead],
                out[k, :, lead],
            )
        st.template = st.template.astype(np.float32)
        st.has_template = has[k].copy()
        st.match_template = tq[k].copy()
        st.misses = misses[k].copy()
    return out


def _template_track(
    x: np.ndarray,
    tmpl: np.ndarray,
    has: bool,
    started: np.ndarray,
    matched: np.ndarray,
    restarted: np.ndarray,
    out: np.ndarray,
) -> np.ndarray:
    """Fill ``out`` with one lead's template before each beat; return the final template.

    Between (re)starts the template is the exponential average (weight
    :data:`TEMPLATE_WEIGHT`) over the matching beats, started from the beat
    that set it. A start sets the template before its own beat reads it; a
    restart after.
    """
    from scipy.signal import lfilter

    n = len(x)
    # Where the template is set to a beat, and from which beat on that value is read.
    starts = np.flatnonzero(started)
    restarts = np.flatnonzero(restarted)
    anchors = sorted([(int(i), int(i)) for i in starts] + [(int(i), int(i) + 1) for i in restarts])
    segments: list[tuple[int, int, np.ndarray | None]] = []  # (from beat, to beat, value)
    first = 0
    value: np.ndarray | None = tmpl if has else None
    for beat, read_from in anchors:
        if read_from > first:
            segments.append((first, read_from, value))
        value, first = x[beat], read_from
    if first < n:
        segments.append((first, n, value))
    # Set by a restart at the last beat: only the next call's beats read it.
    unread = value if first >= n else None
    w = TEMPLATE_WEIGHT
    final = tmpl if has else np.zeros_like(tmpl)
    for lo, hi, value in segments:
        if value is None:  # no template yet: a beat reads itself
            out[lo:hi] = x[lo:hi]
            continue
        # A started beat matches itself and leaves the template unchanged, so it is skipped.
        updates = lo + np.flatnonzero(matched[lo:hi] & ~started[lo:hi])
        if len(updates) == 0:
            out[lo:hi] = value
            final = value
            continue
        zi = (1.0 - w) * value.astype(np.float64)[None]
        track, _ = lfilter([w], [1.0, -(1.0 - w)], x[updates].astype(np.float64), axis=0, zi=zi)
        levels = np.vstack([value[None].astype(np.float64), track])
        # Beat j reads the template after the updates of beats before it.
        done = np.searchsorted(updates, np.arange(lo, hi), side="left")
        out[lo:hi] = levels[done]
        final = levels[-1]
    if unread is not None:
        final = unread
    return np.asarray(final, dtype=np.float32)
