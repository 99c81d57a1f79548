"""EC57 beat-by-beat scoring (inference.ec57) and WFDB annotation I/O (inference.annotations)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import wfdb

from inference.annotations import (
    BEAT_SYMBOLS,
    load_ecg,
    read_annotations,
    read_beat_annotations,
    write_beat_annotations,
)
from inference.ec57 import (
    AAMI_CLASSES,
    BeatStatistics,
    Ec57Report,
    aami_class,
    compare_record,
    evaluate_dirs,
)

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "mitdb").is_dir(), reason="PhysioNet data not present")

FS = 360.0  # match window = round(0.15 * 360) = 54 samples


def cmp(ref: list[tuple[int, str]], test: list[tuple[int, str]], **kw: object):
    kw.setdefault("start_s", 0.0)
    kw.setdefault("end_sample", 1_000_000)  # as from a header; bxb scores to the record's end
    return compare_record(
        [t for t, _ in ref],
        [s for _, s in ref],
        [t for t, _ in test],
        [s for _, s in test],
        FS,
        **kw,
    )


def idx(c: str) -> int:
    return (*AAMI_CLASSES, "O").index(c)


def test_perfect_match() -> None:
    beats = [(1000, "N"), (2000, "V"), (3000, "A"), (4000, "F"), (5000, "Q")]
    test = [(t, aami_class(s)) for t, s in beats]
    c = cmp(beats, test)
    assert np.array_equal(np.diag(c.confusion)[:5], [1, 1, 1, 1, 1])
    assert c.confusion.sum() == 5
    assert c.stats.qrs_se == 100.0 and c.stats.qrs_ppv == 100.0
    assert c.stats.veb_se == 100.0 and c.stats.sveb_se == 100.0


@pytest.mark.parametrize(
    ("offset", "matched"), [(54, True), (55, False), (-54, True), (-55, False)]
)
def test_150_ms_window_edge(offset: int, matched: bool) -> None:
    c = cmp([(10_000, "N")], [(10_000 + offset, "N")])
    assert (c.qrs_tp, c.qrs_fn, c.qrs_fp) == ((1, 0, 0) if matched else (0, 1, 1))


def test_window_scales_with_rate() -> None:
    # 0.15 s at 128 Hz rounds to 19 samples.
    ok = compare_record([5000], ["N"], [5019], ["N"], 128.0, start_s=0.0)
    late = compare_record([5000], ["N"], [5020], ["N"], 128.0, start_s=0.0)
    assert ok.qrs_tp == 1 and late.qrs_tp == 0


def test_closest_candidate_wins() -> None:
    # The test beat is nearer the first reference beat: the second one is missed.
    c = cmp([(1000, "N"), (1080, "N")], [(1030, "N")])
    assert (c.qrs_tp, c.qrs_fn, c.qrs_fp) == (1, 1, 0)
    assert c.missed_samples.tolist() == [1080]
    # Nearer the second: the first is missed.
    c = cmp([(1000, "N"), (1050, "N")], [(1030, "N")])
    assert (c.qrs_tp, c.qrs_fn, c.qrs_fp) == (1, 1, 0)
    assert c.missed_samples.tolist() == [1000]


def test_scoring_starts_at_five_minutes_by_default() -> None:
    start = int(300 * FS)
    ref = [(int(100 * FS), "N"), (start + 10, "N"), (start + 1000, "N")]
    test = [(int(100 * FS), "N"), (int(200 * FS), "N"), (start - 10, "N"), (start + 1000, "N")]
    c = cmp(ref, test, start_s=300.0)
    # The beat 10 samples before the start matches the first scored reference beat.
    assert (c.qrs_tp, c.qrs_fn, c.qrs_fp) == (2, 0, 0)
    everything = cmp(ref, test, start_s=0.0)
    assert (everything.qrs_tp, everything.qrs_fn, everything.qrs_fp) == (3, 0, 1)


def test_end_of_record_bounds_the_comparison() -> None:
    c = cmp([(1000, "N"), (9000, "N")], [(1000, "N"), (8000, "N")], end_sample=5000)
    assert (c.qrs_tp, c.qrs_fn, c.qrs_fp) == (1, 0, 0)
    # Without a record length, bxb stops at the last reference beat.
    c = cmp([(1000, "N")], [(1000, "N"), (8000, "N")], end_sample=None)
    assert (c.qrs_tp, c.qrs_fn, c.qrs_fp) == (1, 0, 0)


def test_escape_beats_count_as_normal() -> None:
    c = cmp([(1000, "e"), (2000, "j"), (3000, "j")], [(1000, "N"), (2000, "N"), (3000, "S")])
    assert c.confusion[idx("N"), idx("N")] == 2
    assert c.confusion[idx("N"), idx("S")] == 1
    assert c.stats.sveb_ppv == 0.0  # an escape beat called S is an SVEB false positive
    assert c.stats.sveb_se is None  # no reference SVEB


def test_fusion_and_unknown_called_v_are_not_veb_false_positives() -> None:
    ref = [(1000, "V"), (2000, "F"), (3000, "Q"), (4000, "/"), (5000, "N")]
    test = [(1000, "V"), (2000, "V"), (3000, "V"), (4000, "V"), (5000, "N")]
    c = cmp(ref, test)
    assert c.stats.veb_ppv == 100.0
    assert c.stats.veb_fpr == 0.0
    # A normal beat called V is one.
    c = cmp([*ref, (6000, "N")], [*test, (6000, "V")])
    assert c.stats.veb_ppv == 50.0


def test_unknown_called_s_is_not_an_sveb_false_positive() -> None:
    c = cmp([(1000, "A"), (2000, "Q"), (3000, "N")], [(1000, "S"), (2000, "S"), (3000, "S")])
    assert c.stats.sveb_se == 100.0
    assert c.stats.sveb_ppv == 50.0  # only the N called S counts


def test_veb_false_positive_rate() -> None:
    ref = [(1000, "N"), (2000, "N"), (3000, "N"), (4000, "N"), (5000, "V")]
    test = [(1000, "V"), (2000, "N"), (3000, "N"), (4000, "N"), (5000, "V")]
    assert cmp(ref, test).stats.veb_fpr == pytest.approx(25.0)  # 1 / (3 + 1)
    # An extra test beat not called V is a true negative for VEB (bxb).
    assert cmp(ref, [*test, (7000, "N")]).stats.veb_fpr == pytest.approx(20.0)
    missed_v = cmp(ref, test[:4])
    assert missed_v.stats.veb_se == 0.0 and missed_v.qrs_fn == 1


def test_ventricular_flutter_episode_is_not_scored() -> None:
    ref = [(1000, "N"), (2000, "["), (2100, "!"), (2200, "N"), (3000, "]"), (4000, "N")]
    test = [(1000, "N"), (2500, "N"), (4000, "N")]
    c = cmp(ref, test)
    assert (c.qrs_tp, c.qrs_fn, c.qrs_fp) == (2, 0, 0)
    open_ended = cmp(ref[:4], [(1000, "N"), (2500, "N"), (9000, "N")])
    assert (open_ended.qrs_tp, open_ended.qrs_fn, open_ended.qrs_fp) == (1, 0, 0)


def test_non_beat_annotations_are_ignored() -> None:
    c = cmp([(500, "+"), (1000, "N"), (1500, "~"), (2000, "N")], [(1000, "N"), (2000, "N")])
    assert (c.qrs_tp, c.qrs_fn, c.qrs_fp) == (2, 0, 0)


def test_gross_pools_counts_and_average_means_records() -> None:
    a = cmp([(1000 * k, "N") for k in range(1, 31)], [(1000 * k, "N") for k in range(1, 31)])
    b = cmp([(1000 * k, "N") for k in range(1, 11)], [(1000 * k, "N") for k in range(1, 6)])
    report = Ec57Report(records=(a, b), from_start=True)
    assert report.gross.qrs_se == pytest.approx(87.5)  # 35 / 40
    assert report.average.qrs_se == pytest.approx(75.0)  # (100 + 50) / 2
    assert report.average.veb_se is None  # no record has a VEB
    assert BeatStatistics.average([]).qrs_se is None


# --------------------------------------------------------------- with files


def _write_reference_as_test(ref_dir: Path, test_dir: Path, record: str, **kw: object) -> None:
    ann = read_beat_annotations(ref_dir / record)
    symbols = [aami_class(s) for s in ann.symbols]
    write_beat_annotations(test_dir, record, ann.samples, symbols, ann.fs_hz or FS, **kw)


@needs_data
def test_evaluate_dirs_perfect_on_real_reference(tmp_path: Path) -> None:
    mitdb = DATA / "mitdb"
    for record in ("101", "119"):
        _write_reference_as_test(mitdb, tmp_path, record)
    report = evaluate_dirs(mitdb, tmp_path, records=["101", "119"])
    assert [r.record for r in report.records] == ["101", "119"]
    assert report.gross.qrs_se == 100.0 and report.gross.qrs_ppv == 100.0
    assert report.gross.veb_se == 100.0 and report.gross.veb_fpr == 0.0
    m = report.confusion
    assert m.sum() == np.trace(m)
    ref_119 = read_beat_annotations(mitdb / "119")
    scored = int(np.count_nonzero(ref_119.samples >= 300 * 360))
    assert report.records[1].n_reference_beats == scored
    from_start = evaluate_dirs(mitdb, tmp_path, records=["119"], from_start=True)
    assert from_start.records[0].n_reference_beats == len(ref_119.samples)
    text = report.format_text()
    assert "101" in text and "119" in text and "Gross" in text and "Average" in text
    data = json.loads(json.dumps(report.to_json()))
    assert data["gross"]["qrs_se"] == 100.0
    assert data["confusion"]["rows_reference"] == ["N", "S", "V", "F", "Q", "O"]
    assert len(data["records"]) == 2


@needs_data
def test_evaluate_dirs_counts_misses_and_lists_missing(tmp_path: Path) -> None:
    ref_dir, test_dir = tmp_path / "ref", tmp_path / "test"
    ref_dir.mkdir()
    for record in ("101", "119"):
        for ext in ("hea", "atr"):
            shutil.copy(DATA / "mitdb" / f"{record}.{ext}", ref_dir)
    ann = read_beat_annotations(ref_dir / "101")
    keep = np.ones(len(ann.samples), dtype=bool)
    scored = np.flatnonzero(ann.samples >= 300 * 360)
    keep[scored[::100]] = False  # drop every 100th scored beat
    shifted = ann.samples.copy()
    shifted[scored[5]] += 60  # and move one beat outside the 150 ms window
    write_beat_annotations(test_dir, "101", shifted[keep], ["N"] * int(keep.sum()), 360.0)
    report = evaluate_dirs(ref_dir, test_dir)
    assert report.missing == ("119",)
    rec = report.records[0]
    assert rec.qrs_fn == len(scored[::100]) + 1
    assert rec.qrs_fp == 1
    assert "119" in report.format_text()
    with pytest.raises(FileNotFoundError):
        evaluate_dirs(ref_dir, test_dir, records=["119"])


@needs_data
def test_test_annotations_at_another_rate_are_rescaled(tmp_path: Path) -> None:
    ann = read_beat_annotations(DATA / "mitdb" / "101")
    at_250 = np.round(ann.samples * 250.0 / 360.0).astype(np.int64)
    write_beat_annotations(tmp_path, "101", at_250, ["N"] * len(at_250), 250.0)
    report = evaluate_dirs(DATA / "mitdb", tmp_path, records=["101"])
    assert report.gross.qrs_se == 100.0 and report.gross.qrs_ppv == 100.0


def test_write_read_round_trip(tmp_path: Path) -> None:
    samples = np.array([900, 10, 5000, 300_000])
    path = write_beat_annotations(tmp_path, "rec", samples, ["V", "N", "S", "Q"], 250.0)
    assert path == tmp_path / "rec.vig"
    raw = wfdb.rdann(str(tmp_path / "rec"), "vig")
    assert raw.sample.tolist() == [10, 900, 5000, 300_000]
    assert raw.symbol == ["N", "V", "S", "Q"]
    back = read_annotations(tmp_path / "rec", "vig")
    assert back.fs_hz == 250.0
    assert back.symbols == ("N", "V", "S", "Q")


def test_empty_annotation_file_is_readable(tmp_path: Path) -> None:
    write_beat_annotations(tmp_path, "none", np.empty(0, dtype=np.int64), [], 360.0)
    assert len(wfdb.rdann(str(tmp_path / "none"), "vig").sample) == 0


def test_write_rejects_bad_input(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        write_beat_annotations(tmp_path, "r", [1, 2], ["N"], 360.0)
    with pytest.raises(ValueError):
        write_beat_annotations(tmp_path, "r", [-1], ["N"], 360.0)
    with pytest.raises(ValueError):
        write_beat_annotations(tmp_path, "r", [5], ["+"], 360.0)


@needs_data
def test_reference_beats_and_leads() -> None:
    beats = read_beat_annotations(DATA / "mitdb" / "207")
    assert set(beats.symbols) <= BEAT_SYMBOLS
    everything = read_annotations(DATA / "mitdb" / "207")
    assert "[" in everything.symbols and "[" not in beats.symbols
    assert beats.fs_hz == 360.0
    cu = load_ecg(DATA / "cudb" / "cu26")
    assert cu.fs_hz == 250.0 and cu.signals_mv.shape[1] == 1
    assert 0.0 < np.isnan(cu.lead(0)).mean() < 0.1  # gaps kept as NaN
    part = load_ecg(DATA / "mitdb" / "101", leads=[1], sampfrom=100, sampto=460)
    assert part.signals_mv.shape == (360, 1) and part.lead_names == ("V1",)
