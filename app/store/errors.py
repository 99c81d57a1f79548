"""Errors the store raises, and how a failed SQLite call is sorted into kinds.

The kinds decide what the writer does: transient kinds (locked, disk full, I/O,
damaged file, read-only) keep the data in memory and retry; ``bad data`` means
one submitted item can never be written, so only that item is dropped (and
counted, and logged) while the rest of the batch is committed.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Final

LOCKED: Final = "locked"
DISK_FULL: Final = "disk full"
IO_ERROR: Final = "I/O error"
CORRUPT: Final = "damaged file"
READ_ONLY: Final = "read-only"
BAD_DATA: Final = "bad data"
DROPPED: Final = "dropped"

#: Kinds after which the same batch may succeed later, so the writer holds the
#: data and retries instead of dropping it.
TRANSIENT_KINDS: Final = frozenset({LOCKED, DISK_FULL, IO_ERROR, CORRUPT, READ_ONLY})


class StoreError(Exception):
    """A store problem that names the file and says what went wrong.

    Parameters
    ----------
    path
        The SQLite file concerned.
    kind
        One of the kind constants of this module (``"locked"``, ``"disk full"`` …).
    message
        What happened, in words an operator can act on.
    """

    def __init__(self, path: Path | str, kind: str, message: str) -> None:
        self.path = Path(path)
        self.kind = kind
        super().__init__(f"{kind}: {message} ({self.path})")


class StoreCorruptError(StoreError):
    """The file is not a SQLite database, is damaged, or is not a Vigil store."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(path, CORRUPT, message)


class StoreVersionError(StoreError):
    """The file's schema is newer than this Vigil, or needs a migration first."""

    def __init__(self, path: Path | str, message: str) -> None:
        super().__init__(path, "schema version", message)


class CodecError(ValueError):
    """A sample chunk's bytes do not decode to the samples its row promises."""


def classify(exc: BaseException) -> str:
    """Sort an exception raised while writing into one of the kinds above.

    Parameters
    ----------
    exc
        The exception caught around a write.

    Returns
    -------
    str
        ``LOCKED``, ``DISK_FULL``, ``IO_ERROR``, ``CORRUPT``, ``READ_ONLY`` or
        ``BAD_DATA``.
    """
    text = str(exc).lower()
    if isinstance(exc, sqlite3.OperationalError):
        if "locked" in text or "busy" in text:
            return LOCKED
        if "full" in text:
            return DISK_FULL
        if "readonly" in text or "read-only" in text:
            return READ_ONLY
        if "disk i/o" in text or "unable to open" in text:
            return IO_ERROR
        if "malformed" in text or "not a database" in text:
            return CORRUPT
        # "no such table", "too many SQL variables" … come from what was asked,
        # not from the file: retrying the same item would fail forever.
        return BAD_DATA
    if isinstance(exc, sqlite3.IntegrityError | sqlite3.InterfaceError | sqlite3.ProgrammingError):
        return BAD_DATA
    if isinstance(exc, sqlite3.DatabaseError):
        if "malformed" in text or "not a database" in text or "corrupt" in text:
            return CORRUPT
        if "full" in text:
            return DISK_FULL
        return IO_ERROR
    if isinstance(exc, OSError):
        return IO_ERROR
    return BAD_DATA


def advice(kind: str) -> str:
    """What an operator can do about an error of ``kind``."""
    return {
        LOCKED: "another program holds the database; close it (a DB browser, a second Vigil)",
        DISK_FULL: "free disk space or move the data directory (--data-dir)",
        IO_ERROR: "check the disk and the data directory's permissions",
        CORRUPT: "the file is damaged; move it aside and restart Vigil to start a new one",
        READ_ONLY: "the file or its folder is read-only; fix its permissions",
        BAD_DATA: "a program error produced an item that cannot be stored; report it",
    }.get(kind, "see the log")
