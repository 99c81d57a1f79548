"""The ward view: a grid of bed tiles."""

from __future__ import annotations

import math

from PySide6 import QtCore, QtWidgets

from app.alarms import AlarmManager
from app.hub import BedModel
from app.ui.bed_tile import BedTile


def grid_shape(n_beds: int) -> tuple[int, int]:
    """Columns and rows for ``n_beds`` tiles: 2 columns up to 8 beds, then 4."""
    cols = 1 if n_beds <= 2 else 2 if n_beds <= 8 else 4
    return cols, math.ceil(n_beds / cols)


class WardView(QtWidgets.QWidget):
    """All beds at a glance.  ``bed_opened`` (GUI thread) carries the clicked bed id."""

    bed_opened = QtCore.Signal(str)

    def __init__(self, beds: list[BedModel], parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        grid = QtWidgets.QGridLayout(self)
        grid.setContentsMargins(6, 6, 6, 6)
        grid.setSpacing(6)
        cols, rows = grid_shape(len(beds))
        self.tiles: list[BedTile] = []
        for i, bed in enumerate(beds):
            tile = BedTile(bed)
            tile.opened.connect(self.bed_opened)
            grid.addWidget(tile, i // cols, i % cols)
            self.tiles.append(tile)
        for r in range(rows):
            grid.setRowStretch(r, 1)
        for c in range(cols):
            grid.setColumnStretch(c, 1)

    def refresh_waveforms(self) -> int:
        """Redraw every tile's ECG; returns how many traces changed."""
        return sum(tile.refresh_waveforms() for tile in self.tiles)

    def refresh_alarms(self, manager: AlarmManager) -> None:
        """Show each bed's worst alarm, flashing per priority (GUI thread, frame rate)."""
        now = manager.now()
        for tile in self.tiles:
            tile.alarm.show_display(manager.bed_display(tile.bed.bed_id), now)

    def refresh_text(self) -> None:
        """Update every tile's numerics and state."""
        for tile in self.tiles:
            tile.refresh_text()
