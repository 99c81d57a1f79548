"""Byte-exact codecs for the Bluetooth SIG health characteristics and Polar PMD.

``decode(uuid, payload)`` turns a characteristic value into a frozen record;
``encode(record)`` writes it back (the simulator sends what the encoders write).
Every malformed payload raises :class:`GattDecodeError` and nothing else does, so a
stream can count the drop and carry on.

Conventions for all records: absent optional fields are ``None``; IEEE-11073
special values are NaN / ±inf; °F is converted to °C and kPa to mmHg; SIG date-times
are naive ``datetime`` (the sensor's local clock), ``None`` when unknown. Layouts
are in each codec's docstring; numbers are little-endian. Field helpers live in
:mod:`devices.gatt_fields`, the Polar PMD codecs in :mod:`devices.gatt_pmd`.

Specifications: Bluetooth SIG Heart Rate Service 1.0, Health Thermometer Service
1.0, Blood Pressure Service 1.1, Pulse Oximeter Service 1.0, Battery Service 1.0,
and the GATT Specification Supplement.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from devices.gatt_fields import (
    GattDecodeError,
    Reader,
    date_time_to_bytes,
    float_to_raw,
    sfloat_to_raw,
    u_le,
)
from devices.gatt_plx import (
    PlxContinuous,
    PlxSpotCheck,
    decode_plx_continuous,
    decode_plx_spot,
    encode_plx_continuous,
    encode_plx_spot,
)
from devices.gatt_pmd import (
    PMD_CONTROL_POINT,
    PMD_DATA,
    PMD_SERVICE,
    PmdControlResponse,
    PmdEcgFrame,
    PmdFeatures,
    PmdGetSettings,
    PmdStartMeasurement,
    PmdStatus,
    PmdStopMeasurement,
    decode_control_point,
    decode_ecg_frame,
    encode_control_point,
    encode_ecg_frame,
)

__all__ = [
    "GattDecodeError",
    "HeartRateMeasurement",
    "PlxContinuous",
    "PlxSpotCheck",
    "TemperatureMeasurement",
    "BloodPressureMeasurement",
    "BatteryLevel",
    "PmdEcgFrame",
    "PmdGetSettings",
    "PmdStartMeasurement",
    "PmdStopMeasurement",
    "PmdControlResponse",
    "PmdFeatures",
    "PmdStatus",
    "decode",
    "encode",
    "normalize_uuid",
    "uuid_of",
    "full_uuid",
]

# Characteristics (16-bit SIG numbers) and services the workstation listens to.
HEART_RATE_MEASUREMENT: Final = 0x2A37
PLX_SPOT_CHECK: Final = 0x2A5E
PLX_CONTINUOUS: Final = 0x2A5F
TEMPERATURE_MEASUREMENT: Final = 0x2A1C
BLOOD_PRESSURE_MEASUREMENT: Final = 0x2A35
BATTERY_LEVEL: Final = 0x2A19

HEART_RATE_SERVICE: Final = 0x180D
PULSE_OXIMETER_SERVICE: Final = 0x1822
HEALTH_THERMOMETER_SERVICE: Final = 0x1809
BLOOD_PRESSURE_SERVICE: Final = 0x1810
BATTERY_SERVICE: Final = 0x180F

_SIG_BASE_SUFFIX: Final = "-0000-1000-8000-00805f9b34fb"
#: mmHg per kPa (760 mmHg = 101.325 kPa).
MMHG_PER_KPA: Final = 760.0 / 101.325


def normalize_uuid(uuid: int | str) -> int | str:
    """Return a SIG 16-bit UUID as ``int``, any other UUID as a lower-case 128-bit string.

    Accepts ``0x2A37``, ``"2a37"``, ``"0x2A37"`` and
    ``"00002a37-0000-1000-8000-00805f9b34fb"`` alike.
    """
    if isinstance(uuid, int):
        return uuid
    text = uuid.strip().lower()
    if text.startswith("0x"):
        text = text[2:]
    if len(text) <= 4:
        return int(text, 16)
    if len(text) == 36 and text.startswith("0000") and text.endswith(_SIG_BASE_SUFFIX):
        return int(text[4:8], 16)
    return text


def full_uuid(uuid: int | str) -> str:
    """The 128-bit lower-case string form (what BlueZ and bleak use)."""
    norm = normalize_uuid(uuid)
    if isinstance(norm, int):
        return f"0000{norm:04x}{_SIG_BASE_SUFFIX}"
    return norm


# ---------------------------------------------------------------------------
# Heart Rate Measurement 0x2A37
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HeartRateMeasurement:
    """Heart Rate Measurement (0x2A37).

    Layout::

        uint8 flags   bit0 HR is uint16 (else uint8)
                      bit1 sensor contact detected   bit2 contact status supported
                      bit3 energy expended present   bit4 RR intervals present
        uint8|uint16  heart rate, bpm
        uint16        energy expended, kJ                       (bit3)
        uint16 × n    RR intervals, 1/1024 s, oldest first, n≥1 (bit4)

    ``sensor_contact`` is None when the strap does not report contact.
    """

    bpm: int
    sensor_contact: bool | None = None
    energy_expended_kj: int | None = None
    rr_intervals_s: tuple[float, ...] = ()


def _decode_hr(payload: bytes) -> HeartRateMeasurement:
    r = Reader(payload, "Heart Rate Measurement")
    flags = r.u8("flags")
    bpm = r.u16("heart rate") if flags & 0x01 else r.u8("heart rate")
    contact = bool(flags & 0x02) if flags & 0x04 else None
    energy = r.u16("energy expended") if flags & 0x08 else None
    rr: tuple[float, ...] = ()
    if flags & 0x10:
        if r.remaining == 0 or r.remaining % 2:
            raise GattDecodeError(
                f"Heart Rate Measurement: RR flag set but {r.remaining} RR byte(s) follow"
            )
        rr = tuple(r.u16("RR interval") / 1024.0 for _ in range(r.remaining // 2))
    r.done()
    return HeartRateMeasurement(bpm, contact, energy, rr)


def _encode_hr(m: HeartRateMeasurement) -> bytes:
    wide = m.bpm > 0xFF
    flags = 0x01 if wide else 0
    if m.sensor_contact is not None:
        flags |= 0x04 | (0x02 if m.sensor_contact else 0)
    body = u_le(m.bpm, 2 if wide else 1, "bpm")
    if m.energy_expended_kj is not None:
        flags |= 0x08
        body += u_le(m.energy_expended_kj, 2, "energy_expended_kj")
    if m.rr_intervals_s:
        flags |= 0x10
        for rr in m.rr_intervals_s:
            body += u_le(round(rr * 1024), 2, "rr_intervals_s")
    return bytes((flags,)) + body


# ---------------------------------------------------------------------------
# Temperature Measurement 0x2A1C
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """Temperature Measurement (0x2A1C).

    Layout::

        uint8 flags   bit0 °F (else °C)   bit1 timestamp present   bit2 type present
        FLOAT         temperature in the flagged unit
        Date Time (7 bytes)                                  (bit1)
        uint8         temperature type (1 armpit, 2 body, 3 ear, 4 finger,
                      5 GI tract, 6 mouth, 7 rectum, 8 toe, 9 tympanum)  (bit2)

    Always held in °C; the encoder writes °C.
    """

    celsius: float
    timestamp: datetime | None = None
    temperature_type: int | None = None


def _decode_temperature(payload: bytes) -> TemperatureMeasurement:
    r = Reader(payload, "Temperature Measurement")
    flags = r.u8("flags")
    value = r.float32("temperature")
    celsius = (value - 32.0) * 5.0 / 9.0 if flags & 0x01 else value
    when = r.date_time("timestamp") if flags & 0x02 else None
    kind = r.u8("temperature type") if flags & 0x04 else None
    r.done()
    return TemperatureMeasurement(celsius, when, kind)


def _encode_temperature(m: TemperatureMeasurement) -> bytes:
    flags = 0
    body = u_le(float_to_raw(m.celsius), 4, "celsius")
    if m.timestamp is not None:
        flags |= 0x02
        body += date_time_to_bytes(m.timestamp)
    if m.temperature_type is not None:
        flags |= 0x04
        body += u_le(m.temperature_type, 1, "temperature_type")
    return bytes((flags,)) + body


# ---------------------------------------------------------------------------
# Blood Pressure Measurement 0x2A35
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BloodPressureMeasurement:
    """Blood Pressure Measurement (0x2A35).

    Layout::

        uint8 flags   bit0 kPa (else mmHg)   bit1 timestamp   bit2 pulse rate
                      bit3 user ID           bit4 measurement status
        SFLOAT systolic, SFLOAT diastolic, SFLOAT mean arterial pressure
        Date Time (7 bytes)                                  (bit1)
        SFLOAT pulse rate, bpm                               (bit2)
        uint8  user ID (255 = unknown user)                  (bit3)
        uint16 measurement status bits                       (bit4)

    Pressures are held in mmHg; the encoder writes mmHg.
    """

    systolic_mmhg: float
    diastolic_mmhg: float
    mean_mmhg: float
    timestamp: datetime | None = None
    pulse_rate: float | None = None
    user_id: int | None = None
    status: int | None = None


def _decode_bp(payload: bytes) -> BloodPressureMeasurement:
    r = Reader(payload, "Blood Pressure Measurement")
    flags = r.u8("flags")
    pressures = [r.sfloat("systolic"), r.sfloat("diastolic"), r.sfloat("mean")]
    if flags & 0x01:
        pressures = [p * MMHG_PER_KPA for p in pressures]
    when = r.date_time("timestamp") if flags & 0x02 else None
    pulse = r.sfloat("pulse rate") if flags & 0x04 else None
    user = r.u8("user ID") if flags & 0x08 else None
    status = r.u16("measurement status") if flags & 0x10 else None
    r.done()
    return BloodPressureMeasurement(*pressures, when, pulse, user, status)


def _encode_bp(m: BloodPressureMeasurement) -> bytes:
    flags = 0
    body = b"".join(
        u_le(sfloat_to_raw(v), 2, "pressure")
        for v in (m.systolic_mmhg, m.diastolic_mmhg, m.mean_mmhg)
    )
    if m.timestamp is not None:
        flags |= 0x02
        body += date_time_to_bytes(m.timestamp)
    if m.pulse_rate is not None:
        flags |= 0x04
        body += u_le(sfloat_to_raw(m.pulse_rate), 2, "pulse_rate")
    if m.user_id is not None:
        flags |= 0x08
        body += u_le(m.user_id, 1, "user_id")
    if m.status is not None:
        flags |= 0x10
        body += u_le(m.status, 2, "status")
    return bytes((flags,)) + body


# ---------------------------------------------------------------------------
# Battery Level 0x2A19
# ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class BatteryLevel:
    """Battery Level (0x2A19): one uint8, 0..100 %."""

    percent: int


def _decode_battery(payload: bytes) -> BatteryLevel:
    r = Reader(payload, "Battery Level")
    percent = r.u8("level")
    r.done()
    if percent > 100:
        raise GattDecodeError(f"Battery Level: {percent} % is above 100")
    return BatteryLevel(percent)


def _encode_battery(m: BatteryLevel) -> bytes:
    if not 0 <= m.percent <= 100:
        raise ValueError(f"battery level {m.percent} % outside 0..100")
    return bytes((m.percent,))


# ---------------------------------------------------------------------------
# Dispatch
# ---------------------------------------------------------------------------

_DECODERS: Final[dict[int | str, Callable[[bytes], Any]]] = {
    HEART_RATE_MEASUREMENT: _decode_hr,
    PLX_CONTINUOUS: decode_plx_continuous,
    PLX_SPOT_CHECK: decode_plx_spot,
    TEMPERATURE_MEASUREMENT: _decode_temperature,
    BLOOD_PRESSURE_MEASUREMENT: _decode_bp,
    BATTERY_LEVEL: _decode_battery,
    PMD_DATA: decode_ecg_frame,
    PMD_CONTROL_POINT: decode_control_point,
}

_ENCODERS: Final[dict[type, tuple[int | str, Callable[[Any], bytes]]]] = {
    HeartRateMeasurement: (HEART_RATE_MEASUREMENT, _encode_hr),
    PlxContinuous: (PLX_CONTINUOUS, encode_plx_continuous),
    PlxSpotCheck: (PLX_SPOT_CHECK, encode_plx_spot),
    TemperatureMeasurement: (TEMPERATURE_MEASUREMENT, _encode_temperature),
    BloodPressureMeasurement: (BLOOD_PRESSURE_MEASUREMENT, _encode_bp),
    BatteryLevel: (BATTERY_LEVEL, _encode_battery),
    PmdEcgFrame: (PMD_DATA, encode_ecg_frame),
    PmdGetSettings: (PMD_CONTROL_POINT, encode_control_point),
    PmdStartMeasurement: (PMD_CONTROL_POINT, encode_control_point),
    PmdStopMeasurement: (PMD_CONTROL_POINT, encode_control_point),
    PmdControlResponse: (PMD_CONTROL_POINT, encode_control_point),
    PmdFeatures: (PMD_CONTROL_POINT, encode_control_point),
}

Record = (
    HeartRateMeasurement
    | PlxContinuous
    | PlxSpotCheck
    | TemperatureMeasurement
    | BloodPressureMeasurement
    | BatteryLevel
    | PmdEcgFrame
    | PmdGetSettings
    | PmdStartMeasurement
    | PmdStopMeasurement
    | PmdControlResponse
    | PmdFeatures
)


def decode(uuid: int | str, payload: bytes | bytearray | memoryview) -> Record:
    """Decode one characteristic value.

    Parameters
    ----------
    uuid
        The characteristic: a 16-bit SIG number (``0x2A37``) or a 128-bit string.
    payload
        The value as received (notification, indication or read).

    Returns
    -------
    Record
        The frozen record for that characteristic.

    Raises
    ------
    GattDecodeError
        For any payload that is not a well-formed value of that characteristic,
        and for characteristics Vigil does not decode.
    """
    try:
        decoder = _DECODERS.get(normalize_uuid(uuid))
    except ValueError:
        decoder = None
    if decoder is None:
        raise GattDecodeError(f"no decoder for characteristic {uuid!r}")
    return decoder(bytes(payload))


def encode(record: Record) -> bytes:
    """Encode a record to the bytes its characteristic carries.

    Raises
    ------
    ValueError
        When a field does not fit its wire format (e.g. bpm above 65535).
    TypeError
        For an object that is not a codec record.
    """
    entry = _ENCODERS.get(type(record))
    if entry is None:
        raise TypeError(f"not a GATT record: {type(record).__name__}")
    return entry[1](record)


def uuid_of(record: Record) -> int | str:
    """The characteristic a record travels on (16-bit int or 128-bit string)."""
    entry = _ENCODERS.get(type(record))
    if entry is None:
        raise TypeError(f"not a GATT record: {type(record).__name__}")
    return entry[0]


def is_finite_reading(value: float | None) -> bool:
    """True for a present, finite reading (not None, NaN or ±inf)."""
    return value is not None and math.isfinite(value)


#: The Polar PMD service, re-exported for scanning filters.
POLAR_PMD_SERVICE: Final = PMD_SERVICE
