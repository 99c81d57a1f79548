"""Device picker: scan for wearables and assign them to a bed.

The scan runs on the BLE thread; its result comes back to the GUI thread
through a queued signal (DESIGN.md rule 1), never by touching widgets from
the BLE thread.
"""

from __future__ import annotations

import logging

from PySide6 import QtCore, QtWidgets

logger = logging.getLogger(__name__)

#: Clinic names of the device kinds the BLE layer recognises.
KIND_NAMES = {
    "chest_strap": "ECG chest strap",
    "pulse_oximeter": "Pulse oximeter",
    "thermometer": "Thermometer",
    "bp_cuff": "BP cuff",
    "unknown": "Other",
}


class DevicePicker(QtWidgets.QDialog):
    """Lists wearables in range (name, kind, RSSI, services) and assigns the chosen ones.

    Parameters
    ----------
    ble
        The app's :class:`~devices.ble.BleSource`.
    bed_id, bed_label
        The bed the devices will feed.
    """

    #: Emitted on the GUI thread (queued from the BLE thread) with the scan result.
    scan_finished = QtCore.Signal(object)

    def __init__(
        self, ble, bed_id: str, bed_label: str, parent: QtWidgets.QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self._ble = ble
        self.bed_id = bed_id
        self.setWindowTitle(f"Wearables — {bed_label}")
        self.resize(720, 420)
        layout = QtWidgets.QVBoxLayout(self)
        self.status = QtWidgets.QLabel("")
        layout.addWidget(self.status)
        self.table = QtWidgets.QTableWidget(0, 5)
        self.table.setHorizontalHeaderLabels(["Device", "Kind", "RSSI", "Address", "Assigned to"])
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        layout.addWidget(self.table, 1)
        buttons = QtWidgets.QHBoxLayout()
        self.scan_button = QtWidgets.QPushButton("Scan")
        self.assign_button = QtWidgets.QPushButton(f"Assign to {bed_label}")
        self.unassign_button = QtWidgets.QPushButton("Remove from bed")
        close = QtWidgets.QPushButton("Close")
        for b in (self.scan_button, self.assign_button, self.unassign_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(close)
        layout.addLayout(buttons)
        self.scan_button.clicked.connect(self.scan)
        self.assign_button.clicked.connect(self.assign_selected)
        self.unassign_button.clicked.connect(self.unassign_selected)
        close.clicked.connect(self.accept)
        self.scan_finished.connect(self._show_found, QtCore.Qt.ConnectionType.QueuedConnection)
        self.found: list = []

    @QtCore.Slot()
    def scan(self) -> None:
        """Start a 4 s scan on the BLE thread."""
        self.scan_button.setEnabled(False)
        self.status.setText("Scanning for wearables…")
        future = self._ble.scan(timeout_s=4.0)
        future.add_done_callback(self._scan_done)

    def _scan_done(self, future) -> None:
        """BLE thread: hand the result to the GUI thread."""
        try:
            result = future.result()
        except Exception as exc:
            result = exc
        self.scan_finished.emit(result)

    @QtCore.Slot(object)
    def _show_found(self, result) -> None:
        self.scan_button.setEnabled(True)
        if isinstance(result, Exception):
            self.status.setText(f"Scan failed: {result}")
            logger.warning("scan failed", extra={"error": str(result)})
            return
        self.found = list(result)
        owner = {a: bed for bed, addrs in self._ble.assignments().items() for a in addrs}
        self.table.setRowCount(len(self.found))
        for row, d in enumerate(self.found):
            cells = (
                d.name or "(unnamed)",
                KIND_NAMES.get(d.kind, d.kind),
                f"{d.rssi_dbm} dBm",
                d.address,
                owner.get(d.address, ""),
            )
            for col, text in enumerate(cells):
                self.table.setItem(row, col, QtWidgets.QTableWidgetItem(text))
        self.status.setText(f"{len(self.found)} wearable(s) in range")

    def _selected(self) -> list[str]:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return [self.found[r].address for r in sorted(rows) if r < len(self.found)]

    @QtCore.Slot()
    def assign_selected(self) -> None:
        """Assign the selected devices to this bed."""
        for address in self._selected():
            try:
                self._ble.assign(self.bed_id, address)
            except ValueError as exc:  # already on another bed
                self.status.setText(str(exc))
                return
        self.status.setText(f"Assigned {len(self._selected())} device(s); connecting…")

    @QtCore.Slot()
    def unassign_selected(self) -> None:
        """Detach the selected devices from their bed."""
        for address in self._selected():
            self._ble.unassign(address)
        self.status.setText("Removed")
