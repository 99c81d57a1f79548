"""Episode-by-episode scoring (epicmp rules) on hand-made cases, and the events file."""

from __future__ import annotations

from pathlib import Path

import pytest

from inference.episodes import (
    EVENTS_HEADER,
    EpisodeReport,
    EventRow,
    compare_episodes,
    read_events_csv,
    reference_episodes,
    score_record,
    write_events_csv,
)
from inference.rhythm import Episode, Priority

FS = 100.0


def ep(kind: str, on: int, off: int, alarm: int | None = None, prio: str = "high") -> EventRow:
    return EventRow(kind, on, off, alarm, prio)


def test_any_overlap_matches_and_durations_are_overlap_shares():
    ref = [(1000, 2000), (5000, 6000), (9000, 9500)]
    test = [ep("af", 1500, 2500, 1600), ep("af", 5900, 7000, 5950), ep("af", 8000, 8100)]
    c = compare_episodes(ref, test, FS, 0, 10_000)
    assert (c.tp_se, c.fn) == (2, 1)  # the third reference episode is missed
    assert (c.tp_p, c.fp) == (2, 1)  # the last test episode overlaps nothing
    assert c.ref_duration == 2500 and c.overlap_se == 500 + 100
    assert c.test_duration == 1000 + 1100 + 100 and c.overlap_p == 600
    j = c.to_json()
    assert j["episode_se"] == pytest.approx(2 / 3, abs=1e-4)
    assert j["duration_ppv"] == pytest.approx(600 / 2200, abs=1e-4)
    assert j["alarm_delays_s"] == [6.0, 9.5]  # alarm minus reference onset


def test_learning_period_clips_and_drops_episodes():
    ref = [(100, 200), (250, 400)]
    test = [ep("af", 150, 350)]
    c = compare_episodes(ref, test, FS, 300, 1000)
    # The first episode ends before the start: ignored; the second is cut at 300.
    assert (c.tp_se, c.fn, c.ref_duration) == (1, 0, 100)
    assert (c.tp_p, c.fp, c.test_duration, c.overlap_p) == (1, 0, 50, 50)


def test_alarm_raised_before_onset_counts_as_no_delay():
    c = compare_episodes([(1000, 2000)], [ep("vf", 900, 2000, 950)], FS, 0, 5000)
    assert c.delays_s == [0.0]


def test_atrial_flutter_is_excluded_from_af_positive_predictivity():
    ref_af = [(0, 1000)]
    afl = [(2000, 3000)]
    inside = ep("af", 2100, 2900)  # wholly inside flutter: ignored
    straddles = ep("af", 2500, 3500)  # half in flutter: counted for its other half
    c = compare_episodes(ref_af, [inside, straddles], FS, 0, 5000, exclusions=afl)
    assert (c.tp_p, c.fp) == (0, 1)
    assert c.test_duration == 500


def test_reference_episodes_from_rhythm_and_vf_annotations():
    samples = [0, 100, 300, 400, 500, 600, 700, 800]
    symbols = ["+", "+", "+", "[", "]", "+", "+", "N"]
    aux = ["(N", "(AFIB", "(VT", "", "", "(AFL", "(N", ""]
    ref = reference_episodes(samples, symbols, aux, 1000)
    assert ref["af"] == [(100, 300)]
    assert ref["vt"] == [(300, 600)]
    assert ref["vf"] == [(400, 500)]
    assert ref["afl"] == [(600, 700)]
    # An AF episode still open at the end runs to the end of the record.
    assert reference_episodes([10], ["+"], ["(AFIB\x00"], 999)["af"] == [(10, 999)]


def test_events_file_round_trip_and_header(tmp_path: Path):
    eps = [
        Episode("vt", 100, 400, 250, Priority.HIGH, "VTach 5 beats 150 bpm"),
        Episode("couplet", 500, 560, None, Priority.NONE, "Couplet"),
    ]
    path = write_events_csv(tmp_path / "r1.events.csv", eps)
    assert path.read_text().splitlines()[0] == ",".join(EVENTS_HEADER)
    rows = read_events_csv(path)
    assert rows == [ep("vt", 100, 400, 250, "high"), ep("couplet", 500, 560, None, "none")]
    (tmp_path / "bad.events.csv").write_text("kind,onset\nvt,1\n")
    with pytest.raises(ValueError):
        read_events_csv(tmp_path / "bad.events.csv")


def test_alarm_burden_counts_high_and_medium_alarms_per_bed_hour():
    one_hour = int(3600 * FS)
    events = [
        ep("vt", 10, 20, 15, "high"),
        ep("af", 100, 200, 150, "medium"),
        ep("bigeminy", 300, 400, 350, "low"),  # low priority: not audible
        ep("couplet", 500, 510, None, "none"),
    ]
    rec = score_record("r", [], [], [], events, FS, one_hour // 2, from_start=True)
    report = EpisodeReport([rec, rec], from_start=True)
    b = report.burden()
    assert b["audible_alarms"] == 4 and b["bed_hours"] == pytest.approx(1.0)
    assert b["per_bed_hour"] == 4.0
    assert b["by_kind"] == {"af": 2, "vt": 2}
    assert "per bed-hour" in report.format_text()


def test_vt_called_during_reference_vf_is_not_a_false_vt():
    samples, symbols, aux = [100, 1000, 1500, 3000], ["+", "[", "]", "+"], ["(VT", "", "", "(N"]
    # Reference: VT from 100 to 3000 (the rhythm annotation), VF 1000-1500 inside it.
    events = [ep("vt", 200, 400, 300), ep("vt", 1100, 1400, 1150), ep("vt", 5000, 5100, 5050)]
    rec = score_record("r", samples, symbols, aux, events, FS, 10_000, from_start=True)
    vt = rec.counts["vt"]
    assert (vt.tp_se, vt.fn) == (1, 0)
    # 1100-1400 lies inside reference VF: excluded; 5000-5100 is a false VT.
    assert (vt.tp_p, vt.fp) == (1, 1)
