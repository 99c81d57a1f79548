"""Numeric displays: a parameter name, its value, its unit, in its colour."""

from __future__ import annotations

import math
import time
from typing import Final

from PySide6 import QtCore, QtWidgets

from app.hub import BedModel
from app.ui import theme

#: A numeric older than this is shown as unavailable rather than as a stale value.
STALE_AFTER_S: Final = 10.0

#: Display name, unit and decimals of each numeric.
NUMERIC_FORMATS: Final = {
    "hr": ("HR", "bpm", 0),
    "spo2": ("SpO₂", "%", 0),
    "rr": ("RR", "rpm", 0),
    "temp": ("Temp", "°C", 1),
    "pulse": ("Pulse", "bpm", 0),
    "nibp": ("NIBP", "mmHg", 0),
}


def format_value(bed: BedModel, name: str, now: float | None = None) -> str:
    """The text a tile shows for ``name``: the value, or ``--`` if absent or stale."""
    now = time.monotonic() if now is None else now
    decimals = NUMERIC_FORMATS.get(name, ("", "", 0))[2]
    if name == "nibp":
        sys_, dia = bed.numerics.get("nibp_sys"), bed.numerics.get("nibp_dia")
        if sys_ is None or dia is None or math.isnan(sys_.value) or math.isnan(dia.value):
            return "--/--"
        return f"{sys_.value:.0f}/{dia.value:.0f}"
    numeric = bed.numerics.get(name)
    if numeric is None or not math.isfinite(numeric.value):
        return "--"
    if now - bed.numeric_received_at.get(name, now) > STALE_AFTER_S:
        return "--"
    return f"{numeric.value:.{decimals}f}"


class NumericBox(QtWidgets.QWidget):
    """One parameter: small name and unit above a large value."""

    def __init__(self, name: str, value_px: int, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.name = name
        label, unit, _ = NUMERIC_FORMATS[name]
        colour = theme.PARAMETER_COLOURS.get(name, theme.TEXT)
        self.setStyleSheet("background: transparent;")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(4, 0, 4, 0)
        layout.setSpacing(0)
        self._title = QtWidgets.QLabel(
            f"{label}  <span style='color:{theme.TEXT_DIM}'>{unit}</span>"
        )
        self._title.setObjectName("NumericName")
        self._title.setStyleSheet(f"color: {colour};")
        self._title.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self._value = QtWidgets.QLabel("--")
        self._value.setObjectName("NumericValue")
        self._colour = colour
        self.value_px = value_px
        self._value.setStyleSheet(f"color: {colour}; font-size: {value_px}px;")
        self._value.setAlignment(
            QtCore.Qt.AlignmentFlag.AlignRight | QtCore.Qt.AlignmentFlag.AlignVCenter
        )
        layout.addWidget(self._title)
        layout.addWidget(self._value)
        layout.addStretch(1)  # the value stays under its name in a tall tile

    def set_value_px(self, value_px: int) -> None:
        """Resize the value (a tile scales its numerics with its height); GUI thread."""
        if value_px != self.value_px:
            self.value_px = value_px
            self._value.setStyleSheet(f"color: {self._colour}; font-size: {value_px}px;")

    def set_text(self, text: str) -> None:
        """Show ``text`` as the value."""
        if self._value.text() != text:
            self._value.setText(text)

    def text(self) -> str:
        """The value shown."""
        return self._value.text()
