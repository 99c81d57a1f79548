"""Beat-by-beat scoring of detected beats against reference labels (ANSI/AAMI EC57).

This follows PhysioNet's ``bxb``, the reference implementation that EC57
(section 4.2) names for beat-by-beat statistics [1]_ [2]_:

* a test beat matches a reference beat when their times differ by at most
  the match window (150 ms); when two candidates compete, the closer one wins,
  a tie goes to the later one;
* the comparison starts 5 minutes into the record (the learning period is not
  scored) unless asked to start at 0; a test beat just before the start may
  still match the first scored reference beat;
* reference beats inside ventricular flutter/fibrillation (between ``[`` and
  ``]``) are not scored, and unmatched test beats inside such an episode are
  not counted as false detections;
* the VEB false-positive count is ``Nv + Sv + Ov``: fusion (F) and unknown (Q)
  reference beats labelled V are not counted against the detector, and the
  SVEB false-positive count is ``Ns + Vs + Fs + Os``, so Q beats labelled S
  are not counted either.

Beat codes map to the AAMI classes of EC57 Table 1 as used in the
inter-patient literature [3]_: N = {N, L, R, e, j}, S = {A, a, J, S},
V = {V, E}, F = {F}, Q = {/, f, Q}.  Escape beats e and j therefore count as N.
(``bxb``'s own ``amap`` puts e, j and n into S when SVEB statistics are
asked for; Vigil follows the EC57 class table instead.)  Codes outside the
table that WFDB counts as beats are mapped as ``bxb`` does: B (bundle-branch
block) and n (supraventricular escape, an escape beat) to N, r (R-on-T) to V,
? (learning) to Q.

Gross statistics pool the counts of all records; average statistics are the
mean of the per-record figures over the records where each is defined, as
PhysioNet's ``sumstats`` computes them.

References
----------
.. [1] G. B. Moody, ``bxb`` — ANSI/AAMI-standard beat-by-beat annotation
   comparator, WFDB Software Package (``app/bxb.c``);
   https://physionet.org/physiotools/wag/bxb-1.htm
.. [2] G. B. Moody, ``sumstats``, WFDB Software Package (``app/sumstats.c``).
.. [3] P. de Chazal, M. O'Dwyer, R. B. Reilly, "Automatic classification of
   heartbeats using ECG morphology and heartbeat interval features", IEEE
   Trans. Biomed. Eng. 51(7):1196-1206, 2004 (Table I).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from inference.annotations import (
    VF_OFFSET_SYMBOL,
    VF_ONSET_SYMBOL,
    read_annotations,
    read_header,
)

logger = logging.getLogger(__name__)

MATCH_WINDOW_S: Final = 0.150
LEARNING_PERIOD_S: Final = 300.0

#: AAMI classes in confusion-matrix order; ``O`` is "no beat" (a missed
#: reference beat in the O column, an extra test beat in the O row).
AAMI_CLASSES: Final[tuple[str, ...]] = ("N", "S", "V", "F", "Q")
_LABELS: Final[tuple[str, ...]] = (*AAMI_CLASSES, "O")
_N, _S, _V, _F, _Q, _O = range(6)

AAMI_CLASS_OF_SYMBOL: Final[dict[str, str]] = {
    **dict.fromkeys("NLRejBn", "N"),
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VEr", "V"),
    "F": "F",
    **dict.fromkeys("/fQ?", "Q"),
}
_CLASS_INDEX: Final[dict[str, int]] = {c: i for i, c in enumerate(AAMI_CLASSES)}

# Sentinel time past any real annotation (bxb's huge_time).
_NEVER: Final = 1 << 62


def _ratio(num: int, den: int) -> float | None:
    return None if den <= 0 else 100.0 * num / den


@dataclass(frozen=True, slots=True)
class BeatStatistics:
    """EC57 beat statistics in percent (``None`` where the denominator is 0)."""

    qrs_se: float | None
    qrs_ppv: float | None
    veb_se: float | None
    veb_ppv: float | None
    veb_fpr: float | None
    sveb_se: float | None
    sveb_ppv: float | None

    @classmethod
    def from_confusion(cls, m: np.ndarray) -> BeatStatistics:
        """Statistics of one (6, 6) confusion matrix, with ``bxb``'s formulas."""
        tp = int(m[:_O, :_O].sum())
        fn = int(m[:_O, _O].sum())
        fp = int(m[_O, :_O].sum())
        vtp = int(m[_V, _V])
        vfn = int(m[_V, :].sum() - m[_V, _V])
        vfp = int(m[_N, _V] + m[_S, _V] + m[_O, _V])
        non_v_cols = [_N, _S, _F, _Q]
        vtn = int(m[np.ix_([_N, _S, _F, _Q, _O], non_v_cols)].sum())
        stp = int(m[_S, _S])
        sfn = int(m[_S, :].sum() - m[_S, _S])
        sfp = int(m[_N, _S] + m[_V, _S] + m[_F, _S] + m[_O, _S])
        return cls(
            qrs_se=_ratio(tp, tp + fn),
            qrs_ppv=_ratio(tp, tp + fp),
            veb_se=_ratio(vtp, vtp + vfn),
            veb_ppv=_ratio(vtp, vtp + vfp),
            veb_fpr=_ratio(vfp, vtn + vfp),
            sveb_se=_ratio(stp, stp + sfn),
            sveb_ppv=_ratio(stp, stp + sfp),
        )

    @classmethod
    def average(cls, stats: Sequence[BeatStatistics]) -> BeatStatistics:
        """Mean of each figure over the records where it is defined (``sumstats``)."""
        values: dict[str, float | None] = {}
        for name in cls.__slots__:
            defined = [getattr(s, name) for s in stats if getattr(s, name) is not None]
            values[name] = float(np.mean(defined)) if defined else None
        return cls(**values)

    def to_json(self) -> dict[str, float | None]:
        """Plain dict of the figures (percent)."""
        return {name: getattr(self, name) for name in self.__slots__}


@dataclass(frozen=True, slots=True)
class RecordComparison:
    """Beat-by-beat comparison of one record.

    Parameters
    ----------
    record
        Record name.
    fs_hz
        Sampling rate of the sample indices.
    start_sample, end_sample
        Scored interval (``end_sample`` ``None``: to the last reference beat).
    confusion
        (6, 6) int64 counts, rows = reference class, columns = test class, in
        the order N, S, V, F, Q, O; column O holds missed reference beats,
        row O extra test beats.
    missed_samples
        Sample index of each reference beat with no matching test beat.
    extra_samples
        Sample index of each test beat with no matching reference beat.
    """

    record: str
    fs_hz: float
    start_sample: int
    end_sample: int | None
    confusion: np.ndarray
    missed_samples: np.ndarray
    extra_samples: np.ndarray
    stats: BeatStatistics = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "stats", BeatStatistics.from_confusion(self.confusion))

    @property
    def n_reference_beats(self) -> int:
        """Scored reference beats."""
        return int(self.confusion[:_O, :].sum())

    @property
    def qrs_tp(self) -> int:
        """Matched beats."""
        return int(self.confusion[:_O, :_O].sum())

    @property
    def qrs_fn(self) -> int:
        """Missed reference beats."""
        return int(self.confusion[:_O, _O].sum())

    @property
    def qrs_fp(self) -> int:
        """Extra test beats."""
        return int(self.confusion[_O, :_O].sum())

    def to_json(self) -> dict[str, object]:
        """Per-record counts and figures as a plain dict."""
        return {
            "record": self.record,
            "fs_hz": self.fs_hz,
            "start_sample": self.start_sample,
            "end_sample": self.end_sample,
            "reference_beats": self.n_reference_beats,
            "qrs_tp": self.qrs_tp,
            "qrs_fn": self.qrs_fn,
            "qrs_fp": self.qrs_fp,
            **self.stats.to_json(),
            "confusion": self.confusion.tolist(),
        }


def aami_class(symbol: str) -> str | None:
    """AAMI class (N, S, V, F, Q) of a WFDB beat code; ``None`` for a non-beat."""
    return AAMI_CLASS_OF_SYMBOL.get(symbol)


def _scored_beats(
    samples: np.ndarray, symbols: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """Beats outside VF episodes as (times, class indices), and the VF episodes.

    As in ``bxb``'s ``getref``, every annotation between ``[`` and ``]`` is
    skipped; an episode left open runs to the end of the record.
    """
    times: list[int] = []
    classes: list[int] = []
    episodes: list[tuple[int, int]] = []
    vf_onset: int | None = None
    for t, sym in zip(samples.tolist(), symbols, strict=True):
        if vf_onset is not None:
            if sym == VF_OFFSET_SYMBOL:
                episodes.append((vf_onset, t))
                vf_onset = None
            continue
        if sym == VF_ONSET_SYMBOL:
            vf_onset = t
            continue
        cls = AAMI_CLASS_OF_SYMBOL.get(sym)
        if cls is not None:
            times.append(t)
            classes.append(_CLASS_INDEX[cls])
    if vf_onset is not None:
        episodes.append((vf_onset, _NEVER))
    order = np.argsort(np.asarray(times, dtype=np.int64), kind="stable")
    return (
        np.asarray(times, dtype=np.int64)[order],
        np.asarray(classes, dtype=np.int64)[order],
        episodes,
    )


def _in_episode(t: int, episodes: Iterable[tuple[int, int]]) -> bool:
    return any(on <= t <= off for on, off in episodes)


def compare_record(
    ref_samples: np.ndarray | Sequence[int],
    ref_symbols: Sequence[str],
    test_samples: np.ndarray | Sequence[int],
    test_symbols: Sequence[str],
    fs_hz: float,
    start_s: float = LEARNING_PERIOD_S,
    *,
    end_sample: int | None = None,
    record: str = "",
    match_window_s: float = MATCH_WINDOW_S,
) -> RecordComparison:
    """Compare test beats with reference beats of one record, as ``bxb`` does.

    Parameters
    ----------
    ref_samples, ref_symbols
        Reference annotations (all codes; non-beats other than ``[``/``]``
        are ignored).
    test_samples, test_symbols
        Test annotations (beat codes, e.g. N, S, V, F, Q).
    fs_hz
        Sampling rate of both sets of sample indices.
    start_s
        Start of the scored interval in seconds (300: EC57's 5-minute
        learning period; 0: from the start).
    end_sample
        Last sample of the record (scoring goes on while either file has a
        beat at or before it); ``None`` scores to the last reference beat.
    record
        Record name for reports.
    match_window_s
        Match window (EC57: 0.15 s).

    Returns
    -------
    RecordComparison
        Confusion counts, missed and extra beats, and statistics.
    """
    ref_t, ref_c, ref_vf = _scored_beats(np.asarray(ref_samples, dtype=np.int64), ref_symbols)
    test_t, test_c, _ = _scored_beats(np.asarray(test_samples, dtype=np.int64), test_symbols)
    window = int(match_window_s * fs_hz + 0.5)
    start = int(start_s * fs_hz + 0.5)
    end = _NEVER - 1 if end_sample is None else int(end_sample)
    confusion = np.zeros((6, 6), dtype=np.int64)
    missed: list[int] = []
    extra: list[int] = []
    n_ref = len(ref_t)
    rt = ref_t.tolist() + [_NEVER, _NEVER]
    tt = test_t.tolist() + [_NEVER, _NEVER]

    i = int(np.searchsorted(ref_t, start, side="left"))
    j = int(np.searchsorted(test_t, start, side="left"))
    # A test beat in the learning period may match the first scored reference
    # beat; a first scored test beat that better fits a pre-start reference
    # beat is dropped unscored (bxb's start-up rules).
    T = rt[i]
    if j > 0 and T - tt[j - 1] <= window and T - tt[j - 1] < abs(T - tt[j]) and i < n_ref:
        confusion[ref_c[i], test_c[j - 1]] += 1
        i += 1
    elif tt[j] - start <= window and abs(T - tt[j + 1]) < abs(T - tt[j]):
        j += 1

    while True:
        T, Tn, t, tn = rt[i], rt[i + 1], tt[j], tt[j + 1]
        if end_sample is None:
            if i >= n_ref:
                break
        elif T > end and t > end:
            break
        if t == _NEVER and T == _NEVER:
            break
        if t < T:
            if T - t <= window and T - t < abs(T - tn):
                confusion[ref_c[i], test_c[j]] += 1
                i += 1
                j += 1
            else:
                if not _in_episode(t, ref_vf):
                    confusion[_O, test_c[j]] += 1
                    extra.append(t)
                j += 1
        else:
            if t - T <= window and t - T < abs(t - Tn):
                confusion[ref_c[i], test_c[j]] += 1
                i += 1
                j += 1
            else:
                confusion[ref_c[i], _O] += 1
                missed.append(T)
                i += 1
    return RecordComparison(
        record=record,
        fs_hz=float(fs_hz),
        start_sample=start,
        end_sample=end_sample,
        confusion=confusion,
        missed_samples=np.asarray(missed, dtype=np.int64),
        extra_samples=np.asarray(extra, dtype=np.int64),
    )


@dataclass(frozen=True, slots=True)
class Ec57Report:
    """EC57 beat-by-beat report over several records.

    Parameters
    ----------
    records
        One comparison per scored record, in the order given.
    from_start
        True when scoring began at the start of each record, not at 5 min.
    missing
        Records that had reference but no test annotations (not scored).
    """

    records: tuple[RecordComparison, ...]
    from_start: bool = False
    missing: tuple[str, ...] = ()

    @property
    def confusion(self) -> np.ndarray:
        """Pooled (6, 6) confusion counts (N, S, V, F, Q, O)."""
        total = np.zeros((6, 6), dtype=np.int64)
        for rec in self.records:
            total += rec.confusion
        return total

    @property
    def gross(self) -> BeatStatistics:
        """Statistics of the pooled counts."""
        return BeatStatistics.from_confusion(self.confusion)

    @property
    def average(self) -> BeatStatistics:
        """Per-record statistics averaged over the records."""
        return BeatStatistics.average([r.stats for r in self.records])

    def to_json(self) -> dict[str, object]:
        """The report as a JSON-ready dict."""
        return {
            "standard": "ANSI/AAMI EC57 beat-by-beat (bxb rules)",
            "match_window_s": MATCH_WINDOW_S,
            "start_s": 0.0 if self.from_start else LEARNING_PERIOD_S,
            "records": [r.to_json() for r in self.records],
            "gross": self.gross.to_json(),
            "average": self.average.to_json(),
            "confusion": {
                "rows_reference": list(_LABELS),
                "columns_test": list(_LABELS),
                "counts": self.confusion.tolist(),
            },
            "missing": list(self.missing),
        }

    def format_text(self) -> str:
        """Per-record table, gross and average rows, and the confusion matrix."""

        def pct(v: float | None, digits: int = 2) -> str:
            return "     -" if v is None else f"{v:6.{digits}f}"

        head = (
            f"{'Record':>8} {'Beats':>6} {'TP':>6} {'FN':>4} {'FP':>4} "
            f"{'Q Se':>6} {'Q +P':>6} {'V Se':>6} {'V +P':>6} {'V FPR':>6} "
            f"{'S Se':>6} {'S +P':>6}"
        )
        lines = [
            "EC57 beat-by-beat comparison "
            f"(match window {MATCH_WINDOW_S * 1000:.0f} ms, "
            f"from {'start' if self.from_start else '5 min'})",
            head,
            "-" * len(head),
        ]

        def stat_cols(s: BeatStatistics) -> str:
            return (
                f"{pct(s.qrs_se)} {pct(s.qrs_ppv)} {pct(s.veb_se)} {pct(s.veb_ppv)} "
                f"{pct(s.veb_fpr, 3)} {pct(s.sveb_se)} {pct(s.sveb_ppv)}"
            )

        for r in self.records:
            lines.append(
                f"{r.record:>8} {r.n_reference_beats:6d} {r.qrs_tp:6d} {r.qrs_fn:4d} "
                f"{r.qrs_fp:4d} {stat_cols(r.stats)}"
            )
        m = self.confusion
        lines.append("-" * len(head))
        lines.append(
            f"{'Gross':>8} {int(m[:_O, :].sum()):6d} {int(m[:_O, :_O].sum()):6d} "
            f"{int(m[:_O, _O].sum()):4d} {int(m[_O, :_O].sum()):4d} {stat_cols(self.gross)}"
        )
        lines.append(f"{'Average':>8} {'':6} {'':6} {'':4} {'':4} {stat_cols(self.average)}")
        lines.append("")
        lines.append("Confusion (rows: reference, columns: test; O = no beat)")
        lines.append("      " + "".join(f"{c:>8}" for c in _LABELS))
        for r_idx, label in enumerate(_LABELS):
            cells = [
                "       -" if (r_idx == _O and c_idx == _O) else f"{int(m[r_idx, c_idx]):8d}"
                for c_idx in range(6)
            ]
            lines.append(f"{label:>5} " + "".join(cells))
        if self.missing:
            lines.append("")
            lines.append("Not scored (no test annotations): " + ", ".join(self.missing))
        return "\n".join(lines)


def _list_records(ref_dir: Path, ref_ext: str) -> list[str]:
    return sorted(p.stem for p in ref_dir.glob(f"*.{ref_ext}"))


def evaluate_dirs(
    ref_dir: str | Path,
    test_dir: str | Path,
    records: Sequence[str] | None = None,
    from_start: bool = False,
    ref_ext: str = "atr",
    test_ext: str = "vig",
) -> Ec57Report:
    """Score every record's test annotations against its reference annotations.

    Parameters
    ----------
    ref_dir
        Folder with ``<record>.hea`` and ``<record>.<ref_ext>``.
    test_dir
        Folder with ``<record>.<test_ext>`` (written by
        :func:`inference.annotations.write_beat_annotations`).
    records
        Records to score; by default every record with a reference file.  An
        explicitly named record without a test file raises
        ``FileNotFoundError``; otherwise such records are listed as missing.
    from_start
        Score from sample 0 instead of from minute 5.
    ref_ext, test_ext
        Annotator names.

    Returns
    -------
    Ec57Report
        Per-record comparisons and pooled results.
    """
    ref_root, test_root = Path(ref_dir), Path(test_dir)
    names = list(records) if records is not None else _list_records(ref_root, ref_ext)
    comparisons: list[RecordComparison] = []
    missing: list[str] = []
    for name in names:
        test_file = test_root / f"{name}.{test_ext}"
        if not test_file.exists():
            if records is not None:
                raise FileNotFoundError(f"no test annotations {test_file}")
            logger.warning("record %s: no %s, not scored", name, test_file)
            missing.append(name)
            continue
        ref = read_annotations(ref_root / name, ref_ext)
        end_sample: int | None = None
        if (ref_root / f"{name}.hea").exists():
            header = read_header(ref_root / name)
            fs_hz, end_sample = header.fs_hz, header.n_samples
        elif ref.fs_hz is not None:
            fs_hz = ref.fs_hz
        else:
            raise ValueError(f"record {name}: sampling rate unknown (no .hea, none in .{ref_ext})")
        test = read_annotations(test_root / name, test_ext)
        test_samples = test.samples
        if test.fs_hz is not None and abs(test.fs_hz - fs_hz) > 1e-6:
            # Annotations written at another rate are moved onto the reference clock.
            logger.info("record %s: test at %.3f Hz rescaled to %.3f Hz", name, test.fs_hz, fs_hz)
            test_samples = np.round(test_samples * (fs_hz / test.fs_hz)).astype(np.int64)
        comparisons.append(
            compare_record(
                ref.samples,
                ref.symbols,
                test_samples,
                test.symbols,
                fs_hz,
                start_s=0.0 if from_start else LEARNING_PERIOD_S,
                end_sample=end_sample,
                record=name,
            )
        )
    return Ec57Report(records=tuple(comparisons), from_start=from_start, missing=tuple(missing))
