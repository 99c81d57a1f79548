"""Episode-by-episode scoring of rhythm calls against reference annotations.

Reference episodes come from a record's ``.atr`` file: rhythm-change
annotations (``+``) whose ``aux_note`` names the new rhythm -- ``(AFIB``,
``(AFL``, ``(VT``, ``(VFL``/``(VF`` -- and the ventricular flutter/fibrillation
markers ``[`` / ``]``.  Test episodes come from the ``<record>.events.csv``
files that ``vigil analyze`` writes.

The statistics follow PhysioNet's ``epicmp``, the episode comparator that
implements the AF and VF episode comparisons of ANSI/AAMI EC38:1998 and
EC57:1998 [1]_:

* **Episode sensitivity** -- share of reference episodes that overlap at
  least one test episode by any amount; **episode positive predictivity** --
  share of test episodes that overlap at least one reference episode.
* **Duration sensitivity** -- total overlap / total duration of the reference
  episodes; **duration positive predictivity** -- total overlap / total
  duration of the test episodes.
* A rhythm episode runs from its ``+`` annotation to the next rhythm
  annotation naming another rhythm (an episode still open at the end of the
  file runs to the end of the record); a VF episode runs from ``[`` to ``]``.
* Scoring starts 5 minutes into the record unless asked to start at 0;
  episodes ending before the start are ignored, episodes straddling it are
  cut at it.
* For AF positive predictivity, stretches of reference atrial flutter are
  excluded (a test AF episode wholly inside one is ignored, one partly inside
  is shortened), as ``epicmp`` does.

Vigil's additions, not part of ``epicmp``: VT episodes are scored with the
same overlap rules (``vt`` and ``vt_run`` test episodes against ``(VT``
reference episodes), and for VT positive predictivity reference VF/flutter
is excluded the way flutter is for AF (a fast ventricular run called VT a
few seconds before the VF call is not a false VT alarm); a VF reference
episode is the union of ``[``/``]`` and ``(VF``/``(VFL`` rhythm episodes;
the **alarm delay** of a detected reference episode is the first
``alarm_sample`` of an overlapping test episode minus the reference onset
(0 when that alarm was raised before the onset); the **alarm burden** is
the number of high- and medium-priority alarms (test episodes with an
``alarm_sample``) per bed-hour of record.

References
----------
.. [1] G. B. Moody, ``epicmp`` -- ANSI/AAMI-standard episode-by-episode
   annotation file comparator, WFDB Software Package (``app/epicmp.c``);
   https://physionet.org/physiotools/wag/epicmp-1.htm
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final, Protocol

import numpy as np

logger = logging.getLogger(__name__)

#: Header of ``<record>.events.csv``.
EVENTS_HEADER: Final = ("kind", "onset_sample", "offset_sample", "alarm_sample", "priority")
#: Scored episode classes: reference rhythm labels and the test kinds that count for them.
CLASSES: Final[dict[str, tuple[tuple[str, ...], frozenset[str]]]] = {
    "af": (("(AFIB",), frozenset({"af"})),
    "afl": (("(AFL",), frozenset({"afl"})),
    "vt": (("(VT",), frozenset({"vt", "vt_run"})),
    "vf": (("(VF", "(VFL"), frozenset({"vf"})),
}
AUDIBLE: Final = frozenset({"high", "medium"})
LEARNING_PERIOD_S: Final = 300.0

Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class EventRow:
    """One row of an events file."""

    kind: str
    onset_sample: int
    offset_sample: int
    alarm_sample: int | None
    priority: str


class EpisodeLike(Protocol):
    """What :func:`write_events_csv` needs of an episode (e.g. :class:`inference.rhythm.Episode`)."""

    kind: str
    onset_sample: int
    offset_sample: int | None
    alarm_sample: int | None
    priority: object  # a Priority enum (its name is written) or a name


def write_events_csv(path: str | Path, episodes: Iterable[EpisodeLike]) -> Path:
    """Write episodes as ``<record>.events.csv`` (header :data:`EVENTS_HEADER`).

    Priorities are written in lower case (``high``, ``medium``, ``low``,
    ``none``); an empty ``alarm_sample`` means the episode did not alarm, an
    empty ``offset_sample`` that it was still going on.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(EVENTS_HEADER)
        for ep in episodes:
            prio = ep.priority
            name = prio.name.lower() if hasattr(prio, "name") else str(prio).lower()
            offset = ep.offset_sample
            alarm = ep.alarm_sample
            w.writerow(
                [
                    ep.kind,
                    int(ep.onset_sample),
                    "" if offset is None else int(offset),
                    "" if alarm is None else int(alarm),
                    name,
                ]
            )
    return target


def read_events_csv(path: str | Path) -> list[EventRow]:
    """Read ``<record>.events.csv``.

    Raises
    ------
    ValueError
        The header is not :data:`EVENTS_HEADER` or a row does not parse.
    """
    with Path(path).open(newline="") as fh:
        rows = list(csv.reader(fh))
    if not rows or tuple(rows[0]) != EVENTS_HEADER:
        raise ValueError(f"{path}: header must be {','.join(EVENTS_HEADER)}")
    out: list[EventRow] = []
    for i, row in enumerate(rows[1:], start=2):
        try:
            kind, onset, offset, alarm, priority = row
            on = int(onset)
            out.append(
                EventRow(
                    kind, on, int(offset) if offset else on, int(alarm) if alarm else None, priority
                )
            )
        except ValueError as exc:
            raise ValueError(f"{path}:{i}: bad row {row}: {exc}") from exc
    return out


def reference_episodes(
    samples: Sequence[int], symbols: Sequence[str], aux_notes: Sequence[str], end_sample: int
) -> dict[str, list[Span]]:
    """Reference episodes per class of :data:`CLASSES` from a record's annotations."""
    rhythm: dict[str, list[Span]] = {c: [] for c in CLASSES}
    current: str | None = None
    since = 0
    vf: list[Span] = []
    vf_on: int | None = None
    for t, sym, aux in zip(samples, symbols, aux_notes, strict=True):
        t = int(t)
        if sym == "+":
            label = (aux or "").strip("\x00 ").split()[0] if (aux or "").strip("\x00 ") else ""
            cls = next((c for c, (labels, _) in CLASSES.items() if label in labels), None)
            if current is not None and cls != current:
                rhythm[current].append((since, t))
            if cls != current:
                since = t
            current = cls
        elif sym == "[" and vf_on is None:
            vf_on = t
        elif sym == "]" and vf_on is not None:
            vf.append((vf_on, t))
            vf_on = None
    if current is not None:
        rhythm[current].append((since, end_sample))
    if vf_on is not None:
        vf.append((vf_on, end_sample))
    rhythm["vf"] = _union(rhythm["vf"] + vf)
    return rhythm


def _union(spans: Iterable[Span]) -> list[Span]:
    out: list[Span] = []
    for a, b in sorted(spans):
        if out and a <= out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], b))
        else:
            out.append((a, b))
    return out


def _clip(spans: Iterable[Span], start: int, end: int) -> list[Span]:
    return [(max(a, start), min(b, end)) for a, b in spans if b >= start and a < end]


def _exclude(span: Span, exclusions: Sequence[Span]) -> tuple[Span, int] | None:
    """``epicmp``'s exclusion rule: the span trimmed and its remaining duration (None: all excluded)."""
    a, b = span
    duration = b - a
    for ea, eb in exclusions:
        if b <= ea:
            break
        if ea <= a <= eb:
            if b <= eb:
                return None
            duration -= eb - a
            a = eb
        elif a <= ea <= b:
            if eb < b:
                duration -= eb - ea
            else:
                duration -= b - ea
                b = ea
    return (a, b), duration


def _overlap(span: Span, others: Sequence[Span]) -> int:
    a, b = span
    return sum(max(0, min(b, ob) - max(a, oa)) for oa, ob in others)


@dataclass
class EpisodeCounts:
    """Counts behind the four ``epicmp`` statistics (pooled over records)."""

    tp_se: int = 0
    fn: int = 0
    tp_p: int = 0
    fp: int = 0
    ref_duration: int = 0
    test_duration: int = 0
    overlap_se: int = 0
    overlap_p: int = 0
    delays_s: list[float] = field(default_factory=list)

    def add(self, other: EpisodeCounts) -> None:
        """Pool another record's counts into these."""
        for name in (
            "tp_se",
            "fn",
            "tp_p",
            "fp",
            "ref_duration",
            "test_duration",
            "overlap_se",
            "overlap_p",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.delays_s.extend(other.delays_s)

    def to_json(self) -> dict:
        """Statistics (fractions, None where undefined), counts and alarm delays."""

        def ratio(a: int, b: int) -> float | None:
            return round(a / b, 4) if b > 0 else None

        d = np.asarray(self.delays_s)
        return {
            "episode_se": ratio(self.tp_se, self.tp_se + self.fn),
            "episode_ppv": ratio(self.tp_p, self.tp_p + self.fp),
            "duration_se": ratio(self.overlap_se, self.ref_duration),
            "duration_ppv": ratio(self.overlap_p, self.test_duration),
            "tp_se": self.tp_se,
            "fn": self.fn,
            "tp_p": self.tp_p,
            "fp": self.fp,
            "alarm_delay_s_median": round(float(np.median(d)), 1) if len(d) else None,
            "alarm_delay_s_max": round(float(d.max()), 1) if len(d) else None,
            "alarmed_within_6s": int(np.sum(d <= 6.0)) if len(d) else 0,
            "alarm_delays_s": [round(float(x), 1) for x in d],
        }


def compare_episodes(
    reference: Sequence[Span],
    test: Sequence[EventRow],
    fs_hz: float,
    start: int,
    end: int,
    exclusions: Sequence[Span] = (),
) -> EpisodeCounts:
    """Score one class in one record, as ``epicmp`` does (see module notes).

    Parameters
    ----------
    reference
        Reference episodes (sample spans).
    test
        Test episodes of the kinds that count for this class.
    fs_hz
        Sampling rate (for alarm delays in seconds).
    start, end
        Scored interval.
    exclusions
        Reference spans excluded from the positive-predictivity pass.
    """
    c = EpisodeCounts()
    ref = _clip(_union(reference), start, end)
    tst_eps = sorted(test, key=lambda e: e.onset_sample)
    tst = _clip([(e.onset_sample, e.offset_sample) for e in tst_eps], start, end)
    tst_raw = [(e.onset_sample, e.offset_sample) for e in tst_eps]
    for span in ref:
        c.ref_duration += span[1] - span[0]
        ov = _overlap(span, tst)
        if ov > 0:
            c.tp_se += 1
            c.overlap_se += ov
            alarms = [
                e.alarm_sample
                for e, (a, b) in zip(tst_eps, tst_raw, strict=True)
                if e.alarm_sample is not None and a <= span[1] and b >= span[0]
            ]
            if alarms:
                # An alarm raised before the onset (e.g. a VT alarm for a run that
                # turned into this VF) was already standing: delay 0.
                c.delays_s.append(max(0, min(alarms) - span[0]) / fs_hz)
        else:
            c.fn += 1
    excl = sorted(_clip(exclusions, start, end))
    for span in tst:
        kept = _exclude(span, excl)
        if kept is None:
            continue
        span2, duration = kept
        c.test_duration += duration
        ov = _overlap(span2, ref)
        if ov > 0:
            c.tp_p += 1
            c.overlap_p += ov
        else:
            c.fp += 1
    return c


@dataclass
class RecordEpisodes:
    """Episode scoring of one record."""

    record: str
    fs_hz: float
    hours: float
    counts: dict[str, EpisodeCounts]
    audible_alarms: int
    alarms_by_kind: dict[str, int]


def score_record(
    record: str,
    ann_samples: Sequence[int],
    ann_symbols: Sequence[str],
    ann_aux: Sequence[str],
    events: Sequence[EventRow],
    fs_hz: float,
    n_samples: int,
    *,
    from_start: bool = False,
) -> RecordEpisodes:
    """Score every class of :data:`CLASSES` in one record and count its audible alarms."""
    ref = reference_episodes(ann_samples, ann_symbols, ann_aux, n_samples)
    start = 0 if from_start else int(LEARNING_PERIOD_S * fs_hz)
    counts = {}
    for cls, (_, kinds) in CLASSES.items():
        tst = [e for e in events if e.kind in kinds]
        excl = {"af": ref["afl"], "vt": ref["vf"]}.get(cls, [])
        counts[cls] = compare_episodes(ref[cls], tst, fs_hz, start, n_samples, excl)
    alarmed = [e for e in events if e.alarm_sample is not None and e.priority in AUDIBLE]
    by_kind: dict[str, int] = {}
    for e in alarmed:
        by_kind[e.kind] = by_kind.get(e.kind, 0) + 1
    return RecordEpisodes(record, fs_hz, n_samples / fs_hz / 3600.0, counts, len(alarmed), by_kind)


@dataclass
class EpisodeReport:
    """Episode scoring over a set of records."""

    records: list[RecordEpisodes]
    from_start: bool

    def gross(self) -> dict[str, EpisodeCounts]:
        """Counts pooled over the records, per class."""
        out = {cls: EpisodeCounts() for cls in CLASSES}
        for r in self.records:
            for cls, c in r.counts.items():
                out[cls].add(c)
        return out

    @property
    def bed_hours(self) -> float:
        """Total length of the records in hours."""
        return sum(r.hours for r in self.records)

    def burden(self) -> dict:
        """Audible (high + medium) alarms per bed-hour, and by kind."""
        total = sum(r.audible_alarms for r in self.records)
        by_kind: dict[str, int] = {}
        for r in self.records:
            for k, n in r.alarms_by_kind.items():
                by_kind[k] = by_kind.get(k, 0) + n
        hours = self.bed_hours
        return {
            "audible_alarms": total,
            "bed_hours": round(hours, 3),
            "per_bed_hour": round(total / hours, 2) if hours > 0 else None,
            "by_kind": dict(sorted(by_kind.items())),
        }

    def to_json(self) -> dict:
        """The report as plain JSON types."""
        return {
            "from_start": self.from_start,
            "records": [r.record for r in self.records],
            "gross": {cls: c.to_json() for cls, c in self.gross().items()},
            "alarm_burden": self.burden(),
            "per_record": {
                r.record: {
                    "audible_alarms": r.audible_alarms,
                    **{
                        cls: {k: v for k, v in c.to_json().items() if k != "alarm_delays_s"}
                        for cls, c in r.counts.items()
                        if c.tp_se + c.fn + c.tp_p + c.fp
                    },
                }
                for r in self.records
            },
        }

    def format_text(self) -> str:
        """A short table: per class Se, +P, duration Se/+P, alarm delays; then the burden."""

        def pct(v: float | None) -> str:
            return "   -" if v is None else f"{100 * v:4.0f}"

        lines = [
            f"Episode comparison over {len(self.records)} record(s), "
            f"{'from the start' if self.from_start else 'after the 5-minute learning period'}",
            "class  refs  tests   ESe  E+P   DSe  D+P  delay median/max s",
        ]
        for cls, c in self.gross().items():
            j = c.to_json()
            delay = (
                "-"
                if j["alarm_delay_s_median"] is None
                else f"{j['alarm_delay_s_median']}/{j['alarm_delay_s_max']}"
            )
            lines.append(
                f"{cls:5s} {c.tp_se + c.fn:5d} {c.tp_p + c.fp:6d}  {pct(j['episode_se'])} {pct(j['episode_ppv'])}  "
                f"{pct(j['duration_se'])} {pct(j['duration_ppv'])}  {delay}"
            )
        b = self.burden()
        lines.append(
            f"Audible (high+medium) alarms: {b['audible_alarms']} in {b['bed_hours']} bed-hours = "
            f"{b['per_bed_hour']} per bed-hour; by kind: {b['by_kind']}"
        )
        return "\n".join(lines)


def evaluate_episode_dirs(
    ref_dir: str | Path,
    test_dir: str | Path,
    records: Sequence[str] | None = None,
    *,
    from_start: bool = False,
) -> EpisodeReport:
    """Score ``test_dir/<record>.events.csv`` against ``ref_dir/<record>.atr``.

    Parameters
    ----------
    ref_dir
        Folder with the reference ``.hea`` and ``.atr`` files.
    test_dir
        Folder written by ``vigil analyze``.
    records
        Records to score; default every record with both files.
    from_start
        Score from sample 0 instead of after the 5-minute learning period.

    Raises
    ------
    FileNotFoundError
        No record to score, or a named record lacks a file.
    ValueError
        An events file does not parse.
    """
    import wfdb  # noqa: PLC0415 (offline scoring only)

    from inference.annotations import read_header  # noqa: PLC0415

    ref_dir, test_dir = Path(ref_dir), Path(test_dir)
    if records is None:
        records = sorted(
            p.name.removesuffix(".events.csv")
            for p in test_dir.glob("*.events.csv")
            if (ref_dir / (p.name.removesuffix(".events.csv") + ".atr")).exists()
        )
    if not records:
        raise FileNotFoundError(
            f"no record has both {ref_dir}/<record>.atr and {test_dir}/<record>.events.csv"
        )
    scored = []
    for name in records:
        events_path = test_dir / f"{name}.events.csv"
        if not events_path.exists():
            raise FileNotFoundError(f"{events_path} missing")
        header = read_header(ref_dir / name)
        ann = wfdb.rdann(str(ref_dir / name), "atr")
        n = header.n_samples or int(max(ann.sample, default=0)) + 1
        aux = [a or "" for a in (ann.aux_note or [""] * len(ann.sample))]
        scored.append(
            score_record(
                name,
                ann.sample.tolist(),
                list(ann.symbol),
                aux,
                read_events_csv(events_path),
                header.fs_hz,
                n,
                from_start=from_start,
            )
        )
    return EpisodeReport(scored, from_start)
