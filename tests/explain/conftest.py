"""Shared fixtures of the explanation tests: tiny analytic models, a random beat CNN,
real demo records and the shipped weights (when present)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import wfdb

from inference import features as ft
from inference.beats import AAMI_CLASS_OF_SYMBOL, BeatClassifier, BeatCNNConfig, build_beat_cnn

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "resources" / "demo"
SHIPPED = ROOT / "resources" / "models" / "beatcnn.safetensors"


@pytest.fixture(scope="session", autouse=True)
def _explain_on_one_torch_thread(one_torch_thread):
    """Like the explain thread: one torch thread (tests/conftest.py)."""


def linear_net(seed: int = 0, n_classes: int = 5):
    """``logits = W · waves + V · scalars + b``: every attribution method is exact on it."""
    import torch
    from torch import nn

    class LinearBeat(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            gen = torch.Generator().manual_seed(seed)
            n_wave = ft.N_WAVE_CHANNELS * ft.WINDOW_SAMPLES
            self.w = nn.Parameter(torch.randn(n_classes, n_wave, generator=gen) * 0.05)
            self.v = nn.Parameter(torch.randn(n_classes, ft.N_SCALARS, generator=gen) * 0.5)
            self.b = nn.Parameter(torch.randn(n_classes, generator=gen))

        def forward(self, waves: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
            return waves.flatten(1) @ self.w.T + scalars @ self.v.T + self.b

    return LinearBeat().eval()


def as_classifier(module) -> BeatClassifier:
    """A classifier around any ``module(waves, scalars)`` (tests only)."""
    return BeatClassifier(module, BeatCNNConfig(), {"model_version": "test"}, "ab" * 32)


def random_cnn(seed: int = 0):
    """The real beat CNN architecture with random weights and non-trivial BatchNorm statistics."""
    import torch

    torch.manual_seed(seed)
    net = build_beat_cnn(BeatCNNConfig())
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.copy_(torch.randn(m.num_features, generator=gen) * 0.1)
                m.running_var.copy_(torch.rand(m.num_features, generator=gen) + 0.5)
    return net.eval()


def random_ensemble(seed: int = 0, members: int = 3):
    """The shipped model's shape: ``members`` random beat CNNs averaged."""
    from inference.beats import ensemble_of

    config = BeatCNNConfig(members=members)
    return ensemble_of(config, [random_cnn(seed + m) for m in range(members)])


@pytest.fixture(scope="session")
def cnn_classifier() -> BeatClassifier:
    return as_classifier(random_cnn())


@pytest.fixture(scope="session")
def ensemble_classifier() -> BeatClassifier:
    return as_classifier(random_ensemble())


@pytest.fixture(scope="session")
def demo_119() -> dict:
    """First 90 s of MIT-BIH 119 (MLII, V1) with its reference beats (real WFDB files)."""
    fs = 360.0
    stop = int(90 * fs)
    rec = wfdb.rdrecord(str(DEMO / "119"), sampto=stop)
    ann = wfdb.rdann(str(DEMO / "119"), "atr", sampto=stop)
    keep = [i for i, s in enumerate(ann.symbol) if s in AAMI_CLASS_OF_SYMBOL]
    return {
        "leads": rec.p_signal.T.astype(np.float32),
        "fs": fs,
        "peaks": np.asarray(ann.sample, dtype=np.int64)[keep],
        "labels": np.array([AAMI_CLASS_OF_SYMBOL[ann.symbol[i]] for i in keep]),
        "labels_raw": [rec.sig_name[0], rec.sig_name[1]],
    }


@pytest.fixture(scope="session")
def shipped_model() -> Path:
    if not SHIPPED.is_file():
        pytest.skip(f"shipped beat model not present at {SHIPPED} (training not finished)")
    return SHIPPED


def all_hooks(module) -> list[str]:
    """Every hook or Captum scratch attribute left on any submodule."""
    left = []
    for name, m in module.named_modules():
        for attr in ("_forward_hooks", "_forward_pre_hooks", "_backward_hooks",
                     "_backward_pre_hooks", "_forward_hooks_with_kwargs"):  # fmt: skip
            if getattr(m, attr, None):
                left.append(f"{name or '<root>'}.{attr}")
        for attr in ("input", "output", "input_ref"):
            if attr in vars(m):
                left.append(f"{name or '<root>'}.{attr}")
    return left


@pytest.fixture(scope="session")
def make_linear():
    """Factory of :func:`linear_net` models."""
    return linear_net


@pytest.fixture(scope="session")
def make_classifier():
    """Factory of :func:`as_classifier` wrappers."""
    return as_classifier


@pytest.fixture(scope="session")
def hooks_left():
    """:func:`all_hooks`."""
    return all_hooks
