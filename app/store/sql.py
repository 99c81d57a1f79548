"""The writer's SQL, one statement per kind of row (schema version 1)."""

from __future__ import annotations

from typing import Final

UPSERT_BED: Final = (
    "INSERT INTO beds (id, label) VALUES (?, ?) "
    "ON CONFLICT (id) DO UPDATE SET label = coalesce(?, label)"
)
UPSERT_PATIENT: Final = (
    "INSERT INTO patients (id, name, mrn) VALUES (?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET name = coalesce(excluded.name, name), "
    "mrn = coalesce(excluded.mrn, mrn)"
)
INSERT_SESSION: Final = (
    "INSERT INTO sessions (id, bed_id, patient_id, started_at, source, app_version) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
END_SESSION: Final = "UPDATE sessions SET ended_at = ? WHERE id = ?"
INSERT_CHUNK: Final = (
    "INSERT INTO sample_chunks (session_id, stream, fs_hz, first_index, n, t0_s, units, "
    "gap_before, codec, blob) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
UPDATE_CHUNK: Final = "UPDATE sample_chunks SET n = ?, codec = ?, blob = ? WHERE id = ?"
INSERT_NUMERIC: Final = (
    "INSERT INTO numerics (session_id, name, value, units, t_s, source) VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_STATE: Final = (
    "INSERT INTO device_states (session_id, device, state, detail, t_s, counters) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_BEAT: Final = (
    "INSERT INTO beats (session_id, stream, sample_index, symbol, probabilities, model_version) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_EVENT: Final = (
    "INSERT INTO events (id, session_id, kind, priority, onset_s, offset_s, value, "
    "limit_value, details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_EXPLANATION: Final = (
    "INSERT INTO explanations (event_id, explanation, model_version, created_at) "
    "VALUES (?, ?, ?, ?)"
)
INSERT_REVIEW: Final = (
    "INSERT INTO reviews (event_id, user, verdict, note, reviewed_at) VALUES (?, ?, ?, ?, ?)"
)
