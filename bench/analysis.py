"""Analysis benchmark: full pipeline (QRS detection + beat classification) speed; JSON.

For each record it runs the same code as `vigil analyze` on one torch thread and
reports CPU-time real-time factors, per-beat classification latency in batches
and peak memory.

    python bench/analysis.py [RECORD ...]    (default: the demo's MIT-BIH records)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_RECORDS = [str(ROOT / "resources" / "demo" / r) for r in ("101", "119", "201", "208")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("records", nargs="*", default=DEFAULT_RECORDS)
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
        c0 = time.process_time()
        detect_qrs(leads[0], fs)
        detect_cpu = time.process_time() - c0
        c0 = time.process_time()
        beats = analyze_leads(leads, fs, clf)
        full_cpu = time.process_time() - c0
        peaks = np.array([b.sample_index for b in beats])
        c0 = time.process_time()
        clf.classify(leads, fs, peaks)
        classify_cpu = time.process_time() - c0
        rows.append(
            {
                "record": Path(record).name,
                "seconds": round(seconds, 1),
                "beats": len(beats),
                "detect_only_x_real_time": round(seconds / detect_cpu, 1),
                "full_analysis_x_real_time": round(seconds / full_cpu, 1),
                "classify_ms_per_beat": round(1000 * classify_cpu / max(len(beats), 1), 4),
            }
        )
    total_s = sum(r["seconds"] for r in rows)
    out = {
        "benchmark": "analysis",
        "model_version": clf.version,
        "threads": 1,
        "records": rows,
        "pooled_full_analysis_x_real_time": round(
            total_s / sum(r["seconds"] / r["full_analysis_x_real_time"] for r in rows), 1
        ),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
