"""Analysis benchmark: full pipeline (QRS detection + beat classification) speed; JSON.

For each record it runs the same code as `vigil analyze` on one torch thread and
reports CPU-time real-time factors, per-beat classification latency in batches
and peak memory. Each timing is repeated (``--repeat``, default 3): the figures
are the best run, as `timeit` advises (slower runs measure other load on the
host, not the code), with the median beside the full-analysis figure.

    python bench/analysis.py [RECORD ...] [--repeat N]   (default: the demo's MIT-BIH records)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

T = TypeVar("T")

DEFAULT_RECORDS = [str(ROOT / "resources" / "demo" / r) for r in ("101", "119", "201", "208")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("records", nargs="*", default=DEFAULT_RECORDS)
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best is kept)")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import numpy as np
    import torch

    from devices.recording import load_recording
    from inference.beats import BeatClassifier
    from inference.pipeline import analyze_leads, default_model_path
    from inference.qrs import detect_qrs

    torch.set_num_threads(1)
    clf = BeatClassifier.from_file(default_model_path())
    rows = []
    for record in args.records:
        rec = load_recording(record)
        leads = np.vstack([rec.streams[s].samples for s in ("ecg", "ecg2") if s in rec.streams])
        fs = rec.streams["ecg"].fs_hz
        seconds = leads.shape[1] / fs
        detect_cpu, _ = _timed(args.repeat, detect_qrs, leads[0], fs)
        full_cpu, beats = _timed(args.repeat, analyze_leads, leads, fs, clf)
        peaks = np.array([b.sample_index for b in beats])
        classify_cpu, _ = _timed(args.repeat, clf.classify, leads, fs, peaks)
        rows.append(
            {
                "record": Path(record).name,
                "seconds": round(seconds, 1),
                "beats": len(beats),
                "detect_only_x_real_time": round(seconds / min(detect_cpu), 1),
                "full_analysis_x_real_time": round(seconds / min(full_cpu), 1),
                "full_analysis_x_real_time_median": round(seconds / float(np.median(full_cpu)), 1),
                "classify_ms_per_beat": round(1000 * min(classify_cpu) / max(len(beats), 1), 4),
            }
        )
    total_s = sum(r["seconds"] for r in rows)
    out = {
        "benchmark": "analysis",
        "model_version": clf.version,
        "threads": 1,
        "repeat": args.repeat,
        "records": rows,
        "pooled_full_analysis_x_real_time": round(
            total_s / sum(r["seconds"] / r["full_analysis_x_real_time"] for r in rows), 1
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


def _timed(repeat: int, run: Callable[..., T], *args: object) -> tuple[list[float], T]:
    """CPU seconds of each of ``repeat`` calls ``run(*args)``, and the last result."""
    times = []
    for _ in range(max(1, repeat)):
        c0 = time.process_time()
        result = run(*args)
        times.append(time.process_time() - c0)
    return times, result


if __name__ == "__main__":
    raise SystemExit(main())
