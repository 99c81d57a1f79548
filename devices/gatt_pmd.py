"""Polar Measurement Data (PMD): raw ECG frames and the control point.

Layouts follow Polar's "Polar Measurement Data Specification for 3rd party"
(polarofficial/polar-ble-sdk, technical_documentation/
Polar_Measurement_Data_Specification.pdf). All integers are little-endian.

PMD data characteristic ``FB005C82-…`` (notify), ECG frame::

    byte 0      measurement type   0 = ECG (only type decoded here)
    bytes 1..8  uint64 timestamp   ns since 2000-01-01T00:00:00, of the LAST sample
    byte 9      frame type         0 = raw, 3-byte samples (bit 7 = compressed,
                                   not produced by an H10 for ECG and refused here)
    bytes 10..  N × int24          ECG samples in µV

PMD control point ``FB005C81-…`` (write + indicate, read gives features).

Requests (written by the workstation)::

    01 tt                         get measurement settings of type tt
    02 tt [st nn vv vv]*          start measurement tt with settings: setting type
                                  st, count nn, then nn values (width per st below)
    03 tt                         stop measurement tt

    ECG start at 130 Hz, 14 bit: 02 00 00 01 82 00 01 01 0E 00

Response (indicated by the sensor, after the write response)::

    F0 op tt ss [mm] [settings…]  op = echoed op code, tt = type, ss = status
                                  (PmdStatus), mm = "more frames" (0/1, present
                                  when the sensor sends it), then for a successful
                                  get-settings the same setting TLVs as above.

Features (read value)::

    0F bb [bb…]                   bitmask of supported measurement types
                                  (bit 0 ECG, 1 PPG, 2 ACC, 3 PPI, 5 GYRO, 6 MAG)

Setting widths (bytes per value): 0 sample rate 2, 1 resolution 2, 2 range 2,
3 range in milli-units 4, 4 channels 1, 5 conversion factor 4.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from devices.gatt_fields import GattDecodeError, Reader, u_le

PMD_SERVICE: Final = "fb005c80-02e7-f387-1cad-8acd2d8df0c8"
PMD_CONTROL_POINT: Final = "fb005c81-02e7-f387-1cad-8acd2d8df0c8"
PMD_DATA: Final = "fb005c82-02e7-f387-1cad-8acd2d8df0c8"

#: Polar's PMD clock counts from here.
PMD_EPOCH: Final = datetime(2000, 1, 1, tzinfo=UTC)

PMD_TYPE_ECG: Final = 0
PMD_FRAME_RAW: Final = 0
ECG_SAMPLE_RATE_HZ: Final = 130
ECG_RESOLUTION_BITS: Final = 14

OP_GET_SETTINGS: Final = 0x01
OP_START: Final = 0x02
OP_STOP: Final = 0x03
RESPONSE_CODE: Final = 0xF0
FEATURES_CODE: Final = 0x0F

SETTING_SAMPLE_RATE: Final = 0
SETTING_RESOLUTION: Final = 1
_SETTING_WIDTH: Final[dict[int, int]] = {0: 2, 1: 2, 2: 2, 3: 4, 4: 1, 5: 4}

_INT24_MIN: Final = -(1 << 23)
_INT24_MAX: Final = (1 << 23) - 1


class PmdStatus(enum.IntEnum):
    """Status byte of a PMD control point response."""

    SUCCESS = 0
    INVALID_OP_CODE = 1
    INVALID_MEASUREMENT_TYPE = 2
    NOT_SUPPORTED = 3
    INVALID_LENGTH = 4
    INVALID_PARAMETER = 5
    ALREADY_IN_STATE = 6
    INVALID_RESOLUTION = 7
    INVALID_SAMPLE_RATE = 8
    INVALID_RANGE = 9
    INVALID_MTU = 10
    INVALID_NUMBER_OF_CHANNELS = 11
    INVALID_STATE = 12
    DEVICE_IN_CHARGER = 13


#: Settings as ``((setting type, (value, …)), …)``; tuples keep records hashable.
PmdSettings = tuple[tuple[int, tuple[int, ...]], ...]

ECG_SETTINGS: Final[PmdSettings] = (
    (SETTING_SAMPLE_RATE, (ECG_SAMPLE_RATE_HZ,)),
    (SETTING_RESOLUTION, (ECG_RESOLUTION_BITS,)),
)


@dataclass(frozen=True, slots=True)
class PmdEcgFrame:
    """One raw ECG frame from the PMD data characteristic.

    Parameters
    ----------
    timestamp_ns
        Sensor time of the last sample, ns since 2000-01-01 (:data:`PMD_EPOCH`).
    samples_uv
        ECG samples in microvolts, oldest first.
    """

    timestamp_ns: int
    samples_uv: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class PmdGetSettings:
    """Control point request: which settings does ``measurement_type`` support?"""

    measurement_type: int = PMD_TYPE_ECG


@dataclass(frozen=True, slots=True)
class PmdStartMeasurement:
    """Control point request: start streaming ``measurement_type`` with ``settings``."""

    measurement_type: int = PMD_TYPE_ECG
    settings: PmdSettings = ECG_SETTINGS

    def setting(self, setting_type: int) -> tuple[int, ...] | None:
        """Values of one setting, or None when it was not requested."""
        return dict(self.settings).get(setting_type)


@dataclass(frozen=True, slots=True)
class PmdStopMeasurement:
    """Control point request: stop streaming ``measurement_type``."""

    measurement_type: int = PMD_TYPE_ECG


@dataclass(frozen=True, slots=True)
class PmdControlResponse:
    """Control point indication answering a request.

    Parameters
    ----------
    op_code
        The request's op code (1 get settings, 2 start, 3 stop).
    measurement_type
        The request's measurement type.
    status
        Raw status byte; :attr:`status_name` names it.
    more
        The "more frames" byte when the sensor sent one, else None.
    settings
        For a successful get-settings: what the sensor supports.
    """

    op_code: int
    measurement_type: int
    status: int
    more: int | None = None
    settings: PmdSettings = ()

    @property
    def ok(self) -> bool:
        return self.status == PmdStatus.SUCCESS

    @property
    def status_name(self) -> str:
        try:
            return PmdStatus(self.status).name
        except ValueError:
            return f"UNKNOWN_{self.status}"


@dataclass(frozen=True, slots=True)
class PmdFeatures:
    """Control point read value: the measurement types the sensor offers."""

    measurement_types: frozenset[int]


PmdControlRecord = (
    PmdGetSettings | PmdStartMeasurement | PmdStopMeasurement | PmdControlResponse | PmdFeatures
)


def pmd_timestamp_to_datetime(timestamp_ns: int) -> datetime:
    """Sensor timestamp (ns since 2000-01-01) as an aware UTC datetime."""
    return datetime.fromtimestamp(PMD_EPOCH.timestamp() + timestamp_ns / 1e9, tz=UTC)


def decode_ecg_frame(payload: bytes) -> PmdEcgFrame:
    """Decode a PMD data notification carrying a raw ECG frame."""
    r = Reader(payload, "PMD data")
    measurement_type = r.u8("measurement type")
    if measurement_type != PMD_TYPE_ECG:
        raise GattDecodeError(f"PMD data: measurement type {measurement_type} is not ECG")
    timestamp_ns = r.u64("timestamp")
    frame_type = r.u8("frame type")
    if frame_type != PMD_FRAME_RAW:
        raise GattDecodeError(f"PMD data: ECG frame type {frame_type:#04x} not supported")
    body = r.take(r.remaining, "samples")
    if not body or len(body) % 3:
        raise GattDecodeError(f"PMD data: {len(body)} sample bytes is not a whole number of int24")
    samples = tuple(
        int.from_bytes(body[i : i + 3], "little", signed=True) for i in range(0, len(body), 3)
    )
    return PmdEcgFrame(timestamp_ns=timestamp_ns, samples_uv=samples)


def encode_ecg_frame(frame: PmdEcgFrame) -> bytes:
    """Encode a raw ECG frame as the sensor sends it."""
    if not frame.samples_uv:
        raise ValueError("a PMD ECG frame needs at least one sample")
    out = bytearray((PMD_TYPE_ECG,))
    out += u_le(frame.timestamp_ns, 8, "timestamp_ns")
    out.append(PMD_FRAME_RAW)
    for uv in frame.samples_uv:
        if not _INT24_MIN <= uv <= _INT24_MAX:
            raise ValueError(f"ECG sample {uv} µV does not fit in int24")
        out += int(uv).to_bytes(3, "little", signed=True)
    return bytes(out)


def _read_settings(r: Reader) -> PmdSettings:
    settings: list[tuple[int, tuple[int, ...]]] = []
    while r.remaining:
        setting_type = r.u8("setting type")
        width = _SETTING_WIDTH.get(setting_type)
        if width is None:
            raise GattDecodeError(f"PMD control point: unknown setting type {setting_type}")
        count = r.u8("setting count")
        if count == 0:
            raise GattDecodeError(f"PMD control point: setting {setting_type} has no values")
        values = tuple(
            int.from_bytes(r.take(width, "setting value"), "little") for _ in range(count)
        )
        settings.append((setting_type, values))
    return tuple(settings)


def _write_settings(settings: PmdSettings) -> bytes:
    out = bytearray()
    for setting_type, values in settings:
        width = _SETTING_WIDTH.get(setting_type)
        if width is None:
            raise ValueError(f"unknown PMD setting type {setting_type}")
        if not 0 < len(values) < 256:
            raise ValueError(f"PMD setting {setting_type} needs 1..255 values")
        out += bytes((setting_type, len(values)))
        for value in values:
            out += u_le(value, width, f"setting {setting_type}")
    return bytes(out)


def decode_control_point(payload: bytes) -> PmdControlRecord:
    """Decode a control point value: a request, a response indication or features."""
    r = Reader(payload, "PMD control point")
    code = r.u8("op code")
    if code == FEATURES_CODE:
        mask = r.take(r.remaining, "feature bitmask")
        if not mask:
            raise GattDecodeError("PMD control point: features without a bitmask")
        types = frozenset(
            8 * i + bit for i, byte in enumerate(mask) for bit in range(8) if byte >> bit & 1
        )
        return PmdFeatures(measurement_types=types)
    if code == RESPONSE_CODE:
        op_code = r.u8("response op code")
        measurement_type = r.u8("response measurement type")
        status = r.u8("response status")
        more = r.u8("more frames") if r.remaining else None
        if more is not None and more > 1:
            raise GattDecodeError(f"PMD control point: more-frames byte {more} is not 0/1")
        settings: PmdSettings = ()
        if r.remaining:
            if op_code != OP_GET_SETTINGS or status != PmdStatus.SUCCESS:
                raise GattDecodeError("PMD control point: parameters on a response that has none")
            settings = _read_settings(r)
        return PmdControlResponse(op_code, measurement_type, status, more, settings)
    measurement_type = r.u8("measurement type")
    if code == OP_GET_SETTINGS:
        r.done()
        return PmdGetSettings(measurement_type)
    if code == OP_STOP:
        r.done()
        return PmdStopMeasurement(measurement_type)
    if code == OP_START:
        return PmdStartMeasurement(measurement_type, _read_settings(r))
    raise GattDecodeError(f"PMD control point: unknown op code {code:#04x}")


def encode_control_point(record: PmdControlRecord) -> bytes:
    """Encode a control point request, response indication or features value."""
    if isinstance(record, PmdGetSettings):
        return bytes((OP_GET_SETTINGS, record.measurement_type))
    if isinstance(record, PmdStopMeasurement):
        return bytes((OP_STOP, record.measurement_type))
    if isinstance(record, PmdStartMeasurement):
        return bytes((OP_START, record.measurement_type)) + _write_settings(record.settings)
    if isinstance(record, PmdControlResponse):
        head = bytes((RESPONSE_CODE, record.op_code, record.measurement_type, record.status))
        if record.more is not None:
            head += bytes((record.more,))
        elif record.settings:
            raise ValueError("a response carrying settings needs its more-frames byte")
        return head + _write_settings(record.settings)
    if isinstance(record, PmdFeatures):
        if not record.measurement_types or min(record.measurement_types) < 0:
            raise ValueError("PMD features need at least one non-negative measurement type")
        mask = bytearray((max(record.measurement_types) // 8) + 1)
        for t in record.measurement_types:
            mask[t // 8] |= 1 << (t % 8)
        return bytes((FEATURES_CODE,)) + bytes(mask)
    raise TypeError(f"not a PMD control point record: {type(record).__name__}")
