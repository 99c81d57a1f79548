"""National Early Warning Score 2 (NEWS2) from whatever vitals a bed has.

Scoring follows the Royal College of Physicians, *National Early Warning
Score (NEWS) 2: Standardising the assessment of acute-illness severity in the
NHS*, updated report of a working party, London: RCP, 2017 (Chart 1 scoring,
Chart 2 thresholds and triggers).  Missing inputs make the score partial (a
lower bound) and are named, so the nurse sees what is not measured.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from typing import Final


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
