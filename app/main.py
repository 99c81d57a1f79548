"""Composition root: builds sources, buffers, workers, store and windows, and wires them.

Nothing else in Vigil wires components together.  The window is shown first
(nothing slow is on that path: torch loads on the inference thread, the store
opens after the window is up).  Then: store writer → analyzer → sources.
Shutdown: window timers → sources (no new data) → analyzer → store writer
(flush and join), so every sample a source produced before shutdown reaches
the store.
"""

from __future__ import annotations

import logging
import os
import resource
import time
from dataclasses import dataclass
from pathlib import Path

from app import __version__
from app.alarms import AlarmLogEntry
from app.clinical import ClinicalWatch
from app.hub import BedModel, WardHub
from app.ward import WardConfig
from devices.frames import ECG_LEAD_I, DeviceState, Numeric, SampleBlock
from devices.replay import ReplaySource
from inference.pipeline import CLASSES, Beat

logger = logging.getLogger(__name__)

#: Seconds after an event opens before it is explained.  Zero: the beats the
#: rhythm logic called it from were classified, so their context is complete;
#: the next 1 Hz tick queues the explanation (≈ 50–80 ms of compute).
EXPLAIN_DELAY_S = 0.0


@dataclass
class RunOptions:
    """What `vigil run` was asked to do."""

    ward: WardConfig
    data_dir: Path | None = None
    speed: float = 1.0
    store: bool = True
    analysis: bool = True
    audio: bool = True
    ble: bool = False
    #: bleak backend spec (devices.ble_backend): "platform" or "bumble:TRANSPORT".
    ble_backend: str = "platform"
    auto_assign: bool = False
    model_path: Path | None = None
    headless: bool = False
    seconds: float | None = None
    stats_json: Path | None = None
    screenshot: Path | None = None
    frame_rate_hz: float = 30.0
    window_size: tuple[int, int] = (1920, 1080)


class Vigil:
    """The running application minus its windows (usable headless and in tests).

    Parameters
    ----------
    options
        The run options; ``options.ward`` lists the beds.
    """

    def __init__(self, options: RunOptions) -> None:
        self.options = options
        self.beds: dict[str, BedModel] = {
            b.bed_id: BedModel(b.bed_id, b.label, b.patient, b.patient_id)
            for b in options.ward.beds
        }
        self.writer = None
        self.store_file: Path | None = None
        self.sessions: dict[str, int] = {}
        self.hub = WardHub(
            self.beds,
            store_block=self._store_block if options.store else None,
            store_numeric=self._store_numeric if options.store else None,
            store_state=self._store_state if options.store else None,
        )
        self.ble = None
        self.sources: list[ReplaySource] = []
        for bed in options.ward.beds:
            if not bed.wearable:
                self.sources.append(
                    ReplaySource(bed.bed_id, bed.record, self.hub, speed=options.speed)
                )
        self.clinical = self._build_clinical()
        self.clinical.health_checks.append(self._health)
        self.explainer = None
        self._pending_explanations: dict[int, AlarmLogEntry] = {}
        if options.analysis:
            from app.explaining import ExplainService  # noqa: PLC0415 (torch loads on its own thread)

            self.explainer = ExplainService(
                self.beds, model_path=options.model_path, store_explanation=self._store_explanation
            )
            self.clinical.tick_hooks.append(self._explain_new_events)
        self.hub.numeric_listeners.append(self.clinical.on_numeric)
        self.hub.state_listeners.append(self.clinical.on_state)
        self.analysis = None
        if options.analysis:
            from app.analysis import AnalysisWorker  # noqa: PLC0415

            self.analysis = AnalysisWorker(
                self.beds,
                self.hub,
                model_path=options.model_path,
                store_beat=self._store_beat if options.store else None,
                on_conditions=self.clinical.on_conditions,
                limits_of=self.clinical.limits,
            )
        self.started_at: float | None = None

    def _build_clinical(self) -> ClinicalWatch:
        audio = None
        if self.options.audio:
            from app.alarms import AudioOut  # noqa: PLC0415

            audio = AudioOut()
        self.audio = audio
        self._event_ids: dict[int, int] = {}
        return ClinicalWatch(self.beds, audio=audio, on_log=self._store_alarm_log)

    def _health(self) -> list[tuple[str, str, bool]]:
        """Ward-wide technical conditions, polled once a second by the clinical watch."""
        out: list[tuple[str, str, bool]] = []
        if self.writer is not None:
            stats = self.writer.stats()
            out.append(
                (
                    "store_error",
                    f"Recording to disk failing: {stats.get('last_error')}",
                    not stats.get("ok", True),
                )
            )
        if self.analysis is not None and self.analysis.model_error:
            out.append(
                ("model_error", "Beat classifier unavailable: beats detected, not classified", True)
            )
        return out

    def _explain_new_events(self) -> None:
        """Explain each new beat-driven event once its beat's context is complete (GUI tick)."""
        from app.explaining import DRIVING_CLASS, pick_beat  # noqa: PLC0415

        now = time.time()
        for entry_id, entry in list(self._pending_explanations.items()):
            if now - entry.t_on < EXPLAIN_DELAY_S:
                continue
            del self._pending_explanations[entry_id]
            if entry.kind not in DRIVING_CLASS or self.explainer is None:
                continue
            bed = self.beds[entry.bed_id]
            ring = bed.ring(ECG_LEAD_I)
            if ring is None:
                continue
            beat = pick_beat(bed, int(entry.source_t_s * ring.fs_hz), entry.kind)
            if beat is not None:
                self.explainer.request(("event", entry_id), entry.bed_id, beat.sample_index)

    def _store_explanation(self, key: object, data: dict, model_version: str) -> None:
        entry_id = key[1] if isinstance(key, tuple) and key[0] == "event" else None
        event_id = self._event_ids.get(entry_id) if entry_id is not None else None
        if self.writer is not None and event_id is not None:
            self.writer.submit_explanation(event_id, data, model_version)

    def submit_review(self, entry: AlarmLogEntry, user: str, verdict: str, note: str) -> None:
        """Store a clinician's agree/disagree on an event."""
        event_id = self._event_ids.get(entry.entry_id)
        if self.writer is not None and event_id is not None:
            self.writer.submit_review(event_id, user, verdict, note=note)
        logger.info(
            "event reviewed",
            extra={"bed": entry.bed_id, "kind": entry.kind, "verdict": verdict, "user": user},
        )

    def _store_alarm_log(self, entry: AlarmLogEntry) -> None:
        """Upsert one alarm-log entry into the store (called under the alarm lock; a queue put)."""
        if entry.t_off is None and not entry.technical and entry.entry_id not in self._event_ids:
            self._pending_explanations[entry.entry_id] = entry
        if self.writer is None or entry.bed_id not in self.sessions:
            return
        event_id = self._event_ids.get(entry.entry_id)
        if event_id is None:
            event_id = self.writer.submit_event(
                self.sessions[entry.bed_id],
                entry.kind,
                entry.priority.name.lower(),
                entry.t_on,
                offset_s=entry.t_off,
                value=entry.value,
                limit=entry.limit,
                details={
                    "message": entry.message,
                    "technical": entry.technical,
                    "latching": entry.latching,
                    "source": entry.source,
                    "source_t_s": entry.source_t_s,
                },
            )
            self._event_ids[entry.entry_id] = event_id
        else:
            self.writer.update_event(
                event_id,
                offset_s=entry.t_off,
                acknowledged_by=entry.ack_by or None,
                acknowledged_at=entry.t_ack,
            )

    # -- storage -----------------------------------------------------------------
    def _open_store(self) -> None:
        from app.store import StoreWriter, store_path  # noqa: PLC0415 (sqlite-utils loads here)

        self.store_file = store_path(self.options.data_dir)
        self.writer = StoreWriter(self.store_file, app_version=__version__)
        self.writer.start()
        for bed in self.options.ward.beds:
            self.sessions[bed.bed_id] = self.writer.start_session(
                bed.bed_id,
                bed_label=bed.label,
                patient_name=bed.patient,
                patient_id=bed.patient_id,
                source=bed.record or "wearables",
            )
        logger.info("recording to store", extra={"path": str(self.store_file)})

    def _store_block(self, bed_id: str, block: SampleBlock) -> None:
        self.writer.submit_block(self.sessions[bed_id], block)

    def _store_numeric(self, bed_id: str, numeric: Numeric) -> None:
        self.writer.submit_numeric(self.sessions[bed_id], numeric)

    def _store_state(self, bed_id: str, state: DeviceState) -> None:
        self.writer.submit_state(self.sessions[bed_id], state)

    def _store_beat(self, bed_id: str, beat: Beat, model_version: str) -> None:
        self.writer.submit_beat(
            self.sessions[bed_id],
            ECG_LEAD_I,
            beat.sample_index,
            beat.symbol,
            probabilities=dict(zip(CLASSES, beat.probabilities, strict=True)),
            model_version=model_version,
        )

    # -- life cycle --------------------------------------------------------------
    def start(self) -> None:
        """Open the store, then start every source (the written start-up order)."""
        if self.options.store:
            self._open_store()
        self.started_at = time.monotonic()
        if self.audio is not None:
            self.audio.start()
        if self.analysis is not None:
            self.analysis.start()
        for source in self.sources:
            source.start()
        if self.options.ble or any(b.devices for b in self.options.ward.beds):
            self._start_ble()

    def stop(self) -> None:
        """Stop sources, then flush and close the store (the written shutdown order)."""
        for source in self.sources:
            source.stop()
        if self.ble is not None:
            self.ble.stop()
        if self.analysis is not None:
            self.analysis.stop()
        if self.explainer is not None:
            self.explainer.stop()
        if self.audio is not None:
            self.audio.close()
        if self.writer is not None:
            for session_id in self.sessions.values():
                self.writer.end_session(session_id)
            if not self.writer.stop(timeout=10.0):
                logger.error("store writer did not finish flushing", extra=self.writer.stats())

    def _start_ble(self) -> None:
        """Start the BLE thread, connect configured devices, optionally auto-assign."""
        from devices.ble import BleSource  # noqa: PLC0415 (bleak loads only for wearable wards)

        self.ble = BleSource(self.hub, backend=self.options.ble_backend)
        if self.ble.backend.spec.kind != "platform":
            # An unreachable transport must show on the wearable beds, not only in a log.
            self.ble.check_backend().add_done_callback(self._ble_backend_checked)
        for bed in self.options.ward.beds:
            for address in bed.devices:
                self.ble.assign(bed.bed_id, address)
        if self.options.auto_assign:
            wearable_beds = [
                b.bed_id for b in self.options.ward.beds if b.wearable and not b.devices
            ]
            self.ble.scan(timeout_s=4.0).add_done_callback(
                lambda fut: self._auto_assign(fut, wearable_beds)
            )

    def _ble_backend_checked(self, future) -> None:
        """The BLE backend opened, or not (BLE thread): a failure is a technical alarm."""
        exc = future.exception()
        if exc is None:
            return
        spec = self.options.ble_backend
        logger.error("BLE backend unavailable", extra={"ble": spec, "error": str(exc)})
        self._ble_failed(f"Bluetooth ({spec}): {exc}")

    def _ble_failed(self, detail: str) -> None:
        """Tell every wearable bed its Bluetooth source failed (any thread)."""
        from devices.frames import ConnectionState, DeviceState  # noqa: PLC0415

        for bed in self.options.ward.beds:
            if bed.wearable:
                self.hub.on_state(
                    bed.bed_id,
                    DeviceState("ble", ConnectionState.FAILED, detail[:200], time.monotonic(), {}),
                )

    def _auto_assign(self, future, bed_ids: list[str]) -> None:
        """Give each wearable bed one device of each kind found (testers' shortcut; BLE thread)."""
        try:
            found = future.result()
        except Exception as exc:
            logger.exception("auto-assign scan failed")
            self._ble_failed(f"Bluetooth scan failed: {exc}")
            return
        next_bed: dict[str, int] = {}
        for device in sorted(found, key=lambda d: d.address):
            i = next_bed.get(device.kind, 0)
            if i < len(bed_ids):
                self.ble.assign(bed_ids[i], device.address)
                next_bed[device.kind] = i + 1
                logger.info(
                    "auto-assigned",
                    extra={"bed": bed_ids[i], "device": device.address, "kind": device.kind},
                )

    def stats(self, fps: list[int]) -> dict:
        """The headless run report (see README)."""
        counters = self.hub.counters()
        produced = sum(s.samples_emitted for s in self.sources)
        stored = counters["to_store"]
        store_stats: dict = {}
        if self.writer is not None:
            store_stats = {**self.writer.stats(), "path": str(self.store_file)}
            stored = int(store_stats.get("samples_stored", 0))
        dropped_ring = produced - counters["to_ring"]
        dropped_store = (produced - stored) if self.writer is not None else 0
        fps_sorted = sorted(fps)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return {
            "beds": len(self.beds),
            "seconds": round(time.monotonic() - (self.started_at or time.monotonic()), 3),
            "fps": {
                "median": float(fps_sorted[len(fps_sorted) // 2]) if fps_sorted else 0.0,
                "p5": float(fps_sorted[int(0.05 * (len(fps_sorted) - 1))]) if fps_sorted else 0.0,
                "per_second": fps,
            },
            "samples": {
                "received": counters["received"],
                "produced": produced,
                "dropped": max(dropped_ring, 0) + max(dropped_store, 0),
                "stored": stored,
            },
            "store": store_stats,
            "analysis": self.analysis.stats() if self.analysis is not None else {},
            "alarms": [
                {
                    "bed": e.bed_id,
                    "kind": e.kind,
                    "priority": e.priority.name.lower(),
                    "message": e.message,
                }
                for e in self.clinical.manager.log_entries()
            ],
            "beds_failed": [
                {"bed": b.bed_id, "detail": b.state.detail}
                for b in self.beds.values()
                if b.state.state.value == "failed"
            ],
            "peak_rss_mb": round(usage.ru_maxrss / 1024.0, 1),
            "cpu_s": round(usage.ru_utime + usage.ru_stime, 3),
            "pid": os.getpid(),
        }
