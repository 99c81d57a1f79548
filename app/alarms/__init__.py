"""Vigil's alarm system, free of Qt: state machine, visual timing, tones and audio.

The Qt views of it live in ``app/alarms/ui`` (owned by the UI).  Conditions come
from analyzers as :class:`~inference.conditions.AlarmCondition` (re-exported here).
"""

from app.alarms.audio import AudioOut, AudioSink, BurstScheduler
from app.alarms.manager import (
    LATCHING_KINDS,
    AlarmLogEntry,
    AlarmManager,
    AlarmSettings,
    AlarmView,
    BedAlarmDisplay,
)
from app.alarms.tones import TONES, ToneSpec, render_burst, tone_spec
from app.alarms.visual import COLOUR, FLASH_HZ, TEXT_COLOUR, indicator_lit
from inference.conditions import AlarmCondition, Priority

__all__ = [
    "COLOUR",
    "FLASH_HZ",
    "LATCHING_KINDS",
    "TEXT_COLOUR",
    "TONES",
    "AlarmCondition",
    "AlarmLogEntry",
    "AlarmManager",
    "AlarmSettings",
    "AlarmView",
    "AudioOut",
    "AudioSink",
    "BedAlarmDisplay",
    "BurstScheduler",
    "Priority",
    "ToneSpec",
    "indicator_lit",
    "render_burst",
    "tone_spec",
]
