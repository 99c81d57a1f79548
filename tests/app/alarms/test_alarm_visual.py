"""IEC 60601-1-8 visual flash timing as a pure function of time."""

from __future__ import annotations

import numpy as np
import pytest

from app.alarms.visual import COLOUR, FLASH_HZ, indicator_lit
from inference.conditions import Priority


def lit_series(priority: Priority, seconds: float, onset: float = 0.0) -> np.ndarray:
    t = onset + np.arange(0, seconds, 0.001)
    return np.array([indicator_lit(priority, float(x), onset) for x in t])


@pytest.mark.parametrize(
    ("priority", "iec_range_hz"),
    [(Priority.HIGH, (1.4, 2.8)), (Priority.MEDIUM, (0.4, 0.8))],
)
def test_flash_rate_and_duty(priority: Priority, iec_range_hz: tuple[float, float]) -> None:
    s = lit_series(priority, 10.0, onset=123.4)
    rises = np.count_nonzero(np.diff(s.astype(int)) == 1) + 1  # lit at onset counts
    hz = rises / 10.0
    assert hz == pytest.approx(FLASH_HZ[priority])
    assert iec_range_hz[0] <= hz <= iec_range_hz[1]
    assert s.mean() == pytest.approx(0.5, abs=0.01)  # 50 % duty (IEC: 20-60 %)


def test_high_flashes_at_2_hz_starting_lit() -> None:
    assert indicator_lit(Priority.HIGH, 10.0, onset_s=10.0)
    assert indicator_lit(Priority.HIGH, 10.24, onset_s=10.0)
    assert not indicator_lit(Priority.HIGH, 10.26, onset_s=10.0)
    assert indicator_lit(Priority.HIGH, 10.5, onset_s=10.0)
    # before the onset (clock skew) the phase still wraps correctly
    assert not indicator_lit(Priority.HIGH, 9.9, onset_s=10.0)


def test_low_is_steady_and_none_is_dark() -> None:
    assert lit_series(Priority.LOW, 5.0).all()
    assert not lit_series(Priority.NONE, 5.0).any()
    assert set(COLOUR) == {Priority.HIGH, Priority.MEDIUM, Priority.LOW}
