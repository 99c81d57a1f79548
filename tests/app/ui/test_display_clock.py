"""The sweep's display clock: steady write point for bursty sources, no drift."""

from __future__ import annotations

import numpy as np

from app.ui.waveform import MAX_DISPLAY_LAG_S, DisplayClock

FRAME_S = 1 / 30


def drive(fs_hz: float, arrivals, seconds: float = 20.0) -> tuple[np.ndarray, DisplayClock, int]:
    clock, shown, end = DisplayClock(fs_hz), [], 0
    for f in range(int(seconds / FRAME_S)):
        end = arrivals(f * FRAME_S)
        shown.append(clock.advance(end, f * FRAME_S))
    return np.array(shown), clock, end


def test_polar_bursts_are_drawn_as_a_steady_sweep():
    # 73 ECG samples every 0.5615 s at 130 Hz, as a Polar H10 sends them.
    shown, clock, end = drive(130.0, lambda t: int(t / 0.5615) * 73)
    steps = np.diff(shown[len(shown) // 2 :])
    assert steps.min() >= 1 and steps.max() <= 8  # never a 73-sample jump, never a stall
    assert abs(steps.mean() - 130 * FRAME_S) < 0.3
    assert 0.3 < (end - shown[-1]) / 130 < MAX_DISPLAY_LAG_S
    assert abs(clock.burst_s - 0.5615) < 0.05


def test_smooth_and_fast_sources_stay_close_to_the_newest_sample():
    shown, _, end = drive(360.0, lambda t: int(t * 360) // 14 * 14)
    assert (end - shown[-1]) / 360 < 0.1
    shown, _, end = drive(360.0, lambda t: int(t * 360 * 4))  # replay at 4x
    assert (end - shown[-1]) / 360 < 0.5


def test_a_stalled_source_does_not_run_the_cursor_past_its_data():
    shown, _, end = drive(250.0, lambda t: int(min(t, 5.0) * 250))
    assert shown.max() <= end and shown[-1] == end
