"""NaN-aware statistics: the sliding median equals the median of each window."""

from __future__ import annotations

import numpy as np

from inference.nanstats import nanmedian_last, sliding_median


def test_sliding_median_equals_median_of_each_window() -> None:
    rng = np.random.default_rng(7)
    seq = rng.normal(size=400)
    seq[:20] = np.nan  # a record's start: history not there yet
    seq[150:153] = np.nan  # a gap in the middle
    seq[300:340] = 1.25  # ties
    for width in (1, 2, 17, 32, 256):
        windows = np.lib.stride_tricks.sliding_window_view(seq, width)
        want = nanmedian_last(windows)
        np.testing.assert_array_equal(sliding_median(seq, width), want)
    assert sliding_median(seq[:10], 32).shape == (0,)
