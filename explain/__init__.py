"""Why the model called a beat or a rhythm: attributions, clinical sentences, faithfulness.

The review UI asks for an explanation of a flagged event and gets back an
:class:`Explanation` (one beat) or a :class:`explain.rhythm.RhythmExplanation`
(a rhythm episode). Both are plain frozen records of NumPy arrays and numbers:
they cross threads safely and serialise with ``to_json()``.

Typical use, on the explain thread (never the inference thread)::

    from explain.attribute import BeatRequest, Explainer
    from inference.pipeline import default_model_path

    explainer = Explainer(default_model_path())      # its own model instance
    exp = explainer.explain(BeatRequest(leads_mv, fs_hz, r_peaks, beat_index))
    exp.summary   # "Called V (0.97): QRS wide (138 ms) and early (RR 62 % of baseline), …"
    exp.to_json()

or let :class:`explain.worker.ExplainerThread` own that thread and call back
with each result; rhythm episodes go to :func:`explain.rhythm.explain_episode`.

Nothing in this package imports Qt; torch and captum are imported inside the
functions that need them, so importing :mod:`explain` is cheap.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np

#: Segment names of a beat, in the order the UI lists them.
SEGMENT_NAMES: Final = ("previous", "P", "PR", "QRS", "ST", "T", "other", "RR")
JSON_SCHEMA_VERSION: Final = 1
_JSON_DIGITS: Final = 5


def json_ready(value: Any, digits: int = _JSON_DIGITS) -> Any:
    """A JSON-serialisable copy: arrays become lists, floats are rounded, NaN becomes None."""
    if isinstance(value, np.ndarray):
        return json_ready(value.tolist(), digits)
    if isinstance(value, dict):
        return {str(k): json_ready(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(v, digits) for v in value]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        if not math.isfinite(v):
            return None
        return float(f"{v:.{digits}g}")
    return value


@dataclass(frozen=True)
class Faithfulness:
    """How well an explanation reflects what the model actually used.

    Attributes
    ----------
    deletion_auc
        Area under the predicted-class probability as the most-attributed
        inputs are replaced by the baseline (fraction deleted 0 → 1). Lower is
        more faithful.
    random_deletion_auc
        The same area for random deletion orders (mean over seeds).
    deletion_fraction, deletion_curve, random_curve
        The curves themselves (probability of the explained class).
    infidelity
        Captum's infidelity (Yeh et al. 2019), normalised; lower is better.
    randomisation_rank_correlation
        Spearman correlation between |attributions| of the trained model and of
        the same network with re-initialised weights (Adebayo et al. 2018);
        near 0 means the explanation depends on what the model learned.
    informative
        False when the model's output barely changes between the beat and its
        baseline: there is then little to attribute and the figures are noise.
    """

    deletion_auc: float
    random_deletion_auc: float
    deletion_fraction: np.ndarray
    deletion_curve: np.ndarray
    random_curve: np.ndarray
    infidelity: float
    randomisation_rank_correlation: float
    informative: bool

    @property
    def deletion_ratio(self) -> float:
        """``deletion_auc / random_deletion_auc`` (≤ 0.6 is Vigil's target)."""
        if self.random_deletion_auc <= 0:
            return math.nan
        return self.deletion_auc / self.random_deletion_auc

    def to_dict(self) -> dict[str, Any]:
        return {
            "deletion_auc": self.deletion_auc,
            "random_deletion_auc": self.random_deletion_auc,
            "deletion_ratio": self.deletion_ratio,
            "infidelity": self.infidelity,
            "randomisation_rank_correlation": self.randomisation_rank_correlation,
            "informative": self.informative,
            "deletion_fraction": self.deletion_fraction,
            "deletion_curve": self.deletion_curve,
            "random_curve": self.random_curve,
        }


@dataclass(frozen=True)
class Explanation:
    """Why the beat classifier called one beat what it did.

    Times are seconds relative to the beat's R peak. "Display" arrays are at
    the recording's own sampling rate so the UI can draw them under the
    waveform; ``model_*`` arrays are at the model's rate (what it saw).
    Positive attribution supports the explained class, negative opposes it.

    Attributes
    ----------
    predicted
        The network's class for this beat alone (``N``, ``S``, ``V``, ``F``, ``Q``).
    explained_class
        The class whose evidence is shown (the called one unless asked otherwise).
    probabilities
        The network's class probabilities for this beat alone (an ensemble's
        members averaged: the function the attributions explain, the same for
        every beat; the bed's analyzer lets the first member decide alone on
        beats it is sure of, so its figure for such a beat can differ a little).
    called, called_probabilities
        The bed's final call and its probabilities: the network's, with V and F
        weighed against the patient's look-alike earlier beats
        (:mod:`inference.beat_memory`). Equal to ``predicted`` and
        ``probabilities`` when the request did not carry the bed's call.
    summary
        The clinical sentence.
    segments
        Share of the absolute attribution mass per segment (``previous`` —
        the end of the preceding beat when an early beat brings it into the
        window —, ``P``, ``PR``, ``QRS``, ``ST``, ``T``, ``other``, ``RR``); sums to 1.
    segments_signed
        Signed mass per segment over the total absolute mass (+ supports).
    segment_bounds_s
        ``{name: (start_s, end_s)}`` of the delineated waves (None when absent).
    measurements
        QRS duration, PR interval, RR ratios, P-wave presence and the like.
    method
        ``"ig"``, ``"deeplift"`` or ``"occlusion"``, with its settings in ``method_settings``.
    time_s, fs_hz, waveform_mv, baseline_mv, attribution
        Display-rate time axis, the recording's samples (per lead, NaN in
        gaps), the baseline beat drawn in the same frame, and attribution per
        lead per sample.
    model_time_s, model_waveform_mv, model_baseline_mv, model_attribution, channel_attribution
        The same at the model's rate: filtered beat and baseline as the model
        saw them (mV), attribution per lead (lead and template-difference
        channels added), and per model channel (4 rows).
    rr_features
        ``[{"name", "value", "baseline", "attribution"}]`` for the RR inputs.
    baseline
        Which baseline was used (``kind``) and the model's probabilities for it.
    completeness
        Sum of attributions against the output change they should add up to.
    faithfulness
        Deletion, infidelity and randomisation figures (None if not computed).
    latency_ms, latency_breakdown_ms
        Compute time of this explanation, total and by stage.
    model_version
        Version string of the weights that made the call.
    beat
        ``sample_index`` (absolute R peak), ``time_s`` and ``lead_labels``.
    """

    predicted: str
    explained_class: str
    probabilities: dict[str, float]
    summary: str
    segments: dict[str, float]
    segments_signed: dict[str, float]
    segment_bounds_s: dict[str, tuple[float, float] | None]
    measurements: dict[str, Any]
    method: str
    method_settings: dict[str, Any]
    time_s: np.ndarray
    fs_hz: float
    waveform_mv: np.ndarray
    baseline_mv: np.ndarray
    attribution: np.ndarray
    model_time_s: np.ndarray
    model_waveform_mv: np.ndarray
    model_baseline_mv: np.ndarray
    model_attribution: np.ndarray
    channel_attribution: np.ndarray
    rr_features: tuple[dict[str, Any], ...]
    baseline: dict[str, Any]
    completeness: dict[str, float]
    faithfulness: Faithfulness | None
    latency_ms: float
    latency_breakdown_ms: dict[str, float]
    model_version: str
    beat: dict[str, Any] = field(default_factory=dict)
    called: str = ""
    called_probabilities: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.called:  # no bed call given: the network's call stands
            object.__setattr__(self, "called", self.predicted)
            object.__setattr__(self, "called_probabilities", dict(self.probabilities))

    def to_dict(self) -> dict[str, Any]:
        """Plain Python structure of the explanation (NumPy arrays as lists)."""
        return json_ready(
            {
                "schema": f"vigil-explanation/{JSON_SCHEMA_VERSION}",
                "kind": "beat",
                "predicted": self.predicted,
                "explained_class": self.explained_class,
                "probabilities": self.probabilities,
                "called": self.called,
                "called_probabilities": self.called_probabilities,
                "summary": self.summary,
                "segments": self.segments,
                "segments_signed": self.segments_signed,
                "segment_bounds_s": {
                    k: (None if v is None else list(v)) for k, v in self.segment_bounds_s.items()
                },
                "measurements": self.measurements,
                "method": self.method,
                "method_settings": self.method_settings,
                "time_s": self.time_s,
                "fs_hz": self.fs_hz,
                "waveform_mv": self.waveform_mv,
                "baseline_mv": self.baseline_mv,
                "attribution": self.attribution,
                "model_view": {
                    "time_s": self.model_time_s,
                    "waveform_mv": self.model_waveform_mv,
                    "baseline_mv": self.model_baseline_mv,
                    "attribution": self.model_attribution,
                    "channel_attribution": self.channel_attribution,
                },
                "rr_features": list(self.rr_features),
                "baseline": self.baseline,
                "completeness": self.completeness,
                "faithfulness": None if self.faithfulness is None else self.faithfulness.to_dict(),
                "latency_ms": self.latency_ms,
                "latency_breakdown_ms": self.latency_breakdown_ms,
                "model_version": self.model_version,
                "beat": self.beat,
            }
        )

    def to_json(self, indent: int | None = None) -> str:
        """The explanation as JSON text (schema ``vigil-explanation/1``)."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)
