"""Rhythm-episode explanations: RR figures, per-beat contributions, P waves on real AF."""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pytest
import wfdb

from explain.rhythm import explain_episode, explain_rhythm, rr_figures
from inference.beats import AAMI_CLASS_OF_SYMBOL

FS = 360.0


@dataclass(frozen=True)
class B:
    sample_index: int
    symbol: str
    probabilities: tuple[float, ...]


def _beats(rr_s: list[float], symbols: str, p_main: float = 0.95) -> list[B]:
    samples = np.round(np.cumsum([1.0, *rr_s]) * FS).astype(int)
    out = []
    for s, sym in zip(samples, symbols, strict=True):
        probs = [0.01] * 5
        probs["NSVFQ".index(sym)] = p_main
        out.append(B(int(s), sym, tuple(probs)))
    return out


def test_rr_figures_of_known_intervals():
    f = rr_figures(np.array([0.8, 0.9, 0.8, 0.9, 0.8]))
    assert f["mean_rr_ms"] == pytest.approx(840.0)
    assert f["rate_bpm"] == pytest.approx(60 / 0.84)
    assert f["rmssd_ms"] == pytest.approx(100.0)
    assert f["pnn50"] == 1.0  # every successive difference is 100 ms
    assert f["irregular_share"] == 1.0  # 100 ms > 10 % of 840 ms
    assert f["sdnn_ms"] == pytest.approx(1000 * np.std([0.8, 0.9, 0.8, 0.9, 0.8], ddof=1))
    assert rr_figures(np.array([]))["rmssd_ms"] is None


def test_vt_run_names_its_beats_and_its_weakest():
    beats = _beats([0.8, 0.8, 0.4, 0.4, 0.4, 0.4, 0.4, 0.8], "NNVVVVVVN")
    weak = beats[5]
    beats[5] = B(weak.sample_index, "V", (0.2, 0.01, 0.7, 0.05, 0.04))
    exp = explain_rhythm("vt", beats[2].sample_index, beats[7].sample_index, beats, FS)
    assert exp.driving_class == "V" and exp.class_counts["V"] == 6
    assert sum(b["contribution"] for b in exp.beats) == pytest.approx(1.0)
    assert exp.beats[3]["contribution"] < exp.beats[0]["contribution"]  # the 0.7 beat
    assert exp.rr["rate_bpm"] == pytest.approx(150, abs=1)
    assert exp.summary.startswith("Ventricular tachycardia: 6 of 6 beats called V at 150 bpm")
    assert "least certain 0.70" in exp.summary
    json.loads(exp.to_json())


def test_af_contributions_come_from_irregular_rr_between_non_ectopic_beats():
    rng = np.random.default_rng(0)
    rr = list(rng.uniform(0.4, 1.0, 30))
    symbols = "N" * 10 + "V" + "N" * 20
    beats = _beats(rr, symbols)
    exp = explain_rhythm("af", beats[0].sample_index, beats[-1].sample_index, beats, FS)
    assert exp.driving_class is None
    assert sum(b["contribution"] for b in exp.beats) == pytest.approx(1.0)
    v_at = symbols.index("V")
    # Intervals touching the V beat are not part of the rhythm's RR series.
    assert exp.beats[v_at]["contribution"] == 0.0 and exp.beats[v_at + 1]["contribution"] == 0.0
    assert exp.rr["n_intervals"] == 30 - 2
    assert exp.summary.startswith("Atrial fibrillation: irregularly irregular RR (RMSSD")
    # Regular sinus rhythm: no irregularity to speak of.
    calm = explain_rhythm("af", 0, 40 * int(FS), _beats([0.8] * 30, "N" * 31), FS)
    assert calm.rr["rmssd_ms"] == pytest.approx(0.0, abs=1.0)
    assert "irregularly irregular" not in calm.summary


def test_episode_objects_and_long_episodes():
    @dataclass
    class Episode:
        kind: str
        onset_sample: int
        offset_sample: int | None

    beats = _beats([0.75] * 200, "N" * 201)
    exp = explain_episode(Episode("brady", beats[0].sample_index, None), beats, FS)
    assert exp.offset_s - exp.onset_s == pytest.approx(60.0)  # first minute of a long episode
    assert exp.summary.startswith("Bradycardia: ")


def _record_beats(record: str, start_s: float, stop_s: float):
    path = str(
        __import__("pathlib").Path(__file__).resolve().parents[2] / "resources/demo" / record
    )
    rec = wfdb.rdrecord(path, sampfrom=0, sampto=int(stop_s * FS) + 400)
    ann = wfdb.rdann(path, "atr", sampto=int(stop_s * FS))
    beats = []
    for s, sym in zip(ann.sample, ann.symbol, strict=True):
        if sym in AAMI_CLASS_OF_SYMBOL and s >= start_s * FS - 2 * FS:
            cls = AAMI_CLASS_OF_SYMBOL[sym]
            probs = [0.0] * 5
            probs["NSVFQ".index(cls)] = 1.0
            beats.append(B(int(s), cls, tuple(probs)))
    return rec.p_signal.T, beats


def test_real_af_has_no_p_waves_and_sinus_rhythm_has_them():
    leads, beats = _record_beats("201", 100.0, 130.0)  # (AFIB in the reference)
    af = explain_rhythm("af", int(100 * FS), int(130 * FS), beats, FS, leads=leads)
    checked = [b["p_wave"] for b in af.beats if b["p_wave"] is not None]
    assert len(checked) >= 20 and np.mean(checked) <= 0.3
    assert "no P wave in" in af.summary
    leads, beats = _record_beats("201", 400.0, 430.0)  # (N in the reference)
    sinus = explain_rhythm("af", int(400 * FS), int(430 * FS), beats, FS, leads=leads)
    checked = [b["p_wave"] for b in sinus.beats if b["p_wave"] is not None]
    assert np.mean(checked) >= 0.7
    assert af.rr["rmssd_ms"] > 2 * sinus.rr["rmssd_ms"]
