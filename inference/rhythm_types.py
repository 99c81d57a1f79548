"""Rhythm episode vocabulary: kinds, priorities, settings, episodes and their updates.

Shared by :mod:`inference.rhythm_book`, :mod:`inference.rhythm_analyzer` and
:mod:`inference.rhythm` (which re-exports everything public here).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

from inference.conditions import Priority

KINDS: Final = (
    "asystole", "vf", "vt", "vt_run", "couplet", "bigeminy", "trigeminy", "pvc", "af", "afl",
    "svt", "pause", "brady", "tachy", "noise", "lead_off",
)  # fmt: skip
LATCHING: Final = frozenset({"asystole", "vf", "vt"})
TECHNICAL: Final = frozenset({"noise", "lead_off"})
#: Kinds whose calls stop while the lead is off, VF is called, or the heart has stopped.
BEAT_KINDS: Final = (
    "vt", "vt_run", "bigeminy", "trigeminy", "pvc", "af", "afl", "svt", "brady", "tachy",
)  # fmt: skip

_H, _M, _L, _N = Priority.HIGH, Priority.MEDIUM, Priority.LOW, Priority.NONE
DEFAULT_PRIORITIES: Final[dict[str, Priority]] = {
    "asystole": _H, "vf": _H, "vt": _H,
    "af": _M, "afl": _M, "pause": _M, "brady": _M, "tachy": _M,
    "svt": _L, "vt_run": _L, "bigeminy": _L, "trigeminy": _L, "pvc": _L,
    "couplet": _N, "noise": _L, "lead_off": _L,
}  # fmt: skip

#: An episode of the same kind starting within this many seconds of the last
#: one's end continues it (one alarm, not a chattering series).
DEFAULT_MERGE_S: Final[dict[str, float]] = {
    "af": 30.0, "afl": 30.0, "noise": 10.0, "lead_off": 5.0, "brady": 60.0, "tachy": 60.0,
    "bigeminy": 10.0, "trigeminy": 10.0,
    "pvc": 30.0, "svt": 5.0, "vf": 15.0, "vt": 5.0,
}  # fmt: skip


def _default_priorities() -> dict[str, Priority]:
    return dict(DEFAULT_PRIORITIES)


def _default_merge() -> dict[str, float]:
    return dict(DEFAULT_MERGE_S)


@dataclass(frozen=True)
class RhythmSettings:
    """Rhythm thresholds, delays and priorities (Vigil's defaults, all settable).

    Heart-rate limits come from :class:`~inference.vitals.PatientLimits`
    (``hr_low_bpm``/``hr_high_bpm`` and the derived extreme limits).
    """

    asystole_s: float = 4.0
    pause_s: float = 2.5
    #: A gap counts as quiet when its largest QRS-band deflection is below
    #: this share of the patient's recent beats' deflection, and below
    #: ``quiet_max_mv`` whatever the beats were like (a QRS that shrank when an
    #: electrode moved is not asystole).
    quiet_fraction: float = 0.3
    quiet_max_mv: float = 0.1
    vt_rate_bpm: float = 100.0
    vt_alarm_beats: int = 5
    run_min_beats: int = 3
    sustained_vt_s: float = 30.0
    svt_rate_bpm: float = 100.0
    svt_beats: int = 5
    pattern_cycles: int = 3
    pvc_per_min: int = 10
    af_window_beats: int = 32
    af_on_share: float = 0.55
    af_off_share: float = 0.35
    af_min_nrmssd: float = 0.08
    af_delta_fraction: float = 0.1
    #: AF needs the P waves gone: P consistency (see :mod:`inference.rhythm_pwave`)
    #: below this to start, and AF ends when it is back above ``af_p_return``.
    af_max_p_consistency: float = 0.5
    af_p_return: float = 0.7
    vf_on_probability: float = 0.95
    vf_off_probability: float = 0.4
    vf_confirm_s: float = 2.0
    vf_release_s: float = 3.0
    hr_delay_s: float = 5.0
    hr_extreme_delay_s: float = 3.0
    hr_clear_s: float = 3.0
    hr_hysteresis_bpm: float = 2.0
    lead_off_s: float = 3.0
    lead_on_s: float = 2.0
    noise_window_s: float = 10.0
    noise_on_share: float = 0.5
    noise_clear_s: float = 5.0
    min_beat_quality: float = 0.5
    #: An alarm stays raised at least this long, so a short event is seen.
    alarm_hold_s: float = 10.0
    priorities: dict[str, Priority] = field(default_factory=_default_priorities)
    merge_s: dict[str, float] = field(default_factory=_default_merge)

    def __post_init__(self) -> None:
        if not 3.0 <= self.asystole_s <= 10.0:
            raise ValueError(f"asystole delay must be 3-10 s, got {self.asystole_s}")
        if not 1.5 <= self.pause_s < self.asystole_s:
            raise ValueError(f"pause must be 1.5 s to the asystole delay, got {self.pause_s}")
        if self.vt_alarm_beats < self.run_min_beats:
            raise ValueError("vt_alarm_beats must be at least run_min_beats")


@dataclass(frozen=True, slots=True)
class Episode:
    """One rhythm episode or event.

    Parameters
    ----------
    kind
        One of :data:`KINDS`.
    onset_sample, offset_sample
        Absolute samples of the primary lead; ``offset_sample`` is None while it lasts.
    alarm_sample
        Sample at which the live analyzer raised (or would raise) its alarm;
        None when it did not alarm.
    priority
        IEC 60601-1-8 priority of its alarm (``NONE``: logged, never alarms).
    message
        Clinical text, e.g. ``"VTach 7 beats 162 bpm"``.
    value, limit
        The measured value and limit in force, when there are such.
    episode_id
        Running number within the analyzer.
    """

    kind: str
    onset_sample: int
    offset_sample: int | None
    alarm_sample: int | None
    priority: Priority
    message: str
    value: float | None = None
    limit: float | None = None
    episode_id: int = 0

    @property
    def latching(self) -> bool:
        """Lethal arrhythmia: its alarm latches."""
        return self.kind in LATCHING

    @property
    def technical(self) -> bool:
        """A technical condition (noise, lead off), not a patient one."""
        return self.kind in TECHNICAL


#: ``EpisodeUpdate.change`` values.
ONSET, ALARM, UPDATE, OFFSET, CLEAR = "onset", "alarm", "update", "offset", "clear"


@dataclass(frozen=True, slots=True)
class EpisodeUpdate:
    """A change to an episode, decided at ``sample`` (the analyzer's clock).

    ``change``: ``onset`` (began), ``alarm`` (raise its alarm now), ``update``
    (new value/text of a raised alarm), ``offset`` (ended), ``clear`` (its alarm
    may now clear -- at least :attr:`RhythmSettings.alarm_hold_s` after raising).
    """

    change: str
    episode: Episode
    sample: int
