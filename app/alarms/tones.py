"""Auditory alarm bursts generated to IEC 60601-1-8 timing (numpy, no Qt).

A burst is a pattern of pulses; a pulse is a harmonic tone with linear rise and
fall ramps.  Each pulse has a fundamental and four harmonics (2f-5f), all inside
300-4000 Hz and within 15 dB of the fundamental.

IEC 60601-1-8:2006 (+A1:2012) ranges that the constants below satisfy
-----------------------------------------------------------------------
They come from Table 3 (burst) and Table 4 (pulse) of the standard.  The
standard is paywalled; items marked [checked] were confirmed against a public
source, items marked [table] are the standard's figures that no public source
reachable here restated -- confirm them against the standard before release.

- pulse frequency f0 150-1000 Hz; at least 4 harmonic components in
  300-4000 Hz within ±15 dB of f0 [checked: PUI Audio, "IEC 60601-1-8",
  puiaudio.com/pages/iec-60601-1-8; TI DAC53701 datasheet SLASEY5].
- pulses per burst: high 10 (the 5-pulse group "C C C - C C" played twice),
  medium 3, low 1 or 2 [checked: Sydney Univ. anaesthesia alarm-sound page,
  anaesthesia.med.usyd.edu.au/resources/alarms/, for the high/medium
  patterns; low: table].
- rise time tr 10-20 % of the effective pulse duration td [checked: the open
  "IEC 60601-1-8 conform sounds" generator, wavtools.py, citing Table 4].
- medium/low pulse spacing y 125-250 ms [checked: same generator].
- td: high 75-200 ms, medium/low 125-250 ms; fall time tf <= ts - tr [table;
  consistent with TI's DAC53701 pulse-on settings, 80-150 ms high and
  130-200 ms medium].
- high pulse spacing x 50-125 ms; high 3rd-4th and 8th-9th spacing 2x + td;
  high 5th-6th 0.35-1.30 s; x and y vary by at most ±5 % within a burst [table].
- interburst interval tb: high 2.5-15 s, medium 2.5-30 s, low > 15 s or no
  repeat [table; consistent with TI's DAC53701 interburst settings, 2.55-3.80 s
  high, 2.60-4.00 s medium, 16 s low].

Vigil measures durations and spacings at the 50 % points of the amplitude
envelope; with linear ramps of length R a pulse of total length L has
td = L - R and a silent gap G gives ts = G + R.  The burst of the high priority
is laid on a regular grid with the 4th slot empty, which makes the 3rd-4th
spacing exactly 2x + td.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from inference.conditions import Priority

DEFAULT_SAMPLE_RATE_HZ: Final = 44100

# --- IEC 60601-1-8 ranges (see module docstring for sources) ------------------------------
F0_RANGE_HZ: Final = (150.0, 1000.0)
HARMONIC_BAND_HZ: Final = (300.0, 4000.0)
MIN_HARMONICS_IN_BAND: Final = 4
HARMONIC_LEVEL_TOLERANCE_DB: Final = 15.0
PULSE_DURATION_RANGE_MS: Final = {
    Priority.HIGH: (75.0, 200.0),
    Priority.MEDIUM: (125.0, 250.0),
    Priority.LOW: (125.0, 250.0),
}
RISE_FRACTION_OF_TD: Final = (0.10, 0.20)
PULSE_SPACING_RANGE_MS: Final = {
    Priority.HIGH: (50.0, 125.0),  # "x"
    Priority.MEDIUM: (125.0, 250.0),  # "y"
    Priority.LOW: (125.0, 250.0),  # "y"
}
HIGH_GROUP_GAP_RANGE_S: Final = (0.35, 1.30)  # spacing between the 5th and 6th pulse
INTERBURST_RANGE_S: Final = {
    Priority.HIGH: (2.5, 15.0),
    Priority.MEDIUM: (2.5, 30.0),
    Priority.LOW: (15.0, float("inf")),
}
PULSES_PER_BURST: Final = {Priority.HIGH: 10, Priority.MEDIUM: 3, Priority.LOW: 2}

#: Harmonic amplitudes relative to the fundamental (1st entry): 0, -4.4, -6.9,
#: -9.1 and -12.0 dB, so 2f-5f stay within the 15 dB tolerance.
HARMONIC_AMPLITUDES: Final = (1.0, 0.6, 0.45, 0.35, 0.25)
#: Peak level of a rendered burst (full scale 1.0): headroom for the mixer.
PEAK_LEVEL: Final = 0.5


@dataclass(frozen=True, slots=True)
class ToneSpec:
    """Vigil's choice, inside the IEC ranges, for one priority.

    Attributes
    ----------
    f0_hz
        Fundamental frequency.
    pulse_ms
        Total pulse length, start of rise to end of fall.
    ramp_ms
        Linear rise and fall ramp length (0-100 %).
    gap_ms
        Silence between the end of one pulse and the start of the next.
    slots
        Pulse start positions in units of (pulse_ms + gap_ms).
    group_gap_ms
        High priority only: silence between the 5th and 6th pulse.
    interburst_s
        Silence after a burst before it repeats (None: never repeats).
    """

    f0_hz: float
    pulse_ms: float
    ramp_ms: float
    gap_ms: float
    slots: tuple[int, ...]
    group_gap_ms: float = 0.0
    interburst_s: float | None = None

    @property
    def td_ms(self) -> float:
        """Effective pulse duration between the 50 % points."""
        return self.pulse_ms - self.ramp_ms

    @property
    def spacing_ms(self) -> float:
        """Pulse spacing between the 50 % points of neighbouring pulses."""
        return self.gap_ms + self.ramp_ms

    @property
    def rise_10_90_ms(self) -> float:
        """Rise time between 10 % and 90 % of the amplitude."""
        return 0.8 * self.ramp_ms

    def onsets_ms(self) -> tuple[float, ...]:
        """Start of each pulse from the start of the burst."""
        period = self.pulse_ms + self.gap_ms
        first = [s * period for s in self.slots]
        if not self.group_gap_ms:
            return tuple(first)
        # The high-priority burst is the 5-pulse group played twice.
        second_start = first[-1] + self.pulse_ms + self.group_gap_ms
        return tuple(first) + tuple(second_start + f for f in first)

    def duration_ms(self) -> float:
        """Start of the first pulse to end of the last."""
        return self.onsets_ms()[-1] + self.pulse_ms


#: High: 10 pulses x x x _ x x ... x x x _ x x at 660 Hz, td 102 ms, x 78 ms,
#: 5th-6th spacing 0.518 s, repeated after 3 s.  Medium: 3 pulses at 550 Hz,
#: td 170 ms, y 180 ms, repeated after 4 s.  Low: 2 pulses at 440 Hz, td 170 ms,
#: y 180 ms, repeated after 20 s.  The pitch falls with the priority so staff can
#: tell them apart by pitch as well as rhythm.
TONES: Final[dict[Priority, ToneSpec]] = {
    Priority.HIGH: ToneSpec(660.0, 120.0, 18.0, 60.0, (0, 1, 2, 4, 5), 500.0, 3.0),
    Priority.MEDIUM: ToneSpec(550.0, 200.0, 30.0, 150.0, (0, 1, 2), 0.0, 4.0),
    Priority.LOW: ToneSpec(440.0, 200.0, 30.0, 150.0, (0, 1), 0.0, 20.0),
}


def tone_spec(priority: Priority) -> ToneSpec:
    """The :class:`ToneSpec` of ``priority`` (HIGH, MEDIUM or LOW)."""
    try:
        return TONES[Priority(priority)]
    except KeyError:
        raise ValueError(f"no alarm tone for priority {priority!r}") from None


def render_pulse(spec: ToneSpec, sample_rate: int = DEFAULT_SAMPLE_RATE_HZ) -> np.ndarray:
    """One pulse: fundamental plus harmonics under a linear rise/plateau/fall envelope."""
    n = round(spec.pulse_ms * 1e-3 * sample_rate)
    ramp = max(1, round(spec.ramp_ms * 1e-3 * sample_rate))
    t = np.arange(n) / sample_rate
    tone = np.zeros(n)
    nyquist = sample_rate / 2
    for k, amp in enumerate(HARMONIC_AMPLITUDES, start=1):
        if k * spec.f0_hz < 0.9 * nyquist:  # a harmonic above Nyquist would alias
            tone += amp * np.sin(2 * np.pi * k * spec.f0_hz * t)
    env = np.ones(n)
    rise = (np.arange(ramp) + 0.5) / ramp
    env[:ramp] = rise
    env[n - ramp :] = rise[::-1]
    return tone * env


def render_burst(priority: Priority, sample_rate: int = DEFAULT_SAMPLE_RATE_HZ) -> np.ndarray:
    """One burst of ``priority`` as float32 mono samples in [-0.5, 0.5].

    Parameters
    ----------
    priority
        :class:`~inference.conditions.Priority` HIGH, MEDIUM or LOW.
    sample_rate
        Output rate in Hz (at least 8000; 5f of the fundamental must fit below
        Nyquist for all harmonics to be present, i.e. >= 16 kHz at 660 Hz).

    Returns
    -------
    numpy.ndarray
        Samples from the start of the first pulse to the end of the last; the
        interburst silence is not included (see :attr:`ToneSpec.interburst_s`).
    """
    if sample_rate < 8000:
        raise ValueError(f"sample_rate must be >= 8000 Hz, got {sample_rate}")
    spec = tone_spec(priority)
    pulse = render_pulse(spec, sample_rate)
    n = round(spec.duration_ms() * 1e-3 * sample_rate)
    out = np.zeros(n)
    for onset_ms in spec.onsets_ms():
        i = round(onset_ms * 1e-3 * sample_rate)
        out[i : i + len(pulse)] += pulse[: n - i]
    out *= PEAK_LEVEL / np.max(np.abs(out))
    return out.astype(np.float32)
