"""Beat features: the two-pass running template equals the plain per-beat definition."""

from __future__ import annotations

import numpy as np

from inference import features as ft


def _reference_templates(
    own: np.ndarray, present: np.ndarray, state: ft.PatientState
) -> np.ndarray:
    """The template rule of the features module, one beat at a time (float32).

    Start from the first present beat; a beat whose QRS differs from the
    template by more than half the template's QRS energy leaves it alone;
    matching beats move it by 1/8 towards themselves; 12 misses in a row
    restart it from the current beat.
    """
    tmpl = state.template.astype(np.float32).copy()
    has = state.has_template.copy()
    misses = state.misses.copy()
    out = np.empty(own.shape, np.float32)
    qrs = ft.TEMPLATE_QRS
    for i in range(len(own)):
        for lead in range(ft.MAX_LEADS):
            x, ok = own[i, lead], bool(present[i, lead])
            if ok and not has[lead]:
                tmpl[lead], has[lead] = x, True
            out[i, lead] = tmpl[lead] if has[lead] else x
            d = x[qrs] - tmpl[lead, qrs]
            match = ok and float(d @ d) <= ft.TEMPLATE_MATCH_LIMIT * float(
                tmpl[lead, qrs] @ tmpl[lead, qrs]
            )
            if match:
                misses[lead] = 0
                tmpl[lead] += np.float32(ft.TEMPLATE_WEIGHT) * (x - tmpl[lead])
            elif ok:
                misses[lead] += 1
            if misses[lead] >= ft.TEMPLATE_RESTART_BEATS:
                tmpl[lead], misses[lead] = x, 0
    state.template, state.has_template, state.misses = tmpl, has, misses
    return out


def _beats(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Mostly one shape, some odd beats, a run of odd ones (forces a restart), gaps."""
    rng = np.random.default_rng(seed)
    t = np.arange(ft.WINDOW_SAMPLES)
    usual = np.exp(-0.5 * ((t - ft.PRE_SAMPLES) / 3.0) ** 2)
    odd = -1.5 * np.exp(-0.5 * ((t - ft.PRE_SAMPLES - 4) / 8.0) ** 2)
    own = np.empty((n, ft.MAX_LEADS, ft.WINDOW_SAMPLES), np.float32)
    for i in range(n):
        shape = odd if (rng.random() < 0.15 or 40 <= i < 60) else usual
        own[i] = shape * np.array([1.0, 0.5])[:, None] + rng.normal(0, 0.05, own.shape[1:])
    present = np.ones((n, ft.MAX_LEADS), bool)
    present[:5, 1] = False  # second lead starts late
    present[70:80, 0] = False  # first lead drops out for a while
    own[~present] = 0.0
    return own, present


def test_two_pass_template_equals_per_beat_rule() -> None:
    own, present = _beats(120, seed=4)
    ref_state, state = ft.PatientState(), ft.PatientState()
    ref = _reference_templates(own, present, ref_state)
    got = ft._advance_templates(own[None], present[None], [state])[0]
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(state.template, ref_state.template, atol=1e-5)
    np.testing.assert_array_equal(state.misses, ref_state.misses)
    np.testing.assert_array_equal(state.has_template, ref_state.has_template)


def test_template_state_carries_across_calls_and_patients() -> None:
    a, pa = _beats(90, seed=5)
    b, pb = _beats(90, seed=6)
    fresh = [ft.PatientState(), ft.PatientState()]
    whole = ft._advance_templates(np.stack([a, b]), np.stack([pa, pb]), fresh)
    states = [ft.PatientState(), ft.PatientState()]
    parts = [
        ft._advance_templates(np.stack([a[s:e], b[s:e]]), np.stack([pa[s:e], pb[s:e]]), states)
        for s, e in ((0, 33), (33, 34), (34, 90))
    ]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), whole, atol=1e-5)


def test_rr_features_same_for_any_target_order() -> None:
    rng = np.random.default_rng(8)
    peaks = np.cumsum(rng.integers(200, 400, size=600))
    every = ft.rr_features(peaks, 360.0, np.arange(600), int(peaks[-1]) + 100)
    scattered = np.array([0, 5, 31, 32, 300, 599])
    got = ft.rr_features(peaks, 360.0, scattered, int(peaks[-1]) + 100)
    np.testing.assert_array_equal(got, every[scattered])
    np.testing.assert_array_equal(
        ft.rr_features(peaks, 360.0, np.arange(250, 420), int(peaks[-1]) + 100), every[250:420]
    )


def test_template_is_the_same_wherever_calls_split_the_beats() -> None:
    # Cut next to every beat of the odd run, so a restart falls on a call's last beat,
    # on its only beat and on its first.
    own, present = _beats(90, seed=9)
    whole_state = ft.PatientState()
    whole = ft._advance_templates(own[None], present[None], [whole_state])[0]
    for cut in range(38, 66):
        state = ft.PatientState()
        parts = [
            ft._advance_templates(own[None, a:b], present[None, a:b], [state])[0]
            for a, b in ((0, cut), (cut, cut + 1), (cut + 1, 90))
        ]
        np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-5, err_msg=f"cut {cut}")
        np.testing.assert_array_equal(state.match_template, whole_state.match_template)
        np.testing.assert_array_equal(state.misses, whole_state.misses)
