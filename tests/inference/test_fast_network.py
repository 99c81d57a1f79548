"""The fast inference form of a beat network gives the network's own logits."""

from __future__ import annotations

import numpy as np
import pytest

from inference import features as ft
from inference.beats import BeatCNNConfig, build_beat_cnn
from inference.fast_network import FastNetwork

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _trained_looking_network():
    import torch

    torch.manual_seed(5)
    net = build_beat_cnn(BeatCNNConfig())
    with torch.no_grad():  # BatchNorm statistics far from identity, as after training
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.5, 0.5)
                m.running_var.uniform_(0.3, 3.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    return net.eval()


@pytest.mark.parametrize("blocked", [True, False])
def test_fast_network_equals_the_network(blocked: bool) -> None:
    import torch

    net = _trained_looking_network()
    fast = FastNetwork(net)
    if blocked:
        assert fast.blocked is not None  # oneDNN is part of the pinned CPU torch on x86
    else:
        fast.blocked = None
    rng = np.random.default_rng(0)
    for n in (1, 7, 300):
        waves = torch.from_numpy(
            rng.normal(size=(n, ft.N_WAVE_CHANNELS, ft.WINDOW_SAMPLES)).astype(np.float32)
        )
        scalars = torch.from_numpy(rng.normal(size=(n, ft.N_SCALARS)).astype(np.float32))
        with torch.inference_mode():
            want = net(waves, scalars).numpy()
            got = fast(waves, scalars).numpy()
        np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)


def test_the_network_itself_is_left_unchanged() -> None:
    net = _trained_looking_network()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    FastNetwork(net)
    assert all((net.state_dict()[k] == v).all() for k, v in before.items())
    assert any("BatchNorm" in type(m).__name__ for m in net.modules())
