"""Golden vectors and malformed payloads for devices.gatt (SIG health profiles)."""

from __future__ import annotations

import math
from datetime import datetime

import pytest

from devices import gatt
from devices.gatt import (
    BatteryLevel,
    BloodPressureMeasurement,
    GattDecodeError,
    HeartRateMeasurement,
    PlxContinuous,
    PlxSpotCheck,
    TemperatureMeasurement,
    decode,
    encode,
)
from devices.gatt_fields import float_from_raw, sfloat_from_raw, sfloat_to_raw

# ---------------------------------------------------------------------------
# Heart Rate Measurement — vectors from NordicSemiconductor/Android-BLE-Common-Library,
# ble-common/src/test/java/no/nordicsemi/android/ble/common/callback/hr/
# HeartRateMeasurementDataCallbackTest.java (RR there is in raw 1/1024 s units),
# and movisens/SmartGattLib src/test/java/HeartRateMeasurementTest.java.
# ---------------------------------------------------------------------------

HR_GOLDEN = [
    # Nordic onHeartRateMeasurementReceived_simple
    (bytes([0, 85]), HeartRateMeasurement(85, None, None, ())),
    # Nordic onHeartRateMeasurementReceived_noContact
    (bytes([0x04, 0xFF]), HeartRateMeasurement(255, False, None, ())),
    # Nordic onHeartRateMeasurementReceived_uint8
    (bytes([0b11110, 85, 50, 0, 33, 0]), HeartRateMeasurement(85, True, 50, (33 / 1024,))),
    # Nordic onHeartRateMeasurementReceived_uint16
    (
        bytes([0b11111, 1, 1, 50, 1, 1, 0, 2, 1, 0xFF, 0xFF]),
        HeartRateMeasurement(257, True, 306, (1 / 1024, 258 / 1024, 65535 / 1024)),
    ),
    # SmartGattLib testHR: "16485401EC02" → 72 bpm, worn, RR 0.33203125 s and 0.73046875 s
    (
        bytes.fromhex("16485401EC02"),
        HeartRateMeasurement(72, True, None, (0.33203125, 0.73046875)),
    ),
]


@pytest.mark.parametrize(("payload", "expected"), HR_GOLDEN)
def test_heart_rate_golden(payload: bytes, expected: HeartRateMeasurement) -> None:
    assert decode(0x2A37, payload) == expected
    assert encode(expected) == payload


def test_heart_rate_flags_promise_rr_that_is_missing() -> None:
    # Nordic onInvalidDataReceived: uint16 HR + RR flag, but no RR bytes follow.
    with pytest.raises(GattDecodeError):
        decode(0x2A37, bytes([0b10111, 1, 1]))


@pytest.mark.parametrize(
    "payload",
    [
        b"",  # no flags
        bytes([0x00]),  # no heart rate
        bytes([0x01, 0x50]),  # uint16 HR cut short
        bytes([0x08, 0x50, 0x01]),  # energy cut short
        bytes([0x10, 0x50, 0x01, 0x02, 0x03]),  # odd RR byte count
        bytes([0x00, 0x50, 0x00]),  # trailing garbage
    ],
)
def test_heart_rate_malformed(payload: bytes) -> None:
    with pytest.raises(GattDecodeError):
        decode(0x2A37, payload)


# ---------------------------------------------------------------------------
# PLX — vectors from StanfordSpezi/SpeziBluetooth,
# Tests/SpeziBluetoothServicesTests/PLXTests.swift.
# ---------------------------------------------------------------------------


def test_plx_continuous_very_simple() -> None:
    # testVerySimpleMeasurementCoding: [0, 100, 0, 90, 0] and [0, 232, 243, 132, 243]
    # both mean SpO2 100 %, PR 90 bpm (exponent 0 versus mantissa 1000·10⁻¹).
    expected = PlxContinuous(spo2=100.0, pulse_rate=90.0)
    assert decode(0x2A5F, bytes([0, 100, 0, 90, 0])) == expected
    assert decode(0x2A5F, bytes([0, 232, 243, 132, 243])) == expected


def test_plx_continuous_simple() -> None:
    # testSimpleMeasurementCoding: status "measurement ongoing" (bit 5), empty device
    # status, pulse amplitude index 8.7 %.
    payload = bytes([28, 95, 0, 90, 0, 32, 0, 0, 0, 0, 87, 240])
    expected = PlxContinuous(
        spo2=95.0,
        pulse_rate=90.0,
        measurement_status=0x0020,
        device_status=0,
        pulse_amplitude_index=8.7,
    )
    assert decode(0x2A5F, payload) == expected
    assert encode(expected) == payload


def test_plx_continuous_full() -> None:
    # testFullMeasurementCoding: all optional fields present.
    payload = bytes(
        [31, 222, 243, 202, 243, 202, 243, 90, 245, 212, 243, 178, 242, 32, 1, 0, 0, 0, 122, 227]
    )
    m = decode(0x2A5F, payload)
    assert isinstance(m, PlxContinuous)
    assert (m.spo2, m.pulse_rate) == (99.0, 97.0)
    assert (m.spo2_fast, m.pr_fast) == (97.0, 137.0)
    assert (m.spo2_slow, m.pr_slow) == (98.0, 69.0)
    assert m.measurement_status == 0x0120  # ongoing + fully qualified
    assert m.device_status == 0
    assert m.pulse_amplitude_index == pytest.approx(8.9)
    assert decode(0x2A5F, encode(m)) == m


def test_plx_spot_check() -> None:
    # testSpotCheckMeasurementCoding: 94 %, 147 bpm, 2024-11-29 23:08:57.
    payload = bytes([15, 172, 243, 190, 245, 232, 7, 11, 29, 23, 8, 57, 32, 64, 34, 0, 0, 102, 227])
    m = decode(0x2A5E, payload)
    assert m == PlxSpotCheck(
        spo2=94.0,
        pulse_rate=147.0,
        timestamp=datetime(2024, 11, 29, 23, 8, 57),
        measurement_status=0x4020,
        device_status=0x000022,
        pulse_amplitude_index=8.7,
    )
    assert decode(0x2A5E, encode(m)) == m


@pytest.mark.parametrize(
    ("uuid", "payload"),
    [
        (0x2A5F, bytes([0, 100, 0, 90])),  # PR cut short
        (0x2A5F, bytes([0x01, 100, 0, 90, 0])),  # promises fast pair
        (0x2A5F, bytes([0x08, 100, 0, 90, 0, 1, 2])),  # device status is 3 bytes
        (0x2A5F, bytes([0, 100, 0, 90, 0, 7])),  # trailing garbage
        (0x2A5E, bytes([0x01, 100, 0, 90, 0, 0xE8, 0x07, 11])),  # timestamp cut short
        (0x2A5E, bytes([0x01, 100, 0, 90, 0, 0xE8, 0x07, 13, 1, 0, 0, 0])),  # month 13
        (0x2A5E, bytes([0x01, 100, 0, 90, 0, 0xE8, 0x07, 2, 30, 0, 0, 0])),  # 30 February
    ],
)
def test_plx_malformed(uuid: int, payload: bytes) -> None:
    with pytest.raises(GattDecodeError):
        decode(uuid, payload)


def test_plx_special_values_are_nan_and_inf() -> None:
    # SpO2 = NaN (0x07FF), PR = +INF (0x07FE), PAI = NRes (0x0800) → NaN.
    m = decode(0x2A5F, bytes([0x10, 0xFF, 0x07, 0xFE, 0x07, 0x00, 0x08]))
    assert math.isnan(m.spo2)
    assert m.pulse_rate == math.inf
    assert math.isnan(m.pulse_amplitude_index)
    again = decode(0x2A5F, encode(m))
    assert math.isnan(again.spo2) and again.pulse_rate == math.inf


# ---------------------------------------------------------------------------
# Temperature — vector from NordicSemiconductor/Android-BLE-Common-Library,
# .../callback/ht/TemperatureMeasurementDataCallbackTest.java.
# ---------------------------------------------------------------------------

NORDIC_HT = bytes([0x06, 0xB0, 0x0E, 0x00, 0xFE, 0xDC, 0x07, 0x0C, 0x05, 0x0B, 0x32, 0x1B, 0x04])


def test_temperature_golden() -> None:
    m = decode(0x2A1C, NORDIC_HT)
    assert m == TemperatureMeasurement(
        celsius=37.6, timestamp=datetime(2012, 12, 5, 11, 50, 27), temperature_type=4
    )
    assert decode(0x2A1C, encode(m)) == m


def test_temperature_nordic_invalid_missing_type() -> None:
    # Nordic onInvalidDataReceived: same value without the promised type byte.
    with pytest.raises(GattDecodeError):
        decode(0x2A1C, NORDIC_HT[:-1])


def test_temperature_fahrenheit_is_converted() -> None:
    # 98.6 °F = 986·10⁻¹ → 37 °C.
    payload = bytes([0x01]) + ((0xFF << 24) | 986).to_bytes(4, "little")
    m = decode(0x2A1C, payload)
    assert m.celsius == pytest.approx(37.0)
    assert m.timestamp is None and m.temperature_type is None


def test_temperature_year_zero_is_unknown() -> None:
    payload = bytes([0x02]) + (376 | (0xFF << 24)).to_bytes(4, "little") + bytes(7)
    assert decode(0x2A1C, payload).timestamp is None


def test_temperature_float_specials() -> None:
    for raw, check in [
        (0x007FFFFF, math.isnan),
        (0x00800000, math.isnan),
        (0x007FFFFE, lambda v: v == math.inf),
        (0x00800002, lambda v: v == -math.inf),
    ]:
        assert check(float_from_raw(raw))
        assert check(decode(0x2A1C, bytes([0]) + raw.to_bytes(4, "little")).celsius)


# ---------------------------------------------------------------------------
# Blood pressure — vectors from NordicSemiconductor/Android-BLE-Common-Library,
# .../callback/bps/BloodPressureMeasurementDataCallbackTest.java.
# ---------------------------------------------------------------------------


def test_blood_pressure_full() -> None:
    # onBloodPressureMeasurementReceived_full: 138/88 (120) mmHg, year 0 (unknown) → no
    # timestamp, pulse 60, user 1, status 0b100111.
    payload = bytes(
        [0x1E, 0x8A, 0x00, 0x58, 0x00, 0x78, 0x00, 0x00, 0x00, 0x04, 0x11, 0x14, 0x29, 0x3B]
        + [0x3C, 0x00, 0x01, 0x27, 0x00]
    )
    m = decode(0x2A35, payload)
    assert m == BloodPressureMeasurement(138.0, 88.0, 120.0, None, 60.0, 1, 0b100111)


def test_blood_pressure_kpa_is_converted() -> None:
    # onBloodPressureMeasurementReceived_some: 18.9/11.0 (15.9) kPa, pulse 60, status 0b010010.
    payload = bytes([0x15, 0xBD, 0xF0, 0x0B, 0x00, 0x9F, 0xF0, 0x3C, 0x00, 0x12, 0x00])
    m = decode(0x2A35, payload)
    assert m.systolic_mmhg == pytest.approx(18.9 * 7.50062, rel=1e-5)
    assert m.diastolic_mmhg == pytest.approx(11.0 * 7.50062, rel=1e-5)
    assert m.mean_mmhg == pytest.approx(15.9 * 7.50062, rel=1e-5)
    assert (m.timestamp, m.pulse_rate, m.user_id, m.status) == (None, 60.0, None, 0b010010)


def test_blood_pressure_minimal() -> None:
    # onBloodPressureMeasurementReceived_minimal (mmHg flag, values 18.9/11/15.9).
    payload = bytes([0x00, 0xBD, 0xF0, 0x0B, 0x00, 0x9F, 0xF0])
    m = decode(0x2A35, payload)
    assert m == BloodPressureMeasurement(18.9, 11.0, 15.9)
    assert encode(m) == payload  # same exponent choice as the published encoder


@pytest.mark.parametrize(
    "payload",
    [
        bytes([1, 2, 3, 4, 5, 6]),  # Nordic onInvalidDataReceived_toShort
        bytes([3, 2, 3, 4, 5, 6, 7]),  # Nordic onInvalidDataReceived_noTimestamp
        bytes([0x08, 0x8A, 0x00, 0x58, 0x00, 0x78, 0x00]),  # promises user ID
        bytes([0x00, 0x8A, 0x00, 0x58, 0x00, 0x78, 0x00, 0x00]),  # trailing byte
    ],
)
def test_blood_pressure_malformed(payload: bytes) -> None:
    with pytest.raises(GattDecodeError):
        decode(0x2A35, payload)


# ---------------------------------------------------------------------------
# Battery — SmartGattLib BatteryLevelTest "2C" → 44 %.
# ---------------------------------------------------------------------------


def test_battery_golden_and_limits() -> None:
    assert decode(0x2A19, bytes.fromhex("2C")) == BatteryLevel(44)
    assert encode(BatteryLevel(44)) == b"\x2c"
    for bad in (b"", b"\x65", b"\x10\x00"):
        with pytest.raises(GattDecodeError):
            decode(0x2A19, bad)


# ---------------------------------------------------------------------------
# Numbers and dispatch
# ---------------------------------------------------------------------------


def test_sfloat_specials_and_signs() -> None:
    assert math.isnan(sfloat_from_raw(0x07FF))
    assert math.isnan(sfloat_from_raw(0x0800))
    assert math.isnan(sfloat_from_raw(0x0801))
    assert sfloat_from_raw(0x07FE) == math.inf
    assert sfloat_from_raw(0x0802) == -math.inf
    assert sfloat_from_raw(0xFFFF) == pytest.approx(-0.1)  # mantissa −1, exponent −1
    assert sfloat_to_raw(math.nan) == 0x07FF
    assert sfloat_to_raw(-math.inf) == 0x0802
    assert sfloat_to_raw(2046.0) != 0x07FE  # a real 2046 must not read back as +INF


@pytest.mark.parametrize("uuid", [0x2A37, "2a37", "0x2A37", "00002A37-0000-1000-8000-00805F9B34FB"])
def test_uuid_forms_agree(uuid: int | str) -> None:
    assert decode(uuid, bytes([0, 60])) == HeartRateMeasurement(60)


def test_unknown_characteristic_is_a_decode_error() -> None:
    with pytest.raises(GattDecodeError):
        decode(0x2A00, b"Vigil")
    with pytest.raises(GattDecodeError):
        decode("not-a-uuid", b"\x00")


def test_encode_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(ValueError):
        encode(HeartRateMeasurement(70_000))
    with pytest.raises(ValueError):
        encode(BatteryLevel(101))
    with pytest.raises(TypeError):
        encode("not a record")  # type: ignore[arg-type]
    assert gatt.uuid_of(BatteryLevel(5)) == 0x2A19
