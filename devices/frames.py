"""Immutable records that travel from a data source to the rest of Vigil.

Every source (replay, BLE wearable, simulator) turns what it receives into these
frozen records and hands them to a :class:`SourceSink`. They are safe to pass
between threads: the dataclasses are frozen and sample arrays are read-only.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np

#: Names of the sample streams a bed can carry.  Waveform streams are named by
#: what they show, in the clinic's words, not by the device they came from.
ECG_LEAD_I: Final = "ecg"  # the primary (monitoring) ECG lead
ECG_LEAD_II: Final = "ecg2"  # a second ECG lead where the source has one
PLETH: Final = "pleth"  # photoplethysmogram from a pulse oximeter
RESP: Final = "resp"  # impedance respiration


@dataclass(frozen=True, slots=True)
class SampleBlock:
    """A contiguous run of samples of one stream.

    Parameters
    ----------
    stream
        Stream name, e.g. ``"ecg"`` or ``"pleth"``.
    fs_hz
        Sampling rate in Hz.
    first_index
        Per-stream monotonic counter of ``samples[0]``; the next block of the
        same stream starts at ``first_index + len(samples)`` unless samples
        were lost, in which case ``gap_before`` is set.
    t0_s
        Time of ``samples[0]`` in seconds on the source's clock.
    samples
        Read-only float32 array in ``units``; NaN marks a sample the sensor
        did not deliver (lead off, recording gap).
    units
        Physical unit, e.g. ``"mV"``.
    gap_before
        True when samples were lost between the previous block and this one.
    """

    stream: str
    fs_hz: float
    first_index: int
    t0_s: float
    samples: np.ndarray
    units: str = "mV"
    gap_before: bool = False

    def __post_init__(self) -> None:
        arr = np.asarray(self.samples, dtype=np.float32)
        if arr.ndim != 1:
            raise ValueError(f"SampleBlock.samples must be 1-D, got shape {arr.shape}")
        if arr.flags.writeable:
            arr = arr.copy() if arr is self.samples else arr
            arr.flags.writeable = False
        object.__setattr__(self, "samples", arr)

    @property
    def end_index(self) -> int:
        """Counter of the sample after the last one in this block."""
        return self.first_index + len(self.samples)


@dataclass(frozen=True, slots=True)
class Numeric:
    """One numeric reading (heart rate, SpO2, temperature …).

    Parameters
    ----------
    name
        What is measured: ``"hr"``, ``"spo2"``, ``"rr"`` (respiration rate),
        ``"temp"``, ``"nibp_sys"``, ``"nibp_dia"``, ``"nibp_mean"``,
        ``"pulse"``, ``"battery"``.
    value
        The reading; NaN when the sensor reports "not available".
    units
        Physical unit, e.g. ``"bpm"``, ``"%"``, ``"°C"``, ``"mmHg"``.
    t_s
        Time of the reading in seconds on the source's clock.
    source
        Which device or file produced it.
    """

    name: str
    value: float
    units: str
    t_s: float
    source: str = ""


class ConnectionState(enum.Enum):
    """Where a bed's data source stands, as shown on its tile."""

    SCANNING = "scanning"
    CONNECTING = "connecting"
    STREAMING = "streaming"
    RECONNECTING = "reconnecting"
    SIGNAL_LOSS = "signal loss"
    DISCONNECTED = "disconnected"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DeviceState:
    """A change in a source's connection or health.

    Parameters
    ----------
    device
        Device address or file name.
    state
        The new :class:`ConnectionState`.
    detail
        Human-readable reason, e.g. the file that could not be read.
    t_s
        Monotonic time of the change in seconds.
    counters
        Running counts: ``{"malformed": 3, "gaps": 1}`` …
    """

    device: str
    state: ConnectionState
    detail: str = ""
    t_s: float = 0.0
    counters: dict[str, int] = field(default_factory=dict)


class SourceSink(Protocol):
    """Where a source delivers what it receives.  Called on the source's thread."""

    def on_block(self, bed_id: str, block: SampleBlock) -> None: ...

    def on_numeric(self, bed_id: str, numeric: Numeric) -> None: ...

    def on_state(self, bed_id: str, state: DeviceState) -> None: ...
