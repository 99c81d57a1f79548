"""Render benchmark: 8, 16 and 32 beds offscreen; prints JSON.

For each bed count it runs `vigil run --headless` twice with the demo
recordings cycled over the beds (ECG at 360/250/128/125 Hz, pleth at 125 Hz):
once uncapped (`--fps 0`) for the highest frame rate reached, and once at the
product's 30 frames/s for the GUI thread's CPU share at that rate.

    python bench/render.py [--seconds 15] [--beds 8 16 32]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_once(beds: int, fps: float, seconds: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        stats_path = Path(tmp) / "stats.json"
        cmd = [
            sys.executable,
            "-m",
            "app",
            "run",
            "--demo",
            "--headless",
            "--no-store",
            "--beds",
            str(beds),
            "--fps",
            str(fps),
            "--seconds",
            str(seconds),
            "--stats-json",
            str(stats_path),
        ]
        env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 120
        )
        if proc.returncode != 0:
            return {"error": proc.stderr[-2000:]}
        stats = json.loads(stats_path.read_text())
    per_second = stats["fps"]["per_second"][2:]  # skip start-up seconds
    per_second.sort()
    return {
        "fps_median": per_second[len(per_second) // 2] if per_second else 0,
        "fps_p5": per_second[int(0.05 * (len(per_second) - 1))] if per_second else 0,
        "gui_cpu_share": stats["gui_cpu_share"],
        "process_cpu_share": round(stats["cpu_s"] / stats["seconds"], 3),
        "dropped": stats["samples"]["dropped"],
        "peak_rss_mb": stats["peak_rss_mb"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--beds", type=int, nargs="+", default=[8, 16, 32])
    args = parser.parse_args()
    results = {}
    for beds in args.beds:
        results[str(beds)] = {
            "uncapped": run_once(beds, 0, args.seconds),
            "at_30fps": run_once(beds, 30, args.seconds),
        }
    out = {
        "benchmark": "render",
        "seconds_per_run": args.seconds,
        "window": "1920x1080 offscreen",
        "cpu_count": os.cpu_count(),
        "results": results,
    }
    sys.stdout.write(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
