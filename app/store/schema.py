"""Where the store lives, how its connections are opened, and its schema.

The schema is built by forward migrations, each a function of a
:class:`sqlite_utils.Database` that runs inside one transaction with the row it
adds to ``schema_version``.  A file is never migrated backwards: one written by
a newer Vigil is refused with :class:`~app.store.errors.StoreVersionError`.

Times: ``*_s`` columns are seconds on the source's clock (the clock of
``SampleBlock.t0_s``); ``*_at`` columns are wall-clock ISO 8601 UTC text.
NaN numerics are stored as NULL (SQLite has no NaN) and read back as NaN.
"""

from __future__ import annotations

import datetime as dt
import logging
import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import platformdirs

from app.store.errors import StoreCorruptError, StoreError, StoreVersionError, classify

if TYPE_CHECKING:
    import sqlite_utils

logger = logging.getLogger(__name__)

APP_NAME: Final = "vigil"
STORE_FILE_NAME: Final = "vigil.sqlite3"
VERSION_TABLE: Final = "schema_version"

Migration = Callable[["sqlite_utils.Database"], None]


def default_data_dir() -> Path:
    """The per-user data directory (``platformdirs.user_data_dir("vigil")``)."""
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def store_path(data_dir: Path | str | None = None) -> Path:
    """The store file in ``data_dir`` (the ``--data-dir`` option) or the default one.

    The directory is created if missing.
    """
    folder = Path(data_dir) if data_dir is not None else default_data_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder / STORE_FILE_NAME


def utc_now() -> str:
    """Wall-clock time as stored in ``*_at`` columns."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def connect(path: Path, *, busy_timeout_s: float, read_only: bool = False) -> sqlite3.Connection:
    """Open a connection for the calling thread only (``check_same_thread``).

    Autocommit mode: transactions are opened explicitly (``BEGIN IMMEDIATE`` in
    the writer, ``Database.atomic()`` in migrations), never implicitly.
    """
    if read_only and not path.exists():
        raise StoreError(path, "missing", "no Vigil store at this path")
    try:
        conn = sqlite3.connect(path, timeout=busy_timeout_s, isolation_level=None)
    except sqlite3.Error as exc:
        raise StoreError(path, classify(exc), f"cannot open the store: {exc}") from exc
    try:
        if read_only:
            conn.execute("PRAGMA query_only = ON")
        else:
            # WAL: readers never block the writer, nor it them.  NORMAL sync
            # survives an application crash; a power cut may lose the last commit.
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        kind = classify(exc)
        if kind == "damaged file":
            raise StoreCorruptError(path, f"not a SQLite database or damaged: {exc}") from exc
        raise StoreError(path, kind, f"cannot open the store: {exc}") from exc
    return conn


def schema_version(db: sqlite_utils.Database) -> int:
    """The highest applied migration, or 0 for a file without the version table."""
    if not db[VERSION_TABLE].exists():
        return 0
    row = db.execute(f"SELECT max(version) FROM {VERSION_TABLE}").fetchone()
    return int(row[0] or 0)


def check_version(db: sqlite_utils.Database, path: Path, known: int | None = None) -> int:
    """Refuse files that are not Vigil stores or come from a newer Vigil.

    Returns the file's schema version (0 for an empty file).
    """
    known = len(MIGRATIONS) if known is None else known
    version = schema_version(db)
    if version == 0 and db.table_names():
        raise StoreCorruptError(path, "a SQLite file, but not a Vigil store (no schema_version)")
    if version > known:
        raise StoreVersionError(
            path, f"written by a newer Vigil (schema {version}, this one knows {known})"
        )
    return version


def migrate(
    db: sqlite_utils.Database,
    path: Path,
    *,
    app_version: str = "",
    migrations: Sequence[Migration] | None = None,
) -> int:
    """Apply the missing forward migrations; returns the schema version now.

    Parameters
    ----------
    db
        A writable database (the writer's connection).
    path
        The file, for error messages.
    app_version
        Recorded beside each applied migration.
    migrations
        The migration list; the default is :data:`MIGRATIONS` (tests pass longer ones).
    """
    steps = list(MIGRATIONS if migrations is None else migrations)
    version = check_version(db, path, len(steps))
    for number, step in enumerate(steps[version:], start=version + 1):
        with db.atomic():
            if not db[VERSION_TABLE].exists():
                db[VERSION_TABLE].create(
                    {"version": int, "applied_at": str, "app_version": str}, pk="version"
                )
            step(db)
            db[VERSION_TABLE].insert(
                {"version": number, "applied_at": utc_now(), "app_version": app_version}
            )
        logger.info("store %s migrated to schema %d", path, number)
    return len(steps)


def _v1_initial(db: sqlite_utils.Database) -> None:
    """Beds, patients, sessions, samples, numerics, states; beats, events and reviews."""
    db["beds"].create({"id": str, "label": str}, pk="id")
    db["patients"].create({"id": str, "name": str, "mrn": str}, pk="id")
    db["sessions"].create(
        {
            "id": int,
            "bed_id": str,
            "patient_id": str,
            "started_at": str,
            "ended_at": str,
            "source": str,
            "app_version": str,
        },
        pk="id",
        not_null={"bed_id", "started_at"},
        foreign_keys=[("bed_id", "beds", "id"), ("patient_id", "patients", "id")],
    )
    db["sample_chunks"].create(
        {
            "id": int,
            "session_id": int,
            "stream": str,
            "fs_hz": float,
            "first_index": int,
            "n": int,
            "t0_s": float,
            "units": str,
            "gap_before": int,
            "codec": str,
            "blob": bytes,
        },
        pk="id",
        not_null={"session_id", "stream", "fs_hz", "first_index", "n", "codec", "blob"},
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db["sample_chunks"].create_index(["session_id", "stream", "first_index"])
    db["numerics"].create(
        {
            "id": int,
            "session_id": int,
            "name": str,
            "value": float,
            "units": str,
            "t_s": float,
            "source": str,
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db["numerics"].create_index(["session_id", "name", "t_s"])
    db["device_states"].create(
        {
            "id": int,
            "session_id": int,
            "device": str,
            "state": str,
            "detail": str,
            "t_s": float,
            "counters": str,
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db["device_states"].create_index(["session_id", "t_s"])
    db["beats"].create(
        {
            "id": int,
            "session_id": int,
            "stream": str,
            "sample_index": int,
            "symbol": str,
            "probabilities": str,
            "model_version": str,
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db["beats"].create_index(["session_id", "stream", "sample_index"])
    db["events"].create(
        {
            "id": int,
            "session_id": int,
            "kind": str,
            "priority": str,
            "onset_s": float,
            "offset_s": float,
            "value": float,
            "limit_value": float,
            "acknowledged_by": str,
            "acknowledged_at": str,
            "details": str,
        },
        pk="id",
        foreign_keys=[("session_id", "sessions", "id")],
    )
    db["events"].create_index(["session_id", "onset_s"])
    db["explanations"].create(
        {"id": int, "event_id": int, "explanation": str, "model_version": str, "created_at": str},
        pk="id",
        foreign_keys=[("event_id", "events", "id")],
    )
    db["explanations"].create_index(["event_id"])
    db["reviews"].create(
        {"id": int, "event_id": int, "user": str, "verdict": str, "note": str, "reviewed_at": str},
        pk="id",
        foreign_keys=[("event_id", "events", "id")],
    )
    db["reviews"].create_index(["event_id"])


#: Forward migrations; schema version N is the state after ``MIGRATIONS[N-1]``.
#: Append only: never edit a migration that has shipped.
MIGRATIONS: Final[tuple[Migration, ...]] = (_v1_initial,)
CURRENT_VERSION: Final = len(MIGRATIONS)


def move_aside(path: Path | str) -> Path:
    """Rename a damaged store (and its WAL files) so that a fresh one can start.

    Returns the new name of the main file, e.g. ``vigil.sqlite3.damaged-20260101T120000Z``.
    Nothing is deleted: the file can still be sent for recovery.
    """
    path = Path(path)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    for suffix in ("-wal", "-shm"):
        side = path.with_name(path.name + suffix)
        if side.exists():
            side.rename(target.with_name(target.name + suffix))
    path.rename(target)
    logger.warning("damaged store %s moved aside to %s", path, target)
    return target
