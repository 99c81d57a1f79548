"""Beat classes in their rhythm: EC57 figures of held-out probabilities with and without
the "no S beats inside AF or flutter" rule (:func:`inference.rhythm.beats_in_rhythm`) — JSON.

Usage::

    # 1. held-out probabilities of the patient-wise CV (the model card's settings)
    .venv/bin/vigil train --data ../shared/data/mitdb ../shared/data/svdb ../shared/data/nstdb \\
        --out /tmp/cv/beatcnn.safetensors --cv-only --cv-probs /tmp/cv/probs.npz
    # 2. AF / flutter episodes of the DS1 records (vigil analyze writes <record>.events.csv)
    .venv/bin/vigil analyze ../shared/data/mitdb/{101,106,...} --out out/analyze/mitdb
    # 3. score
    .venv/bin/python bench/beats_in_af.py --cv-probs /tmp/cv/probs.npz --events out/analyze/mitdb

Each held-out record is classified on its reference R peaks by the fold model that
did not train on it; the rule then turns S into N inside the record's AF and flutter
episodes. The episodes come from ``vigil analyze`` with the shipped model, which did
train on these records; the rhythm calls rest mostly on RR intervals and P waves, so
this is a close but not a strict held-out figure.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def score(probs: dict[str, np.ndarray], data: Path, events: Path | None) -> dict:
    """EC57 VEB/SVEB figures (all beats and from minute 5), optionally with the AF rule."""
    from inference import train as tr
    from inference import train_data as td
    from inference.beats import beat_calls
    from inference.episodes import read_events_csv
    from inference.pipeline import CLASSES
    from inference.rhythm import ATRIAL_KINDS
    from inference.train_report import aami_scores, confusion

    n_s, n_n = CLASSES.index("S"), CLASSES.index("N")
    total = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    late_total = np.zeros_like(total)
    relabelled = 0
    for name, p in sorted(probs.items()):
        rec = td.load_record(data / name)
        pred = beat_calls(np.asarray(p))
        if events is not None:
            inside = np.zeros(len(rec.peaks), dtype=bool)
            for e in read_events_csv(events / f"{name}.events.csv"):
                if e.kind in ATRIAL_KINDS:
                    inside |= (rec.peaks >= e.onset_sample) & (rec.peaks <= e.offset_sample)
            change = inside & (pred == n_s)
            relabelled += int(change.sum())
            pred[change] = n_n
        late = rec.peaks >= tr.LEARNING_PERIOD_S * rec.fs_hz
        total += confusion(rec.labels, pred)
        late_total += confusion(rec.labels[late], pred[late])
    keys = ("VEB_Se", "VEB_PP", "VEB_FPR", "SVEB_Se", "SVEB_PP")
    return {
        "all_beats": {k: aami_scores(total)[k] for k in keys},
        "from_minute_5": {k: aami_scores(late_total)[k] for k in keys},
        "s_beats_relabelled": relabelled,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cv-probs", type=Path, required=True, help="vigil train --cv-probs output")
    p.add_argument("--events", type=Path, default=ROOT / "out" / "analyze" / "mitdb")
    p.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "mitdb")
    args = p.parse_args(argv)
    with np.load(args.cv_probs) as z:
        probs = {k: z[k] for k in z.files}
    result = {
        "records": len(probs),
        "classifier_only": score(probs, args.data, None),
        "no_s_in_af_or_flutter": score(probs, args.data, args.events),
    }
    sys.stdout.write(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
