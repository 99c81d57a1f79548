"""Alarm conditions that analyzers hand to the alarm manager, and their priorities.

Every analyzer (rhythm, vitals, device/technical monitors) speaks this one
vocabulary: it raises or clears an :class:`AlarmCondition` with an IEC
60601-1-8 :class:`Priority`, and :class:`app.alarms.AlarmManager` decides what
the ward sees and hears.  Nothing here imports Qt.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace


class Priority(enum.IntEnum):
    """IEC 60601-1-8 alarm priority; ``NONE`` means no alarm."""

    NONE = 0
    LOW = 1
    MEDIUM = 2
    HIGH = 3


@dataclass(frozen=True, slots=True)
class AlarmCondition:
    """An alarm condition raised or cleared by an analyzer.

    Parameters
    ----------
    bed_id
        The bed it belongs to.
    kind
        Stable lower-case name, e.g. ``"asystole"``, ``"hr_high"``,
        ``"spo2_desat"``, ``"lead_off"``; one alarm per ``(bed_id, kind)``.
    priority
        :class:`Priority` of the condition.
    message
        Clinical text naming parameter, value and limit, e.g. ``"HR 134 > 120"``.
    value, limit
        The reading that triggered it and the limit in force (None if n/a).
    latching
        Stays displayed after the condition ends until acknowledged.
    technical
        A technical alarm (lead off, signal loss, low battery), not a patient one.
    active
        True to raise (or update) the condition, False to clear it.
    t_s
        Time on the source's clock.
    source
        Which analyzer produced it.
    """

    bed_id: str
    kind: str
    priority: Priority
    message: str
    value: float | None = None
    limit: float | None = None
    latching: bool = False
    technical: bool = False
    active: bool = True
    t_s: float = 0.0
    source: str = ""

    def cleared(self, t_s: float, message: str | None = None) -> AlarmCondition:
        """The clear update for this condition at ``t_s``."""
        return replace(self, active=False, t_s=t_s, message=message or self.message)
