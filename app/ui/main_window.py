"""The main window: a top bar, the ward view and the bed view, and the frame clock."""

from __future__ import annotations

import time
from typing import Final

from PySide6 import QtCore, QtGui, QtWidgets

from app.clinical import ClinicalWatch
from app.hub import BedModel
from app.ui import theme
from app.ui.alarm_views import AlarmBanner, current_user
from app.ui.bed_view import BedView
from app.ui.ward_view import WardView

#: Waveforms are pulled from the rings at this rate (friture's frame-rate pull).
FRAME_RATE_HZ: Final = 30
#: Numerics and states are refreshed on a slow timer.
TEXT_REFRESH_MS: Final = 1000


class FrameStats:
    """Counts rendered frames per wall-clock second (GUI thread only)."""

    def __init__(self) -> None:
        self.frame_times: list[float] = []

    def tick(self, now: float) -> None:
        """Record one rendered frame."""
        self.frame_times.append(now)

    def per_second(self, start: float, end: float) -> list[int]:
        """Frames in each whole second between ``start`` and ``end``."""
        n = int(end - start)
        counts = [0] * max(n, 0)
        for t in self.frame_times:
            k = int(t - start)
            if 0 <= k < n:
                counts[k] += 1
        return counts


class MainWindow(QtWidgets.QMainWindow):
    """Vigil's central-station window."""

    def __init__(
        self,
        title: str,
        beds: list[BedModel],
        *,
        clinical: ClinicalWatch | None = None,
        frame_rate_hz: float = FRAME_RATE_HZ,
    ) -> None:
        super().__init__()
        self.clinical = clinical
        self.setWindowTitle(f"Vigil — {title}")
        self.setStyleSheet(theme.STYLESHEET)
        self.beds = {b.bed_id: b for b in beds}
        central = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)

        top = QtWidgets.QFrame()
        top.setObjectName("TopBar")
        top_layout = QtWidgets.QHBoxLayout(top)
        top_layout.setContentsMargins(12, 6, 12, 6)
        name = QtWidgets.QLabel("VIGIL")
        name.setStyleSheet(
            "font-size: 22px; font-weight: bold; color: #33ff66; letter-spacing: 3px;"
        )
        count = f"{len(beds)} bed" if len(beds) == 1 else f"{len(beds)} beds"
        self._title = QtWidgets.QLabel(f"{title}  ·  {count}")
        self._title.setObjectName("WardTitle")
        self._clock = QtWidgets.QLabel("")
        self._clock.setObjectName("Clock")
        top_layout.addWidget(name)
        top_layout.addSpacing(18)
        top_layout.addWidget(self._title, 1)
        self.events_button = QtWidgets.QPushButton("Events (F4)")
        self.events_button.clicked.connect(self.show_review)
        self.events_button.setVisible(False)
        top_layout.addWidget(self.events_button)
        top_layout.addWidget(self._clock)
        layout.addWidget(top)
        self.banner: AlarmBanner | None = None
        if clinical is not None:
            labels = {b.bed_id: b.label for b in beds} | {"ward": "Ward"}
            self.banner = AlarmBanner(clinical.manager, labels)
            layout.addWidget(self.banner)

        self.stack = QtWidgets.QStackedWidget()
        self.ward_view = WardView(beds)
        self.bed_view = BedView(clinical)
        self.stack.addWidget(self.ward_view)
        self.stack.addWidget(self.bed_view)
        self.review = None
        layout.addWidget(self.stack, 1)
        self.setCentralWidget(central)

        self.ward_view.bed_opened.connect(self.open_bed)
        for tile in self.ward_view.tiles:
            tile.alarm.acknowledge_requested.connect(self.acknowledge_bed)
        self.bed_view.alarm_acknowledge.connect(self.acknowledge_bed)
        if self.banner is not None:
            QtGui.QShortcut(QtGui.QKeySequence("F2"), self, activated=self.banner.acknowledge_all)
            QtGui.QShortcut(QtGui.QKeySequence("F3"), self, activated=self.banner.toggle_pause)
        self.bed_view.back.connect(self.show_ward)
        QtGui.QShortcut(
            QtGui.QKeySequence(QtCore.Qt.Key.Key_Escape), self, activated=self.show_ward
        )

        self.frames = FrameStats()
        self._frame_timer = QtCore.QTimer(self)
        self._frame_timer.setTimerType(QtCore.Qt.TimerType.PreciseTimer)
        self._frame_timer.timeout.connect(self.render_frame)
        self._frame_timer.start(int(round(1000 / frame_rate_hz)) if frame_rate_hz > 0 else 0)
        self._text_timer = QtCore.QTimer(self)
        self._text_timer.timeout.connect(self.refresh_text)
        self._text_timer.start(TEXT_REFRESH_MS)
        self.refresh_text()

    @QtCore.Slot(str)
    def open_bed(self, bed_id: str) -> None:
        """Show one bed in detail (GUI thread)."""
        bed = self.beds.get(bed_id)
        if bed is None:
            return
        self.bed_view.show_bed(bed)
        self.stack.setCurrentWidget(self.bed_view)
        self.bed_view.setFocus()

    def attach_review(self, explainer, submit_review) -> None:
        """Add the event review page (needs the explanation service)."""
        if self.clinical is None:
            return
        from app.ui.review import EventReview  # noqa: PLC0415

        self.review = EventReview(
            self.beds, self.clinical.manager, explainer, submit_review=submit_review
        )
        explainer.on_result = self.review.explained.emit
        self.review.back.connect(self.show_ward)
        self.stack.addWidget(self.review)
        self.events_button.setVisible(True)
        QtGui.QShortcut(QtGui.QKeySequence("F4"), self, activated=self.show_review)

    @QtCore.Slot()
    def show_review(self) -> None:
        """Open the event review (GUI thread)."""
        if self.review is not None:
            self.review.refresh_list()
            self.stack.setCurrentWidget(self.review)

    @QtCore.Slot(str)
    def acknowledge_bed(self, bed_id: str) -> None:
        """Acknowledge one bed's alarms (GUI thread; one click on its alarm strip)."""
        if self.clinical is not None:
            self.clinical.manager.acknowledge(bed_id, user=current_user())

    @QtCore.Slot()
    def show_ward(self) -> None:
        """Back to the ward (GUI thread)."""
        self.stack.setCurrentWidget(self.ward_view)

    @QtCore.Slot()
    def render_frame(self) -> None:
        """Pull waveforms from the rings and redraw the visible view (GUI thread)."""
        in_bed = self.stack.currentWidget() is self.bed_view
        drew = self.bed_view.refresh_waveforms() if in_bed else self.ward_view.refresh_waveforms()
        if self.clinical is not None:
            manager = self.clinical.manager
            if in_bed:
                self.bed_view.refresh_alarm(manager)
            else:
                self.ward_view.refresh_alarms(manager)
            self.banner.refresh()
        if drew:  # a frame counts when a trace actually moved
            self.frames.tick(time.monotonic())

    @QtCore.Slot()
    def refresh_text(self) -> None:
        """Numerics, states and the clock (GUI thread, 1 Hz)."""
        self._clock.setText(time.strftime("%H:%M:%S"))
        if self.clinical is not None:
            self.clinical.tick()
        if self.stack.currentWidget() is self.bed_view:
            self.bed_view.refresh_text()
        else:
            self.ward_view.refresh_text()
