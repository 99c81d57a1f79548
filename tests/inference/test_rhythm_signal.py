"""Raw-ECG rhythm calls on real recordings: VF in cudb, motion/muscle noise in nstdb.

Data use: the VF model was fitted on all cudb records, so the cudb check is
a training-set check of the streaming path (the record-wise validation is in
``inference/rhythm_vf_model.py``); the nstdb ``em`` and ``ma`` noise records
were fitted on their first halves only, and are tested here on their second
halves.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from inference.pipeline import BedAnalyzer
from inference.rhythm import analyze_rhythm
from inference.rhythm_signal import VF_FEATURES, SignalStage, vf_features, vf_probability

DATA = Path("/work/shared/data")
pytestmark = pytest.mark.skipif(not (DATA / "cudb").exists(), reason="PhysioNet data not present")


def detected_beats(x: np.ndarray, fs: float):
    a = BedAnalyzer(fs, 1, None)
    step = int(10 * fs)
    beats = []
    for s in range(0, len(x), step):
        beats += a.push(x[s : s + step])
    return beats + a.flush()


def test_real_vf_is_called_within_six_seconds():
    # cu01: one VF episode, '[' at 214.2 s; an excerpt from 150 s to 260 s.
    rec = wfdb.rdrecord(str(DATA / "cudb" / "cu01"))
    ann = wfdb.rdann(str(DATA / "cudb" / "cu01"), "atr")
    fs = float(rec.fs)
    start = int(150 * fs)
    x = rec.p_signal[start : int(260 * fs), 0].astype(np.float64)
    onset = int(ann.sample[list(ann.symbol).index("[")]) - start
    episodes = analyze_rhythm(detected_beats(x, fs), x, fs, classified=False)
    vf = [e for e in episodes if e.kind == "vf"]
    assert vf, [e.kind for e in episodes]
    first = vf[0]
    assert first.alarm_sample is not None
    assert (first.alarm_sample - onset) / fs <= 6.0
    assert abs(first.onset_sample - onset) / fs <= 6.0
    assert first.latching
    assert not any(e.kind == "asystole" for e in episodes)


@pytest.mark.parametrize("noise", ["em", "ma"])
def test_electrode_motion_and_muscle_noise_is_not_arrest(noise: str):
    rec = wfdb.rdrecord(str(DATA / "nstdb" / noise), channels=[0])
    fs = float(rec.fs)
    x = rec.p_signal[:, 0].astype(np.float64)
    x = x[len(x) // 2 :]  # held out from the VF fit
    episodes = analyze_rhythm(detected_beats(x, fs), x, fs, classified=False)
    kinds = {e.kind for e in episodes}
    assert "vf" not in kinds and "asystole" not in kinds, kinds


def test_signal_stage_summaries_do_not_depend_on_block_size():
    rec = wfdb.rdrecord(str(DATA / "cudb" / "cu26"), sampfrom=int(195 * 250), sampto=int(215 * 250))
    x = rec.p_signal[:, 0].astype(np.float64)  # VF with invalid (NaN) samples
    assert np.isnan(x).any()
    runs = []
    for block in (7, 250, len(x)):
        stage = SignalStage(250.0)
        out = []
        for s in range(0, len(x), block):
            out += stage.push(x[s : s + block])
        runs.append(out)
    assert runs[0] == runs[1] == runs[2]
    assert len(runs[0]) == 20
    assert len(runs[0][-1].features) == len(VF_FEATURES)


def test_vf_features_tell_a_sine_from_a_qrs_train():
    fs = 250.0
    t = np.arange(int(4 * fs)) / fs
    sine = 0.5 * np.sin(2 * np.pi * 5.0 * t)
    qrs = sum(np.exp(-0.5 * ((t - b) / 0.012) ** 2) for b in np.arange(0.3, 4, 0.8))
    f_sine = vf_features(sine, sine, fs)
    f_qrs = vf_features(qrs, qrs, fs)
    assert f_sine[1] == pytest.approx(5.0, abs=0.2)  # dominant frequency
    assert f_sine[0] > f_qrs[0]  # occupancy
    assert f_sine[4] < f_qrs[4]  # leakage
    from inference.rhythm_signal import with_history

    assert vf_probability(with_history(f_qrs, f_qrs)) < 0.5
