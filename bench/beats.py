"""Beat classifier speed: per-beat latency in batches, feature cost, throughput — JSON.

Usage::

    .venv/bin/python bench/beats.py [--model resources/models/beatcnn.safetensors]
        [--record ../shared/data/mitdb/119] [--repeats 5]

One torch thread, as on the inference thread. Figures are medians over repeats.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    import torch
    import wfdb

    from inference import features as ft
    from inference.beat_stream import StreamingBeatClassifier
    from inference.beats import AAMI_CLASS_OF_SYMBOL, BeatClassifier

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, default=ROOT / "resources/models/beatcnn.safetensors")
    p.add_argument("--record", type=Path, default=ROOT.parent / "shared/data/mitdb/119")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    clf = BeatClassifier.from_file(args.model)
    rec = wfdb.rdrecord(str(args.record))
    ann = wfdb.rdann(str(args.record), "atr")
    peaks = np.array(
        [s for s, c in zip(ann.sample, ann.symbol, strict=True) if c in AAMI_CLASS_OF_SYMBOL]
    )
    leads = rec.p_signal.T.astype(np.float32)
    fs = float(rec.fs)
    duration_s = leads.shape[1] / fs
    n = len(peaks)

    inputs = ft.beat_inputs(leads, fs, peaks, np.arange(n), ft.PatientState())
    model_latency = {}
    for batch in (1, 16, 256, 1024):
        sub = ft.BeatInputs(inputs.waves[:batch], inputs.scalars[:batch])
        clf.classify_inputs(sub)  # warm-up (oneDNN primitives)
        reps = max(args.repeats, 2000 // batch)
        t = _median_time(lambda sub=sub: clf.classify_inputs(sub), reps)
        model_latency[str(batch)] = round(t / batch * 1e3, 4)

    t_features = _median_time(
        lambda: ft.beat_inputs(leads, fs, peaks, np.arange(n), ft.PatientState()), args.repeats
    )
    t_whole = _median_time(lambda: clf.classify(leads, fs, peaks), args.repeats)

    def stream_run() -> None:
        stream = StreamingBeatClassifier(clf, fs, n_leads=leads.shape[0])
        block = int(0.5 * fs)
        k = 0
        for start in range(0, leads.shape[1], block):
            stop = start + block
            new_k = np.searchsorted(peaks, stop - int(0.25 * fs))
            stream.push(leads[:, start:stop], peaks[k:new_k])
            k = new_k
        stream.push(leads[:, :0], peaks[k:])
        stream.flush()

    t_stream = _median_time(stream_run, max(1, args.repeats // 2))
    result = {
        "model": clf.version,
        "weights_bytes": args.model.stat().st_size,
        "parameters": sum(p.numel() for p in clf.module.parameters()),
        "record": args.record.name,
        "beats": n,
        "record_s": round(duration_s, 1),
        "torch_threads": torch.get_num_threads(),
        "model_ms_per_beat_by_batch": model_latency,
        "features_ms_per_beat": round(t_features / n * 1e3, 4),
        "whole_record_ms_per_beat": round(t_whole / n * 1e3, 4),
        "whole_record_x_realtime": round(duration_s / t_whole, 1),
        "streaming_0p5s_blocks_ms_per_beat": round(t_stream / n * 1e3, 4),
        "streaming_x_realtime": round(duration_s / t_stream, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    sys.stdout.write(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
