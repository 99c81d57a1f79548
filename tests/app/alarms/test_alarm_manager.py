"""The IEC 60601-1-8 alarm state machine, driven by a fake clock.

The audio sink is the real :class:`BurstScheduler`; what it was asked to play is
read back from it.
"""

from __future__ import annotations

import math
import threading

import pytest

from app.alarms.audio import BurstScheduler
from app.alarms.manager import AlarmLogEntry, AlarmManager, AlarmSettings
from devices.frames import Numeric
from inference.conditions import AlarmCondition, Priority
from inference.vitals import VitalsMonitor


class FakeClock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, s: float) -> None:
        self.t += s


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def sink() -> BurstScheduler:
    return BurstScheduler(16000)


@pytest.fixture
def log() -> list[AlarmLogEntry]:
    return []


@pytest.fixture
def mgr(clock: FakeClock, sink: BurstScheduler, log: list[AlarmLogEntry]) -> AlarmManager:
    return AlarmManager(
        clock=clock, wall_clock=lambda: clock.t + 1.7e9, audio=sink, on_log=log.append
    )


def cond(kind: str, priority: Priority, bed: str = "bed1", **kw: object) -> AlarmCondition:
    msg = kw.pop("message", f"{kind} message")
    return AlarmCondition(bed_id=bed, kind=kind, priority=priority, message=msg, **kw)  # type: ignore[arg-type]


HR_HIGH = cond("hr_high", Priority.MEDIUM, message="HR 134 > 120", value=134.0, limit=120.0)


def test_raise_display_acknowledge_reminder(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr.submit(HR_HIGH)
    d = mgr.bed_display("bed1")
    assert (d.priority, d.message, d.flashing, d.audible, d.acknowledged) == (
        Priority.MEDIUM,
        "HR 134 > 120",
        True,
        True,
        False,
    )
    assert sink.wanted is Priority.MEDIUM and mgr.sounding_priority() is Priority.MEDIUM

    clock.advance(20)
    assert mgr.acknowledge("bed1", user="rn.okafor") == 1
    d = mgr.bed_display("bed1")
    assert d.priority is Priority.MEDIUM and d.message == "HR 134 > 120"  # still shown
    assert not d.flashing and not d.audible and d.acknowledged
    assert d.lit(clock.t) and d.lit(clock.t + 0.9)  # steady, not flashing
    assert sink.wanted is Priority.NONE

    clock.advance(149)
    mgr.tick()
    assert sink.queued_once == ()
    clock.advance(1)
    mgr.tick()
    assert sink.queued_once == (Priority.MEDIUM,)  # reminder after 150 s
    assert sink.wanted is Priority.NONE  # a reminder is one burst, not a re-alarm
    clock.advance(150)
    mgr.tick()
    assert sink.queued_once == (Priority.MEDIUM, Priority.MEDIUM)


def test_acknowledge_silences_current_conditions_only(
    mgr: AlarmManager, sink: BurstScheduler
) -> None:
    mgr.submit(HR_HIGH)
    mgr.acknowledge()
    assert sink.wanted is Priority.NONE
    mgr.submit(cond("spo2_low", Priority.MEDIUM, message="SpO2 88 < 90"))
    assert sink.wanted is Priority.MEDIUM
    views = {v.kind: v for v in mgr.bed_display("bed1").alarms}
    assert views["hr_high"].acknowledged and not views["hr_high"].audible
    assert views["spo2_low"].audible
    # re-raising the acknowledged condition (an update) does not make it sound again
    mgr.submit(HR_HIGH)
    assert {v.kind for v in mgr.bed_display("bed1").alarms if v.audible} == {"spo2_low"}


def test_audio_pause_two_minutes_then_audio_returns(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr.submit(HR_HIGH)
    mgr.pause_audio()
    d = mgr.bed_display("bed1")
    assert sink.wanted is Priority.NONE and not d.audible
    assert d.flashing and d.lit(clock.t)  # the visual signal continues
    assert d.audio_paused_s == pytest.approx(120.0)
    clock.advance(119)
    mgr.tick()
    assert sink.wanted is Priority.NONE
    clock.advance(1)
    mgr.tick()
    assert sink.wanted is Priority.MEDIUM
    assert mgr.bed_display("bed1").audio_paused_s == 0.0


def test_pause_duration_is_admin_settable_and_resumable(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr.settings = AlarmSettings(audio_pause_s=60.0)
    mgr.submit(HR_HIGH)
    mgr.pause_audio()
    clock.advance(60)
    mgr.tick()
    assert sink.wanted is Priority.MEDIUM
    mgr.pause_audio(duration_s=300)
    mgr.resume_audio()
    assert sink.wanted is Priority.MEDIUM


def test_new_high_condition_sounds_during_pause_but_medium_waits(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr.submit(cond("temp_high", Priority.LOW))
    mgr.pause_audio()
    clock.advance(10)
    mgr.submit(cond("spo2_low", Priority.MEDIUM))
    assert sink.wanted is Priority.NONE
    clock.advance(10)
    mgr.submit(cond("asystole", Priority.HIGH, message="Asystole"))
    assert sink.wanted is Priority.HIGH
    audible = {v.kind for v in mgr.bed_display("bed1").alarms if v.audible}
    assert audible == {"asystole"}


def test_new_high_during_pause_can_be_configured_silent(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr.settings = AlarmSettings(new_high_sounds_during_pause=False)
    mgr.pause_audio()
    clock.advance(1)
    mgr.submit(cond("vf", Priority.HIGH))
    assert sink.wanted is Priority.NONE


def test_bed_pause_leaves_other_beds_sounding(mgr: AlarmManager, sink: BurstScheduler) -> None:
    mgr.submit(HR_HIGH)
    mgr.submit(cond("rr_high", Priority.MEDIUM, bed="bed2"))
    mgr.pause_audio("bed1")
    assert not mgr.bed_display("bed1").audible
    assert mgr.bed_display("bed2").audible
    assert sink.wanted is Priority.MEDIUM
    assert mgr.audio_paused_s("bed2") == 0.0


@pytest.mark.parametrize("kind", ["asystole", "vf", "vt"])
def test_lethal_arrhythmias_latch_until_acknowledged(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler, log: list[AlarmLogEntry], kind: str
) -> None:
    mgr.submit(cond(kind, Priority.HIGH))  # latching=False from the analyzer: latches anyway
    clock.advance(8)
    mgr.submit(cond(kind, Priority.HIGH, active=False))
    d = mgr.bed_display("bed1")
    assert d.priority is Priority.HIGH and d.flashing and d.audible
    assert not d.alarms[0].present and d.alarms[0].latching
    assert sink.wanted is Priority.HIGH
    assert log[-1].t_off == pytest.approx(clock.t + 1.7e9)  # the episode's end is logged
    clock.advance(30)
    mgr.acknowledge("bed1", user="dr.ng")
    assert mgr.bed_display("bed1").priority is Priority.NONE
    assert sink.wanted is Priority.NONE
    assert log[-1].ack_by == "dr.ng" and log[-1].t_ack == pytest.approx(clock.t + 1.7e9)


def test_latched_alarm_acknowledged_while_present_goes_when_it_ends(mgr: AlarmManager) -> None:
    mgr.submit(cond("vt", Priority.HIGH))
    mgr.acknowledge()
    assert mgr.bed_display("bed1").count == 1
    mgr.submit(cond("vt", Priority.HIGH, active=False))
    assert mgr.bed_display("bed1").count == 0


def test_latched_condition_that_returns_is_a_new_episode(
    mgr: AlarmManager, log: list[AlarmLogEntry]
) -> None:
    mgr.submit(cond("vf", Priority.HIGH))
    mgr.submit(cond("vf", Priority.HIGH, active=False))
    mgr.submit(cond("vf", Priority.HIGH))
    d = mgr.bed_display("bed1")
    assert d.count == 1 and d.alarms[0].present
    assert len(mgr.log_entries()) == 2


def test_clearing_a_non_latching_alarm_removes_it(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr.submit(HR_HIGH)
    clock.advance(12)
    mgr.submit(HR_HIGH.cleared(t_s=12.0))
    assert mgr.bed_display("bed1").priority is Priority.NONE
    assert sink.wanted is Priority.NONE
    (entry,) = mgr.log_entries()
    assert entry.t_off - entry.t_on == pytest.approx(12.0)
    mgr.submit(HR_HIGH.cleared(t_s=13.0))  # clearing twice is harmless


def test_worst_alarm_of_the_bed_wins_the_tile(mgr: AlarmManager, clock: FakeClock) -> None:
    mgr.submit(cond("temp_high", Priority.LOW, message="Temp 38.9 > 38.5"))
    assert mgr.bed_display("bed1").message == "Temp 38.9 > 38.5"
    assert not mgr.bed_display("bed1").flashing  # low: steady cyan
    clock.advance(1)
    mgr.submit(cond("lead_off", Priority.MEDIUM, message="ECG leads off", technical=True))
    clock.advance(1)
    mgr.submit(HR_HIGH)
    d = mgr.bed_display("bed1")
    assert (
        d.message == "HR 134 > 120" and not d.technical
    )  # patient beats technical at equal priority
    assert [v.kind for v in d.alarms] == ["hr_high", "lead_off", "temp_high"]
    mgr.acknowledge("bed1")
    mgr.submit(cond("spo2_low", Priority.MEDIUM, message="SpO2 88 < 90"))
    assert mgr.bed_display("bed1").message == "SpO2 88 < 90"  # unacknowledged first
    mgr.submit(cond("asystole", Priority.HIGH, message="Asystole"))
    d = mgr.bed_display("bed1")
    assert (d.priority, d.message, d.flashing, d.count) == (Priority.HIGH, "Asystole", True, 5)
    assert not d.lit(d.onset_s + 0.3) and d.lit(d.onset_s + 0.5)  # 2 Hz


def test_escalation_sounds_again_and_starts_a_new_log_entry(
    mgr: AlarmManager, sink: BurstScheduler
) -> None:
    mgr.submit(cond("news2", Priority.LOW, message="NEWS2 5 (medium)"))
    mgr.acknowledge()
    mgr.submit(cond("news2", Priority.MEDIUM, message="NEWS2 7 (high)"))
    d = mgr.bed_display("bed1")
    assert d.priority is Priority.MEDIUM and d.audible and sink.wanted is Priority.MEDIUM
    first, second = mgr.log_entries()
    assert first.t_off is not None and first.priority is Priority.LOW
    assert second.t_off is None and second.priority is Priority.MEDIUM
    mgr.acknowledge()
    mgr.submit(cond("news2", Priority.LOW, message="NEWS2 5 (medium)"))  # de-escalation
    assert mgr.bed_display("bed1").acknowledged  # stays silenced
    assert len(mgr.log_entries()) == 3


def test_log_records_condition_times_value_limit_and_acknowledger(
    mgr: AlarmManager, clock: FakeClock, log: list[AlarmLogEntry]
) -> None:
    t0 = clock.t
    mgr.submit(
        AlarmCondition(
            "bed3",
            "spo2_desat",
            Priority.HIGH,
            "Desat SpO2 78 < 80",
            78.0,
            80.0,
            t_s=55.5,
            source="vitals",
        )
    )
    clock.advance(5)
    mgr.acknowledge(user="rn.ali")
    clock.advance(25)
    mgr.submit(AlarmCondition("bed3", "spo2_desat", Priority.HIGH, "", active=False))
    (e,) = mgr.log_entries("bed3")
    assert (e.bed_id, e.kind, e.priority, e.message, e.value, e.limit) == (
        "bed3", "spo2_desat", Priority.HIGH, "Desat SpO2 78 < 80", 78.0, 80.0,
    )  # fmt: skip
    assert e.t_on == pytest.approx(t0 + 1.7e9)
    assert e.t_ack == pytest.approx(t0 + 5 + 1.7e9) and e.ack_by == "rn.ali"
    assert e.t_off == pytest.approx(t0 + 30 + 1.7e9)
    assert (e.source, e.source_t_s) == ("vitals", 55.5)
    # the callback saw every change of the entry (open, acknowledge, close), same id
    assert [x.entry_id for x in log] == [e.entry_id] * 3
    assert log[-1] == e
    assert mgr.log_entries("bed1") == ()


def test_a_failing_log_callback_never_stops_the_alarms(
    clock: FakeClock, sink: BurstScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_: AlarmLogEntry) -> None:
        raise RuntimeError("disk full")

    mgr = AlarmManager(clock=clock, audio=sink, on_log=broken)
    mgr.submit(HR_HIGH)
    assert sink.wanted is Priority.MEDIUM
    assert "alarm log callback failed" in caplog.text


def test_banner_lists_the_ward_worst_first(mgr: AlarmManager, clock: FakeClock) -> None:
    mgr.submit(cond("temp_high", Priority.LOW, bed="bed2"))
    clock.advance(1)
    mgr.submit(cond("vf", Priority.HIGH, bed="bed7"))
    clock.advance(1)
    mgr.submit(HR_HIGH)
    assert [(v.bed_id, v.kind) for v in mgr.banner()] == [
        ("bed7", "vf"),
        ("bed1", "hr_high"),
        ("bed2", "temp_high"),
    ]
    assert mgr.acknowledge() == 3
    assert mgr.acknowledge() == 0


def test_reminders_can_be_turned_off(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr.submit(HR_HIGH)
    mgr.acknowledge()
    mgr.settings = AlarmSettings(reminder_s=None)
    clock.advance(1000)
    mgr.tick()
    assert sink.queued_once == ()


def test_reminder_is_held_back_during_a_pause(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr.submit(HR_HIGH)
    mgr.acknowledge()
    clock.advance(100)
    mgr.pause_audio()
    clock.advance(60)
    mgr.tick()
    assert sink.queued_once == ()


def test_remove_bed_closes_its_log_entries(mgr: AlarmManager) -> None:
    mgr.submit(HR_HIGH)
    mgr.submit(cond("vf", Priority.HIGH))
    mgr.remove_bed("bed1")
    assert mgr.bed_display("bed1").count == 0
    assert all(e.t_off is not None for e in mgr.log_entries())


def test_on_change_is_called(clock: FakeClock) -> None:
    calls: list[int] = []
    mgr = AlarmManager(clock=clock, on_change=lambda: calls.append(1))
    mgr.submit(HR_HIGH)
    mgr.acknowledge()
    assert len(calls) >= 2


def test_vitals_monitor_feeds_the_manager(mgr: AlarmManager, sink: BurstScheduler) -> None:
    vm = VitalsMonitor("bed4")
    for t in range(12):
        mgr.submit_all(vm.update(Numeric("hr", 134.0, "bpm", float(t))))
    d = mgr.bed_display("bed4")
    assert d.message == "HR 134 > 120" and d.priority is Priority.MEDIUM
    for t in range(12, 20):
        mgr.submit_all(vm.update(Numeric("hr", 80.0, "bpm", float(t))))
    assert mgr.bed_display("bed4").priority is Priority.NONE
    assert sink.wanted is Priority.NONE


def test_concurrent_submitters_and_readers_stay_consistent(
    clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr = AlarmManager(clock=clock, audio=sink)
    errors: list[BaseException] = []

    def analyzer(bed: str) -> None:
        try:
            for i in range(300):
                c = cond("hr_high", Priority.MEDIUM, bed=bed)
                mgr.submit(c if i % 2 == 0 else c.cleared(float(i)))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [
        threading.Thread(target=analyzer, args=(f"bed{i}",), name=f"an{i}") for i in range(4)
    ]
    for t in threads:
        t.start()
    for _ in range(300):
        mgr.banner()
        mgr.acknowledge()
    for t in threads:
        t.join()
    assert not errors
    assert mgr.banner() == ()  # every analyzer ended with a clear
    assert sink.wanted is Priority.NONE
    assert all(not math.isnan(e.t_on) for e in mgr.log_entries())


def test_pause_silences_a_high_alarm_already_present(
    mgr: AlarmManager, clock: FakeClock, sink: BurstScheduler
) -> None:
    mgr.submit(cond("vt", Priority.HIGH))
    clock.advance(3)
    mgr.pause_audio()
    assert sink.wanted is Priority.NONE
    d = mgr.bed_display("bed1")
    assert not d.audible and d.flashing
