"""Polar PMD codecs: ECG frames and the control point."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from devices.gatt import (
    GattDecodeError,
    PmdControlResponse,
    PmdEcgFrame,
    PmdFeatures,
    PmdGetSettings,
    PmdStartMeasurement,
    PmdStatus,
    PmdStopMeasurement,
    decode,
    encode,
)
from devices.gatt_pmd import PMD_CONTROL_POINT, PMD_DATA, pmd_timestamp_to_datetime

CP = "FB005C81-02E7-F387-1CAD-8ACD2D8DF0C8"
DATA = "FB005C82-02E7-F387-1CAD-8ACD2D8DF0C8"


def test_start_ecg_command_bytes() -> None:
    # The ECG start request (130 Hz, 14 bit) as written by public H10 clients, e.g.
    # MGSWorkFriday/Serena-Project Mobile/services/bluetooth/constants.ts START_ECG_CMD,
    # and Polar_Measurement_Data_Specification.pdf (polarofficial/polar-ble-sdk).
    start = bytes([0x02, 0x00, 0x00, 0x01, 0x82, 0x00, 0x01, 0x01, 0x0E, 0x00])
    assert encode(PmdStartMeasurement()) == start
    record = decode(CP, start)
    assert record == PmdStartMeasurement()
    assert record.setting(0) == (130,) and record.setting(1) == (14,)
    # Stop ECG: 03 00 (same sources); get settings: 01 00.
    assert encode(PmdStopMeasurement()) == bytes([0x03, 0x00])
    assert decode(CP, bytes([0x03, 0x00])) == PmdStopMeasurement()
    assert encode(PmdGetSettings()) == bytes([0x01, 0x00])


def test_responses_with_status_codes() -> None:
    ok = decode(CP, bytes([0xF0, 0x02, 0x00, 0x00, 0x00]))
    assert ok == PmdControlResponse(op_code=2, measurement_type=0, status=0, more=0)
    assert ok.ok and ok.status_name == "SUCCESS"
    busy = decode(CP, bytes([0xF0, 0x02, 0x00, 0x06]))
    assert not busy.ok and busy.status_name == "ALREADY_IN_STATE" and busy.more is None
    assert decode(CP, bytes([0xF0, 0x02, 0x00, 0x63])).status_name == "UNKNOWN_99"
    assert PmdStatus.DEVICE_IN_CHARGER == 13


def test_get_settings_response_roundtrip() -> None:
    # H10 ECG settings: sample rate {130}, resolution {14}.
    payload = bytes([0xF0, 0x01, 0x00, 0x00, 0x00, 0x00, 0x01, 0x82, 0x00, 0x01, 0x01, 0x0E, 0x00])
    r = decode(CP, payload)
    assert r == PmdControlResponse(1, 0, 0, 0, ((0, (130,)), (1, (14,))))
    assert encode(r) == payload


def test_features_read_value() -> None:
    # H10: ECG (bit 0) and ACC (bit 2) → 0x0F 0x05.
    assert decode(CP, bytes([0x0F, 0x05])) == PmdFeatures(frozenset({0, 2}))
    assert encode(PmdFeatures(frozenset({0, 2}))) == bytes([0x0F, 0x05])


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        bytes([0x02]),  # no measurement type
        bytes([0x01, 0x00, 0x00]),  # trailing byte on get-settings
        bytes([0x02, 0x00, 0x00, 0x01, 0x82]),  # sample rate value cut short
        bytes([0x02, 0x00, 0x09, 0x01, 0x00]),  # unknown setting type
        bytes([0x02, 0x00, 0x00, 0x00]),  # setting with zero values
        bytes([0x7A, 0x00]),  # unknown op code
        bytes([0xF0, 0x02, 0x00]),  # response without status
        bytes([0xF0, 0x02, 0x00, 0x00, 0x05]),  # more-frames byte not 0/1
        bytes([0xF0, 0x02, 0x00, 0x00, 0x00, 0x01]),  # parameters on a start response
        bytes([0x0F]),  # features without bitmask
    ],
)
def test_control_point_malformed(payload: bytes) -> None:
    with pytest.raises(GattDecodeError):
        decode(PMD_CONTROL_POINT, payload)


def test_ecg_frame_layout() -> None:
    # Hand-built per the PMD spec: type 0, timestamp, frame type 0, three int24 µV samples.
    ts = 599_000_000_000_000_000  # ns since 2000-01-01
    payload = (
        bytes([0x00])
        + ts.to_bytes(8, "little")
        + bytes([0x00])
        + (-12).to_bytes(3, "little", signed=True)
        + (0).to_bytes(3, "little", signed=True)
        + (1234).to_bytes(3, "little", signed=True)
    )
    frame = decode(DATA, payload)
    assert frame == PmdEcgFrame(ts, (-12, 0, 1234))
    assert encode(frame) == payload
    # An H10 frame at MTU 232 carries 73 samples in 229 bytes (FIELD-NOTES.md).
    assert len(encode(PmdEcgFrame(ts, tuple(range(73))))) == 229


def test_pmd_epoch() -> None:
    assert pmd_timestamp_to_datetime(0) == datetime(2000, 1, 1, tzinfo=UTC)
    one_day = 86_400 * 10**9
    assert pmd_timestamp_to_datetime(one_day) == datetime(2000, 1, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "payload",
    [
        b"",
        bytes([0x00]) + bytes(8),  # no frame type
        bytes([0x00]) + bytes(8) + bytes([0x00]),  # no samples
        bytes([0x00]) + bytes(8) + bytes([0x00, 1, 2]),  # partial sample
        bytes([0x00]) + bytes(8) + bytes([0x00, 1, 2, 3, 4]),  # trailing byte
        bytes([0x02]) + bytes(8) + bytes([0x00, 1, 2, 3]),  # ACC, not ECG
        bytes([0x00]) + bytes(8) + bytes([0x80, 1, 2, 3]),  # compressed frame
    ],
)
def test_ecg_frame_malformed(payload: bytes) -> None:
    with pytest.raises(GattDecodeError):
        decode(PMD_DATA, payload)


def test_ecg_encode_limits() -> None:
    with pytest.raises(ValueError):
        encode(PmdEcgFrame(0, ()))
    with pytest.raises(ValueError):
        encode(PmdEcgFrame(0, (1 << 23,)))
