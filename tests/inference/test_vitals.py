"""Vital-sign limit alarms (delays, hysteresis) and NEWS2 (RCP 2017 chart)."""

from __future__ import annotations

import math

import pytest

from devices.frames import Numeric
from inference.conditions import AlarmCondition, Priority
from inference.news2 import (
    News2Band,
    news2_band,
    news2_consciousness,
    news2_pulse,
    news2_rr,
    news2_score,
    news2_spo2,
    news2_systolic,
    news2_temperature,
)
from inference.vitals import (
    ParameterTiming,
    PatientLimits,
    VitalsMonitor,
    VitalsSettings,
)

UNITS = {
    "hr": "bpm",
    "pulse": "bpm",
    "spo2": "%",
    "rr": "/min",
    "temp": "°C",
    "nibp_sys": "mmHg",
    "nibp_dia": "mmHg",
}


def feed(
    vm: VitalsMonitor, name: str, values: list[float], t0: float = 0.0, dt: float = 1.0
) -> list[AlarmCondition]:
    out: list[AlarmCondition] = []
    for i, v in enumerate(values):
        out += vm.update(Numeric(name, v, UNITS[name], t0 + i * dt))
    return out


def by_kind(updates: list[AlarmCondition], kind: str) -> list[AlarmCondition]:
    return [u for u in updates if u.kind == kind]


# --- NEWS2 chart (RCP 2017, Chart 1) -------------------------------------------------------


@pytest.mark.parametrize(
    ("rr", "score"),
    [
        (5, 3),
        (8, 3),
        (9, 1),
        (11, 1),
        (12, 0),
        (20, 0),
        (21, 2),
        (24, 2),
        (25, 3),
        (40, 3),
        (20.4, 0),
        (20.5, 2),
    ],
)
def test_news2_respiration_rate(rr: float, score: int) -> None:
    assert news2_rr(rr) == score


@pytest.mark.parametrize(
    ("spo2", "score"), [(85, 3), (91, 3), (92, 2), (93, 2), (94, 1), (95, 1), (96, 0), (100, 0)]
)
def test_news2_spo2_scale_1(spo2: float, score: int) -> None:
    assert news2_spo2(spo2) == score
    assert news2_spo2(spo2, on_oxygen=True) == score  # scale 1 ignores oxygen


@pytest.mark.parametrize(
    ("spo2", "on_oxygen", "score"),
    [(83, False, 3), (84, False, 2), (85, True, 2), (86, False, 1), (87, True, 1), (88, True, 0), (92, True, 0),
     (93, False, 0), (99, False, 0), (93, True, 1), (94, True, 1), (95, True, 2), (96, True, 2), (97, True, 3)],
)  # fmt: skip
def test_news2_spo2_scale_2(spo2: float, on_oxygen: bool, score: int) -> None:
    assert news2_spo2(spo2, scale=2, on_oxygen=on_oxygen) == score


@pytest.mark.parametrize(
    ("sys", "score"),
    [(70, 3), (90, 3), (91, 2), (100, 2), (101, 1), (110, 1), (111, 0), (219, 0), (220, 3)],
)
def test_news2_systolic(sys: float, score: int) -> None:
    assert news2_systolic(sys) == score


@pytest.mark.parametrize(
    ("pulse", "score"),
    [
        (35, 3),
        (40, 3),
        (41, 1),
        (50, 1),
        (51, 0),
        (90, 0),
        (91, 1),
        (110, 1),
        (111, 2),
        (130, 2),
        (131, 3),
    ],
)
def test_news2_pulse(pulse: float, score: int) -> None:
    assert news2_pulse(pulse) == score


@pytest.mark.parametrize(
    ("temp", "score"),
    [
        (34.0, 3),
        (35.0, 3),
        (35.1, 1),
        (36.0, 1),
        (36.1, 0),
        (38.0, 0),
        (38.1, 1),
        (39.0, 1),
        (39.1, 2),
        (38.04, 0),
    ],
)
def test_news2_temperature(temp: float, score: int) -> None:
    assert news2_temperature(temp) == score


def test_news2_consciousness() -> None:
    assert news2_consciousness("A") == 0
    assert [news2_consciousness(x) for x in "CVPU"] == [3, 3, 3, 3]
    with pytest.raises(ValueError):
        news2_consciousness("X")


@pytest.mark.parametrize(
    ("inputs", "score", "band"),
    [
        (dict(rr=16, spo2=97, on_oxygen=False, systolic=125, pulse=72, consciousness="A", temp=37.0), 0, News2Band.LOW),
        (dict(rr=22, spo2=93, on_oxygen=False, systolic=105, pulse=115, consciousness="A", temp=38.3), 8, News2Band.HIGH),
        (dict(rr=26, spo2=97, on_oxygen=False, systolic=125, pulse=72, consciousness="A", temp=37.0), 3, News2Band.LOW_MEDIUM),
        (dict(rr=16, spo2=97, on_oxygen=False, systolic=125, pulse=72, consciousness="V", temp=37.0), 3, News2Band.LOW_MEDIUM),
        (dict(rr=21, spo2=95, on_oxygen=True, systolic=125, pulse=72, consciousness="A", temp=37.0), 5, News2Band.MEDIUM),
        (dict(rr=21, spo2=95, on_oxygen=False, systolic=125, pulse=95, consciousness="A", temp=37.0), 4, News2Band.LOW),
        (dict(rr=24, spo2=91, on_oxygen=True, systolic=90, pulse=131, consciousness="U", temp=35.0), 19, News2Band.HIGH),
    ],
)  # fmt: skip
def test_news2_aggregate_and_band(inputs: dict, score: int, band: News2Band) -> None:
    r = news2_score(**inputs)
    assert (r.score, r.band, r.partial) == (score, band, False)
    assert r.text == f"NEWS2 {score} ({band.value})"


def test_news2_bands() -> None:
    assert news2_band(0, 0) is News2Band.LOW
    assert news2_band(4, 2) is News2Band.LOW
    assert news2_band(3, 3) is News2Band.LOW_MEDIUM
    assert news2_band(5, 2) is News2Band.MEDIUM
    assert news2_band(6, 3) is News2Band.MEDIUM
    assert news2_band(7, 1) is News2Band.HIGH


def test_partial_news2_names_the_missing_inputs() -> None:
    r = news2_score(rr=22, spo2=95, on_oxygen=False, pulse=80, temp=37.0)
    assert r.partial and r.score == 3 and r.missing == ("BP", "consciousness")
    assert r.text == "NEWS2 ≥ 3 (low) partial, missing: BP, consciousness"
    r = news2_score(spo2=math.nan)
    assert not r.available and r.text == "NEWS2 — no inputs"
    assert len(r.missing) == 7


# --- limits ----------------------------------------------------------------------------------


def test_default_limits_and_derived_extremes() -> None:
    lim = PatientLimits()
    assert (lim.hr_low_bpm, lim.hr_high_bpm, lim.spo2_low_pct) == (50, 120, 90)
    assert (lim.extreme_brady_bpm, lim.extreme_tachy_bpm, lim.desat_pct) == (40, 140, 80)
    assert PatientLimits(hr_high_bpm=150).extreme_tachy_bpm == 170
    with pytest.raises(ValueError):
        PatientLimits(hr_low_bpm=130)


def test_hr_alarm_after_delay_names_parameter_value_and_limit() -> None:
    vm = VitalsMonitor("bed1")
    updates = feed(vm, "hr", [134.0] * 5)  # t = 0..4 s: inside the 5 s delay
    assert updates == []
    (c,) = feed(vm, "hr", [134.0], t0=5.0)
    assert (c.bed_id, c.kind, c.priority, c.message, c.value, c.limit, c.active) == (
        "bed1", "hr_high", Priority.MEDIUM, "HR 134 > 120", 134.0, 120.0, True,
    )  # fmt: skip
    assert not c.latching and not c.technical


def test_extreme_tachy_is_high_priority_and_comes_with_hr_high() -> None:
    vm = VitalsMonitor("bed1")
    updates = feed(vm, "hr", [150.0] * 6)
    (ext,) = by_kind(updates, "hr_extreme_high")
    assert ext.priority is Priority.HIGH and ext.message == "Extreme tachy HR 150 > 140"
    assert ext.t_s == 3.0  # its delay is 3 s
    (hi,) = by_kind(updates, "hr_high")
    assert hi.t_s == 5.0
    updates = feed(vm, "hr", [130.0] * 4, t0=6.0)  # back under 140-2 for 3 s
    (cleared,) = updates
    assert cleared.kind == "hr_extreme_high" and not cleared.active
    assert vm.active_kinds() == ("hr_high",)


def test_extreme_brady() -> None:
    (c,) = by_kind(feed(VitalsMonitor("b"), "hr", [35.0] * 4), "hr_extreme_low")
    assert c.message == "Extreme brady HR 35 < 40" and c.priority is Priority.HIGH


def test_brief_excursion_inside_the_delay_raises_nothing() -> None:
    vm = VitalsMonitor("bed1")
    assert feed(vm, "hr", [130, 131, 132, 110, 130, 131, 132, 110, 131]) == []


def test_spo2_low_delay() -> None:
    vm = VitalsMonitor("bed1")
    assert feed(vm, "spo2", [88.0] * 10) == []  # 0..9 s
    (c,) = feed(vm, "spo2", [88.0], t0=10.0)
    assert c.kind == "spo2_low" and c.message == "SpO2 88 < 90" and c.priority is Priority.MEDIUM


def test_spo2_delay_is_settable() -> None:
    s = VitalsSettings(spo2=ParameterTiming(delay_s=20.0, clear_delay_s=5.0, hysteresis=1.0))
    vm = VitalsMonitor("bed1", settings=s)
    assert feed(vm, "spo2", [88.0] * 20) == []
    assert [c.kind for c in feed(vm, "spo2", [88.0], t0=20.0)] == ["spo2_low"]


def test_desaturation_is_high_priority() -> None:
    vm = VitalsMonitor("bed1")
    updates = feed(vm, "spo2", [78.0] * 11)
    (desat,) = by_kind(updates, "spo2_desat")
    assert (
        desat.priority is Priority.HIGH
        and desat.message == "Desat SpO2 78 < 80"
        and desat.t_s == 5.0
    )
    assert by_kind(updates, "spo2_low")[0].t_s == 10.0


def test_spo2_hovering_at_the_limit_does_not_chatter() -> None:
    vm = VitalsMonitor("bed1")
    # 88 for 12 s raises once; then 2 minutes hovering 89-90.x with single
    # readings at 91: never back above 91 for the 5 s clear delay.
    hover = [90.0, 89.0, 90.5, 91.0, 90.0, 89.5, 91.0, 90.0, 89.0, 90.5] * 12
    updates = feed(vm, "spo2", [88.0] * 12 + hover)
    assert [(u.kind, u.active) for u in updates] == [("spo2_low", True)]
    # now clearly recovered: cleared once, after 5 s at >= 91
    updates = feed(vm, "spo2", [93.0] * 7, t0=200.0)
    assert [(u.kind, u.active, u.t_s) for u in updates] == [("spo2_low", False, 205.0)]


def test_spo2_alternating_across_the_hysteresis_band_never_raises() -> None:
    vm = VitalsMonitor("bed1")
    assert feed(vm, "spo2", [89.0, 89.0, 92.0] * 40) == []  # every 3rd reading clearly fine


def test_satseconds_mode_alarms_fast_for_deep_drops_and_late_for_shallow_ones() -> None:
    s = VitalsSettings(spo2_satseconds=25.0)
    deep = feed(VitalsMonitor("b", settings=s), "spo2", [85.0] * 12)
    assert by_kind(deep, "spo2_low")[0].t_s == 5.0  # 5 % below x 5 s
    shallow = feed(VitalsMonitor("b", settings=s), "spo2", [89.0] * 30)
    assert by_kind(shallow, "spo2_low")[0].t_s == 25.0  # 1 % below x 25 s


def test_nibp_is_checked_per_measurement() -> None:
    vm = VitalsMonitor("bed1")
    (c,) = feed(vm, "nibp_sys", [172.0])
    assert c.message == "NIBP sys 172 > 160" and c.priority is Priority.MEDIUM
    (c,) = feed(vm, "nibp_sys", [150.0], t0=900.0)
    assert not c.active
    (c,) = feed(vm, "nibp_dia", [45.0])
    assert c.message == "NIBP dia 45 < 50"


def test_rr_and_temperature_messages() -> None:
    vm = VitalsMonitor("bed1")
    (c,) = feed(vm, "rr", [28.0] * 11)
    assert c.message == "RR 28 > 25"
    (c,) = feed(vm, "temp", [38.94] * 31)
    assert c.message == "Temp 38.9 > 38.5" and c.priority is Priority.LOW
    (c,) = feed(VitalsMonitor("b"), "rr", [6.0] * 11)
    assert c.message == "RR 6 < 8"


def test_invalid_reading_clears_what_can_no_longer_be_confirmed() -> None:
    vm = VitalsMonitor("bed1")
    feed(vm, "hr", [134.0] * 6)
    (c,) = feed(vm, "hr", [math.nan], t0=6.0)
    assert c.kind == "hr_high" and not c.active and "no current reading" in c.message


def test_stale_input_is_cleared_on_tick() -> None:
    vm = VitalsMonitor("bed1")
    feed(vm, "hr", [134.0] * 6)
    assert vm.tick(60.0) == []
    (c,) = vm.tick(66.0)  # last reading at 5 s, max age 60 s
    assert c.kind == "hr_high" and not c.active


def test_pulse_drives_hr_alarms_only_without_a_fresh_hr() -> None:
    vm = VitalsMonitor("bed1")
    (c,) = by_kind(feed(vm, "pulse", [134.0] * 6), "hr_high")
    assert c.message == "Pulse 134 > 120"
    vm = VitalsMonitor("bed2")
    updates = []
    for t in range(8):
        updates += vm.update(Numeric("hr", 80.0, "bpm", float(t)))
        updates += vm.update(Numeric("pulse", 134.0, "bpm", t + 0.5))
    assert updates == []


def test_changing_limits_rechecks_at_once() -> None:
    vm = VitalsMonitor("bed1")
    feed(vm, "hr", [134.0] * 6)
    (c,) = vm.set_limits(PatientLimits(hr_high_bpm=140))
    assert c.kind == "hr_high" and not c.active
    assert vm.limits.hr_high_bpm == 140
    assert feed(vm, "hr", [134.0] * 3, t0=6.0) == []
    # a lower limit while still violating re-raises with the new limit named
    feed(vm, "hr", [145.0] * 6, t0=10.0)
    (c,) = [u for u in vm.set_limits(PatientLimits(hr_high_bpm=130)) if u.kind == "hr_high"]
    assert c.active and c.message == "HR 145 > 130" and c.limit == 130


def test_monitor_news2_is_partial_until_the_nurse_enters_the_rest() -> None:
    vm = VitalsMonitor("bed1")
    for name, v in [("rr", 22.0), ("spo2", 95.0), ("hr", 80.0), ("temp", 37.0)]:
        vm.update(Numeric(name, v, UNITS[name], 0.0))
    r = vm.news2()
    assert r.missing == ("air/oxygen", "BP", "consciousness")
    vm.set_supplemental_oxygen(False)
    vm.set_consciousness("a")
    vm.update(Numeric("nibp_sys", 125.0, "mmHg", 1.0))
    r = vm.news2()
    assert not r.partial and r.score == 3 and r.band is News2Band.LOW
    # 10 min later the wearable readings are stale, the cuff reading is not
    assert vm.news2(t_s=600.0).missing == ("RR", "SpO2", "pulse")


def test_monitor_raises_news2_advisory_when_band_persists() -> None:
    vm = VitalsMonitor("bed1")
    vm.set_supplemental_oxygen(True)
    vm.set_consciousness("A")
    updates: list[AlarmCondition] = []
    for t in range(0, 70):
        for name, v in [
            ("rr", 26.0),
            ("spo2", 93.0),
            ("hr", 115.0),
            ("temp", 37.0),
            ("nibp_sys", 125.0),
        ]:
            updates += vm.update(Numeric(name, v, UNITS[name], float(t)))
    (n,) = by_kind(updates, "news2")
    assert n.priority is Priority.MEDIUM and n.value == 9 and n.message == "NEWS2 9 (high)"
    assert n.t_s == 60.0  # must persist 60 s
    updates = []
    for t in range(70, 140):
        for name, v in [("rr", 16.0), ("spo2", 97.0), ("hr", 80.0)]:
            updates += vm.update(Numeric(name, v, UNITS[name], float(t)))
    (n,) = by_kind(updates, "news2")
    assert not n.active and n.t_s == 130.0
