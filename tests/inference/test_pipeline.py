"""The bed analyzer: live (small blocks) and offline (`vigil analyze`) give the same beats."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from devices.recording import load_recording
from inference.beats import BeatClassifier
from inference.pipeline import Beat, BedAnalyzer, analyze_leads, default_model_path
from inference.rhythm import RhythmAnalyzer, analyze_rhythm, live_arrival_samples

DEMO = Path(__file__).resolve().parents[2] / "resources" / "demo"


@pytest.fixture(scope="module")
def shipped() -> BeatClassifier:
    return BeatClassifier.from_file(default_model_path())


def _demo(record: str, from_s: float, seconds: float) -> tuple[np.ndarray, float]:
    rec = load_recording(DEMO / record)
    fs = rec.streams["ecg"].fs_hz
    a, n = int(from_s * fs), int(seconds * fs)
    return np.vstack([rec.streams[s].samples[a : a + n] for s in ("ecg", "ecg2")]), fs


def _live(
    leads: np.ndarray, fs: float, clf: BeatClassifier, sizes: list[int]
) -> tuple[list[Beat], list[int]]:
    """Beats of a live run fed blocks of the given sizes (cycled), and when each came."""
    live = BedAnalyzer(fs, 2, clf)
    beats: list[Beat] = []
    arrived: list[int] = []
    start, k = 0, 0
    while start < leads.shape[1]:
        size = sizes[k % len(sizes)]
        new = live.push(leads[:, start : start + size])
        start += size
        k += 1
        beats.extend(new)
        arrived.extend([start] * len(new))
    new = live.flush()
    beats.extend(new)
    arrived.extend([leads.shape[1]] * len(new))
    return beats, arrived


@pytest.mark.parametrize(
    ("record", "from_s", "gap_s", "classes"),
    [
        ("208", 0.0, None, {"N", "V", "F"}),
        ("201", 960.0, None, {"N", "V", "S"}),
        # Signal lost for a second while the detector still learns: the peaks from
        # before the gap are reported only after it learns again.
        ("208", 2.86, (0.92, 1.94), {"N", "V", "F"}),
    ],
)
def test_live_blocks_give_the_offline_beats(
    shipped: BeatClassifier,
    record: str,
    from_s: float,
    gap_s: tuple[float, float] | None,
    classes: set[str],
) -> None:
    # Four minutes rich in ventricular, fusion and supraventricular beats, where the
    # ensemble's shortcut, the template restarts and the beat memory all act often.
    leads, fs = _demo(record, from_s, 240.0)
    if gap_s is not None:
        leads[:, int(gap_s[0] * fs) : int(gap_s[1] * fs)] = np.nan
    offline = analyze_leads(leads, fs, shipped)
    rng = np.random.default_rng(3)  # wearable-sized blocks, uneven as radio frames arrive
    beats, _ = _live(leads, fs, shipped, rng.integers(20, 400, 2000).tolist())
    assert len(offline) > 200
    assert [b.sample_index for b in beats] == [b.sample_index for b in offline]
    assert [b.symbol for b in beats] == [b.symbol for b in offline]
    np.testing.assert_allclose(
        [b.probabilities for b in beats], [b.probabilities for b in offline], atol=2e-4
    )
    assert {b.symbol for b in offline} >= classes


def test_rhythm_replay_models_when_live_beats_arrive(shipped: BeatClassifier) -> None:
    # A 6 s stop (flat line with a little noise) in record 101: the last beat before it
    # waits for the detector to settle 3 s past it; every other beat for the next one.
    leads, fs = _demo("101", 0.0, 60.0)
    stop = slice(int(20 * fs), int(26 * fs))
    rng = np.random.default_rng(4)
    leads[:, stop] = 0.01 * rng.standard_normal((2, stop.stop - stop.start))
    block = 36  # 0.1 s
    beats, arrived = _live(leads, fs, shipped, [block])
    model = live_arrival_samples([b.sample_index for b in beats], fs)
    before = max(i for i, b in enumerate(beats) if b.sample_index < stop.start)
    assert beats[before + 1].sample_index > stop.stop - 1  # the stop holds no beat
    # Outside the detector's learning periods (the first 2 s, and 2 s once it learns
    # again after 5 s without a beat), which the model leaves out.
    steady = [i for i, b in enumerate(beats) if 3 * fs < b.sample_index < stop.start]
    assert np.all(np.asarray(arrived)[steady] <= model[steady] + block)
    assert model[before] - block <= arrived[before] <= model[before] + block


def test_a_stop_raises_the_same_alarms_live_and_in_the_replay(shipped: BeatClassifier) -> None:
    # 6 s without a beat, then the rhythm resumes: live, the last beat before the stop
    # and the first ones after it reach the rhythm analyzer seconds late (classifier
    # hold, detector relearning), which must not turn the stop into "noise".
    leads, fs = _demo("101", 0.0, 60.0)
    stop = slice(int(20.6 * fs), int(26.6 * fs))  # from after the T wave of the 19.84 s beat
    noise = 0.01 * np.random.default_rng(5).standard_normal((2, stop.stop - stop.start))
    leads[:, stop] = leads[:, stop.start - 1 : stop.start] + noise  # flat at the baseline
    bed, rhythm = BedAnalyzer(fs, 2, shipped), RhythmAnalyzer(fs)
    beats: list[Beat] = []
    for a in range(0, leads.shape[1], 90):
        new = bed.push(leads[:, a : a + 90])
        beats += new
        rhythm.push(leads[0, a : a + 90], new, bed.detected_peaks, bed.settled_until)
    new = bed.flush()
    beats += new
    rhythm.push(np.empty(0), new, bed.detected_peaks, bed.settled_until)
    rhythm.finish()
    live = [(e.kind, e.onset_sample, e.alarm_sample) for e in rhythm.episodes]
    replay = [(e.kind, e.onset_sample, e.alarm_sample) for e in analyze_rhythm(beats, leads[0], fs)]
    assert [k for k, _, _ in live] == ["pause", "asystole"]
    assert live == replay
