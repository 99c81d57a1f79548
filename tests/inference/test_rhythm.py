"""Rhythm episodes from synthetic beat streams with known episodes, and their alarms.

The raw lead is synthesised to match the beats (1 mV, 40 ms QRS spikes on a
baseline with 20 uV noise), because the analyzer checks pauses and asystole
on the raw signal too.
"""

from __future__ import annotations

import numpy as np
import pytest

from inference.conditions import Priority
from inference.dsp import StreamingFilter, design_bandpass
from inference.pipeline import Beat
from inference.rhythm import (
    ALARM,
    ATRIAL_KINDS,
    CLEAR,
    RhythmAnalyzer,
    RhythmSettings,
    alarm_conditions,
    analyze_rhythm,
    beats_in_rhythm,
)
from inference.rhythm_flutter import atrial_periodicity
from inference.rhythm_pwave import PWaveTracker
from inference.vitals import PatientLimits

FS = 250.0


def synth_ecg(
    beat_s: list[float], seconds: float, seed: int = 0, noise_mv: float = 0.02
) -> np.ndarray:
    """A quiet baseline with a narrow 1 mV QRS at each beat time."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * FS)) / FS
    x = noise_mv * rng.standard_normal(len(t))
    for b in beat_s:
        x += 1.0 * np.exp(-0.5 * ((t - b) / 0.012) ** 2)
    return x


def beats_of(times_s: list[float], symbols: str | list[str], quality: float = 1.0) -> list[Beat]:
    return [
        Beat(int(round(t * FS)), s, (0.0, 0.0, 0.0, 0.0, 1.0), quality)
        for t, s in zip(times_s, symbols, strict=True)
    ]


def run(times: list[float], symbols: str | list[str], seconds: float, **kw) -> list:
    x = kw.pop("ecg", None)
    if x is None:
        x = synth_ecg(times, seconds)
    return analyze_rhythm(beats_of(times, symbols, kw.pop("quality", 1.0)), x, FS, **kw)


def regular(start: float, stop: float, rr: float) -> list[float]:
    return list(np.arange(start, stop, rr))


def kinds(episodes) -> list[str]:
    return [e.kind for e in episodes]


def test_normal_sinus_rhythm_is_quiet():
    t = regular(0.5, 120, 0.8)
    assert run(t, "N" * len(t), 121) == []


def test_bigeminy_pattern_is_one_low_priority_episode():
    t, sym = regular(0.5, 20, 0.8), []
    sym = "N" * len(t)
    # Every second beat a V from 20 s to 50 s (coupling 0.5 s, compensatory pause 1.1 s).
    tt = t[:]
    x = 20.0
    while x < 50:
        tt += [x, x + 0.5]
        x += 1.6
    sym += "NV" * ((len(tt) - len(t)) // 2)
    tail = regular(x, 80, 0.8)
    tt += tail
    sym += "N" * len(tail)
    eps = run(tt, sym, 81)
    big = [e for e in eps if e.kind == "bigeminy"]
    assert len(big) == 1
    assert 19 * FS <= big[0].onset_sample <= 24 * FS
    assert 47 * FS <= big[0].offset_sample <= 51 * FS
    assert big[0].priority == Priority.LOW
    assert "vt" not in kinds(eps) and "couplet" not in kinds(eps)


def _with_run(n_v: int, rr_v: float = 0.4) -> tuple[list[float], str]:
    t = regular(0.5, 30, 0.8)
    run_t = [t[-1] + 0.45 + i * rr_v for i in range(n_v)]
    after = regular(run_t[-1] + 1.0, 60, 0.8)
    return t + run_t + after, "N" * len(t) + "V" * n_v + "N" * len(after)


def test_five_beat_vt_run_raises_latching_high_alarm():
    t, sym = _with_run(5, rr_v=0.4)  # 150 bpm
    eps = run(t, sym, 61)
    vt = [e for e in eps if e.kind == "vt"]
    assert len(vt) == 1, kinds(eps)
    ep = vt[0]
    first_v = int(round(t[sym.index("V")] * FS))
    assert ep.onset_sample == first_v
    assert ep.priority == Priority.HIGH and ep.latching
    # Raised once the fifth V beat is known (classifier latency + the 1 s step), not later than 3 s.
    assert ep.alarm_sample is not None and 0 < (ep.alarm_sample - first_v) / FS <= 1.6 + 3.0
    assert "tachy" not in kinds(eps)


def test_short_runs_are_vt_run_and_couplet():
    t3, s3 = _with_run(3)
    assert "vt_run" in kinds(run(t3, s3, 61)) and "vt" not in kinds(run(t3, s3, 61))
    t2, s2 = _with_run(2)
    eps = run(t2, s2, 61)
    assert kinds(eps).count("couplet") == 1 and "vt_run" not in kinds(eps)
    slow, ss = _with_run(5, rr_v=0.75)  # 80 bpm: idioventricular, not VT
    assert "vt" not in kinds(run(slow, ss, 61))


def test_pause_of_three_seconds_is_a_pause_not_asystole():
    t = regular(0.5, 30, 0.8)
    t += regular(t[-1] + 3.0, 60, 0.8)
    eps = run(t, "N" * len(t), 61)
    pause = [e for e in eps if e.kind == "pause"]
    assert len(pause) == 1 and "asystole" not in kinds(eps)
    assert pause[0].priority == Priority.MEDIUM
    assert pause[0].value == pytest.approx(3.0, abs=0.1)


def test_five_second_stop_is_asystole_within_six_seconds():
    t = regular(0.5, 30, 0.8)
    last = t[-1]
    t += regular(last + 5.0, 60, 0.8)
    eps = run(t, "N" * len(t), 61)
    asy = [e for e in eps if e.kind == "asystole"]
    assert len(asy) == 1
    onset = int(round(last * FS))
    assert asy[0].onset_sample == onset
    assert asy[0].priority == Priority.HIGH and asy[0].latching
    assert (asy[0].alarm_sample - onset) / FS <= 6.0
    assert asy[0].offset_sample == int(round((last + 5.0) * FS))


def test_flat_line_and_missing_samples_are_lead_off_not_asystole():
    t = regular(0.5, 30, 0.8) + regular(45, 70, 0.8)
    for fill in (0.37, np.nan):  # a stuck amplifier, then signal loss
        x = synth_ecg(t, 70)
        x[int(30.2 * FS) : int(45 * FS)] = fill
        eps = run(t, "N" * len(t), 70, ecg=x)
        assert "asystole" not in kinds(eps) and "pause" not in kinds(eps)
        off = [e for e in eps if e.kind == "lead_off"]
        assert len(off) == 1 and off[0].technical
        assert off[0].priority == Priority.LOW


def test_activity_without_beats_is_noise_not_asystole():
    t = regular(0.5, 30, 0.8) + regular(42, 70, 0.8)
    x = synth_ecg(t, 70)
    rng = np.random.default_rng(3)
    x[int(31 * FS) : int(41 * FS)] += 0.8 * rng.standard_normal(int(10 * FS))  # muscle noise
    eps = run(t, "N" * len(t), 70, ecg=x)
    assert "asystole" not in kinds(eps)
    assert "noise" in kinds(eps)


def irregular_stretch() -> list[float]:
    """Beat times: regular at 75/min, irregular RR (0.4-1.1 s) from 60 to 240 s, regular to 320 s."""
    rng = np.random.default_rng(7)
    t = regular(0.5, 60, 0.8)
    x = t[-1]
    while x < 240:
        x += rng.uniform(0.4, 1.1)
        t.append(x)
    return t + regular(x + 0.8, 320, 0.8)


def test_irregular_rr_is_af_and_bigeminal_pacs_are_not():
    t = irregular_stretch()
    eps = run(t, "N" * len(t), 321)
    af = [e for e in eps if e.kind == "af"]
    assert len(af) == 1
    assert abs(af[0].onset_sample / FS - 60) < 25 and abs(af[0].offset_sample / FS - 240) < 25
    assert af[0].priority == Priority.MEDIUM
    # Atrial bigeminy: irregular RR, but every other beat is an S beat.
    tb, sb, x = [], "", 0.5
    while x < 200:
        tb += [x, x + 0.5]
        sb += "NS"
        x += 1.4
    assert "af" not in kinds(run(tb, sb, 201))


def test_no_s_beats_inside_af_or_flutter():
    t = irregular_stretch()
    symbols = ["S" if i % 7 == 3 else "N" for i in range(len(t))]  # "premature" beats throughout
    beats = beats_of(t, symbols)
    episodes = analyze_rhythm(beats, synth_ecg(t, 321), FS)
    af = [(e.onset_sample, e.offset_sample) for e in episodes if e.kind in ATRIAL_KINDS]
    assert len(af) == 1
    final = beats_in_rhythm(beats, af)
    inside = [b for b in final if af[0][0] <= b.sample_index <= af[0][1]]
    outside = [b for b in final if b not in inside]
    assert inside and all(b.symbol == "N" for b in inside)
    assert sum(b.symbol == "S" for b in outside) >= 5  # sinus stretches keep their S beats
    assert [b.probabilities for b in final] == [b.probabilities for b in beats]
    # An episode still open (offset None) covers every later beat.
    assert all(b.symbol == "N" for b in beats_in_rhythm(beats, [(int(200 * FS), None)])[-20:])
    assert beats_in_rhythm(beats, []) == beats


def test_irregular_rr_with_p_waves_is_not_af():
    """Marked sinus arrhythmia: RR as irregular as AF, but a P wave before every QRS."""
    t = irregular_stretch()
    ecg = synth_ecg(t, 321)
    grid = np.arange(len(ecg)) / FS
    for b in t:  # 0.15 mV, 100 ms wide P wave, PR 160 ms
        ecg += 0.15 * np.exp(-0.5 * ((grid - (b - 0.16)) / 0.025) ** 2)
    assert "af" not in kinds(run(t, "N" * len(t), 321, ecg=ecg))


def test_p_wave_consistency_tells_sinus_from_fibrillatory_baseline():
    rng = np.random.default_rng(3)
    sinus, fib = PWaveTracker(FS, 16), PWaveTracker(FS, 16)
    grid = np.arange(sinus.length) / FS
    p_wave = 0.15 * np.exp(-0.5 * ((grid - 0.14) / 0.025) ** 2)
    smooth = np.exp(-0.5 * (np.arange(-10, 11) / 4.0) ** 2)  # f waves: band-limited, unlocked
    for _ in range(24):
        sinus.add(p_wave + 0.02 * rng.standard_normal(sinus.length))
        fib.add(0.02 * np.convolve(rng.standard_normal(sinus.length), smooth, mode="same"))
    assert sinus.consistency is not None and sinus.consistency > 0.9
    assert fib.consistency is not None and abs(fib.consistency) < 0.4
    assert sinus.add(np.full(sinus.length, np.nan)) is None  # gaps are skipped
    sinus.reset()
    assert sinus.consistency is None


def _flutter_ecg(seconds: float, start: float, stop: float, seed: int = 5):
    """Sinus rhythm with P waves, then flutter at 300/min with variable 2:1-4:1 block."""
    rng = np.random.default_rng(seed)
    grid = np.arange(int(seconds * FS)) / FS
    waves = np.arange(0, seconds, 0.2)
    beats = regular(0.5, start, 0.8)
    k = int(np.searchsorted(waves, start))
    while waves[k] < stop:
        beats.append(float(waves[k]) + 0.16)  # conducted flutter wave + AV delay
        k += int(rng.choice([2, 3, 4]))
    beats += regular(beats[-1] + 0.8, seconds - 1, 0.8)
    ecg = synth_ecg(beats, seconds)
    flutter = (grid >= start) & (grid < stop)
    ecg[flutter] += 0.2 * (2.0 * ((grid[flutter] / 0.2) % 1.0) - 1.0)  # sawtooth F waves
    for b in beats:
        ecg += 0.3 * np.exp(-0.5 * ((grid - (b + 0.3)) / 0.05) ** 2)  # T wave
        if not start <= b < stop + 0.2:
            ecg += 0.15 * np.exp(-0.5 * ((grid - (b - 0.16)) / 0.025) ** 2)  # P wave
    return beats, ecg


def test_flutter_with_variable_block_is_afl_not_af():
    beats, ecg = _flutter_ecg(200, 60, 170)
    eps = run(beats, "N" * len(beats), 200, ecg=ecg)
    assert kinds(eps) == ["afl"]
    afl = eps[0]
    assert abs(afl.onset_sample / FS - 60) < 15 and abs(afl.offset_sample / FS - 170) < 15
    assert afl.priority == Priority.MEDIUM and afl.alarm_sample is not None
    assert "300/min" in afl.message or "294/min" in afl.message


def test_atrial_periodicity_sees_flutter_waves_not_sinus_or_fibrillation():
    beats, ecg = _flutter_ecg(200, 60, 170)
    band = StreamingFilter(design_bandpass(FS, 1.0, 30.0, 2)).process(ecg)

    def periodicity(t0: float):
        a, b = int(t0 * FS), int((t0 + 8) * FS)
        return atrial_periodicity(
            band[a:b], [(int(x * FS) - a, "N") for x in beats if t0 <= x < t0 + 8], FS
        )

    flutter, sinus = periodicity(100), periodicity(20)
    assert flutter is not None and flutter.flutter_like and abs(flutter.dominant_hz - 5.0) < 0.3
    assert sinus is not None and not sinus.flutter_like
    rng = np.random.default_rng(1)  # AF: irregular beats on a fibrillatory baseline
    t, x = [0.5], 0.5
    while x < 40:
        x += rng.uniform(0.5, 1.2)
        t.append(x)
    smooth = np.exp(-0.5 * (np.arange(-10, 11) / 3.0) ** 2)
    af = synth_ecg(t, 41) + 0.03 * np.convolve(rng.standard_normal(int(41 * FS)), smooth, "same")
    af_band = StreamingFilter(design_bandpass(FS, 1.0, 30.0, 2)).process(af)
    fib = atrial_periodicity(
        af_band[2500:4500], [(int(v * FS) - 2500, "N") for v in t if 10 <= v < 18], FS
    )
    assert fib is not None and not fib.flutter_like


def test_tachycardia_against_patient_limits_escalates_past_extreme():
    t = regular(0.5, 30, 0.8) + regular(30.4, 70, 0.4)  # 150 bpm from 30 s
    eps = run(t, "N" * len(t), 71)
    tachy = [e for e in eps if e.kind == "tachy"]
    assert len(tachy) == 1
    assert tachy[0].priority == Priority.HIGH  # 150 > extreme 140 (120 + 20)
    assert (tachy[0].alarm_sample - 30 * FS) / FS <= 10.0  # IEC 60601-2-27: within 10 s
    relaxed = PatientLimits(hr_high_bpm=160.0)
    assert "tachy" not in kinds(run(t, "N" * len(t), 71, limits=relaxed))


def test_bradycardia_is_medium_priority():
    t = regular(0.5, 30, 0.8) + regular(31.6, 80, 1.4)  # 43 bpm
    eps = run(t, "N" * len(t), 81)
    brady = [e for e in eps if e.kind == "brady"]
    assert len(brady) == 1 and brady[0].priority == Priority.MEDIUM


def test_noisy_v_run_is_noise_not_vt():
    t, sym = _with_run(6)
    q = [1.0 if s == "N" else 0.1 for s in sym]
    beats = [
        Beat(int(round(x * FS)), s, (0, 0, 0, 0, 1), qq) for x, s, qq in zip(t, sym, q, strict=True)
    ]
    # The N beats just before the run are noisy too: the run is not trusted.
    i = sym.index("V")
    beats[i - 3 : i] = [
        Beat(b.sample_index, b.symbol, b.probabilities, 0.1) for b in beats[i - 3 : i]
    ]
    eps = analyze_rhythm(beats, synth_ecg(t, 61), FS)
    assert "vt" not in kinds(eps) and "noise" in kinds(eps)


def test_streaming_blocks_do_not_change_episodes():
    t, sym = _with_run(6)
    t += regular(61, 62, 1.0)
    x = synth_ecg(t, 65)
    beats = beats_of(t, "N" * 0 + sym + "N" * (len(t) - len(sym)))
    results = []
    for block_s in (0.04, 1.0, 7.3):
        a = RhythmAnalyzer(FS)
        step = int(block_s * FS)
        for start in range(0, len(x), step):
            now = [b for b in beats if start <= b.sample_index < start + step]
            a.push(x[start : start + step], now)
        a.finish()
        results.append(
            [(e.kind, e.onset_sample, e.offset_sample, e.alarm_sample) for e in a.episodes]
        )
    assert results[0] == results[1] == results[2]
    assert any(k == "vt" for k, *_ in results[0])


def test_alarm_conditions_raise_and_clear_after_hold():
    t, sym = _with_run(5)
    x = synth_ecg(t, 61)
    a = RhythmAnalyzer(FS, settings=RhythmSettings(alarm_hold_s=10.0))
    updates = []
    hop = a.hop_samples
    beats = beats_of(t, sym)
    for start in range(0, len(x), hop):
        updates += a.push(
            x[start : start + hop], [b for b in beats if start <= b.sample_index < start + hop]
        )
    updates += a.finish()
    conds = alarm_conditions(updates, "bed3", FS, t0_s=100.0)
    vt = [c for c in conds if c.kind == "vt"]
    assert vt[0].active and vt[0].latching and vt[0].priority == Priority.HIGH
    assert vt[0].source == "rhythm" and vt[0].bed_id == "bed3" and vt[0].t_s > 100.0
    assert not vt[-1].active
    raised = next(u for u in updates if u.change == ALARM and u.episode.kind == "vt")
    cleared = next(u for u in updates if u.change == CLEAR and u.episode.kind == "vt")
    assert cleared.sample - raised.sample >= 10 * FS  # held for the nurse to see
    assert not any(c.kind == "couplet" for c in conds)  # priority none: logged, never alarms


def test_settings_are_validated():
    with pytest.raises(ValueError):
        RhythmSettings(asystole_s=2.0)
    with pytest.raises(ValueError):
        RhythmSettings(asystole_s=4.0, pause_s=5.0)
    assert RhythmSettings(asystole_s=10.0).asystole_s == 10.0


def test_alarm_manager_latches_vt_and_escalates_tachy():
    from app.alarms import AlarmManager

    now = [0.0]
    manager = AlarmManager(clock=lambda: now[0])
    t, sym = _with_run(5)
    t += regular(60.4, 80, 0.46)  # then 130 bpm: tachy (medium) ...
    t += regular(80.0, 100, 0.4)  # ... and 150 bpm: past the extreme limit, high
    sym += "N" * (len(t) - len(sym))
    x = synth_ecg(t, 101)
    a = RhythmAnalyzer(FS)
    beats = beats_of(t, sym)
    seen_vt_priority, tachy_priorities = None, []
    for start in range(0, len(x), a.hop_samples):
        stop = start + a.hop_samples
        now[0] = stop / FS
        updates = a.push(x[start:stop], [b for b in beats if start <= b.sample_index < stop])
        for c in alarm_conditions(updates, "bed1", FS):
            manager.submit(c)
            if c.kind == "tachy" and c.active:
                tachy_priorities.append(c.priority)
        display = manager.bed_display("bed1")
        vt = [v for v in display.alarms if v.kind == "vt"]
        if vt:
            seen_vt_priority = vt[0].priority
    assert seen_vt_priority == Priority.HIGH
    # The VT run ended long ago; its alarm is latched until acknowledged.
    vt = [v for v in manager.bed_display("bed1").alarms if v.kind == "vt"]
    assert vt and not vt[0].present and vt[0].latching
    assert manager.acknowledge("bed1", "nurse") >= 1
    assert tachy_priorities[0] == Priority.MEDIUM and tachy_priorities[-1] == Priority.HIGH
