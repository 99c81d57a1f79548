"""Event review with the real model on the explain thread: strip, verdict, sentence, export."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6 import QtCore, QtWidgets

from app.alarms import AlarmCondition, Priority
from app.main import RunOptions, Vigil
from app.ui.main_window import MainWindow
from app.ward import BedConfig, WardConfig
from inference.pipeline import default_model_path

ROOT = Path(__file__).resolve().parents[3]

pytestmark = pytest.mark.skipif(
    not default_model_path().exists(), reason="beat model not built yet"
)


def _ward_of_119(qtbot):
    ward = WardConfig(
        "Review",
        (BedConfig("bed1", "Bed 1", "M. Okafor", "mitdb-119", str(ROOT / "resources/demo/119")),),
    )
    vigil = Vigil(RunOptions(ward=ward, store=False, audio=False, speed=4.0))
    window = MainWindow(ward.title, list(vigil.beds.values()), clinical=vigil.clinical)
    qtbot.addWidget(window)
    window.resize(1600, 900)
    window.show()
    vigil.start()
    window.attach_review(vigil.explainer, vigil.submit_review)
    return vigil, window


def test_a_flagged_event_is_explained_and_exported(qtbot, tmp_path: Path) -> None:
    vigil, window = _ward_of_119(qtbot)
    try:
        bed = vigil.beds["bed1"]
        qtbot.waitUntil(lambda: sum(b.symbol == "V" for b in bed.beats) >= 3, timeout=60_000)
        v_beat = next(b for b in bed.beats if b.symbol == "V")
        fs = bed.ring("ecg").fs_hz
        vigil.clinical.manager.submit(
            AlarmCondition(
                "bed1",
                "bigeminy",
                Priority.MEDIUM,
                "Ventricular bigeminy",
                t_s=v_beat.sample_index / fs,
            )
        )
        window.show_review()
        review = window.review
        # The live rhythm analyzer may have raised its own events by now; ours is listed.
        ours = v_beat.sample_index / fs
        rows = [
            i
            for i, e in enumerate(review.entries)
            if e.kind == "bigeminy" and abs(e.source_t_s - ours) < 1e-6
        ]
        assert len(rows) == 1, [(e.kind, e.source_t_s) for e in review.entries]
        review.table.selectRow(rows[0])
        qtbot.waitUntil(lambda: review.verdict.text().startswith("Called"), timeout=60_000)
        assert "V" in review.verdict.text()
        assert review.summary.text()
        data = review.current_explanation
        assert data["model_version"] == vigil.explainer._thread.model_version
        assert abs(sum(data["segments"].values()) - 1.0) < 1e-3
        png, pdf = tmp_path / "event.png", tmp_path / "event.pdf"
        assert review.export(str(png)) and png.read_bytes()[:4] == b"\x89PNG"
        assert review.export(str(pdf)) and pdf.read_bytes()[:4] == b"%PDF"
        review.note.setText("classic bigeminy")
        review.record_review("agree")
        assert review.review_status.text().startswith("agree")
    finally:
        vigil.stop()
        window.close()


def test_opening_and_closing_the_review_leaks_no_widgets(qtbot) -> None:
    vigil, window = _ward_of_119(qtbot)
    try:
        app = QtWidgets.QApplication.instance()
        window.show_review()
        window.show_ward()
        # Widgets of earlier tests awaiting deferred deletion must not count.
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
        baseline = len(app.allWidgets())
        for _ in range(5):
            window.show_review()
            qtbot.wait(50)
            window.show_ward()
            qtbot.wait(50)
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
        assert len(app.allWidgets()) <= baseline
    finally:
        vigil.stop()
        window.close()
