"""Sample-making helpers shared by the store tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from devices.frames import SampleBlock

SHARED_DATA = Path(__file__).resolve().parents[4] / "shared" / "data"


def special_values(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 samples on a 1/200 mV grid, with NaN (two payloads), ±inf, -0.0 and denormals."""
    x = (rng.integers(-2048, 2048, n) / 200.0).astype(np.float32)
    bits = x.view(np.uint32)
    for pattern in (0x7FC00000, 0x7FC00001, 0xFFC00000, 0x7F800000, 0xFF800000, 0x80000000, 1):
        where = rng.random(n) < 0.01
        bits[where] = pattern
    return x


def blocks_of(
    x: np.ndarray,
    rng: np.random.Generator,
    *,
    stream: str = "ecg",
    fs: float = 360.0,
    first: int = 0,
) -> list[SampleBlock]:
    """Cut ``x`` into blocks of random sizes (1 to 300 samples)."""
    out, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 300))
        part = x[i : i + n]
        out.append(SampleBlock(stream, fs, first + i, (first + i) / fs, part))
        i += len(part)
    return out


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Bitwise equality of two float32 arrays (NaN payloads and -0.0 included)."""
    return a.dtype == b.dtype == np.float32 and np.array_equal(a.view(np.uint32), b.view(np.uint32))
