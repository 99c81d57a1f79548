"""Faithfulness checks on toy models whose important inputs are known."""

from __future__ import annotations

import numpy as np
import pytest

from explain import faithfulness as fa
from explain.methods import attribute, explained_module
from inference import features as ft

T = ft.WINDOW_SAMPLES
IMPORTANT = slice(74, 92)  # the "QRS" of the toy: the only samples the toy model reads


def _toy_predict(waves_by_lead: np.ndarray, scalars: np.ndarray) -> np.ndarray:
    """Two-class softmax; class 1's logit is the lead-1 signal summed over IMPORTANT."""
    logit = 1.5 * waves_by_lead[:, 0, 0, IMPORTANT].sum(axis=1) - 8.0
    p1 = 1.0 / (1.0 + np.exp(-logit))
    return np.stack([1 - p1, p1], axis=1)


def _toy_inputs():
    rng = np.random.default_rng(0)
    waves = rng.normal(0, 0.05, size=(2, 2, T))
    waves[0, 0, IMPORTANT] += 1.0  # a big beat where it matters
    base = np.zeros_like(waves)
    scalars = np.zeros(ft.N_SCALARS)
    return waves, scalars, base, scalars.copy()


def test_deletion_by_true_importance_is_far_below_random():
    waves, scalars, base, bscal = _toy_inputs()
    truth = np.zeros((2, T))
    truth[0, IMPORTANT] = 1.5 * waves[0, 0, IMPORTANT]  # exact attribution of the logit
    res = fa.deletion_test(
        _toy_predict, waves, scalars, base, bscal, truth, np.zeros_like(scalars), 1
    )
    assert res.curve[0] == pytest.approx(res.random_curve[0]) and res.curve[0] > 0.99
    assert res.curve[-1] == pytest.approx(res.random_curve[-1])  # all deleted: the baseline
    assert res.auc < 0.2 * res.random_auc
    # The reverse order (least important first) is no better than random.
    worst = fa.deletion_test(
        _toy_predict, waves, scalars, base, bscal, -truth, np.zeros_like(scalars), 1
    )
    assert worst.auc >= res.random_auc


def test_deletion_of_ig_attributions_on_a_linear_model(make_linear):
    import torch

    net = make_linear(seed=4, n_classes=2)
    with torch.no_grad():
        net.w.zero_()
        net.w[1].view(ft.N_WAVE_CHANNELS, T)[0, IMPORTANT] = 1.0
        net.b[1] = -8.0
        net.v.zero_()
    module = explained_module(net)
    waves, scalars, base, bscal = _toy_inputs()
    chan = waves.transpose(1, 0, 2).reshape(4, T).astype(np.float32)  # lead-major → channels
    a = attribute(module, chan, scalars.astype(np.float32), np.zeros_like(chan),
                  bscal.astype(np.float32), 1, method="ig")  # fmt: skip

    def predict(w: np.ndarray, s: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            out = module(
                torch.from_numpy(w.astype(np.float32)), torch.from_numpy(s.astype(np.float32))
            )
            return torch.softmax(out, dim=1).numpy()

    unit = a.waves[:2] + a.waves[2:]
    res = fa.deletion_test(predict, waves, scalars, base, bscal, unit, a.scalars, 1)
    assert res.auc <= 0.5 * res.random_auc


def test_infidelity_prefers_the_true_attribution(make_linear):
    import torch

    net = make_linear(seed=5)
    module = explained_module(net)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, T)).astype(np.float32)
    s = rng.normal(size=ft.N_SCALARS).astype(np.float32)
    zeros, zs = np.zeros_like(x), np.zeros_like(s)
    a = attribute(module, x, s, zeros, zs, 0, method="ig")
    inputs = (
        torch.from_numpy(x.reshape(2, 2, T).swapaxes(0, 1)[None].copy()),
        torch.from_numpy(s[None]),
    )
    base = (torch.zeros_like(inputs[0]), torch.zeros_like(inputs[1]))
    mask = torch.zeros(ft.N_SCALARS)
    mask[: ft.N_RR_FEATURES] = 1

    def score(waves_attr: np.ndarray, scal_attr: np.ndarray) -> float:
        lead_major = waves_attr.reshape(2, 2, T).swapaxes(0, 1)[None].astype(np.float32)
        attrs = (
            torch.from_numpy(lead_major.copy()),
            torch.from_numpy(scal_attr[None].astype(np.float32)),
        )
        return fa.infidelity_score(module, inputs, base, attrs, 0, scalar_noise_mask=mask)

    good = score(a.waves, a.scalars)
    shuffled = score(
        rng.permutation(a.waves.ravel()).reshape(a.waves.shape), rng.permutation(a.scalars)
    )
    assert good < 1e-6 < 0.01 * shuffled  # exact on a linear model


def test_rank_correlation():
    rng = np.random.default_rng(0)
    a = rng.normal(size=500)
    assert fa.rank_correlation(a, 3 * a) == pytest.approx(1.0)
    assert fa.rank_correlation(a, -a) == pytest.approx(1.0)  # magnitudes are ranked
    assert abs(fa.rank_correlation(a, rng.normal(size=500))) < 0.15
    assert np.isnan(fa.rank_correlation(np.zeros(5), a[:5]))


def test_randomised_copy_changes_weights_but_not_the_original_or_the_rng(cnn_classifier):
    import torch

    original = {k: v.clone() for k, v in cnn_classifier.module.state_dict().items()}
    state = torch.random.get_rng_state()
    clone = fa.randomised_copy(cnn_classifier.module)
    assert torch.equal(state, torch.random.get_rng_state())
    for k, v in cnn_classifier.module.state_dict().items():
        assert torch.equal(v, original[k])
    changed = [
        k for k, p in clone.named_parameters()
        if not torch.equal(p, dict(cnn_classifier.module.named_parameters())[k])
    ]  # fmt: skip
    conv_and_linear = [k for k, p in clone.named_parameters() if p.dim() > 1]
    assert set(conv_and_linear) <= set(changed)
    assert not any(p.requires_grad for p in clone.parameters())
    again = fa.randomised_copy(cnn_classifier.module)
    assert all(
        torch.equal(a, b) for a, b in zip(clone.parameters(), again.parameters(), strict=True)
    )
