"""Training: data loading, EC57 scoring, a tiny reproducible run and the CLI's outputs."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import wfdb

from inference import train as tr
from inference import train_data as td
from inference.beats import CLASSES, MODEL_VERSION, BeatClassifier, beat_calls, stored_state
from inference.train_report import aami_scores, confusion

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT.parent / "shared" / "data"
pytestmark = [
    pytest.mark.skipif(not (DATA / "mitdb").is_dir(), reason="MIT-BIH data not present"),
    pytest.mark.usefixtures("one_torch_thread"),
]


@pytest.fixture(scope="module")
def records() -> list[td.Record]:
    return [td.load_record(DATA / "mitdb" / name) for name in ("119", "209")]


def test_load_record_puts_mlii_first_and_maps_aami_classes() -> None:
    rec = td.load_record(DATA / "mitdb" / "114")  # stored as V5, MLII
    raw = wfdb.rdrecord(str(DATA / "mitdb" / "114"), channels=[1], sampto=1000).p_signal[:, 0]
    np.testing.assert_allclose(rec.leads[0, :1000], raw, atol=1e-6)
    counts = np.bincount(rec.labels, minlength=5)
    # 114 in AAMI classes: N 1820, S 12, V 43, F 4 (non-beat labels dropped).
    assert counts.tolist() == [1820, 12, 43, 4, 0]
    assert rec.database == "mitdb" and rec.fs_hz == 360.0


def test_aami_scores_follow_ec57_false_positive_rules() -> None:
    m = np.zeros((5, 5), dtype=np.int64)
    m[0, 0], m[0, 1], m[0, 2] = 90, 5, 3  # N: 5 called S, 3 called V
    m[1, 1], m[1, 0], m[1, 2] = 8, 2, 1  # S
    m[2, 2], m[2, 1] = 18, 2  # V
    m[3, 2], m[3, 1] = 4, 1  # F called V (not a VEB FP) and S (an SVEB FP)
    m[4, 2], m[4, 1] = 1, 1  # Q called V or S: neither counts
    s = aami_scores(m)
    assert s["VEB_Se"] == pytest.approx(100 * 18 / 20, abs=0.005)
    assert s["VEB_PP"] == pytest.approx(100 * 18 / (18 + 3 + 1), abs=0.005)
    assert s["SVEB_Se"] == pytest.approx(100 * 8 / 11, abs=0.005)
    assert s["SVEB_PP"] == pytest.approx(100 * 8 / (8 + 5 + 2 + 1), abs=0.005)
    assert s["F_Se"] == 0.0 and s["Q_PP"] is None
    np.testing.assert_array_equal(
        confusion(np.array([0, 1, 2, 2]), np.array([0, 2, 2, 1])).sum(axis=1), [1, 1, 2, 0, 0]
    )


def test_class_shares_follow_power_and_cap() -> None:
    labels = np.array([0] * 900 + [1] * 100 + [2] * 100 + [4] * 10)
    cfg = tr.TrainConfig(sampling_power=0.5, class_share_cap={"Q": 0.01})  # F uncapped here
    p = tr._class_weights(labels, cfg)
    share = np.array([p[labels == c].sum() for c in range(5)])
    assert share.sum() == pytest.approx(1.0)
    assert share[0] / share[1] == pytest.approx(3.0)  # sqrt(900 / 100)
    assert share[3] == 0.0 and share[4] == pytest.approx(0.01)


def test_tiny_training_is_reproducible(records: list[td.Record]) -> None:
    cfg = tr.TrainConfig(epochs=1, beats_per_epoch=1024, batch_size=128, seed=7)
    a, hist = tr.fit(records, {}, cfg)
    b, _ = tr.fit(records, {}, cfg)
    c, _ = tr.fit(
        records, {}, tr.TrainConfig(epochs=1, beats_per_epoch=1024, batch_size=128, seed=8)
    )
    sa, sb, sc = stored_state(a), stored_state(b), stored_state(c)
    assert all(np.array_equal(sa[k], sb[k]) for k in sa)
    assert not all(np.array_equal(sa[k], sc[k]) for k in sa)
    assert np.isfinite(hist["epochs"][0]["loss"])


def test_members_train_alike_in_worker_processes(records: list[td.Record]) -> None:
    arch = replace(tr.TrainConfig().architecture, members=2)
    cfg = tr.TrainConfig(epochs=1, beats_per_epoch=512, batch_size=128, seed=5, architecture=arch)
    inline, hist = tr.fit(records, {}, cfg, workers=1)
    forked, _ = tr.fit(records, {}, cfg, workers=2)
    a, b = stored_state(inline), stored_state(forked)
    assert sorted(a) == sorted(b) and any(k.startswith("members.1.") for k in a)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    # Member m is the one-network recipe seeded seed + m.
    single, _ = tr.fit(records, {}, tr.member_config(cfg, 1))
    one = stored_state(single)
    assert all(np.array_equal(a[f"members.1.{k}"], one[k]) for k in one)
    assert [e["seed"] for e in hist["epochs"]] == [5, 6]


def test_a_worker_that_dies_is_reported(
    records: list[td.Record], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The forked workers inherit this: each exits at once, as one killed for memory would.
    monkeypatch.setattr(tr, "_fit_network", lambda *args: os._exit(3))
    arch = replace(tr.TrainConfig().architecture, members=2)
    cfg = tr.TrainConfig(epochs=1, beats_per_epoch=256, batch_size=128, architecture=arch)
    with pytest.raises(RuntimeError, match="training worker process died.*--workers"):
        tr.fit(records, {}, cfg, workers=2)


def test_evaluate_hands_back_each_records_probabilities(records: list[td.Record]) -> None:
    cfg = tr.TrainConfig(epochs=1, beats_per_epoch=512, batch_size=128, seed=7)
    probs: dict[str, np.ndarray] = {}
    _, hist = tr.fit(records[:1], {}, cfg, validate=records[1:], probabilities=probs)
    held = records[1]
    assert list(probs) == [held.name] and probs[held.name].shape == (len(held.peaks), len(CLASSES))
    # The scores are those of these probabilities under the shipped call rule.
    assert np.array_equal(
        np.array(hist["validation"]["confusion"]),
        confusion(held.labels, beat_calls(probs[held.name])),
    )


def test_noise_keeps_its_time_scale_at_the_records_rate() -> None:
    t = np.arange(int(60 * td.NOISE_FS_HZ)) / td.NOISE_FS_HZ
    wander = {"bw": np.vstack([np.sin(2 * np.pi * 0.5 * t)] * 2).astype(np.float32)}
    at_128 = td.noise_at_rate(wander, 128.0)["bw"]
    assert at_128.shape == (2, 60 * 128)
    spectrum = np.abs(np.fft.rfft(at_128[0]))
    assert np.fft.rfftfreq(at_128.shape[1], 1 / 128.0)[spectrum.argmax()] == pytest.approx(0.5)
    assert td.noise_at_rate(wander, td.NOISE_FS_HZ) is wander


def test_augmentation_keeps_beats_and_adds_noise(records: list[td.Record]) -> None:
    noise = {"em": np.random.default_rng(0).normal(0, 0.2, (2, 360 * 600)).astype(np.float32)}
    cfg = tr.TrainConfig(noise_probability=1.0)
    leads, fs, peaks = td.augmented_record(records[0], noise, cfg, np.random.default_rng(1))
    assert len(peaks) == len(records[0].peaks)
    moved = np.abs(peaks - records[0].peaks)
    assert moved.max() <= round(cfg.wide_jitter_s * 360)
    assert np.all(moved[records[0].labels == 0] <= round(cfg.peak_jitter_s * 360))  # N stay close
    assert np.mean(moved[records[0].labels == 2] > 3) > 0.1  # some V beats move far
    assert np.all(np.diff(peaks) > 0)
    assert abs(fs / 360.0 - 1.0) <= cfg.fs_jitter + 1e-9
    assert not np.allclose(leads, records[0].leads)
    same = td.augmented_record(records[0], noise, cfg, None)
    assert same[0] is records[0].leads and same[1] == 360.0


def _link(folder: Path, src: Path, names: tuple[str, ...], exts: tuple[str, ...]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        for ext in exts:
            os.symlink(src / f"{name}.{ext}", folder / f"{name}.{ext}")


def test_cli_writes_a_loadable_model_and_card(tmp_path: Path) -> None:
    data = tmp_path / "mitdb"
    _link(data, DATA / "mitdb", ("119",), ("hea", "dat", "atr"))
    noise = tmp_path / "nstdb"
    _link(noise, DATA / "nstdb", ("em",), ("hea", "dat"))
    out = tmp_path / "models" / "tiny.safetensors"
    argv = ["--data", str(data), str(noise), "--out", str(out), "--epochs", "1"]
    argv += ["--beats-per-epoch", "1024", "--seed", "3"]
    assert tr.main(argv) == 0
    clf = BeatClassifier.from_file(out)
    assert clf.version.startswith(f"beatcnn-{MODEL_VERSION}+")
    assert json.loads(clf.metadata["training_records"]) == ["mitdb/119"]
    assert json.loads(clf.metadata["training_config"])["seed"] == 3
    card = out.with_suffix(".md").read_text()
    assert clf.sha256 in card and "--beats-per-epoch 1024" in card
    assert "Not run for this file" in card  # no CV asked for
    rec = td.load_record(data / "119")
    probs = clf.classify(rec.leads[:, : 360 * 20], 360.0, rec.peaks[rec.peaks < 360 * 20])
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert probs.shape[1] == len(CLASSES)


def test_cv_needs_ds1_records(records: list[td.Record]) -> None:
    svdb_like = [td.Record("800", "svdb", 128.0, r.leads, r.peaks, r.labels) for r in records]
    with pytest.raises(ValueError, match="needs the MIT-BIH DS1 records"):
        tr.cross_validate(svdb_like, {}, tr.TrainConfig(epochs=1))
