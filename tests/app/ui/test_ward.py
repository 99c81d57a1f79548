"""The ward view on real Qt offscreen: tiles, sweeping curves, the bed view."""

from __future__ import annotations

import numpy as np
from PySide6 import QtCore

from app.main import RunOptions, Vigil
from app.ui.main_window import MainWindow
from app.ward import demo_ward_path, load_ward


def _running_ward(qtbot):
    vigil = Vigil(RunOptions(ward=load_ward(demo_ward_path()), store=False, audio=False))
    window = MainWindow("test ward", list(vigil.beds.values()), clinical=vigil.clinical)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    vigil.start()
    return vigil, window


def test_demo_ward_shows_eight_tiles_whose_curves_advance(qtbot) -> None:
    vigil, window = _running_ward(qtbot)
    try:
        tiles = window.ward_view.tiles
        assert len(tiles) == 8
        assert [t.bed.label for t in tiles] == [f"Bed {i}" for i in range(1, 9)]
        qtbot.waitUntil(lambda: all(t.ecg.frames_drawn >= 3 for t in tiles), timeout=10_000)
        first = [t.ecg.last_end_index for t in tiles]
        qtbot.wait(500)
        second = [t.ecg.last_end_index for t in tiles]
        assert all(b > a for a, b in zip(first, second, strict=True))
        x, y = tiles[0].ecg._curve.getData()
        assert np.isfinite(y).sum() > 100  # the sweep really carries samples
        assert np.isnan(y).any()  # and an erase bar
    finally:
        vigil.stop()
        window.close()


def test_click_opens_the_bed_view_and_escape_returns(qtbot) -> None:
    vigil, window = _running_ward(qtbot)
    try:
        tile = window.ward_view.tiles[6]  # BIDMC bed: ECG, pleth, resp
        qtbot.mouseClick(tile, QtCore.Qt.MouseButton.LeftButton)
        assert window.stack.currentWidget() is window.bed_view
        assert window.bed_view.bed is tile.bed
        qtbot.waitUntil(
            lambda: all(t.frames_drawn > 2 for t in window.bed_view.traces.values()), timeout=10_000
        )
        qtbot.keyClick(window.bed_view, QtCore.Qt.Key.Key_Escape)
        assert window.stack.currentWidget() is window.ward_view
    finally:
        vigil.stop()
        window.close()


def test_numerics_appear_for_a_bed_that_reports_them(qtbot) -> None:
    vigil, window = _running_ward(qtbot)
    try:
        tile = window.ward_view.tiles[6]
        qtbot.waitUntil(
            lambda: (tile.refresh_text(), tile.numerics["spo2"].text() != "--")[1], timeout=10_000
        )
        assert 80 <= int(tile.numerics["spo2"].text()) <= 100
    finally:
        vigil.stop()
        window.close()
