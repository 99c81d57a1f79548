"""`vigil analyze` writes <record>.events.csv; `vigil evaluate --episodes` scores it.

Runs the real commands on a 60 s excerpt of cudb record cu01 (VF from
214.2 s) with an untrained beat model (beat classes do not matter for VF,
which is called on the raw ECG).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import wfdb

from inference.episodes import EVENTS_HEADER, read_events_csv

DATA = Path("/work/shared/data")
pytestmark = pytest.mark.skipif(not (DATA / "cudb").exists(), reason="PhysioNet data not present")


@pytest.fixture(scope="module")
def excerpt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """cu01 from 180 s to 240 s as a WFDB record with its VF onset annotation."""
    rec = wfdb.rdrecord(str(DATA / "cudb" / "cu01"), sampfrom=180 * 250, sampto=240 * 250)
    ann = wfdb.rdann(str(DATA / "cudb" / "cu01"), "atr")
    onset = int(ann.sample[list(ann.symbol).index("[")]) - 180 * 250
    folder = tmp_path_factory.mktemp("ref")
    wfdb.wrsamp(
        "cu01x",
        fs=250,
        units=["mV"],
        sig_name=["ECG"],
        p_signal=rec.p_signal,
        fmt=["16"],
        write_dir=str(folder),
    )
    wfdb.wrann("cu01x", "atr", np.array([onset]), symbol=["["], write_dir=str(folder))
    return folder, onset


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from inference.beats import BeatCNNConfig, build_beat_cnn, save_beat_model

    torch.manual_seed(3)
    path = tmp_path_factory.mktemp("model") / "random.safetensors"
    save_beat_model(
        path,
        build_beat_cnn(BeatCNNConfig()),
        BeatCNNConfig(),
        {"trained_utc": "2026-01-01T00:00:00Z"},
    )
    return path


def test_analyze_writes_events_and_evaluate_scores_them(
    excerpt: tuple[Path, int], model_file: Path, tmp_path: Path
):
    import torch

    from app.offline import analyze_main, evaluate_main

    threads = torch.get_num_threads()
    folder, onset = excerpt
    out = tmp_path / "out"
    try:
        rc = analyze_main([str(folder / "cu01x"), "--out", str(out), "--model", str(model_file)])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    events_path = out / "cu01x.events.csv"
    assert events_path.read_text().splitlines()[0] == ",".join(EVENTS_HEADER)
    rows = read_events_csv(events_path)
    vf = [r for r in rows if r.kind == "vf"]
    assert vf and vf[0].priority == "high"
    assert vf[0].alarm_sample is not None and (vf[0].alarm_sample - onset) / 250 <= 6.0
    assert all(r.offset_sample >= r.onset_sample for r in rows)
    assert all(r.priority in {"high", "medium", "low", "none"} for r in rows)
    assert json.loads((out / "analysis.json").read_text())["records"][0]["episodes"] == len(rows)

    report = tmp_path / "episodes.json"
    rc = evaluate_main(
        [
            "--episodes",
            "--ref",
            str(folder),
            "--test",
            str(out),
            "--from-start",
            "--json",
            str(report),
        ]
    )
    assert rc == 0
    result = json.loads(report.read_text())
    assert result["gross"]["vf"]["tp_se"] == 1 and result["gross"]["vf"]["fn"] == 0
    assert result["alarm_burden"]["bed_hours"] == pytest.approx(60 / 3600, abs=1e-3)
