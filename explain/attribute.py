"""Attributions of one beat's classification against the patient's own usual beat.

The explained quantity is the model's output for one class (its logit by
default) and the inputs are exactly what the classifier saw (see
:mod:`inference.features`): the beat's window per lead, the window minus the
patient's running template, and the RR features.

**Baseline**: the patient's own usual beat, on time (see :mod:`explain.context`).

**Methods**: ``"ig"`` Integrated Gradients (Sundararajan et al. 2017; Gauss-
Legendre, 32 steps), ``"deeplift"`` DeepLift rescale rule (Shrikumar et al.
2017), ``"occlusion"`` sliding 62.5 ms windows per lead replaced by the baseline
(Zeiler & Fergus 2014), all from Captum.

Threading: an :class:`Explainer` loads its own model instance and belongs to
the thread that uses it; it never touches the inference thread's module.
:class:`explain.worker.ExplainerThread` is such a thread with a request
queue; :func:`explain` keeps one explainer per calling thread.
Whatever a method does to the module (Captum's DeepLift registers hooks), the
module is left without hooks afterwards, also when the method raises.
"""

from __future__ import annotations

import copy
import logging
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from explain import Explanation, Faithfulness
from explain import faithfulness as fa
from explain import segments as sg
from explain.context import (
    BeatContext,
    BeatRequest,
    beat_context,
    beat_measurements,
    by_channel,
    by_lead,
    display_window,
    recent_normal_baseline,
    rr_intervals_s,
    template_baseline,
)
from explain.methods import (
    IG_STEPS,
    METHODS,
    OCCLUSION_PER_EVAL,
    OCCLUSION_STRIDE_SAMPLES,
    OCCLUSION_WINDOW_SAMPLES,
    Attribution,
    attribute,
    explained_module,
)
from inference import features as ft
from inference.beats import CLASSES, BeatClassifier, beat_calls

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: The randomisation check only ranks attributions, so fewer steps do.
RANDOMISATION_IG_STEPS: Final = 8
#: Below this change of the explained class's probability between baseline and
#: beat, there is little to explain and faithfulness figures are noise.
INFORMATIVE_CHANGE: Final = 0.2


class _Timer:
    """Wall and thread-CPU milliseconds per stage (CPU time is the compute, wall includes waiting)."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._w, self._c = time.perf_counter(), time.thread_time()

    def lap(self, name: str) -> None:
        w, c = time.perf_counter(), time.thread_time()
        self.wall[name] = round(1000.0 * (w - self._w), 3)
        self.cpu[name] = round(1000.0 * (c - self._c), 3)
        self._w, self._c = w, c


class Explainer:
    """Explains beats with its own copy of the beat model. Belongs to one thread.

    Parameters
    ----------
    model_path
        The ``.safetensors`` beat model; the explainer loads its own instance.
    output
        Explained model output: ``"logit"`` (default) or ``"probability"``.
    ig_steps
        Integrated Gradients steps.
    classifier
        Use a private deep copy of this classifier instead of loading a file
        (tests, or a model already in memory). The copy is never shared.
    warm_up
        Import Captum and run one attribution now, so the first real
        explanation is not slowed by imports and first-call set-up.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        output: str = "logit",
        ig_steps: int = IG_STEPS,
        classifier: BeatClassifier | None = None,
        warm_up: bool = True,
    ) -> None:
        if classifier is not None:
            module = copy.deepcopy(classifier.module)
            self.classifier = BeatClassifier(
                module, classifier.config, dict(classifier.metadata), classifier.sha256
            )
        elif model_path is not None:
            self.classifier = BeatClassifier.from_file(model_path)
        else:
            raise ValueError("Explainer needs a model_path or a classifier to copy")
        for p in self.classifier.module.parameters():
            p.requires_grad_(False)  # gradients are only wanted for the inputs
        self.output = output
        self.ig_steps = ig_steps
        self._module = explained_module(self.classifier.module, output)
        self._random: torch.nn.Module | None = None
        self._owner = threading.get_ident()
        if warm_up:
            self._warm_up()

    def _warm_up(self) -> None:
        waves = np.zeros((2 * ft.MAX_LEADS, ft.WINDOW_SAMPLES), np.float32)
        scalars = np.zeros(ft.N_SCALARS, np.float32)
        for method in ("ig", "deeplift"):
            attribute(self._module, waves, scalars, waves, scalars, 0, method=method, n_steps=2)

    @classmethod
    def from_classifier(cls, classifier: BeatClassifier, **kwargs: object) -> Explainer:
        """An explainer on a private deep copy of ``classifier``'s network."""
        return cls(classifier=classifier, **kwargs)  # type: ignore[arg-type]

    @property
    def model_version(self) -> str:
        return self.classifier.version

    def _predict(self, waves_by_lead: np.ndarray, scalars: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            logits = self._module.net(
                torch.from_numpy(np.ascontiguousarray(by_channel(waves_by_lead), dtype=np.float32)),
                torch.from_numpy(np.ascontiguousarray(scalars, dtype=np.float32)),
            )
            return torch.softmax(logits, dim=1).numpy()

    def explain(self, request: BeatRequest) -> Explanation:
        """Explain one beat (compute on the calling thread; typically 20-60 ms on one core).

        Raises
        ------
        ValueError
            Bad method, target or beat index.
        """
        if threading.get_ident() != self._owner:
            logger.debug("explainer used from a thread other than its creator's")
        timer = _Timer()
        if request.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {request.method!r}")
        ctx = beat_context(
            request.leads, request.fs_hz, request.r_peaks, request.beat_index,
            request.sample_offset, request.context_beats,
        )  # fmt: skip
        timer.lap("context")
        bw, bs = template_baseline(ctx)
        probs = self._predict(by_lead(np.stack([ctx.waves, bw])), np.stack([ctx.scalars, bs]))
        p_beat, p_base = probs[0], probs[1]
        baseline_kind = "template"
        if int(beat_calls(p_base[None])[0]) != CLASSES.index("N") and len(ctx.history_waves):
            history_probs = self._predict(by_lead(ctx.history_waves), ctx.history_scalars)
            recent = recent_normal_baseline(ctx, history_probs)
            if recent is not None:
                bw, bs = recent
                p_base = self._predict(by_lead(bw[None]), bs[None])[0]
                baseline_kind = "recent_normal"
            else:
                baseline_kind = "template_not_normal"
        predicted = CLASSES[int(beat_calls(p_beat[None])[0])]
        p_called = p_beat
        if request.called_probabilities is not None:
            p_called = np.asarray(request.called_probabilities, dtype=np.float64)
            if p_called.shape != (len(CLASSES),) or not np.isfinite(p_called).all():
                raise ValueError(
                    f"called_probabilities must be {len(CLASSES)} finite numbers, "
                    f"got {request.called_probabilities!r}"
                )
        called = CLASSES[int(beat_calls(p_called[None])[0])]
        explained = request.target or called
        if explained not in CLASSES:
            raise ValueError(f"target must be one of {CLASSES}, got {explained!r}")
        target = CLASSES.index(explained)
        timer.lap("baseline")
        attr = attribute(
            self._module, ctx.waves, ctx.scalars, bw, bs, target,
            method=request.method, n_steps=self.ig_steps,
        )  # fmt: skip
        timer.lap("attribution")
        view = display_window(request, ctx, bw)
        lead_attr = attr.waves[: ft.MAX_LEADS] + attr.waves[ft.MAX_LEADS :]
        pre_rr_s, post_rr_s, median_rr_s = rr_intervals_s(ctx.scalars)
        delin = sg.delineate(
            view["waveform_mv"], request.fs_hz, view["r_index"], ctx.present[: len(view["waveform_mv"])],
            pre_rr_s=_finite_or_none(pre_rr_s), post_rr_s=_finite_or_none(post_rr_s),
        )  # fmt: skip
        model_t = (np.arange(ft.WINDOW_SAMPLES) - ft.PRE_SAMPLES) / ft.MODEL_FS_HZ
        shares, signed = sg.segment_shares(
            model_t, lead_attr, attr.scalars[: ft.N_RR_FEATURES], delin
        )
        informative = abs(float(p_beat[target] - p_base[target])) >= INFORMATIVE_CHANGE
        measurements = beat_measurements(ctx, bw, delin, model_t, pre_rr_s, post_rr_s, median_rr_s)
        summary = sg.clinical_sentence(
            explained, float(p_beat[target]), predicted, float(p_beat[CLASSES.index(predicted)]),
            measurements, shares, signed, informative=informative,
            toward=attr.output >= attr.baseline_output,
            called=(called, float(p_called[CLASSES.index(called)])),
        )  # fmt: skip
        timer.lap("segments")
        faith = None
        if request.faithfulness:
            faith = self._faithfulness(
                ctx, bw, bs, attr, lead_attr, target, informative, request.method, timer
            )
        total = round(sum(timer.wall.values()), 3)
        to_display = ft.MODEL_FS_HZ / request.fs_hz  # attribution per display sample
        display_attr = np.stack(
            [np.interp(view["time_s"], model_t, a) * to_display for a in lead_attr]
        )
        n_show = len(view["waveform_mv"])
        return Explanation(
            predicted=predicted,
            explained_class=explained,
            probabilities={c: float(p) for c, p in zip(CLASSES, p_beat, strict=True)},
            called=called,
            called_probabilities={c: float(p) for c, p in zip(CLASSES, p_called, strict=True)},
            summary=summary,
            segments=shares,
            segments_signed=signed,
            segment_bounds_s=dict(delin.spans()),
            measurements={**measurements, "delineation": delin.to_dict()},
            method=request.method,
            method_settings=self._settings(request.method),
            time_s=view["time_s"],
            fs_hz=float(request.fs_hz),
            waveform_mv=view["waveform_mv"],
            baseline_mv=view["baseline_mv"],
            attribution=display_attr[:n_show],
            model_time_s=model_t,
            model_waveform_mv=(ctx.waves[: ft.MAX_LEADS] * ctx.scale_mv[:, None])[:n_show],
            model_baseline_mv=(bw[: ft.MAX_LEADS] * ctx.scale_mv[:, None])[:n_show],
            model_attribution=lead_attr[:n_show],
            channel_attribution=attr.waves,
            rr_features=tuple(
                {
                    "name": name,
                    "value": float(ctx.scalars[k]),
                    "baseline": float(bs[k]),
                    "attribution": float(attr.scalars[k]),
                }
                for k, name in enumerate(ft.RR_FEATURE_NAMES)
            ),  # fmt: skip
            baseline={
                "kind": baseline_kind,
                "probabilities": {c: float(p) for c, p in zip(CLASSES, p_base, strict=True)},
            },
            completeness={
                "attribution_sum": float(attr.waves.sum() + attr.scalars.sum()),
                "output_change": attr.output - attr.baseline_output,
                "gap": attr.delta,
                "output": self.output,
            },
            faithfulness=faith,
            latency_ms=total,
            latency_breakdown_ms={
                **{f"{k}_ms": v for k, v in timer.wall.items()},
                **{f"{k}_cpu_ms": v for k, v in timer.cpu.items()},
                "total_cpu_ms": round(sum(timer.cpu.values()), 3),
            },
            model_version=self.model_version,
            beat={
                "sample_index": ctx.r_sample,
                "time_s": ctx.r_sample / request.fs_hz,
                "beat_index": int(request.beat_index),
                "lead_labels": list(request.lead_labels[:n_show]),
            },
        )

    def _settings(self, method: str) -> dict[str, object]:
        base: dict[str, object] = {"output": self.output, "baseline": "patient template"}
        if method == "ig":
            return {**base, "n_steps": self.ig_steps, "integration": "gausslegendre"}
        if method == "occlusion":
            return {
                **base,
                "window_s": OCCLUSION_WINDOW_SAMPLES / ft.MODEL_FS_HZ,
                "stride_s": OCCLUSION_STRIDE_SAMPLES / ft.MODEL_FS_HZ,
                "perturbations_per_eval": OCCLUSION_PER_EVAL,
            }
        return {**base, "rule": "rescale"}

    def _faithfulness(
        self,
        ctx: BeatContext,
        bw: np.ndarray,
        bs: np.ndarray,
        attr: Attribution,
        lead_attr: np.ndarray,
        target: int,
        informative: bool,
        method: str,
        timer: _Timer,
    ) -> Faithfulness:
        import torch

        units = np.repeat(ctx.present[:, None], ft.WINDOW_SAMPLES, axis=1)
        rr_units = np.zeros(ft.N_SCALARS, dtype=bool)
        rr_units[: ft.N_RR_FEATURES] = ~np.isclose(ctx.scalars, bs)[: ft.N_RR_FEATURES]
        deletion = fa.deletion_test(
            self._predict, by_lead(ctx.waves), ctx.scalars, by_lead(bw), bs,
            lead_attr, attr.scalars, target, wave_units=units, scalar_units=rr_units,
        )  # fmt: skip
        timer.lap("deletion")
        x = (
            torch.from_numpy(by_lead(ctx.waves)[None].copy()),
            torch.from_numpy(ctx.scalars[None].copy()),
        )
        b = (torch.from_numpy(by_lead(bw)[None].copy()), torch.from_numpy(bs[None].copy()))
        a = (
            torch.from_numpy(by_lead(attr.waves)[None].astype(np.float32)),
            torch.from_numpy(attr.scalars[None].astype(np.float32)),
        )
        infid = fa.infidelity_score(
            self._module,
            x,
            b,
            a,
            target,
            scalar_noise_mask=torch.from_numpy(rr_units.astype(np.float32)),
        )
        timer.lap("infidelity")
        if self._random is None:
            self._random = explained_module(fa.randomised_copy(self._module.net), self.output)
        rand = attribute(
            self._random, ctx.waves, ctx.scalars, bw, bs, target,
            method=method, n_steps=RANDOMISATION_IG_STEPS,
        )  # fmt: skip
        rand_lead = rand.waves[: ft.MAX_LEADS] + rand.waves[ft.MAX_LEADS :]
        keep = ctx.present
        rho = fa.rank_correlation(
            np.concatenate([lead_attr[keep].ravel(), attr.scalars[rr_units]]),
            np.concatenate([rand_lead[keep].ravel(), rand.scalars[rr_units]]),
        )
        timer.lap("randomisation")
        return Faithfulness(
            deletion_auc=deletion.auc,
            random_deletion_auc=deletion.random_auc,
            deletion_fraction=deletion.fraction,
            deletion_curve=deletion.curve,
            random_curve=deletion.random_curve,
            infidelity=infid,
            randomisation_rank_correlation=rho,
            informative=informative,
        )


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


def explain_beat(
    classifier: BeatClassifier,
    leads: np.ndarray,
    fs_hz: float,
    r_peaks: np.ndarray,
    beat_index: int,
    method: str = "ig",
    **request_fields: object,
) -> Explanation:
    """Explain one beat with a private copy of ``classifier`` (convenience; copies each call)."""
    request = BeatRequest(
        leads, fs_hz, np.asarray(r_peaks), beat_index, method=method, **request_fields
    )  # type: ignore[arg-type]
    return Explainer.from_classifier(classifier, warm_up=False).explain(request)


_per_thread = threading.local()


def explain(request: BeatRequest, *, model_path: str | Path | None = None) -> Explanation:
    """Explain one beat with this thread's own explainer (loaded on first use per thread).

    Parameters
    ----------
    request
        The beat and its context.
    model_path
        Beat model; default the shipped one (:func:`inference.pipeline.default_model_path`).
    """
    from inference.pipeline import default_model_path

    path = str(Path(model_path) if model_path is not None else default_model_path())
    cache: dict[str, Explainer] = getattr(_per_thread, "explainers", None) or {}
    _per_thread.explainers = cache
    if path not in cache:
        cache[path] = Explainer(path)
    return cache[path].explain(request)
