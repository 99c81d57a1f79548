"""Ring buffer: wrap-around, windows, gaps and concurrent push/read."""

from __future__ import annotations

import threading

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.ring import RingBuffer


@settings(max_examples=150, deadline=None)
@given(capacity=st.integers(1, 64), sizes=st.lists(st.integers(0, 100), min_size=1, max_size=30))
def test_ring_holds_the_newest_samples_across_wrap_around(capacity: int, sizes: list[int]) -> None:
    ring = RingBuffer(capacity, 100.0)
    stream = np.arange(sum(sizes), dtype=np.float32)
    at = 0
    for n in sizes:
        assert ring.push(at, stream[at : at + n]) == n
        at += n
    window = ring.latest(capacity)
    expected = stream[max(0, at - capacity) : at]
    assert window.first_index == max(0, at - capacity)
    np.testing.assert_array_equal(window.samples, expected)
    assert ring.end_index == at


@settings(max_examples=100, deadline=None)
@given(
    capacity=st.integers(4, 50),
    total=st.integers(0, 300),
    lo=st.integers(-20, 320),
    span=st.integers(0, 80),
)
def test_read_returns_exactly_the_held_part_of_any_window(
    capacity: int, total: int, lo: int, span: int
) -> None:
    ring = RingBuffer(capacity, 1.0)
    data = np.arange(total, dtype=np.float32) * 0.5
    for start in range(0, total, 7):
        ring.push(start, data[start : start + 7])
    window = ring.read(lo, lo + span)
    held_lo, held_hi = max(0, total - capacity), total
    want_lo, want_hi = max(lo, held_lo), min(lo + span, held_hi)
    if want_hi > want_lo:
        assert window.first_index == want_lo
        np.testing.assert_array_equal(window.samples, data[want_lo:want_hi])
    else:
        assert len(window.samples) == 0
    assert not window.samples.flags.writeable


def test_a_jump_ahead_is_a_nan_gap_and_a_duplicate_is_dropped() -> None:
    ring = RingBuffer(20, 10.0)
    ring.push(0, np.ones(5))
    ring.push(8, np.full(3, 2.0))  # samples 5..7 never arrived
    window = ring.read(0, 11)
    assert np.isnan(window.samples[5:8]).all()
    assert ring.gap_samples == 3
    assert ring.push(9, np.full(4, 3.0)) == 2  # 9, 10 already held
    assert ring.overlapped == 2
    np.testing.assert_array_equal(ring.read(11, 13).samples, [3.0, 3.0])


def test_concurrent_push_and_read_never_tear_a_window() -> None:
    ring = RingBuffer(1000, 360.0)
    stop = threading.Event()
    errors: list[str] = []

    def writer() -> None:
        at = 0
        while not stop.is_set() and at < 2_000_000:
            block = np.arange(at, at + 37, dtype=np.float64).astype(np.float32)
            ring.push(at, block)
            at += 37

    def reader() -> None:
        for _ in range(3000):
            w = ring.latest(500)
            s = w.samples
            # Values equal their counters (exact in float32 below 2**24).
            if len(s) and not np.array_equal(
                s, np.arange(w.first_index, w.end_index, dtype=np.float32)
            ):
                errors.append(f"torn window at {w.first_index}")
                return

    t_w = threading.Thread(target=writer, name="ring-writer")
    t_r = threading.Thread(target=reader, name="ring-reader")
    t_w.start()
    t_r.start()
    t_r.join()
    stop.set()
    t_w.join()
    assert not errors
