"""The bed view: one patient in detail — two ECG leads, pleth, respiration, numerics."""

from __future__ import annotations

from typing import Final

from PySide6 import QtCore, QtWidgets

from app.hub import BedModel
from app.ui import theme
from app.ui.numerics import NumericBox, format_value
from app.ui.waveform import SweepTrace
from devices.frames import ECG_LEAD_I, ECG_LEAD_II, PLETH, RESP

#: The bed view shows the last 10 s of every waveform.
BED_VIEW_WINDOW_S: Final = 10.0

_TRACES: Final = (
    (ECG_LEAD_I, "ECG", "ecg", True),
    (ECG_LEAD_II, "ECG 2", "ecg2", True),
    (PLETH, "Pleth", "pleth", False),
    (RESP, "Resp", "resp", False),
)


class BedView(QtWidgets.QWidget):
    """Detail of one bed.  ``back`` is emitted (GUI thread) by the button or Esc."""

    back = QtCore.Signal()

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.bed: BedModel | None = None
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(10, 6, 10, 6)
        header = QtWidgets.QHBoxLayout()
        self._back = QtWidgets.QPushButton("◀  Ward (Esc)")
        self._back.clicked.connect(self.back)
        self._title = QtWidgets.QLabel("")
        self._title.setObjectName("WardTitle")
        self._state = QtWidgets.QLabel("")
        self._state.setObjectName("StateLabel")
        header.addWidget(self._back)
        header.addSpacing(16)
        header.addWidget(self._title, 1)
        header.addWidget(self._state)
        layout.addLayout(header)

        body = QtWidgets.QHBoxLayout()
        traces_box = QtWidgets.QVBoxLayout()
        self.traces: dict[str, SweepTrace] = {}
        self._trace_labels: dict[str, QtWidgets.QLabel] = {}
        self._trace_titles: dict[str, str] = {}
        for stream, title, colour_key, cal in _TRACES:
            colour = theme.PARAMETER_COLOURS[colour_key]
            label = QtWidgets.QLabel(title)
            label.setStyleSheet(f"color: {colour}; font-size: 15px; font-weight: bold;")
            trace = SweepTrace(colour, window_s=BED_VIEW_WINDOW_S, calibration=cal)
            traces_box.addWidget(label)
            traces_box.addWidget(trace, 1)
            self.traces[stream] = trace
            self._trace_labels[stream] = label
            self._trace_titles[stream] = title
        body.addLayout(traces_box, 1)
        side = QtWidgets.QVBoxLayout()
        self.numerics = {
            "hr": NumericBox("hr", 72),
            "spo2": NumericBox("spo2", 56),
            "pulse": NumericBox("pulse", 32),
            "rr": NumericBox("rr", 44),
            "temp": NumericBox("temp", 36),
            "nibp": NumericBox("nibp", 32),
        }
        for box in self.numerics.values():
            side.addWidget(box)
        side.addStretch(1)
        panel = QtWidgets.QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(260)
        body.addWidget(panel)
        layout.addLayout(body, 1)

    def show_bed(self, bed: BedModel) -> None:
        """Switch the view to ``bed``."""
        self.bed = bed
        self.traces[ECG_LEAD_I].show_beats(lambda: bed.beats)
        self._title.setText(f"{bed.label}   {bed.patient}  ·  {bed.patient_id}")
        for trace in self.traces.values():
            trace.bind(None)
        self.refresh_text()

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.key() == QtCore.Qt.Key.Key_Escape:
            self.back.emit()
            return
        super().keyPressEvent(event)

    def refresh_waveforms(self) -> bool:
        """Pull and redraw every trace; GUI thread, at frame rate."""
        if self.bed is None:
            return False
        drew = False
        for stream, trace in self.traces.items():
            ring = self.bed.ring(stream)
            if ring is not trace.ring:
                trace.bind(ring)
                trace.configure_units(self.bed.units.get(stream, "mV"))
            drew = trace.refresh() or drew
        return drew

    def refresh_text(self) -> None:
        """Update numerics and state; GUI thread, about once a second."""
        bed = self.bed
        if bed is None:
            return
        for name, box in self.numerics.items():
            box.set_text(format_value(bed, name))
        for stream, label in self._trace_labels.items():
            title = self._trace_titles[stream]
            units = bed.units.get(stream)
            label.setText(f"{title}  — not connected" if units is None else f"{title}  {units}")
        state = bed.state
        self._state.setText(f"● {state.state.value}  {state.detail}")
        self._state.setStyleSheet(
            f"color: {theme.STATE_COLOURS.get(state.state.value, theme.TEXT_DIM)};"
        )
