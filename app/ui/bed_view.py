"""The bed view: one patient in detail — two ECG leads, pleth, respiration, numerics."""

from __future__ import annotations

import time
from typing import Final

from PySide6 import QtCore, QtWidgets

from app.alarms import AlarmManager
from app.clinical import ClinicalWatch
from app.hub import BedModel
from app.ui import theme
from app.ui.alarm_views import AlarmStrip
from app.ui.device_picker import DevicePicker
from app.ui.limits_dialog import LimitsDialog
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
    #: The nurse acknowledged this bed's alarms (GUI thread); carries the bed id.
    alarm_acknowledge = QtCore.Signal(str)

    def __init__(
        self, clinical: ClinicalWatch | None = None, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.bed: BedModel | None = None
        #: The app's BLE source when the ward has wearable beds (set by the composition root).
        self.ble = None
        self.clinical = clinical
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
        self._ack = QtWidgets.QPushButton("✓ Acknowledge")
        self._ack.clicked.connect(lambda: self.bed and self.alarm_acknowledge.emit(self.bed.bed_id))
        self._limits = QtWidgets.QPushButton("Limits…")
        self._limits.clicked.connect(self.edit_limits)
        self._devices = QtWidgets.QPushButton("Wearables…")
        self._devices.clicked.connect(self.pick_devices)
        self._devices.setVisible(False)
        header.addWidget(self._ack)
        header.addWidget(self._limits)
        header.addWidget(self._devices)
        layout.addLayout(header)
        self.alarm = AlarmStrip("", font_px=20)
        self.alarm.acknowledge_requested.connect(lambda _b: self._ack.click())
        layout.addWidget(self.alarm)

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
        self._news2 = QtWidgets.QLabel("")
        self._news2.setWordWrap(True)
        self._news2.setStyleSheet("font-size: 14px; color: #c8d0d8;")
        side.addWidget(self._news2)
        events_title = QtWidgets.QLabel("Alarm log")
        events_title.setStyleSheet("font-size: 14px; font-weight: bold; margin-top: 8px;")
        side.addWidget(events_title)
        self.events = QtWidgets.QListWidget()
        self.events.setStyleSheet(
            "font-size: 13px; background: #0b0f14; border: 1px solid #26303a;"
        )
        side.addWidget(self.events, 1)
        panel = QtWidgets.QWidget()
        panel.setLayout(side)
        panel.setFixedWidth(320)
        body.addWidget(panel)
        layout.addLayout(body, 1)

    def show_bed(self, bed: BedModel) -> None:
        """Switch the view to ``bed``."""
        self.bed = bed
        self.alarm.bed_id = bed.bed_id
        self._devices.setVisible(self.ble is not None)
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
        if self.clinical is not None:
            self._news2.setText(self.clinical.news2_text(bed.bed_id))
            self._refresh_events(bed.bed_id)
        state = bed.state
        self._state.setText(f"● {state.state.value}  {state.detail}")
        self._state.setStyleSheet(
            f"color: {theme.STATE_COLOURS.get(state.state.value, theme.TEXT_DIM)};"
        )

    def refresh_alarm(self, manager: AlarmManager) -> None:
        """Show this bed's worst alarm (GUI thread, frame rate)."""
        if self.bed is not None:
            self.alarm.show_display(manager.bed_display(self.bed.bed_id), manager.now())

    def _refresh_events(self, bed_id: str) -> None:
        entries = self.clinical.manager.log_entries(bed_id)[-50:]
        lines = []
        for e in reversed(entries):
            on = time.strftime("%H:%M:%S", time.localtime(e.t_on))
            off = time.strftime("%H:%M:%S", time.localtime(e.t_off)) if e.t_off else "active"
            ack = f", ack {e.ack_by}" if e.ack_by else ""
            lines.append(f"{on}–{off}  {e.priority.name[0]}  {e.message}{ack}")
        if [self.events.item(i).text() for i in range(self.events.count())] != lines:
            self.events.clear()
            self.events.addItems(lines)

    @QtCore.Slot()
    def edit_limits(self) -> None:
        """Open the limits dialog for this bed (GUI thread)."""
        if self.bed is None or self.clinical is None:
            return
        dialog = LimitsDialog(self.bed.label, self.clinical.limits(self.bed.bed_id), self)
        if dialog.exec() == QtWidgets.QDialog.DialogCode.Accepted:
            self.clinical.set_limits(self.bed.bed_id, dialog.limits())

    @QtCore.Slot()
    def pick_devices(self) -> None:
        """Scan and assign wearables to this bed (GUI thread)."""
        if self.bed is None or self.ble is None:
            return
        picker = DevicePicker(self.ble, self.bed.bed_id, self.bed.label, self)
        picker.scan()
        picker.exec()
