"""Property tests for devices.gatt: encode→decode round trips and fuzzed payloads."""

from __future__ import annotations

import math
import random
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from devices import gatt
from devices.gatt import (
    BatteryLevel,
    BloodPressureMeasurement,
    GattDecodeError,
    HeartRateMeasurement,
    PlxContinuous,
    PlxSpotCheck,
    PmdControlResponse,
    PmdEcgFrame,
    PmdFeatures,
    PmdGetSettings,
    PmdStartMeasurement,
    PmdStopMeasurement,
    TemperatureMeasurement,
    decode,
    encode,
)
from devices.gatt_pmd import PMD_CONTROL_POINT, PMD_DATA

# Values that an SFLOAT holds exactly: mantissa ±2045 at exponents −3..2, plus specials.
sfloats = st.one_of(
    st.builds(
        lambda m, e: m * 10**e if e >= 0 else m / 10**-e,
        st.integers(-2045, 2045),
        st.integers(-3, 2),
    ).map(float),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
floats32 = st.one_of(
    st.builds(lambda m, e: m / 10**e, st.integers(-8_000_000, 8_000_000), st.integers(0, 4)),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)
opt = st.none
times = st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


def _same(a: object, b: object) -> bool:
    """Field-wise equality where NaN equals NaN and floats match to 1e-9 relative."""
    if type(a) is not type(b):
        return False
    for name in a.__dataclass_fields__:  # type: ignore[attr-defined]
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, float) and isinstance(y, float):
            if math.isnan(x) and math.isnan(y):
                continue
            if not (x == y or math.isclose(x, y, rel_tol=1e-9)):
                return False
        elif x != y:
            return False
    return True


def _pair(s: st.SearchStrategy[float]) -> st.SearchStrategy[tuple[float | None, float | None]]:
    return st.one_of(st.just((None, None)), st.tuples(s, s))


heart_rates = st.builds(
    HeartRateMeasurement,
    bpm=st.integers(0, 0xFFFF),
    sensor_contact=st.one_of(opt(), st.booleans()),
    energy_expended_kj=st.one_of(opt(), st.integers(0, 0xFFFF)),
    rr_intervals_s=st.lists(st.integers(0, 0xFFFF), max_size=9).map(
        lambda xs: tuple(x / 1024 for x in xs)
    ),
)
plx_continuous = st.builds(
    lambda base, fast, slow, status, device, pai: PlxContinuous(
        *base, *fast, *slow, status, device, pai
    ),
    st.tuples(sfloats, sfloats),
    _pair(sfloats),
    _pair(sfloats),
    st.one_of(opt(), st.integers(0, 0xFFFF)),
    st.one_of(opt(), st.integers(0, 0xFFFFFF)),
    st.one_of(opt(), sfloats),
)
plx_spot = st.builds(
    PlxSpotCheck,
    spo2=sfloats,
    pulse_rate=sfloats,
    timestamp=st.one_of(opt(), times),
    measurement_status=st.one_of(opt(), st.integers(0, 0xFFFF)),
    device_status=st.one_of(opt(), st.integers(0, 0xFFFFFF)),
    pulse_amplitude_index=st.one_of(opt(), sfloats),
)
temperatures = st.builds(
    TemperatureMeasurement,
    celsius=floats32,
    timestamp=st.one_of(opt(), times),
    temperature_type=st.one_of(opt(), st.integers(0, 255)),
)
blood_pressures = st.builds(
    BloodPressureMeasurement,
    systolic_mmhg=sfloats,
    diastolic_mmhg=sfloats,
    mean_mmhg=sfloats,
    timestamp=st.one_of(opt(), times),
    pulse_rate=st.one_of(opt(), sfloats),
    user_id=st.one_of(opt(), st.integers(0, 255)),
    status=st.one_of(opt(), st.integers(0, 0xFFFF)),
)
settings_tlv = st.lists(
    st.tuples(
        st.sampled_from([0, 1, 2, 4]),
        st.lists(st.integers(0, 255), min_size=1, max_size=4).map(tuple),
    ),
    max_size=3,
).map(tuple)
pmd_records = st.one_of(
    st.builds(
        PmdEcgFrame,
        st.integers(0, 2**64 - 1),
        st.lists(st.integers(-(2**23), 2**23 - 1), min_size=1, max_size=80).map(tuple),
    ),
    st.builds(PmdGetSettings, st.integers(0, 255)),
    st.builds(PmdStopMeasurement, st.integers(0, 255)),
    st.builds(PmdStartMeasurement, st.integers(0, 255), settings_tlv),
    st.builds(
        PmdControlResponse,
        st.sampled_from([2, 3]),
        st.integers(0, 255),
        st.integers(0, 255),
        st.one_of(opt(), st.integers(0, 1)),
    ),
    st.builds(
        PmdControlResponse,
        st.just(1),
        st.integers(0, 255),
        st.just(0),
        st.integers(0, 1),
        settings_tlv,
    ),
    st.builds(PmdFeatures, st.frozensets(st.integers(0, 15), min_size=1)),
)
records = st.one_of(
    heart_rates,
    plx_continuous,
    plx_spot,
    temperatures,
    blood_pressures,
    st.builds(BatteryLevel, st.integers(0, 100)),
    pmd_records,
)


@settings(max_examples=400, deadline=None)
@given(records)
def test_encode_then_decode_gives_the_record_back(record: gatt.Record) -> None:
    payload = encode(record)
    back = decode(gatt.uuid_of(record), payload)
    assert _same(back, record), (record, payload.hex(), back)
    # Encoding is a function of the record: the bytes are stable.
    assert encode(back) == payload or not _same(back, record)


@settings(max_examples=300, deadline=None)
@given(records, st.binary(min_size=1, max_size=4))
def test_trailing_garbage_is_refused(record: gatt.Record, tail: bytes) -> None:
    uuid = gatt.uuid_of(record)
    # Only fixed-length tails are refused; variable-length lists (RR, samples,
    # settings, feature masks) may legitimately grow.
    if isinstance(record, (HeartRateMeasurement, PmdEcgFrame)) or uuid == PMD_CONTROL_POINT:
        return
    try:
        decode(uuid, encode(record) + tail)
    except GattDecodeError:
        return
    raise AssertionError("trailing bytes were accepted")


UUIDS = [0x2A37, 0x2A5F, 0x2A5E, 0x2A1C, 0x2A35, 0x2A19, PMD_DATA, PMD_CONTROL_POINT]


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(UUIDS), st.binary(max_size=40))
def test_fuzzed_payloads_only_raise_gatt_decode_error(uuid: int | str, payload: bytes) -> None:
    try:
        record = decode(uuid, payload)
    except GattDecodeError:
        return
    # Anything accepted must be writable again, except a kPa / °F reading whose
    # converted value no longer fits the wire format.
    converted = uuid in (0x2A35, 0x2A1C) and payload[0] & 0x01
    try:
        again = encode(record)
    except ValueError:
        assert converted
        return
    assert decode(uuid, again) is not None


def test_fuzz_with_mutated_valid_payloads() -> None:
    """Flip bytes and cut valid payloads: the sort of damage a radio does."""
    rng = random.Random(20240611)
    seeds = [
        (0x2A37, encode(HeartRateMeasurement(72, True, 10, (0.8, 0.81)))),
        (0x2A5F, encode(PlxContinuous(97.0, 70.0, 96.0, 71.0, 98.0, 69.0, 1, 2, 3.5))),
        (0x2A5E, encode(PlxSpotCheck(97.0, 70.0, datetime(2025, 1, 2, 3, 4, 5), 1, 2, 3.5))),
        (0x2A1C, encode(TemperatureMeasurement(37.2, datetime(2025, 1, 2, 3, 4, 5), 2))),
        (0x2A35, encode(BloodPressureMeasurement(120, 80, 93, datetime(2025, 1, 2), 60, 1, 0))),
        (PMD_DATA, encode(PmdEcgFrame(10**17, tuple(range(-30, 30))))),
        (PMD_CONTROL_POINT, encode(PmdStartMeasurement())),
    ]
    accepted = refused = 0
    for _ in range(2000):
        uuid, seed = rng.choice(seeds)
        data = bytearray(seed)
        for _ in range(rng.randint(1, 3)):
            op = rng.random()
            if op < 0.4 and data:
                data[rng.randrange(len(data))] = rng.randrange(256)
            elif op < 0.7:
                del data[rng.randrange(len(data) + 1) :]
            else:
                data += bytes(rng.randrange(256) for _ in range(rng.randint(1, 3)))
        try:
            decode(uuid, bytes(data))
            accepted += 1
        except GattDecodeError:
            refused += 1
    assert accepted + refused == 2000 and refused > 0
