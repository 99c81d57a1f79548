"""The bed analyzer: live (small blocks) and offline (`vigil analyze`) give the same beats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.recording import load_recording
from inference.beats import BeatClassifier
from inference.pipeline import BedAnalyzer, analyze_leads, default_model_path

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


@pytest.fixture(scope="module")
def shipped() -> BeatClassifier:
    return BeatClassifier.from_file(default_model_path())


@pytest.mark.parametrize(
    ("record", "from_s", "classes"),
    [("208", 0.0, {"N", "V", "F"}), ("201", 960.0, {"N", "V", "S"})],
)
def test_live_blocks_give_the_offline_beats(
    shipped: BeatClassifier, record: str, from_s: float, classes: set[str]
) -> None:
    # Four minutes rich in ventricular, fusion and supraventricular beats, where the
    # ensemble's shortcut, the template restarts and the beat memory all act often.
    rec = load_recording(DEMO / record)
    fs = rec.streams["ecg"].fs_hz
    a, n = int(from_s * fs), int(240 * fs)
    leads = np.vstack([rec.streams[s].samples[a : a + n] for s in ("ecg", "ecg2")])
    offline = analyze_leads(leads, fs, shipped)
    live = BedAnalyzer(fs, 2, shipped)
    rng = np.random.default_rng(3)
    beats, start = [], 0
    while start < n:  # wearable-sized blocks, uneven as radio frames arrive
        size = int(rng.integers(20, 400))
        beats.extend(live.push(leads[:, start : start + size]))
        start += size
    beats.extend(live.flush())
    assert len(offline) > 200
    assert [b.sample_index for b in beats] == [b.sample_index for b in offline]
    assert [b.symbol for b in beats] == [b.symbol for b in offline]
    np.testing.assert_allclose(
        [b.probabilities for b in beats], [b.probabilities for b in offline], atol=2e-4
    )
    assert {b.symbol for b in offline} >= classes
