"""Alarm sound scheduling, and playback through a real (null) device or none at all."""

from __future__ import annotations

import logging
import sys
import time

import numpy as np
import pytest

from app.alarms.audio import CUT_FADE_S, AudioOut, BurstScheduler
from app.alarms.tones import tone_spec
from inference.conditions import Priority

FS = 16000  # small buffers keep the scheduler tests fast
BLOCK = 160  # 10 ms


def pull(s: BurstScheduler, seconds: float) -> np.ndarray:
    return np.concatenate([s.frames(BLOCK) for _ in range(round(seconds * FS / BLOCK))])


def burst_starts(x: np.ndarray, min_silence_s: float = 1.0) -> list[float]:
    """Start times (s) of sound after at least ``min_silence_s`` of silence."""
    loud = np.flatnonzero(np.abs(x) > 1e-4)
    if not len(loud):
        return []
    starts = [loud[0]] + [
        b for a, b in zip(loud[:-1], loud[1:], strict=True) if b - a > min_silence_s * FS
    ]
    return [s / FS for s in starts]


def test_high_priority_repeats_after_interburst_interval() -> None:
    s = BurstScheduler(FS)
    s.set_sounding(Priority.HIGH)
    x = pull(s, 14.0)
    spec = tone_spec(Priority.HIGH)
    period = spec.duration_ms() / 1e3 + spec.interburst_s
    starts = burst_starts(x)
    assert starts[0] == pytest.approx(0.0, abs=1e-3)
    assert np.diff(starts) == pytest.approx([period] * (len(starts) - 1), abs=2 / FS)
    assert len(starts) == 3  # 0, 5.54, 11.08 s


def test_silencing_cuts_the_burst_within_a_block() -> None:
    s = BurstScheduler(FS)
    s.set_sounding(Priority.HIGH)
    pull(s, 0.05)
    s.set_sounding(Priority.NONE)
    x = pull(s, 3.0)
    loud = np.flatnonzero(np.abs(x) > 1e-4)
    assert loud.max() / FS <= CUT_FADE_S + BLOCK / FS


def test_escalation_starts_high_without_waiting_for_the_medium_interval() -> None:
    s = BurstScheduler(FS)
    s.set_sounding(Priority.MEDIUM)
    pull(s, 1.5)  # the medium burst (0.9 s) is over; its 4 s interval has begun
    s.set_sounding(Priority.HIGH)
    x = pull(s, 1.0)
    assert np.flatnonzero(np.abs(x) > 1e-4)[0] / FS <= BLOCK / FS
    assert s.bursts_started == 2


def test_one_shot_reminder_plays_once() -> None:
    s = BurstScheduler(FS)
    s.play_once(Priority.MEDIUM)
    assert s.queued_once == (Priority.MEDIUM,)
    x = pull(s, 10.0)
    assert len(burst_starts(x)) == 1
    assert s.queued_once == ()
    assert not np.any(x[int(1.0 * FS) :])


def test_audio_out_plays_through_a_real_null_device() -> None:
    pytest.importorskip("miniaudio")
    out = AudioOut(backends=("null",))
    try:
        assert out.start()
        assert out.available and out.backend == "Null"
        out.set_sounding(Priority.HIGH)
        deadline = time.monotonic() + 3.0
        while out.scheduler.bursts_started == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert out.scheduler.bursts_started >= 1
        assert out.scheduler.frames_rendered > 0
    finally:
        out.close()
    assert not out.available
    out.close()  # idempotent


def test_no_sound_device_falls_back_to_silence_and_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    pytest.importorskip("miniaudio")
    foreign = "coreaudio" if sys.platform.startswith("win") else "wasapi"  # not on this OS
    out = AudioOut(backends=(foreign,))
    with caplog.at_level(logging.WARNING, logger="app.alarms.audio"):
        assert not out.start()
        assert not out.start()
        out.set_sounding(Priority.HIGH)
        out.play_once(Priority.LOW)
        out.close()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "visual only" in warnings[0].getMessage()
    assert out.backend == "none" and not out.available


def test_missing_library_falls_back_to_silence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "miniaudio", None)  # import now raises ImportError
    out = AudioOut()
    assert not out.start()
    out.set_sounding(Priority.MEDIUM)
    out.close()
