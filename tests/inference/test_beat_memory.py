"""Patient beat memory: look-alike beats refine V and F, earlier beats only."""

from __future__ import annotations

import numpy as np
import pytest

from inference import features as ft
from inference.beat_memory import SHAPE_SAMPLES, PatientBeatMemory, qrs_shapes

RNG = np.random.default_rng(7)


def _waves(shape_id: np.ndarray, noise: float = 0.01, rng: np.random.Generator = RNG) -> np.ndarray:
    """Model inputs whose QRS part is one of two clearly different shapes."""
    t = np.linspace(-1.0, 1.0, SHAPE_SAMPLES.stop - SHAPE_SAMPLES.start)
    narrow = np.exp(-((t / 0.1) ** 2))
    wide = -0.8 * np.exp(-((t / 0.45) ** 2))
    waves = np.zeros((len(shape_id), 2 * ft.MAX_LEADS, ft.WINDOW_SAMPLES), np.float32)
    for i, s in enumerate(shape_id):
        waves[i, 0, SHAPE_SAMPLES] = (wide if s else narrow) + noise * rng.standard_normal(len(t))
    return waves


def _probs(p_v: np.ndarray) -> np.ndarray:
    p = np.zeros((len(p_v), 5), np.float32)
    p[:, 2] = p_v
    p[:, 0] = 1.0 - p_v
    return p


def test_first_beat_keeps_the_model_call() -> None:
    memory = PatientBeatMemory()
    p = _probs(np.array([0.3]))
    np.testing.assert_allclose(memory.refine(_waves(np.array([1])), p), p)
    assert len(memory) == 1


def test_look_alikes_lift_a_doubtful_ventricular_beat() -> None:
    memory = PatientBeatMemory(neighbour_beats=10, model_weight=0.2)
    shapes = np.array([1] * 10 + [0] * 30)  # ten wide beats the model called V, thirty narrow N
    memory.refine(_waves(shapes), _probs(np.where(shapes == 1, 0.9, 0.02)))
    out = memory.refine(_waves(np.array([1])), _probs(np.array([0.3])))[0]
    v = 0.2 * 0.3 + 0.8 * 0.9
    expected = np.array([0.7, 0, v, 0, 0]) / (0.7 + v)
    np.testing.assert_allclose(out, expected, rtol=1e-5)
    assert out.argmax() == 2


def test_an_odd_narrow_beat_is_pulled_back_to_normal() -> None:
    memory = PatientBeatMemory()
    memory.refine(_waves(np.zeros(50, int)), _probs(np.full(50, 0.03)))
    out = memory.refine(_waves(np.array([0])), _probs(np.array([0.6])))[0]
    assert out.argmax() == 0
    # N and S keep their ratio; the row still sums to 1
    assert out.sum() == pytest.approx(1.0, abs=1e-6)


def test_only_v_and_f_are_refined() -> None:
    memory = PatientBeatMemory()
    p = np.tile(np.array([[0.5, 0.4, 0.05, 0.03, 0.02]], np.float32), (20, 1))
    memory.refine(_waves(np.zeros(20, int)), p)
    q = np.array([[0.2, 0.7, 0.05, 0.03, 0.02]], np.float32)
    out = memory.refine(_waves(np.array([0])), q)[0]
    assert out[1] / out[0] == pytest.approx(0.7 / 0.2, rel=1e-5)
    assert out[4] / out[0] == pytest.approx(0.02 / 0.2, rel=1e-5)


@pytest.mark.parametrize(
    ("odd_share", "noise", "memory_beats", "cuts"),
    [
        # Two clearly different shapes; cuts before and after the memory fills.
        (0.5, 0.1, 64, [0, 1, 7, 80, 81, 200, 300]),
        # One shape plus a little noise, like a patient's normal beats: the ranking of
        # near-equal distances must not hang on rounding that changes with batch size.
        (0.0, 0.002, 128, [0, 50, 89, 90, 200, 201, 300]),
    ],
)
def test_results_do_not_depend_on_how_beats_are_batched(
    odd_share: float, noise: float, memory_beats: int, cuts: list[int]
) -> None:
    rng = np.random.default_rng(12)  # its own data, whatever ran before
    shapes = (rng.uniform(0, 1, 300) < odd_share).astype(int)
    waves = _waves(shapes, noise=noise, rng=rng)
    probs = _probs(rng.uniform(0, 1, 300).astype(np.float32))
    whole = PatientBeatMemory(memory_beats=memory_beats).refine(waves, probs)
    memory = PatientBeatMemory(memory_beats=memory_beats)
    parts = [memory.refine(waves[a:b], probs[a:b]) for a, b in zip(cuts, cuts[1:], strict=False)]
    np.testing.assert_allclose(np.vstack(parts), whole, rtol=0, atol=1e-6)


def test_beats_without_a_shape_keep_the_network_call_in_any_batching() -> None:
    # Both leads absent: every such beat is all zeros, so they all tie at distance 0.
    waves = np.zeros((300, 2 * ft.MAX_LEADS, ft.WINDOW_SAMPLES), np.float32)
    probs = _probs(RNG.uniform(0, 1, 300).astype(np.float32))
    whole = PatientBeatMemory(memory_beats=128).refine(waves, probs)
    memory = PatientBeatMemory(memory_beats=128)
    parts = [memory.refine(waves[a : a + 7], probs[a : a + 7]) for a in range(0, 300, 7)]
    np.testing.assert_allclose(whole, probs, atol=1e-6)
    np.testing.assert_allclose(np.vstack(parts), whole, atol=1e-6)


def test_beats_older_than_the_memory_are_forgotten() -> None:
    memory = PatientBeatMemory(memory_beats=20, neighbour_beats=5, model_weight=0.0)
    memory.refine(_waves(np.ones(5, int)), _probs(np.full(5, 0.95)))  # wide, called V, long ago
    memory.refine(_waves(np.ones(20, int)), _probs(np.full(20, 0.0)))  # then 20 wide called N
    assert len(memory) == 20
    out = memory.refine(_waves(np.array([1])), _probs(np.array([0.5])))[0]
    assert out[2] == pytest.approx(0.0, abs=1e-6)  # only the 20 recent look-alikes count


def test_a_shape_never_seen_before_keeps_the_network_call() -> None:
    memory = PatientBeatMemory(neighbour_beats=10, model_weight=0.2)
    memory.refine(_waves(np.zeros(60, int)), _probs(np.full(60, 0.01)))  # narrow N beats only
    first_pvc = memory.refine(_waves(np.array([1])), _probs(np.array([0.9])))[0]
    np.testing.assert_allclose(first_pvc, _probs(np.array([0.9]))[0], rtol=1e-6)
    # Two more of that shape: the fourth has three look-alikes and seven slots of its own.
    memory.refine(_waves(np.ones(2, int)), _probs(np.array([0.9, 0.9])))
    fourth = memory.refine(_waves(np.array([1])), _probs(np.array([0.5])))[0]
    v = 0.5 + 0.8 * (3 / 10) * (0.9 - 0.5)
    np.testing.assert_allclose(fourth[2], v / (0.5 + v), rtol=1e-5)


def test_absent_lead_and_nan_do_not_poison_the_memory() -> None:
    waves = _waves(np.zeros(12, int))
    waves[3, 0, SHAPE_SAMPLES.start + 4] = np.nan
    assert np.isfinite(qrs_shapes(waves)).all()
    out = PatientBeatMemory().refine(waves, _probs(np.full(12, 0.1)))
    assert np.isfinite(out).all()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="waveforms for"):
        PatientBeatMemory().refine(_waves(np.zeros(3, int)), _probs(np.zeros(2)))
    with pytest.raises(ValueError, match="at least 1"):
        PatientBeatMemory(memory_beats=0)
    with pytest.raises(ValueError, match="model_weight"):
        PatientBeatMemory(model_weight=1.5)
