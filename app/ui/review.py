"""Event review: the flagged events of the ward and, for each, why the model called it.

Left: the event list with filters (bed, kind, priority, time).  Right: the
event detail — a 20 s strip (10 s before, 10 s after) of both leads with beat
labels and the attribution drawn as a colour fill under each lead (red
supports the call, blue opposes it), the class probabilities, the share of
evidence per wave segment, the RR context, the sentence, the faithfulness
figure and the model version; agree/disagree with a note; export to PNG or PDF.

Explanations are computed on the explain thread (:mod:`app.explaining`) and
arrive here through a queued signal.
"""

from __future__ import annotations

import time
from typing import Final

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from app.alarms import AlarmLogEntry, AlarmManager
from app.explaining import ExplainService, pick_beat
from app.hub import BedModel
from app.ui import theme
from app.ui.alarm_views import current_user
from app.ui.waveform import BEAT_COLOURS
from devices.frames import ECG_LEAD_I, ECG_LEAD_II

STRIP_BEFORE_S: Final = 10.0
STRIP_AFTER_S: Final = 10.0
SUPPORT_COLOUR: Final = (255, 70, 70, 150)
OPPOSE_COLOUR: Final = (70, 140, 255, 150)
SEGMENT_ORDER: Final = ("P", "PR", "QRS", "ST", "T", "RR", "previous", "other")
SEGMENT_LABELS: Final = {"previous": "prev. beat", "other": "other"}
TIME_FILTERS: Final = (("Last hour", 3600.0), ("Last 8 h", 8 * 3600.0), ("All", None))


class EventReview(QtWidgets.QWidget):
    """The review page.  ``back`` (GUI thread) returns to the ward."""

    back = QtCore.Signal()
    #: Explanation result, re-emitted from the explain thread: (key, dict | None, error | None).
    explained = QtCore.Signal(object, object, object)

    def __init__(
        self,
        beds: dict[str, BedModel],
        manager: AlarmManager,
        explainer: ExplainService,
        *,
        submit_review=None,
        parent: QtWidgets.QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.beds = beds
        self.manager = manager
        self.explainer = explainer
        self._submit_review = submit_review
        self.explained.connect(self._on_explained, QtCore.Qt.ConnectionType.QueuedConnection)
        self.entries: list[AlarmLogEntry] = []
        self.current: AlarmLogEntry | None = None
        self.current_explanation: dict | None = None
        self._beat_sample: int | None = None

        outer = QtWidgets.QHBoxLayout(self)
        left = QtWidgets.QVBoxLayout()
        back = QtWidgets.QPushButton("◀  Ward (Esc)")
        back.clicked.connect(self.back)
        left.addWidget(back)
        filters = QtWidgets.QHBoxLayout()
        self.bed_filter = QtWidgets.QComboBox()
        self.bed_filter.addItem("All beds", None)
        for bed in beds.values():
            self.bed_filter.addItem(bed.label, bed.bed_id)
        self.kind_filter = QtWidgets.QComboBox()
        self.kind_filter.addItem("All events", None)
        self.priority_filter = QtWidgets.QComboBox()
        for label, value in (
            ("Any priority", None),
            ("High", "HIGH"),
            ("Medium", "MEDIUM"),
            ("Low", "LOW"),
        ):
            self.priority_filter.addItem(label, value)
        self.time_filter = QtWidgets.QComboBox()
        for label, seconds in TIME_FILTERS:
            self.time_filter.addItem(label, seconds)
        for box in (self.bed_filter, self.kind_filter, self.priority_filter, self.time_filter):
            box.currentIndexChanged.connect(self.refresh_list)
            filters.addWidget(box)
        left.addLayout(filters)
        self.table = QtWidgets.QTableWidget(0, 4)
        self.table.setHorizontalHeaderLabels(["Time", "Bed", "Event", "Priority"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.itemSelectionChanged.connect(self._on_select)
        left.addWidget(self.table, 1)
        left_box = QtWidgets.QWidget()
        left_box.setLayout(left)
        left_box.setFixedWidth(520)
        outer.addWidget(left_box)
        outer.addWidget(self._build_detail(), 1)

    # -- detail layout ---------------------------------------------------------------------
    def _build_detail(self) -> QtWidgets.QWidget:
        box = QtWidgets.QWidget()
        lay = QtWidgets.QVBoxLayout(box)
        self.title = QtWidgets.QLabel("Select an event")
        self.title.setStyleSheet("font-size: 22px; font-weight: bold;")
        self.verdict = QtWidgets.QLabel("")
        self.verdict.setStyleSheet("font-size: 30px; font-weight: bold;")
        self.summary = QtWidgets.QLabel("")
        self.summary.setWordWrap(True)
        self.summary.setStyleSheet("font-size: 18px; color: #ffffff;")
        lay.addWidget(self.title)
        lay.addWidget(self.verdict)
        lay.addWidget(self.summary)
        self.strip = pg.PlotWidget(background="#000000")
        self.strip.setMouseEnabled(False, False)
        self.strip.hideButtons()
        self.strip.getAxis("left").setLabel("mV")
        self.strip.getAxis("bottom").setLabel("s from event")
        self.strip.setMinimumHeight(300)
        lay.addWidget(self.strip, 5)
        legend = QtWidgets.QLabel(
            "<span style='color:#ff4646'>■</span> evidence for the call   "
            "<span style='color:#468cff'>■</span> evidence against   shaded: the beat explained"
        )
        legend.setStyleSheet("font-size: 13px; color: #c8d0d8;")
        lay.addWidget(legend)
        row = QtWidgets.QHBoxLayout()
        self.probabilities = pg.PlotWidget(background="#000000", title="Class probability")
        self.segments = pg.PlotWidget(background="#000000", title="Share of evidence")
        for w in (self.probabilities, self.segments):
            w.setMouseEnabled(False, False)
            w.hideButtons()
            w.setMinimumHeight(150)
            w.setMaximumHeight(230)
            row.addWidget(w, 1)
        self.context = QtWidgets.QLabel("")
        self.context.setWordWrap(True)
        self.context.setStyleSheet("font-size: 14px; color: #c8d0d8;")
        self.context.setMinimumWidth(320)
        row.addWidget(self.context, 1)
        lay.addLayout(row, 2)
        actions = QtWidgets.QHBoxLayout()
        self.note = QtWidgets.QLineEdit()
        self.note.setPlaceholderText("Note for the record (optional)")
        self.agree = QtWidgets.QPushButton("Agree")
        self.disagree = QtWidgets.QPushButton("Disagree")
        self.export_png = QtWidgets.QPushButton("Export PNG…")
        self.export_pdf = QtWidgets.QPushButton("Export PDF…")
        self.review_status = QtWidgets.QLabel("")
        self.agree.clicked.connect(lambda: self.record_review("agree"))
        self.disagree.clicked.connect(lambda: self.record_review("disagree"))
        self.export_png.clicked.connect(lambda: self._export_dialog("png"))
        self.export_pdf.clicked.connect(lambda: self._export_dialog("pdf"))
        for w in (
            self.note,
            self.agree,
            self.disagree,
            self.export_png,
            self.export_pdf,
            self.review_status,
        ):
            actions.addWidget(w, 3 if w is self.note else 0)
        lay.addLayout(actions)
        self.detail = box
        return box

    # -- list ------------------------------------------------------------------------------
    @QtCore.Slot()
    def refresh_list(self) -> None:
        """Reload the event list from the alarm log with the filters applied (GUI thread)."""
        bed_id = self.bed_filter.currentData()
        kind = self.kind_filter.currentData()
        prio = self.priority_filter.currentData()
        horizon = self.time_filter.currentData()
        now = time.time()
        all_entries = [
            e for e in self.manager.log_entries() if not e.technical and e.bed_id in self.beds
        ]
        kinds = sorted({e.kind for e in all_entries})
        if [self.kind_filter.itemData(i) for i in range(1, self.kind_filter.count())] != kinds:
            self.kind_filter.blockSignals(True)
            current = self.kind_filter.currentData()
            self.kind_filter.clear()
            self.kind_filter.addItem("All events", None)
            for k in kinds:
                self.kind_filter.addItem(k, k)
            idx = self.kind_filter.findData(current)
            self.kind_filter.setCurrentIndex(max(idx, 0))
            self.kind_filter.blockSignals(False)
        self.entries = [
            e
            for e in reversed(all_entries)
            if (bed_id is None or e.bed_id == bed_id)
            and (kind is None or e.kind == kind)
            and (prio is None or e.priority.name == prio)
            and (horizon is None or now - e.t_on <= horizon)
        ]
        self.table.setRowCount(len(self.entries))
        for row, e in enumerate(self.entries):
            cells = (
                time.strftime("%H:%M:%S", time.localtime(e.t_on)),
                self.beds[e.bed_id].label,
                e.message,
                e.priority.name.title(),
            )
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(text))

    def _on_select(self) -> None:
        rows = {i.row() for i in self.table.selectedIndexes()}
        if rows:
            self.show_event(self.entries[min(rows)])

    # -- detail ----------------------------------------------------------------------------
    def show_event(self, entry: AlarmLogEntry) -> None:
        """Show one event: its strip now, its explanation when the explain thread has it."""
        self.current = entry
        self.current_explanation = None
        bed = self.beds[entry.bed_id]
        self.title.setText(
            f"{bed.label} · {bed.patient} — {entry.message} · "
            f"{time.strftime('%H:%M:%S', time.localtime(entry.t_on))}"
        )
        self.verdict.setText("Explaining…")
        self.summary.setText("")
        self.review_status.setText("")
        ring = bed.ring(ECG_LEAD_I)
        onset = int(entry.source_t_s * ring.fs_hz) if ring is not None else 0
        beat = pick_beat(bed, onset, entry.kind)
        self._beat_sample = beat.sample_index if beat else None
        self._draw_strip(bed, beat.sample_index if beat else onset, None)
        key = ("event", entry.entry_id)
        cached = self.explainer.results.get(key)
        if cached is not None:
            self._show_explanation(cached)
        elif beat is None:
            self.verdict.setText("No beat to explain near this event")
        else:
            self.explainer.request(key, bed.bed_id, beat.sample_index)

    def _on_explained(self, key, data, error) -> None:
        if self.current is None or key != ("event", self.current.entry_id):
            return
        if data is None:
            self.verdict.setText("Explanation unavailable")
            self.summary.setText(str(error))
            return
        self._show_explanation(data)

    def _show_explanation(self, data: dict) -> None:
        self.current_explanation = data
        cls = data.get("called") or data["predicted"]
        prob = (data.get("called_probabilities") or data["probabilities"]).get(cls, 0.0)
        colour = BEAT_COLOURS.get(cls, theme.PARAMETER_COLOURS["ecg"])
        self.verdict.setText(f"Called {cls} ({prob:.2f})")
        self.verdict.setStyleSheet(f"font-size: 30px; font-weight: bold; color: {colour};")
        self.summary.setText(data["summary"])
        bed = self.beds[self.current.bed_id] if self.current else None
        if bed is not None and self._beat_sample is not None:
            self._draw_strip(bed, self._beat_sample, data)
        self._draw_bars(data)
        f = data.get("faithfulness") or {}
        m = data.get("measurements") or {}
        lines = []
        for key, label, unit in (("qrs_ms", "QRS", "ms"), ("pr_ms", "PR", "ms")):
            if isinstance(m.get(key), (int, float)):
                lines.append(f"{label} {m[key]:.0f} {unit}")
        rr = sorted(data.get("rr_features", []), key=lambda r: -abs(r.get("attribution") or 0.0))[
            :3
        ]
        if rr:
            lines.append("RR evidence (strongest first):")
            lines += [f"  {r['name']}: {r['value']:+.2f} (usual {r['baseline']:+.2f})" for r in rr]
        if f:
            lines.append(
                f"Faithfulness: deleting the top evidence drops the call {f.get('random_deletion_auc', 0) / max(f.get('deletion_auc', 1e-9), 1e-9):.1f}× "
                f"faster than random (deletion AUC {f.get('deletion_auc', float('nan')):.2f} vs {f.get('random_deletion_auc', float('nan')):.2f})"
            )
        lines.append(
            f"Method: {data.get('method', '').upper()} against the patient's usual beat · {data.get('latency_ms', 0):.0f} ms"
        )
        lines.append(f"Model: {data.get('model_version', '')}")
        self.context.setText("\n".join(lines))

    def _draw_strip(self, bed: BedModel, centre: int, data: dict | None) -> None:
        self.strip.clear()
        ring = bed.ring(ECG_LEAD_I)
        if ring is None:
            return
        fs = ring.fs_hz
        start, stop = centre - int(STRIP_BEFORE_S * fs), centre + int(STRIP_AFTER_S * fs)
        offset = 0.0
        for k, stream in enumerate((ECG_LEAD_I, ECG_LEAD_II)):
            r = bed.ring(stream)
            if r is None:
                continue
            w = r.read(start, stop)
            if not len(w.samples):
                continue
            x = (np.arange(w.first_index, w.end_index) - centre) / fs
            y = w.samples.astype(np.float64)
            finite = y[np.isfinite(y)]
            mid = float(np.median(finite)) if len(finite) else 0.0
            base = -k * 3.0
            self.strip.plot(
                x,
                y - mid + base,
                pen=pg.mkPen(theme.PARAMETER_COLOURS["ecg"], width=1.2),
                connect="finite",
            )
            if data is not None and k < len(data.get("attribution", [])):
                attr = np.asarray(data["attribution"][k], dtype=np.float64)
                tx = np.asarray(data["time_s"], dtype=np.float64)
                scale = 0.9 / max(np.nanmax(np.abs(attr)), 1e-9)
                fill_base = base - 1.5
                for sign, colour in ((1, SUPPORT_COLOUR), (-1, OPPOSE_COLOUR)):
                    part = np.clip(sign * attr, 0, None) * scale
                    item = pg.PlotDataItem(
                        tx,
                        fill_base + sign * part,
                        pen=None,
                        fillLevel=fill_base,
                        brush=pg.mkBrush(*colour),
                    )
                    self.strip.addItem(item)
            offset = base
        for b in bed.beats:
            if start <= b.sample_index < stop:
                x = (b.sample_index - centre) / fs
                colour = BEAT_COLOURS.get(b.symbol, "#9aa4ae")
                label = pg.TextItem(
                    b.symbol, color=colour if b.symbol != "N" else "#6f7b86", anchor=(0.5, 1)
                )
                label.setPos(x, 1.9)
                self.strip.addItem(label)
        self.strip.setXRange(-STRIP_BEFORE_S, STRIP_AFTER_S, padding=0)
        self.strip.setYRange(offset - 3.0, 2.2, padding=0)

    def _draw_bars(self, data: dict) -> None:
        self.probabilities.clear()
        classes = ("N", "S", "V", "F", "Q")
        shown = data.get("called_probabilities") or data["probabilities"]
        probs = [shown.get(c, 0.0) for c in classes]
        brushes = [pg.mkBrush(BEAT_COLOURS.get(c, theme.PARAMETER_COLOURS["ecg"])) for c in classes]
        self.probabilities.addItem(
            pg.BarGraphItem(x=np.arange(5), height=probs, width=0.7, brushes=brushes)
        )
        self.probabilities.getAxis("bottom").setTicks([list(enumerate(classes))])
        self.probabilities.setYRange(0, 1)
        self.segments.clear()
        seg = data.get("segments", {})
        names = [s for s in SEGMENT_ORDER if seg.get(s, 0) > 0.005]
        labels = [SEGMENT_LABELS.get(n, n) for n in names]
        self.segments.addItem(
            pg.BarGraphItem(
                x=np.arange(len(names)),
                height=[seg[n] for n in names],
                width=0.7,
                brush=pg.mkBrush("#ff6a4d"),
            )
        )
        self.segments.getAxis("bottom").setTicks([list(enumerate(labels))])
        self.segments.setYRange(0, 1)

    # -- review and export -------------------------------------------------------------------
    def record_review(self, verdict: str) -> None:
        """Store agree/disagree with the note, attributed to the logged-in user."""
        if self.current is None:
            return
        user = current_user()
        if self._submit_review is not None:
            self._submit_review(self.current, user, verdict, self.note.text())
        self.review_status.setText(f"{verdict} — {user}")

    def export(self, path: str) -> bool:
        """Save the event detail (strip + explanation) as PNG, or PDF when ``path`` ends in .pdf."""
        if path.lower().endswith(".pdf"):
            writer = QtGui.QPdfWriter(path)
            writer.setPageOrientation(QtGui.QPageLayout.Orientation.Landscape)
            writer.setResolution(150)
            painter = QtGui.QPainter(writer)
            pixmap = self.detail.grab()
            target = painter.viewport()
            scaled = pixmap.size().scaled(target.size(), QtCore.Qt.AspectRatioMode.KeepAspectRatio)
            painter.drawPixmap(QtCore.QRect(QtCore.QPoint(0, 0), scaled), pixmap)
            return painter.end()
        return self.detail.grab().save(path)

    def _export_dialog(self, kind: str) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, "Export event", f"event.{kind}", f"{kind.upper()} (*.{kind})"
        )
        if path:
            self.export(path)

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if event.key() == QtCore.Qt.Key.Key_Escape:
            self.back.emit()
            return
        super().keyPressEvent(event)
