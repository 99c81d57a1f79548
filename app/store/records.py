"""What the store gives back: frozen rows, safe to hand to any thread.

Numerics and device states come back as the :mod:`devices.frames` records they
went in as; the rest have their own records here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

#: Review verdicts a clinician can give on a flagged event.
VERDICTS: Final = ("agree", "disagree")


@dataclass(frozen=True, slots=True)
class SessionInfo:
    """One monitored session: a bed watched from start to end through one source."""

    id: int
    bed_id: str
    bed_label: str
    patient_id: str | None
    patient_name: str | None
    mrn: str | None
    started_at: str
    ended_at: str | None
    source: str
    app_version: str


@dataclass(frozen=True, slots=True)
class StreamInfo:
    """What is stored of one sample stream of a session.

    ``end_index - first_index`` may exceed ``samples_stored`` where there are gaps.
    """

    stream: str
    fs_hz: float
    units: str
    first_index: int
    end_index: int
    t0_s: float
    samples_stored: int
    chunks: int
    gaps: int


@dataclass(frozen=True, slots=True)
class BeatRecord:
    """A detected beat; ``symbol`` is the beat class (e.g. AAMI ``N S V F Q``)."""

    session_id: int
    stream: str
    sample_index: int
    symbol: str
    probabilities: dict[str, float] = field(default_factory=dict)
    model_version: str = ""
    id: int | None = None


@dataclass(frozen=True, slots=True)
class EventRecord:
    """A flagged event or alarm; ``offset_s`` is None while it lasts."""

    id: int
    session_id: int
    kind: str
    priority: str
    onset_s: float
    offset_s: float | None
    value: float | None
    limit: float | None
    acknowledged_by: str | None
    acknowledged_at: str | None
    details: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ExplanationRecord:
    """Why the model flagged an event, as the explanation code wrote it (JSON)."""

    id: int
    event_id: int
    explanation: dict[str, Any]
    model_version: str
    created_at: str


@dataclass(frozen=True, slots=True)
class ReviewRecord:
    """A clinician's agree/disagree on an event."""

    id: int
    event_id: int
    user: str
    verdict: str
    note: str
    reviewed_at: str
