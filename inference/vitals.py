"""Vital-sign alarms and NEWS2 for one bed, from the numerics its sensors send.

:class:`VitalsMonitor` takes :class:`~devices.frames.Numeric` readings (``hr``,
``pulse``, ``spo2``, ``rr``, ``temp``, ``nibp_sys``, ``nibp_dia``) and returns
:class:`AlarmCondition` updates (raise or clear) for the alarm manager.  It also
computes the National Early Warning Score 2 from whatever vitals the bed has.

Everything here runs on the source's clock (``Numeric.t_s``), so replay at any
speed and tests behave exactly like live monitoring.

Sources
-------
- NEWS2 scoring chart and clinical-risk thresholds: Royal College of Physicians,
  *National Early Warning Score (NEWS) 2: Standardising the assessment of
  acute-illness severity in the NHS*, updated report of a working party,
  London: RCP, 2017 (Chart 1 scoring, Chart 2 thresholds and triggers).
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
from dataclasses import dataclass, field, replace
from typing import Final

from devices.frames import Numeric

logger = logging.getLogger(__name__)


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


# --------------------------------------------------------------------------- NEWS2


class News2Band(enum.Enum):
    """NEWS2 clinical risk (RCP 2017, Chart 2)."""

    LOW = "low"
    LOW_MEDIUM = "low-medium"
    MEDIUM = "medium"
    HIGH = "high"


#: NEWS2 input names, in chart order, as shown to the nurse when missing.
NEWS2_INPUTS: Final = ("RR", "SpO2", "air/oxygen", "BP", "pulse", "consciousness", "temperature")
#: ACVPU: Alert scores 0; new Confusion, Voice, Pain, Unresponsive score 3.
CONSCIOUSNESS_LEVELS: Final = ("A", "C", "V", "P", "U")


def _round(value: float, decimals: int = 0) -> float:
    # The chart uses whole numbers (one decimal for temperature); round half up
    # so 20.5 /min scores like 21, not like 20 (Python's round() is half-even).
    scale = 10**decimals
    return math.floor(value * scale + 0.5) / scale


def news2_rr(rr_per_min: float) -> int:
    """NEWS2 respiration-rate score: ≤8 → 3, 9–11 → 1, 12–20 → 0, 21–24 → 2, ≥25 → 3."""
    v = _round(rr_per_min)
    if v <= 8:
        return 3
    if v <= 11:
        return 1
    if v <= 20:
        return 0
    if v <= 24:
        return 2
    return 3


def news2_spo2(spo2_pct: float, *, scale: int = 1, on_oxygen: bool = False) -> int:
    """NEWS2 SpO2 score, scale 1 (default) or scale 2 (hypercapnic respiratory failure).

    Scale 1: ≤91 → 3, 92–93 → 2, 94–95 → 1, ≥96 → 0.
    Scale 2: ≤83 → 3, 84–85 → 2, 86–87 → 1, 88–92 (or ≥93 on air) → 0,
    93–94 on oxygen → 1, 95–96 on oxygen → 2, ≥97 on oxygen → 3.
    """
    v = _round(spo2_pct)
    if scale == 1:
        return 3 if v <= 91 else 2 if v <= 93 else 1 if v <= 95 else 0
    if scale != 2:
        raise ValueError(f"NEWS2 SpO2 scale must be 1 or 2, got {scale}")
    if v <= 83:
        return 3
    if v <= 85:
        return 2
    if v <= 87:
        return 1
    if v <= 92 or not on_oxygen:
        return 0
    return 1 if v <= 94 else 2 if v <= 96 else 3


def news2_oxygen(on_oxygen: bool) -> int:
    """NEWS2 air-or-oxygen score: supplemental oxygen → 2, air → 0."""
    return 2 if on_oxygen else 0


def news2_systolic(sys_mmhg: float) -> int:
    """NEWS2 systolic BP score: ≤90 → 3, 91–100 → 2, 101–110 → 1, 111–219 → 0, ≥220 → 3."""
    v = _round(sys_mmhg)
    if v <= 90:
        return 3
    if v <= 100:
        return 2
    if v <= 110:
        return 1
    return 0 if v <= 219 else 3


def news2_pulse(pulse_bpm: float) -> int:
    """NEWS2 pulse score: ≤40 → 3, 41–50 → 1, 51–90 → 0, 91–110 → 1, 111–130 → 2, ≥131 → 3."""
    v = _round(pulse_bpm)
    if v <= 40:
        return 3
    if v <= 50:
        return 1
    if v <= 90:
        return 0
    if v <= 110:
        return 1
    return 2 if v <= 130 else 3


def news2_consciousness(level: str) -> int:
    """NEWS2 consciousness score (ACVPU): A → 0; C, V, P, U → 3."""
    level = level.strip().upper()[:1]
    if level not in CONSCIOUSNESS_LEVELS:
        raise ValueError(f"consciousness must be one of {CONSCIOUSNESS_LEVELS}, got {level!r}")
    return 0 if level == "A" else 3


def news2_temperature(temp_c: float) -> int:
    """NEWS2 temperature score: ≤35.0 → 3, 35.1–36.0 → 1, 36.1–38.0 → 0, 38.1–39.0 → 1, ≥39.1 → 2."""
    v = _round(temp_c, 1)
    if v <= 35.0:
        return 3
    if v <= 36.0:
        return 1
    if v <= 38.0:
        return 0
    return 1 if v <= 39.0 else 2


@dataclass(frozen=True, slots=True)
class News2:
    """A NEWS2 result; partial when inputs are missing (the score is then a lower bound).

    Attributes
    ----------
    score
        Sum of the available parameter scores.
    subscores
        ``(input name, score)`` pairs for the inputs that were available.
    missing
        Input names (from :data:`NEWS2_INPUTS`) with no current value.
    band
        Clinical risk from the available inputs (a lower bound when partial).
    """

    score: int
    subscores: tuple[tuple[str, int], ...]
    missing: tuple[str, ...]
    band: News2Band

    @property
    def partial(self) -> bool:
        """True when at least one input is missing."""
        return bool(self.missing)

    @property
    def available(self) -> bool:
        """True when at least one input was scored."""
        return bool(self.subscores)

    @property
    def text(self) -> str:
        """E.g. ``"NEWS2 6 (medium)"`` or ``"NEWS2 ≥ 3 (low-medium) partial, missing: BP, consciousness"``."""
        if not self.available:
            return "NEWS2 — no inputs"
        if not self.partial:
            return f"NEWS2 {self.score} ({self.band.value})"
        return (
            f"NEWS2 ≥ {self.score} ({self.band.value}) partial, missing: {', '.join(self.missing)}"
        )


def _valid(x: float | None) -> float | None:
    return None if x is None or math.isnan(x) else float(x)


def news2_band(score: int, max_single: int) -> News2Band:
    """Clinical risk: ≥7 high, 5–6 medium, a 3 in any single parameter low-medium, else low."""
    if score >= 7:
        return News2Band.HIGH
    if score >= 5:
        return News2Band.MEDIUM
    if max_single >= 3:
        return News2Band.LOW_MEDIUM
    return News2Band.LOW


def news2_score(
    *,
    rr: float | None = None,
    spo2: float | None = None,
    on_oxygen: bool | None = None,
    systolic: float | None = None,
    pulse: float | None = None,
    consciousness: str | None = None,
    temp: float | None = None,
    spo2_scale: int = 1,
) -> News2:
    """NEWS2 from whatever inputs are given; None or NaN inputs are reported missing."""

    parts: list[tuple[str, int]] = []
    missing: list[str] = []

    def add(name: str, score: int | None) -> None:
        if score is None:
            missing.append(name)
        else:
            parts.append((name, score))

    rr_, spo2_, sys_, pulse_, temp_ = (_valid(x) for x in (rr, spo2, systolic, pulse, temp))
    add("RR", None if rr_ is None else news2_rr(rr_))
    oxy = bool(on_oxygen)
    add("SpO2", None if spo2_ is None else news2_spo2(spo2_, scale=spo2_scale, on_oxygen=oxy))
    add("air/oxygen", None if on_oxygen is None else news2_oxygen(on_oxygen))
    add("BP", None if sys_ is None else news2_systolic(sys_))
    add("pulse", None if pulse_ is None else news2_pulse(pulse_))
    add("consciousness", None if consciousness is None else news2_consciousness(consciousness))
    add("temperature", None if temp_ is None else news2_temperature(temp_))
    total = sum(s for _, s in parts)
    band = news2_band(total, max((s for _, s in parts), default=0))
    return News2(total, tuple(parts), tuple(missing), band)


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
