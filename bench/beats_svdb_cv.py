"""Beat classes on unseen svdb patients: leave-records-out CV over svdb — JSON.

The model card's CV holds out MIT-BIH DS1 records only; svdb records always
train. This checks the same recipe (and the run-time call rule) on the other
database: svdb's records, sorted by name, form four interleaved folds; each fold
trains on all of DS1 plus the other svdb records with the shipped settings and
classifies the held-out svdb records on their reference R peaks (patient beat
memory included). Scores are EC57 VEB/SVEB from minute 5, pooled over folds,
with the shipped call rule and with a plain most-probable-class call.

Usage (four trainings of the shipped three-network model, about 4-5 min per
network on one core; ``--workers`` processes train networks side by side)::

    .venv/bin/python bench/beats_svdb_cv.py [--epochs 16] [--workers 2] [--probs out/svdb_cv.npz]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
N_FOLDS = 4


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=DATA)
    p.add_argument("--epochs", type=int, default=None, help="override the shipped epochs")
    p.add_argument("--probs", type=Path, default=None, help="save held-out probabilities (npz)")
    p.add_argument(
        "--workers", type=int, default=None, help="training processes (default: vigil train's)"
    )
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from dataclasses import replace

    import torch

    from inference import train as tr
    from inference import train_data as td
    from inference.beats import beat_calls
    from inference.train_report import aami_scores, confusion

    torch.set_num_threads(1)
    cfg = tr.TrainConfig()
    if args.epochs:
        cfg = replace(cfg, epochs=args.epochs)
    records, noise = td.load_data([args.data / "mitdb", args.data / "svdb", args.data / "nstdb"])
    svdb = sorted((r for r in records if r.database == "svdb"), key=lambda r: r.name)
    folds = [svdb[k::N_FOLDS] for k in range(N_FOLDS)]
    probs: dict[str, np.ndarray] = {}
    started = time.perf_counter()
    for k, fold in enumerate(folds):
        held = {r.name for r in fold}
        train = [r for r in records if not (r.database == "svdb" and r.name in held)]
        # fit scores the held-out records (memory included) and keeps their probabilities.
        tr.fit(
            train, noise, cfg, validate=fold, progress=f"svdb fold {k + 1}/{N_FOLDS} ",
            probabilities=probs, workers=args.workers or tr.DEFAULT_WORKERS,
        )  # fmt: skip
    if args.probs:
        args.probs.parent.mkdir(parents=True, exist_ok=True)
        np.savez(args.probs, **probs)

    def pooled(call) -> dict[str, float]:
        total = np.zeros((5, 5), np.int64)
        for r in svdb:
            late = r.peaks >= tr.LEARNING_PERIOD_S * r.fs_hz
            total += confusion(r.labels[late], call(probs[r.name])[late])
        s = aami_scores(total)
        return {k: s[k] for k in ("VEB_Se", "VEB_PP", "VEB_FPR", "SVEB_Se", "SVEB_PP")}

    result = {
        "benchmark": "beats_svdb_cv",
        "folds": [[r.name for r in f] for f in folds],
        "held_out_records": len(svdb),
        "from_minute_5": {
            "shipped_calls": pooled(beat_calls),
            "most_probable_class": pooled(lambda p: np.asarray(p).argmax(axis=1)),
        },
        "config": cfg.to_dict(),
        "wall_time_s": round(time.perf_counter() - started, 1),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
