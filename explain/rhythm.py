"""Why a rhythm episode (AF, VT, a V run, bigeminy …) was called, over its window.

A rhythm call rests on a sequence of beats, not on one waveform, so its
explanation is per beat: which beats' class probabilities and which RR
intervals drove it, plus the standard RR irregularity figures and a sentence.

* **Ectopic runs and patterns** (``vt``, ``vt_run``, ``couplet``,
  ``bigeminy``, ``trigeminy``, ``pvc``: class V; ``svt``: class S): each
  beat's probability of the driving class; its contribution is its share of
  the summed probability. The least certain beat of the run is named: a run
  is only as sure as its weakest beat.
* **Irregular rhythms** (``af``, ``afl``): the RR intervals between
  consecutive non-ectopic beats (as the rhythm analyzer reads them); a beat's
  contribution is its share of the summed absolute successive RR differences.
  With the ECG, each beat is also checked for a P wave
  (:func:`explain.segments.delineate`).
* **Rate and pauses** (``brady``, ``tachy``, ``pause``, ``asystole`` …): RR
  figures and the longest gap.

RR figures: mean RR and rate, SDNN, RMSSD and pNN50 (share of successive
differences > 50 ms), as defined by the Task Force of the ESC and NASPE, "Heart
rate variability: standards of measurement", Circulation 93:1043-1065, 1996;
the share of successive differences over 10 % of the mean RR and the RMSSD
over the mean RR (nRMSSD) are the AF descriptors of Vigil's rhythm analyzer
(Dash et al. 2009; Tateno & Glass 2001).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import numpy as np

from explain import json_ready

CLASSES: Final = ("N", "S", "V", "F", "Q")
ECTOPIC: Final = frozenset({"V", "S"})
DRIVING_CLASS: Final = {
    "vt": "V",
    "vt_run": "V",
    "couplet": "V",
    "bigeminy": "V",
    "trigeminy": "V",
    "pvc": "V",
    "svt": "S",
}
IRREGULAR_KINDS: Final = frozenset({"af", "afl"})
#: A long episode is explained over its first minute: the stretch that made the call.
MAX_WINDOW_S: Final = 60.0
PNN50_MS: Final = 50.0
IRREGULAR_FRACTION: Final = 0.1
MAX_RR_S: Final = 2.0  # longer intervals are pauses, not rhythm
_NAMES: Final = {
    "vt": "Ventricular tachycardia",
    "vt_run": "Run of ventricular beats",
    "couplet": "Ventricular couplet",
    "bigeminy": "Ventricular bigeminy",
    "trigeminy": "Ventricular trigeminy",
    "pvc": "Frequent ventricular beats",
    "svt": "Supraventricular tachycardia",
    "af": "Atrial fibrillation",
    "afl": "Atrial flutter",
    "pause": "Pause",
    "asystole": "Asystole",
    "brady": "Bradycardia",
    "tachy": "Tachycardia",
}


class BeatLike(Protocol):
    """What is read of a beat (:class:`inference.pipeline.Beat` fits)."""

    sample_index: int
    symbol: str
    probabilities: tuple[float, ...]


@dataclass(frozen=True)
class RhythmExplanation:
    """Per-beat evidence and RR figures behind one rhythm episode.

    Attributes
    ----------
    kind
        Episode kind (``af``, ``vt`` …).
    onset_s, offset_s
        The explained window (seconds from the record's or stream's sample 0).
    summary
        The clinical sentence.
    driving_class
        The beat class whose probabilities drive the call (None for RR-driven kinds).
    beats
        One dict per beat in the window: ``sample_index``, ``time_s``,
        ``symbol``, ``probabilities``, ``driving_probability``, ``rr_ms``
        (interval before it), ``contribution`` (share, summing to 1 over the
        window), ``p_wave`` (True/False, None when not checked).
    rr
        RR figures of the window (see module docstring).
    class_counts
        Beats per class in the window.
    """

    kind: str
    onset_s: float
    offset_s: float
    summary: str
    driving_class: str | None
    beats: tuple[dict[str, Any], ...]
    rr: dict[str, float | int | None]
    class_counts: dict[str, int]
    latency_ms: float
    model_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return json_ready(
            {
                "schema": "vigil-explanation/1",
                "kind": "rhythm",
                "episode_kind": self.kind,
                "onset_s": self.onset_s,
                "offset_s": self.offset_s,
                "summary": self.summary,
                "driving_class": self.driving_class,
                "beats": list(self.beats),
                "rr": self.rr,
                "class_counts": self.class_counts,
                "latency_ms": self.latency_ms,
                "model_version": self.model_version,
            }
        )

    def to_json(self, indent: int | None = None) -> str:
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)


def rr_figures(rr_s: np.ndarray) -> dict[str, float | int | None]:
    """Mean RR, rate, SDNN, RMSSD, pNN50, irregular share and nRMSSD of RR intervals (s)."""
    rr = np.asarray(rr_s, dtype=np.float64)
    out: dict[str, float | int | None] = {"n_intervals": len(rr)}
    if len(rr) == 0:
        return {**out, "mean_rr_ms": None, "rate_bpm": None, "sdnn_ms": None,
                "rmssd_ms": None, "pnn50": None, "irregular_share": None, "nrmssd": None}  # fmt: skip
    mean = float(rr.mean())
    d = np.diff(rr)
    rmssd = float(np.sqrt(np.mean(d * d))) if len(d) else None
    return {
        **out,
        "mean_rr_ms": 1000.0 * mean,
        "rate_bpm": 60.0 / mean,
        "sdnn_ms": 1000.0 * float(rr.std(ddof=1)) if len(rr) > 1 else None,
        "rmssd_ms": None if rmssd is None else 1000.0 * rmssd,
        "pnn50": float(np.mean(np.abs(d) > PNN50_MS / 1000.0)) if len(d) else None,
        "irregular_share": float(np.mean(np.abs(d) > IRREGULAR_FRACTION * mean))
        if len(d)
        else None,
        "nrmssd": None if rmssd is None else rmssd / mean,
    }


def explain_rhythm(
    kind: str,
    onset_sample: int,
    offset_sample: int | None,
    beats: Sequence[BeatLike],
    fs_hz: float,
    *,
    leads: np.ndarray | None = None,
    sample_offset: int = 0,
    model_version: str = "",
) -> RhythmExplanation:
    """Explain one rhythm episode from the classified beats around it.

    Parameters
    ----------
    kind
        Episode kind, as :data:`inference.rhythm.KINDS`.
    onset_sample, offset_sample
        The episode (absolute samples); ``offset_sample`` None while it lasts.
    beats
        Classified beats covering the episode (and, for the first beat's RR,
        the one before it).
    fs_hz
        Sampling rate of the sample indices.
    leads
        Optional ``(n_leads, n)`` ECG (mV) starting at ``sample_offset``: adds a
        P-wave check per beat.
    model_version
        Version of the beat model that classified the beats.

    Returns
    -------
    RhythmExplanation
    """
    started = time.perf_counter()
    ordered = sorted(beats, key=lambda b: b.sample_index)
    samples = np.array([b.sample_index for b in ordered], dtype=np.int64)
    end = samples[-1] if offset_sample is None and len(samples) else offset_sample
    end = min(
        int(end if end is not None else onset_sample), onset_sample + int(MAX_WINDOW_S * fs_hz)
    )
    inside = np.flatnonzero((samples >= onset_sample) & (samples <= end))
    driving = DRIVING_CLASS.get(kind)
    rows: list[dict[str, Any]] = []
    for k in inside:
        b = ordered[k]
        rr_ms = 1000.0 * (samples[k] - samples[k - 1]) / fs_hz if k > 0 else None
        probs = dict(zip(CLASSES, (float(p) for p in b.probabilities), strict=False))
        rows.append({
            "sample_index": int(samples[k]),
            "time_s": samples[k] / fs_hz,
            "symbol": b.symbol,
            "probabilities": probs,
            "driving_probability": probs.get(driving) if driving else None,
            "rr_ms": rr_ms,
            "contribution": 0.0,
            "p_wave": None,
        })  # fmt: skip
    symbols = [r["symbol"] for r in rows]
    # Intervals inside the window (the first beat's own pre-RR lies before the episode).
    rr_all = np.array([r["rr_ms"] for r in rows[1:] if r["rr_ms"] is not None]) / 1000.0
    # The rhythm's own RR series: intervals between consecutive non-ectopic beats only.
    steady = [
        i for i in range(1, len(rows))
        if symbols[i] not in ECTOPIC and symbols[i - 1] not in ECTOPIC
        and rows[i]["rr_ms"] is not None and rows[i]["rr_ms"] <= 1000.0 * MAX_RR_S
    ]  # fmt: skip
    rr_steady = np.array([rows[i]["rr_ms"] for i in steady]) / 1000.0
    figures = rr_figures(rr_steady if kind in IRREGULAR_KINDS else rr_all)
    if kind in IRREGULAR_KINDS:
        # Each beat's share of the summed |successive RR difference|.
        diffs = np.abs(np.diff(rr_steady)) if len(rr_steady) > 1 else np.zeros(0)
        if diffs.sum() > 0:
            for i, d in zip(steady[1:], diffs, strict=True):
                rows[i]["contribution"] = float(d / diffs.sum())
    elif driving and rows:
        p = np.array([r["driving_probability"] for r in rows])
        if p.sum() > 0:
            for r, share in zip(rows, p / p.sum(), strict=True):
                r["contribution"] = float(share)
    if leads is not None and kind in IRREGULAR_KINDS:
        _check_p_waves(rows, np.atleast_2d(leads), fs_hz, sample_offset)
    counts = {c: symbols.count(c) for c in CLASSES}
    gap = float(np.max(rr_all)) if len(rr_all) else None
    figures["longest_rr_ms"] = None if gap is None else 1000.0 * gap
    summary = _sentence(kind, driving, rows, figures, counts)
    return RhythmExplanation(
        kind=kind,
        onset_s=onset_sample / fs_hz,
        offset_s=end / fs_hz,
        summary=summary,
        driving_class=driving,
        beats=tuple(rows),
        rr=figures,
        class_counts=counts,
        latency_ms=round(1000.0 * (time.perf_counter() - started), 3),
        model_version=model_version,
    )


def explain_episode(
    episode: Any, beats: Sequence[BeatLike], fs_hz: float, **kwargs: Any
) -> RhythmExplanation:
    """:func:`explain_rhythm` for an :class:`inference.rhythm.Episode`-like object."""
    return explain_rhythm(
        episode.kind, episode.onset_sample, episode.offset_sample, beats, fs_hz, **kwargs
    )


def _check_p_waves(
    rows: list[dict[str, Any]], leads: np.ndarray, fs_hz: float, offset: int
) -> None:
    from explain.segments import delineate

    before, after = round(0.625 * fs_hz), round(0.445 * fs_hz)
    for i, r in enumerate(rows):
        c = r["sample_index"] - offset
        if c - before < 0 or c + after >= leads.shape[1]:
            continue
        pre = r["rr_ms"] / 1000.0 if r["rr_ms"] else None
        post = rows[i + 1]["rr_ms"] / 1000.0 if i + 1 < len(rows) and rows[i + 1]["rr_ms"] else None
        d = delineate(
            leads[:2, c - before : c + after + 1], fs_hz, before, pre_rr_s=pre, post_rr_s=post
        )
        r["p_wave"] = d.p_present


def _sentence(
    kind: str,
    driving: str | None,
    rows: list[dict[str, Any]],
    rr: dict[str, float | int | None],
    counts: dict[str, int],
) -> str:
    name = _NAMES.get(kind, kind)
    n = len(rows)
    rate = rr.get("rate_bpm")
    rate_txt = f" at {rate:.0f} bpm" if rate else ""
    if n == 0:
        return f"{name}: no classified beats in the episode window."
    if driving:
        p = [r["driving_probability"] for r in rows]
        weakest = int(np.argmin(p))
        n_driving = counts.get(driving, 0)
        return (
            f"{name}: {n_driving} of {n} beats called {driving}{rate_txt} "
            f"(mean {driving} probability {np.mean(p):.2f}; least certain {p[weakest]:.2f} "
            f"at {rows[weakest]['time_s']:.1f} s)."
        )
    if kind in IRREGULAR_KINDS:
        parts = []
        if rr.get("rmssd_ms") is not None:
            parts.append(f"RMSSD {rr['rmssd_ms']:.0f} ms")
        if rr.get("pnn50") is not None:
            parts.append(f"{100 * rr['pnn50']:.0f} % of successive RR differences > 50 ms")
        if rr.get("irregular_share") is not None:
            parts.append(f"{100 * rr['irregular_share']:.0f} % > 10 % of the mean RR")
        checked = [r["p_wave"] for r in rows if r["p_wave"] is not None]
        p_txt = f", no P wave in {checked.count(False)} of {len(checked)} beats" if checked else ""
        irregular = (rr.get("irregular_share") or 0.0) >= 0.5
        word = "irregularly irregular RR" if irregular else "RR irregularity"
        figures = f" ({', '.join(parts)})" if parts else ""
        return f"{name}: {word}{figures}{p_txt}{rate_txt}, over {rr['n_intervals']} intervals between non-ectopic beats."
    longest = rr.get("longest_rr_ms")
    gap = f", longest RR {longest / 1000.0:.1f} s" if longest else ""
    return f"{name}: {n} beats{rate_txt}{gap}."
