"""Visual alarm signal timing (IEC 60601-1-8), as pure functions of time.

IEC 60601-1-8 visual alarm signals: high priority red, flashing at 1.4-2.8 Hz;
medium priority yellow, flashing at 0.4-0.8 Hz; low priority cyan or yellow,
steady (constantly on); duty cycle 20-60 % for the flashing ones.  Vigil uses
2.0 Hz and 0.6 Hz at 50 % duty and cyan for low priority so that low is never
mistaken for medium.
"""

from __future__ import annotations

import math
from typing import Final

from inference.conditions import Priority

FLASH_HZ: Final = {Priority.HIGH: 2.0, Priority.MEDIUM: 0.6}
FLASH_DUTY: Final = 0.5
#: Indicator colours (sRGB hex) by priority.
COLOUR: Final = {
    Priority.HIGH: "#e0201b",  # red
    Priority.MEDIUM: "#ffd000",  # yellow
    Priority.LOW: "#00bcd4",  # cyan
}
#: Text colour readable on each indicator colour.
TEXT_COLOUR: Final = {Priority.HIGH: "#ffffff", Priority.MEDIUM: "#000000", Priority.LOW: "#000000"}


def indicator_lit(priority: Priority, t_s: float, onset_s: float = 0.0) -> bool:
    """Whether the alarm indicator of ``priority`` is lit at time ``t_s``.

    Parameters
    ----------
    priority
        The alarm's priority; ``Priority.NONE`` is never lit, LOW is always lit.
    t_s
        Now, on the same clock as ``onset_s``.
    onset_s
        When the alarm started: flashing starts with the lit phase, so a new
        alarm shows at once instead of possibly half a period later.
    """
    priority = Priority(priority)
    if priority is Priority.NONE:
        return False
    hz = FLASH_HZ.get(priority)
    if hz is None:
        return True
    phase = math.fmod((t_s - onset_s) * hz, 1.0)
    if phase < 0:
        phase += 1.0
    return phase < FLASH_DUTY
