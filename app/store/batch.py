"""The writer thread's batch: what it holds, how it commits, what it counts.

Everything here except :class:`WriterCounters` runs on the writer thread only.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from app.store import codec
from app.store.chunks import BYTES_PER_SAMPLE, Segment, SegmentBook
from app.store.errors import BAD_DATA, DROPPED, advice, classify
from app.store.sql import END_SESSION, INSERT_CHUNK, UPDATE_CHUNK
from devices.frames import SampleBlock

if TYPE_CHECKING:
    import sqlite_utils

logger = logging.getLogger(__name__)

ROW_BYTES: Final = 256  # rough memory of one held row, for the pending bound
RELOG_S: Final = 30.0  # a persisting error is logged again this often

COUNTER_NAMES: Final = (
    "samples_submitted",
    "samples_stored",
    "samples_dropped",
    "blocks_submitted",
    "blocks_stored",
    "blocks_dropped",
    "rows_submitted",
    "rows_stored",
    "rows_dropped",
    "commits",
    "errors",
)


@dataclass(slots=True)
class Op:
    """One row-level write: SQL with parameters, or a call on the database."""

    what: str
    sql: str = ""
    params: tuple[Any, ...] = ()
    call: Callable[[sqlite_utils.Database], object] | None = None


class WriterCounters:
    """Counters shared by submitting threads and the writer thread (locked)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.values = dict.fromkeys(COUNTER_NAMES, 0)
        self.last_error: str | None = None
        self.error_kind: str | None = None

    def add(self, **deltas: int) -> None:
        """Add to named counters (any thread)."""
        with self.lock:
            for name, delta in deltas.items():
                self.values[name] += delta

    def snapshot(self) -> dict[str, Any]:
        """A JSON-able copy with the derived pending counts (any thread)."""
        with self.lock:
            out: dict[str, Any] = dict(self.values)
            out["last_error"] = self.last_error
            out["error_kind"] = self.error_kind
        out["blocks_pending"] = (
            out["blocks_submitted"] - out["blocks_stored"] - out["blocks_dropped"]
        )
        out["rows_pending"] = out["rows_submitted"] - out["rows_stored"] - out["rows_dropped"]
        out["ok"] = out["error_kind"] is None
        return out


class Batch:
    """Samples and rows taken from the queue and not yet committed.

    Parameters
    ----------
    db
        The writer's database (its connection is in autocommit mode).
    path
        The file, for messages.
    book
        Where sample blocks become chunks.
    counters
        Shared counters.
    max_pending_bytes
        Memory bound for uncommitted data; past it incoming data is dropped.
    """

    def __init__(
        self,
        db: sqlite_utils.Database,
        path: Path,
        book: SegmentBook,
        counters: WriterCounters,
        max_pending_bytes: int,
    ) -> None:
        self.db = db
        self.path = path
        self.book = book
        self.counters = counters
        self.max_pending_bytes = max_pending_bytes
        self.ops: list[Op] = []
        self._dropping = False
        self._failures = 0
        self._logged: tuple[str | None, float] = (None, 0.0)

    # -- taking items -------------------------------------------------------------

    def pending_bytes(self) -> int:
        """Memory held by data not yet committed (estimate)."""
        return self.book.uncommitted_samples * BYTES_PER_SAMPLE + len(self.ops) * ROW_BYTES

    def has_pending(self) -> bool:
        """Whether a commit has anything to do."""
        return bool(self.ops) or self.book.uncommitted_samples > 0

    def take_block(self, session_id: int, block: SampleBlock) -> None:
        """Add a :class:`~devices.frames.SampleBlock` to its stream's chunk."""
        n = len(block.samples)
        if self._over_bound(n * BYTES_PER_SAMPLE):
            self.counters.add(samples_dropped=n, blocks_dropped=1)
            return
        if n == 0:
            self.counters.add(blocks_stored=1)
            return
        self.book.add(session_id, block)

    def take_rows(self, ops: list[Op]) -> None:
        """Add rows to the next transaction."""
        if self._over_bound(len(ops) * ROW_BYTES):
            self.counters.add(rows_dropped=len(ops))
            return
        self.ops.extend(ops)

    def end_session(self, session_id: int, ended_at: str) -> None:
        """Close the session's chunks and record its end."""
        self.book.close_session(session_id)
        self.take_rows([Op("session end", END_SESSION, (ended_at, session_id))])

    def _over_bound(self, extra: int) -> bool:
        over = self.pending_bytes() + extra > self.max_pending_bytes
        if over and not self._dropping:
            message = (
                f"{self.max_pending_bytes / 2**20:.1f} MiB held could not be written "
                f"({self.counters.last_error}); new data is dropped until writing works again"
            )
            self._report(DROPPED, message, None)
            self._dropping = True  # until the next successful commit
        return over

    # -- committing ---------------------------------------------------------------

    def commit(self) -> bool:
        """Write everything held in one transaction; False if it must be retried.

        A batch that fails because of one bad item is written again item by
        item, dropping (and reporting) only the items that fail.
        """
        segments = self.book.dirty()
        if not self.ops and not segments:
            return True
        # Encode before BEGIN: compression is the slow part, and the write lock
        # should be held only for the inserts.
        encoded = [self._encode(seg) for seg in segments]
        try:
            rowids = self._write(encoded, isolate=False)
        except Exception as exc:
            kind = classify(exc)
            if kind == BAD_DATA:
                try:
                    rowids = self._write(encoded, isolate=True)
                except Exception as exc2:
                    return self._failed(classify(exc2), exc2)
            else:
                return self._failed(kind, exc)
        self._committed(encoded, rowids)
        return True

    def _encode(self, seg: Segment) -> tuple[Segment, int, str, bytes]:
        name, blob = codec.encode(seg.samples(), seg.gain_hint)
        seg.gain_hint = codec.gain_of(name, blob) or seg.gain_hint
        return seg, seg.n, name, blob

    def _write(
        self, encoded: list[tuple[Segment, int, str, bytes]], *, isolate: bool
    ) -> list[int | None]:
        """One transaction; returns the row id of each segment (None: dropped)."""
        conn = self.db.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            if isolate:
                kept = [op for op in self.ops if self._isolated(op.what, self._run_ops, [op])[0]]
            else:
                self._run_ops(self.ops)
                kept = self.ops
            rowids: list[int | None] = []
            for seg, n, name, blob in encoded:
                if isolate:
                    ok, rowid = self._isolated(
                        "sample chunk", self._write_segment, seg, n, name, blob
                    )
                    rowids.append(rowid if ok else None)
                else:
                    rowids.append(self._write_segment(seg, n, name, blob))
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if isolate:
            self.counters.add(rows_dropped=len(self.ops) - len(kept))
            self.ops = kept
        return rowids

    def _run_ops(self, ops: list[Op]) -> None:
        conn = self.db.conn
        i = 0
        while i < len(ops):
            op = ops[i]
            if op.call is not None:
                op.call(self.db)
                i += 1
                continue
            # consecutive rows of one statement go in one executemany
            j = i + 1
            while j < len(ops) and ops[j].call is None and ops[j].sql == op.sql:
                j += 1
            conn.executemany(op.sql, [o.params for o in ops[i:j]])
            i = j

    def _write_segment(self, seg: Segment, n: int, name: str, blob: bytes) -> int:
        conn = self.db.conn
        if seg.rowid is not None:
            conn.execute(UPDATE_CHUNK, (n, name, blob, seg.rowid))
            return seg.rowid
        params = (
            seg.session_id,
            seg.stream,
            seg.fs_hz,
            seg.first_index,
            n,
            seg.t0_s,
            seg.units,
            int(seg.gap_before),
            name,
            blob,
        )
        rowid = conn.execute(INSERT_CHUNK, params).lastrowid
        assert rowid is not None
        return rowid

    def _isolated(self, what: str, fn: Callable[..., Any], *args: Any) -> tuple[bool, Any]:
        """Run ``fn(*args)`` in a savepoint; a bad-data failure drops only that item."""
        conn = self.db.conn
        conn.execute("SAVEPOINT vigil_item")
        try:
            result = fn(*args)
        except Exception as exc:
            if classify(exc) != BAD_DATA or not conn.in_transaction:
                raise
            conn.execute("ROLLBACK TO vigil_item")
            conn.execute("RELEASE vigil_item")
            self._report(BAD_DATA, f"a {what} could not be stored and was dropped: {exc}", exc)
            return False, None
        conn.execute("RELEASE vigil_item")
        return True, result

    def _committed(
        self, encoded: list[tuple[Segment, int, str, bytes]], rowids: list[int | None]
    ) -> None:
        samples = blocks = lost_samples = lost_blocks = 0
        for (seg, n, _name, _blob), rowid in zip(encoded, rowids, strict=True):
            if rowid is None:
                lost = self.book.discard(seg)
                lost_samples += lost[0]
                lost_blocks += lost[1]
                continue
            new, done = self.book.committed(seg, n, rowid)
            samples += new
            blocks += done
        self.book.forget_committed()
        self.counters.add(
            commits=1,
            samples_stored=samples,
            blocks_stored=blocks,
            rows_stored=len(self.ops),
            samples_dropped=lost_samples,
            blocks_dropped=lost_blocks,
        )
        self.ops = []
        if self._failures:
            with self.counters.lock:
                dropped = self.counters.values["samples_dropped"]
            logger.info(
                "store %s writable again after %d failed commits (%d samples dropped so far)",
                self.path,
                self._failures,
                dropped,
            )
        self._failures = 0
        self._dropping = False
        with self.counters.lock:
            self.counters.error_kind = None

    def _failed(self, kind: str, exc: BaseException) -> bool:
        self._failures += 1
        message = (
            f"could not write {self.book.uncommitted_samples} samples and {len(self.ops)} rows "
            f"({exc}); holding them in memory and retrying — {advice(kind)}"
        )
        self._report(kind, message, exc)
        return False

    def _report(self, kind: str, message: str, exc: BaseException | None) -> None:
        """Count, remember and log an error (a persisting one at most every RELOG_S)."""
        full = f"store {kind}: {message} [{self.path}]"
        with self.counters.lock:
            self.counters.values["errors"] += 1
            self.counters.last_error = full
            if kind != BAD_DATA:
                self.counters.error_kind = kind
        now = time.monotonic()
        last_kind, last_at = self._logged
        # Each dropped item is its own loss: always logged.  A persisting
        # transient error is repeated only every RELOG_S.
        if kind == BAD_DATA or kind != last_kind or now - last_at >= RELOG_S:
            logger.error(full, extra={"store_path": str(self.path), "error_kind": kind})
            self._logged = (kind, now)
        elif exc is not None:
            logger.debug("store %s still failing: %s", self.path, exc)

    def maintenance(self, fn: Callable[[sqlite3.Connection], object]) -> None:
        """Run ``fn(conn)`` outside any transaction; errors are reported, not raised."""
        try:
            fn(self.db.conn)
        except Exception as exc:
            self._report(classify(exc), f"maintenance call failed: {exc}", exc)
