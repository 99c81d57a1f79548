"""Attributions: exact on linear models, complete on the CNN, no hooks left (even on
errors), the explainer's model is its own, the explain thread, and the JSON record."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

from explain import SEGMENT_NAMES
from explain.attribute import Explainer, explain_beat
from explain.context import (
    BeatRequest,
    beat_context,
    by_channel,
    by_lead,
    recent_normal_baseline,
    rr_baseline,
    template_baseline,
)
from explain.methods import attribute, explained_module
from explain.worker import ExplainerThread
from inference import features as ft
from inference.beats import CLASSES, BeatClassifier, BeatCNNConfig, save_beat_model

# Captum's DeepLift announces its (temporary) hooks on every call; the app filters it at import,
# pytest resets filters per test.
pytestmark = pytest.mark.filterwarnings("ignore:Setting forward, backward hooks")


def _inputs(seed: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(ft.N_WAVE_CHANNELS, ft.WINDOW_SAMPLES)).astype(np.float32)
    b = rng.normal(size=x.shape).astype(np.float32) * 0.3
    s = rng.normal(size=ft.N_SCALARS).astype(np.float32)
    bs = rng.normal(size=ft.N_SCALARS).astype(np.float32) * 0.3
    return x, s, b, bs


def _v_beat(demo: dict) -> int:
    return int(np.flatnonzero(demo["labels"] == "V")[2])


def _request(demo: dict, index: int, **kw) -> BeatRequest:
    return BeatRequest(demo["leads"], demo["fs"], demo["peaks"], index, **kw)


def test_layout_round_trip():
    x = np.arange(4 * 6, dtype=np.float32).reshape(4, 6)
    lead_major = by_lead(x)
    assert lead_major.shape == (2, 2, 6)
    assert np.array_equal(lead_major[1, 0], x[1]) and np.array_equal(lead_major[0, 1], x[2])
    assert np.array_equal(by_channel(lead_major), x)


@pytest.mark.parametrize("method", ["ig", "deeplift"])
def test_linear_model_attributions_are_weight_times_difference(method, make_linear):
    net = make_linear()
    x, s, b, bs = _inputs()
    target = 3
    a = attribute(explained_module(net), x, s, b, bs, target, method=method)
    w = net.w.detach().numpy()[target].reshape(ft.N_WAVE_CHANNELS, ft.WINDOW_SAMPLES)
    v = net.v.detach().numpy()[target]
    np.testing.assert_allclose(a.waves, w * (x - b), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.scalars, v * (s - bs), rtol=1e-4, atol=1e-6)
    # Completeness: the attributions add up to f(x) - f(baseline).
    assert a.waves.sum() + a.scalars.sum() == pytest.approx(a.output - a.baseline_output, abs=1e-4)
    assert abs(a.delta) < 1e-4


def test_occlusion_on_linear_model_stays_where_the_weights_are(make_linear):
    import torch

    net = make_linear()
    with torch.no_grad():
        net.w.zero_()
        net.v.zero_()
        net.w[0].view(ft.N_WAVE_CHANNELS, ft.WINDOW_SAMPLES)[0, 70:80] = 1.0
    x, s, b, bs = _inputs()
    x[0, 70:80] = b[0, 70:80] + 1.0  # every weighted sample pushes class 0 up
    a = attribute(explained_module(net), x, s, b, bs, 0, method="occlusion")
    lead0 = a.waves[0] + a.waves[2]
    reach = 8  # one occlusion window
    assert np.all(lead0[70:80] > 0)
    assert np.allclose(lead0[: 70 - reach], 0, atol=1e-5)
    assert np.allclose(lead0[80 + reach :], 0, atol=1e-5)
    assert np.allclose(a.waves[[1, 3]], 0, atol=1e-5) and np.allclose(a.scalars, 0, atol=1e-5)


@pytest.mark.parametrize("model", ["cnn_classifier", "ensemble_classifier"])
def test_ig_is_complete_on_the_beat_cnn_and_an_ensemble(model, request):
    classifier = request.getfixturevalue(model)
    x, s, b, bs = _inputs(2)
    a = attribute(explained_module(classifier.module), x, s, b, bs, 2, method="ig")
    change = a.output - a.baseline_output
    assert abs(change) > 1e-3
    assert abs(a.delta) <= 0.05 * abs(change) + 1e-4


@pytest.mark.parametrize("method", ["ig", "deeplift", "occlusion"])
def test_an_ensemble_is_explained_like_one_network(
    method, ensemble_classifier, demo_119, hooks_left
):
    ex = Explainer.from_classifier(ensemble_classifier, warm_up=False)
    exp = ex.explain(_request(demo_119, _v_beat(demo_119), method=method))
    assert exp.method == method and np.isclose(sum(exp.probabilities.values()), 1.0, atol=1e-4)
    assert np.all(np.isfinite(exp.attribution)) and np.all(np.isfinite(exp.channel_attribution))
    assert hooks_left(ex._module) == [] and hooks_left(ex.classifier.module) == []


@pytest.mark.parametrize("method", ["ig", "deeplift", "occlusion"])
def test_explain_leaves_no_hooks(method, cnn_classifier, demo_119, hooks_left):
    ex = Explainer.from_classifier(cnn_classifier, warm_up=False)
    exp = ex.explain(_request(demo_119, _v_beat(demo_119), method=method))
    assert exp.method == method
    assert hooks_left(ex.classifier.module) == []
    assert hooks_left(ex._module) == []
    assert ex._random is not None and hooks_left(ex._random) == []


@pytest.mark.parametrize("method", ["ig", "deeplift", "occlusion"])
def test_no_hooks_left_when_the_model_raises(method, cnn_classifier, demo_119, hooks_left):
    ex = Explainer.from_classifier(cnn_classifier, warm_up=False)
    relu = ex.classifier.module.head[1]  # DeepLift hooks every ReLU

    def broken(*_args, **_kwargs):
        raise RuntimeError("forced failure inside the model")

    relu.forward = broken  # an instance attribute shadows nn.ReLU.forward
    with pytest.raises(RuntimeError, match="forced failure"):
        ex.explain(_request(demo_119, _v_beat(demo_119), method=method, faithfulness=False))
    assert hooks_left(ex._module) == []
    del relu.forward
    ex.explain(_request(demo_119, _v_beat(demo_119), method=method, faithfulness=False))
    assert hooks_left(ex._module) == []


@pytest.mark.parametrize("method", ["ig", "deeplift", "occlusion"])
def test_no_hooks_left_when_captum_raises(method, cnn_classifier, hooks_left):
    module = explained_module(cnn_classifier.module)
    x, s, b, bs = _inputs()
    with pytest.raises((IndexError, RuntimeError, AssertionError)):
        attribute(module, x, s, b, bs, 99, method=method)  # no such output
    assert hooks_left(module) == []


def test_explainer_never_shares_the_inference_model(tmp_path, cnn_classifier):
    path = tmp_path / "m.safetensors"
    save_beat_model(path, cnn_classifier.module, BeatCNNConfig(), {"trained_utc": "test"})
    inference = BeatClassifier.from_file(path)
    first, second = Explainer(path, warm_up=False), Explainer(path, warm_up=False)
    copied = Explainer.from_classifier(inference, warm_up=False)
    modules = [inference.module, first.classifier.module, second.classifier.module]
    modules.append(copied.classifier.module)
    assert len({id(m) for m in modules}) == 4
    for other in modules[1:]:
        assert other is not inference.module
        shared = {p.data_ptr() for p in inference.module.parameters()} & {
            p.data_ptr() for p in other.parameters()
        }
        assert not shared
    # Explaining changes nothing on the inference instance.
    assert all(p.requires_grad for p in inference.module.parameters())
    assert first.model_version == inference.version


def test_explanation_record_and_json(cnn_classifier, demo_119):
    i = _v_beat(demo_119)
    exp = explain_beat(cnn_classifier, demo_119["leads"], demo_119["fs"], demo_119["peaks"], i)
    data = json.loads(exp.to_json())
    for key in ("predicted", "probabilities", "summary", "segments", "attribution",
                "faithfulness", "latency_ms", "model_version", "time_s", "waveform_mv",
                "segment_bounds_s", "method", "rr_features", "baseline"):  # fmt: skip
        assert key in data
    assert set(data["probabilities"]) == set(CLASSES)
    assert set(data["segments"]) == set(SEGMENT_NAMES)
    assert sum(data["segments"].values()) == pytest.approx(1.0, abs=1e-3)
    assert {"deletion_auc", "random_deletion_auc", "infidelity"} <= set(data["faithfulness"])
    n = len(data["time_s"])
    assert len(data["attribution"]) == 2 and all(len(row) == n for row in data["attribution"])
    assert len(data["waveform_mv"][0]) == n
    t = np.array(data["time_s"])
    assert t[0] == pytest.approx(-0.625, abs=0.01) and t[-1] == pytest.approx(0.445, abs=0.01)
    assert data["beat"]["sample_index"] == int(demo_119["peaks"][i])
    # The waveform is the recording's own samples around the R peak.
    r = int(demo_119["peaks"][i])
    zero = int(np.argmin(np.abs(t)))
    assert data["waveform_mv"][0][zero] == pytest.approx(float(demo_119["leads"][0, r]), abs=1e-4)
    # Display attribution keeps the attribution mass of the model-rate one.
    assert np.sum(exp.attribution) == pytest.approx(np.sum(exp.model_attribution), rel=0.05)
    assert exp.latency_ms > 0 and exp.model_version == cnn_classifier.version


def test_the_beds_call_leads_when_the_patient_memory_changed_it(cnn_classifier, demo_119):
    i = _v_beat(demo_119)
    alone = explain_beat(cnn_classifier, demo_119["leads"], demo_119["fs"], demo_119["peaks"], i)
    assert alone.called == alone.predicted and alone.called_probabilities == alone.probabilities
    other = next(c for c in CLASSES if c != alone.predicted)
    bed_call = tuple(0.9 if c == other else 0.025 for c in CLASSES)
    exp = Explainer.from_classifier(cnn_classifier).explain(
        _request(demo_119, i, called_probabilities=bed_call, faithfulness=False)
    )
    assert exp.predicted == alone.predicted  # the network's own view is kept
    assert exp.called == other and exp.explained_class == other
    assert exp.called_probabilities[other] == pytest.approx(0.9)
    assert exp.summary.startswith(f"Called {other} (0.90) as this patient's similar earlier beats")
    assert f"this beat alone scores {alone.predicted}" in exp.summary
    data = json.loads(exp.to_json())
    assert data["called"] == other and data["predicted"] == alone.predicted
    # The bed's call follows the call rule (S over N at 3:1), and the sentence quotes its P(S).
    s_over_n = Explainer.from_classifier(cnn_classifier).explain(
        _request(
            demo_119, i, called_probabilities=(0.6, 0.35, 0.02, 0.02, 0.01), faithfulness=False
        )
    )
    assert s_over_n.called == "S" and s_over_n.summary.startswith("Called S (0.35)")
    with pytest.raises(ValueError, match="called_probabilities"):
        Explainer.from_classifier(cnn_classifier).explain(
            _request(demo_119, i, called_probabilities=(0.5, 0.5), faithfulness=False)
        )


def test_context_gives_the_classifier_its_own_inputs(cnn_classifier, demo_119):
    leads, fs, peaks = demo_119["leads"], demo_119["fs"], demo_119["peaks"]
    i = _v_beat(demo_119)
    ctx = beat_context(leads, fs, peaks, i, context_beats=None)
    whole = ft.record_beat_inputs([(np.asarray(leads, np.float32), fs, peaks)])[0]
    expected = cnn_classifier.classify_inputs(whole)[i]  # the network alone, before the memory
    got = cnn_classifier.classify_inputs(ft.BeatInputs(ctx.waves[None], ctx.scalars[None]))[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    # The template baseline is the template itself with a zero difference channel.
    bw, bs = template_baseline(ctx)
    np.testing.assert_allclose(bw[:2], ctx.template)
    assert np.all(bw[2:] == 0)
    assert ctx.waves[:2] - ctx.waves[2:] == pytest.approx(ctx.template, abs=1e-5)


def test_rr_baseline_is_a_beat_on_time():
    names = ft.RR_FEATURE_NAMES
    scalars = np.arange(1, ft.N_SCALARS + 1, dtype=np.float32)
    base = rr_baseline(scalars)
    for k, name in enumerate(names):
        if name.startswith(
            ("log pre-RR / median", "log post-RR", "log local", "log pre-RR / prev")
        ):
            assert base[k] == 0.0, name
    pre_level = names.index("log pre-RR / 0.8 s")
    assert base[pre_level] == scalars[names.index("log median RR / 0.8 s")]
    assert base[names.index("RR irregularity")] == scalars[names.index("RR irregularity")]
    assert np.array_equal(base[ft.N_RR_FEATURES :], scalars[ft.N_RR_FEATURES :])  # lead flags


def test_recent_normal_baseline_uses_beats_called_n(cnn_classifier, demo_119):
    ctx = beat_context(demo_119["leads"], demo_119["fs"], demo_119["peaks"], 40)
    k = len(ctx.history_waves)
    probs = np.zeros((k, len(CLASSES)), np.float32)
    probs[:, CLASSES.index("V")] = 1.0
    assert recent_normal_baseline(ctx, probs) is None  # nothing called N
    probs[-5:] = 0.0
    probs[-5:, 0] = 1.0
    waves, _ = recent_normal_baseline(ctx, probs)
    np.testing.assert_allclose(waves[:2], np.median(ctx.history_waves[-5:, :2], axis=0), atol=1e-6)
    np.testing.assert_allclose(waves[2:], waves[:2] - ctx.template, atol=1e-6)


def test_explainer_thread_explains_on_its_own_thread(cnn_classifier, demo_119):
    results: list[tuple[str, object, object]] = []
    finished = threading.Event()

    def done(exp, error):
        results.append((threading.current_thread().name, exp, error))
        if len(results) == 2:
            finished.set()

    worker = ExplainerThread(factory=lambda: Explainer.from_classifier(cnn_classifier))
    try:
        assert worker.wait_ready(30)
        worker.submit(_request(demo_119, _v_beat(demo_119), faithfulness=False), done)
        worker.submit(_request(demo_119, 10_000), done)  # no such beat: reported, not raised
        assert finished.wait(30)
    finally:
        worker.close()
    (name, exp, error), (_, bad, bad_error) = results
    assert name == "vigil-explain" and error is None and exp.predicted in CLASSES
    assert bad is None and isinstance(bad_error, ValueError)
    assert worker._explainer.classifier.module is not cnn_classifier.module


def test_hook_guard_removes_only_what_was_added(cnn_classifier, hooks_left):
    from explain.methods import no_leftover_hooks

    module = explained_module(cnn_classifier.module)
    keep = module.net.head[0].register_forward_hook(lambda *a: None)  # the owner's hook stays
    try:
        with pytest.raises(RuntimeError), no_leftover_hooks(module):
            module.net.head[1].register_forward_pre_hook(lambda *a: None)
            module.net.features[2].register_full_backward_hook(lambda *a: None)
            module.net.head[1].output = "scratch"  # what DeepLift leaves mid-backward
            raise RuntimeError("interrupted")
        assert hooks_left(module) == ["net.head.0._forward_hooks"]
    finally:
        keep.remove()
    assert hooks_left(module) == []


def test_importing_explain_pulls_in_no_qt_torch_or_captum():
    import subprocess
    import sys

    code = (
        "import sys, explain, explain.attribute, explain.methods, explain.context, "
        "explain.segments, "
        "explain.faithfulness, explain.rhythm, explain.worker, explain.cli\n"
        "print(sorted(m for m in ('PySide6', 'pyqtgraph', 'torch', 'captum', 'matplotlib') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
