"""QRS detector bench: EC57 accuracy on MIT-BIH DS1 and svdb, speed, latency — JSON.

Usage::

    .venv/bin/python bench/qrs.py [--data ../shared/data] [--out qrs.json] [--quick]

Accuracy: first lead, EC57 beat-by-beat (150 ms window, from minute 5, bxb
rules) per record and pooled (gross), for the 22 DS1 records of mitdb and
the svdb records present; nstdb (noise stress) is reported per SNR.
With ``--rates``, DS1 is also resampled to 125, 250, 500 and 1000 Hz and scored.
Speed: CPU seconds (``time.process_time``, one thread) per second of signal,
as "x real time per core", for the batch form and for the streaming form fed
0.1 s blocks.  Latency: the streaming form fed one sample at a time; the
largest delay between an R peak and the push that reports it, after the
2 s learning period.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from inference.annotations import DS1_RECORDS, load_ecg, read_annotations  # noqa: E402
from inference.dsp import resample  # noqa: E402
from inference.ec57 import BeatStatistics, RecordComparison, compare_record  # noqa: E402
from inference.qrs import StreamingQrsDetector, detect_qrs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DS1 = list(DS1_RECORDS)
NSTDB = ("118e24", "118e18", "118e12", "118e06", "118e00", "118e_6")


def _score(folder: Path, record: str) -> tuple[RecordComparison, float, float, float]:
    """Detect on lead 0 and compare; also CPU seconds and signal seconds."""
    rec = load_ecg(folder / record, leads=[0])
    ann = read_annotations(folder / record)
    x = rec.lead(0)
    t0 = time.process_time()
    result = detect_qrs(x, rec.fs_hz)
    cpu = time.process_time() - t0
    peaks = result.r_peaks
    comparison = compare_record(
        ann.samples,
        ann.symbols,
        peaks,
        ["N"] * len(peaks),
        rec.fs_hz,
        end_sample=rec.n_samples,
        record=record,
    )
    low_quality = float(np.mean(result.quality < 0.5)) if len(result.quality) else 0.0
    return comparison, cpu, rec.n_samples / rec.fs_hz, low_quality


def _database(folder: Path, records: list[str]) -> dict[str, object]:
    rows = []
    comparisons = []
    cpu_total = signal_total = 0.0
    for record in records:
        c, cpu, seconds, low_q = _score(folder, record)
        comparisons.append(c)
        cpu_total += cpu
        signal_total += seconds
        rows.append(
            {
                "record": record,
                "beats": c.n_reference_beats,
                "tp": c.qrs_tp,
                "fn": c.qrs_fn,
                "fp": c.qrs_fp,
                "se": c.stats.qrs_se,
                "ppv": c.stats.qrs_ppv,
                "low_quality_fraction": round(low_q, 4),
            }
        )
    pooled = np.sum([c.confusion for c in comparisons], axis=0)
    gross = BeatStatistics.from_confusion(pooled)
    worst = sorted(rows, key=lambda r: -(r["fn"] + r["fp"]))[:5]
    return {
        "records": rows,
        "gross_se": gross.qrs_se,
        "gross_ppv": gross.qrs_ppv,
        "fn": int(pooled[:5, 5].sum()),
        "fp": int(pooled[5, :5].sum()),
        "beats": int(pooled[:5, :].sum()),
        "worst_records": [f"{r['record']} (FN {r['fn']}, FP {r['fp']})" for r in worst],
        "lowest_se": min(rows, key=lambda r: r["se"] or 0.0)["record"],
        "lowest_ppv": min(rows, key=lambda r: r["ppv"] or 0.0)["record"],
        "batch_x_realtime_per_core": round(signal_total / cpu_total),
    }


def _other_rates(folder: Path, records: list[str], rates: tuple[float, ...]) -> dict[str, object]:
    """DS1 resampled to other rates (reference annotations moved with it)."""
    out: dict[str, object] = {}
    for rate in rates:
        pooled = np.zeros((6, 6), dtype=np.int64)
        for record in records:
            rec = load_ecg(folder / record, leads=[0])
            ann = read_annotations(folder / record)
            x, fs = resample(rec.lead(0), rec.fs_hz, rate)
            peaks = detect_qrs(x, fs).r_peaks
            ref = np.round(ann.samples * fs / rec.fs_hz).astype(np.int64)
            c = compare_record(
                ref, ann.symbols, peaks, ["N"] * len(peaks), fs, end_sample=len(x), record=record
            )
            pooled += c.confusion
        gross = BeatStatistics.from_confusion(pooled)
        out[f"{rate:g}_hz"] = {"gross_se": gross.qrs_se, "gross_ppv": gross.qrs_ppv}
    return out


def _streaming_speed(folder: Path, records: list[str], block_s: float) -> float:
    cpu_total = signal_total = 0.0
    for record in records:
        rec = load_ecg(folder / record, leads=[0])
        x = rec.lead(0)
        block = max(1, int(block_s * rec.fs_hz))
        det = StreamingQrsDetector(rec.fs_hz)
        t0 = time.process_time()
        for i in range(0, len(x), block):
            det.push(x[i : i + block])
        det.flush()
        cpu_total += time.process_time() - t0
        signal_total += len(x) / rec.fs_hz
    return round(signal_total / cpu_total)


def _latency(folder: Path, record: str, seconds: float) -> dict[str, float]:
    rec = load_ecg(folder / record, leads=[0], sampto=None)
    x = rec.lead(0)[: int(seconds * rec.fs_hz)]
    det = StreamingQrsDetector(rec.fs_hz)
    worst = 0
    for i in range(len(x)):
        for r in det.push(x[i : i + 1]):
            if r >= 2.0 * rec.fs_hz:
                worst = max(worst, i - r)
    return {"record": record, "seconds": seconds, "max_latency_s": worst / rec.fs_hz}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON here")
    parser.add_argument("--quick", action="store_true", help="5 records per database")
    parser.add_argument(
        "--rates", action="store_true", help="also score DS1 resampled to 125-1000 Hz"
    )
    args = parser.parse_args(argv)

    mitdb, svdb, nstdb = args.data / "mitdb", args.data / "svdb", args.data / "nstdb"
    ds1 = [r for r in DS1 if (mitdb / f"{r}.hea").exists()]
    sv = sorted(p.stem for p in svdb.glob("*.hea"))
    if args.quick:
        ds1, sv = ds1[:5], sv[:5]
    report: dict[str, object] = {
        "detector": "inference.qrs (lead 0; EC57 150 ms window from 5 min)",
        "mitdb_ds1": _database(mitdb, ds1),
        "svdb": _database(svdb, sv),
    }
    noise = {}
    for record in NSTDB:
        if (nstdb / f"{record}.hea").exists():
            c, _, _, low_q = _score(nstdb, record)
            noise[record] = {
                "se": c.stats.qrs_se,
                "ppv": c.stats.qrs_ppv,
                "low_quality_fraction": round(low_q, 4),
            }
    report["nstdb_em_noise"] = noise
    if args.rates:
        report["mitdb_ds1_resampled"] = _other_rates(mitdb, ds1, (125.0, 250.0, 500.0, 1000.0))
    report["streaming_x_realtime_per_core_0.1s_blocks"] = _streaming_speed(mitdb, ds1[:3], 0.1)
    report["streaming_latency_1_sample_blocks"] = _latency(mitdb, ds1[0], 60.0)
    text = json.dumps(report, indent=2)
    sys.stdout.write(text + "\n")
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
