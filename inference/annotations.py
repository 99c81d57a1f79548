"""WFDB records and annotation files: read ECG leads and beat labels, write beats.

Vigil reads PhysioNet-style records (``.hea`` + ``.dat``) and their reference
annotations (``.atr``), and writes its own detected beats as a WFDB annotation
file (``<record>.vig`` by default) so PhysioNet tools and
:mod:`inference.ec57` can score them.  All I/O goes through the ``wfdb``
package; nothing here imports Qt.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import wfdb

logger = logging.getLogger(__name__)

#: Annotation codes that mark a heartbeat (WFDB ``isqrs``): the MIT-BIH beat
#: labels plus ``n`` (supraventricular escape), ``r`` (R-on-T PVC), ``B``
#: (unspecified bundle-branch-block beat) and ``?`` (learning-period beat).
BEAT_SYMBOLS: Final[frozenset[str]] = frozenset("NLRBaJASjeVrFEn/fQ?")

#: Start and end of ventricular flutter/fibrillation in reference files.
VF_ONSET_SYMBOL: Final = "["
VF_OFFSET_SYMBOL: Final = "]"

#: Extension of the annotation files Vigil writes.
VIGIL_ANNOTATION_EXTENSION: Final = "vig"

#: MIT-BIH Arrhythmia DS1 of de Chazal et al. (2004): the training records here.
DS1_RECORDS: Final = (
    "101", "106", "108", "109", "112", "114", "115", "116", "118", "119", "122", "124",
    "201", "203", "205", "207", "208", "209", "215", "220", "223", "230",
)  # fmt: skip
#: CU Ventricular Tachyarrhythmia records present in ../shared/data/cudb.
CUDB_RECORDS: Final = tuple(
    f"cu{i:02d}" for i in (1, 2, 4, 5, 7, 8, 10, 11, 13, 14, 16, 17, 19, 20, 22, 23, 25, 26, 28, 29, 31, 32, 34, 35)
)  # fmt: skip

# A WFDB annotation file holding no annotation is just the end-of-file marker
# (a zero 16-bit word); wfdb.wrann refuses an empty list, so it is written here.
_EMPTY_ANNOTATION_FILE: Final = b"\x00\x00"


@dataclass(frozen=True, slots=True)
class Annotations:
    """Annotations of one record, in file order.

    Parameters
    ----------
    samples
        Sample index of each annotation (int64, read-only).
    symbols
        WFDB annotation code of each annotation (``"N"``, ``"V"``, ``"+"`` …).
    fs_hz
        Sampling rate the sample indices refer to, or ``None`` when the file
        does not say and no header was found.
    """

    samples: np.ndarray
    symbols: tuple[str, ...]
    fs_hz: float | None

    def __post_init__(self) -> None:
        arr = np.asarray(self.samples, dtype=np.int64)
        if arr.ndim != 1 or len(arr) != len(self.symbols):
            raise ValueError("samples and symbols must be 1-D and of equal length")
        if arr.flags.writeable:
            arr = arr.copy()
            arr.flags.writeable = False
        object.__setattr__(self, "samples", arr)

    def beats(self) -> Annotations:
        """The beat annotations only (codes in :data:`BEAT_SYMBOLS`)."""
        keep = [i for i, s in enumerate(self.symbols) if s in BEAT_SYMBOLS]
        return Annotations(
            samples=self.samples[keep],
            symbols=tuple(self.symbols[i] for i in keep),
            fs_hz=self.fs_hz,
        )


@dataclass(frozen=True, slots=True)
class EcgRecord:
    """ECG leads of one record as float64 millivolts.

    Parameters
    ----------
    name
        Record name (file stem), e.g. ``"101"``.
    signals_mv
        Array of shape (n_samples, n_leads); NaN marks invalid samples
        (recording gaps), which are kept, not filled.
    fs_hz
        Sampling rate in Hz.
    lead_names
        Lead label per column, e.g. ``("MLII", "V1")``.
    """

    name: str
    signals_mv: np.ndarray
    fs_hz: float
    lead_names: tuple[str, ...]

    @property
    def n_samples(self) -> int:
        """Number of samples per lead."""
        return int(self.signals_mv.shape[0])

    def lead(self, index: int = 0) -> np.ndarray:
        """One lead as a contiguous 1-D float64 array in mV."""
        return np.ascontiguousarray(self.signals_mv[:, index])


@dataclass(frozen=True, slots=True)
class RecordHeader:
    """What the ``.hea`` header says about a record's timing."""

    name: str
    fs_hz: float
    n_samples: int | None
    lead_names: tuple[str, ...]


def _record_path(record: str | Path) -> str:
    """WFDB record path without extension (``.hea``/``.dat`` stripped if given)."""
    path = Path(record)
    if path.suffix in {".hea", ".dat", ".atr"}:
        path = path.with_suffix("")
    return str(path)


def read_header(record: str | Path) -> RecordHeader:
    """Read a record's header.

    Parameters
    ----------
    record
        Record path without extension, e.g. ``"/data/mitdb/101"``.

    Returns
    -------
    RecordHeader
        Sampling rate, length in samples (``None`` if the header omits it)
        and lead names.
    """
    header = wfdb.rdheader(_record_path(record))
    return RecordHeader(
        name=Path(_record_path(record)).name,
        fs_hz=float(header.fs),
        n_samples=int(header.sig_len) if header.sig_len else None,
        lead_names=tuple(header.sig_name or ()),
    )


def load_ecg(
    record: str | Path,
    leads: Sequence[int] | None = None,
    sampfrom: int = 0,
    sampto: int | None = None,
) -> EcgRecord:
    """Load a record's ECG leads in mV, keeping NaN gaps.

    Parameters
    ----------
    record
        Record path without extension.
    leads
        Column indices to load; all leads when ``None``.
    sampfrom, sampto
        Sample range to read (``sampto`` exclusive; ``None``: to the end).

    Returns
    -------
    EcgRecord
        The signals as float64 mV of shape (n_samples, n_leads).
    """
    path = _record_path(record)
    rec = wfdb.rdrecord(
        path,
        sampfrom=sampfrom,
        sampto=sampto,
        channels=list(leads) if leads is not None else None,
    )
    signals = np.asarray(rec.p_signal, dtype=np.float64)
    n_gap = int(np.count_nonzero(np.isnan(signals)))
    if n_gap:
        logger.info("record %s: %d invalid samples kept as NaN", path, n_gap)
    return EcgRecord(
        name=Path(path).name,
        signals_mv=signals,
        fs_hz=float(rec.fs),
        lead_names=tuple(rec.sig_name),
    )


def read_annotations(record: str | Path, extension: str = "atr") -> Annotations:
    """Read every annotation of a record (beats and non-beats).

    Parameters
    ----------
    record
        Record path without extension.
    extension
        Annotator name, e.g. ``"atr"`` (reference) or ``"vig"`` (Vigil).

    Returns
    -------
    Annotations
        All annotations in file order.  ``fs_hz`` comes from the annotation
        file when it stores one, else from the record header when present.
    """
    path = _record_path(record)
    ann = wfdb.rdann(path, extension)
    fs_hz: float | None = float(ann.fs) if ann.fs else None
    if fs_hz is None and Path(path + ".hea").exists():
        fs_hz = read_header(path).fs_hz
    return Annotations(
        samples=np.asarray(ann.sample, dtype=np.int64),
        symbols=tuple(str(s) for s in ann.symbol),
        fs_hz=fs_hz,
    )


def read_beat_annotations(record: str | Path, extension: str = "atr") -> Annotations:
    """Read the beat annotations of a record (non-beat codes dropped).

    Parameters
    ----------
    record
        Record path without extension.
    extension
        Annotator name.

    Returns
    -------
    Annotations
        Beat annotations only (codes in :data:`BEAT_SYMBOLS`).
    """
    return read_annotations(record, extension).beats()


def write_beat_annotations(
    out_dir: str | Path,
    record_name: str,
    samples: np.ndarray | Sequence[int],
    symbols: Sequence[str],
    fs_hz: float,
    extension: str = VIGIL_ANNOTATION_EXTENSION,
) -> Path:
    """Write detected beats as a WFDB annotation file.

    Parameters
    ----------
    out_dir
        Folder to write into (created if missing).
    record_name
        Record name; the file is ``out_dir/<record_name>.<extension>``.
    samples
        R-peak sample index of each beat (non-negative; sorted here if not).
    symbols
        Beat code of each beat (``"N"``, ``"S"``, ``"V"``, ``"F"``, ``"Q"``
        or any WFDB beat code).
    fs_hz
        Sampling rate of ``samples``; stored in the file.
    extension
        Annotator name (default ``"vig"``).

    Returns
    -------
    Path
        The written file, readable with ``wfdb.rdann(path_without_ext, extension)``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    idx = np.asarray(samples, dtype=np.int64).ravel()
    labels = list(symbols)
    if len(labels) != len(idx):
        raise ValueError(f"{len(idx)} samples but {len(labels)} symbols")
    if np.any(idx < 0):
        raise ValueError("annotation samples must be non-negative")
    unknown = sorted(set(labels) - BEAT_SYMBOLS)
    if unknown:
        raise ValueError(f"not beat codes: {unknown}")
    target = out / f"{record_name}.{extension}"
    if len(idx) == 0:
        target.write_bytes(_EMPTY_ANNOTATION_FILE)
        return target
    order = np.argsort(idx, kind="stable")
    wfdb.wrann(
        record_name,
        extension,
        idx[order],
        symbol=[labels[i] for i in order],
        fs=fs_hz,
        write_dir=str(out),
    )
    return target
