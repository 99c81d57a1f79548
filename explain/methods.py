"""Captum's attribution methods on the beat network: one call, no hooks left behind.

:func:`attribute` runs Integrated Gradients, DeepLift or Occlusion on an
:func:`explained_module` (the beat network seen through a lead-major layout)
for one beat against one baseline. Whatever a method does to the module
(Captum's DeepLift registers hooks), the module is left without hooks
afterwards, also when the method raises (:func:`no_leftover_hooks`).
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

from explain.context import by_channel, by_lead

if TYPE_CHECKING:
    import torch

METHODS: Final = ("ig", "deeplift", "occlusion")
OUTPUTS: Final = ("logit", "probability")
IG_STEPS: Final = 32
OCCLUSION_WINDOW_SAMPLES: Final = 8  # 62.5 ms at the model rate
OCCLUSION_STRIDE_SAMPLES: Final = 4
OCCLUSION_PER_EVAL: Final = 64
_HOOK_DICTS: Final = (
    "_forward_hooks",
    "_forward_pre_hooks",
    "_backward_hooks",
    "_backward_pre_hooks",
    "_forward_hooks_with_kwargs",
    "_forward_hooks_always_called",
    "_forward_pre_hooks_with_kwargs",
)
_CAPTUM_SCRATCH: Final = ("input", "output", "input_ref")

# DeepLift says on every call that it sets (and removes) hooks; we check that ourselves.
# A process-wide filter: warnings.catch_warnings() is not thread-safe.
warnings.filterwarnings("ignore", message="Setting forward, backward hooks", category=UserWarning)


@dataclass(frozen=True)
class Attribution:
    """Raw attributions of one beat.

    ``waves`` is ``(4, WINDOW_SAMPLES)`` in the model's channel order (lead 1,
    lead 2, lead 1 − template, lead 2 − template); ``scalars`` ``(N_SCALARS,)``.
    ``delta`` is the completeness gap: sum of attributions minus the output change.
    """

    waves: np.ndarray
    scalars: np.ndarray
    output: float
    baseline_output: float
    delta: float


# ------------------------------------------------------------------ torch side


@functools.cache
def _explained_module_class() -> type:
    """The wrapper module, defined on first use so importing this module skips torch."""
    from torch import nn

    class ExplainedBeatModel(nn.Module):
        """The beat network seen through a lead-major layout; optionally softmax output."""

        def __init__(self, net: nn.Module, output: str) -> None:
            super().__init__()
            self.net = net
            self.softmax = nn.Softmax(dim=1) if output == "probability" else None

        def forward(self, waves: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
            b, leads, kinds, t = waves.shape
            out = self.net(waves.transpose(1, 2).reshape(b, leads * kinds, t), scalars)
            return self.softmax(out) if self.softmax is not None else out

    return ExplainedBeatModel


def explained_module(net: torch.nn.Module, output: str = "logit") -> torch.nn.Module:
    """Wrap a beat network ``net(waves (B,4,T), scalars)`` for attribution."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
    return _explained_module_class()(net, output).eval()


@contextlib.contextmanager
def no_leftover_hooks(module: torch.nn.Module) -> Iterator[None]:
    """Remove every hook and Captum scratch attribute added to ``module`` inside the block."""
    before = {
        id(m): ({name: set(getattr(m, name, {}).keys()) for name in _HOOK_DICTS}, set(vars(m)))
        for m in module.modules()
    }
    try:
        yield
    finally:
        for m in module.modules():
            hooks, attrs = before.get(id(m), ({}, set()))
            for name in _HOOK_DICTS:
                d = getattr(m, name, None)
                if d:
                    for key in [k for k in d if k not in hooks.get(name, set())]:
                        del d[key]
            for attr in _CAPTUM_SCRATCH:
                if attr in vars(m) and attr not in attrs:
                    delattr(m, attr)


def attribute(
    module: torch.nn.Module,
    waves: np.ndarray,
    scalars: np.ndarray,
    baseline_waves: np.ndarray,
    baseline_scalars: np.ndarray,
    target: int,
    *,
    method: str = "ig",
    n_steps: int = IG_STEPS,
) -> Attribution:
    """Attribute one output of ``module`` to its inputs, against a baseline.

    Parameters
    ----------
    module
        An :func:`explained_module` (lead-major inputs).
    waves, baseline_waves
        ``(4, T)`` model channels.
    scalars, baseline_scalars
        ``(N_SCALARS,)``.
    target
        Index of the output explained.
    method
        ``"ig"``, ``"deeplift"`` or ``"occlusion"``.
    n_steps
        Integration steps of Integrated Gradients.

    Returns
    -------
    Attribution
    """
    import torch
    from captum.attr import DeepLift, IntegratedGradients, Occlusion

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    x = (
        torch.from_numpy(by_lead(waves)[None].copy()).requires_grad_(method != "occlusion"),
        torch.from_numpy(scalars[None].copy()).requires_grad_(method != "occlusion"),
    )
    b = (
        torch.from_numpy(by_lead(baseline_waves)[None].copy()),
        torch.from_numpy(baseline_scalars[None].copy()),
    )
    with no_leftover_hooks(module), torch.enable_grad():
        if method == "ig":
            attrs = IntegratedGradients(module).attribute(
                x, baselines=b, target=target, n_steps=n_steps, method="gausslegendre"
            )
        elif method == "deeplift":
            attrs = DeepLift(module).attribute(x, baselines=b, target=target)
        else:
            window = (1, 2, OCCLUSION_WINDOW_SAMPLES)
            stride = (1, 2, OCCLUSION_STRIDE_SAMPLES)
            attrs = Occlusion(module).attribute(
                x,
                sliding_window_shapes=(window, (1,)),
                strides=(stride, 1),
                baselines=b,
                target=target,
                perturbations_per_eval=OCCLUSION_PER_EVAL,
            )
        with torch.no_grad():
            out = module(*x)[0, target].item()  # fmt: skip
            base_out = module(*b)[0, target].item()
    a_w = by_channel(attrs[0][0].detach().numpy().astype(np.float64))
    a_s = attrs[1][0].detach().numpy().astype(np.float64)
    delta = float(a_w.sum() + a_s.sum() - (out - base_out))
    return Attribution(a_w, a_s, out, base_out, delta)


# ------------------------------------------------------------------ explainer
