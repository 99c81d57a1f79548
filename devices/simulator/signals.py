"""Physiological sources that drive the virtual wearables.

An :class:`EcgSource` is a looped ECG at 130 Hz (the Polar H10 rate) in µV with the
beat times that go with it: from a WFDB record (resampled from its own rate) and
its beat annotations, or a synthetic sinus rhythm when no record is given or the
record cannot be read. :class:`OximetrySource` gives SpO2 / pulse once a second from
BIDMC numerics or a synthetic trace.
"""

from __future__ import annotations

import csv
import gzip
import logging
import os
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Final

import numpy as np

logger = logging.getLogger(__name__)

ECG_FS_HZ: Final = 130
#: AAMI beat symbols that mark a heartbeat in WFDB annotations.
BEAT_SYMBOLS: Final = frozenset("NLRBAaJSVrFejnE/fQ?")
_RESOURCES_DEMO: Final = Path(__file__).resolve().parents[2] / "resources" / "demo"


@dataclass(frozen=True, slots=True)
class EcgSource:
    """A looped ECG at :data:`ECG_FS_HZ`.

    Parameters
    ----------
    samples_uv
        int32 samples in µV; playback loops over them.
    beat_times_s
        Sorted beat times in seconds from the start of ``samples_uv``.
    label
        Where it came from (record name or ``"synthetic"``).
    """

    samples_uv: np.ndarray
    beat_times_s: np.ndarray
    label: str

    @property
    def duration_s(self) -> float:
        return len(self.samples_uv) / ECG_FS_HZ

    def window(self, first_index: int, n: int) -> np.ndarray:
        """``n`` samples from absolute index ``first_index``, wrapping around the loop."""
        idx = (np.arange(first_index, first_index + n) % len(self.samples_uv)).astype(np.int64)
        return self.samples_uv[idx]

    def beats_between(self, t0_s: float, t1_s: float) -> np.ndarray:
        """Absolute times of beats in ``(t0_s, t1_s]`` on the unrolled, looped timeline."""
        if t1_s <= t0_s or len(self.beat_times_s) == 0:
            return np.empty(0)
        d = self.duration_s
        k0, k1 = int(np.floor(t0_s / d)), int(np.floor(t1_s / d))
        out = []
        for k in range(k0, k1 + 1):
            times = self.beat_times_s + k * d
            out.append(times[(times > t0_s) & (times <= t1_s)])
        return np.concatenate(out)

    def beat_before(self, t_s: float) -> float | None:
        """Absolute time of the last beat at or before ``t_s`` (looping), if any."""
        if len(self.beat_times_s) == 0:
            return None
        d = self.duration_s
        k = int(np.floor(t_s / d))
        local = t_s - k * d
        i = int(np.searchsorted(self.beat_times_s, local, side="right")) - 1
        if i >= 0:
            return float(self.beat_times_s[i] + k * d)
        return float(self.beat_times_s[-1] + (k - 1) * d)


def resolve_record(record: str) -> Path | None:
    """Find a WFDB record: as given, under resources/demo, or under $VIGIL_DATA_DIR."""
    candidates = [Path(record)]
    candidates.append(_RESOURCES_DEMO / Path(record).name)
    data_dir = os.environ.get("VIGIL_DATA_DIR")
    if data_dir:
        candidates.append(Path(data_dir) / record)
    for c in candidates:
        if c.with_suffix(".hea").exists():
            return c
    return None


def load_ecg(
    record: str | None,
    start_s: float = 0.0,
    duration_s: float = 300.0,
    hr_bpm: float = 72.0,
    seed: int = 0,
) -> EcgSource:
    """ECG source from a WFDB record (first channel) or a synthetic fallback.

    The record is resampled to 130 Hz with a polyphase filter; its beat
    annotations give the beat times. Any failure to read falls back to a
    synthetic rhythm at ``hr_bpm`` and is logged, so a demo never stops for a
    missing file.
    """
    if record:
        path = resolve_record(record)
        if path is None:
            logger.warning("ECG record %r not found; using a synthetic rhythm", record)
        else:
            try:
                return _load_wfdb(path, start_s, duration_s)
            except Exception:
                logger.exception("could not read ECG record %s; using a synthetic rhythm", path)
    return synthetic_ecg(hr_bpm, duration_s, seed)


def _load_wfdb(path: Path, start_s: float, duration_s: float) -> EcgSource:
    import wfdb  # noqa: PLC0415 (only the simulator needs it, and only here)
    from scipy.signal import resample_poly  # noqa: PLC0415

    header = wfdb.rdheader(str(path))
    fs = float(header.fs)
    first = int(start_s * fs)
    last = min(int((start_s + duration_s) * fs), int(header.sig_len))
    if last - first < fs * 10:
        raise ValueError(f"{path}: fewer than 10 s of signal from {start_s} s")
    rec = wfdb.rdrecord(str(path), sampfrom=first, sampto=last, channels=[0], physical=True)
    signal_mv = np.nan_to_num(rec.p_signal[:, 0].astype(np.float64))
    ratio = Fraction(ECG_FS_HZ / fs).limit_denominator(1000)
    resampled = resample_poly(signal_mv, ratio.numerator, ratio.denominator)
    samples_uv = np.round(resampled * 1000.0).astype(np.int32)
    beats = np.empty(0)
    try:
        ann = wfdb.rdann(str(path), "atr", sampfrom=first, sampto=last)
        keep = [s for s, sym in zip(ann.sample, ann.symbol, strict=True) if sym in BEAT_SYMBOLS]
        beats = (np.asarray(keep, dtype=np.float64) - first) / fs
    except Exception:
        logger.warning("%s: no beat annotations; HR/RR will be synthetic", path)
    if len(beats) < 2:
        beats = np.arange(0.5, len(samples_uv) / ECG_FS_HZ, 60.0 / 72.0)
    return _seamless(samples_uv, np.sort(beats), label=path.name)


def _seamless(samples_uv: np.ndarray, beats_s: np.ndarray, label: str) -> EcgSource:
    """Cut the loop from 0.25 s before the first beat to 0.25 s before the last one.

    Playback then wraps from just before one R peak to just before another, so
    neither the waveform nor the RR series shows a seam.
    """
    lead_s = 0.25
    a = max(0, round((beats_s[0] - lead_s) * ECG_FS_HZ))
    b = a + round((beats_s[-1] - beats_s[0]) * ECG_FS_HZ)
    if len(beats_s) < 3 or b > len(samples_uv):
        return EcgSource(samples_uv, beats_s, label)
    kept = beats_s[:-1] - a / ECG_FS_HZ
    return EcgSource(samples_uv[a:b].copy(), kept, label)


def synthetic_ecg(hr_bpm: float = 72.0, duration_s: float = 60.0, seed: int = 0) -> EcgSource:
    """A sinus rhythm built from Gaussian P, QRS and T waves with mild RR variability."""
    rng = np.random.default_rng(seed)
    n = int(duration_s * ECG_FS_HZ)
    t = np.arange(n) / ECG_FS_HZ
    mean_rr = 60.0 / max(hr_bpm, 1.0)
    beats = []
    b = 0.3
    while b < duration_s:
        beats.append(b)
        b += mean_rr * (1.0 + 0.03 * rng.standard_normal())
    beats_arr = np.asarray(beats)
    # (offset s, width s, amplitude µV) of P, Q, R, S, T around the R peak.
    waves = [
        (-0.2, 0.025, 120),
        (-0.03, 0.01, -150),
        (0.0, 0.012, 1100),
        (0.03, 0.01, -250),
        (0.25, 0.04, 300),
    ]
    x = np.zeros(n)
    for beat in beats_arr:
        lo, hi = int((beat - 0.35) * ECG_FS_HZ), int((beat + 0.45) * ECG_FS_HZ)
        seg = slice(max(lo, 0), min(hi, n))
        for off, width, amp in waves:
            x[seg] += amp * np.exp(-0.5 * ((t[seg] - beat - off) / width) ** 2)
    x += 15.0 * rng.standard_normal(n)
    return _seamless(np.round(x).astype(np.int32), beats_arr, label="synthetic")


@dataclass(frozen=True, slots=True)
class OximetrySource:
    """SpO2 (%) and pulse rate (bpm) at 1 Hz, looped."""

    spo2: np.ndarray
    pulse_bpm: np.ndarray
    label: str

    def at(self, t_s: float) -> tuple[float, float]:
        i = int(t_s) % len(self.spo2)
        return float(self.spo2[i]), float(self.pulse_bpm[i])


def load_oximetry(record: str | None, pulse_bpm: float = 72.0, seed: int = 0) -> OximetrySource:
    """BIDMC numerics (``bidmc_NN``, columns ``SpO2`` and ``PULSE``) or a synthetic trace."""
    if record:
        path = _resolve_numerics(record)
        if path is None:
            logger.warning("oximetry record %r not found; using synthetic SpO2", record)
        else:
            try:
                return _load_bidmc(path)
            except Exception:
                logger.exception("could not read %s; using synthetic SpO2", path)
    rng = np.random.default_rng(seed)
    n = 600
    spo2 = np.clip(
        np.round(97 + 0.6 * np.sin(np.arange(n) / 40) + 0.4 * rng.standard_normal(n)), 85, 100
    )
    pulse = np.round(pulse_bpm + 2 * np.sin(np.arange(n) / 25) + rng.standard_normal(n))
    return OximetrySource(spo2, pulse, label="synthetic")


def _resolve_numerics(record: str) -> Path | None:
    name = Path(record).name
    stem = name.removesuffix(".csv.gz").removesuffix("_Numerics")
    candidates = [Path(record), _RESOURCES_DEMO / f"{stem}_Numerics.csv.gz"]
    data_dir = os.environ.get("VIGIL_DATA_DIR")
    if data_dir:
        candidates.append(Path(data_dir) / "bidmc" / f"{stem}_Numerics.csv.gz")
    return next((c for c in candidates if c.is_file()), None)


def _load_bidmc(path: Path) -> OximetrySource:
    with gzip.open(path, "rt", newline="") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader)]
        i_spo2, i_pulse = header.index("SpO2"), header.index("PULSE")
        spo2, pulse = [], []
        for row in reader:
            try:
                spo2.append(float(row[i_spo2]))
                pulse.append(float(row[i_pulse]))
            except (ValueError, IndexError):
                continue
    if not spo2:
        raise ValueError(f"{path}: no SpO2 rows")
    return OximetrySource(np.asarray(spo2), np.asarray(pulse), label=path.name)
