"""Beat classifier: small 1-D CNNs (an ensemble of three) that label each heartbeat
N, S, V, F or Q.

The classes are those of ANSI/AAMI EC57: N normal and bundle-branch-block
(and escape) beats, S supraventricular ectopic, V ventricular ectopic, F fusion
of ventricular and normal, Q paced or unclassifiable. The model reads the
beat's waveform (one or two leads), its difference from the patient's recent
usual beat and RR features relative to the patient's own rhythm; see
:mod:`inference.features` for exactly what it sees. The shipped model is three
networks of one recipe trained from different seeds, their probabilities
averaged; averaging removes much of the seed-to-seed swing that single networks
show on unseen patients.

Runtime use::

    clf = BeatClassifier.from_file("resources/models/beatcnn.safetensors")
    probs = clf.classify(leads_mv, fs_hz, r_peaks)      # (n_beats, 5), CLASSES order
    stream = StreamingBeatClassifier(clf, fs_hz, n_leads=2)  # inference.beat_stream
    peaks, probs = stream.push(block, new_peaks)        # beats whose context is complete

Context of beat ``i`` (both the offline and the streaming call honour it, so
they give the same probabilities): samples from ``r[i] - 0.68 s`` to
``r[i] + 0.5 s``, the peaks ``r[i-256] … r[i+1]`` and the patient's running
template and QRS amplitude left by the beats before it
(:class:`inference.features.PatientState`). The network's V and F
probabilities are then blended with those of the patient's earlier beats of
the most similar QRS shape (:class:`inference.beat_memory.PatientBeatMemory`).
Nothing later is read.

torch is imported only when a model is built, not when this module is imported;
the caller sets ``torch.set_num_threads`` for its thread.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from inference import features as ft
from inference.beat_memory import PatientBeatMemory
from inference.fast_network import FastNetwork
from inference.model_io import (
    ModelFileError,
    check_tensor_shapes,
    load_model_file,
    save_model_file,
)

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

CLASSES: Final = ("N", "S", "V", "F", "Q")
_N: Final = CLASSES.index("N")
MODEL_NAME: Final = "beatcnn"
#: 1.1: the 1.0 network recipe, its calls refined by the patient beat memory and
#: the S-over-N rule (results of the two differ, so their stamps do). 1.2: three
#: networks of that recipe (seeds 0, 1, 2) averaged.
MODEL_VERSION: Final = "1.2"
FORMAT_NAME: Final = "vigil-beatcnn"
FORMAT_VERSION: Final = 1
INFERENCE_CHUNK_BEATS: Final = 1024
#: A beat whose S probability is at least 1/3 of its N probability is called S rather
#: than N. Missing an ectopic atrial beat costs more than a false one, which the
#: rhythm layer and the "no S in AF" rule absorb; 3 is the largest weight that kept the
#: pooled SVEB +P of the patient-wise DS1 cross-validation (from minute 5, with
#: that rule) at or above 70 % in each of three trainings.
S_OVER_N_WEIGHT: Final = 3.0
#: An ensemble's first network decides alone on the beats it finds normal with at
#: least this probability (most beats of most patients); the others are asked only
#: about the rest. On the patient-wise DS1 cross-validation this gave the same EC57
#: figures as always averaging, with about 78 % of beats decided by the first network.
FIRST_MEMBER_SURE_NORMAL: Final = 0.9
#: ... and on beats it gives any class at least this probability: training targets are
#: label-smoothed to 0.96, so this is the network at its most certain. On the DS1
#: cross-validation's held-out records it changed no call (0.9 and 0.93 changed two to
#: four); on record 208, rich in ventricular beats, it spares the other two networks
#: a third of the beats.
FIRST_MEMBER_SURE: Final = 0.95
REQUIRED_METADATA: Final = (
    "classes",
    "model_fs_hz",
    "pre_samples",
    "post_samples",
    "architecture",
    "model_version",
    "features_version",
    "rr_features",
    "trained_utc",
)

#: The AAMI EC57 class of each PhysioNet beat annotation code.
AAMI_CLASS_OF_SYMBOL: Final = {
    **dict.fromkeys("NLReB", "N"),
    "j": "N",
    **dict.fromkeys("AaJS", "S"),
    **dict.fromkeys("VE", "V"),
    "F": "F",
    **dict.fromkeys("/fQ", "Q"),
}


@dataclass(frozen=True, slots=True)
class BeatCNNConfig:
    """Architecture hyperparameters of the beat CNN (stored in the weights file).

    ``members`` networks of the same shape, trained from different seeds, make
    one model: its probabilities are their mean (see :class:`BeatClassifier`
    for the shortcut taken on beats the first network is sure of).
    """

    channels: tuple[int, ...] = (16, 32, 48, 64)
    kernels: tuple[int, ...] = (7, 5, 5, 3)
    hidden: int = 64
    dropout: float = 0.2
    members: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> BeatCNNConfig:
        raw = json.loads(text)
        return cls(
            channels=tuple(int(c) for c in raw["channels"]),
            kernels=tuple(int(k) for k in raw["kernels"]),
            hidden=int(raw["hidden"]),
            dropout=float(raw["dropout"]),
            members=int(raw.get("members", 1)),  # files of model 1.1 hold one network
        )


@functools.cache
def _beat_cnn_class() -> type:
    """The nn.Module class, defined on first use so importing this module skips torch."""
    import torch
    from torch import nn

    class BeatCNN(nn.Module):
        """Conv blocks over the 4 waveform channels, then an MLP with the scalars."""

        def __init__(self, config: BeatCNNConfig) -> None:
            super().__init__()
            blocks: list[nn.Module] = []
            width, length = ft.N_WAVE_CHANNELS, ft.WINDOW_SAMPLES
            for out, k in zip(config.channels, config.kernels, strict=True):
                blocks += [
                    nn.Conv1d(width, out, k, padding=k // 2, bias=False),
                    nn.BatchNorm1d(out),
                    nn.ReLU(),
                    nn.MaxPool1d(2),
                ]
                width, length = out, length // 2
            self.features = nn.Sequential(*blocks)
            self.head = nn.Sequential(
                nn.Linear(width * length + ft.N_SCALARS, config.hidden),
                nn.ReLU(),
                nn.Dropout(config.dropout),
                nn.Linear(config.hidden, len(CLASSES)),
            )

        def forward(self, waves: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
            z = self.features(waves).flatten(1)
            return self.head(torch.cat([z, scalars], dim=1))

    return BeatCNN


@functools.cache
def _beat_ensemble_class() -> type:
    import torch
    from torch import nn

    class BeatCNNEnsemble(nn.Module):
        """Member networks whose class probabilities are averaged.

        ``forward`` returns the log of the mean probability, so a softmax of it
        gives the ensemble's probabilities and it stands wherever one network's
        logits do (training evaluation, explanations).
        """

        def __init__(self, config: BeatCNNConfig) -> None:
            super().__init__()
            cnn = _beat_cnn_class()
            self.members = nn.ModuleList(cnn(config) for _ in range(config.members))

        def forward(self, waves: torch.Tensor, scalars: torch.Tensor) -> torch.Tensor:
            probs = torch.stack([torch.softmax(m(waves, scalars), dim=1) for m in self.members])
            return torch.log(probs.mean(dim=0))

    return BeatCNNEnsemble


def build_beat_cnn(config: BeatCNNConfig) -> torch.nn.Module:
    """A freshly initialised beat model: one CNN, or an ensemble of ``config.members``.

    Imports torch.
    """
    if config.members < 1:
        raise ValueError(f"members must be at least 1, got {config.members}")
    if config.members == 1:
        return _beat_cnn_class()(config)
    return _beat_ensemble_class()(config)


def ensemble_of(config: BeatCNNConfig, networks: Sequence[torch.nn.Module]) -> torch.nn.Module:
    """The model made of trained single networks (``config.members`` of them), in order."""
    if len(networks) != config.members:
        raise ValueError(f"{len(networks)} networks for a {config.members}-member model")
    if config.members == 1:
        return networks[0]
    model = build_beat_cnn(config)
    for slot, net in zip(model.members, networks, strict=True):
        slot.load_state_dict(net.state_dict())
    return model.eval()


def stored_state(module: torch.nn.Module) -> dict[str, np.ndarray]:
    """The tensors that go into a weights file (BatchNorm step counters are left out)."""
    return {
        k: v.detach().cpu().numpy().astype(np.float32)
        for k, v in module.state_dict().items()
        if not k.endswith("num_batches_tracked")
    }


def save_beat_model(
    path: str | Path, module: torch.nn.Module, config: BeatCNNConfig, extra: dict[str, str]
) -> str:
    """Write a beat model as safetensors with its metadata; return the file's sha256.

    Parameters
    ----------
    path
        Destination ``.safetensors`` file.
    module
        Trained network.
    config
        Its architecture.
    extra
        Further metadata strings (training date, data, command …); must include
        ``trained_utc``.
    """
    meta = {
        "classes": json.dumps(list(CLASSES)),
        "model_fs_hz": repr(ft.MODEL_FS_HZ),
        "pre_samples": str(ft.PRE_SAMPLES),
        "post_samples": str(ft.POST_SAMPLES),
        "architecture": config.to_json(),
        "model_version": MODEL_VERSION,
        "features_version": ft.FEATURES_VERSION,
        "rr_features": json.dumps(list(ft.RR_FEATURE_NAMES)),
        **extra,
    }
    sha = save_model_file(
        path, stored_state(module), meta, format_name=FORMAT_NAME, format_version=FORMAT_VERSION
    )
    Path(path).chmod(0o644)  # safetensors writes owner-only; weights are not secret
    return sha


class BeatClassifier:
    """A loaded beat model ready to classify beats on the CPU.

    One instance belongs to one thread (it holds a torch module).

    Attributes
    ----------
    version
        ``"beatcnn-<model version>+<first 8 hex of the file's sha256>"``; stamp
        it on every stored result.
    metadata
        The weights file's header metadata.
    """

    def __init__(
        self, module: torch.nn.Module, config: BeatCNNConfig, metadata: dict[str, str], sha256: str
    ) -> None:
        self._module = module.eval()
        members = getattr(self._module, "members", None) or [self._module]
        self._fast = [FastNetwork(m) for m in members]
        self.config = config
        self.metadata = metadata
        self.sha256 = sha256
        self.version = f"{MODEL_NAME}-{metadata.get('model_version', MODEL_VERSION)}+{sha256[:8]}"

    @property
    def module(self) -> torch.nn.Module:
        """The torch network (for explanations; keep it on this instance's thread)."""
        return self._module

    @classmethod
    def from_file(cls, path: str | Path) -> BeatClassifier:
        """Load and check a ``.safetensors`` beat model.

        Raises
        ------
        ModelFileError
            Not a safetensors file, wrong format or version, metadata that does
            not match this code's features, missing/extra tensors or wrong shapes.
        """
        import torch

        mf = load_model_file(
            path,
            format_name=FORMAT_NAME,
            format_version=FORMAT_VERSION,
            required_metadata=REQUIRED_METADATA,
        )
        meta = mf.metadata
        expected_meta = {
            "classes": json.dumps(list(CLASSES)),
            "pre_samples": str(ft.PRE_SAMPLES),
            "post_samples": str(ft.POST_SAMPLES),
            "features_version": ft.FEATURES_VERSION,
            "rr_features": json.dumps(list(ft.RR_FEATURE_NAMES)),
        }
        for key, want in expected_meta.items():
            if meta[key] != want:
                raise ModelFileError(f"model file {path}: {key} is {meta[key]}, expected {want}")
        if float(meta["model_fs_hz"]) != ft.MODEL_FS_HZ:
            raise ModelFileError(
                f"model file {path}: model rate {meta['model_fs_hz']} Hz, expected {ft.MODEL_FS_HZ}"
            )
        try:
            config = BeatCNNConfig.from_json(meta["architecture"])
            module = build_beat_cnn(config)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelFileError(f"model file {path}: bad architecture metadata ({exc})") from exc
        expected = {k: tuple(v.shape) for k, v in stored_state(module).items()}
        check_tensor_shapes(mf, expected)
        state = {k: torch.from_numpy(v.copy()) for k, v in mf.tensors.items()}
        module.load_state_dict(state, strict=False)
        logger.info("loaded beat model %s from %s", mf.sha256[:8], path)
        return cls(module, config, meta, mf.sha256)

    def classify_inputs(self, inputs: ft.BeatInputs) -> np.ndarray:
        """The network's probabilities ``(n_beats, 5)`` for prepared inputs, in chunks.

        Each beat is judged alone; :meth:`classify` and
        :class:`~inference.beat_stream.StreamingBeatClassifier` then weigh the V and F calls against the
        patient's earlier look-alike beats (:mod:`inference.beat_memory`).

        An ensemble averages its members' probabilities, except on beats its first
        member finds normal with probability :data:`FIRST_MEMBER_SURE_NORMAL` or
        more, or gives any class :data:`FIRST_MEMBER_SURE` or more: those keep the
        first member's (it saves most of the extra members' time and changes no
        call in the cross-validation).
        """
        import torch

        n = len(inputs.waves)
        out = np.empty((n, len(CLASSES)), dtype=np.float32)
        first, others = self._fast[0], self._fast[1:]
        with torch.inference_mode():
            for start in range(0, n, INFERENCE_CHUNK_BEATS):
                stop = min(start + INFERENCE_CHUNK_BEATS, n)
                waves = torch.from_numpy(inputs.waves[start:stop])
                scalars = torch.from_numpy(inputs.scalars[start:stop])
                probs = torch.softmax(first(waves, scalars), dim=1)
                sure = torch.from_numpy(first_member_decides(probs.numpy()))
                unsure = torch.nonzero(~sure).flatten()
                if others and len(unsure):
                    w, s = waves[unsure], scalars[unsure]
                    total = probs[unsure]
                    for member in others:
                        total = total + torch.softmax(member(w, s), dim=1)
                    probs[unsure] = total / len(self._fast)
                out[start:stop] = probs.numpy()
        return out

    def classify(self, leads: np.ndarray, fs_hz: float, r_peaks: np.ndarray) -> np.ndarray:
        """Classify every beat of a whole record (or any stretch starting at its start).

        Parameters
        ----------
        leads
            ``(n_leads, n_samples)`` float mV (a 1-D array is one lead), NaN in
            gaps. Lead 0 should be the one most like a limb lead (MLII) where
            there is a choice; only the first two leads are used.
        fs_hz
            Sampling rate, 100–1000 Hz.
        r_peaks
            Sorted integer sample indices of the R peaks.

        Returns
        -------
        float32 ``(len(r_peaks), 5)`` probabilities in :data:`CLASSES` order,
        refined by the patient's beat memory (:mod:`inference.beat_memory`).
        """
        leads, peaks = checked_inputs(leads, fs_hz, r_peaks)
        probs = np.empty((len(peaks), len(CLASSES)), dtype=np.float32)
        state = ft.PatientState()
        memory = PatientBeatMemory()
        # Features are built in chunks so memory stays bounded on long records.
        for start in range(0, len(peaks), INFERENCE_CHUNK_BEATS):
            targets = np.arange(start, min(start + INFERENCE_CHUNK_BEATS, len(peaks)))
            inputs = ft.beat_inputs(leads, fs_hz, peaks, targets, state)
            probs[targets] = memory.refine(inputs.waves, self.classify_inputs(inputs))
        return probs


def first_member_decides(first_probabilities: np.ndarray) -> np.ndarray:
    """Which beats an ensemble's first network decides alone (:meth:`BeatClassifier.classify_inputs`).

    Parameters
    ----------
    first_probabilities
        ``(n_beats, 5)`` the first network's probabilities, in :data:`CLASSES` order.

    Returns
    -------
    bool ``(n_beats,)``: P(N) at least :data:`FIRST_MEMBER_SURE_NORMAL`, or any
    class at least :data:`FIRST_MEMBER_SURE`.
    """
    p = np.asarray(first_probabilities).reshape(-1, len(CLASSES))
    return (p[:, _N] >= FIRST_MEMBER_SURE_NORMAL) | (p.max(axis=1) >= FIRST_MEMBER_SURE)


def beat_calls(probabilities: np.ndarray) -> np.ndarray:
    """The class each beat is called, as indices into :data:`CLASSES`.

    The most probable class, except that S is called over N when its probability
    times :data:`S_OVER_N_WEIGHT` exceeds N's (V, F and Q calls are untouched).

    Parameters
    ----------
    probabilities
        ``(n_beats, 5)`` in :data:`CLASSES` order.

    Returns
    -------
    int64 ``(n_beats,)``.
    """
    p = np.asarray(probabilities).reshape(-1, len(CLASSES))
    calls = p.argmax(axis=1).astype(np.int64)
    n, s = CLASSES.index("N"), CLASSES.index("S")
    calls[(calls == n) & (S_OVER_N_WEIGHT * p[:, s] > p[:, n])] = s
    return calls


def checked_inputs(
    leads: np.ndarray, fs_hz: float, r_peaks: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``leads`` as float32 ``(n_leads, n)`` and ``r_peaks`` as int64, or ValueError saying why."""
    leads = np.asarray(leads, dtype=np.float32)
    if leads.ndim == 1:
        leads = leads[None, :]
    if leads.ndim != 2:
        raise ValueError(f"leads must be (n_leads, n_samples), got shape {leads.shape}")
    if not 100.0 <= fs_hz <= 1000.0:
        raise ValueError(f"fs_hz {fs_hz} outside the supported 100-1000 Hz")
    peaks = np.asarray(r_peaks)
    if peaks.ndim != 1 or (len(peaks) and not np.issubdtype(peaks.dtype, np.integer)):
        raise ValueError("r_peaks must be a 1-D array of integer sample indices")
    peaks = peaks.astype(np.int64)
    if len(peaks) and np.any(np.diff(peaks) <= 0):
        raise ValueError("r_peaks must be strictly increasing")
    return leads, peaks
