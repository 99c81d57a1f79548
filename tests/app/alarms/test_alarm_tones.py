"""The generated alarm bursts, measured as audio: pulse count, timing, pitch, harmonics."""

from __future__ import annotations

import numpy as np
import pytest

from app.alarms.tones import (
    F0_RANGE_HZ,
    HARMONIC_BAND_HZ,
    HARMONIC_LEVEL_TOLERANCE_DB,
    HIGH_GROUP_GAP_RANGE_S,
    INTERBURST_RANGE_S,
    MIN_HARMONICS_IN_BAND,
    PULSE_DURATION_RANGE_MS,
    PULSE_SPACING_RANGE_MS,
    PULSES_PER_BURST,
    RISE_FRACTION_OF_TD,
    render_burst,
    tone_spec,
)
from inference.conditions import Priority

FS = 44100
PRIORITIES = (Priority.HIGH, Priority.MEDIUM, Priority.LOW)


def envelope(x: np.ndarray, f0: float, fs: int = FS) -> np.ndarray:
    """RMS envelope over two periods of the fundamental, scaled to plateau = 1."""
    w = round(2 * fs / f0)
    env = np.sqrt(np.convolve(x.astype(np.float64) ** 2, np.ones(w) / w, mode="same"))
    return env / np.percentile(env, 99)


def crossings(env: np.ndarray, level: float, fs: int = FS) -> tuple[np.ndarray, np.ndarray]:
    """Times (s) where the envelope rises through / falls through ``level``."""
    above = env >= level
    edges = np.diff(above.astype(np.int8))
    return (np.flatnonzero(edges == 1) + 1) / fs, (np.flatnonzero(edges == -1) + 1) / fs


def pulses(priority: Priority, fs: int = FS) -> tuple[np.ndarray, np.ndarray]:
    x = np.concatenate(
        [np.zeros(1000, np.float32), render_burst(priority, fs), np.zeros(1000, np.float32)]
    )
    return crossings(envelope(x, tone_spec(priority).f0_hz, fs), 0.5, fs)


@pytest.mark.parametrize("priority", PRIORITIES)
def test_pulse_count_matches_iec(priority: Priority) -> None:
    on, off = pulses(priority)
    assert len(on) == len(off) == PULSES_PER_BURST[priority]
    assert PULSES_PER_BURST == {Priority.HIGH: 10, Priority.MEDIUM: 3, Priority.LOW: 2}


@pytest.mark.parametrize("priority", PRIORITIES)
def test_pulse_duration_and_spacing_in_iec_ranges(priority: Priority) -> None:
    on, off = pulses(priority)
    td_ms = (off - on) * 1e3
    lo, hi = PULSE_DURATION_RANGE_MS[priority]
    assert np.all((td_ms >= lo) & (td_ms <= hi)), td_ms
    assert np.ptp(td_ms) < 1.0  # every pulse the same length
    assert td_ms.mean() == pytest.approx(tone_spec(priority).td_ms, abs=1.0)
    spacing_ms = (on[1:] - off[:-1]) * 1e3
    regular = spacing_ms if priority is not Priority.HIGH else spacing_ms[[0, 1, 3, 5, 6, 8]]
    lo, hi = PULSE_SPACING_RANGE_MS[priority]
    assert np.all((regular >= lo) & (regular <= hi)), regular
    # IEC: x or y may vary by at most ±5 % within a burst.
    assert np.ptp(regular) <= 0.05 * regular.mean()


def test_high_priority_3_plus_2_pattern() -> None:
    on, off = pulses(Priority.HIGH)
    td = (off - on).mean()
    ts = on[1:] - off[:-1]
    x = ts[[0, 1, 3, 5, 6, 8]].mean()
    # x x x _ x x: the 3rd-4th and 8th-9th spacings are 2x + td ...
    assert ts[2] == pytest.approx(2 * x + td, rel=0.05)
    assert ts[7] == pytest.approx(2 * x + td, rel=0.05)
    # ... and the two 5-pulse groups are 0.35-1.30 s apart.
    assert HIGH_GROUP_GAP_RANGE_S[0] <= ts[4] <= HIGH_GROUP_GAP_RANGE_S[1]
    assert ts[4] > 2 * x + td  # the group gap is audibly longer than the missing pulse


@pytest.mark.parametrize("priority", PRIORITIES)
def test_rise_time_is_10_to_20_percent_of_pulse_duration(priority: Priority) -> None:
    spec = tone_spec(priority)
    x = np.concatenate([np.zeros(1000, np.float32), render_burst(priority)])
    env = envelope(x, spec.f0_hz)
    (t10, *_), _ = crossings(env, 0.1)
    (t90, *_), _ = crossings(env, 0.9)
    (t50, *_), (f50, *_) = crossings(env, 0.5)
    rise = t90 - t10
    assert rise == pytest.approx(spec.rise_10_90_ms * 1e-3, abs=0.7e-3)
    lo, hi = RISE_FRACTION_OF_TD
    assert lo <= rise / (f50 - t50) <= hi
    # IEC: fall time <= pulse spacing - rise time (pulses don't run into each other).
    assert spec.rise_10_90_ms <= spec.spacing_ms - spec.rise_10_90_ms


def spectrum(priority: Priority) -> tuple[np.ndarray, np.ndarray]:
    x = render_burst(priority).astype(np.float64)
    mag = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return np.fft.rfftfreq(len(x), 1 / FS), mag


@pytest.mark.parametrize("priority", PRIORITIES)
def test_pitch_is_the_fundamental(priority: Priority) -> None:
    f0 = tone_spec(priority).f0_hz
    freqs, mag = spectrum(priority)
    peak = freqs[np.argmax(mag)]
    assert peak == pytest.approx(f0, abs=2.0)
    assert F0_RANGE_HZ[0] <= peak <= F0_RANGE_HZ[1]


@pytest.mark.parametrize("priority", PRIORITIES)
def test_at_least_four_harmonics_in_band_within_15_db(priority: Priority) -> None:
    f0 = tone_spec(priority).f0_hz
    freqs, mag = spectrum(priority)

    def level(f: float) -> float:
        band = (freqs > f - 5) & (freqs < f + 5)
        return 20 * np.log10(mag[band].max())

    fundamental = level(f0)
    harmonics = [
        k * f0
        for k in range(2, 12)
        if HARMONIC_BAND_HZ[0] <= k * f0 <= HARMONIC_BAND_HZ[1]
        and abs(level(k * f0) - fundamental) <= HARMONIC_LEVEL_TOLERANCE_DB
    ]
    assert len(harmonics) >= MIN_HARMONICS_IN_BAND, harmonics
    # Between harmonics there is no energy to speak of (no stray tones).
    between = level(1.5 * f0)
    assert fundamental - between > 30


@pytest.mark.parametrize("priority", PRIORITIES)
def test_burst_duration_level_and_interburst(priority: Priority) -> None:
    spec = tone_spec(priority)
    burst = render_burst(priority)
    assert burst.dtype == np.float32
    assert len(burst) == round(spec.duration_ms() * 1e-3 * FS)
    assert np.max(np.abs(burst)) == pytest.approx(0.5, abs=1e-6)
    lo, hi = INTERBURST_RANGE_S[priority]
    assert spec.interburst_s is not None and lo <= spec.interburst_s <= hi
    # All pulses equally loud (IEC: at most 10 dB between any two).
    on, off = pulses(priority)
    x = np.concatenate([np.zeros(1000, np.float32), burst, np.zeros(1000, np.float32)])
    peaks = [np.max(np.abs(x[int(a * FS) : int(b * FS)])) for a, b in zip(on, off, strict=True)]
    assert 20 * np.log10(max(peaks) / min(peaks)) < 0.5


def test_high_burst_lasts_2_54_s() -> None:
    assert len(render_burst(Priority.HIGH)) / FS == pytest.approx(2.54, abs=1e-3)


def test_other_sample_rates_keep_the_timing() -> None:
    on, off = pulses(Priority.HIGH, fs=16000)
    assert len(on) == 10
    assert (off - on).mean() * 1e3 == pytest.approx(tone_spec(Priority.HIGH).td_ms, abs=1.0)
    with pytest.raises(ValueError):
        render_burst(Priority.HIGH, sample_rate=4000)
    with pytest.raises(ValueError):
        render_burst(Priority.NONE)
