"""Offline subcommands: `vigil analyze`, `vigil evaluate`, `vigil explain`, `vigil export`.

They run without a window and share the live pipeline's code
(:mod:`inference.pipeline`).
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

logger = logging.getLogger(__name__)


def _progress(i: int, n: int, label: str, t0: float) -> None:
    width = 28
    done = int(width * i / max(n, 1))
    elapsed = time.monotonic() - t0
    sys.stderr.write(
        f"\r[{'#' * done}{'.' * (width - done)}] {i}/{n} {label:<24.24} {elapsed:6.1f}s"
    )
    if i == n:
        sys.stderr.write("\n")
    sys.stderr.flush()


def _load_classifier(path: Path | None):
    import torch  # noqa: PLC0415 (offline commands only)

    from inference.beats import BeatClassifier  # noqa: PLC0415
    from inference.pipeline import default_model_path  # noqa: PLC0415

    torch.set_num_threads(1)
    return BeatClassifier.from_file(path or default_model_path())


def record_name(path: str) -> str:
    """Output name of a record: the file stem without WFDB/BIDMC suffixes."""
    name = Path(path).name
    for suffix in (".hea", ".dat", ".gz", ".csv", "_Signals"):
        name = name.removesuffix(suffix)
    return name


def analyze_main(argv: Sequence[str]) -> int:
    """`vigil analyze RECORD... --out DIR [--lead N] [--model PATH]`."""
    p = argparse.ArgumentParser(
        prog="vigil analyze", description="Detect and classify beats in recordings"
    )
    p.add_argument(
        "records", nargs="+", help="WFDB record paths (no extension) or BIDMC *_Signals.csv[.gz]"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--lead", type=int, default=0, help="ECG lead for QRS detection (0 = primary)")
    p.add_argument(
        "--model", type=Path, help="beat model (.safetensors); default: the shipped model"
    )
    args = p.parse_args(argv)
    from devices.recording import RecordingError  # noqa: PLC0415
    from inference.annotations import write_beat_annotations  # noqa: PLC0415
    from inference.episodes import write_events_csv  # noqa: PLC0415
    from inference.model_io import ModelFileError  # noqa: PLC0415
    from inference.pipeline import CLASSES, analyze_record  # noqa: PLC0415
    from inference.rhythm import ATRIAL_KINDS, analyze_rhythm, beats_in_rhythm  # noqa: PLC0415

    try:
        classifier = _load_classifier(args.model)
    except (ModelFileError, OSError) as exc:
        sys.stderr.write(f"vigil analyze: cannot load the beat model: {exc}\n")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    failed: list[str] = []
    summary = []
    t0 = time.monotonic()
    for i, record in enumerate(args.records):
        _progress(i, len(args.records), record_name(record), t0)
        t_rec = time.monotonic()
        try:
            result = analyze_record(record, classifier, lead=args.lead)
        except (RecordingError, ValueError) as exc:
            sys.stderr.write(f"\nvigil analyze: skipped {record}: {exc}\n")
            failed.append(record)
            continue
        name = record_name(record)
        # Rhythm episodes from the same beats, timed as the live analyzer would alarm;
        # then the beats' final classes in that rhythm (no S beats in AF or flutter).
        episodes = analyze_rhythm(result.beats, result.primary_lead, result.fs_hz)
        write_events_csv(args.out / f"{name}.events.csv", episodes)
        atrial = [(e.onset_sample, e.offset_sample) for e in episodes if e.kind in ATRIAL_KINDS]
        beats = beats_in_rhythm(result.beats, atrial)
        samples = [b.sample_index for b in beats]
        symbols = [b.symbol for b in beats]
        write_beat_annotations(args.out, name, samples, symbols, result.fs_hz)
        with (args.out / f"{name}.csv").open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["sample", "symbol", *(f"prob_{c}" for c in CLASSES)])
            for b in beats:
                w.writerow([b.sample_index, b.symbol, *(f"{v:.4f}" for v in b.probabilities)])
        seconds = result.n_samples / result.fs_hz
        summary.append(
            {
                "record": name,
                "beats": len(result.beats),
                "episodes": len(episodes),
                "x_real_time": round(seconds / max(time.monotonic() - t_rec, 1e-9), 1),
            }
        )
    _progress(len(args.records), len(args.records), "done", t0)
    (args.out / "analysis.json").write_text(
        json.dumps(
            {"model_version": classifier.version, "records": summary, "failed": failed}, indent=2
        )
    )
    if failed:
        sys.stderr.write(f"vigil analyze: {len(failed)} of {len(args.records)} record(s) failed\n")
        return 1
    return 0


def evaluate_main(argv: Sequence[str]) -> int:
    """`vigil evaluate --ref DIR --test DIR [--records ...] [--json OUT] [--from-start] [--episodes]`."""
    p = argparse.ArgumentParser(
        prog="vigil evaluate", description="ANSI/AAMI EC57 beat-by-beat report"
    )
    p.add_argument("--ref", type=Path, required=True, help="folder with reference .hea/.atr")
    p.add_argument(
        "--test", type=Path, required=True, help="folder with .vig files from `vigil analyze`"
    )
    p.add_argument("--records", nargs="+", help="records to score (default: all with a reference)")
    p.add_argument("--json", type=Path, help="write the report as JSON")
    p.add_argument(
        "--from-start", action="store_true", help="score from the start, not from minute 5"
    )
    p.add_argument(
        "--episodes",
        action="store_true",
        help="score rhythm episodes (<record>.events.csv: AF, VT, VF; epicmp rules) and alarm burden",
    )
    args = p.parse_args(argv)
    if args.episodes:
        from inference.episodes import evaluate_episode_dirs as evaluate_dirs  # noqa: PLC0415
    else:
        from inference.ec57 import evaluate_dirs  # noqa: PLC0415

    try:
        report = evaluate_dirs(args.ref, args.test, args.records, from_start=args.from_start)
    except (FileNotFoundError, ValueError) as exc:
        sys.stderr.write(f"vigil evaluate: {exc}\n")
        return 2
    sys.stdout.write(report.format_text() + "\n")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_json(), indent=2))
    if not report.records:
        sys.stderr.write(
            f"vigil evaluate: no record of {args.ref} has test annotations in {args.test}\n"
        )
        return 2
    return 0


def main(command: str, argv: Sequence[str]) -> int:
    """Dispatch an offline subcommand."""
    if command == "analyze":
        return analyze_main(argv)
    if command == "evaluate":
        return evaluate_main(argv)
    sys.stderr.write(f"vigil {command}: not available in this build\n")
    return 2
