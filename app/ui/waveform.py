"""A sweeping waveform trace, drawn the way bedside monitors draw them.

The trace is pulled from a :class:`~devices.ring.RingBuffer` at frame rate
(DESIGN.md rule 3): each frame reads the newest window of samples and writes
sample ``k`` at horizontal position ``k mod window``, so new data overwrites
old data from left to right with an erase bar ahead of the write point.

Samples arrive in bursts whose size depends on the source (a Polar strap
sends 73 ECG samples every 0.56 s; the replay a few every frame). So that the
write point sweeps steadily instead of jumping a burst at a time, the trace
draws up to a :class:`DisplayClock` that advances with the wall clock and
runs just behind the newest sample, by about one burst interval.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Final

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from app.hub import BeatMark
from devices.ring import RingBuffer

#: Beat tick colours by AAMI class; N in the trace colour.
BEAT_COLOURS: Final = {"S": "#ffb000", "V": "#ff4060", "F": "#ff8c00", "Q": "#9aa4ae"}
#: Classes whose beats carry a letter on the trace (ectopic and fusion beats).
LABELLED_CLASSES: Final = frozenset({"S", "V", "F"})
#: Labels drawn per trace at most (S/V/F beats in view).
MAX_BEAT_LABELS: Final = 24

#: Paper speed of the ECG sweep.
SWEEP_MM_PER_S: Final = 25.0
#: Width of the erase bar ahead of the write point, in seconds.
ERASE_BAR_S: Final = 0.25
#: Calibration pulse: 1 mV tall, 200 ms wide.
CAL_PULSE_MV: Final = 1.0
CAL_PULSE_S: Final = 0.2
#: Shortest ECG window shown, whatever the tile width.
MIN_WINDOW_S: Final = 6.0
#: Space left of the trace for the calibration pulse, in seconds of sweep.
CAL_MARGIN_S: Final = 0.45
#: Vertical span in mV at gain ×1 (10 mm/mV on a ~30 mm tall strip).
BASE_SPAN_MV: Final = 3.0
#: Standard ECG display gains, largest first.
ECG_GAINS: Final = (4.0, 2.0, 1.0, 0.5, 0.25)
#: Seconds between re-choosing the gain/scale, so the trace does not jump
#: with every beat; re-chosen sooner while the window is still filling.
GAIN_HOLD_S: Final = 3.0


#: The display runs this many burst intervals behind the newest sample.
DISPLAY_LAG_BURSTS: Final = 1.25
#: Never further behind than this: the cursor jumps forward (e.g. after a stall).
MAX_DISPLAY_LAG_S: Final = 1.5


class DisplayClock:
    """Where the sweep's write point is, in samples, advancing with the wall clock.

    The cursor moves at the stream's rate, sped up or slowed to hold its lag
    behind the newest sample near :data:`DISPLAY_LAG_BURSTS` burst intervals
    (measured as the data come in), so a source whose clock runs a little fast
    or slow neither drifts away nor stutters. GUI thread only.
    """

    def __init__(self, fs_hz: float) -> None:
        self.fs_hz = fs_hz
        self.cursor: float | None = None
        self._t_last: float | None = None
        self._end_last = -1
        self._burst_at: float | None = None
        self.burst_s = 0.0  # running mean of the time between arrivals

    def advance(self, end_index: int, now_s: float) -> int:
        """The sample index to draw up to at ``now_s`` given the newest ``end_index``."""
        if end_index != self._end_last:
            if self._burst_at is not None:
                gap = min(now_s - self._burst_at, MAX_DISPLAY_LAG_S)
                self.burst_s += 0.2 * (gap - self.burst_s)
            self._burst_at = now_s
            self._end_last = end_index
        if self.cursor is None or self._t_last is None:
            self.cursor, self._t_last = float(end_index), now_s
            return end_index
        dt = max(now_s - self._t_last, 0.0)
        self._t_last = now_s
        lag_s = (end_index - self.cursor) / self.fs_hz
        target_s = DISPLAY_LAG_BURSTS * self.burst_s
        # Proportional catch-up with a time constant of one target lag (≥ 0.1 s):
        # steady for bursty straps, and keeps up with a replay run faster than real time.
        speed = min(max(1.0 + (lag_s - target_s) / max(target_s, 0.1), 0.5), 8.0)
        self.cursor = min(self.cursor + speed * dt * self.fs_hz, float(end_index))
        if end_index - self.cursor > MAX_DISPLAY_LAG_S * self.fs_hz:
            self.cursor = end_index - target_s * self.fs_hz
        return int(self.cursor)


class SweepTrace(pg.PlotWidget):
    """One sweeping trace bound to a ring buffer.

    Parameters
    ----------
    colour
        Trace colour.
    window_s
        Seconds across the plot.
    calibration
        Draw a 1 mV calibration pulse in the left margin (mV streams only).

    Notes
    -----
    mV streams are drawn at a standard ECG gain (×0.25 … ×4 of 10 mm/mV,
    chosen so the complexes fit, re-chosen at most every :data:`GAIN_HOLD_S`)
    with the calibration pulse drawn at that gain, so the pulse always shows
    what 1 mV looks like.  Other units (BIDMC's normalised units, pleth,
    respiration) are scaled to fit.
    """

    def __init__(
        self,
        colour: str,
        *,
        window_s: float = MIN_WINDOW_S,
        calibration: bool = False,
        line_width: float = 1.6,
    ) -> None:
        super().__init__(background=None, enableMenu=False)
        self.setMouseEnabled(False, False)
        self.hideButtons()
        for axis in ("left", "bottom"):
            self.hideAxis(axis)
        self.plotItem.setContentsMargins(0, 0, 0, 0)
        self.plotItem.vb.setDefaultPadding(0.0)
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.setFrameShape(self.Shape.NoFrame)
        self.setStyleSheet("background: transparent;")
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        pen = pg.mkPen(colour, width=line_width)
        pen.setCosmetic(True)
        self._curve = pg.PlotCurveItem(pen=pen, connect="finite", antialias=False)
        self.addItem(self._curve)
        self._units = "mV"
        self._ring: RingBuffer | None = None
        self._window_s = window_s
        self._x = np.empty(0)
        self._n = 0
        self._cal: pg.PlotCurveItem | None = None
        self._gain_label: pg.TextItem | None = None
        self._scale_at = -1e9
        self._scaled_on = 0
        self._y_lo, self._y_hi = -1.0, 2.0
        self.gain = 1.0
        self.frames_drawn = 0
        self.last_end_index = -1
        self._clock: DisplayClock | None = None
        if calibration:
            self._cal = pg.PlotCurveItem(pen=pg.mkPen(colour, width=1.4))
            self.addItem(self._cal)
            self._gain_label = pg.TextItem("", color=colour, anchor=(0, 1))
            self.addItem(self._gain_label)
        self.setYRange(self._y_lo, self._y_hi, padding=0)
        self._colour = colour
        self._beats: Callable[[], Sequence[BeatMark]] | None = None
        self._ticks = pg.ScatterPlotItem(symbol="t1", size=9, pen=None)
        self.addItem(self._ticks)
        self._labels: list[pg.TextItem] = []
        self._ticks_key: tuple | None = None
        self._brushes: dict[str, QtGui.QBrush] = {}

    def _brush(self, symbol: str) -> QtGui.QBrush:
        brush = self._brushes.get(symbol)
        if brush is None:
            brush = self._brushes[symbol] = pg.mkBrush(BEAT_COLOURS.get(symbol, self._colour))
        return brush

    def show_beats(self, beats: Callable[[], Sequence[BeatMark]] | None) -> None:
        """Draw beat ticks from ``beats()`` (called each frame on the GUI thread)."""
        self._beats = beats

    def _draw_beats(self, first: int, end: int, fs_hz: float) -> None:
        marks = [b for b in (self._beats() if self._beats else ()) if first <= b.sample_index < end]
        n = self._n
        # A beat's position on a sweep does not move until it is erased, so the
        # ticks are redrawn only when the set of visible beats changes.
        key = (
            (marks[0].sample_index, marks[-1].sample_index, len(marks), self._y_hi)
            if marks
            else None
        )
        if key == self._ticks_key:
            return
        self._ticks_key = key
        if not marks:
            self._ticks.setData([], [])
        else:
            xs = np.array([(b.sample_index % n) / fs_hz for b in marks])
            top = self._y_hi - 0.06 * (self._y_hi - self._y_lo)
            brushes = [self._brush(b.symbol) for b in marks]
            self._ticks.setData(xs, np.full(len(xs), top), brush=brushes)
        labelled = [b for b in marks if b.symbol in LABELLED_CLASSES][-MAX_BEAT_LABELS:]
        while len(self._labels) < len(labelled):
            item = pg.TextItem("", anchor=(0.5, 0))
            self.addItem(item)
            self._labels.append(item)
        y = self._y_hi - 0.1 * (self._y_hi - self._y_lo)
        for item, mark in zip(self._labels, labelled, strict=False):
            item.setText(mark.symbol)
            item.setColor(BEAT_COLOURS[mark.symbol])
            item.setPos((mark.sample_index % n) / fs_hz, y)
            item.setVisible(True)
        for item in self._labels[len(labelled) :]:
            item.setVisible(False)

    def bind(self, ring: RingBuffer | None) -> None:
        """Show ``ring`` (or nothing)."""
        self._ring = ring
        self._n = 0
        self.last_end_index = -1
        self._clock = None
        if ring is None:
            self._curve.setData([], [])

    def configure_units(self, units: str) -> None:
        """Standard ECG gains and a calibration pulse for ``mV``; fit-to-window otherwise."""
        self._units = units
        for item in (self._cal, self._gain_label):
            if item is not None:
                item.setVisible(units == "mV")
        self._n = 0

    @property
    def ring(self) -> RingBuffer | None:
        """The ring currently shown."""
        return self._ring

    def set_window_s(self, window_s: float) -> None:
        """Change the seconds across the plot."""
        if abs(window_s - self._window_s) > 1e-6:
            self._window_s = window_s
            self._n = 0

    @property
    def window_s(self) -> float:
        """Seconds across the plot."""
        return self._window_s

    def _layout(self, fs_hz: float) -> None:
        self._n = max(2, int(round(self._window_s * fs_hz)))
        self._x = np.arange(self._n, dtype=np.float64) / fs_hz
        self.setXRange(-CAL_MARGIN_S, self._window_s, padding=0)
        self._scale_at = -1e9
        self._scaled_on = 0

    def _rescale(self, samples: np.ndarray) -> None:
        finite = samples[np.isfinite(samples)]
        if len(finite) < 8:
            return
        lo, hi = np.percentile(finite, (0.5, 99.5))
        mid = 0.5 * (lo + hi)
        amplitude = max(float(hi - lo), 1e-6)
        if self._units == "mV":
            self.gain = next(
                (g for g in ECG_GAINS if amplitude * 1.2 <= BASE_SPAN_MV / g), ECG_GAINS[-1]
            )
            span = BASE_SPAN_MV / self.gain
        else:
            span = amplitude * 1.25
        self._y_lo, self._y_hi = mid - 0.5 * span, mid + 0.5 * span
        self.setYRange(self._y_lo, self._y_hi, padding=0)
        if self._cal is not None and self._units == "mV":
            base = self._y_lo + 0.2 * span
            x0 = -CAL_MARGIN_S + 0.05
            self._cal.setData(
                [
                    x0,
                    x0 + 0.04,
                    x0 + 0.04,
                    x0 + 0.04 + CAL_PULSE_S,
                    x0 + 0.04 + CAL_PULSE_S,
                    x0 + 0.08 + CAL_PULSE_S,
                ],
                [base, base, base + CAL_PULSE_MV, base + CAL_PULSE_MV, base, base],
            )
            if self._gain_label is not None:
                self._gain_label.setText(f"1 mV ×{self.gain:g}")
                self._gain_label.setPos(x0, self._y_lo + 0.02 * span)

    def _decimate(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Min/max per pixel column: the same picture with a fraction of the line segments."""
        columns = max(int(self.width()), 50)
        factor = len(y) // columns
        if factor < 3:
            return self._x, y
        k = len(y) // factor
        blocks = y[: k * factor].reshape(k, factor)
        lo = np.fmin.reduce(blocks, axis=1)
        hi = np.fmax.reduce(blocks, axis=1)
        out_y = np.empty(2 * k)
        out_y[0::2], out_y[1::2] = lo, hi
        xs = self._x[: k * factor].reshape(k, factor)
        out_x = np.empty(2 * k)
        out_x[0::2], out_x[1::2] = xs[:, 0], xs[:, -1]
        return out_x, out_y

    def refresh(self) -> bool:
        """Pull the newest window and redraw; GUI thread.  False if nothing new."""
        ring = self._ring
        if ring is None:
            return False
        if self._n == 0:
            self._layout(ring.fs_hz)
        if self._clock is None or self._clock.fs_hz != ring.fs_hz:
            self._clock = DisplayClock(ring.fs_hz)
        end = self._clock.advance(ring.end_index, time.monotonic())
        if end == self.last_end_index:
            return False
        self.last_end_index = end
        n = self._n
        window = ring.read(end - n, end)
        y = np.full(n, np.nan, dtype=np.float64)
        if len(window.samples):
            pos = np.arange(window.first_index, window.end_index) % n
            y[pos] = window.samples
            erase = int(ERASE_BAR_S * ring.fs_hz)
            y[(end % n + np.arange(erase)) % n] = np.nan
            now = time.monotonic()
            filling = self._scaled_on < n // 2
            if now - self._scale_at >= (0.3 if filling else GAIN_HOLD_S):
                self._rescale(window.samples)
                self._scale_at = now
                self._scaled_on = len(window.samples)
        x_draw, y_draw = self._decimate(y)
        self._curve.setData(x_draw, y_draw)
        if self._beats is not None:
            self._draw_beats(end - n + int(ERASE_BAR_S * ring.fs_hz), end, ring.fs_hz)
        self.frames_drawn += 1
        return True


def window_for_width(width_px: int, screen: QtGui.QScreen | None) -> float:
    """Seconds a sweep of ``width_px`` shows at 25 mm/s, never under 6 s."""
    dpi = screen.physicalDotsPerInchX() if screen is not None else 96.0
    if not dpi or dpi < 30:
        dpi = 96.0
    width_mm = width_px / dpi * 25.4
    return max(MIN_WINDOW_S, width_mm / SWEEP_MM_PER_S)
