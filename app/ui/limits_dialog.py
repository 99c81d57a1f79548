"""Per-patient alarm limits dialog (unit defaults pre-filled, extremes derived)."""

from __future__ import annotations

import dataclasses

from PySide6 import QtWidgets

from inference.vitals import PatientLimits

#: (field, label, unit, minimum, maximum, step, decimals)
_FIELDS = (
    ("hr_low_bpm", "HR low", "bpm", 20, 150, 5, 0),
    ("hr_high_bpm", "HR high", "bpm", 60, 250, 5, 0),
    ("spo2_low_pct", "SpO₂ low", "%", 70, 99, 1, 0),
    ("rr_low_per_min", "RR low", "rpm", 3, 30, 1, 0),
    ("rr_high_per_min", "RR high", "rpm", 10, 60, 1, 0),
    ("temp_low_c", "Temp low", "°C", 30.0, 38.0, 0.1, 1),
    ("temp_high_c", "Temp high", "°C", 36.0, 42.0, 0.1, 1),
    ("nibp_sys_low_mmhg", "NIBP sys low", "mmHg", 50, 150, 5, 0),
    ("nibp_sys_high_mmhg", "NIBP sys high", "mmHg", 100, 250, 5, 0),
)


class LimitsDialog(QtWidgets.QDialog):
    """Edit one patient's limits; :meth:`limits` returns the checked result."""

    def __init__(
        self, bed_label: str, current: PatientLimits, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Alarm limits — {bed_label}")
        self._current = current
        form = QtWidgets.QFormLayout(self)
        self._boxes: dict[str, QtWidgets.QDoubleSpinBox] = {}
        for name, label, unit, lo, hi, step, decimals in _FIELDS:
            box = QtWidgets.QDoubleSpinBox()
            box.setRange(lo, hi)
            box.setSingleStep(step)
            box.setDecimals(decimals)
            box.setSuffix(f" {unit}")
            box.setValue(getattr(current, name))
            form.addRow(label, box)
            self._boxes[name] = box
        self._error = QtWidgets.QLabel("")
        self._error.setStyleSheet("color: #ff5a5a;")
        form.addRow(self._error)
        buttons = QtWidgets.QDialogButtonBox(
            QtWidgets.QDialogButtonBox.StandardButton.Ok
            | QtWidgets.QDialogButtonBox.StandardButton.Cancel
            | QtWidgets.QDialogButtonBox.StandardButton.RestoreDefaults
        )
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QtWidgets.QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(
            self.restore_defaults
        )
        form.addRow(buttons)

    def restore_defaults(self) -> None:
        """Fill in the unit defaults."""
        defaults = PatientLimits()
        for name, box in self._boxes.items():
            box.setValue(getattr(defaults, name))

    def limits(self) -> PatientLimits:
        """The limits entered; raises ValueError if they contradict each other."""
        values = {name: box.value() for name, box in self._boxes.items()}
        return dataclasses.replace(self._current, **values)

    def _accept(self) -> None:
        try:
            self.limits()
        except ValueError as exc:
            self._error.setText(str(exc))
            return
        self.accept()
