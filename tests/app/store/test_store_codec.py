"""The sample codec gives back every float32 bit pattern, and compresses real ECG."""

from __future__ import annotations

import numpy as np
import pytest
import wfdb
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from store_helpers import SHARED_DATA, same_bits, special_values

from app.store import codec
from app.store.errors import CodecError

MITDB = SHARED_DATA / "mitdb"


@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.uint32, st.integers(0, 600), elements=st.integers(0, 2**32 - 1)))
def test_any_bit_pattern_round_trips(bits: np.ndarray) -> None:
    x = bits.view(np.float32)
    name, blob = codec.encode(x)
    assert same_bits(codec.decode(name, blob, len(x)), x)


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1, 5000),
    st.sampled_from([1.0, 200.0, 400.0, 1000.0, 100_000.0, 25.6]),
    st.integers(0, 2**31 - 1),
)
def test_quantized_signals_round_trip(n: int, gain: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (np.cumsum(rng.integers(-40, 41, n)) / gain).astype(np.float32)
    name, blob = codec.encode(x, gain_hint=gain if seed % 2 else None)
    assert same_bits(codec.decode(name, blob, n), x)


def test_specials_on_a_grid_keep_the_quantized_codec() -> None:
    x = special_values(np.random.default_rng(1), 4096)
    name, blob = codec.encode(x)
    assert name == codec.QUANTIZED
    assert same_bits(codec.decode(name, blob, len(x)), x)


def test_off_grid_data_falls_back_and_still_round_trips() -> None:
    x = np.random.default_rng(2).normal(size=4096).astype(np.float32)
    name, blob = codec.encode(x)
    assert name == codec.SHUFFLED
    assert same_bits(codec.decode(name, blob, len(x)), x)


@pytest.mark.skipif(not (MITDB / "101.hea").exists(), reason="shared MIT-BIH data not present")
def test_real_ecg_compresses_at_least_five_to_one() -> None:
    x = wfdb.rdrecord(str(MITDB / "101"), sampto=4096 * 20, channels=[0]).p_signal[:, 0]
    x = x.astype(np.float32)
    raw = stored = 0
    hint = None
    for i in range(0, len(x), 4096):
        chunk = x[i : i + 4096]
        name, blob = codec.encode(chunk, hint)
        hint = codec.gain_of(name, blob)
        assert name == codec.QUANTIZED
        assert same_bits(codec.decode(name, blob, len(chunk)), chunk)
        raw += chunk.nbytes
        stored += len(blob)
    assert raw / stored > 5.0


@pytest.mark.parametrize("name", [codec.QUANTIZED, codec.SHUFFLED])
def test_damaged_or_mislabelled_chunks_raise(name: str) -> None:
    x = (np.arange(1000) / 200).astype(np.float32)
    good_name, blob = codec.encode(x)
    with pytest.raises(CodecError):
        codec.decode(name, blob[:-7] + b"garbage", len(x))
    with pytest.raises(CodecError):
        codec.decode(good_name, blob, len(x) + 1)
    with pytest.raises(CodecError):
        codec.decode("lz4-9", blob, len(x))


def test_empty_chunk() -> None:
    name, blob = codec.encode(np.empty(0, np.float32))
    assert codec.decode(name, blob, 0).size == 0
