"""`vigil explain RECORD --at SECONDS`: explain the beat nearest to a time of a recording.

The beat is found and classified by the same pipeline as `vigil analyze`
(:func:`inference.pipeline.analyze_leads`), run from ``--context-s`` seconds
before it (default 300 s, enough for the RR history the model reads), so the
explained inputs are those the pipeline classified; the JSON records the
pipeline's probabilities beside the explainer's as a check.

Writes the explanation as JSON (``vigil-explanation/1``, see
:class:`explain.Explanation`) and optionally a PNG a clinician can read in a
few seconds: the verdict and confidence, the sentence, the beat drawn over the
patient's usual beat with red (supporting) / blue (opposing) evidence between
them, the delineated waves, the segment shares and, in the footer, the
faithfulness figures and the model version.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from explain import SEGMENT_NAMES

if TYPE_CHECKING:
    from explain import Explanation

logger = logging.getLogger(__name__)

DEFAULT_CONTEXT_S: Final = 300.0
AFTER_S: Final = 5.0  # signal after the beat: its next peak and the detector's latency
MAX_DISTANCE_S: Final = 1.0
CLASS_NAMES: Final = {
    "N": "Normal beat",
    "S": "Supraventricular ectopic beat",
    "V": "Ventricular ectopic beat",
    "F": "Fusion beat",
    "Q": "Unclassifiable beat",
}
CLASS_COLOURS: Final = {
    "N": "#1b7837",
    "S": "#e08214",
    "V": "#b2182b",
    "F": "#762a83",
    "Q": "#4d4d4d",
}
SEGMENT_LABELS: Final = {"previous": "prev. beat", "other": "other", "RR": "RR timing"}
BASELINE_WORDS: Final = {
    "template": "running template",
    "recent_normal": "median of recent N beats",
    "template_not_normal": "running template, not called N",
}
FOOTER_WIDTH: Final = 165
SUPPORT_RGB: Final = (0.80, 0.10, 0.10)
OPPOSE_RGB: Final = (0.10, 0.30, 0.85)
SEGMENT_SHADES: Final = {  # light, opaque: drawn under the traces
    "previous": "#f0f0f0",
    "P": "#d3edd0",
    "PR": "#f2f9e7",
    "QRS": "#fee3bf",
    "ST": "#eef4fb",
    "T": "#e6dbed",
}
#: Overlapping spans: later names win (the delineation's own priority).
SHADE_ORDER: Final = ("previous", "T", "ST", "PR", "P", "QRS")
MIN_LABEL_MS: Final = 15.0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vigil explain", description="Explain the beat nearest to a time of a recording."
    )
    p.add_argument("record", type=Path, help="WFDB record path without extension, or BIDMC CSV")
    p.add_argument("--at", type=float, required=True, metavar="SECONDS", help="time of the beat")
    p.add_argument("--lead", type=int, default=0, help="ECG lead for QRS detection (0 primary)")
    p.add_argument("--json", type=Path, required=True, metavar="OUT", help="explanation JSON")
    p.add_argument("--png", type=Path, metavar="OUT", help="also draw the explanation")
    p.add_argument("--method", choices=("ig", "deeplift", "occlusion"), default="ig")
    p.add_argument("--target", choices=("N", "S", "V", "F", "Q"), help="class to explain")
    p.add_argument("--model", type=Path, help="beat model (default: the shipped one)")
    p.add_argument("--context-s", type=float, default=DEFAULT_CONTEXT_S, help="history used")
    p.add_argument("--no-faithfulness", action="store_true", help="skip the faithfulness checks")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``vigil explain``; returns the exit status (0 ok, 2 bad input)."""
    import torch

    from devices.recording import RecordingError, load_recording
    from explain.attribute import BeatRequest, Explainer
    from inference.beats import BeatClassifier
    from inference.model_io import ModelFileError
    from inference.pipeline import analyze_leads, default_model_path

    args = build_parser().parse_args(argv)
    torch.set_num_threads(1)
    try:
        rec = load_recording(args.record)
    except RecordingError as exc:
        logger.error("cannot read the recording: %s", exc)
        return 2
    ecg = [rec.streams[name] for name in ("ecg", "ecg2") if name in rec.streams]
    if not 0 <= args.lead < len(ecg):
        logger.error("%s: lead %d not present (%d ECG lead(s))", args.record, args.lead, len(ecg))
        return 2
    ordered = [ecg[args.lead], *[s for i, s in enumerate(ecg) if i != args.lead]]
    fs = ordered[0].fs_hz
    n = min(len(s.samples) for s in ordered)
    at = round(args.at * fs)
    if not 0 <= at < n:
        logger.error("--at %.3f s is outside the record (0-%.1f s)", args.at, n / fs)
        return 2
    model_path = args.model or default_model_path()
    try:
        pipeline_model = BeatClassifier.from_file(model_path)  # stands for the inference thread's
        explainer = Explainer(model_path)  # the explain thread's own instance
    except (ModelFileError, OSError) as exc:
        logger.error("cannot load the beat model: %s", exc)
        return 2
    start = max(0, at - round(args.context_s * fs))
    stop = min(n, at + round(AFTER_S * fs))
    leads = np.vstack([s.samples[start:stop] for s in ordered])
    beats = analyze_leads(leads, fs, pipeline_model)
    if not beats:
        logger.error("no beats detected between %.1f and %.1f s", start / fs, stop / fs)
        return 2
    peaks = np.array([b.sample_index for b in beats], dtype=np.int64) + start
    i = int(np.argmin(np.abs(peaks - at)))
    if abs(peaks[i] - at) > MAX_DISTANCE_S * fs:
        logger.error("no beat within %.1f s of %.3f s", MAX_DISTANCE_S, args.at)
        return 2
    request = BeatRequest(
        leads, fs, peaks, i, sample_offset=start,
        lead_labels=tuple(s.label for s in ordered), method=args.method, target=args.target,
        faithfulness=not args.no_faithfulness, context_beats=None,
        called_probabilities=beats[i].probabilities,
    )  # fmt: skip
    exp = explainer.explain(request)
    # The network alone on both sides: the memory's refinement is not the explainer's to redo.
    pipeline_probs = np.asarray(beats[i].model_probabilities or beats[i].probabilities)
    ours = np.array(list(exp.probabilities.values()))
    data = exp.to_dict()
    data["record"] = {
        "path": str(args.record),
        "name": rec.name,
        "fs_hz": fs,
        "at_s": args.at,
        "beat_time_s": float(peaks[i] / fs),
        "context_start_s": start / fs,
        "pipeline_symbol": beats[i].symbol,
        "pipeline_probabilities": dict(zip(exp.probabilities, beats[i].probabilities, strict=True)),
        "pipeline_model_probabilities": dict(zip(exp.probabilities, pipeline_probs, strict=True)),
        "pipeline_probability_gap": float(np.max(np.abs(pipeline_probs - ours))),
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1, allow_nan=False))
    if args.png:
        args.png.parent.mkdir(parents=True, exist_ok=True)
        render_png(exp, args.png, title_note=f"{rec.name}  t = {peaks[i] / fs:.2f} s")
    sys.stdout.write(exp.summary + "\n")
    logger.info("explanation of the beat at %.3f s written to %s", peaks[i] / fs, args.json)
    return 0


def render_png(exp: Explanation, path: Path, *, title_note: str = "", dpi: int = 110) -> None:
    """Draw one beat's explanation for the chart (matplotlib, Agg; no Qt)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11.0, 6.6), dpi=dpi)
    FigureCanvasAgg(fig)
    shown = [k for k in range(len(exp.waveform_mv)) if np.isfinite(exp.waveform_mv[k]).any()]
    grid = fig.add_gridspec(
        len(shown), 2, width_ratios=(3.2, 1.0), left=0.075, right=0.97, top=0.74, bottom=0.17,
        wspace=0.22, hspace=0.12,
    )  # fmt: skip
    p = exp.called_probabilities[exp.called]
    colour = CLASS_COLOURS.get(exp.called, "black")
    fig.text(0.06, 0.94, f"{CLASS_NAMES.get(exp.called, exp.called)} ({exp.called})",
             fontsize=22, fontweight="bold", color=colour, va="center")  # fmt: skip
    fig.text(0.97, 0.94, f"{p:.0%} confidence", fontsize=22, fontweight="bold", color=colour,
             ha="right", va="center")  # fmt: skip
    sentence = exp.summary.split(": ", 1)[-1]
    sentence = sentence[:1].upper() + sentence[1:]
    if exp.called != exp.predicted:  # the patient's look-alike beats decided: say so first
        alone = exp.probabilities[exp.predicted]
        sentence = (
            f"Called {exp.called} as this patient's similar earlier beats were; this beat "
            f"alone scores {exp.predicted} {alone:.0%}. {sentence}"
        )
    fig.text(0.06, 0.855, textwrap.fill(sentence, 120), fontsize=11.5,
             va="center", linespacing=1.3)  # fmt: skip
    runs = _segment_runs(exp.segment_bounds_s, 1000.0 * exp.time_s)
    scale = max(float(np.nanmax(np.abs(exp.attribution))) if exp.attribution.size else 0.0, 1e-12)
    t_ms = 1000.0 * exp.time_s
    first_ax = None
    for row, lead in enumerate(shown):
        ax = fig.add_subplot(grid[row, 0], sharex=first_ax)
        first_ax = first_ax or ax
        for name, lo_ms, hi_ms in runs:
            ax.axvspan(lo_ms, hi_ms, color=SEGMENT_SHADES[name], lw=0, zorder=0)
            if row == 0 and hi_ms - lo_ms >= MIN_LABEL_MS:
                ax.text((lo_ms + hi_ms) / 2, 1.02, SEGMENT_LABELS.get(name, name),
                        transform=ax.get_xaxis_transform(), ha="center", va="bottom",
                        fontsize=10, fontweight="bold")  # fmt: skip
        beat, usual, a = exp.waveform_mv[lead], exp.baseline_mv[lead], exp.attribution[lead]
        # Evidence fills the gap between the beat and the usual beat: red supports, blue opposes.
        rgba = np.zeros((len(a), 4))
        rgba[:, :3] = np.where(a[:, None] >= 0, SUPPORT_RGB, OPPOSE_RGB)
        rgba[:, 3] = np.clip(np.abs(a) / scale, 0.0, 1.0) * 0.9
        lo = np.where(np.isfinite(usual), np.minimum(beat, usual), beat)
        hi = np.where(np.isfinite(usual), np.maximum(beat, usual), beat)
        height = np.maximum(hi - lo, 0.02 * np.nanmax(np.abs(beat)))
        ax.bar(t_ms, height, bottom=lo - (height - (hi - lo)) / 2, width=1000.0 / exp.fs_hz,
               color=rgba, linewidth=0)  # fmt: skip
        ax.plot(t_ms, usual, color="0.45", lw=1.4, ls="--", label="patient's usual beat")
        ax.plot(t_ms, beat, color="black", lw=1.6, label="this beat")
        labels = exp.beat.get("lead_labels") or []
        ax.set_ylabel(f"{labels[lead] if lead < len(labels) else f'lead {lead + 1}'} (mV)")
        ax.grid(alpha=0.25)
        if row == 0:
            ax.legend(loc="upper left", fontsize=9, framealpha=0.8)
        if row < len(shown) - 1:
            ax.tick_params(labelbottom=False)
    if first_ax is not None:
        first_ax.set_xlim(t_ms[0], t_ms[-1])
        fig.axes[-1].set_xlabel("ms from R peak")
    bars = fig.add_subplot(grid[:, 1])
    names = list(SEGMENT_NAMES)
    shares = [100.0 * exp.segments.get(n, 0.0) for n in names]
    signs = [exp.segments_signed.get(n, 0.0) for n in names]
    bars.barh(
        [SEGMENT_LABELS.get(n, n) for n in names],
        shares,
        color=[SUPPORT_RGB if s >= 0 else OPPOSE_RGB for s in signs],
        alpha=0.85,
    )
    for y, v in enumerate(shares):
        bars.text(v + 1.5, y, f"{v:.0f} %", va="center", fontsize=10)
    bars.invert_yaxis()
    bars.set_xlim(0, 118)
    bars.set_title("Share of the evidence", fontsize=11)
    bars.set_xlabel("% (red for, blue against)", fontsize=9)
    bars.spines[["top", "right"]].set_visible(False)
    fig.text(0.06, 0.012, _footer(exp, title_note), fontsize=8.5, color="0.25", va="bottom")
    fig.savefig(path, dpi=dpi)


def _segment_runs(
    bounds: dict[str, tuple[float, float] | None], t_ms: np.ndarray
) -> list[tuple[str, float, float]]:
    """Contiguous ``(segment, start_ms, end_ms)`` runs over the time axis, overlaps resolved."""
    labels = np.full(len(t_ms), "", dtype=object)
    for name in SHADE_ORDER:
        span = bounds.get(name)
        if span is not None:
            labels[(t_ms >= 1000 * span[0]) & (t_ms < 1000 * span[1])] = name
    runs, start = [], 0
    half = (t_ms[1] - t_ms[0]) / 2 if len(t_ms) > 1 else 0.0
    for k in range(1, len(t_ms) + 1):
        if k == len(t_ms) or labels[k] != labels[start]:
            if labels[start]:
                runs.append((str(labels[start]), t_ms[start] - half, t_ms[k - 1] + half))
            start = k
    return runs


def _footer(exp: Explanation, note: str) -> str:
    f = exp.faithfulness
    if f is None:
        faith = "faithfulness not computed"
    else:
        faith = (
            f"Faithfulness: deletion AUC {f.deletion_auc:.2f} vs random {f.random_deletion_auc:.2f} "
            f"({f.deletion_ratio:.2f}×, lower is better), infidelity {f.infidelity:.2g}, "
            f"randomised-model rank corr. {f.randomisation_rank_correlation:.2f}"
            + ("" if f.informative else " — little to explain, figures uninformative")
        )
    method = {"ig": "Integrated Gradients", "deeplift": "DeepLift", "occlusion": "Occlusion"}
    second = (
        f"{method.get(exp.method, exp.method)} against the patient's usual beat "
        f"({BASELINE_WORDS.get(exp.baseline.get('kind', ''), exp.baseline.get('kind'))}), "
        f"computed in {exp.latency_ms:.0f} ms "
        f"(CPU {exp.latency_breakdown_ms.get('total_cpu_ms', float('nan')):.0f} ms)"
        f"  ·  model {exp.model_version}" + (f"  ·  {note}" if note else "")
    )
    return textwrap.fill(faith, FOOTER_WIDTH) + "\n" + textwrap.fill(second, FOOTER_WIDTH)
