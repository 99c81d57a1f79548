"""Atrial calls of the rhythm analyzer: AF and atrial flutter.

A mixin of :class:`inference.rhythm_analyzer.RhythmAnalyzer` (it opens and
closes episodes through :class:`inference.rhythm_book.EpisodeBook`); it
combines three looks at the atria:

* RR irregularity of the non-ectopic beats (:class:`IrregularityTracker`);
* P-wave consistency before each QRS (:class:`PWaveTracker`): AF needs the
  P waves gone;
* atrial periodicity in the TQ stretches (:mod:`inference.rhythm_flutter`):
  organised waves at flutter cycle lengths turn an irregular rhythm into
  atrial flutter with variable block.

Everything runs on the bed's inference thread.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

from inference.rhythm_beats import ECTOPIC, Irregularity, IrregularityTracker
from inference.rhythm_book import EpisodeBook
from inference.rhythm_flutter import (
    CHECK_EVERY_S,
    CONFIRM_CHECKS,
    WINDOW_S,
    FlutterDetector,
    atrial_periodicity,
)
from inference.rhythm_pwave import PWaveTracker

if TYPE_CHECKING:
    from inference.rhythm_signal import SignalStage


class AtrialCalls(EpisodeBook):
    """AF and flutter episodes from the beats and the raw lead (mixin; see module notes)."""

    _signal: SignalStage

    def _init_atrial(self, fs_hz: float, first_index: int) -> None:
        s = self.settings
        self._af = IrregularityTracker(
            fs_hz, s.af_window_beats, s.af_delta_fraction, max_rr_s=s.pause_s
        )
        self._p_waves = PWaveTracker(fs_hz, s.af_window_beats)
        self._flutter = FlutterDetector()
        self._atrial_beats: deque[tuple[int, str]] = deque(maxlen=64)
        self._next_flutter_check = first_index
        self._irregular = False  # the last RR window met the AF irregularity criteria

    def _reset_atrial(self) -> None:
        """Gap in analysis (noise, lead off, VF, asystole): forget the atrial history."""
        self._af.reset()
        self._p_waves.reset()
        self._flutter.reset()
        self._atrial_beats.clear()
        self._irregular = False

    def _atrial_beat(self, b: int, symbol: str, prev: int | None) -> None:
        """Take one clean beat at sample ``b`` (``prev``: the beat before it)."""
        self._atrial_beats.append((b, symbol))
        if symbol not in ECTOPIC and prev is not None and b - prev >= self._sec(0.3):
            self._p_waves.add(self._signal.broadband(*self._p_waves.offsets(b)))
        irr = self._af.add(b, symbol)
        if irr is not None:
            self._atrial(irr)

    def _atrial(self, irr: Irregularity) -> None:
        s = self.settings
        middle = (irr.onset_sample + irr.end_sample) // 2
        p_waves = self._p_waves.consistency
        self._irregular = irr.irregular_share >= s.af_on_share and irr.nrmssd >= s.af_min_nrmssd
        if "afl" in self._open:
            # Flutter waves locked to conducted beats look like P waves: only
            # regularity (or the atrial periodicity) ends flutter.
            if irr.irregular_share < s.af_off_share:
                self._close("afl", middle)
                self._flutter.reset()
        elif "af" not in self._open:
            if self._irregular and (p_waves is None or p_waves < s.af_max_p_consistency):
                self._open_episode("af", middle, "AFib")
        elif irr.irregular_share < s.af_off_share or (
            p_waves is not None and p_waves >= s.af_p_return
        ):
            self._close("af", middle)
            self._flutter.reset()

    def _atrial_activity(self, now: int) -> None:
        """While the rhythm is irregular, tell flutter (organised atrial waves) every few seconds."""
        atrial_open = "af" in self._open or "afl" in self._open
        if not (atrial_open or self._irregular) or now < self._next_flutter_check:
            return
        self._next_flutter_check = now + self._sec(CHECK_EVERY_S)
        # The window ends half a second back, so its last beat's T wave is in it.
        stop = now - self._sec(0.5)
        start = stop - self._sec(WINDOW_S)
        band = self._signal.broadband(start, stop)
        beats = [(b - start, c) for b, c in self._atrial_beats if start <= b < stop]
        periodicity = (
            atrial_periodicity(band, beats, self.fs_hz) if len(band) == stop - start else None
        )
        was = self._flutter.flutter
        if self._flutter.check(periodicity) == was:
            return
        # The switch holds from the first of the confirming windows.
        at = start - self._sec(CHECK_EVERY_S * (CONFIRM_CHECKS - 1))
        if self._flutter.flutter:
            if "af" in self._open:
                at = max(at, self._open["af"].onset_sample)
                self._close("af", at)
            rate = f", atrial rate {periodicity.dominant_hz * 60:.0f}/min" if periodicity else ""
            self._open_episode("afl", at, f"AFlutter{rate}")
        elif "afl" in self._open:
            at = max(at, self._open["afl"].onset_sample)
            self._close("afl", at)
            p_waves = self._p_waves.consistency
            if self._irregular and (
                p_waves is None or p_waves < self.settings.af_max_p_consistency
            ):
                self._open_episode("af", at, "AFib")
