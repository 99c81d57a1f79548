"""QRS detection: batch and streaming agree, latency bound, accuracy, quality."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inference.annotations import load_ecg, read_annotations
from inference.ec57 import compare_record
from inference.qrs import (
    LATENCY_S,
    QUALITY_FLAT,
    QUALITY_GAP,
    QUALITY_SATURATED,
    QrsParameters,
    QrsResult,
    StreamingQrsDetector,
    detect_qrs,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "mitdb").is_dir(), reason="PhysioNet data not present")


def _gauss(t: np.ndarray, centre: float, width_s: float) -> np.ndarray:
    return np.exp(-0.5 * ((t - centre) / width_s) ** 2)


def synthetic_ecg(
    fs: float,
    duration_s: float = 30.0,
    t_wave_mv: float = 0.3,
    wander_mv: float = 0.0,
    noise_mv: float = 0.01,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """ECG-like signal with P, QRS and T waves at known R peaks (RR 0.6-1.2 s)."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * fs)
    t = np.arange(n) / fs
    r_times = np.cumsum(rng.uniform(0.6, 1.2, int(2 * duration_s)))
    r_times = r_times[r_times < duration_s - 0.5]
    x = np.zeros(n)
    for r in r_times:
        near = slice(max(0, int((r - 0.4) * fs)), min(n, int((r + 0.6) * fs)))
        tt = t[near]
        x[near] += 0.15 * _gauss(tt, r - 0.16, 0.02)  # P
        x[near] += -0.15 * _gauss(tt, r - 0.025, 0.008)  # Q
        x[near] += 1.0 * _gauss(tt, r, 0.010)  # R
        x[near] += -0.25 * _gauss(tt, r + 0.025, 0.008)  # S
        x[near] += t_wave_mv * _gauss(tt, r + 0.28, 0.045)  # T
    x += wander_mv * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0, noise_mv, n)
    return x, np.round(r_times * fs).astype(np.int64)


def _matches(
    found: np.ndarray, truth: np.ndarray, fs: float, tol_s: float = 0.03
) -> tuple[int, int]:
    """(missed, extra) with a tolerance of ``tol_s``."""
    tol = tol_s * fs
    missed = sum(1 for r in truth if not np.any(np.abs(found - r) <= tol))
    extra = sum(1 for f in found if not np.any(np.abs(truth - f) <= tol))
    return missed, extra


def _stream(x: np.ndarray, fs: float, sizes: np.ndarray) -> tuple[np.ndarray, list[float]]:
    det = StreamingQrsDetector(fs)
    peaks: list[int] = []
    quality: list[float] = []
    i = 0
    for size in sizes:
        peaks += det.push(x[i : i + size])
        quality += [q for q, _ in det.take_quality()]
        i += size
    peaks += det.push(x[i:])
    peaks += det.flush()
    quality += [q for q, _ in det.take_quality()]
    return np.asarray(peaks, dtype=np.int64), quality


@pytest.mark.parametrize("fs", [125.0, 128.0, 250.0, 360.0, 500.0, 1000.0])
def test_finds_every_synthetic_beat_at_any_rate(fs: float) -> None:
    x, truth = synthetic_ecg(fs, seed=int(fs))
    result = detect_qrs(x, fs)
    assert isinstance(result, QrsResult)
    assert _matches(result.r_peaks, truth, fs) == (0, 0)
    assert np.all(np.diff(result.r_peaks) > 0)
    assert len(result.beat_quality) == len(result.r_peaks)
    assert np.all(result.quality >= 0.9)


@pytest.mark.parametrize(
    ("what", "kwargs"),
    [
        ("tall T waves", {"t_wave_mv": 0.8}),
        ("baseline wander", {"wander_mv": 0.75}),
        ("noise", {"noise_mv": 0.05}),
    ],
)
def test_robust_to(what: str, kwargs: dict[str, float]) -> None:
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=60.0, seed=7, **kwargs)
    assert _matches(detect_qrs(x, fs).r_peaks, truth, fs) == (0, 0), what


def test_strong_wander_still_detected() -> None:
    # 3 mV peak-to-peak wander: every beat found, placement within 75 ms.
    fs = 360.0
    x, truth = synthetic_ecg(fs, duration_s=60.0, seed=8, wander_mv=1.5)
    assert _matches(detect_qrs(x, fs).r_peaks, truth, fs, tol_s=0.075) == (0, 0)


def test_streaming_random_blocks_equal_batch_on_synthetic_with_gaps() -> None:
    fs = 250.0
    x, _ = synthetic_ecg(fs, duration_s=40.0, seed=3)
    x[int(12 * fs) : int(12.4 * fs)] = np.nan  # short dropout
    x[int(20 * fs) : int(23 * fs)] = np.nan  # long gap: levels are learnt again
    batch = detect_qrs(x, fs)
    rng = np.random.default_rng(5)
    peaks, quality = _stream(x, fs, rng.integers(1, 200, size=300))
    np.testing.assert_array_equal(peaks, batch.r_peaks)
    np.testing.assert_allclose(quality, batch.quality)


def test_latency_bound_sample_by_sample() -> None:
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=20.0, seed=11)
    det = StreamingQrsDetector(fs)
    delays: dict[int, int] = {}
    for i in range(len(x)):
        for r in det.push(x[i : i + 1]):
            delays[r] = i - r  # samples between the R peak and the push reporting it
    tail = det.flush()
    learned = {r: d for r, d in delays.items() if r >= 2.0 * fs}  # after the 2 s learning
    assert len(learned) >= np.count_nonzero(truth >= 2.0 * fs) - 1
    assert max(learned.values()) <= LATENCY_S * fs
    # Only peaks too close to the end for a decision are left for flush().
    assert all(r > len(x) - 1 - LATENCY_S * fs for r in tail)


def test_gap_is_reported_and_detection_resumes() -> None:
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=30.0, seed=2)
    gap = slice(int(10 * fs), int(14 * fs))
    x[gap] = np.nan
    result = detect_qrs(x, fs)
    assert not np.any((result.r_peaks >= gap.start) & (result.r_peaks < gap.stop))
    outside = truth[(truth < gap.start - 0.1 * fs) | (truth >= gap.stop + 0.1 * fs)]
    assert _matches(result.r_peaks, outside, fs)[0] == 0
    assert all(result.quality_reason[k] == QUALITY_GAP for k in range(11, 14))
    assert np.all(result.quality[11:14] == 0.0)


def test_recovers_from_an_artefact_while_learning() -> None:
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=40.0, seed=1)
    x[int(0.5 * fs) : int(0.6 * fs)] += 8.0 * np.hanning(int(0.1 * fs))  # 8 mV spike
    peaks = detect_qrs(x, fs).r_peaks
    later = truth[truth > 8.0 * fs]  # relearnt after 5 s without a beat
    assert _matches(peaks[peaks > 8.0 * fs], later, fs) == (0, 0)


def test_follows_a_fall_in_amplitude() -> None:
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=40.0, seed=1)
    x[int(20 * fs) :] *= 0.2
    peaks = detect_qrs(x, fs).r_peaks
    assert _matches(peaks, truth[truth < 20 * fs], fs, tol_s=0.03)[0] == 0
    assert _matches(peaks[peaks > 27 * fs], truth[truth > 27 * fs], fs) == (0, 0)


def test_no_beats_invented_in_asystole() -> None:
    fs = 250.0
    x, truth = synthetic_ecg(fs, duration_s=40.0, seed=1)
    a, b = int(15 * fs), int(27 * fs)
    rng = np.random.default_rng(0)
    x[a:b] = 0.05 * np.sin(2 * np.pi * np.arange(b - a) / fs) + rng.normal(0, 0.01, b - a)
    peaks = detect_qrs(x, fs).r_peaks
    assert not np.any((peaks > a + 0.1 * fs) & (peaks < b))
    assert _matches(peaks[peaks > b + 8 * fs], truth[truth > b + 8 * fs], fs) == (0, 0)


def test_flat_and_saturated_signals() -> None:
    fs = 250.0
    flat = detect_qrs(np.full(int(10 * fs), 0.3), fs)
    assert len(flat.r_peaks) == 0
    assert set(flat.quality_reason) == {QUALITY_FLAT}
    x, _ = synthetic_ecg(fs, duration_s=10.0, seed=4)
    clipped = detect_qrs(np.clip(x, -0.05, 0.05), fs)
    assert clipped.quality_reason.count(QUALITY_SATURATED) >= 8


def test_rejects_unsupported_rate_and_push_after_flush() -> None:
    with pytest.raises(ValueError):
        StreamingQrsDetector(20.0)
    det = StreamingQrsDetector(250.0)
    det.flush()
    with pytest.raises(RuntimeError):
        det.push(np.zeros(10))


def test_short_and_empty_input() -> None:
    assert len(detect_qrs(np.empty(0), 360.0).r_peaks) == 0
    assert len(detect_qrs(np.zeros(10), 360.0).quality) == 1


def _excerpt(
    db: str, record: str, start_s: float, stop_s: float
) -> tuple[np.ndarray, float, np.ndarray, tuple[str, ...]]:
    path = DATA / db / record
    rec = load_ecg(path, leads=[0])
    a, b = int(start_s * rec.fs_hz), int(stop_s * rec.fs_hz)
    ann = read_annotations(path)
    keep = (ann.samples >= a) & (ann.samples < b)
    syms = tuple(s for s, k in zip(ann.symbols, keep, strict=True) if k)
    return rec.lead(0)[a:b], rec.fs_hz, ann.samples[keep] - a, syms


@needs_data
@pytest.mark.parametrize(
    ("db", "record", "start_s", "min_ppv"),
    [
        ("mitdb", "119", 300.0, 99.0),  # ventricular bigeminy
        ("mitdb", "208", 330.0, 99.0),  # wide PVCs and fusion beats
        ("mitdb", "108", 300.0, 99.0),  # tall P waves, noise
        ("svdb", "800", 300.0, 95.0),  # 128 Hz Holter; two artefact spikes pass as beats
    ],
)
def test_real_excerpts_score_well(db: str, record: str, start_s: float, min_ppv: float) -> None:
    x, fs, ref_samples, ref_symbols = _excerpt(db, record, start_s, start_s + 60.0)
    peaks = detect_qrs(x, fs).r_peaks
    cmp = compare_record(ref_samples, ref_symbols, peaks, ["N"] * len(peaks), fs, start_s=5.0)
    assert cmp.stats.qrs_se is not None and cmp.stats.qrs_se >= 99.0
    assert cmp.stats.qrs_ppv is not None and cmp.stats.qrs_ppv >= min_ppv


@needs_data
def test_streaming_equals_batch_on_noisy_real_record() -> None:
    x, fs, _, _ = _excerpt("mitdb", "203", 600.0, 660.0)  # noisy, multiform PVCs
    x = x.copy()
    x[int(30 * fs) : int(30.5 * fs)] = np.nan
    batch = detect_qrs(x, fs)
    rng = np.random.default_rng(9)
    peaks, quality = _stream(x, fs, rng.integers(1, int(0.5 * fs), size=400))
    np.testing.assert_array_equal(peaks, batch.r_peaks)
    np.testing.assert_allclose(quality, batch.quality)


@needs_data
def test_signal_loss_ending_on_a_block_edge_is_noticed() -> None:
    # Wearable frames arrive whole: lost frames make a NaN run that ends exactly where
    # a block ends, and the detector must relearn after it as it does offline.
    x, fs, _, _ = _excerpt("mitdb", "208", 0.0, 120.0)
    x = x.copy()
    block = int(0.25 * fs)
    x[200 * block : 206 * block] = np.nan  # 1.5 s of frames lost
    batch = detect_qrs(x, fs)
    peaks, quality = _stream(x, fs, np.full(len(x) // block, block))
    np.testing.assert_array_equal(peaks, batch.r_peaks)
    np.testing.assert_allclose(quality, batch.quality)


@needs_data
def test_quality_falls_with_electrode_motion_noise() -> None:
    # nstdb 118e00: 0 dB electrode-motion noise from 5:00 to 7:00, clean 7:00-9:00.
    noisy, fs, _, _ = _excerpt("nstdb", "118e00", 300.0, 420.0)
    clean, _, _, _ = _excerpt("nstdb", "118e00", 420.0, 540.0)
    q_noisy = detect_qrs(noisy, fs).quality[5:]
    q_clean = detect_qrs(clean, fs).quality[5:]
    assert np.mean(q_clean) > 0.9
    assert np.mean(q_noisy) < 0.5


def test_detector_runs_without_rr_history() -> None:
    # rr_history=0: no overdue-beat adjustment, still a working detector.
    fs = 250.0
    t = np.arange(int(20 * fs)) / fs
    x = sum(np.exp(-0.5 * ((t - b) / 0.012) ** 2) for b in np.arange(0.5, 19.5, 0.8))
    peaks = detect_qrs(x, fs, QrsParameters(rr_history=0)).r_peaks
    assert len(peaks) >= 20
