"""The single writer thread: everything that goes into the store passes here.

Any thread submits (a queue put: it never waits for the disk); the writer
thread owns the only writing connection (WAL), gathers samples into chunks
(:mod:`app.store.chunks`) and rows into batches, and commits at least every
``commit_interval_s``.  When a commit fails — database locked by another
program, disk full, I/O error, damaged file — the batch stays in memory (up to
``max_pending_bytes``), the error is logged with what to do about it (again
every 30 s while it lasts), counted, and shown in :meth:`StoreWriter.stats`
for the technical alarm, and the commit is retried with backoff (0.25 s
doubling to 5 s).  Data is dropped only past that bound or
when an item can never be written (a program error); both are counted and
logged.

Typical use from the composition root::

    writer = StoreWriter(store_path(args.data_dir))
    writer.start()                                   # raises StoreError naming the file
    sid = writer.start_session("bed-1", bed_label="Bed 1", source="mitdb/100")
    writer.submit_block(sid, block)                  # from any thread
    writer.end_session(sid)
    writer.stop(timeout=5.0)                         # flushes and joins
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import math
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from app.store import schema
from app.store.batch import Batch, Op, WriterCounters
from app.store.chunks import SegmentBook
from app.store.errors import LOCKED, StoreError, classify
from app.store.records import VERDICTS
from app.store.sql import (
    INSERT_BEAT,
    INSERT_EVENT,
    INSERT_EXPLANATION,
    INSERT_NUMERIC,
    INSERT_REVIEW,
    INSERT_SESSION,
    INSERT_STATE,
    UPSERT_BED,
    UPSERT_PATIENT,
)
from devices.frames import DeviceState, Numeric, SampleBlock

if TYPE_CHECKING:
    import sqlite_utils

logger = logging.getLogger(__name__)

#: Times the writer loop is restarted after an unexpected error before it gives up.
_MAX_LOOP_RESTARTS: Final = 50

THREAD_NAME: Final = "vigil-store-writer"
_BACKOFF_FIRST_S: Final = 0.25
_BACKOFF_MAX_S: Final = 5.0
_DRAIN_MAX: Final = 50_000  # items taken per wake-up before a commit is considered

DbCall = Callable[["sqlite_utils.Database"], object]
ConnCall = Callable[[sqlite3.Connection], object]


def _app_version() -> str:
    """The installed Vigil version, recorded with sessions and migrations."""
    try:
        return importlib.metadata.version("vigil")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _real(value: float | None) -> float | None:
    """NaN as NULL: SQLite has no NaN and the readers map NULL back."""
    return None if value is None or math.isnan(value) else float(value)


class StoreWriter:
    """Owns the store's only writing connection, on its own thread.

    Parameters
    ----------
    path
        The SQLite file (see :func:`app.store.schema.store_path`); created and
        migrated on :meth:`start`.
    commit_interval_s
        Longest time between commits while data is pending.
    busy_timeout_s
        How long one attempt waits on a lock held by another connection.
    max_pending_bytes
        Memory allowed for data that could not be committed yet; past it,
        incoming data is dropped, counted and logged.
    chunk_max_samples
        Samples per stored chunk (bigger compresses better; each commit
        re-encodes the open chunk).
    pragmas
        Extra ``PRAGMA name = value`` applied after migration (tests use
        ``max_page_count`` to fill the "disk").
    app_version
        Recorded with each session and migration.
    """

    def __init__(
        self,
        path: Path | str,
        *,
        commit_interval_s: float = 1.0,
        busy_timeout_s: float = 0.5,
        max_pending_bytes: int = 64 * 1024 * 1024,
        chunk_max_samples: int = 4096,
        pragmas: Mapping[str, int | str] | None = None,
        app_version: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.commit_interval_s = commit_interval_s
        self.busy_timeout_s = busy_timeout_s
        self.max_pending_bytes = max_pending_bytes
        self.app_version = app_version or _app_version()
        self._pragmas = dict(pragmas or {})
        self._chunk_max_samples = chunk_max_samples
        self._queue: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._counters = WriterCounters()
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._start_error: BaseException | None = None
        self._open_deadline = 0.0
        self._closing = False  # guarded by the counters' lock
        self._clean_stop = False
        self._next_id: dict[str, int] = {}  # guarded by the counters' lock
        self._batch: Batch | None = None  # writer thread only

    # -- life cycle ---------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        """Open (create, migrate) the file on the writer thread and start writing.

        Called from the thread that owns the writer (the composition root).

        Raises
        ------
        StoreError
            The file cannot be opened or migrated; the message names it.  No
            thread is left running.
        """
        if self._thread is not None:
            raise RuntimeError("StoreWriter.start() called twice")
        self._open_deadline = time.monotonic() + timeout
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout + self.busy_timeout_s + 1.0):
            self._closing = True
            self._queue.put(("stop", time.monotonic()))
            raise StoreError(self.path, LOCKED, f"store did not open within {timeout:.0f} s")
        if self._start_error is not None:
            self._thread.join()
            error = self._start_error
            if isinstance(error, StoreError):
                raise error
            raise StoreError(self.path, classify(error), f"cannot open the store: {error}")
        logger.info("store writer started on %s", self.path)

    def stop(self, timeout: float = 5.0) -> bool:
        """Commit what is pending (retrying until ``timeout``), close and join.

        Returns
        -------
        bool
            True when everything submitted was written or deliberately dropped
            earlier; False when data was still pending at the deadline (logged).
        """
        thread = self._thread
        if thread is None:
            return True  # never started: nothing was accepted
        if not thread.is_alive():
            return self._clean_stop
        with self._counters.lock:
            self._closing = True
        self._queue.put(("stop", time.monotonic() + timeout))
        thread.join(timeout + self.busy_timeout_s + 2.0)
        if thread.is_alive():
            logger.error("store writer on %s did not stop within %.1f s", self.path, timeout)
            return False
        leftover = 0
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                break
            leftover += self._count_lost(item)
        return self._clean_stop and leftover == 0

    def __enter__(self) -> StoreWriter:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- submitting (any thread; never waits on the disk) -------------------------

    def start_session(
        self,
        bed_id: str,
        *,
        bed_label: str | None = None,
        patient_id: str | None = None,
        patient_name: str | None = None,
        mrn: str | None = None,
        source: str = "",
        started_at: str | None = None,
    ) -> int:
        """Begin a monitored session of a bed; returns its id at once (written later)."""
        session_id = self._allocate("sessions")
        ops = [Op("bed", UPSERT_BED, (bed_id, bed_label or bed_id, bed_label))]
        if patient_id is not None:
            ops.append(Op("patient", UPSERT_PATIENT, (patient_id, patient_name, mrn)))
        started = started_at or schema.utc_now()
        params = (session_id, bed_id, patient_id, started, source, self.app_version)
        ops.append(Op("session", INSERT_SESSION, params))
        self._put_rows(ops)
        return session_id

    def end_session(self, session_id: int, *, ended_at: str | None = None) -> None:
        """Mark a session ended and close its chunks."""
        self._put(("end", session_id, ended_at or schema.utc_now()), rows=1)

    def submit_block(self, session_id: int, block: SampleBlock) -> None:
        """Queue a block of samples (called on the source's thread)."""
        with self._counters.lock:
            self._counters.values["samples_submitted"] += len(block.samples)
            self._counters.values["blocks_submitted"] += 1
            closing = self._closing
        if closing:
            self._drop_after_stop(("block", session_id, block))
        else:
            self._queue.put(("block", session_id, block))

    def submit_numeric(self, session_id: int, numeric: Numeric) -> None:
        """Queue a numeric reading (called on the source's thread)."""
        params = (
            session_id,
            numeric.name,
            _real(numeric.value),
            numeric.units,
            numeric.t_s,
            numeric.source,
        )
        self._put_rows([Op("numeric", INSERT_NUMERIC, params)])

    def submit_state(self, session_id: int, state: DeviceState) -> None:
        """Queue a device state change or technical event."""
        counters = json.dumps(dict(state.counters))
        params = (session_id, state.device, state.state.value, state.detail, state.t_s, counters)
        self._put_rows([Op("device state", INSERT_STATE, params)])

    def submit_beat(
        self,
        session_id: int,
        stream: str,
        sample_index: int,
        symbol: str,
        *,
        probabilities: Mapping[str, float] | None = None,
        model_version: str = "",
    ) -> None:
        """Queue one detected beat."""
        probs = json.dumps(dict(probabilities or {}))
        params = (session_id, stream, int(sample_index), symbol, probs, model_version)
        self._put_rows([Op("beat", INSERT_BEAT, params)])

    def submit_event(
        self,
        session_id: int,
        kind: str,
        priority: str,
        onset_s: float,
        *,
        offset_s: float | None = None,
        value: float | None = None,
        limit: float | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> int:
        """Queue a flagged event or alarm; returns its id at once."""
        event_id = self._allocate("events")
        params = (
            event_id,
            session_id,
            kind,
            priority,
            onset_s,
            _real(offset_s),
            _real(value),
            _real(limit),
            json.dumps(dict(details or {})),
        )
        self._put_rows([Op("event", INSERT_EVENT, params)])
        return event_id

    def update_event(
        self,
        event_id: int,
        *,
        offset_s: float | None = None,
        acknowledged_by: str | None = None,
        acknowledged_at: str | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        """Set the given fields of an event (end of episode, acknowledgement …)."""
        fields: dict[str, Any] = {
            "offset_s": offset_s,
            "acknowledged_by": acknowledged_by,
            "acknowledged_at": acknowledged_at,
            "details": None if details is None else json.dumps(dict(details)),
        }
        fields = {k: v for k, v in fields.items() if v is not None}
        if not fields:
            return
        sets = ", ".join(f"{name} = ?" for name in fields)
        sql = f"UPDATE events SET {sets} WHERE id = ?"
        self._put_rows([Op("event update", sql, (*fields.values(), event_id))])

    def submit_explanation(
        self, event_id: int, explanation: Mapping[str, Any], model_version: str
    ) -> None:
        """Queue the explanation of an event (JSON-able mapping)."""
        params = (event_id, json.dumps(dict(explanation)), model_version, schema.utc_now())
        self._put_rows([Op("explanation", INSERT_EXPLANATION, params)])

    def submit_review(
        self,
        event_id: int,
        user: str,
        verdict: str,
        *,
        note: str = "",
        reviewed_at: str | None = None,
    ) -> None:
        """Queue a clinician's review of an event; ``verdict`` is "agree" or "disagree"."""
        if verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        params = (event_id, user, verdict, note, reviewed_at or schema.utc_now())
        self._put_rows([Op("review", INSERT_REVIEW, params)])

    def submit(self, fn: DbCall, what: str = "call") -> None:
        """Queue ``fn(db)`` to run in the writer's next transaction.

        ``fn`` runs on the writer thread with a :class:`sqlite_utils.Database`;
        it must only write (it may run again if the commit is retried).
        """
        self._put_rows([Op(what, call=fn)])

    def submit_maintenance(self, fn: ConnCall) -> None:
        """Queue ``fn(conn)`` to run on the writer thread outside any transaction
        (``PRAGMA``, ``wal_checkpoint``); a commit is attempted right after."""
        self._queue.put(("maintenance", fn))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until everything submitted before this call is committed."""
        if self._thread is None or not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(("flush", done))
        return done.wait(timeout)

    def stats(self) -> dict[str, Any]:
        """Counters for the status bar and technical alarms (JSON-able, any thread).

        Keys: ``samples_submitted``, ``samples_stored`` (committed),
        ``samples_dropped``, ``blocks_submitted``, ``blocks_stored``,
        ``blocks_dropped``, ``blocks_pending``, ``rows_*`` likewise, ``commits``,
        ``errors``, ``last_error`` (message naming the file), ``error_kind``
        (None when the last commit worked) and ``ok``.
        """
        return self._counters.snapshot()

    @property
    def last_error(self) -> str | None:
        """The latest error message (kept after recovery; see ``stats()["ok"]``)."""
        with self._counters.lock:
            return self._counters.last_error

    # -- internals: caller side ---------------------------------------------------

    def _allocate(self, table: str) -> int:
        with self._counters.lock:
            if table not in self._next_id:
                raise RuntimeError("StoreWriter.start() must succeed before ids are allocated")
            self._next_id[table] += 1
            return self._next_id[table]

    def _put_rows(self, ops: list[Op]) -> None:
        self._put(("rows", ops), rows=len(ops))

    def _put(self, item: tuple[Any, ...], rows: int) -> None:
        with self._counters.lock:
            self._counters.values["rows_submitted"] += rows
            closing = self._closing
        if closing:
            self._drop_after_stop(item)
        else:
            self._queue.put(item)

    def _drop_after_stop(self, item: tuple[Any, ...]) -> None:
        self._count_lost(item)
        logger.error("store %s is stopped: a %s submitted late was dropped", self.path, item[0])

    def _count_lost(self, item: tuple[Any, ...]) -> int:
        """Count a queued item that will never be written; returns samples + rows lost."""
        kind = item[0]
        if kind == "block":
            n = len(item[2].samples)
            self._counters.add(samples_dropped=n, blocks_dropped=1)
            return n + 1
        if kind in ("rows", "end"):
            rows = len(item[1]) if kind == "rows" else 1
            self._counters.add(rows_dropped=rows)
            return rows
        return 0

    # -- internals: writer thread -------------------------------------------------

    def _run(self) -> None:
        """Body of the writer thread."""
        try:
            self._open()
        except BaseException as exc:  # reported to start(), which re-raises it
            self._start_error = exc
            self._ready.set()
            return
        self._ready.set()
        try:
            for attempt in range(1, _MAX_LOOP_RESTARTS + 1):
                try:
                    self._loop()
                    break
                except Exception as exc:  # a bug here must not vanish with the thread
                    # The item being handled is lost (and counted); the queue behind
                    # it is still written, so one bad record never stops recording.
                    logger.critical(
                        "store writer on %s failed; restarting (%d)",
                        self.path,
                        attempt,
                        exc_info=True,
                    )
                    with self._counters.lock:
                        self._counters.values["errors"] += 1
                        self._counters.error_kind = "writer failed"
                        self._counters.last_error = f"store writer failed: {exc!r} [{self.path}]"
                    time.sleep(min(0.1 * attempt, 2.0))
        finally:
            assert self._batch is not None
            try:
                self._batch.db.close()
            except sqlite3.Error as exc:
                logger.error("closing store %s failed: %s", self.path, exc)

    def _open(self) -> None:
        # Imported here, on the writer thread: sqlite-utils pulls in pandas
        # when it is installed, which costs the GUI thread a second cold.
        import sqlite_utils

        while True:
            conn = schema.connect(self.path, busy_timeout_s=self.busy_timeout_s)
            db = sqlite_utils.Database(conn, execute_plugins=False)
            try:
                schema.migrate(db, self.path, app_version=self.app_version)
                break
            except sqlite3.Error as exc:
                conn.close()
                kind = classify(exc)
                if kind != LOCKED or time.monotonic() > self._open_deadline:
                    raise StoreError(self.path, kind, f"cannot prepare the store: {exc}") from exc
                logger.warning("store %s is locked by another program; waiting", self.path)
                time.sleep(_BACKOFF_FIRST_S)
            except BaseException:
                conn.close()
                raise
        try:
            for name, value in self._pragmas.items():
                conn.execute(f"PRAGMA {name} = {value}")
            last_ids = {
                table: int(conn.execute(f"SELECT coalesce(max(id), 0) FROM {table}").fetchone()[0])
                for table in ("sessions", "events")
            }
        except BaseException:
            conn.close()
            raise
        with self._counters.lock:
            self._next_id.update(last_ids)
        book = SegmentBook(self._chunk_max_samples)
        self._batch = Batch(db, self.path, book, self._counters, self.max_pending_bytes)

    def _loop(self) -> None:
        batch = self._batch
        assert batch is not None
        waiters: list[threading.Event] = []
        next_commit = time.monotonic() + self.commit_interval_s
        backoff = 0.0
        stop_deadline: float | None = None
        while True:
            now = time.monotonic()
            wake = next_commit if stop_deadline is None else min(next_commit, stop_deadline)
            item: tuple[Any, ...] | None
            try:
                item = self._queue.get(timeout=wake - now) if wake > now else None
            except queue.Empty:
                item = None
            urgent = False
            taken = 0
            while item is not None:
                kind = item[0]
                if kind == "block":
                    batch.take_block(item[1], item[2])
                elif kind == "rows":
                    batch.take_rows(item[1])
                elif kind == "end":
                    batch.end_session(item[1], item[2])
                elif kind == "flush":
                    waiters.append(item[1])
                    urgent = True
                elif kind == "maintenance":
                    batch.maintenance(item[1])
                    urgent, backoff = True, 0.0
                elif kind == "stop":
                    stop_deadline = item[1]
                    urgent = True
                taken += 1
                if taken >= _DRAIN_MAX:
                    break
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    item = None
            now = time.monotonic()
            if stop_deadline is not None or now >= next_commit or (urgent and backoff == 0.0):
                if batch.commit():
                    backoff = 0.0
                    next_commit = now + self.commit_interval_s
                    for event in waiters:
                        event.set()
                    waiters.clear()
                else:
                    backoff = min(max(2 * backoff, _BACKOFF_FIRST_S), _BACKOFF_MAX_S)
                    next_commit = time.monotonic() + backoff
            if stop_deadline is not None and (
                not batch.has_pending() or time.monotonic() >= stop_deadline
            ):
                self._finish(batch)
                return

    def _finish(self, batch: Batch) -> None:
        """Last words of the writer thread: say what could not be written."""
        if batch.has_pending():
            logger.error(
                "store %s stopped with %d samples and %d rows not written: %s",
                self.path,
                batch.book.uncommitted_samples,
                len(batch.ops),
                self.last_error,
            )
            blocks = sum(seg.blocks_uncommitted for seg in batch.book.held())
            self._counters.add(
                samples_dropped=batch.book.uncommitted_samples,
                blocks_dropped=blocks,
                rows_dropped=len(batch.ops),
            )
            self._clean_stop = False
        else:
            self._clean_stop = True
            logger.info("store writer on %s stopped; all data committed", self.path)
