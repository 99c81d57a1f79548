"""Explanation benchmark: compute latency per beat and deletion faithfulness; prints JSON.

For each record the beat pipeline (:func:`inference.pipeline.analyze_leads`)
runs over the whole record; detected beats are matched to the reference
annotations (150 ms, EC57) and the beats both the reference and the model
call V (or S) are explained, a few per record spread over time. Everything
runs on one torch thread.

* ``latency``: compute per beat (thread CPU time and wall time, p50/p95) of the
  attribution alone per method (IG at 32 and 50 steps, DeepLift, Occlusion
  with ``perturbations_per_eval``) and of the full explanation (attribution,
  delineation, sentence and all faithfulness checks) as the explain thread
  runs it.
* ``faithfulness``: per class (V, S) and method, mean deletion AUC against
  random deletion orders, their ratio (target ≤ 0.6, aim ≤ 0.5), infidelity
  and randomised-model rank correlation.

Whether each record was in the model's training data is read from the
model's metadata (``training_records``) and reported: figures on training
records flatter the model, not necessarily the explanation.

    python bench/explain.py --model resources/models/beatcnn.safetensors \\
        --records 119 208 209 201 --per-class 12 > explain-bench.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
MATCH_WINDOW_S = 0.15
SKIP_START_S = 300.0  # EC57 learning period; also enough RR history before every beat
METHODS = (("ig", 32), ("ig", 50), ("deeplift", 0), ("occlusion", 0))


def _percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values, dtype=np.float64)
    return {"p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "max": round(float(a.max()), 2), "n": len(a)}  # fmt: skip


def _reference(path: Path, fs: float) -> tuple[np.ndarray, np.ndarray]:
    import wfdb

    from inference.beats import AAMI_CLASS_OF_SYMBOL

    ann = wfdb.rdann(str(path), "atr")
    keep = [i for i, s in enumerate(ann.symbol) if s in AAMI_CLASS_OF_SYMBOL]
    return np.asarray(ann.sample)[keep], np.array(
        [AAMI_CLASS_OF_SYMBOL[ann.symbol[i]] for i in keep]
    )


def _chosen_beats(path: Path, clf, per_class: int, classes: tuple[str, ...]):
    from devices.recording import load_recording
    from inference.pipeline import analyze_leads

    rec = load_recording(path)
    ecg = [rec.streams[n] for n in ("ecg", "ecg2") if n in rec.streams]
    fs = ecg[0].fs_hz
    n = min(len(s.samples) for s in ecg)
    leads = np.vstack([s.samples[:n] for s in ecg])
    beats = analyze_leads(leads, fs, clf)
    peaks = np.array([b.sample_index for b in beats], dtype=np.int64)
    ref_samples, ref_classes = _reference(path, fs)
    chosen: dict[str, list[int]] = {}
    for cls in classes:
        hits = []
        for i, b in enumerate(beats):
            if b.symbol != cls or peaks[i] < SKIP_START_S * fs:
                continue
            j = int(np.searchsorted(ref_samples, peaks[i]))
            near = [k for k in (j - 1, j) if 0 <= k < len(ref_samples)]
            k = min(near, key=lambda k: abs(ref_samples[k] - peaks[i]), default=None)
            if (
                k is not None
                and abs(ref_samples[k] - peaks[i]) <= MATCH_WINDOW_S * fs
                and ref_classes[k] == cls
            ):
                hits.append(i)
        step = max(1, len(hits) // per_class) if hits else 1
        chosen[cls] = hits[::step][:per_class]
    return leads, fs, peaks, chosen, [s.label for s in ecg]


def _request(leads, fs, peaks, i, labels, method, faithfulness):
    from explain.attribute import BeatRequest

    # What the live explain thread gets: the last few minutes of the bed's buffer.
    lo = max(0, int(peaks[i] - SKIP_START_S * fs))
    hi = min(leads.shape[1], int(peaks[i] + 5 * fs))
    sel = (peaks >= lo + 0.7 * fs) & (peaks < hi - 0.5 * fs)
    sub = peaks[sel]
    return BeatRequest(
        leads[:, lo:hi], fs, sub, int(np.searchsorted(sub, peaks[i])), sample_offset=lo,
        lead_labels=tuple(labels), method=method, faithfulness=faithfulness,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "resources/models/beatcnn.safetensors")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/mitdb")
    p.add_argument("--records", nargs="+", default=["119", "208", "209", "201", "106", "223"])
    p.add_argument("--per-class", type=int, default=10, help="beats per class per record")
    p.add_argument("--latency-beats", type=int, default=40, help="beats timed per method")
    p.add_argument("--methods", nargs="+", default=["ig", "deeplift", "occlusion"])
    p.add_argument("--output", choices=("logit", "probability"), default="logit",
                   help="explained model output")  # fmt: skip
    args = p.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from explain.attribute import Explainer
    from explain.context import beat_context, template_baseline
    from explain.methods import attribute
    from inference.beats import CLASSES, BeatClassifier

    clf = BeatClassifier.from_file(args.model)
    explainer = Explainer(args.model, output=args.output)
    training = set(json.loads(clf.metadata.get("training_records", "[]")))
    out: dict[str, object] = {
        "model": str(args.model), "model_version": clf.version, "output": args.output, "torch_threads": 1,
        "cpu": os.cpu_count(), "records": {}, "command": "python bench/explain.py " + " ".join(argv or sys.argv[1:]),
    }  # fmt: skip
    per: dict[tuple[str, str], list[dict[str, float]]] = {}
    latency_inputs = []
    for name in args.records:
        path = args.data / name
        leads, fs, peaks, chosen, labels = _chosen_beats(path, clf, args.per_class, ("V", "S"))
        in_training = f"{path.parent.name}/{name}" in training
        out["records"][name] = {  # type: ignore[index]
            "in_training_data": in_training if training else None,
            "explained": {c: len(v) for c, v in chosen.items()},
        }
        for cls, idx in chosen.items():
            for i in idx:
                latency_inputs.append((leads, fs, peaks, i, labels))
                for method in args.methods:
                    exp = explainer.explain(_request(leads, fs, peaks, i, labels, method, True))
                    f = exp.faithfulness
                    if exp.predicted != cls or f is None or not f.informative:
                        continue
                    per.setdefault((cls, method), []).append({
                        "deletion_auc": f.deletion_auc, "random_auc": f.random_deletion_auc,
                        "infidelity": f.infidelity, "rho": f.randomisation_rank_correlation,
                        "shares": dict(exp.segments), "in_training": in_training,
                        "total_cpu_ms": exp.latency_breakdown_ms["total_cpu_ms"], "total_ms": exp.latency_ms,
                    })  # fmt: skip
    faith: dict[str, object] = {}
    for (cls, method), rows in sorted(per.items()):
        d = np.array([r["deletion_auc"] for r in rows])
        r_ = np.array([r["random_auc"] for r in rows])
        faith[f"{cls}/{method}"] = {
            "beats": len(rows),
            "beats_from_training_records": int(sum(r["in_training"] for r in rows)),
            "deletion_auc": round(float(d.mean()), 4),
            "random_deletion_auc": round(float(r_.mean()), 4),
            "ratio_of_means": round(float(d.mean() / r_.mean()), 3),
            "median_ratio": round(float(np.median(d / r_)), 3),
            "share_of_beats_ratio_le_0.6": round(float(np.mean(d / r_ <= 0.6)), 3),
            "infidelity_median": round(float(np.median([r["infidelity"] for r in rows])), 4),
            "randomisation_rank_corr_median": round(float(np.median([r["rho"] for r in rows])), 3),
            "mean_share": {k: round(float(np.mean([r["shares"][k] for r in rows])), 3) for k in rows[0]["shares"]},
            "full_explanation_cpu_ms": _percentiles([r["total_cpu_ms"] for r in rows]),
        }  # fmt: skip
    out["faithfulness"] = faith

    # Latency: attribution alone per method and setting, then the full explanation.
    timed = latency_inputs[: args.latency_beats]
    lat: dict[str, object] = {}
    for method, steps in METHODS:
        cpu, wall = [], []
        for leads, fs, peaks, i, labels in timed:
            req = _request(leads, fs, peaks, i, labels, method, False)
            ctx = beat_context(req.leads, fs, req.r_peaks, req.beat_index, req.sample_offset)
            bw, bs = template_baseline(ctx)
            target = CLASSES.index("V")
            c0, w0 = time.thread_time(), time.perf_counter()
            attribute(
                explainer._module,
                ctx.waves,
                ctx.scalars,
                bw,
                bs,
                target,
                method=method,
                n_steps=steps or 32,
            )
            cpu.append(1000 * (time.thread_time() - c0))
            wall.append(1000 * (time.perf_counter() - w0))
        key = f"{method}{steps}" if steps else method
        lat[f"attribution_only/{key}"] = {
            "cpu_ms": _percentiles(cpu),
            "wall_ms": _percentiles(wall),
        }
    for method in args.methods:
        cpu, wall = [], []
        for leads, fs, peaks, i, labels in timed:
            exp = explainer.explain(_request(leads, fs, peaks, i, labels, method, True))
            cpu.append(exp.latency_breakdown_ms["total_cpu_ms"])
            wall.append(exp.latency_ms)
        lat[f"full_explanation/{method}"] = {"cpu_ms": _percentiles(cpu), "wall_ms": _percentiles(wall),
                                             "last_breakdown_ms": exp.latency_breakdown_ms}  # fmt: skip
    out["latency"] = lat
    json.dump(out, sys.stdout, indent=1)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
