"""Read recorded physiological data (WFDB records, BIDMC CSV) into memory.

A :class:`Recording` is what a replay plays back: named sample streams (see
:mod:`devices.frames` for the stream names) and timed numerics.  Two on-disk
forms are understood:

* WFDB records (``NAME.hea`` + signal files, any sampling rate, any channel
  count, formats 212/16/…, invalid samples read as NaN).  The first ECG channel
  becomes ``"ecg"``, the second ``"ecg2"``; channels named PLETH/RESP become
  ``"pleth"``/``"resp"``.
* The BIDMC CSV form: ``bidmc_NN_Signals.csv[.gz]`` (``Time [s], RESP, PLETH,
  II, V, AVR …`` — the column set differs per record, so columns are chosen by
  header name) and ``bidmc_NN_Numerics.csv[.gz]`` at 1 Hz (``HR, PULSE, RESP,
  SpO2``).

Anything unreadable raises :class:`RecordingError` naming the file.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from devices.frames import ECG_LEAD_I, ECG_LEAD_II, PLETH, RESP

logger = logging.getLogger(__name__)

#: WFDB signal names that are ECG leads, upper-cased.
ECG_NAMES: Final = frozenset(
    {
        "MLII",
        "MLI",
        "MLIII",
        "ML2",
        "I",
        "II",
        "III",
        "V",
        "V1",
        "V2",
        "V3",
        "V4",
        "V5",
        "V6",
        "AVR",
        "AVL",
        "AVF",
        "ECG",
        "ECG1",
        "ECG2",
        "ECG I",
        "ECG II",
        "D3",
        "CM5",
        "CC5",
        "MV2",
    }
)
#: Preferred monitoring leads, best first, when a record has several ECG leads.
PREFERRED_LEADS: Final = ("II", "MLII", "ECG", "ECG1", "I", "V5", "V", "V1")

#: BIDMC numerics columns → (numeric name, units).
BIDMC_NUMERICS: Final = {
    "HR": ("hr", "bpm"),
    "PULSE": ("pulse", "bpm"),
    "RESP": ("rr", "rpm"),
    "SpO2": ("spo2", "%"),
}


class RecordingError(RuntimeError):
    """A recording could not be read; the message names the file and the reason."""

    def __init__(self, path: str | Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class Stream:
    """One sampled signal of a recording.

    Parameters
    ----------
    name
        Stream name (``"ecg"``, ``"ecg2"``, ``"pleth"``, ``"resp"`` …).
    fs_hz
        Sampling rate in Hz.
    samples
        float32 samples; NaN where the recording has no valid value.
    units
        Physical unit (``"mV"``; ``"NU"`` for BIDMC's normalised units).
    label
        The channel's name in the file (``"MLII"``, ``"II"`` …).
    """

    name: str
    fs_hz: float
    samples: np.ndarray
    units: str
    label: str

    @property
    def duration_s(self) -> float:
        """Length of the stream in seconds."""
        return len(self.samples) / self.fs_hz


@dataclass(frozen=True)
class NumericSeries:
    """Timed readings of one numeric (e.g. heart rate at 1 Hz)."""

    name: str
    units: str
    t_s: np.ndarray
    values: np.ndarray


@dataclass(frozen=True)
class Recording:
    """A recording ready to replay.

    Parameters
    ----------
    path
        Where it was read from (record path without extension for WFDB).
    streams
        Streams by name; ``"ecg"`` is always present.
    numerics
        Numeric series by name (may be empty).
    comments
        Free-text header comments (age, sex, medication for MIT-BIH).
    """

    path: str
    streams: dict[str, Stream]
    numerics: dict[str, NumericSeries] = field(default_factory=dict)
    comments: tuple[str, ...] = ()

    @property
    def duration_s(self) -> float:
        """Length of the longest stream in seconds."""
        return max(s.duration_s for s in self.streams.values())

    @property
    def name(self) -> str:
        """Short name of the record (file stem)."""
        return Path(self.path).name


def load_recording(path: str | Path) -> Recording:
    """Read a WFDB record or a BIDMC CSV recording.

    Parameters
    ----------
    path
        A WFDB record path with or without ``.hea``, or a BIDMC path
        (``…/bidmc_01``, ``…/bidmc_01_Signals.csv`` or ``….csv.gz``).

    Raises
    ------
    RecordingError
        If the files are missing, unreadable or hold no ECG.
    """
    p = Path(path)
    text = str(p)
    for suffix in (".hea", ".dat"):
        if text.endswith(suffix):
            p = Path(text[: -len(suffix)])
    if p.with_suffix(".hea").exists() or Path(str(p) + ".hea").exists():
        return _load_wfdb(p)
    signals = _bidmc_signals_path(p)
    if signals is not None:
        return _load_bidmc(signals)
    raise RecordingError(
        path, "no such recording (expected NAME.hea or a BIDMC *_Signals.csv[.gz])"
    )


def _load_wfdb(record: Path) -> Recording:
    import wfdb  # deferred: wfdb pulls pandas, not needed on every start-up path

    try:
        rec = wfdb.rdrecord(str(record))
    except Exception as exc:  # wfdb raises many types for bad headers and data
        raise RecordingError(str(record) + ".hea", f"cannot read WFDB record: {exc}") from exc
    if rec.p_signal is None or rec.p_signal.size == 0:
        raise RecordingError(str(record) + ".hea", "record has no samples")
    names = [str(n) for n in rec.sig_name]
    units = [str(u) if u else "mV" for u in (rec.units or ["mV"] * len(names))]
    ecg_channels = [i for i, n in enumerate(names) if n.upper() in ECG_NAMES or "ECG" in n.upper()]
    if not ecg_channels:
        raise RecordingError(str(record) + ".hea", f"no ECG channel among {names}")
    ecg_channels.sort(key=lambda i: _lead_rank(names[i]))
    data = rec.p_signal.astype(np.float32, copy=False)
    fs = float(rec.fs)
    streams: dict[str, Stream] = {}
    for stream_name, ch in zip((ECG_LEAD_I, ECG_LEAD_II), ecg_channels, strict=False):
        streams[stream_name] = Stream(
            stream_name, fs, np.ascontiguousarray(data[:, ch]), units[ch], names[ch]
        )
    for ch, n in enumerate(names):
        key = {"PLETH": PLETH, "RESP": RESP}.get(n.upper())
        if key:
            streams[key] = Stream(key, fs, np.ascontiguousarray(data[:, ch]), units[ch], n)
    return Recording(str(record), streams, {}, tuple(rec.comments or ()))


def _lead_rank(name: str) -> int:
    upper = name.upper()
    return PREFERRED_LEADS.index(upper) if upper in PREFERRED_LEADS else len(PREFERRED_LEADS)


def _bidmc_signals_path(p: Path) -> Path | None:
    text = str(p)
    if "_Signals.csv" in text and Path(text).exists():
        return Path(text)
    for candidate in (text + "_Signals.csv", text + "_Signals.csv.gz"):
        if Path(candidate).exists():
            return Path(candidate)
    return None


def _read_csv(path: Path) -> tuple[list[str], np.ndarray]:
    try:
        raw = path.read_bytes()
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        reader = csv.reader(io.StringIO(raw.decode("utf-8")))
        header = [h.strip() for h in next(reader)]
        rows = [
            [float(v) if v.strip() not in ("", "NaN", "nan") else np.nan for v in row]
            for row in reader
            if row
        ]
    except (
        OSError,
        EOFError,
        UnicodeDecodeError,
        StopIteration,
        ValueError,
        gzip.BadGzipFile,
    ) as exc:
        raise RecordingError(path, f"cannot read CSV: {exc}") from exc
    if not rows:
        raise RecordingError(path, "CSV has a header but no rows")
    widths = {len(r) for r in rows}
    if widths != {len(header)}:
        raise RecordingError(path, f"rows have {sorted(widths)} columns, header has {len(header)}")
    return header, np.asarray(rows, dtype=np.float64)


def _load_bidmc(signals_path: Path) -> Recording:
    header, table = _read_csv(signals_path)
    if not header or not header[0].lower().startswith("time"):
        raise RecordingError(signals_path, f"first column must be time, got {header[:1]}")
    t = table[:, 0]
    # BIDMC writes the time column rounded to 0.01 s after 100 s, so consecutive
    # rows may repeat a time: require non-decreasing and take fs from the span.
    if len(t) < 2 or not np.all(np.diff(t) >= 0) or t[-1] <= t[0]:
        raise RecordingError(signals_path, "time column is not increasing")
    fs = float(round((len(t) - 1) / float(t[-1] - t[0])))
    cols = {h: i for i, h in enumerate(header)}
    streams: dict[str, Stream] = {}
    ecg_cols = sorted((h for h in cols if h.upper() in ECG_NAMES), key=_lead_rank)
    if not ecg_cols:
        raise RecordingError(signals_path, f"no ECG column among {header}")
    for stream_name, col in zip((ECG_LEAD_I, ECG_LEAD_II), ecg_cols, strict=False):
        streams[stream_name] = Stream(
            stream_name, fs, table[:, cols[col]].astype(np.float32), "NU", col
        )
    for col, key in (("PLETH", PLETH), ("RESP", RESP)):
        if col in cols:
            streams[key] = Stream(key, fs, table[:, cols[col]].astype(np.float32), "NU", col)
    numerics: dict[str, NumericSeries] = {}
    num_path = _sibling(signals_path, "_Numerics")
    if num_path is not None:
        n_header, n_table = _read_csv(num_path)
        for col, i in ((h, i) for i, h in enumerate(n_header) if h in BIDMC_NUMERICS):
            name, unit = BIDMC_NUMERICS[col]
            numerics[name] = NumericSeries(name, unit, n_table[:, 0].copy(), n_table[:, i].copy())
    record = str(signals_path).split("_Signals.csv")[0]
    return Recording(record, streams, numerics, ())


def _sibling(signals_path: Path, kind: str) -> Path | None:
    base = str(signals_path).split("_Signals.csv")[0]
    for candidate in (base + kind + ".csv", base + kind + ".csv.gz"):
        if Path(candidate).exists():
            return Path(candidate)
    return None
