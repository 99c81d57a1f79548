"""Vital-sign alarms and NEWS2 for one bed, from the numerics its sensors send.

:class:`VitalsMonitor` takes :class:`~devices.frames.Numeric` readings (``hr``,
``pulse``, ``spo2``, ``rr``, ``temp``, ``nibp_sys``, ``nibp_dia``) and returns
:class:`AlarmCondition` updates (raise or clear) for the alarm manager.  It also
computes the National Early Warning Score 2 from whatever vitals the bed has.

Everything here runs on the source's clock (``Numeric.t_s``), so replay at any
speed and tests behave exactly like live monitoring.

The NEWS2 chart itself lives in :mod:`inference.news2`; :class:`Priority` and
:class:`AlarmCondition` live in :mod:`inference.conditions`.  Both are
re-exported here for older imports.

Sources
-------
- NEWS2: see :mod:`inference.news2` (RCP 2017).
- Default limits (adult ward: HR 50-120 bpm, SpO2 low 90 %, RR 8-25 /min,
  temperature 36.0-38.5 °C, NIBP systolic 90-160, diastolic 50-90 mmHg), the
  extreme brady/tachy offsets (-10/+20 bpm), the desaturation offset (-10 %),
  delays and hysteresis are **Vigil's defaults**, not taken from a standard;
  the ward sets its own per patient.
"""

from __future__ import annotations

import enum
import logging
import math
from dataclasses import dataclass, field
from typing import Final

from devices.frames import Numeric
from inference.conditions import AlarmCondition, Priority
from inference.news2 import (
    CONSCIOUSNESS_LEVELS,
    NEWS2_INPUTS,
    News2,
    News2Band,
    news2_band,
    news2_consciousness,
    news2_oxygen,
    news2_pulse,
    news2_rr,
    news2_score,
    news2_spo2,
    news2_systolic,
    news2_temperature,
)

logger = logging.getLogger(__name__)

__all__ = [
    "CONSCIOUSNESS_LEVELS",
    "HR_SOURCE_FRESH_S",
    "NEWS2_INPUTS",
    "SATSECONDS_MAX_STEP_S",
    "UNIT_DEFAULTS",
    "AlarmCondition",
    "News2",
    "News2Band",
    "ParameterTiming",
    "PatientLimits",
    "Priority",
    "VitalsMonitor",
    "VitalsSettings",
    "news2_band",
    "news2_consciousness",
    "news2_oxygen",
    "news2_pulse",
    "news2_rr",
    "news2_score",
    "news2_spo2",
    "news2_systolic",
    "news2_temperature",
]


@dataclass(frozen=True, slots=True)
class PatientLimits:
    """Per-patient alarm limits.  Defaults are Vigil's adult-ward defaults.

    Extreme limits are derived: extreme brady = ``hr_low_bpm`` minus
    ``extreme_brady_delta_bpm`` (40 bpm by default), extreme tachy =
    ``hr_high_bpm`` plus ``extreme_tachy_delta_bpm`` (140 bpm), desaturation =
    ``spo2_low_pct`` minus ``desat_delta_pct`` (80 %).  Extremes are high priority.
    """

    hr_low_bpm: float = 50.0
    hr_high_bpm: float = 120.0
    spo2_low_pct: float = 90.0
    rr_low_per_min: float = 8.0
    rr_high_per_min: float = 25.0
    temp_low_c: float = 36.0
    temp_high_c: float = 38.5
    nibp_sys_low_mmhg: float = 90.0
    nibp_sys_high_mmhg: float = 160.0
    nibp_dia_low_mmhg: float = 50.0
    nibp_dia_high_mmhg: float = 90.0
    extreme_brady_delta_bpm: float = 10.0
    extreme_tachy_delta_bpm: float = 20.0
    desat_delta_pct: float = 10.0

    def __post_init__(self) -> None:
        pairs = [
            ("hr", self.hr_low_bpm, self.hr_high_bpm),
            ("rr", self.rr_low_per_min, self.rr_high_per_min),
            ("temp", self.temp_low_c, self.temp_high_c),
            ("nibp_sys", self.nibp_sys_low_mmhg, self.nibp_sys_high_mmhg),
            ("nibp_dia", self.nibp_dia_low_mmhg, self.nibp_dia_high_mmhg),
        ]
        for name, low, high in pairs:
            if not low < high:
                raise ValueError(f"{name} low limit {low} must be below high limit {high}")
        if (
            min(self.extreme_brady_delta_bpm, self.extreme_tachy_delta_bpm, self.desat_delta_pct)
            < 0
        ):
            raise ValueError("extreme-limit offsets must be >= 0")

    @property
    def extreme_brady_bpm(self) -> float:
        """HR below which extreme bradycardia is called (high priority)."""
        return self.hr_low_bpm - self.extreme_brady_delta_bpm

    @property
    def extreme_tachy_bpm(self) -> float:
        """HR above which extreme tachycardia is called (high priority)."""
        return self.hr_high_bpm + self.extreme_tachy_delta_bpm

    @property
    def desat_pct(self) -> float:
        """SpO2 below which desaturation is called (high priority)."""
        return self.spo2_low_pct - self.desat_delta_pct


#: Unit default limit sets, by care unit.  Only the adult ward is defined.
UNIT_DEFAULTS: Final[dict[str, PatientLimits]] = {"adult_ward": PatientLimits()}


@dataclass(frozen=True, slots=True)
class ParameterTiming:
    """How long a violation must last before it is raised, and how it clears.

    Parameters
    ----------
    delay_s
        The reading must stay beyond the limit this long before the alarm is
        raised (a reading back inside the limit by ``hysteresis`` resets it).
    clear_delay_s
        Once raised, readings must stay inside the limit by ``hysteresis`` this
        long before the alarm clears, so values hovering at the limit don't chatter.
    hysteresis
        Margin, in the parameter's unit, a reading must clear the limit by.
    """

    delay_s: float = 0.0
    clear_delay_s: float = 0.0
    hysteresis: float = 0.0


def _default_max_age() -> dict[str, float]:
    # Continuous wearable readings go stale fast; NIBP and temperature are often
    # spot checks, so an hour-old reading still counts for NEWS2.
    return {
        "hr": 60.0,
        "pulse": 60.0,
        "spo2": 60.0,
        "rr": 120.0,
        "temp": 3600.0,
        "nibp_sys": 3600.0,
        "nibp_dia": 3600.0,
    }


@dataclass(frozen=True)
class VitalsSettings:
    """Delays, hysteresis and freshness (Vigil's defaults, all settable).

    ``spo2_satseconds``: when set, SpO2-low is raised once the accumulated
    depth x duration below the limit (%·s) reaches it, instead of after
    ``spo2.delay_s`` -- deep drops alarm fast, shallow dips at the limit don't.
    """

    hr: ParameterTiming = ParameterTiming(delay_s=5.0, clear_delay_s=3.0, hysteresis=2.0)
    hr_extreme: ParameterTiming = ParameterTiming(delay_s=3.0, clear_delay_s=3.0, hysteresis=2.0)
    spo2: ParameterTiming = ParameterTiming(delay_s=10.0, clear_delay_s=5.0, hysteresis=1.0)
    spo2_desat: ParameterTiming = ParameterTiming(delay_s=5.0, clear_delay_s=5.0, hysteresis=1.0)
    rr: ParameterTiming = ParameterTiming(delay_s=10.0, clear_delay_s=5.0, hysteresis=1.0)
    temp: ParameterTiming = ParameterTiming(delay_s=30.0, clear_delay_s=30.0, hysteresis=0.1)
    nibp: ParameterTiming = ParameterTiming()  # each cuff reading is a discrete measurement
    spo2_satseconds: float | None = None
    news2_alarm: bool = True
    news2_delay_s: float = 60.0
    max_age_s: dict[str, float] = field(default_factory=_default_max_age)


#: A pulse-oximeter pulse rate is used for HR alarms only while no ECG/strap HR
#: has arrived for this long.
HR_SOURCE_FRESH_S: Final = 10.0
#: Longest gap between two readings that still counts towards SatSeconds.
SATSECONDS_MAX_STEP_S: Final = 5.0


# --------------------------------------------------------------------------- limit rules


@dataclass(frozen=True, slots=True)
class _Rule:
    param: str  # which input feeds it ("hr" also takes "pulse")
    kind: str
    above: bool  # True: alarm when value > limit; False: value < limit
    priority: Priority
    limit_attr: str  # PatientLimits attribute holding the limit
    timing_attr: str  # VitalsSettings attribute holding its ParameterTiming
    label: str  # clinical words before the value, e.g. "HR", "Extreme tachy HR"
    decimals: int = 0

    def limit(self, limits: PatientLimits) -> float:
        return float(getattr(limits, self.limit_attr))

    def timing(self, settings: VitalsSettings) -> ParameterTiming:
        return getattr(settings, self.timing_attr)


_H, _M, _L = Priority.HIGH, Priority.MEDIUM, Priority.LOW
# fmt: off
_RULES: Final[tuple[_Rule, ...]] = tuple(_Rule(*row) for row in (
    ("hr", "hr_high", True, _M, "hr_high_bpm", "hr", "HR"),
    ("hr", "hr_low", False, _M, "hr_low_bpm", "hr", "HR"),
    ("hr", "hr_extreme_high", True, _H, "extreme_tachy_bpm", "hr_extreme", "Extreme tachy HR"),
    ("hr", "hr_extreme_low", False, _H, "extreme_brady_bpm", "hr_extreme", "Extreme brady HR"),
    ("spo2", "spo2_low", False, _M, "spo2_low_pct", "spo2", "SpO2"),
    ("spo2", "spo2_desat", False, _H, "desat_pct", "spo2_desat", "Desat SpO2"),
    ("rr", "rr_high", True, _M, "rr_high_per_min", "rr", "RR"),
    ("rr", "rr_low", False, _M, "rr_low_per_min", "rr", "RR"),
    ("temp", "temp_high", True, _L, "temp_high_c", "temp", "Temp", 1),
    ("temp", "temp_low", False, _L, "temp_low_c", "temp", "Temp", 1),
    ("nibp_sys", "nibp_sys_high", True, _M, "nibp_sys_high_mmhg", "nibp", "NIBP sys"),
    ("nibp_sys", "nibp_sys_low", False, _M, "nibp_sys_low_mmhg", "nibp", "NIBP sys"),
    ("nibp_dia", "nibp_dia_high", True, _M, "nibp_dia_high_mmhg", "nibp", "NIBP dia"),
    ("nibp_dia", "nibp_dia_low", False, _M, "nibp_dia_low_mmhg", "nibp", "NIBP dia"),
))
# fmt: on


class _State(enum.Enum):
    IDLE = 0
    PENDING = 1  # beyond the limit, waiting for the delay
    ACTIVE = 2
    CLEARING = 3  # raised, back inside the limit, waiting for the clear delay


@dataclass
class _RuleState:
    state: _State = _State.IDLE
    since: float = 0.0
    last_t: float = -math.inf
    deficit: float = 0.0  # SatSeconds accumulator
    raised: AlarmCondition | None = None


def _fmt(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}"


# --------------------------------------------------------------------------- monitor


class VitalsMonitor:
    """Limit alarms and NEWS2 for one bed.

    Not thread-safe: feed one bed's numerics from one thread.

    Parameters
    ----------
    bed_id
        The bed the conditions are raised for.
    limits
        Per-patient limits (default: adult ward).
    settings
        Delays, hysteresis, freshness.
    spo2_scale
        NEWS2 SpO2 scale: 1, or 2 for prescribed 88–92 % targets.
    """

    def __init__(
        self,
        bed_id: str,
        limits: PatientLimits | None = None,
        settings: VitalsSettings | None = None,
        *,
        spo2_scale: int = 1,
    ) -> None:
        self.bed_id = bed_id
        self._limits = limits or PatientLimits()
        self.settings = settings or VitalsSettings()
        self.spo2_scale = spo2_scale
        self._latest: dict[str, Numeric] = {}
        self._rules = {r.kind: _RuleState() for r in _RULES}
        self._on_oxygen: bool | None = None
        self._consciousness: str | None = None
        self._news2_raised: Priority = Priority.NONE
        self._news2_pending: tuple[Priority, float] | None = None
        self._now = -math.inf

    @property
    def limits(self) -> PatientLimits:
        """The limits in force."""
        return self._limits

    @property
    def latest(self) -> dict[str, Numeric]:
        """Latest valid reading per input name (a copy)."""
        return dict(self._latest)

    def active_kinds(self) -> tuple[str, ...]:
        """Kinds currently raised by this monitor."""
        kinds = [k for k, st in self._rules.items() if st.raised is not None]
        if self._news2_raised is not Priority.NONE:
            kinds.append("news2")
        return tuple(kinds)

    # --- inputs ----------------------------------------------------------------------

    def update(self, numeric: Numeric) -> list[AlarmCondition]:
        """Take one reading; return the raise/clear updates it causes."""
        self._now = max(self._now, numeric.t_s)
        name, value = numeric.name, numeric.value
        out: list[AlarmCondition] = []
        valid = value is not None and not math.isnan(value)
        if valid:
            self._latest[name] = numeric
        else:
            self._latest.pop(name, None)
        param, label_prefix = name, None
        if name == "pulse":
            hr = self._latest.get("hr")
            if hr is not None and numeric.t_s - hr.t_s <= HR_SOURCE_FRESH_S:
                param = ""  # an ECG/strap HR is fresh: it drives the HR alarms
            else:
                param, label_prefix = "hr", "Pulse"
        for rule in _RULES:
            if rule.param == param:
                out += self._evaluate(rule, value if valid else math.nan, numeric.t_s, label_prefix)
        out += self._evaluate_news2(numeric.t_s)
        return out

    def tick(self, t_s: float) -> list[AlarmCondition]:
        """Advance time without a reading: clear alarms whose input went stale."""
        self._now = max(self._now, t_s)
        out: list[AlarmCondition] = []
        for rule in _RULES:
            st = self._rules[rule.kind]
            max_age = self.settings.max_age_s.get(rule.param, math.inf)
            if st.state is not _State.IDLE and t_s - st.last_t > max_age:
                out += self._evaluate(rule, math.nan, t_s, None)
        out += self._evaluate_news2(t_s)
        return out

    def set_limits(self, limits: PatientLimits) -> list[AlarmCondition]:
        """Change limits; re-check the latest readings against them at once."""
        self._limits = limits
        out: list[AlarmCondition] = []
        for rule in _RULES:
            st = self._rules[rule.kind]
            reading = self._latest.get(rule.param)
            if reading is None:
                continue
            if st.raised is not None:
                # A raised alarm names the limit in force: re-raise with the new one
                # and drop it at once if the reading is now inside the new limit.
                lim = rule.limit(limits)
                inside = reading.value <= lim if rule.above else reading.value >= lim
                if inside:
                    out.append(st.raised.cleared(reading.t_s, "limit changed"))
                    self._rules[rule.kind] = _RuleState(last_t=reading.t_s)
                    continue
            out += self._evaluate(rule, reading.value, reading.t_s, None, force_update=True)
        return out

    def set_supplemental_oxygen(self, on_oxygen: bool | None) -> None:
        """Record whether the patient is on supplemental oxygen (None: unknown)."""
        self._on_oxygen = on_oxygen

    def set_consciousness(self, level: str | None) -> None:
        """Record the ACVPU level ("A", "C", "V", "P" or "U"; None: not assessed)."""
        if level is not None:
            news2_consciousness(level)  # validates
            level = level.strip().upper()[:1]
        self._consciousness = level

    # --- NEWS2 -----------------------------------------------------------------------

    def news2(self, t_s: float | None = None) -> News2:
        """NEWS2 from the readings that are fresh at ``t_s`` (default: latest reading time)."""
        now = self._now if t_s is None else t_s

        def fresh(name: str) -> float | None:
            r = self._latest.get(name)
            if r is None or now - r.t_s > self.settings.max_age_s.get(name, math.inf):
                return None
            return r.value

        pulse = fresh("hr")
        if pulse is None:
            pulse = fresh("pulse")
        return news2_score(
            rr=fresh("rr"),
            spo2=fresh("spo2"),
            on_oxygen=self._on_oxygen,
            systolic=fresh("nibp_sys"),
            pulse=pulse,
            consciousness=self._consciousness,
            temp=fresh("temp"),
            spo2_scale=self.spo2_scale,
        )

    def _evaluate_news2(self, t_s: float) -> list[AlarmCondition]:
        if not self.settings.news2_alarm:
            return []
        result = self.news2(t_s)
        # Advisory, not a bedside alarm: medium band → low priority, high band → medium.
        target = {News2Band.HIGH: Priority.MEDIUM, News2Band.MEDIUM: Priority.LOW}.get(
            result.band, Priority.NONE
        )
        if target == self._news2_raised:
            self._news2_pending = None
            return []
        if self._news2_pending is None or self._news2_pending[0] != target:
            self._news2_pending = (target, t_s)
        if t_s - self._news2_pending[1] < self.settings.news2_delay_s:
            return []
        self._news2_pending = None
        self._news2_raised = target
        cond = AlarmCondition(
            bed_id=self.bed_id,
            kind="news2",
            priority=target,
            message=result.text,
            value=float(result.score),
            limit=7.0 if result.band is News2Band.HIGH else 5.0,
            t_s=t_s,
            source="vitals",
        )
        return [cond if target is not Priority.NONE else cond.cleared(t_s)]

    # --- limit state machine -------------------------------------------------------

    def _evaluate(
        self,
        rule: _Rule,
        value: float,
        t_s: float,
        label_prefix: str | None,
        *,
        force_update: bool = False,
    ) -> list[AlarmCondition]:
        st = self._rules[rule.kind]
        timing = rule.timing(self.settings)
        limit = rule.limit(self._limits)
        if math.isnan(value):
            # No valid reading: the source raises its own technical alarm; a
            # physiological alarm we can no longer confirm is cleared.
            raised = st.raised
            self._rules[rule.kind] = _RuleState(last_t=t_s)
            return [raised.cleared(t_s, f"{raised.message} (no current reading)")] if raised else []
        violating = value > limit if rule.above else value < limit
        clearly_ok = (
            value <= limit - timing.hysteresis if rule.above else value >= limit + timing.hysteresis
        )
        step = min(max(t_s - st.last_t, 0.0), SATSECONDS_MAX_STEP_S)
        st.last_t = t_s
        label = rule.label
        if label_prefix and label.endswith("HR"):
            label = label[:-2] + label_prefix
        out: list[AlarmCondition] = []
        if st.state is _State.IDLE and violating:
            st.state, st.since, st.deficit = _State.PENDING, t_s, 0.0
            step = 0.0
        if st.state is _State.PENDING:
            if clearly_ok:
                st.state = _State.IDLE
            elif violating:
                st.deficit += abs(value - limit) * step
                if self._delay_met(rule, st, timing, t_s):
                    st.state = _State.ACTIVE
                    st.raised = self._condition(rule, label, value, limit, t_s)
                    out.append(st.raised)
        elif st.state in (_State.ACTIVE, _State.CLEARING):
            if not clearly_ok:
                st.state = _State.ACTIVE
                if force_update and st.raised is not None and st.raised.limit != limit:
                    st.raised = self._condition(rule, label, value, limit, t_s)
                    out.append(st.raised)
            else:
                if st.state is _State.ACTIVE:
                    st.state, st.since = _State.CLEARING, t_s
                if t_s - st.since >= timing.clear_delay_s:
                    assert st.raised is not None
                    out.append(st.raised.cleared(t_s))
                    self._rules[rule.kind] = _RuleState(last_t=t_s)
        return out

    def _delay_met(self, rule: _Rule, st: _RuleState, timing: ParameterTiming, t_s: float) -> bool:
        if rule.kind == "spo2_low" and self.settings.spo2_satseconds is not None:
            return st.deficit >= self.settings.spo2_satseconds
        return t_s - st.since >= timing.delay_s

    def _condition(
        self, rule: _Rule, label: str, value: float, limit: float, t_s: float
    ) -> AlarmCondition:
        sign = ">" if rule.above else "<"
        return AlarmCondition(
            bed_id=self.bed_id,
            kind=rule.kind,
            priority=rule.priority,
            message=f"{label} {_fmt(value, rule.decimals)} {sign} {_fmt(limit, rule.decimals)}",
            value=float(value),
            limit=float(limit),
            t_s=t_s,
            source="vitals",
        )
