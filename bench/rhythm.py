"""Rhythm episodes and alarm burden on MIT-BIH DS1 and cudb — JSON.

Usage::

    # 1. beats once (slow: the CNN over 46 records; run it in the background)
    .venv/bin/vigil analyze ../shared/data/mitdb/{101,106,...} --out out/analyze/mitdb
    .venv/bin/vigil analyze ../shared/data/cudb/cu{01,02,...} --out out/analyze/cudb
    # 2. rhythm + scoring (minutes; re-run freely after changing rhythm logic)
    .venv/bin/python bench/rhythm.py --analyzed out/analyze [--json out/rhythm.json]
    # oracle beats: detected R peaks labelled with the reference classes (an upper bound)
    .venv/bin/python bench/rhythm.py --beats oracle

The beats are read back from ``<record>.csv`` written by ``vigil analyze``
(their signal quality is recomputed with the same QRS detector), the rhythm
analyzer is run over the record exactly as ``vigil analyze`` does, the
episodes are written to ``--work`` as ``<record>.events.csv`` and scored with
:func:`inference.episodes.evaluate_episode_dirs` (epicmp rules).  Reported:
all records, and each record-wise half (A: alternate records starting with
the first, B: the others) so that a figure from the half not looked at while
tuning can be quoted; DS1 both from the start and after EC57's 5-minute
learning period, cudb from the start (its records are 8.5 min and several VF
episodes begin before minute 5). ``vf_first_lethal_alarm``: delay from each
VF onset to the first VF, VT or asystole alarm (what sounds at the bedside).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from inference.annotations import CUDB_RECORDS, DS1_RECORDS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DS1 = list(DS1_RECORDS)
CUDB = list(CUDB_RECORDS)


def _quality_of(lead: np.ndarray, fs: float, samples: np.ndarray) -> np.ndarray:
    from inference.qrs import detect_qrs

    q = detect_qrs(lead, fs)
    idx = np.minimum(samples // q.quality_window_samples, max(len(q.quality) - 1, 0))
    return q.quality[idx] if len(q.quality) else np.ones(len(samples))


def beats_from_analyze(csv_path: Path, lead: np.ndarray, fs: float) -> list:
    """Beats of a ``vigil analyze`` CSV, with the signal quality the live analyzer gives them."""
    from inference.pipeline import CLASSES, Beat

    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    samples = np.array([int(r["sample"]) for r in rows], dtype=np.int64)
    quality = _quality_of(lead, fs, samples)
    return [
        Beat(int(s), r["symbol"], tuple(float(r[f"prob_{c}"]) for c in CLASSES), float(q))
        for s, r, q in zip(samples, rows, quality, strict=True)
    ]


def beats_oracle(record: Path, lead: np.ndarray, fs: float) -> list:
    """Detected R peaks labelled with the nearest reference beat's AAMI class (150 ms)."""
    import wfdb

    from inference.ec57 import AAMI_CLASS_OF_SYMBOL
    from inference.pipeline import Beat, analyze_leads

    detected = analyze_leads(lead[None, :], fs, None)
    ann = wfdb.rdann(str(record), "atr")
    keep = [i for i, s in enumerate(ann.symbol) if s in AAMI_CLASS_OF_SYMBOL]
    ref_t = np.asarray(ann.sample[keep], dtype=np.int64)
    ref_c = [AAMI_CLASS_OF_SYMBOL[ann.symbol[i]] for i in keep]
    win = int(0.15 * fs)
    out = []
    for b in detected:
        i = int(np.searchsorted(ref_t, b.sample_index))
        near = [
            j for j in (i - 1, i) if 0 <= j < len(ref_t) and abs(ref_t[j] - b.sample_index) <= win
        ]
        sym = ref_c[min(near, key=lambda j: abs(ref_t[j] - b.sample_index))] if near else "N"
        out.append(Beat(b.sample_index, sym, b.probabilities, b.quality))
    return out


def run_database(
    db: str, records: list[str], data: Path, analyzed: Path | None, work: Path, source: str
) -> dict:
    from devices.recording import load_recording
    from inference.episodes import write_events_csv
    from inference.rhythm import analyze_rhythm

    timing = {}
    for name in records:
        rec_path = data / db / name
        stream = load_recording(rec_path).streams["ecg"]
        lead = np.asarray(stream.samples, dtype=np.float64)
        if source == "oracle":
            beats = beats_oracle(rec_path, lead, stream.fs_hz)
        else:
            assert analyzed is not None
            csv_path = analyzed / db / f"{name}.csv"
            if not csv_path.exists():
                raise FileNotFoundError(f"{csv_path}: run `vigil analyze` first (see --help)")
            beats = beats_from_analyze(csv_path, lead, stream.fs_hz)
        t0 = time.perf_counter()
        episodes = analyze_rhythm(beats, lead, stream.fs_hz)
        timing[name] = round(len(lead) / stream.fs_hz / max(time.perf_counter() - t0, 1e-9))
        write_events_csv(work / db / f"{name}.events.csv", episodes)
    return timing


def score(db: str, records: list[str], data: Path, work: Path, from_start: bool) -> dict:
    from inference.episodes import evaluate_episode_dirs

    out = {}
    for label, subset in (("all", records), ("half_A", records[0::2]), ("half_B", records[1::2])):
        rep = evaluate_episode_dirs(data / db, work / db, subset, from_start=from_start).to_json()
        gross = {
            cls: {k: v for k, v in c.items() if k != "alarm_delays_s" or cls == "vf"}
            for cls, c in rep["gross"].items()
            if c["tp_se"] + c["fn"] + c["tp_p"] + c["fp"]
        }
        out[label] = {"records": len(subset), "gross": gross, "alarm_burden": rep["alarm_burden"]}
    return out


LETHAL: tuple[str, ...] = ("vf", "vt", "asystole")


def lethal_alarm_delays(db: str, records: list[str], data: Path, work: Path) -> dict:
    """Seconds from each reference VF onset to the first lethal (VF/VT/asystole) alarm.

    The VF scoring above counts only VF calls; a ventricular flutter first
    called VT already sounds a latched high-priority alarm, which is what the
    nurse hears. Scored with the same epicmp rules
    (:func:`inference.episodes.compare_episodes`), the lethal kinds standing in
    for the VF calls; an alarm standing before the onset counts as 0 s.
    """
    import wfdb

    from inference.episodes import compare_episodes, read_events_csv, reference_episodes

    delays: list[float] = []
    episodes = 0
    for name in records:
        ann = wfdb.rdann(str(data / db / name), "atr")
        header = wfdb.rdheader(str(data / db / name))
        ref = reference_episodes(ann.sample, ann.symbol, ann.aux_note, header.sig_len)["vf"]
        lethal = [e for e in read_events_csv(work / db / f"{name}.events.csv") if e.kind in LETHAL]
        counts = compare_episodes(ref, lethal, header.fs, 0, header.sig_len)
        delays += counts.delays_s
        episodes += counts.tp_se + counts.fn
    arr = np.array(delays) if delays else np.array([np.nan])
    return {
        "episodes": episodes,
        "alarmed": len(delays),
        "within_6s": int(np.sum(arr <= 6.0)),
        "median_s": round(float(np.nanmedian(arr)), 1),
        "max_s": round(float(np.nanmax(arr)), 1),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    p.add_argument(
        "--analyzed",
        type=Path,
        default=ROOT / "out" / "analyze",
        help="vigil analyze output: DIR/mitdb, DIR/cudb",
    )
    p.add_argument("--beats", choices=("analyze", "oracle"), default="analyze")
    p.add_argument(
        "--work", type=Path, default=ROOT / "out" / "rhythm", help="where events files go"
    )
    p.add_argument("--json", type=Path, help="also write the JSON here")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    result: dict = {"beats": args.beats}
    speed = {}
    for db, records in (("mitdb", DS1), ("cudb", CUDB)):
        speed[db] = run_database(
            db, records, args.data, args.analyzed, args.work / args.beats, args.beats
        )
    work = args.work / args.beats
    result["ds1_from_start"] = score("mitdb", DS1, args.data, work, from_start=True)
    result["ds1_after_5_min"] = score("mitdb", DS1, args.data, work, from_start=False)
    result["cudb_from_start"] = score("cudb", CUDB, args.data, work, from_start=True)
    result["vf_first_lethal_alarm"] = {
        "ds1": lethal_alarm_delays("mitdb", DS1, args.data, work),
        "cudb": lethal_alarm_delays("cudb", CUDB, args.data, work),
    }
    result["rhythm_x_real_time_median"] = float(
        np.median([v for s in speed.values() for v in s.values()])
    )
    result["seconds"] = round(time.perf_counter() - t0, 1)
    text = json.dumps(result, indent=2)
    sys.stdout.write(text + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
