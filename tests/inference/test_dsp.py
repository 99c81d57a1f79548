"""Causal streaming filters and resampling (inference.dsp)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from inference.dsp import (
    StreamingFilter,
    StreamingMovingRms,
    design_bandpass,
    design_highpass,
    design_lowpass,
    filter_causal,
    rational_ratio,
    resample,
    window_max,
)

FS = 360.0


def _ecg_like(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) / FS
    return 0.8 + 0.3 * np.sin(2 * np.pi * 0.3 * t) + rng.normal(0, 0.05, n)


def _stream(sos: np.ndarray, x: np.ndarray, sizes: list[int]) -> np.ndarray:
    filt = StreamingFilter(sos)
    out, i = [], 0
    for size in sizes:
        out.append(filt.process(x[i : i + size]))
        i += size
    out.append(filt.process(x[i:]))
    return np.concatenate(out)


@settings(max_examples=40, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=700), min_size=1, max_size=30))
def test_streaming_blocks_equal_batch_exactly(sizes: list[int]) -> None:
    sos = design_bandpass(FS, 5.0, 20.0)
    x = _ecg_like(6000)
    x[1000:1300] = np.nan  # a gap inside the data
    x[4000] = np.inf  # and a single bad sample
    np.testing.assert_array_equal(_stream(sos, x, sizes), filter_causal(sos, x))


def test_batch_matches_scipy_with_steady_state_start() -> None:
    sos = design_bandpass(FS, 5.0, 20.0)
    x = _ecg_like(4000, seed=3)
    expected, _ = signal.sosfilt(sos, x, zi=signal.sosfilt_zi(sos) * x[0])
    np.testing.assert_allclose(filter_causal(sos, x), expected, rtol=0, atol=1e-12)


def test_dc_offset_gives_no_start_transient() -> None:
    y = filter_causal(design_bandpass(FS, 5.0, 20.0), np.full(2000, 1.7))
    assert np.max(np.abs(y)) < 1e-9


def test_gap_does_not_poison_the_state() -> None:
    sos = design_highpass(FS, 0.5)
    x = _ecg_like(5000, seed=1)
    x[2000:2500] = np.nan
    y = filter_causal(sos, x)
    assert np.all(np.isnan(y[2000:2500]))
    assert np.all(np.isfinite(y[:2000])) and np.all(np.isfinite(y[2500:]))
    # After the gap the filter starts afresh, as if the data began there.
    np.testing.assert_array_equal(y[2500:], filter_causal(sos, x[2500:]))


def test_reset_restarts_from_next_sample() -> None:
    sos = design_lowpass(FS, 40.0)
    x = _ecg_like(1000, seed=2)
    filt = StreamingFilter(sos)
    filt.process(x[:500])
    filt.reset()
    np.testing.assert_array_equal(filt.process(x[500:]), filter_causal(sos, x[500:]))


@settings(max_examples=30, deadline=None)
@given(sizes=st.lists(st.integers(min_value=0, max_value=400), min_size=1, max_size=20))
def test_moving_rms_is_exact_for_any_block_split(sizes: list[int]) -> None:
    x = np.random.default_rng(4).normal(0, 30.0, 3000)
    whole = StreamingMovingRms(36, 1e4).process(x)
    rms = StreamingMovingRms(36, 1e4)
    parts, i = [], 0
    for size in sizes:
        parts.append(rms.process(x[i : i + size]))
        i += size
    parts.append(rms.process(x[i:]))
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    naive = np.sqrt(np.convolve(x * x, np.ones(36))[: len(x)] / 36)
    np.testing.assert_allclose(whole, naive, rtol=1e-3, atol=1e-2)


def test_window_max_matches_naive() -> None:
    a = np.random.default_rng(6).normal(size=200)
    for width in (1, 2, 5, 18):
        expected = [a[i : i + width].max() for i in range(len(a) - width + 1)]
        np.testing.assert_array_equal(window_max(a, width), expected)
    assert len(window_max(a[:3], 5)) == 0


def test_bad_sos_shape_rejected() -> None:
    with pytest.raises(ValueError):
        StreamingFilter(np.ones((2, 5)))


@pytest.mark.parametrize("fs", [125.0, 128.0, 130.0, 250.0, 360.0, 500.0, 1000.0])
def test_bandpass_designs_at_any_rate(fs: float) -> None:
    sos = design_bandpass(fs, 5.0, 70.0)  # upper edge clipped below Nyquist at low rates
    w, h = signal.sosfreqz(sos, worN=[10.0], fs=fs)
    assert abs(h[0]) > 0.7


@pytest.mark.parametrize(
    ("fs_in", "fs_out", "expected"),
    [
        (360.0, 250.0, (25, 36)),
        (128.0, 360.0, (45, 16)),
        (130.0, 360.0, (36, 13)),
        (250.0, 250.0, (1, 1)),
    ],
)
def test_rational_ratio(fs_in: float, fs_out: float, expected: tuple[int, int]) -> None:
    assert rational_ratio(fs_in, fs_out) == expected


def test_rational_ratio_approximates_awkward_rates() -> None:
    up, down = rational_ratio(257.3, 360.0)
    assert down <= 1000
    assert abs(257.3 * up / down - 360.0) / 360.0 < 1e-5


@pytest.mark.parametrize("fs_in", [125.0, 128.0, 130.0, 250.0, 360.0, 500.0, 1000.0])
def test_resample_keeps_a_sine(fs_in: float) -> None:
    fs_out = 250.0
    t = np.arange(int(10 * fs_in)) / fs_in
    y, fs_eff = resample(np.sin(2 * np.pi * 7.0 * t), fs_in, fs_out)
    assert fs_eff == pytest.approx(fs_out)
    assert len(y) == int(np.ceil(len(t) * fs_out / fs_in))
    t_out = np.arange(len(y)) / fs_eff
    inner = slice(int(0.5 * fs_out), -int(0.5 * fs_out))
    np.testing.assert_allclose(y[inner], np.sin(2 * np.pi * 7.0 * t_out)[inner], atol=0.02)


def test_resample_marks_gaps_without_spreading_them() -> None:
    x = _ecg_like(3600)
    x[1800:1980] = np.nan  # 0.5 s gap at 5.0-5.5 s
    y, fs_eff = resample(x, FS, 250.0)
    t = np.arange(len(y)) / fs_eff
    in_gap = (t > 5.0 + 0.01) & (t < 5.5 - 0.01)
    assert np.all(np.isnan(y[in_gap]))
    far = (t < 4.9) | (t > 5.6)
    assert np.all(np.isfinite(y[far]))


def test_resample_edge_cases() -> None:
    y, fs_eff = resample(np.empty(0), 360.0, 250.0)
    assert len(y) == 0 and fs_eff == 250.0
    y, _ = resample(np.full(100, np.nan), 360.0, 250.0)
    assert len(y) == 70 and np.all(np.isnan(y))
    with pytest.raises(ValueError):
        rational_ratio(0.0, 250.0)
