"""Alarm displays: the ward banner and the alarm strip of a bed tile.

Both are redrawn from :class:`~app.alarms.AlarmManager` snapshots on the GUI
thread at frame rate; styles change only when what is shown changes (a
priority, a flash phase), so flashing costs a few re-styles per second.
"""

from __future__ import annotations

import getpass
from typing import Final

from PySide6 import QtCore, QtWidgets

from app.alarms import COLOUR, TEXT_COLOUR, AlarmManager, BedAlarmDisplay, Priority, indicator_lit
from app.ui import theme

#: Most alarms named in the ward banner; the rest are counted.
BANNER_MAX_ALARMS: Final = 4
TECHNICAL_COLOUR: Final = theme.TECHNICAL


def current_user() -> str:
    """Who is acknowledging (the logged-in user; recorded in the alarm log)."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in some service contexts
        return "unknown"


def _style(priority: Priority, technical: bool, lit: bool) -> str:
    if priority is Priority.NONE:
        return "background: transparent; color: transparent;"
    colour = TECHNICAL_COLOUR if technical and priority is not Priority.HIGH else COLOUR[priority]
    if lit:
        text = TEXT_COLOUR.get(priority, "#000000") if not technical else "#000000"
        return f"background: {colour}; color: {text}; border-radius: 4px; font-weight: bold;"
    return f"background: #1a1a1a; color: {colour}; border-radius: 4px; font-weight: bold;"


class AlarmStrip(QtWidgets.QLabel):
    """The alarm line of one bed (tile or bed view).  Click acknowledges that bed."""

    acknowledge_requested = QtCore.Signal(str)  # GUI thread

    def __init__(
        self, bed_id: str, font_px: int = 17, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__("", parent)
        self.bed_id = bed_id
        self._key: tuple | None = None
        self.setFixedHeight(font_px + 12)
        self.setContentsMargins(8, 0, 8, 0)
        self.setStyleSheet(_style(Priority.NONE, False, False) + f"font-size: {font_px}px;")
        self._font_px = font_px
        self.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        self.setToolTip("Click to acknowledge this bed's alarms")

    def show_display(self, display: BedAlarmDisplay, now_s: float) -> None:
        """Show the bed's worst alarm, flashing per IEC 60601-1-8."""
        lit = display.lit(now_s)
        text = display.message
        if display.count > 1:
            text += f"   (+{display.count - 1})"
        if display.acknowledged and display.priority is not Priority.NONE:
            text += "   ✓ ack"
        if display.audio_paused_s > 0:
            text += f"   audio paused {int(display.audio_paused_s) // 60}:{int(display.audio_paused_s) % 60:02d}"
        key = (display.priority, display.technical, lit, text)
        if key == self._key:
            return
        self._key = key
        self.setText(text)
        self.setStyleSheet(
            _style(display.priority, display.technical, lit) + f"font-size: {self._font_px}px;"
        )

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.button() == QtCore.Qt.MouseButton.LeftButton and self.text():
            self.acknowledge_requested.emit(self.bed_id)
            event.accept()
            return
        super().mouseReleaseEvent(event)


class AlarmBanner(QtWidgets.QFrame):
    """Ward-wide banner: the worst alarms, Acknowledge (F2) and Audio pause (F3)."""

    def __init__(
        self,
        manager: AlarmManager,
        bed_labels: dict[str, str],
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self._manager = manager
        self._labels = bed_labels
        self.setObjectName("AlarmBanner")
        self.setStyleSheet(
            "QFrame#AlarmBanner { background: #0d0d0d; border-bottom: 1px solid #26303a; }"
        )
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(10, 4, 10, 4)
        self._chips = [QtWidgets.QLabel("") for _ in range(BANNER_MAX_ALARMS)]
        self._chip_keys: list[tuple | None] = [None] * BANNER_MAX_ALARMS
        for chip in self._chips:
            chip.setMinimumWidth(200)
            chip.setFixedHeight(34)
            chip.setContentsMargins(10, 0, 10, 0)
            layout.addWidget(chip)
        self._more = QtWidgets.QLabel("")
        self._more.setStyleSheet(f"color: {theme.TEXT_DIM}; font-size: 16px;")
        layout.addWidget(self._more)
        self._quiet = QtWidgets.QLabel("No active alarms")
        self._quiet.setStyleSheet(f"color: {theme.TEXT_DIM}; font-size: 16px;")
        layout.addWidget(self._quiet)
        layout.addStretch(1)
        self.ack_button = QtWidgets.QPushButton("Acknowledge all  (F2)")
        self.pause_button = QtWidgets.QPushButton("Audio pause 2 min  (F3)")
        self.ack_button.clicked.connect(self.acknowledge_all)
        self.pause_button.clicked.connect(self.toggle_pause)
        layout.addWidget(self.ack_button)
        layout.addWidget(self.pause_button)

    @QtCore.Slot()
    def acknowledge_all(self) -> None:
        """Acknowledge every alarm of the ward (GUI thread)."""
        self._manager.acknowledge(None, user=current_user())

    @QtCore.Slot()
    def toggle_pause(self) -> None:
        """Pause alarm audio for the admin-set time, or resume it (GUI thread)."""
        if self._manager.audio_paused_s() > 0:
            self._manager.resume_audio()
        else:
            self._manager.pause_audio()

    def refresh(self, now_s: float | None = None) -> None:
        """Redraw from the manager (GUI thread, frame rate)."""
        now = self._manager.now() if now_s is None else now_s
        alarms = self._manager.banner()
        for i, chip in enumerate(self._chips):
            if i < len(alarms):
                a = alarms[i]
                flashing = not a.acknowledged and a.priority is not Priority.LOW
                lit = not flashing or indicator_lit(a.priority, now, a.onset_s)
                text = f"{self._labels.get(a.bed_id, a.bed_id)}  {a.message}"
                key = (a.priority, a.technical, lit, text)
                if key != self._chip_keys[i]:
                    chip.setText(text)
                    chip.setStyleSheet(_style(a.priority, a.technical, lit) + "font-size: 17px;")
                    self._chip_keys[i] = key
                chip.setVisible(True)
            else:
                chip.setVisible(False)
                self._chip_keys[i] = None
        extra = len(alarms) - BANNER_MAX_ALARMS
        self._more.setText(f"+{extra} more" if extra > 0 else "")
        self._quiet.setVisible(not alarms)
        paused = self._manager.audio_paused_s()
        self.pause_button.setText(
            f"Resume audio  ({int(paused) // 60}:{int(paused) % 60:02d})"
            if paused > 0
            else "Audio pause 2 min  (F3)"
        )
