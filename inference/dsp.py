"""Signal processing for ECG: causal filters that stream, and resampling.

Live beds deliver samples block by block; offline analysis has whole
records.  Both go through :class:`StreamingFilter`, a causal IIR filter in
second-order sections whose state carries from one block to the next, so
filtering a record in one call or in blocks of any size gives the same
numbers.  :func:`filter_causal` is that batch form.

Recording gaps arrive as NaN.  A gap must not poison the filter state (an
IIR filter fed one NaN outputs NaN for ever), so the filter outputs NaN over
the gap and restarts at the first valid sample after it, in the steady state
for that sample's value, which avoids a step transient from the ECG's DC
offset.

Resampling (:func:`resample`) is polyphase (``scipy.signal.resample_poly``)
with the rate ratio approximated by a small fraction, for any input rate
(125-1000 Hz wearables and databases: Polar H10 130 Hz, BIDMC 125 Hz, svdb
128 Hz, MIT-BIH 360 Hz).
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Final

import numpy as np
from scipy import signal
from scipy.ndimage import maximum_filter1d

try:  # The compiled kernel behind scipy.signal.sosfilt, without its per-call
    # argument handling (~0.1 ms), which dominates when live blocks are small.
    from scipy.signal._sosfilt import _sosfilt as _sosfilt_inplace
except ImportError:  # pragma: no cover - other SciPy layouts use the public API
    _sosfilt_inplace = None

logger = logging.getLogger(__name__)

#: Largest up/down factor accepted when approximating a rate ratio.
MAX_RESAMPLE_FACTOR: Final = 1000

# Moving sums of squares run on integers (this many units per input unit
# squared) so that block boundaries cannot change rounding.
_RMS_SCALE: Final = 1024.0


def design_bandpass(fs_hz: float, low_hz: float, high_hz: float, order: int = 2) -> np.ndarray:
    """Butterworth band-pass as second-order sections.

    Parameters
    ----------
    fs_hz
        Sampling rate in Hz.
    low_hz, high_hz
        Pass band edges in Hz; ``high_hz`` is clipped below Nyquist.
    order
        Butterworth order per edge.

    Returns
    -------
    numpy.ndarray
        SOS array for :class:`StreamingFilter`.
    """
    nyquist = fs_hz / 2.0
    high = min(high_hz, 0.9 * nyquist)
    if not 0.0 < low_hz < high:
        raise ValueError(f"bad band {low_hz}-{high_hz} Hz at fs {fs_hz} Hz")
    return signal.butter(order, [low_hz, high], btype="bandpass", fs=fs_hz, output="sos")


def design_highpass(fs_hz: float, cutoff_hz: float, order: int = 1) -> np.ndarray:
    """Butterworth high-pass (baseline-wander removal) as second-order sections."""
    return signal.butter(order, cutoff_hz, btype="highpass", fs=fs_hz, output="sos")


def design_lowpass(fs_hz: float, cutoff_hz: float, order: int = 2) -> np.ndarray:
    """Butterworth low-pass as second-order sections (cutoff clipped below Nyquist)."""
    return signal.butter(
        order, min(cutoff_hz, 0.9 * fs_hz / 2.0), btype="lowpass", fs=fs_hz, output="sos"
    )


class StreamingFilter:
    """A causal SOS filter fed block by block, with NaN gaps that reset it.

    Parameters
    ----------
    sos
        Second-order sections, e.g. from :func:`design_bandpass`.

    Notes
    -----
    Not thread-safe: one instance belongs to one analyzer thread.
    """

    def __init__(self, sos: np.ndarray) -> None:
        self._sos = np.asarray(sos, dtype=np.float64)
        if self._sos.ndim != 2 or self._sos.shape[1] != 6:
            raise ValueError(f"sos must have shape (n, 6), got {self._sos.shape}")
        self._zi_unit = signal.sosfilt_zi(self._sos)
        self._zi: np.ndarray | None = None  # None: (re)start at the next valid sample

    @property
    def sos(self) -> np.ndarray:
        """The filter's second-order sections (copy)."""
        return self._sos.copy()

    def reset(self) -> None:
        """Forget the state; the next valid sample starts the filter afresh."""
        self._zi = None

    def process(self, block: np.ndarray) -> np.ndarray:
        """Filter one block, continuing from the previous one.

        Parameters
        ----------
        block
            1-D samples; NaN or inf marks missing samples.

        Returns
        -------
        numpy.ndarray
            float64 output of the same length; NaN where the input was not finite.
        """
        x = np.asarray(block, dtype=np.float64).ravel()
        out = np.empty_like(x)
        if len(x) == 0:
            return out
        finite = np.isfinite(x)
        if finite.all():
            out[:] = self._run(x)
            return out
        # Split into runs of valid samples; each gap resets the state.
        edges = np.flatnonzero(np.diff(finite.astype(np.int8))) + 1
        bounds = np.concatenate(([0], edges, [len(x)]))
        for a, b in zip(bounds[:-1], bounds[1:], strict=True):
            if finite[a]:
                out[a:b] = self._run(x[a:b])
            else:
                out[a:b] = np.nan
                self._zi = None
        return out

    def _run(self, x: np.ndarray) -> np.ndarray:
        if self._zi is None:
            self._zi = self._zi_unit * x[0]
        if _sosfilt_inplace is None:
            y, self._zi = signal.sosfilt(self._sos, x, zi=self._zi)
            return y
        # Same kernel and arithmetic as signal.sosfilt: filters y and the
        # state (shaped (1, n_sections, 2)) in place.
        y = np.array(x, dtype=np.float64, order="C").reshape(1, -1)
        zi = np.ascontiguousarray(self._zi.reshape(1, -1, 2))
        _sosfilt_inplace(self._sos, y, zi)
        self._zi = zi.reshape(-1, 2)
        return y[0]


class StreamingMovingRms:
    """Causal moving RMS over ``width`` samples, identical for any block split.

    The squares are summed as integers (1/1024 of the input unit squared), so
    the output does not depend on where blocks begin; inputs are clipped to
    ``±limit`` so that a block of a million samples cannot overflow.

    Parameters
    ----------
    width
        Window length in samples.
    limit
        Largest magnitude accepted; larger inputs are clipped.
    """

    def __init__(self, width: int, limit: float) -> None:
        if width < 1:
            raise ValueError("width must be at least 1")
        self._width = int(width)
        self._limit = float(limit)
        self._tail = np.zeros(self._width, dtype=np.int64)

    def process(self, block: np.ndarray) -> np.ndarray:
        """RMS of the last ``width`` inputs at each sample of ``block`` (zeros before the start).

        Parameters
        ----------
        block
            1-D finite samples.

        Returns
        -------
        numpy.ndarray
            float64 moving RMS, same length as ``block``.
        """
        x = np.clip(np.asarray(block, dtype=np.float64), -self._limit, self._limit)
        squares = np.rint(x * x * _RMS_SCALE).astype(np.int64)
        joined = np.concatenate((self._tail, squares))
        cum = np.cumsum(joined)
        w = self._width
        self._tail = joined[-w:]
        return np.sqrt((cum[w:] - cum[:-w]) / (w * _RMS_SCALE))


def window_max(a: np.ndarray, width: int) -> np.ndarray:
    """``out[i] = max(a[i:i+width])`` for every full window (``len(a) - width + 1`` values)."""
    if len(a) < width:
        return np.empty(0)
    full = maximum_filter1d(a, size=width, mode="nearest")
    return full[width // 2 : width // 2 + len(a) - width + 1]


def filter_causal(sos: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Batch form of :class:`StreamingFilter`: the same output as streaming ``x``.

    Parameters
    ----------
    sos
        Second-order sections.
    x
        1-D samples (NaN gaps allowed).

    Returns
    -------
    numpy.ndarray
        Filtered float64 samples, NaN over gaps.
    """
    return StreamingFilter(sos).process(x)


def rational_ratio(
    fs_in_hz: float, fs_out_hz: float, max_factor: int = MAX_RESAMPLE_FACTOR
) -> tuple[int, int]:
    """Smallest ``(up, down)`` with ``fs_in * up / down`` close to ``fs_out``.

    Parameters
    ----------
    fs_in_hz, fs_out_hz
        Input and wanted output rates in Hz.
    max_factor
        Largest allowed ``down`` (and so filter length) of the approximation.

    Returns
    -------
    tuple of int
        ``(up, down)``; the output rate is ``fs_in_hz * up / down``.
    """
    if fs_in_hz <= 0 or fs_out_hz <= 0:
        raise ValueError("sampling rates must be positive")
    exact = Fraction(fs_out_hz).limit_denominator(10_000) / Fraction(fs_in_hz).limit_denominator(
        10_000
    )
    ratio = exact.limit_denominator(max_factor)
    return ratio.numerator, ratio.denominator


def resample(
    x: np.ndarray, fs_in_hz: float, fs_out_hz: float, max_factor: int = MAX_RESAMPLE_FACTOR
) -> tuple[np.ndarray, float]:
    """Polyphase resampling of one signal, keeping NaN gaps as NaN.

    Parameters
    ----------
    x
        1-D samples at ``fs_in_hz`` (NaN marks gaps).
    fs_in_hz, fs_out_hz
        Input and wanted output rates in Hz (any, e.g. 125-1000 Hz).
    max_factor
        Bound on the rational approximation of the rate ratio.

    Returns
    -------
    tuple
        ``(y, fs_effective_hz)``: the resampled float64 signal and its exact
        rate (``fs_in * up / down``, equal to ``fs_out_hz`` whenever the ratio
        is a fraction with denominator ≤ ``max_factor``).  Output samples whose
        neighbouring input samples were NaN are NaN.
    """
    samples = np.asarray(x, dtype=np.float64).ravel()
    up, down = rational_ratio(fs_in_hz, fs_out_hz, max_factor)
    fs_effective = fs_in_hz * up / down
    if abs(fs_effective - fs_out_hz) > 1e-9 * fs_out_hz:
        logger.info("resample %.4f -> %.4f Hz approximated as %d/%d", fs_in_hz, fs_out_hz, up, down)
    n_out = int(np.ceil(len(samples) * up / down))
    if len(samples) == 0:
        return np.empty(0), fs_effective
    bad = ~np.isfinite(samples)
    if bad.all():
        return np.full(n_out, np.nan), fs_effective
    filled = samples
    if bad.any():
        # The polyphase filter spreads any NaN over its whole length: bridge
        # gaps by linear interpolation, then mark the gap again afterwards.
        idx = np.arange(len(samples))
        filled = samples.copy()
        filled[bad] = np.interp(idx[bad], idx[~bad], samples[~bad])
    y = signal.resample_poly(filled, up, down, padtype="line") if (up, down) != (1, 1) else filled
    y = np.array(y[:n_out], dtype=np.float64)
    if bad.any():
        pos = np.arange(len(y)) * (down / up)
        lo = np.clip(np.floor(pos).astype(np.int64), 0, len(samples) - 1)
        hi = np.clip(lo + 1, 0, len(samples) - 1)
        y[bad[lo] | bad[hi]] = np.nan
    return y, fs_effective
