"""Vigil's local store: one SQLite file per workstation (no Qt here).

Open it from the composition root::

    from app.store import StoreWriter, StoreReader, store_path

    path = store_path(args.data_dir)       # platformdirs user data dir unless given
    writer = StoreWriter(path)
    writer.start()                         # StoreError (naming the file) if unusable
    sid = writer.start_session("bed-1", bed_label="Bed 1", source="mitdb/100")
    writer.submit_block(sid, block)        # any thread; a queue put
    ...
    writer.end_session(sid)
    writer.stop()                          # flush, close, join

    with StoreReader(path) as reader:      # any one thread, its own connection
        first, samples = reader.read_samples(sid, "ecg")
"""

from app.store.errors import StoreCorruptError, StoreError, StoreVersionError
from app.store.reader import StoreReader
from app.store.records import (
    BeatRecord,
    EventRecord,
    ExplanationRecord,
    ReviewRecord,
    SessionInfo,
    StreamInfo,
)
from app.store.schema import CURRENT_VERSION, default_data_dir, move_aside, store_path
from app.store.writer import StoreWriter

__all__ = [
    "CURRENT_VERSION",
    "BeatRecord",
    "EventRecord",
    "ExplanationRecord",
    "ReviewRecord",
    "SessionInfo",
    "StoreCorruptError",
    "StoreError",
    "StoreReader",
    "StoreVersionError",
    "StoreWriter",
    "StreamInfo",
    "default_data_dir",
    "move_aside",
    "store_path",
]
