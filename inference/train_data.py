"""Training data of the beat classifier: annotated records in memory and their augmentation.

Records are WFDB recordings with reference beat annotations (mitdb, svdb),
held whole in memory with their beats mapped to the AAMI classes. Each epoch
sees each record afresh: R peaks jittered by a few ms (tens of ms for a share of
wide beats, as a detector may place them), the sampling rate jittered, nstdb
noise switched on and off in stretches at a random SNR (resampled to the
record's rate); per batch, leads are dropped, swapped or inverted.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from inference import features as ft
from inference.beats import AAMI_CLASS_OF_SYMBOL, CLASSES
from inference.dsp import rational_ratio

if TYPE_CHECKING:
    from inference.train import TrainConfig

logger = logging.getLogger(__name__)

NOISE_RECORDS: Final = ("bw", "em", "ma")
NOISE_FS_HZ: Final = 360.0  # nstdb's rate
WIDE_CLASSES: Final = (CLASSES.index("V"), CLASSES.index("F"))


@dataclass
class Record:
    """One annotated recording held in memory for training."""

    name: str
    database: str
    fs_hz: float
    leads: np.ndarray  # float32 (n_leads, n_samples) mV
    peaks: np.ndarray  # int64 reference beat positions
    labels: np.ndarray  # int64 class index into CLASSES
    qrs_amplitude: np.ndarray = field(default_factory=lambda: np.ones(ft.MAX_LEADS))


# --------------------------------------------------------------------------- data


def load_record(path: Path) -> Record:
    """Read a WFDB record and its ``.atr`` beats; MLII goes first where present."""
    import wfdb

    rec = wfdb.rdrecord(str(path))
    ann = wfdb.rdann(str(path), "atr")
    order = list(range(rec.p_signal.shape[1]))
    if "MLII" in rec.sig_name:
        first = rec.sig_name.index("MLII")
        order = [first] + [i for i in order if i != first]
    leads = rec.p_signal[:, order[: ft.MAX_LEADS]].T.astype(np.float32)
    keep = [i for i, s in enumerate(ann.symbol) if s in AAMI_CLASS_OF_SYMBOL]
    peaks = np.asarray(ann.sample, dtype=np.int64)[keep]
    labels = np.array([CLASSES.index(AAMI_CLASS_OF_SYMBOL[ann.symbol[i]]) for i in keep])
    ok = (peaks >= 0) & (peaks < leads.shape[1])
    ok[1:] &= np.diff(peaks) > 0
    record = Record(path.name, path.parent.name, float(rec.fs), leads, peaks[ok], labels[ok])
    _, present, amp = ft.filtered_windows(leads, record.fs_hz, record.peaks[::10])
    record.qrs_amplitude = np.nan_to_num(np.nanmedian(np.where(present, amp, np.nan), axis=0), 1.0)
    return record


def load_data(dirs: Sequence[Path]) -> tuple[list[Record], dict[str, np.ndarray]]:
    """Beat records and noise records (360 Hz) from WFDB folders.

    Folders of noise (nstdb's bw, em, ma) feed augmentation; nstdb's ``118e*``
    records are MIT-BIH 118 plus noise and are skipped, since 118 itself is a
    DS1 record and would leak across folds.
    """
    import wfdb

    records: list[Record] = []
    noise: dict[str, np.ndarray] = {}
    for folder in dirs:
        names = sorted(p.stem for p in folder.glob("*.hea"))
        for name in names:
            if name in NOISE_RECORDS:
                sig = wfdb.rdrecord(str(folder / name)).p_signal.T.astype(np.float32)
                noise[name] = sig - sig.mean(axis=1, keepdims=True)
            elif name.startswith("118e"):
                continue
            elif (folder / f"{name}.atr").exists():
                records.append(load_record(folder / name))
        logger.info("%s: %d beat records so far, noise %s", folder, len(records), sorted(noise))
    if not records:
        raise ValueError("no annotated WFDB records found in " + ", ".join(map(str, dirs)))
    return records, noise


def noise_at_rate(noise: dict[str, np.ndarray], fs_hz: float) -> dict[str, np.ndarray]:
    """nstdb noise (sampled at :data:`NOISE_FS_HZ`) resampled to a record's rate.

    Added sample for sample to a record at another rate, the noise would play
    faster or slower (at 128 Hz, baseline wander 2.8 times too fast).
    """
    from scipy.signal import resample_poly

    if fs_hz == NOISE_FS_HZ:
        return noise
    up, down = rational_ratio(NOISE_FS_HZ, fs_hz)
    return {k: resample_poly(v, up, down, axis=1).astype(np.float32) for k, v in noise.items()}


# ------------------------------------------------------------------ augmentation


def _noisy_leads(
    record: Record, noise: dict[str, np.ndarray], cfg: TrainConfig, rng: np.random.Generator
) -> np.ndarray:
    """The record with nstdb noise switched on and off in stretches of 10-60 s."""
    if not noise or rng.random() >= cfg.noise_probability:
        return record.leads
    n = record.leads.shape[1]
    kind = rng.choice(sorted(noise))
    source = noise[kind]
    start = int(rng.integers(0, source.shape[1]))
    idx = (start + np.arange(n)) % source.shape[1]
    chunk = source[:, idx][: record.leads.shape[0]]
    envelope = np.zeros(n, dtype=np.float32)
    pos, on = 0, bool(rng.random() < 0.5)
    while pos < n:
        length = int(rng.uniform(10.0, 60.0) * record.fs_hz)
        envelope[pos : pos + length] = 1.0 if on else 0.0
        pos, on = pos + length, not on
    snr = rng.uniform(*cfg.snr_db)
    # nstdb's SNR: signal power = (QRS peak-to-peak)^2 / 8.
    target_rms = record.qrs_amplitude[: chunk.shape[0]] / math.sqrt(8.0) / 10 ** (snr / 20.0)
    rms = np.sqrt(np.mean(chunk.astype(np.float64) ** 2, axis=1)) + 1e-9
    return record.leads + (chunk * (target_rms / rms)[:, None]).astype(np.float32) * envelope


def augmented_record(
    record: Record,
    noise: dict[str, np.ndarray] | None,
    cfg: TrainConfig,
    rng: np.random.Generator | None,
) -> tuple[np.ndarray, float, np.ndarray]:
    """``(leads, fs_hz, peaks)`` of a record, augmented when ``rng`` is given.

    ``noise`` must be at the record's rate (:func:`noise_at_rate`).
    """
    if rng is None:
        return record.leads, record.fs_hz, record.peaks
    fs = record.fs_hz * (1.0 + round(rng.uniform(-cfg.fs_jitter, cfg.fs_jitter), 3))
    n = len(record.peaks)
    wide = (rng.random(n) < cfg.wide_jitter_fraction) & np.isin(record.labels, WIDE_CLASSES)
    reach = np.where(wide, cfg.wide_jitter_s, cfg.peak_jitter_s)
    jitter = np.rint(rng.uniform(-1, 1, n) * reach * record.fs_hz).astype(np.int64)
    peaks = record.peaks + jitter
    for _ in range(3):  # beats moved past a neighbour go back to their reference place
        crossed = np.flatnonzero(np.diff(peaks) <= 0)
        if not len(crossed):
            break
        peaks[crossed] = record.peaks[crossed]
        peaks[crossed + 1] = record.peaks[crossed + 1]
    else:
        peaks = record.peaks
    return _noisy_leads(record, noise or {}, cfg, rng), fs, peaks


def augment_batch(waves, scalars, cfg: TrainConfig, gen):  # torch tensors in, out
    import torch

    n = waves.shape[0]
    pres = scalars[:, ft.N_RR_FEATURES : ft.N_RR_FEATURES + 2]
    swap = torch.rand(n, generator=gen) < cfg.swap_leads
    waves = torch.where(swap[:, None, None], waves[:, [1, 0, 3, 2]], waves)
    pres = torch.where(swap[:, None], pres[:, [1, 0]], pres)
    sign = torch.where(torch.rand(n, 2, generator=gen) < cfg.invert_lead, -1.0, 1.0)
    u = torch.rand(n, generator=gen)
    keep = torch.ones(n, 2)
    keep[u < cfg.drop_second_lead, 1] = 0.0
    keep[(u >= cfg.drop_second_lead) & (u < cfg.drop_second_lead + cfg.drop_first_lead), 0] = 0.0
    # Never drop the only lead a beat has.
    keep = torch.where((pres * keep).sum(1, keepdim=True) > 0, keep, torch.ones_like(keep))
    gain = (sign * keep).repeat(1, 2)
    waves = waves * gain[:, :, None]
    scalars = torch.cat([scalars[:, : ft.N_RR_FEATURES], pres * keep], dim=1)
    return waves, scalars
