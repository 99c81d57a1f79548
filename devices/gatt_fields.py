"""Field-level building blocks of the GATT codecs: bounded reads, IEEE-11073 numbers, date-times.

Every decoding helper here raises :class:`GattDecodeError` (a ``ValueError``) for
bytes that cannot be what the specification says they are; encoding helpers raise
plain ``ValueError`` for records that cannot be written.

IEEE-11073-20601 numbers, little-endian on the wire:

``SFLOAT`` (16 bit)::

    bits 15..12  exponent  (4-bit two's complement, base 10)
    bits 11..0   mantissa  (12-bit two's complement)
    special values (whole 16-bit word): 0x07FF NaN, 0x0800 NRes, 0x07FE +INF,
    0x0802 -INF, 0x0801 reserved.

``FLOAT`` (32 bit)::

    bits 31..24  exponent  (8-bit two's complement, base 10)
    bits 23..0   mantissa  (24-bit two's complement)
    special values: 0x007FFFFF NaN, 0x00800000 NRes, 0x007FFFFE +INF,
    0x00800002 -INF, 0x00800001 reserved.

NaN, NRes and the reserved value all decode to NaN: for the clinic each means
"no reading".

Bluetooth SIG ``Date Time`` (7 bytes)::

    uint16 year (1582..9999, 0 = unknown), uint8 month (1..12, 0 = unknown),
    uint8 day (1..31, 0 = unknown), uint8 hours (0..23), uint8 minutes (0..59),
    uint8 seconds (0..59)

An unknown year, month or day decodes to ``None``: a partial date cannot be placed
on the patient's timeline.
"""

from __future__ import annotations

import math
import struct
from datetime import datetime
from typing import Final


class GattDecodeError(ValueError):
    """A characteristic value that does not match its specification.

    Raised for every malformed payload (too short, flags promising absent
    fields, trailing bytes, impossible values, unsupported frame types), and for
    nothing else, so a source can count it and carry on.
    """


_SFLOAT_SPECIAL: Final[dict[int, float]] = {
    0x07FF: math.nan,
    0x0800: math.nan,  # NRes: not at this resolution
    0x07FE: math.inf,
    0x0802: -math.inf,
    0x0801: math.nan,  # reserved for future use
}
_FLOAT_SPECIAL: Final[dict[int, float]] = {
    0x007FFFFF: math.nan,
    0x00800000: math.nan,
    0x007FFFFE: math.inf,
    0x00800002: -math.inf,
    0x00800001: math.nan,
}
_SFLOAT_NAN: Final = 0x07FF
_SFLOAT_POS_INF: Final = 0x07FE
_SFLOAT_NEG_INF: Final = 0x0802
_FLOAT_NAN: Final = 0x007FFFFF
_FLOAT_POS_INF: Final = 0x007FFFFE
_FLOAT_NEG_INF: Final = 0x00800002

DATE_TIME_LEN: Final = 7


class Reader:
    """A cursor over a payload that refuses to read past its end."""

    __slots__ = ("_data", "_pos", "_what")

    def __init__(self, data: bytes, what: str) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._what = what

    def take(self, n: int, field: str) -> bytes:
        """Return the next ``n`` bytes or raise if the payload ends first."""
        end = self._pos + n
        if end > len(self._data):
            raise GattDecodeError(
                f"{self._what}: {field} needs {n} byte(s) at offset {self._pos}, "
                f"payload has {len(self._data)}"
            )
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def u8(self, field: str) -> int:
        return self.take(1, field)[0]

    def u16(self, field: str) -> int:
        return int.from_bytes(self.take(2, field), "little")

    def u24(self, field: str) -> int:
        return int.from_bytes(self.take(3, field), "little")

    def u32(self, field: str) -> int:
        return int.from_bytes(self.take(4, field), "little")

    def u64(self, field: str) -> int:
        return int.from_bytes(self.take(8, field), "little")

    def sfloat(self, field: str) -> float:
        return sfloat_from_raw(self.u16(field))

    def float32(self, field: str) -> float:
        return float_from_raw(self.u32(field))

    def date_time(self, field: str) -> datetime | None:
        return date_time_from_bytes(self.take(DATE_TIME_LEN, field), self._what)

    @property
    def remaining(self) -> int:
        return len(self._data) - self._pos

    def done(self) -> None:
        """Raise if bytes are left over: trailing garbage is a malformed payload."""
        if self.remaining:
            raise GattDecodeError(
                f"{self._what}: {self.remaining} trailing byte(s) after offset {self._pos}"
            )


def _scale(mantissa: int, exponent: int) -> float:
    # Dividing by an exact power of ten keeps 18.9 as the nearest double to 18.9,
    # which multiplying by 0.1 does not.
    if exponent >= 0:
        return float(mantissa * 10**exponent)
    return mantissa / 10**-exponent


def sfloat_from_raw(raw: int) -> float:
    """Decode a 16-bit IEEE-11073 SFLOAT word."""
    special = _SFLOAT_SPECIAL.get(raw)
    if special is not None:
        return special
    mantissa = raw & 0x0FFF
    if mantissa >= 0x0800:
        mantissa -= 0x1000
    exponent = raw >> 12
    if exponent >= 0x8:
        exponent -= 0x10
    return _scale(mantissa, exponent)


def float_from_raw(raw: int) -> float:
    """Decode a 32-bit IEEE-11073 FLOAT word."""
    special = _FLOAT_SPECIAL.get(raw)
    if special is not None:
        return special
    mantissa = raw & 0x00FFFFFF
    if mantissa >= 0x00800000:
        mantissa -= 0x01000000
    exponent = raw >> 24
    if exponent >= 0x80:
        exponent -= 0x100
    return _scale(mantissa, exponent)


def _to_11073(
    value: float,
    mantissa_max: int,
    exp_min: int,
    exp_max: int,
    specials: tuple[int, int, int],
) -> tuple[int, int] | int:
    """Pick mantissa and exponent for ``value``; return a special word for NaN/±inf.

    The exponent closest to zero that represents the value exactly (to 1e-9
    relative) wins, so 138 is written as 138·10⁰ and 18.9 as 189·10⁻¹ — the way
    published encoders write them. A value that no exponent holds exactly is
    rounded at the finest exponent whose mantissa still fits.
    """
    nan, pos_inf, neg_inf = specials
    if math.isnan(value):
        return nan
    if math.isinf(value):
        return pos_inf if value > 0 else neg_inf
    tolerance = 1e-9 * max(1.0, abs(value))
    # Zero first, then finer exponents, then coarser ones for large values.
    order = [0, *range(-1, exp_min - 1, -1), *range(1, exp_max + 1)]
    best: tuple[int, int] | None = None
    for exponent in order:
        mantissa = round(value / 10.0**exponent) if exponent >= 0 else round(value * 10**-exponent)
        if abs(mantissa) > mantissa_max:
            continue
        if abs(_scale(mantissa, exponent) - value) <= tolerance:
            return mantissa, exponent
        if best is None or exponent < best[1]:
            best = (mantissa, exponent)
    if best is None:
        raise ValueError(f"{value!r} is out of range for an IEEE-11073 number")
    return best


def sfloat_to_raw(value: float) -> int:
    """Encode ``value`` as a 16-bit SFLOAT word (see :func:`_to_11073` for rounding)."""
    # ±2045 keeps clear of the special words at exponent 0.
    picked = _to_11073(value, 2045, -8, 7, (_SFLOAT_NAN, _SFLOAT_POS_INF, _SFLOAT_NEG_INF))
    if isinstance(picked, int):
        return picked
    mantissa, exponent = picked
    return ((exponent & 0xF) << 12) | (mantissa & 0x0FFF)


def float_to_raw(value: float) -> int:
    """Encode ``value`` as a 32-bit FLOAT word."""
    picked = _to_11073(value, 0x7FFFFD, -128, 127, (_FLOAT_NAN, _FLOAT_POS_INF, _FLOAT_NEG_INF))
    if isinstance(picked, int):
        return picked
    mantissa, exponent = picked
    return ((exponent & 0xFF) << 24) | (mantissa & 0x00FFFFFF)


def date_time_from_bytes(data: bytes, what: str = "Date Time") -> datetime | None:
    """Decode the 7-byte SIG Date Time; unknown year/month/day gives ``None``."""
    year, month, day, hour, minute, second = struct.unpack("<HBBBBB", data)
    if year == 0 or month == 0 or day == 0:
        return None
    if year < 1582 or year > 9999:
        raise GattDecodeError(f"{what}: year {year} outside 1582..9999")
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise GattDecodeError(f"{what}: impossible date-time: {exc}") from None


def date_time_to_bytes(when: datetime | None) -> bytes:
    """Encode a date-time to the 7-byte SIG layout (seconds resolution; None → all zero)."""
    if when is None:
        return bytes(DATE_TIME_LEN)
    if when.year < 1582:
        raise ValueError(f"year {when.year} cannot be written as a SIG Date Time")
    return struct.pack(
        "<HBBBBB", when.year, when.month, when.day, when.hour, when.minute, when.second
    )


def u_le(value: int, n_bytes: int, field: str) -> bytes:
    """Little-endian unsigned integer of ``n_bytes``; ValueError if it does not fit."""
    if not 0 <= value < 1 << (8 * n_bytes):
        raise ValueError(f"{field}={value} does not fit in {n_bytes} unsigned byte(s)")
    return value.to_bytes(n_bytes, "little")
