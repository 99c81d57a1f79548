"""Delineation on synthetic beats with known waves and on real MIT-BIH beats, segment
shares, and the clinical sentence."""

from __future__ import annotations

import numpy as np
import pytest

from explain.segments import (
    Delineation,
    clinical_sentence,
    delineate,
    segment_shares,
)

FS = 360.0
BEFORE, AFTER = 225, 160  # samples around R, as the explainer's display window


def _gauss(t: np.ndarray, centre: float, sigma: float, amp: float) -> np.ndarray:
    return amp * np.exp(-0.5 * ((t - centre) / sigma) ** 2)


def synthetic_beat(
    *, p_wave: bool = True, qrs_scale: float = 1.0, noise: float = 0.01, seed: int = 0
):
    """P at -160 ms, Q-R-S around 0 (about 90 ms wide), T at +280 ms; mV at 360 Hz."""
    t = np.arange(-BEFORE, AFTER + 1) / FS
    x = _gauss(t, 0.0, 0.010 * qrs_scale, 1.2)
    x += _gauss(t, -0.022 * qrs_scale, 0.008 * qrs_scale, -0.25)
    x += _gauss(t, 0.024 * qrs_scale, 0.009 * qrs_scale, -0.35)
    x += _gauss(t, 0.28, 0.045, 0.30)
    if p_wave:
        x += _gauss(t, -0.16, 0.020, 0.15)
    x += 0.1 * t  # a little baseline drift
    x += np.random.default_rng(seed).normal(0, noise, len(t))
    return t, x[None, :]


def test_synthetic_beat_is_delineated_where_its_waves_are():
    _, x = synthetic_beat()
    d = delineate(x, FS, BEFORE, pre_rr_s=0.85, post_rr_s=0.85)
    # Each Gaussian reaches ~3 sigma from its centre: QRS about -46 … +51 ms.
    assert -0.065 <= d.qrs_on_s <= -0.030
    assert 0.030 <= d.qrs_off_s <= 0.070
    assert 70 <= d.qrs_ms <= 125
    assert d.p_present and d.p_peak_s == pytest.approx(-0.16, abs=0.01)
    # Edges at 20 % of the P's height: 1.79 sigma either side of its centre.
    assert d.p_on_s == pytest.approx(-0.196, abs=0.015)
    assert d.p_off_s == pytest.approx(-0.124, abs=0.015)
    assert 110 <= d.pr_ms <= 220
    assert d.t_peak_s == pytest.approx(0.28, abs=0.015)
    assert d.t_on_s < 0.28 < d.t_off_s <= 0.445


def test_no_p_wave_and_wide_qrs_are_seen():
    _, x = synthetic_beat(p_wave=False, qrs_scale=2.0)
    d = delineate(x, FS, BEFORE, pre_rr_s=0.85, post_rr_s=0.85)
    assert not d.p_present and d.pr_ms is None
    assert d.qrs_ms >= 140
    spans = d.spans()
    p_lo, p_hi = spans["P"]  # the expected P area, where evidence about a missing P lies
    assert p_hi <= d.qrs_on_s and p_hi - p_lo > 0.1


def test_noise_alone_is_not_a_p_wave():
    _, x = synthetic_beat(p_wave=False, noise=0.02, seed=3)
    d = delineate(x, FS, BEFORE, pre_rr_s=0.85)
    assert not d.p_present and not d.noisy


def test_a_noisy_strip_is_flagged_and_said():
    t, x = synthetic_beat()
    x = x + 0.3 * np.sin(2 * np.pi * 25.0 * t)  # muscle-like 25 Hz activity
    d = delineate(x, FS, BEFORE, pre_rr_s=0.85)
    assert d.noisy
    m = {"qrs_ms": d.qrs_ms, "rr_pre_pct": 100.0, "p_present": d.p_present, "noisy": d.noisy}
    text = clinical_sentence("N", 0.9, "N", 0.9, m, {}, {}, informative=False)
    assert text.startswith("Called N (0.90): noisy strip, measurements uncertain: QRS")


def test_the_previous_t_wave_is_not_taken_for_a_p_wave():
    t, x = synthetic_beat(p_wave=False)
    x = x + _gauss(t, -0.50 + 0.28, 0.045, 0.30)[None, :]  # previous beat 500 ms earlier
    d = delineate(x, FS, BEFORE, pre_rr_s=0.50, post_rr_s=0.85)
    assert not d.p_present
    assert d.spans()["previous"] is not None


def test_real_beats_narrow_normal_and_wide_ventricular(demo_119):
    leads, peaks, labels = demo_119["leads"], demo_119["peaks"], demo_119["labels"]
    widths: dict[str, list[float]] = {"N": [], "V": []}
    p_seen: dict[str, list[bool]] = {"N": [], "V": []}
    for k in range(1, len(peaks) - 1):
        cls = labels[k]
        r = peaks[k]
        if cls not in widths or r - BEFORE < 0 or len(widths[cls]) >= 30:
            continue
        d = delineate(
            leads[:, r - BEFORE : r + AFTER + 1], FS, BEFORE,
            pre_rr_s=(r - peaks[k - 1]) / FS, post_rr_s=(peaks[k + 1] - r) / FS,
        )  # fmt: skip
        widths[cls].append(d.qrs_ms)
        p_seen[cls].append(d.p_present)
    assert len(widths["N"]) == 30 and len(widths["V"]) >= 10
    assert np.median(widths["N"]) < 110 <= 120 < np.median(widths["V"])
    assert np.mean(p_seen["N"]) >= 0.8 and np.mean(p_seen["V"]) <= 0.1


def _delineation() -> Delineation:
    return Delineation(
        qrs_on_s=-0.05, qrs_off_s=0.06, p_present=True, p_on_s=-0.22, p_peak_s=-0.17,
        p_off_s=-0.12, t_on_s=0.16, t_peak_s=0.28, t_off_s=0.38, t_end_in_window=True,
        window_s=(-0.625, 0.445), previous_r_s=-0.8,
    )  # fmt: skip


def test_shares_sum_to_one_and_follow_the_attribution():
    d = _delineation()
    t = (np.arange(138) - 80) / 128.0
    a = np.zeros((2, len(t)))
    a[0, (t >= -0.04) & (t < 0.05)] = 1.0  # inside the QRS
    a[1, (t >= 0.25) & (t < 0.30)] = -0.5  # against, on the T wave
    rr = np.array([0.3, -0.1, 0, 0, 0, 0, 0, 0])
    shares, signed = segment_shares(t, a, rr, d)
    assert sum(shares.values()) == pytest.approx(1.0)
    total = np.abs(a).sum() + np.abs(rr).sum()
    assert shares["QRS"] == pytest.approx(np.abs(a[0]).sum() / total)
    assert shares["RR"] == pytest.approx(0.4 / total)
    assert signed["T"] < 0 and signed["QRS"] > 0
    assert shares["P"] == 0.0
    labels = d.labels(t)
    assert labels[80] == "QRS" and labels[int(80 - 0.17 * 128)] == "P"
    assert labels[0] == "previous" and labels[-1] == "other"


def test_no_attribution_gives_zero_shares():
    d = _delineation()
    t = (np.arange(138) - 80) / 128.0
    shares, _ = segment_shares(t, np.zeros((2, 138)), np.zeros(8), d)
    assert all(v == 0.0 for v in shares.values())


def test_sentence_reads_like_the_clinic():
    measurements = {"qrs_ms": 138.0, "rr_pre_pct": 62.0, "rr_post_pct": 110.0, "p_present": False,
                    "pr_ms": None, "qrs_correlation_with_usual": 0.95}  # fmt: skip
    shares = {"previous": 0.0, "P": 0.03, "PR": 0.0, "QRS": 0.71, "ST": 0.04, "T": 0.04,
              "other": 0.0, "RR": 0.18}  # fmt: skip
    text = clinical_sentence("V", 0.97, "V", 0.97, measurements, shares, shares)
    assert text == (
        "Called V (0.97): QRS wide (138 ms) and early (RR 62 % of baseline), no P wave; "
        "71 % of the evidence on the QRS, 18 % on the short RR."
    )
    normal = {
        **measurements,
        "qrs_ms": 88.0,
        "rr_pre_pct": 101.0,
        "p_present": True,
        "pr_ms": 160.0,
    }
    quiet = clinical_sentence("N", 0.99, "N", 0.99, normal, shares, shares, informative=False)
    assert quiet.startswith(
        "Called N (0.99): QRS narrow (88 ms) and on time (RR 101 % of baseline)"
    )
    assert "P wave present (PR 160 ms)" in quiet and "little evidence" in quiet
    weaker = clinical_sentence(
        "N", 0.5, "N", 0.5, normal, shares, {**shares, "QRS": -0.71}, toward=False
    )
    assert weaker.endswith(
        "less like N than the usual beat: 71 % of the evidence on the QRS, 18 % on the RR timing (for)."
    )
    against = {**shares, "T": 0.2, "QRS": 0.55}
    signed = {**against, "T": -0.2}
    other = clinical_sentence("S", 0.30, "N", 0.65, normal, against, signed)
    assert other.startswith("Evidence for S (0.30); called N (0.65)")
    assert "20 % on the T wave (against)" in other


def test_sentence_names_the_bed_call_and_the_beat_alone():
    measurements = {"qrs_ms": 132.0, "rr_pre_pct": 70.0, "rr_post_pct": 130.0, "p_present": False,
                    "pr_ms": None, "qrs_correlation_with_usual": 0.5}  # fmt: skip
    shares = {"previous": 0.0, "P": 0.0, "PR": 0.0, "QRS": 0.8, "ST": 0.1, "T": 0.1,
              "other": 0.0, "RR": 0.0}  # fmt: skip
    text = clinical_sentence("V", 0.41, "N", 0.55, measurements, shares, shares, called=("V", 0.81))
    assert text.startswith(
        "Called V (0.81) as this patient's similar earlier beats were; "
        "this beat alone scores N 0.55, V 0.41: QRS wide (132 ms)"
    )
    same = clinical_sentence("V", 0.9, "V", 0.9, measurements, shares, shares, called=("V", 0.93))
    assert same.startswith("Called V (0.93): ")  # the bed's figure, as on the verdict
