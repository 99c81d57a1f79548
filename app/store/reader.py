"""Reading the store back: sessions, samples (sample-exact), numerics, events.

A :class:`StoreReader` has its own read-only connection and belongs to the
thread that opened it (``check_same_thread``).  Under WAL it sees every commit
of the writer as soon as it is made, and never blocks it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from app.store import codec, schema
from app.store.errors import CodecError, StoreCorruptError, StoreVersionError
from app.store.records import (
    BeatRecord,
    EventRecord,
    ExplanationRecord,
    ReviewRecord,
    SessionInfo,
    StreamInfo,
)
from devices.frames import ConnectionState, DeviceState, Numeric

if TYPE_CHECKING:
    import sqlite_utils


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


class StoreReader:
    """Read-only access to a Vigil store, for one thread.

    Parameters
    ----------
    path
        The store file.
    busy_timeout_s
        Wait on a lock this long (readers rarely wait under WAL).

    Raises
    ------
    StoreError
        No such file, not a SQLite or not a Vigil store, or a schema this
        Vigil does not know (the message names the file).
    """

    def __init__(self, path: Path | str, *, busy_timeout_s: float = 2.0) -> None:
        import sqlite_utils  # lazily: it imports pandas when installed

        self.path = Path(path)
        conn = schema.connect(self.path, busy_timeout_s=busy_timeout_s, read_only=True)
        self.db: sqlite_utils.Database = sqlite_utils.Database(conn, execute_plugins=False)
        try:
            version = schema.check_version(self.db, self.path)
        except BaseException:
            conn.close()
            raise
        if version < schema.CURRENT_VERSION:
            conn.close()
            raise StoreVersionError(
                self.path, f"schema {version} needs migrating: open it with the writer first"
            )

    def close(self) -> None:
        """Close the connection."""
        self.db.close()

    def __enter__(self) -> StoreReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sessions -----------------------------------------------------------------

    _SESSION_SQL = (
        "SELECT s.id, s.bed_id, coalesce(b.label, s.bed_id), s.patient_id, p.name, p.mrn, "
        "s.started_at, s.ended_at, coalesce(s.source, ''), coalesce(s.app_version, '') "
        "FROM sessions s LEFT JOIN beds b ON b.id = s.bed_id "
        "LEFT JOIN patients p ON p.id = s.patient_id"
    )

    def sessions(self, bed_id: str | None = None) -> list[SessionInfo]:
        """Sessions, oldest first; only those of ``bed_id`` if given."""
        sql, args = self._SESSION_SQL, []
        if bed_id is not None:
            sql, args = sql + " WHERE s.bed_id = ?", [bed_id]
        return [SessionInfo(*row) for row in self.db.execute(sql + " ORDER BY s.id", args)]

    def session(self, session_id: int) -> SessionInfo | None:
        """One session, or None."""
        row = self.db.execute(self._SESSION_SQL + " WHERE s.id = ?", [session_id]).fetchone()
        return None if row is None else SessionInfo(*row)

    def streams(self, session_id: int) -> list[StreamInfo]:
        """What is stored of each sample stream of a session."""
        rows = self.db.execute(
            "SELECT stream, fs_hz, units, first_index, n, t0_s, gap_before FROM sample_chunks "
            "WHERE session_id = ? ORDER BY stream, first_index, id",
            [session_id],
        ).fetchall()
        out: list[StreamInfo] = []
        by_stream: dict[str, list[tuple[Any, ...]]] = {}
        for row in rows:
            by_stream.setdefault(row[0], []).append(row)
        for stream, chunks in by_stream.items():
            end = chunks[0][3]
            gaps = 0
            for _s, _fs, _u, first, n, _t0, gap_before in chunks:
                gaps += int(bool(gap_before) or first > end)
                end = max(end, first + n)
            first_row = chunks[0]
            out.append(
                StreamInfo(
                    stream=stream,
                    fs_hz=first_row[1],
                    units=first_row[2] or "",
                    first_index=first_row[3],
                    end_index=end,
                    t0_s=_nan(first_row[5]),
                    samples_stored=sum(c[4] for c in chunks),
                    chunks=len(chunks),
                    gaps=gaps,
                )
            )
        return out

    # -- samples ------------------------------------------------------------------

    def read_samples(
        self,
        session_id: int,
        stream: str,
        start_index: int | None = None,
        stop_index: int | None = None,
    ) -> tuple[int, np.ndarray]:
        """A stream's samples from ``start_index`` up to (not including) ``stop_index``.

        Parameters
        ----------
        session_id, stream
            Which stream.
        start_index, stop_index
            Per-stream sample counters (``SampleBlock.first_index``); by default
            the first and after-last stored sample.

        Returns
        -------
        tuple[int, numpy.ndarray]
            The counter of the first returned sample, and float32 samples with
            the stored bit patterns; NaN where no chunk covers a counter.

        Raises
        ------
        StoreCorruptError
            A chunk does not decode (its row id and the file are named).
        """
        if start_index is None or stop_index is None:
            lo, hi = self.db.execute(
                "SELECT min(first_index), max(first_index + n) FROM sample_chunks "
                "WHERE session_id = ? AND stream = ?",
                [session_id, stream],
            ).fetchone()
            start_index = (lo or 0) if start_index is None else start_index
            stop_index = (hi or start_index) if stop_index is None else stop_index
        out = np.full(max(0, stop_index - start_index), np.nan, dtype=np.float32)
        rows = self.db.execute(
            "SELECT id, first_index, n, codec, blob FROM sample_chunks "
            "WHERE session_id = ? AND stream = ? AND first_index < ? AND first_index + n > ? "
            "ORDER BY first_index, id",
            [session_id, stream, stop_index, start_index],
        )
        for rowid, first, n, name, blob in rows:
            try:
                samples = codec.decode(name, blob, n)
            except CodecError as exc:
                raise StoreCorruptError(self.path, f"sample chunk {rowid}: {exc}") from exc
            lo = max(first, start_index)
            hi = min(first + n, stop_index)
            out[lo - start_index : hi - start_index] = samples[lo - first : hi - first]
        return start_index, out

    # -- rows ---------------------------------------------------------------------

    def numerics(
        self,
        session_id: int,
        name: str | None = None,
        start_s: float | None = None,
        stop_s: float | None = None,
    ) -> list[Numeric]:
        """Numeric readings in time order; NaN where "not available" was stored."""
        where, args = self._where(session_id, ("name", name), start_s, stop_s)
        rows = self.db.execute(
            f"SELECT name, value, units, t_s, source FROM numerics {where} ORDER BY t_s, id", args
        )
        return [Numeric(n, _nan(v), u or "", _nan(t), s or "") for n, v, u, t, s in rows]

    def states(self, session_id: int) -> list[DeviceState]:
        """Device state changes and technical events in time order."""
        rows = self.db.execute(
            "SELECT device, state, detail, t_s, counters FROM device_states "
            "WHERE session_id = ? ORDER BY t_s, id",
            [session_id],
        )
        return [
            DeviceState(d, ConnectionState(s), x or "", _nan(t), json.loads(c or "{}"))
            for d, s, x, t, c in rows
        ]

    def beats(
        self,
        session_id: int,
        stream: str | None = None,
        start_index: int | None = None,
        stop_index: int | None = None,
    ) -> list[BeatRecord]:
        """Beats in sample order, optionally of one stream and counter range."""
        where, args = self._where(
            session_id, ("stream", stream), start_index, stop_index, "sample_index"
        )
        rows = self.db.execute(
            "SELECT session_id, stream, sample_index, symbol, probabilities, model_version, id "
            f"FROM beats {where} ORDER BY sample_index, id",
            args,
        )
        return [
            BeatRecord(s, st, i, sym, json.loads(p or "{}"), mv or "", rid)
            for s, st, i, sym, p, mv, rid in rows
        ]

    _EVENT_SQL = (
        "SELECT id, session_id, kind, priority, onset_s, offset_s, value, limit_value, "
        "acknowledged_by, acknowledged_at, details FROM events"
    )

    def events(self, session_id: int | None = None, kind: str | None = None) -> list[EventRecord]:
        """Events in onset order; all sessions unless ``session_id`` is given."""
        clauses, args = [], []
        for column, value in (("session_id", session_id), ("kind", kind)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.db.execute(self._EVENT_SQL + where + " ORDER BY onset_s, id", args)
        return [self._event(row) for row in rows]

    def event(self, event_id: int) -> EventRecord | None:
        """One event, or None."""
        row = self.db.execute(self._EVENT_SQL + " WHERE id = ?", [event_id]).fetchone()
        return None if row is None else self._event(row)

    def explanations(self, event_id: int) -> list[ExplanationRecord]:
        """Explanations of an event, oldest first."""
        rows = self.db.execute(
            "SELECT id, event_id, explanation, model_version, created_at FROM explanations "
            "WHERE event_id = ? ORDER BY id",
            [event_id],
        )
        return [ExplanationRecord(i, e, json.loads(x), mv or "", c) for i, e, x, mv, c in rows]

    def reviews(self, event_id: int) -> list[ReviewRecord]:
        """Reviews of an event, oldest first."""
        rows = self.db.execute(
            "SELECT id, event_id, user, verdict, note, reviewed_at FROM reviews "
            "WHERE event_id = ? ORDER BY id",
            [event_id],
        )
        return [ReviewRecord(i, e, u, v, n or "", at) for i, e, u, v, n, at in rows]

    @staticmethod
    def _event(row: tuple[Any, ...]) -> EventRecord:
        i, sid, kind, prio, onset, offset, value, limit, by, at, details = row
        return EventRecord(
            i,
            sid,
            kind,
            prio,
            _nan(onset),
            offset,
            value,
            limit,
            by,
            at,
            json.loads(details or "{}"),
        )

    @staticmethod
    def _where(
        session_id: int,
        match: tuple[str, Any],
        lo: float | None,
        hi: float | None,
        column: str = "t_s",
    ) -> tuple[str, list[Any]]:
        clauses, args = ["session_id = ?"], [session_id]
        if match[1] is not None:
            clauses.append(f"{match[0]} = ?")
            args.append(match[1])
        if lo is not None:
            clauses.append(f"{column} >= ?")
            args.append(lo)
        if hi is not None:
            clauses.append(f"{column} < ?")
            args.append(hi)
        return "WHERE " + " AND ".join(clauses), args
