"""Pulse oximetry codecs: PLX Continuous (0x2A5F) and PLX Spot-check (0x2A5E).

Part of :mod:`devices.gatt` (import the records from there). Bluetooth SIG Pulse
Oximeter Service 1.0 / Profile 1.0; numbers are IEEE-11073 SFLOAT.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from devices.gatt_fields import Reader, date_time_to_bytes, sfloat_to_raw, u_le

# ---------------------------------------------------------------------------
# PLX Continuous 0x2A5F and Spot-check 0x2A5E
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PlxContinuous:
    """PLX Continuous Measurement (0x2A5F).

    Layout::

        uint8 flags   bit0 SpO2PR-Fast present   bit1 SpO2PR-Slow present
                      bit2 measurement status    bit3 device & sensor status
                      bit4 pulse amplitude index
        SFLOAT SpO2 %, SFLOAT PR bpm                         (normal)
        SFLOAT SpO2 %, SFLOAT PR bpm                         (fast, bit0)
        SFLOAT SpO2 %, SFLOAT PR bpm                         (slow, bit1)
        uint16 measurement status                            (bit2)
        uint24 device and sensor status                      (bit3)
        SFLOAT pulse amplitude index, %                      (bit4)
    """

    spo2: float
    pulse_rate: float
    spo2_fast: float | None = None
    pr_fast: float | None = None
    spo2_slow: float | None = None
    pr_slow: float | None = None
    measurement_status: int | None = None
    device_status: int | None = None
    pulse_amplitude_index: float | None = None


def decode_plx_continuous(payload: bytes) -> PlxContinuous:
    r = Reader(payload, "PLX Continuous")
    flags = r.u8("flags")
    spo2, pr = r.sfloat("SpO2"), r.sfloat("PR")
    fast = (r.sfloat("SpO2 fast"), r.sfloat("PR fast")) if flags & 0x01 else (None, None)
    slow = (r.sfloat("SpO2 slow"), r.sfloat("PR slow")) if flags & 0x02 else (None, None)
    status = r.u16("measurement status") if flags & 0x04 else None
    device = r.u24("device and sensor status") if flags & 0x08 else None
    pai = r.sfloat("pulse amplitude index") if flags & 0x10 else None
    r.done()
    return PlxContinuous(spo2, pr, *fast, *slow, status, device, pai)


def _pair(a: float | None, b: float | None, what: str) -> bool:
    if (a is None) != (b is None):
        raise ValueError(f"{what}: SpO2 and PR travel together; give both or neither")
    return a is not None


def encode_plx_continuous(m: PlxContinuous) -> bytes:
    flags = 0
    body = u_le(sfloat_to_raw(m.spo2), 2, "spo2") + u_le(sfloat_to_raw(m.pulse_rate), 2, "pr")
    if _pair(m.spo2_fast, m.pr_fast, "fast"):
        flags |= 0x01
        body += u_le(sfloat_to_raw(m.spo2_fast), 2, "spo2_fast")  # type: ignore[arg-type]
        body += u_le(sfloat_to_raw(m.pr_fast), 2, "pr_fast")  # type: ignore[arg-type]
    if _pair(m.spo2_slow, m.pr_slow, "slow"):
        flags |= 0x02
        body += u_le(sfloat_to_raw(m.spo2_slow), 2, "spo2_slow")  # type: ignore[arg-type]
        body += u_le(sfloat_to_raw(m.pr_slow), 2, "pr_slow")  # type: ignore[arg-type]
    if m.measurement_status is not None:
        flags |= 0x04
        body += u_le(m.measurement_status, 2, "measurement_status")
    if m.device_status is not None:
        flags |= 0x08
        body += u_le(m.device_status, 3, "device_status")
    if m.pulse_amplitude_index is not None:
        flags |= 0x10
        body += u_le(sfloat_to_raw(m.pulse_amplitude_index), 2, "pulse_amplitude_index")
    return bytes((flags,)) + body


@dataclass(frozen=True, slots=True)
class PlxSpotCheck:
    """PLX Spot-check Measurement (0x2A5E).

    Layout::

        uint8 flags   bit0 timestamp present   bit1 measurement status
                      bit2 device & sensor status   bit3 pulse amplitude index
                      bit4 device clock is not set (informational, not kept)
        SFLOAT SpO2 %, SFLOAT PR bpm
        Date Time (7 bytes)                                  (bit0)
        uint16 measurement status                            (bit1)
        uint24 device and sensor status                      (bit2)
        SFLOAT pulse amplitude index, %                      (bit3)
    """

    spo2: float
    pulse_rate: float
    timestamp: datetime | None = None
    measurement_status: int | None = None
    device_status: int | None = None
    pulse_amplitude_index: float | None = None


def decode_plx_spot(payload: bytes) -> PlxSpotCheck:
    r = Reader(payload, "PLX Spot-check")
    flags = r.u8("flags")
    spo2, pr = r.sfloat("SpO2"), r.sfloat("PR")
    when = r.date_time("timestamp") if flags & 0x01 else None
    status = r.u16("measurement status") if flags & 0x02 else None
    device = r.u24("device and sensor status") if flags & 0x04 else None
    pai = r.sfloat("pulse amplitude index") if flags & 0x08 else None
    r.done()
    return PlxSpotCheck(spo2, pr, when, status, device, pai)


def encode_plx_spot(m: PlxSpotCheck) -> bytes:
    flags = 0
    body = u_le(sfloat_to_raw(m.spo2), 2, "spo2") + u_le(sfloat_to_raw(m.pulse_rate), 2, "pr")
    if m.timestamp is not None:
        flags |= 0x01
        body += date_time_to_bytes(m.timestamp)
    if m.measurement_status is not None:
        flags |= 0x02
        body += u_le(m.measurement_status, 2, "measurement_status")
    if m.device_status is not None:
        flags |= 0x04
        body += u_le(m.device_status, 3, "device_status")
    if m.pulse_amplitude_index is not None:
        flags |= 0x08
        body += u_le(sfloat_to_raw(m.pulse_amplitude_index), 2, "pulse_amplitude_index")
    return bytes((flags,)) + body
