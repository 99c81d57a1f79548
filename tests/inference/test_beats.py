"""Beat classifier: loading checks, output shape, causality, streaming equals offline,
and the shipped weights on real MIT-BIH beats."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import wfdb

from inference import features as ft
from inference.beat_stream import StreamingBeatClassifier
from inference.beats import (
    AAMI_CLASS_OF_SYMBOL,
    CLASSES,
    FIRST_MEMBER_SURE,
    FIRST_MEMBER_SURE_NORMAL,
    FORMAT_NAME,
    MODEL_VERSION,
    S_OVER_N_WEIGHT,
    BeatClassifier,
    BeatCNNConfig,
    beat_calls,
    build_beat_cnn,
    save_beat_model,
    stored_state,
)
from inference.model_io import ModelFileError, save_model_file

ROOT = Path(__file__).resolve().parents[2]
MITDB = ROOT.parent / "shared" / "data" / "mitdb"
SHIPPED = ROOT / "resources" / "models" / "beatcnn.safetensors"
needs_mitdb = pytest.mark.skipif(not MITDB.is_dir(), reason="MIT-BIH data not present")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _excerpt(record: str, seconds: float) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    """First ``seconds`` of a record: leads (MLII first), fs, beat positions and AAMI labels."""
    rec = wfdb.rdrecord(str(MITDB / record), sampto=int(seconds * 360))
    ann = wfdb.rdann(str(MITDB / record), "atr", sampto=int(seconds * 360))
    order = [rec.sig_name.index("MLII")] + [
        i for i in range(len(rec.sig_name)) if rec.sig_name[i] != "MLII"
    ]
    keep = [i for i, s in enumerate(ann.symbol) if s in AAMI_CLASS_OF_SYMBOL]
    labels = np.array([AAMI_CLASS_OF_SYMBOL[ann.symbol[i]] for i in keep])
    return rec.p_signal[:, order].T, float(rec.fs), ann.sample[keep].astype(np.int64), labels


@pytest.fixture(scope="module")
def random_model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.manual_seed(3)
    module = build_beat_cnn(BeatCNNConfig())
    path = tmp_path_factory.mktemp("model") / "random.safetensors"
    save_beat_model(path, module, BeatCNNConfig(), {"trained_utc": "2026-01-01T00:00:00Z"})
    return path


@pytest.fixture(scope="module")
def classifier(random_model_file: Path) -> BeatClassifier:
    return BeatClassifier.from_file(random_model_file)


def _synthetic(fs: float, seconds: float, n_leads: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian 'QRS' spikes every ~0.8 s with a premature wide one now and then."""
    rng = np.random.default_rng(1)
    n = int(seconds * fs)
    t = np.arange(n) / fs
    peaks, pos = [], 0.4
    while pos < seconds - 0.1:
        peaks.append(int(pos * fs))
        pos += 0.5 if rng.random() < 0.15 else rng.uniform(0.75, 0.85)
    leads = rng.normal(0, 0.01, (n_leads, n))
    for k, p in enumerate(peaks):
        width = 0.05 if k % 7 == 3 else 0.012
        leads += (
            np.exp(-0.5 * ((t - p / fs) / width) ** 2) * np.array([1.0, -0.6][:n_leads])[:, None]
        )
    return leads, np.array(peaks, dtype=np.int64)


def test_import_does_not_load_torch() -> None:
    code = "import sys, inference.beats; print('torch' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    assert out.stdout.strip() == "False"


def test_version_and_metadata(classifier: BeatClassifier, random_model_file: Path) -> None:
    from inference.model_io import file_sha256

    assert classifier.version == f"beatcnn-{MODEL_VERSION}+{file_sha256(random_model_file)[:8]}"
    assert json.loads(classifier.metadata["classes"]) == list(CLASSES)
    assert float(classifier.metadata["model_fs_hz"]) == ft.MODEL_FS_HZ


@pytest.mark.parametrize("fs", [125.0, 130.0, 360.0, 1000.0])
def test_probabilities_shape_and_sum_at_any_rate(classifier: BeatClassifier, fs: float) -> None:
    leads, peaks = _synthetic(fs, 30.0)
    probs = classifier.classify(leads, fs, peaks)
    assert probs.shape == (len(peaks), len(CLASSES))
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert np.all(probs >= 0)


def test_single_lead_and_nan_gaps(classifier: BeatClassifier) -> None:
    leads, peaks = _synthetic(250.0, 30.0)
    one = classifier.classify(leads[0], 250.0, peaks)  # 1-D: one lead
    assert one.shape == (len(peaks), 5) and np.isfinite(one).all()
    gappy = leads.copy()
    gappy[1, 1000:4000] = np.nan  # second lead lost for 12 s
    gappy[0, 2000:2040] = np.nan  # 0.16 s dropout on the first: filled, lead kept
    probs = classifier.classify(gappy, 250.0, peaks)
    assert np.isfinite(probs).all()
    inputs = ft.beat_inputs(gappy, 250.0, peaks, np.arange(len(peaks)), ft.PatientState())
    lost = (peaks > 1000 + 200) & (peaks < 4000 - 200)
    assert np.all(inputs.scalars[lost, ft.N_RR_FEATURES + 1] == 0.0)  # lead 2 absent
    assert np.all(inputs.scalars[:, ft.N_RR_FEATURES] == 1.0)  # lead 1 present throughout


def test_empty_and_bad_inputs(classifier: BeatClassifier) -> None:
    leads, _ = _synthetic(360.0, 5.0)
    assert classifier.classify(leads, 360.0, np.zeros(0, np.int64)).shape == (0, 5)
    with pytest.raises(ValueError, match="strictly increasing"):
        classifier.classify(leads, 360.0, np.array([500, 400]))
    with pytest.raises(ValueError, match="outside the supported"):
        classifier.classify(leads, 50.0, np.array([100]))


def test_beat_ignores_signal_and_peaks_beyond_its_context(classifier: BeatClassifier) -> None:
    fs = 360.0
    leads, peaks = _synthetic(fs, 40.0)
    base = classifier.classify(leads, fs, peaks)
    i = len(peaks) // 2
    cut = peaks[i] + int(np.ceil(ft.CONTEXT_AFTER_S * fs)) + 1
    changed = leads.copy()
    changed[:, cut:] = np.random.default_rng(5).normal(0, 2.0, changed[:, cut:].shape)
    moved = peaks.copy()
    moved[i + 2 :] += 7  # later peaks move: beat i must not notice
    probs = classifier.classify(changed, fs, moved)
    np.testing.assert_allclose(probs[: i + 1], base[: i + 1], atol=1e-5)
    assert not np.allclose(probs[i + 2 :], base[i + 2 :], atol=1e-3)


def _stream(clf: BeatClassifier, leads: np.ndarray, fs: float, peaks: np.ndarray, seed: int):
    """Push random-sized blocks, reporting each peak 0.25 s after it (a detector's delay)."""
    stream = StreamingBeatClassifier(clf, fs, n_leads=leads.shape[0], peak_latency_s=0.5)
    rng = np.random.default_rng(seed)
    got_peaks, got_probs, pos, k = [], [], 0, 0
    while pos < leads.shape[1]:
        step = int(rng.integers(1, int(0.8 * fs)))
        block = leads[:, pos : pos + step]
        pos += block.shape[1]
        new = []
        while k < len(peaks) and peaks[k] <= pos - int(0.25 * fs):
            new.append(peaks[k])
            k += 1
        p, pr = stream.push(block, new)
        got_peaks.append(p)
        got_probs.append(pr)
    for p, pr in (stream.push(leads[:, :0], peaks[k:]), stream.flush()):
        got_peaks.append(p)
        got_probs.append(pr)
    return np.concatenate(got_peaks), np.concatenate(got_probs), stream


def test_streaming_equals_whole_record(classifier: BeatClassifier) -> None:
    fs = 130.0  # a Polar H10's rate
    leads, peaks = _synthetic(fs, 100.0)
    # A 5 s pause with no beats, a NaN gap, and a beat at the very end.
    keep = (peaks < 60 * fs) | (peaks > 65 * fs)
    peaks = np.append(peaks[keep], leads.shape[1] - 20)
    leads[0, int(80 * fs) : int(81 * fs)] = np.nan
    offline = classifier.classify(leads, fs, peaks)
    got_peaks, got_probs, stream = _stream(classifier, leads, fs, peaks, seed=2)
    np.testing.assert_array_equal(got_peaks, peaks)
    np.testing.assert_allclose(got_probs, offline, atol=1e-5)
    # The stream keeps a bounded history.
    assert stream._buf.shape[1] < 40 * fs
    assert len(stream._peaks) <= ft.RR_HISTORY_BEATS + 3


@needs_mitdb
def test_streaming_equals_whole_record_on_mitdb(classifier: BeatClassifier) -> None:
    leads, fs, peaks, _ = _excerpt("119", 75.0)
    offline = classifier.classify(leads, fs, peaks)
    got_peaks, got_probs, _ = _stream(classifier, leads, fs, peaks, seed=4)
    np.testing.assert_array_equal(got_peaks, peaks)
    np.testing.assert_allclose(got_probs, offline, atol=1e-5)


def test_streaming_beat_waits_for_next_peak_or_three_seconds(classifier: BeatClassifier) -> None:
    fs = 250.0
    leads, peaks = _synthetic(fs, 20.0)
    stream = StreamingBeatClassifier(classifier, fs, n_leads=2, peak_latency_s=0.5)
    p, _ = stream.push(leads[:, : peaks[0] + int(0.6 * fs)], peaks[:1])
    assert len(p) == 0  # no next peak yet and less than 3.5 s after it
    p, _ = stream.push(leads[:, peaks[0] + int(0.6 * fs) : peaks[0] + int(3.6 * fs)])
    assert list(p) == [peaks[0]]  # 3 s + detector latency passed: post-RR taken as 3 s


def test_streaming_trims_history_without_peaks(classifier: BeatClassifier) -> None:
    stream = StreamingBeatClassifier(classifier, 500.0, n_leads=1)
    for _ in range(100):
        stream.push(np.zeros(500, np.float32))
    assert stream._buf.shape[1] <= 500 * 2


# ------------------------------------------------------------------------ ensembles


def _ensemble_file(path: Path) -> Path:
    import torch

    torch.manual_seed(11)
    config = BeatCNNConfig(members=3)
    model = build_beat_cnn(config)
    first = model.members[0]
    # The first member is sure of N on beats on time, unsure on slightly late ones and
    # sure of V on early ones.
    with torch.no_grad():
        for layer in (first.head[0], first.head[3]):
            layer.weight.zero_()
            layer.bias.zero_()
        # Hidden unit 0 = ReLU(-log(pre-RR / median RR) - 0.2): 0 unless the beat is early.
        first.head[0].weight[0, -ft.N_SCALARS] = -1.0
        first.head[0].bias[0] = -0.2
        # Hidden unit 1 = ReLU(log(pre-RR / median RR) - 0.02): the beat is a little late.
        first.head[0].weight[1, -ft.N_SCALARS] = 1.0
        first.head[0].bias[1] = -0.02
        first.head[3].weight[0, 0] = -20.0
        first.head[3].weight[0, 1] = -100.0
        first.head[3].bias[0] = 4.0  # on time: P(N) = e^4 / (e^4 + 4) = 0.93
        first.head[3].weight[2, 0] = 40.0  # early: P(V) near 1
    save_beat_model(path, model, config, {"trained_utc": "2026-01-01T00:00:00Z"})
    return path


def test_ensemble_averages_members_unless_the_first_is_sure(tmp_path: Path) -> None:
    import torch

    clf = BeatClassifier.from_file(_ensemble_file(tmp_path / "e.safetensors"))
    assert json.loads(clf.metadata["architecture"])["members"] == 3
    leads, peaks = _synthetic(360.0, 120.0)
    inputs = ft.beat_inputs(leads, 360.0, peaks, np.arange(len(peaks)), ft.PatientState())
    got = clf.classify_inputs(inputs)
    w, s = torch.from_numpy(inputs.waves), torch.from_numpy(inputs.scalars)
    with torch.inference_mode():
        each = np.stack([torch.softmax(m(w, s), 1).numpy() for m in clf.module.members])
        whole = torch.softmax(clf.module(w, s), 1).numpy()
    np.testing.assert_allclose(whole, each.mean(0), atol=1e-5)  # what explanations see
    sure_n = each[0][:, 0] >= FIRST_MEMBER_SURE_NORMAL
    sure_other = ~sure_n & (each[0].max(axis=1) >= FIRST_MEMBER_SURE)
    sure = sure_n | sure_other
    assert sure_n.any() and sure_other.any() and not sure.all()
    assert (each[0][sure_other].argmax(axis=1) == CLASSES.index("V")).all()
    np.testing.assert_allclose(got[sure], each[0][sure], atol=1e-5)
    np.testing.assert_allclose(got[~sure], each.mean(0)[~sure], atol=1e-5)
    # Streaming uses the same rule, so it still equals the whole record.
    whole_record = clf.classify(leads, 360.0, peaks)
    stream = StreamingBeatClassifier(clf, 360.0, n_leads=2)
    got_p, got_probs = [], []
    for start in range(0, leads.shape[1], 997):
        block = leads[:, start : start + 997]
        new = peaks[(peaks >= start) & (peaks < start + block.shape[1])]
        p, pr = stream.push(block, new)
        got_p.append(p)
        got_probs.append(pr)
    p, pr = stream.flush()
    np.testing.assert_array_equal(np.concatenate([*got_p, p]), peaks)
    np.testing.assert_allclose(np.concatenate([*got_probs, pr]), whole_record, atol=1e-5)


def test_one_network_file_without_member_count_still_loads(tmp_path: Path) -> None:
    arch = json.loads(BeatCNNConfig().to_json())
    del arch["members"]  # as model 1.1 files were written
    path = _write(
        tmp_path / "old.safetensors", _module_state(), _meta(architecture=json.dumps(arch))
    )
    clf = BeatClassifier.from_file(path)
    assert clf.config.members == 1 and not hasattr(clf.module, "members")


def test_ensemble_missing_a_member_tensor_is_refused(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    path = _ensemble_file(tmp_path / "e.safetensors")
    state = load_file(str(path))
    del state["members.2.head.3.bias"]
    arch = BeatCNNConfig(members=3).to_json()
    bad = _write(tmp_path / "bad.safetensors", state, _meta(architecture=arch))
    with pytest.raises(ModelFileError, match=r"missing tensor\(s\) members\.2\.head\.3\.bias"):
        BeatClassifier.from_file(bad)


# ------------------------------------------------------------- refused weights files


def _module_state() -> dict[str, np.ndarray]:
    return stored_state(build_beat_cnn(BeatCNNConfig()))


def _meta(**over: str) -> dict[str, str]:
    import torch  # noqa: F401  (build_beat_cnn needs it anyway)

    meta = {
        "classes": json.dumps(list(CLASSES)),
        "model_fs_hz": repr(ft.MODEL_FS_HZ),
        "pre_samples": str(ft.PRE_SAMPLES),
        "post_samples": str(ft.POST_SAMPLES),
        "architecture": BeatCNNConfig().to_json(),
        "model_version": MODEL_VERSION,
        "features_version": ft.FEATURES_VERSION,
        "rr_features": json.dumps(list(ft.RR_FEATURE_NAMES)),
        "trained_utc": "2026-01-01T00:00:00Z",
    }
    meta.update(over)
    return meta


def _write(path: Path, tensors: dict, meta: dict, version: int = 1) -> Path:
    save_model_file(path, tensors, meta, format_name=FORMAT_NAME, format_version=version)
    return path


def test_missing_tensor_refused(tmp_path: Path) -> None:
    state = _module_state()
    del state["head.3.bias"]
    path = _write(tmp_path / "m.safetensors", state, _meta())
    with pytest.raises(ModelFileError, match=r"m\.safetensors: missing tensor\(s\) head\.3\.bias"):
        BeatClassifier.from_file(path)


def test_extra_tensor_refused(tmp_path: Path) -> None:
    state = _module_state()
    state["head.9.weight"] = np.zeros(3)
    path = _write(tmp_path / "m.safetensors", state, _meta())
    with pytest.raises(ModelFileError, match=r"unexpected tensor\(s\) head\.9\.weight"):
        BeatClassifier.from_file(path)


def test_wrong_shape_refused(tmp_path: Path) -> None:
    state = _module_state()
    state["head.3.weight"] = np.zeros((4, 64))
    path = _write(tmp_path / "m.safetensors", state, _meta())
    with pytest.raises(ModelFileError, match=r"head\.3\.weight has shape \(4, 64\)"):
        BeatClassifier.from_file(path)


def test_architecture_mismatch_refused(tmp_path: Path) -> None:
    arch = json.dumps(
        {"channels": [8, 8, 8, 8], "kernels": [3, 3, 3, 3], "hidden": 16, "dropout": 0}
    )
    path = _write(tmp_path / "m.safetensors", _module_state(), _meta(architecture=arch))
    with pytest.raises(ModelFileError, match="has shape"):
        BeatClassifier.from_file(path)


def test_wrong_version_and_window_refused(tmp_path: Path) -> None:
    path = _write(tmp_path / "v.safetensors", _module_state(), _meta(), version=7)
    with pytest.raises(ModelFileError, match=r"v\.safetensors: format version '7'"):
        BeatClassifier.from_file(path)
    path = _write(tmp_path / "w.safetensors", _module_state(), _meta(pre_samples="90"))
    with pytest.raises(ModelFileError, match="pre_samples is 90"):
        BeatClassifier.from_file(path)
    path = _write(tmp_path / "f.safetensors", _module_state(), _meta(features_version="0"))
    with pytest.raises(ModelFileError, match="features_version is 0, expected"):
        BeatClassifier.from_file(path)


def test_pickle_and_garbage_refused(tmp_path: Path) -> None:
    import torch

    path = tmp_path / "torch.safetensors"
    torch.save(build_beat_cnn(BeatCNNConfig()).state_dict(), path)
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        BeatClassifier.from_file(path)
    path = tmp_path / "p.safetensors"
    path.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        BeatClassifier.from_file(path)


# -------------------------------------------------------------------- shipped weights


@needs_mitdb
@pytest.mark.skipif(not SHIPPED.exists(), reason="shipped weights not built yet")
def test_shipped_weights_call_real_beats_sensibly() -> None:
    clf = BeatClassifier.from_file(SHIPPED)
    assert clf.version.startswith(f"beatcnn-{MODEL_VERSION}+")
    assert SHIPPED.stat().st_size < 2 * 1024 * 1024
    # Record 101: almost all normal beats.
    leads, fs, peaks, labels = _excerpt("101", 300.0)
    called = np.array(CLASSES)[clf.classify(leads, fs, peaks).argmax(axis=1)]
    n = labels == "N"
    assert n.sum() > 300 and np.mean(called[n] == "N") >= 0.97
    # Record 119: ventricular bigeminy/trigeminy, PVCs must come out V.
    leads, fs, peaks, labels = _excerpt("119", 300.0)
    called = np.array(CLASSES)[clf.classify(leads, fs, peaks).argmax(axis=1)]
    v = labels == "V"
    assert v.sum() > 50 and np.mean(called[v] == "V") >= 0.9
    assert np.mean(called[labels == "N"] == "N") >= 0.9
    # Single lead (MLII only) still finds them.
    called1 = np.array(CLASSES)[clf.classify(leads[:1], fs, peaks).argmax(axis=1)]
    assert np.mean(called1[v] == "V") >= 0.8


def test_beat_calls_favour_s_over_n_only() -> None:
    w = S_OVER_N_WEIGHT
    probs = np.array(
        [
            [0.70, 0.30, 0.0, 0.0, 0.0],  # S at 0.30 > 0.70 / 3: called S
            [0.80, 0.19, 0.01, 0.0, 0.0],  # S below a third of N: stays N
            [0.05, 0.40, 0.55, 0.0, 0.0],  # V stays V however likely S is
            [0.10, 0.30, 0.0, 0.0, 0.60],  # Q stays Q
            [0.20, 0.70, 0.10, 0.0, 0.0],
        ],
        np.float32,
    )
    assert w == 3.0
    assert [CLASSES[k] for k in beat_calls(probs)] == ["S", "N", "V", "Q", "S"]
    assert beat_calls(np.zeros((0, 5), np.float32)).shape == (0,)
