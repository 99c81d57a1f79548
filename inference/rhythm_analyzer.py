"""The streaming rhythm analyzer of one bed (see :mod:`inference.rhythm` for the calls it makes)."""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from inference.conditions import Priority
from inference.pipeline import HR_AVERAGE_BEATS, HR_LOOKBACK_S
from inference.rhythm_atrial import AtrialCalls
from inference.rhythm_beats import PatternTracker, Run, RunTracker
from inference.rhythm_signal import STATUS_LEAD_OFF, SecondSummary, SignalStage
from inference.rhythm_types import BEAT_KINDS, EpisodeUpdate, RhythmSettings
from inference.vitals import PatientLimits

if TYPE_CHECKING:
    from inference.pipeline import Beat

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Clock:
    since: int | None = None  # first sample the condition held (None: not holding)
    ok_since: int | None = None


class RhythmAnalyzer(AtrialCalls):
    """Streaming rhythm analysis of one bed.  Belongs to the bed's inference thread.

    Parameters
    ----------
    fs_hz
        Sampling rate of the primary lead (and of the beat sample indices).
    limits
        Per-patient limits; only the heart-rate ones are used here.
    settings
        Rhythm settings.
    first_index
        Absolute index of the first sample pushed (the BedAnalyzer's ``first_index``).
    """

    def __init__(
        self,
        fs_hz: float,
        limits: PatientLimits | None = None,
        settings: RhythmSettings | None = None,
        *,
        first_index: int = 0,
    ) -> None:
        super().__init__(fs_hz, settings or RhythmSettings(), first_index)
        self.limits = limits or PatientLimits()
        self._signal = SignalStage(fs_hz, first_index)
        self._queue: deque[Beat] = deque()
        self._last_ingested = first_index - 1
        self._last_beat: int | None = None
        self._peak_queue: deque[int] = deque()
        self._last_peak = first_index - 1  # newest detected R peak, classified or not
        self._settled: int | None = None  # None: the caller does not say (offline replay)
        self._resume = first_index  # analysis (re)started here: stream start, lead on, VF end
        self._levels: deque[float] = deque(maxlen=16)
        self._context: deque[float] = deque(maxlen=3)  # quality of the last non-V beats
        self._hr_beats: deque[int] = deque(maxlen=16)
        self._beats_since_run = HR_AVERAGE_BEATS  # beats since the last V/S run ended
        self._beat_flags: deque[tuple[int, bool]] = deque()  # (sample, noisy) for noise calls
        self._recent_flags: deque[tuple[int, bool]] = deque(maxlen=16)
        self._pvcs: deque[int] = deque()
        self._v_runs = RunTracker("V")
        self._s_runs = RunTracker("S")
        self._bigeminy = PatternTracker(2)
        self._trigeminy = PatternTracker(3)
        self._init_atrial(fs_hz, first_index)
        self._bad_run = 0
        self._good_run = 0
        self._vf_pos = 0
        self._vf_neg = 0
        self._vf_first: int | None = None
        self._hr = {k: _Clock() for k in ("brady", "tachy", "extreme_brady", "extreme_tachy")}

    # ------------------------------------------------------------------ API
    def push(
        self,
        ecg: np.ndarray,
        beats: Iterable[Beat] = (),
        peaks: Iterable[int] = (),
        settled_until: int | None = None,
    ) -> list[EpisodeUpdate]:
        """Feed the next primary-lead samples and the beats that came with them.

        Parameters
        ----------
        ecg
            1-D mV samples continuing the stream (NaN for gaps).
        beats
            Beats newly returned by the bed's :class:`~inference.pipeline.BedAnalyzer`
            (any order; beats already seen are ignored).
        peaks
            R peaks newly detected (:attr:`~inference.pipeline.BedAnalyzer.detected_peaks`).
            A detected beat reaches ``beats`` seconds later, once classified; until
            then its peak keeps a stop from being timed from the beat before it.
        settled_until
            Absolute sample before which the detector has reported every peak
            (:attr:`~inference.pipeline.BedAnalyzer.settled_until`); activity after
            it may still be beats, so it is not called noise yet.

        Returns
        -------
        list of EpisodeUpdate
            Changes decided by this block, in order.
        """
        new = list(beats)
        if new:
            self._queue = deque(sorted([*self._queue, *new], key=lambda b: b.sample_index))
        self._peak_queue.extend(sorted(peaks))
        self._settled = settled_until
        for second in self._signal.push(ecg):
            self._now = second.end_sample
            while self._queue and self._queue[0].sample_index < second.end_sample:
                self._ingest(self._queue.popleft())
            while self._peak_queue and self._peak_queue[0] < second.end_sample:
                self._last_peak = max(self._last_peak, self._peak_queue.popleft())
            self._step(second)
        return self.take_updates()

    def finish(self) -> list[EpisodeUpdate]:
        """End of data: ingest what is queued and close every open episode."""
        while self._queue:
            self._ingest(self._queue.popleft())
        self.close_all()
        return self.take_updates()

    @property
    def hop_samples(self) -> int:
        """Samples per analysis step (one second): decisions fall on multiples of it."""
        return self._signal.hop

    def set_limits(self, limits: PatientLimits) -> None:
        """Change the patient's limits; HR calls re-check against them from the next second."""
        self.limits = limits
        for kind, clock in self._hr.items():
            clock.since = clock.ok_since = None
            if kind in self._open:
                self._close(kind, self._now)

    def _suspend_beat_calls(self, at: int) -> None:
        """Lead off, VF or asystole: end beat-based episodes and forget the sequence."""
        for kind in BEAT_KINDS:
            if kind in self._open:
                self._close(kind, at)
        for tracker in (self._v_runs, self._s_runs):
            tracker.reset()
        self._bigeminy.reset()
        self._trigeminy.reset()
        self._reset_atrial()
        self._hr_beats.clear()
        self._pvcs.clear()
        for clock in self._hr.values():
            clock.since = clock.ok_since = None

    # ------------------------------------------------------------ seconds
    def _step(self, sec: SecondSummary) -> None:
        self._lead_off(sec)
        if "lead_off" not in self._open:
            self._vf(sec)
            if "vf" not in self._open:
                self._silence()
                self._heart_rate()
                self._noise()
                self._atrial_activity(sec.end_sample)
        self._clear_due()

    def _lead_off(self, sec: SecondSummary) -> None:
        s = self.settings
        if sec.status == STATUS_LEAD_OFF:
            self._bad_run += 1
            self._good_run = 0
        else:
            self._good_run += 1
            self._bad_run = 0
        if "lead_off" not in self._open and self._bad_run * self._signal.hop >= self._sec(
            s.lead_off_s
        ):
            onset = sec.end_sample - self._bad_run * self._signal.hop
            reason = {"gap": "signal loss", "flat": "flat line", "saturated": "saturated"}
            self._open_episode(
                "lead_off", onset, f"ECG leads off ({reason.get(sec.reason, sec.reason)})"
            )
            for kind in ("vf", "asystole", "pause", "noise"):
                if kind in self._open:
                    self._close(kind, onset)
            self._suspend_beat_calls(onset)
        elif "lead_off" in self._open and self._good_run * self._signal.hop >= self._sec(
            s.lead_on_s
        ):
            start = sec.end_sample - self._good_run * self._signal.hop
            self._close("lead_off", start)
            self._resume = start
            self._last_beat = None

    def _vf(self, sec: SecondSummary) -> None:
        s = self.settings
        p = sec.vf_probability
        if np.isnan(p):
            return  # a second with gaps neither starts nor ends VF
        if p >= s.vf_on_probability:
            self._vf_pos += 1
            self._vf_neg = 0
            if self._vf_pos == 1:
                self._vf_first = sec.end_sample
        elif p < s.vf_off_probability:
            self._vf_neg += 1
            self._vf_pos = 0
        else:
            self._vf_pos = 0
        hop = self._signal.hop
        if "vf" not in self._open and self._vf_pos * hop >= self._sec(s.vf_confirm_s):
            assert self._vf_first is not None
            # The first positive window was mostly VF: onset about half a window before its end.
            onset = self._vf_first - self._signal.window // 2
            self._open_episode("vf", onset, "VFib / VFlutter", value=float(p))
            for kind in ("asystole", "pause", "noise"):
                if kind in self._open:
                    self._close(kind, onset)
            self._suspend_beat_calls(onset)
        elif "vf" in self._open and self._vf_neg * hop >= self._sec(s.vf_release_s):
            offset = sec.end_sample - self._vf_neg * hop
            self._close("vf", offset)
            self._resume = offset
            self._last_beat = None

    def _silence(self) -> None:
        """Pause / asystole / noise from the time since the last beat."""
        s = self.settings
        last = self._last_beat if self._last_beat is not None else self._resume
        last = max(last, self._resume, self._last_peak)
        gap = self._now - last
        if gap < self._sec(s.pause_s):
            return
        quiet = self._quiet(last, self._now)
        if quiet is None:
            return  # mostly missing samples: the lead-off call covers it
        credible = self._credible_before(last)
        if quiet and not credible:
            # Silence after a run of noisy "beats" (muscle or motion artefact):
            # the beats were not real, so neither is the stop.  Technical, not asystole.
            if gap >= self._sec(s.asystole_s) and "noise" not in self._open:
                self._open_episode("noise", last, "ECG noise: asystole not confirmed")
        elif quiet:
            if "asystole" not in self._open and gap >= self._sec(s.asystole_s):
                self._open_episode("asystole", last, "Asystole")
                self._suspend_beat_calls(last)
            elif (
                "asystole" not in self._open
                and "pause" not in self._open
                and self._last_beat is not None
            ):
                self._open_episode("pause", last, f"Pause > {s.pause_s:.1f} s", limit=s.pause_s)
        elif gap >= self._sec(s.asystole_s) and "noise" not in self._open:
            # Judged only as far as the detector has had its say: while it learns the
            # patient's levels again (after a stop) beats are reported late.
            judged = self._now if self._settled is None else min(self._now, self._settled)
            if judged - last >= self._sec(s.asystole_s) and self._quiet(last, judged) is False:
                self._open_episode("noise", last, "ECG noise: no QRS found, cannot analyse")

    def _credible_before(self, last: int) -> bool:
        """Whether at least 3 in 4 beats of the 10 s before ``last`` were of usable quality.

        No beats at all since analysis (re)started counts as credible: a quiet,
        attached lead from the start is asystole until a QRS is seen.
        """
        window = [noisy for t, noisy in self._recent_flags if last - self._sec(10.0) <= t <= last]
        if not window:
            return True
        return sum(window) <= 0.25 * len(window)

    def _quiet(self, last: int, now: int) -> bool | None:
        """Whether the lead shows no QRS-like deflection in ``(last, now]``; None if mostly missing."""
        start = last + self._sec(0.25)
        if self._signal.lead_off_fraction(start, now) > 0.5:
            return None
        level = float(np.median(self._levels)) if self._levels else 0.5
        limit = min(self.settings.quiet_fraction * level, self.settings.quiet_max_mv)
        return self._signal.activity(start, now) < limit

    def _heart_rate(self) -> None:
        """Brady/tachy against the patient's limits; beyond the extreme limit it escalates to high."""
        s, lim = self.settings, self.limits
        if "asystole" in self._open or len(self._hr_beats) < 4:
            return
        if "noise" in self._open:
            # Missed and extra beats in noise make the rate meaningless: no new HR calls.
            for clock in self._hr.values():
                clock.since = None
            return
        recent = [b for b in self._hr_beats if self._now - b <= self._sec(HR_LOOKBACK_S)]
        recent = recent[-(HR_AVERAGE_BEATS + 1) :]
        if len(recent) < 4:
            return
        hr = 60.0 * self.fs_hz / float(np.mean(np.diff(recent)))
        for kind, above, limit, extreme in (
            ("tachy", True, lim.hr_high_bpm, lim.extreme_tachy_bpm),
            ("brady", False, lim.hr_low_bpm, lim.extreme_brady_bpm),
        ):
            beyond = hr > limit if above else hr < limit
            beyond_extreme = hr > extreme if above else hr < extreme
            clearly_ok = (
                hr <= limit - s.hr_hysteresis_bpm if above else hr >= limit + s.hr_hysteresis_bpm
            )
            clock, xclock = self._hr[kind], self._hr[f"extreme_{kind}"]
            # During a VT or SVT run, and until the averaged RR no longer holds
            # its beats, the run's own call says more than the rate it drives.
            run_driven = kind == "tachy" and (
                "vt" in self._open
                or "svt" in self._open
                or self._beats_since_run < HR_AVERAGE_BEATS
            )
            if beyond_extreme and not (run_driven and kind not in self._open):
                xclock.since = self._now if xclock.since is None else xclock.since
            else:
                xclock.since = None
            extreme_due = xclock.since is not None and self._now - xclock.since >= self._sec(
                s.hr_extreme_delay_s
            )
            sign = ">" if above else "<"
            if extreme_due:
                message, shown = f"Extreme {kind} HR {hr:.0f} {sign} {extreme:.0f}", extreme
            elif beyond:
                message, shown = f"HR {hr:.0f} {sign} {limit:.0f}", limit
            else:
                message, shown = f"HR {hr:.0f} (limit {limit:.0f})", limit
            if kind not in self._open:
                if not beyond or run_driven:
                    clock.since = None
                    continue
                if clock.since is None:
                    clock.since = self._now
                if extreme_due or self._now - clock.since >= self._sec(s.hr_delay_s):
                    high = Priority.HIGH if extreme_due else None
                    self._open_episode(
                        kind, clock.since, message, value=round(hr), limit=shown, priority=high
                    )
                    clock.since = clock.ok_since = None
            elif clearly_ok:
                if clock.ok_since is None:
                    clock.ok_since = self._now
                if self._now - clock.ok_since >= self._sec(s.hr_clear_s):
                    self._close(kind, clock.ok_since)
                    clock.ok_since = None
            else:
                clock.ok_since = None
                if extreme_due and self._open[kind].priority < Priority.HIGH:
                    self._escalate(kind, Priority.HIGH, message, round(hr), shown)
                else:
                    self._revise(kind, message, round(hr))

    def _noise(self) -> None:
        s = self.settings
        horizon = self._now - self._sec(s.noise_window_s)
        while self._beat_flags and self._beat_flags[0][0] < horizon:
            self._beat_flags.popleft()
        flags = [noisy for _, noisy in self._beat_flags]
        share = float(np.mean(flags)) if len(flags) >= 3 else 0.0
        if "noise" not in self._open:
            if share >= s.noise_on_share:
                self._open_episode(
                    "noise", self._beat_flags[0][0], "ECG noise: arrhythmia analysis limited"
                )
            return
        recent = [
            (t, noisy)
            for t, noisy in self._beat_flags
            if t >= self._now - self._sec(s.noise_clear_s)
        ]
        gap_ok = self._last_beat is not None and self._now - self._last_beat < self._sec(s.pause_s)
        if len(recent) >= 3 and not any(noisy for _, noisy in recent) and gap_ok:
            self._close("noise", recent[0][0])

    # --------------------------------------------------------------- beats
    def _ingest(self, beat: Beat) -> None:
        b = beat.sample_index
        if b <= self._last_ingested:
            return
        self._last_ingested = b
        if "lead_off" in self._open or "vf" in self._open or b < self._resume:
            return
        s = self.settings
        symbol = beat.symbol
        quality = beat.quality
        if symbol == "V":
            # The quality index is the QRS-band floor of the beat's second, which
            # wide ventricular complexes raise by themselves: a V beat is judged
            # by the non-ventricular beats just before it.
            quality = max(quality, self._context_quality())
        else:
            self._context.append(quality)
        noisy = quality < s.min_beat_quality
        self._beat_flags.append((b, noisy))
        self._recent_flags.append((b, noisy))
        prev = self._last_beat
        self._last_beat = b
        if not noisy:
            self._levels.append(self._signal.activity(b - self._sec(0.1), b + self._sec(0.1)))
        for kind in ("asystole", "pause"):
            # The stop's own first beat can arrive after its detected peak opened it.
            if kind in self._open and b > self._open[kind].onset_sample:
                self._close(kind, b)
                if kind == "pause" and prev is not None:
                    self._revise_closed_pause(prev, b)
        if (
            prev is not None
            and b - prev >= self._sec(s.pause_s)
            and not self._recent("pause", prev)
        ):
            quiet = self._quiet(prev, b - self._sec(0.15)) and self._credible_before(prev)
            if quiet and "asystole" not in self._last_closed_at(prev):
                gap_s = (b - prev) / self.fs_hz
                self._event(
                    "pause", prev, b, f"Pause {gap_s:.1f} s", value=round(gap_s, 1), limit=s.pause_s
                )
        self._hr_beats.append(b)
        self._beats_since_run += 1
        self._runs(b, symbol, quality)
        self._patterns(b, symbol, noisy)
        self._pvc_rate(b, symbol)
        if not noisy:
            self._atrial_beat(b, symbol, prev)
        else:
            self._reset_atrial()

    def _context_quality(self) -> float:
        return float(np.mean(self._context)) if self._context else 1.0

    def _recent(self, kind: str, onset: int) -> bool:
        ep = self._last_closed.get(kind)
        return ep is not None and ep.onset_sample == onset

    def _last_closed_at(self, onset: int) -> set[str]:
        return {k for k, ep in self._last_closed.items() if ep.onset_sample == onset}

    def _revise_closed_pause(self, prev: int, b: int) -> None:
        ep = self._last_closed.get("pause")
        if ep is None or ep.onset_sample != prev:
            return
        gap_s = (b - prev) / self.fs_hz
        new = replace(ep, message=f"Pause {gap_s:.1f} s", value=round(gap_s, 1))
        self._closed[self._closed.index(ep)] = new
        self._last_closed["pause"] = new
        if "pause" in self._pending_clear:
            self._pending_clear["pause"] = (self._pending_clear["pause"][0], new)

    def _runs(self, b: int, symbol: str, quality: float) -> None:
        s = self.settings
        ended = self._v_runs.add(b, symbol, quality)
        if ended is not None:
            self._end_v_run(ended)
        run = self._v_runs.current
        if run.beats >= s.vt_alarm_beats and "vt" not in self._open:
            rate = run.rate_bpm(self.fs_hz)
            if rate > s.vt_rate_bpm:
                if run.mean_quality < s.min_beat_quality:
                    self._open_episode(
                        "noise", run.samples[0], "ECG noise: possible VT not confirmed"
                    )
                else:
                    self._open_episode(
                        "vt",
                        run.samples[0],
                        f"VTach {run.beats} beats {rate:.0f} bpm",
                        value=round(rate),
                    )
        elif "vt" in self._open and run.beats:
            rate = run.rate_bpm(self.fs_hz)
            dur = (run.samples[-1] - run.samples[0]) / self.fs_hz
            label = "Sustained VTach" if dur >= s.sustained_vt_s else "VTach"
            self._revise("vt", f"{label} {run.beats} beats {rate:.0f} bpm", round(rate))
        ended_s = self._s_runs.add(b, symbol, quality)
        if ended_s is not None:
            self._end_s_run(ended_s)
        srun = self._s_runs.current
        if srun.beats >= s.svt_beats and "svt" not in self._open:
            rate = srun.rate_bpm(self.fs_hz)
            if rate > s.svt_rate_bpm and srun.mean_quality >= s.min_beat_quality:
                self._open_episode(
                    "svt",
                    srun.samples[0],
                    f"SVT {srun.beats} beats {rate:.0f} bpm",
                    value=round(rate),
                )

    def _end_v_run(self, run: Run) -> None:
        s = self.settings
        if run.beats >= s.run_min_beats:
            self._beats_since_run = 0
        if "vt" in self._open:
            self._close("vt", run.samples[-1])
            return
        rate = run.rate_bpm(self.fs_hz)
        if run.beats == 2:
            if run.mean_quality >= s.min_beat_quality:
                self._event("couplet", run.samples[0], run.samples[-1], "Couplet")
        elif run.beats >= s.run_min_beats and rate > s.vt_rate_bpm:
            if run.mean_quality < s.min_beat_quality:
                self._event(
                    "noise",
                    run.samples[0],
                    run.samples[-1],
                    "ECG noise: possible V run not confirmed",
                )
            else:
                self._event(
                    "vt_run",
                    run.samples[0],
                    run.samples[-1],
                    f"Non-sustained VT {run.beats} beats {rate:.0f} bpm",
                    value=round(rate),
                )

    def _end_s_run(self, run: Run) -> None:
        if run.beats >= self.settings.run_min_beats:
            self._beats_since_run = 0
        if "svt" in self._open:
            self._close("svt", run.samples[-1])

    def _patterns(self, b: int, symbol: str, noisy: bool) -> None:
        s = self.settings
        for kind, tracker, label in (
            ("bigeminy", self._bigeminy, "Ventricular bigeminy"),
            ("trigeminy", self._trigeminy, "Ventricular trigeminy"),
        ):
            ended = tracker.add(b, "Q" if noisy else symbol)
            if ended is not None and kind in self._open:
                self._close(kind, ended.last_sample)
            cur = tracker.current
            if cur.cycles >= s.pattern_cycles and kind not in self._open:
                self._open_episode(kind, cur.onset_sample, label)

    def _pvc_rate(self, b: int, symbol: str) -> None:
        s = self.settings
        if symbol == "V":
            self._pvcs.append(b)
        while self._pvcs and self._pvcs[0] < b - self._sec(60.0):
            self._pvcs.popleft()
        n = len(self._pvcs)
        if n > s.pvc_per_min:
            if "pvc" not in self._open:
                self._open_episode(
                    "pvc",
                    self._pvcs[0],
                    f"PVCs {n}/min > {s.pvc_per_min}",
                    value=n,
                    limit=s.pvc_per_min,
                )
            else:
                self._revise("pvc", f"PVCs {n}/min > {s.pvc_per_min}", n)
        elif "pvc" in self._open:
            self._close("pvc", b)
