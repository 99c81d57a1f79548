"""Scores and the model card of a beat-classifier training run.

EC57 beat-class figures from a confusion matrix, and the Markdown card that
ships beside the weights. NumPy only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from inference import features as ft
from inference.beat_memory import MEMORY_BEATS, MODEL_WEIGHT, NEIGHBOUR_BEATS
from inference.beats import (
    CLASSES,
    FIRST_MEMBER_SURE,
    FIRST_MEMBER_SURE_NORMAL,
    MODEL_VERSION,
    S_OVER_N_WEIGHT,
)

if TYPE_CHECKING:
    from inference.train import TrainConfig
    from inference.train_data import Record


def confusion(labels: np.ndarray, predicted: np.ndarray) -> np.ndarray:
    """5×5 counts, rows = reference class, columns = assigned class (CLASSES order)."""
    m = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    np.add.at(m, (labels, predicted), 1)
    return m


def _pct(num: float, den: float) -> float | None:
    return round(100.0 * num / den, 2) if den else None


def aami_scores(m: np.ndarray) -> dict[str, float | None]:
    """EC57 VEB/SVEB figures from a confusion matrix (rows reference, columns test).

    VEB false positives are N and S beats called V (F and Q beats called V do
    not count); SVEB false positives are N, V and F beats called S (Q beats do
    not count), as in EC57 and ``bxb``.
    """
    n, s, v, f, _q = range(5)
    tp_v = m[v, v]
    fp_v = m[n, v] + m[s, v]
    tn_v = m[n].sum() + m[s].sum() - fp_v
    tp_s = m[s, s]
    fp_s = m[n, s] + m[v, s] + m[f, s]
    out: dict[str, float | None] = {
        "VEB_Se": _pct(tp_v, m[v].sum()),
        "VEB_PP": _pct(tp_v, tp_v + fp_v),
        "VEB_FPR": _pct(fp_v, fp_v + tn_v),
        "SVEB_Se": _pct(tp_s, m[s].sum()),
        "SVEB_PP": _pct(tp_s, tp_s + fp_s),
        "accuracy": _pct(np.trace(m), m.sum()),
    }
    for i, c in enumerate(CLASSES):
        out[f"{c}_Se"] = _pct(m[i, i], m[i].sum())
        out[f"{c}_PP"] = _pct(m[i, i], m[:, i].sum())
    return out


def _fmt(x: float | None) -> str:
    return "–" if x is None else f"{x:.1f}"


def _confusion_table(m: Sequence[Sequence[int]]) -> str:
    head = "| reference \\ assigned | " + " | ".join(CLASSES) + " |\n"
    head += "|---" * (len(CLASSES) + 1) + "|\n"
    rows = [
        f"| {c} | " + " | ".join(str(v) for v in row) + " |"
        for c, row in zip(CLASSES, m, strict=True)
    ]
    return head + "\n".join(rows) + "\n"


def _error_sources(records: dict[str, dict], top: int = 3) -> str:
    """The records contributing most of each kind of VEB/SVEB error, in words."""
    n, s, v, f = range(4)
    kinds = {
        "missed S": lambda m: m[s].sum() - m[s, s],
        "beats wrongly called S": lambda m: m[n, s] + m[v, s] + m[f, s],
        "missed V": lambda m: m[v].sum() - m[v, v],
        "beats wrongly called V": lambda m: m[n, v] + m[s, v],
    }
    parts = []
    for label, count in kinds.items():
        ranked = sorted(
            ((int(count(np.array(r["confusion"]))), name) for name, r in records.items()),
            reverse=True,
        )
        parts.append(label + " " + ", ".join(f"{name} ({k})" for k, name in ranked[:top] if k))
    return "; ".join(parts) + "."


def _ensemble_lines(cfg: TrainConfig) -> list[str]:
    members = cfg.architecture.members
    if members == 1:
        return []
    seeds = ", ".join(str(cfg.seed + m) for m in range(members))
    return [
        f"The model is {members} networks of the same recipe, trained from seeds {seeds},",
        "whose class probabilities are averaged. Beats the first network finds normal",
        f"with probability {FIRST_MEMBER_SURE_NORMAL:g} or more, or gives any class",
        f"{FIRST_MEMBER_SURE:g} or more, keep its probabilities without asking the others",
        "(this saves most of their time).",
        "",
    ]


def write_model_card(
    path: Path,
    *,
    weights: Path,
    sha256: str,
    records: Sequence[Record],
    cfg: TrainConfig,
    cv: dict | None,
    command: str,
    fit_wall_s: float,
    total_wall_s: float,
    trained_utc: str,
    n_parameters: int,
) -> None:
    """Write the Markdown model card that ships beside the weights."""
    by_db: dict[str, list[Record]] = {}
    for r in records:
        by_db.setdefault(r.database, []).append(r)
    data_rows = []
    for db, recs in sorted(by_db.items()):
        counts = np.bincount(np.concatenate([r.labels for r in recs]), minlength=len(CLASSES))
        data_rows.append(
            f"| {db} | {len(recs)} | {recs[0].fs_hz:g} Hz | "
            + " | ".join(str(int(c)) for c in counts)
            + " |"
        )
    lines = [
        f"# Vigil beat classifier `{weights.name}`",
        "",
        f"- Version stamp: `beatcnn-{MODEL_VERSION}+{sha256[:8]}`; weights sha256 `{sha256}`",
        f"- Trained {trained_utc}; {n_parameters:,} parameters; "
        f"{weights.stat().st_size / 1024:.0f} KiB safetensors.",
        f"- Command: `{command}`",
        f"- Wall time: final fit {fit_wall_s / 60:.1f} min, whole command "
        f"{total_wall_s / 60:.1f} min (each network on one CPU thread; networks in "
        "parallel processes).",
        "",
        "## What it does",
        "",
        "Labels each detected heartbeat with an ANSI/AAMI EC57 class: N (normal, bundle",
        "branch block, escape), S (supraventricular ectopic), V (ventricular ectopic),",
        "F (fusion), Q (paced/unclassifiable). Input: 0.625 s before to 0.445 s after",
        "the R peak of one or two ECG leads, low-passed at 40 Hz and resampled to",
        f"{ft.MODEL_FS_HZ:g} Hz, scaled by the patient's running QRS amplitude; the beat",
        "minus the patient's running template; RR features relative to the patient's",
        "last 32 and 256 RR intervals; lead-presence flags (see `inference/features.py`).",
        "",
        *_ensemble_lines(cfg),
        "At run time (live and `vigil analyze` alike) two steps follow the model:",
        "",
        "- **Patient beat memory** (`inference/beat_memory.py`): the V and F probabilities",
        f"  become {MODEL_WEIGHT:g} × the beat's own plus {1 - MODEL_WEIGHT:g} × a mean over",
        f"  {NEIGHBOUR_BEATS} slots: the patient's earlier beats (of the last {MEMORY_BEATS})",
        "  nearest in QRS shape where they are look-alikes (difference within the",
        "  template's match limit), the beat's own value where not. A patient's",
        "  recurring ectopic shape is called consistently, a lone odd-looking normal",
        "  beat is pulled back to N, and a shape never seen before keeps the network's",
        "  call.",
        "- **Calls** (`inference.beats.beat_calls`): the most probable class, except that",
        f"  S is called over N when {S_OVER_N_WEIGHT:g} × P(S) > P(N).",
        "",
        "## Intended use",
        "",
        "Decision support on a clinician workstation: beat labels feed rhythm and",
        "alarm logic (PVC counts, runs, bigeminy) and are shown to clinicians with",
        "explanations. Not a diagnostic device; not validated for clinical use.",
        "",
        "## Training data",
        "",
        "| database | records | rate | N | S | V | F | Q |",
        "|---|---|---|---|---|---|---|---|",
        *data_rows,
        "",
        "Reference R peaks from the `.atr` annotations, jittered by up to "
        f"±{cfg.peak_jitter_s * 1000:.0f} ms ({cfg.wide_jitter_fraction:.0%} of V and F beats "
        f"±{cfg.wide_jitter_s * 1000:.0f} ms, as a detector may be on wide beats). Augmentation: nstdb noise (bw, em, ma) "
        f"at SNR {cfg.snr_db[0]:g}-{cfg.snr_db[1]:g} dB in 10-60 s stretches "
        f"(p={cfg.noise_probability}), sampling-rate jitter ±{cfg.fs_jitter * 100:g} %, "
        f"lead dropout (second {cfg.drop_second_lead}, first {cfg.drop_first_lead}), "
        f"lead swap {cfg.swap_leads}, polarity inversion {cfg.invert_lead}. "
        f"Class-balanced sampling (share ∝ count^{cfg.sampling_power}), "
        f"{cfg.epochs} epochs × {cfg.beats_per_epoch:,} beats, seed {cfg.seed}.",
        "",
        "Settings: `" + json.dumps(cfg.to_dict(), sort_keys=True) + "`",
        "",
        "Data: MIT-BIH Arrhythmia Database (Moody & Mark 2001), MIT-BIH Supraventricular",
        "Arrhythmia Database (Greenwald et al. 1990), MIT-BIH Noise Stress Test Database",
        "(Moody et al. 1984), via PhysioNet (Goldberger et al. 2000), ODC-By 1.0.",
        "",
    ]
    if cv is None:
        lines += ["## Patient-wise validation", "", "Not run for this file.", ""]
    else:
        s = cv["scores"]
        s5 = cv["scores_from_5min"]
        fold_text = "; ".join(", ".join(f["held_out"]) for f in cv["folds"])
        lines += [
            "## Patient-wise validation (leave records out of DS1)",
            "",
            f"{len(cv['folds'])} folds over MIT-BIH DS1 (de Chazal et al. 2004), split by",
            f"record, never by beat: {fold_text}. Each fold trains on the other DS1",
            "records plus every other training record (svdb), with the same settings,",
            "and classifies the held-out records on their reference R peaks, with the",
            "patient beat memory and the call rule above.",
            f"CV command: `{cv.get('command', '')}` ({cv.get('wall_time_s', 0) / 60:.0f} min).",
            "",
            "| | VEB Se | VEB +P | VEB FPR | SVEB Se | SVEB +P |",
            "|---|---|---|---|---|---|",
            f"| all beats | {_fmt(s['VEB_Se'])} | {_fmt(s['VEB_PP'])} | {_fmt(s['VEB_FPR'])} "
            f"| {_fmt(s['SVEB_Se'])} | {_fmt(s['SVEB_PP'])} |",
            f"| from minute 5 (EC57) | {_fmt(s5['VEB_Se'])} | {_fmt(s5['VEB_PP'])} "
            f"| {_fmt(s5['VEB_FPR'])} | {_fmt(s5['SVEB_Se'])} | {_fmt(s5['SVEB_PP'])} |",
            "",
            "Per class (all beats): "
            + ", ".join(f"{c} Se {_fmt(s[f'{c}_Se'])} / +P {_fmt(s[f'{c}_PP'])}" for c in CLASSES),
            "",
            "Confusion matrix (all held-out beats, pooled over folds):",
            "",
            _confusion_table(cv["confusion"]),
            "Per held-out record:",
            "",
            "| record | beats | VEB Se | VEB +P | SVEB Se | SVEB +P |",
            "|---|---|---|---|---|---|",
        ]
        for name, r in sorted(cv["records"].items()):
            n_beats = int(np.sum(r["confusion"]))
            lines.append(
                f"| {name} | {n_beats} | {_fmt(r['VEB_Se'])} | {_fmt(r['VEB_PP'])} "
                f"| {_fmt(r['SVEB_Se'])} | {_fmt(r['SVEB_PP'])} |"
            )
        lines += ["", "Largest error sources (held-out records): " + _error_sources(cv["records"])]
        lines += [
            "",
            "EC57 definitions: VEB = V class, SVEB = S class; F and Q beats called V",
            "are not VEB false positives; Q beats called S are not SVEB false positives.",
            "Anchors on DS2 (train DS1): de Chazal 2004 VEB 77.7/81.9, SVEB 75.9/38.5;",
            "Zhang et al. 2021 VEB 92.5/94.3, SVEB 78.8/90.8. These CV figures are on",
            "DS1 records and are not directly comparable with DS2 results.",
            "",
        ]
    lines += [
        "## Limits",
        "",
        "- The design (features, settings, the beat memory's and the call rule's",
        "  constants) was chosen by comparing candidates on these same CV folds, so the",
        "  CV figures are somewhat optimistic.",
        "- The call rule trades SVEB +P for Se; the figures above have no rhythm",
        "  context. In use, S calls inside atrial fibrillation or flutter become N",
        "  (`inference.rhythm.beats_in_rhythm`), which removes most false S in AF",
        "  (`python bench/beats_in_af.py`).",
        "- Trained on Holter-type ambulatory recordings of the 1970s-80s (MLII/V1 and",
        "  unnamed svdb leads); chest-strap (Polar H10) and ICU leads differ and are",
        "  untested. Lead 0 should be the limb-like lead (MLII) where there is a choice.",
        "- F and Q are rare in training (F mostly from one patient, record 208; Q a",
        "  few dozen beats); their labels are unreliable. Paced rhythms were never seen.",
        "- Beats are classified on reference R peaks here; detector misses and false",
        "  detections are not part of these figures.",
        "- The first beats of a stream have no template or RR baseline yet and are less",
        "  reliable (the template needs a few matching beats).",
        "",
    ]
    path.write_text("\n".join(lines))
