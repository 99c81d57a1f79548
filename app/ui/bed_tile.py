"""A bed tile of the ward view: who, the sweeping ECG, the numerics, the state."""

from __future__ import annotations

from typing import Final

from PySide6 import QtCore, QtWidgets

from app.hub import BedModel
from app.ui import theme
from app.ui.alarm_views import AlarmStrip
from app.ui.numerics import NumericBox, format_value
from app.ui.waveform import SweepTrace, window_for_width
from devices.frames import ECG_LEAD_I

#: Value font sizes of HR, SpO2, RR and temperature on a tile of the reference height.
NUMERIC_VALUE_PX: Final = (46, 32, 24, 24)
#: Tile height at which the numerics have those sizes; taller tiles scale them up.
NUMERICS_REFERENCE_HEIGHT_PX: Final = 260


class BedTile(QtWidgets.QFrame):
    """The ward's view of one bed; a click opens the bed view."""

    #: Emitted on the GUI thread with the bed id when the tile is clicked.
    opened = QtCore.Signal(str)

    NUMERICS = ("hr", "spo2", "rr", "temp")

    def __init__(self, bed: BedModel, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.bed = bed
        self.setObjectName("BedTile")
        self.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        self.setSizePolicy(
            QtWidgets.QSizePolicy.Policy.Expanding, QtWidgets.QSizePolicy.Policy.Expanding
        )
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(8, 4, 8, 4)
        outer.setSpacing(2)

        header = QtWidgets.QHBoxLayout()
        self._bed_label = QtWidgets.QLabel(bed.label)
        self._bed_label.setObjectName("BedLabel")
        self._patient = QtWidgets.QLabel(f"{bed.patient}  ·  {bed.patient_id}")
        self._patient.setObjectName("PatientLabel")
        self._state = QtWidgets.QLabel("")
        self._state.setObjectName("StateLabel")
        header.addWidget(self._bed_label)
        header.addSpacing(10)
        header.addWidget(self._patient, 1)
        header.addWidget(self._state)
        outer.addLayout(header)
        self.alarm = AlarmStrip(bed.bed_id)
        outer.addWidget(self.alarm)

        body = QtWidgets.QHBoxLayout()
        body.setSpacing(6)
        self.ecg = SweepTrace(theme.PARAMETER_COLOURS["ecg"], calibration=True)
        self.ecg.setMinimumHeight(70)
        self.ecg.show_beats(lambda: self.bed.beats)
        body.addWidget(self.ecg, 1)
        grid = QtWidgets.QGridLayout()
        grid.setHorizontalSpacing(6)
        grid.setVerticalSpacing(0)
        self.numerics = {
            name: NumericBox(name, px)
            for name, px in zip(("hr", "spo2", "rr", "temp"), NUMERIC_VALUE_PX, strict=True)
        }
        grid.addWidget(self.numerics["hr"], 0, 0)
        grid.addWidget(self.numerics["spo2"], 0, 1)
        grid.addWidget(self.numerics["rr"], 1, 0)
        grid.addWidget(self.numerics["temp"], 1, 1)
        box = QtWidgets.QWidget()
        box.setStyleSheet("background: transparent;")
        box.setLayout(grid)
        box.setFixedWidth(210)
        self._numerics_box = box
        body.addWidget(box)
        outer.addLayout(body, 1)
        self.refresh_text()

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.button() == QtCore.Qt.MouseButton.LeftButton:
            self.opened.emit(self.bed.bed_id)
        super().mouseReleaseEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(event)
        # Tall tiles (few beds) scale the numerics up so they read from across
        # the room; narrow tiles (16+ beds) give the ECG the larger share.
        scale = min(max(self.height() / NUMERICS_REFERENCE_HEIGHT_PX, 1.0), 2.2)
        for box, px in zip(self.numerics.values(), NUMERIC_VALUE_PX, strict=True):
            box.set_value_px(int(px * scale))
        width = max(150, min(230, int(self.width() * 0.3)))
        self._numerics_box.setFixedWidth(int(min(width * scale, self.width() * 0.35)))
        screen = self.screen()
        self.ecg.set_window_s(window_for_width(self.ecg.width(), screen))

    def refresh_waveforms(self) -> bool:
        """Pull and redraw the ECG; GUI thread, at frame rate."""
        ring = self.bed.ring(ECG_LEAD_I)
        if ring is not self.ecg.ring:
            units = self.bed.units.get(ECG_LEAD_I, "mV")
            self.ecg.bind(ring)
            self.ecg.configure_units(units)
        return self.ecg.refresh()

    def refresh_text(self) -> None:
        """Update numerics and state; GUI thread, about once a second."""
        for name, box in self.numerics.items():
            box.set_text(format_value(self.bed, name))
        state = self.bed.state
        colour = theme.STATE_COLOURS.get(state.state.value, theme.TEXT_DIM)
        text = f"● {state.state.value}"
        if state.state.value == "failed":
            text += f": {state.detail}"
        self._state.setText(text)
        self._state.setToolTip(state.detail)
        self._state.setStyleSheet(f"color: {colour};")
