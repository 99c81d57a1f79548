"""Fit the VF/flutter model of :mod:`inference.rhythm_signal` and write it out.

``python -m inference.rhythm_vf_train --data /work/shared/data`` runs the
streaming :class:`~inference.rhythm_signal.SignalStage` over the records,
labels each once-per-second window by the reference ``[``/``]`` VF episodes
(fully inside: VF; no overlap: not VF; partly: left out), validates the
perceptron record-wise, then fits it on everything allowed and writes
``inference/rhythm_vf_model.py``.

Data use (say it whenever a figure is quoted):

* cudb (24 records) and MIT-BIH DS1 (22 records, VF/flutter only in 207)
  are split record-wise into two halves (alternate records); each half's
  model is scored on the other half -- those are the validation figures.
* The nstdb noise records ``em``, ``ma``, ``bw`` (noise only, no ECG) give
  negative windows from their *first* 15 minutes only.  Their second halves
  are never used for fitting: they are the held-out noise test of
  ``tests/inference/test_rhythm_signal.py``.
* The final model is fitted on all cudb + DS1 records + the first noise
  halves, so figures over all cudb/DS1 records with the final model are
  training-set figures.
* The feature set, the probability threshold (0.95) and the confirmation
  time (2 s) were chosen by comparing the validation figures of a handful
  of settings, so those figures are somewhat optimistic.

torch is imported inside :func:`fit_perceptron` only.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np

from inference.annotations import CUDB_RECORDS, DS1_RECORDS
from inference.rhythm_signal import VF_FEATURES, SignalStage

logger = logging.getLogger(__name__)

CUDB: Final = CUDB_RECORDS
DS1: Final = DS1_RECORDS
NOISE: Final = ("em", "ma", "bw")
HIDDEN: Final = 16
SEED: Final = 0
EPOCHS: Final = 400


@dataclass(frozen=True)
class Windows:
    """Per-second VF features of one record with their reference labels."""

    record: str
    end_samples: np.ndarray  # (n,) window end, absolute sample
    features: np.ndarray  # (n, len(VF_FEATURES))
    vf_share: np.ndarray  # (n,) share of the window inside a reference VF episode
    fs_hz: float
    n_samples: int


def vf_episodes(samples: Sequence[int], symbols: Sequence[str], end: int) -> list[tuple[int, int]]:
    """Reference VF/flutter episodes ``[`` .. ``]`` (one left open runs to ``end``)."""
    out: list[tuple[int, int]] = []
    onset: int | None = None
    for t, sym in zip(samples, symbols, strict=True):
        if sym == "[" and onset is None:
            onset = int(t)
        elif sym == "]" and onset is not None:
            out.append((onset, int(t)))
            onset = None
    if onset is not None:
        out.append((onset, end))
    return out


def load_lead(path: Path) -> tuple[np.ndarray, float, list[tuple[int, int]]]:
    """Primary lead (mV), rate and reference VF episodes of a record (noise records: channel 0)."""
    import wfdb  # noqa: PLC0415 (offline tool)

    from devices.recording import load_recording  # noqa: PLC0415
    from inference.annotations import read_annotations  # noqa: PLC0415

    if path.name in NOISE:
        rec = wfdb.rdrecord(str(path), channels=[0])
        return np.asarray(rec.p_signal[:, 0], dtype=np.float64), float(rec.fs), []
    stream = load_recording(path).streams["ecg"]
    x = np.asarray(stream.samples, dtype=np.float64)
    ann = read_annotations(path)
    return x, float(stream.fs_hz), vf_episodes(ann.samples.tolist(), ann.symbols, len(x))


def record_windows(path: Path, cache: Path | None = None) -> Windows:
    """Run the signal stage over a record and label its windows (``cache``: reuse/keep them)."""
    if cache is not None and (cache / f"{path.name}.npz").exists():
        z = np.load(cache / f"{path.name}.npz")
        return Windows(path.name, z["e"], z["f"], z["s"], float(z["fs"]), int(z["n"]))
    x, fs, episodes = load_lead(path)
    stage = SignalStage(fs)
    ends, feats = [], []
    step = int(60 * fs)
    for start in range(0, len(x), step):
        for sec in stage.push(x[start : start + step]):
            if sec.features:
                ends.append(sec.end_sample)
                feats.append(sec.features)
    e = np.asarray(ends, dtype=np.int64)
    share = np.zeros(len(e))
    for a, b in episodes:
        share += np.clip(np.minimum(e, b) - np.maximum(e - stage.window, a), 0, None) / stage.window
    return Windows(
        path.name,
        e,
        np.asarray(feats, dtype=np.float64).reshape(-1, len(VF_FEATURES)),
        share,
        fs,
        len(x),
    )


def _half(w: Windows, which: int) -> Windows:
    keep = w.end_samples <= w.n_samples // 2 if which == 0 else w.end_samples > w.n_samples // 2
    return Windows(
        w.record, w.end_samples[keep], w.features[keep], w.vf_share[keep], w.fs_hz, w.n_samples
    )


def fit_perceptron(windows: Sequence[Windows], hidden: int = HIDDEN) -> dict:
    """Fit the one-hidden-layer perceptron on clearly labelled windows."""
    import torch  # noqa: PLC0415 (offline tool)

    torch.manual_seed(SEED)
    x = np.vstack([w.features for w in windows])
    share = np.concatenate([w.vf_share for w in windows])
    keep = (share >= 0.99) | (share == 0.0)
    x, y = x[keep], (share[keep] >= 0.99).astype(np.float32)
    mean, scale = x.mean(axis=0), x.std(axis=0) + 1e-9
    xt = torch.tensor((x - mean) / scale, dtype=torch.float32)
    yt = torch.tensor(y)
    net = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
    )
    opt = torch.optim.Adam(net.parameters(), lr=0.01, weight_decay=1e-3)
    pos_weight = torch.tensor(float((y == 0).sum()) / max(float((y == 1).sum()), 1.0))
    for _ in range(EPOCHS):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            net(xt).squeeze(1), yt, pos_weight=pos_weight
        )
        loss.backward()
        opt.step()
    w1, b1 = net[0].weight.detach().numpy(), net[0].bias.detach().numpy()
    w2, b2 = net[2].weight.detach().numpy()[0], net[2].bias.detach().numpy()[0]
    r = lambda a: np.round(np.asarray(a, dtype=np.float64), 6).tolist()  # noqa: E731
    return {
        "mean": r(mean),
        "scale": r(scale),
        "w1": r(w1),
        "b1": r(b1),
        "w2": r(w2),
        "b2": float(round(float(b2), 6)),
    }


def score(model: dict, windows: Sequence[Windows], on: float, confirm_s: float) -> dict:
    """Window and episode figures of a model (VF onset = ``confirm_s`` positive seconds running)."""
    from inference.rhythm_signal import vf_probability  # noqa: PLC0415

    tp = fn = fp_win = tn = 0
    detected, missed, false_alarms = 0, 0, 0
    delays: list[float] = []
    by_record: dict[str, int] = {}
    for w in windows:
        p = np.array([vf_probability(f, model) for f in w.features])
        pos, neg = w.vf_share >= 0.99, w.vf_share == 0.0
        hit = p >= on
        tp += int(np.sum(hit & pos))
        fn += int(np.sum(~hit & pos))
        fp_win += int(np.sum(hit & neg))
        tn += int(np.sum(~hit & neg))
        spans = _vf_spans(w, p, on, confirm_s)
        eps = _episodes_of(w)
        for a, b in eps:
            over = [t0 for t0, t1 in spans if t0 <= b and t1 >= a]
            if over:
                detected += 1
                delays.append((over[0] - a) / w.fs_hz)
            else:
                missed += 1
        tol = int(5 * w.fs_hz)
        n_false = sum(
            1 for t0, t1 in spans if not any(t0 <= b + tol and t1 >= a - tol for a, b in eps)
        )
        false_alarms += n_false
        if n_false:
            by_record[w.record] = n_false
    return {
        "window_sensitivity": round(tp / max(tp + fn, 1), 4),
        "window_specificity": round(tn / max(tn + fp_win, 1), 4),
        "episodes": detected + missed,
        "episodes_detected": detected,
        "false_vf_onsets": false_alarms,
        "false_vf_onsets_by_record": by_record,
        "delay_s_median": round(float(np.median(delays)), 1) if delays else None,
        "delay_s_max": round(float(np.max(delays)), 1) if delays else None,
    }


def _episodes_of(w: Windows) -> list[tuple[int, int]]:
    inside = w.vf_share > 0
    out, start = [], None
    for end, flag in zip(w.end_samples, inside, strict=True):
        if flag and start is None:
            start = int(end)
        elif not flag and start is not None:
            out.append((start, int(end)))
            start = None
    if start is not None:
        out.append((start, int(w.end_samples[-1])))
    return [(a, b) for a, b in out if b - a >= 4 * w.fs_hz]


def _vf_spans(w: Windows, p: np.ndarray, on: float, confirm_s: float) -> list[tuple[int, int]]:
    """VF calls as (alarm sample, end sample): ``confirm_s`` positive seconds start, 3 low end."""
    spans: list[tuple[int, int]] = []
    run = low = 0
    start: int | None = None
    for end, pp in zip(w.end_samples.tolist(), p.tolist(), strict=True):
        run = run + 1 if pp >= on else 0
        low = low + 1 if pp < 0.4 else 0
        if start is None and run >= confirm_s:
            start = end
        elif start is not None and low >= 3:
            spans.append((start, end))
            start = None
    if start is not None:
        spans.append((start, int(w.end_samples[-1])))
    return spans


def _model_source(model: dict, report: dict) -> str:
    lines = [
        '"""VF/flutter perceptron for :mod:`inference.rhythm_signal` (generated; do not edit).',
        "",
        "Written by ``python -m inference.rhythm_vf_train``; validation figures (record-wise",
        "halves of cudb + MIT-BIH DS1, nstdb noise first halves in training) at fit time:",
        "",
        *[f"    {line}" for line in json.dumps(report, indent=1).splitlines()],
        '"""',
        "",
        f"VF_MODEL: dict = {json.dumps(model)}",
        "",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: validate, fit and write the VF model."""
    p = argparse.ArgumentParser(prog="python -m inference.rhythm_vf_train")
    p.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    p.add_argument("--out", type=Path, default=Path(__file__).with_name("rhythm_vf_model.py"))
    p.add_argument("--on", type=float, default=0.95, help="VF probability threshold")
    p.add_argument("--confirm-s", type=float, default=2.0)
    p.add_argument("--cache", type=Path, help="keep/reuse per-record window features here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    recs = {r: record_windows(args.data / "cudb" / r, args.cache) for r in CUDB}
    recs |= {r: record_windows(args.data / "mitdb" / r, args.cache) for r in DS1}
    noise = {r: record_windows(args.data / "nstdb" / r, args.cache) for r in NOISE}
    names = list(CUDB[0::2] + DS1[0::2]), list(CUDB[1::2] + DS1[1::2])
    report: dict = {"threshold": args.on, "confirm_s": args.confirm_s, "folds": []}
    for train_names, test_names in (names, names[::-1]):
        model = fit_perceptron([recs[r] for r in train_names] + [_half(noise[r], 0) for r in NOISE])
        fold = score(model, [recs[r] for r in test_names], args.on, args.confirm_s)
        fold["noise_second_half_false_vf_onsets"] = score(
            model, [_half(noise[r], 1) for r in NOISE], args.on, args.confirm_s
        )["false_vf_onsets"]
        fold["test_records"] = len(test_names)
        report["folds"].append(fold)
        logger.info("fold: %s", fold)
    final = fit_perceptron(list(recs.values()) + [_half(noise[r], 0) for r in NOISE])
    args.out.write_text(_model_source(final, report))
    sys.stdout.write(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
