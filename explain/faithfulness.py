"""Does an explanation reflect what the model used? Three checks stored with each one.

* **Deletion** (Samek et al., "Evaluating the visualization of what a deep
  neural network has learned", IEEE TNNLS 28(11), 2017; Petsiuk et al., RISE,
  BMVC 2018): replace the inputs in order of attribution (most supporting
  first) by their baseline values, i.e. move those samples onto the patient's
  usual beat, and follow the probability of the explained class. A faithful
  explanation makes it fall fast: a small area under the curve compared with
  random deletion orders.
* **Infidelity** (Yeh et al., "On the (in)fidelity and sensitivity of
  explanations", NeurIPS 2019) via ``captum.metrics.infidelity``: how well
  attributions predict the output change when the inputs move a small random
  fraction of the way to the baseline (normalised; 0 is perfect).
* **Model randomisation** (Adebayo et al., "Sanity checks for saliency maps",
  NeurIPS 2018): attributions of the same network with re-initialised weights
  should differ; we report the Spearman rank correlation of the absolute
  attributions (near 0 passes, near 1 means the map does not depend on what
  the model learned).

A deletion "unit" is one lead at one model sample (its waveform channel and
its template-difference channel move together, so the model always sees a
consistent beat) or one RR feature.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

import numpy as np

if TYPE_CHECKING:
    import torch

DELETION_STEPS: Final = 20
RANDOM_SEEDS: Final = 5
INFIDELITY_SAMPLES: Final = 16
INFIDELITY_NOISE: Final = 0.1  # s.d. of the fraction moved toward the baseline
RANDOMISATION_SEED: Final = 2018  # any fixed seed; 0 would repeat torch.manual_seed(0) inits

#: ``predict(waves_by_lead (B, leads, 2, T), scalars (B, S)) -> probabilities (B, classes)``
Predict = Callable[[np.ndarray, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class DeletionResult:
    """Deletion curves of one explanation (probability of the explained class)."""

    fraction: np.ndarray
    curve: np.ndarray
    random_curve: np.ndarray
    auc: float
    random_auc: float


def _auc(fraction: np.ndarray, curve: np.ndarray) -> float:
    return float(np.sum(0.5 * (curve[1:] + curve[:-1]) * np.diff(fraction)))


def deletion_test(
    predict: Predict,
    waves: np.ndarray,
    scalars: np.ndarray,
    baseline_waves: np.ndarray,
    baseline_scalars: np.ndarray,
    unit_wave_attribution: np.ndarray,
    scalar_attribution: np.ndarray,
    target: int,
    *,
    wave_units: np.ndarray | None = None,
    scalar_units: np.ndarray | None = None,
    steps: int = DELETION_STEPS,
    seeds: int = RANDOM_SEEDS,
) -> DeletionResult:
    """Deletion curve in attribution order against random orders.

    Parameters
    ----------
    predict
        Batch probabilities of the model under test.
    waves, baseline_waves
        ``(leads, 2, T)``: per lead its waveform and template-difference rows.
    scalars, baseline_scalars
        ``(S,)`` scalar inputs and their baseline.
    unit_wave_attribution
        ``(leads, T)`` attribution per unit (both rows of a lead added).
    scalar_attribution
        ``(S,)`` attribution per scalar.
    target
        Class whose probability is followed.
    wave_units, scalar_units
        Boolean masks of the units that take part (default: every wave unit,
        the scalars that differ from their baseline).
    steps
        Points of the curve after the start (fractions ``0, 1/steps, …, 1``).
    seeds
        Random orders averaged for the reference curve.

    Returns
    -------
    DeletionResult
    """
    n_leads, _, n_t = waves.shape
    if wave_units is None:
        wave_units = np.ones((n_leads, n_t), dtype=bool)
    if scalar_units is None:
        scalar_units = ~np.isclose(scalars, baseline_scalars)
    w_idx = np.flatnonzero(wave_units.ravel())
    s_idx = np.flatnonzero(scalar_units)
    score = np.concatenate([unit_wave_attribution.ravel()[w_idx], scalar_attribution[s_idx]])
    n_units = len(score)
    fraction = np.linspace(0.0, 1.0, steps + 1)
    counts = np.round(fraction * n_units).astype(int)
    # Ties (e.g. zero attribution) are broken at random so they cost nothing either way.
    tie_break = np.random.default_rng(0).random(n_units)
    orders = [np.lexsort((tie_break, -score))]
    rng = np.random.default_rng(12345)
    orders += [rng.permutation(n_units) for _ in range(seeds)]
    batch_w = np.repeat(waves[None], len(orders) * len(counts), axis=0)
    batch_s = np.repeat(scalars[None], len(orders) * len(counts), axis=0)
    for o, order in enumerate(orders):
        # rank[u] = position of unit u in this order; delete units ranked below the count.
        rank = np.empty(n_units, dtype=int)
        rank[order] = np.arange(n_units)
        for c, count in enumerate(counts):
            row = o * len(counts) + c
            gone = rank < count
            wave_gone = np.zeros(n_leads * n_t, dtype=bool)
            wave_gone[w_idx] = gone[: len(w_idx)]
            wave_gone = wave_gone.reshape(n_leads, n_t)
            batch_w[row] = np.where(wave_gone[:, None, :], baseline_waves, waves)
            s_gone = s_idx[gone[len(w_idx) :]]
            batch_s[row, s_gone] = baseline_scalars[s_gone]
    probs = predict(batch_w, batch_s)[:, target].reshape(len(orders), len(counts))
    curve, random_curve = probs[0], probs[1:].mean(axis=0)
    return DeletionResult(
        fraction, curve, random_curve, _auc(fraction, curve), _auc(fraction, random_curve)
    )


def infidelity_score(
    forward: Callable[..., torch.Tensor],
    inputs: tuple[torch.Tensor, torch.Tensor],
    baselines: tuple[torch.Tensor, torch.Tensor],
    attributions: tuple[torch.Tensor, torch.Tensor],
    target: int,
    *,
    scalar_noise_mask: torch.Tensor,
    n_samples: int = INFIDELITY_SAMPLES,
    noise: float = INFIDELITY_NOISE,
    seed: int = 0,
) -> float:
    """Captum's normalised infidelity under random partial moves toward the baseline.

    Each unit moves a random fraction ``eps ~ N(0, noise²)`` of the way to its
    baseline, ``x' = x - eps (x - b)``, and ``eps`` is the perturbation the
    attributions are scored against: for attributions that sum to the output
    change from the baseline (IG, DeepLift) on a linear model this is exact,
    so infidelity is 0. A lead's waveform and template-difference rows share
    one ``eps`` per sample (the template does not move); RR features move
    where ``scalar_noise_mask`` is 1, lead-presence flags never.
    """
    import torch
    from captum.metrics import infidelity

    gen = torch.Generator().manual_seed(seed)

    def perturb(
        inputs: tuple[torch.Tensor, torch.Tensor], baselines: tuple[torch.Tensor, torch.Tensor]
    ):
        (waves, scalars), (b_waves, b_scalars) = inputs, baselines
        eps_w = (torch.randn(waves[:, :, :1].shape, generator=gen) * noise).expand_as(waves)
        eps_s = torch.randn(scalars.shape, generator=gen) * noise * scalar_noise_mask
        moved = (waves - eps_w * (waves - b_waves), scalars - eps_s * (scalars - b_scalars))
        return (eps_w.contiguous(), eps_s), moved

    with torch.no_grad():
        value = infidelity(
            forward,
            perturb,
            inputs,
            attributions,
            baselines=baselines,
            target=target,
            n_perturb_samples=n_samples,
            normalize=True,
        )
    return float(value.reshape(-1)[0])


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of ``|a|`` and ``|b|`` (NaN when either is constant)."""
    from scipy.stats import spearmanr

    x, y = np.abs(np.ravel(a)), np.abs(np.ravel(b))
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(spearmanr(x, y).statistic)


def randomised_copy(module: torch.nn.Module, seed: int = RANDOMISATION_SEED) -> torch.nn.Module:
    """A deep copy of ``module`` with every weight re-drawn (eval mode, no grads).

    Weights and biases are drawn uniformly in ``±1/sqrt(fan_in)`` from a private
    generator (the process-wide torch random stream is left alone, other
    threads may use it); normalisation layers go back to identity.
    """
    import torch

    clone = copy.deepcopy(module)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in clone.modules():
            if isinstance(m, torch.nn.modules.batchnorm._NormBase):
                m.reset_parameters()  # weight 1, bias 0, running mean 0 / var 1: no randomness
                continue
            weight = getattr(m, "weight", None)
            fan_in = (
                weight[0].numel() if isinstance(weight, torch.Tensor) and weight.dim() > 1 else 1
            )
            bound = 1.0 / fan_in**0.5
            for p in m.parameters(recurse=False):
                p.copy_((torch.rand(p.shape, generator=gen) * 2.0 - 1.0) * bound)
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone.eval()
