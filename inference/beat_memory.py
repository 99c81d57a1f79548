"""Patient beat memory: a beat's ventricular call weighed against this patient's look-alikes.

The beat CNN judges each beat on its own window. Ventricular ectopy is a matter
of QRS shape, and one patient's ventricular beats (and their normal ones) come
back with the same shape over and over, so the beats of this patient that look
most like this one are strong evidence of what it is. :class:`PatientBeatMemory`
keeps the QRS shape and the model's probabilities of the patient's last
:data:`MEMORY_BEATS` beats. For each new beat it takes the
:data:`NEIGHBOUR_BEATS` earlier beats nearest in QRS shape; those within
:data:`LOOKALIKE_LIMIT` of it are its look-alikes, and each of the ten slots
without one holds the beat's own probability. Then, for c in {V, F}::

    p'[c] = MODEL_WEIGHT * p[c] + (1 - MODEL_WEIGHT) * mean over the slots of p_slot[c]

and the five probabilities are rescaled to sum to 1. N and S are left to the
model: a supraventricular beat has the shape of a normal one and differs in
timing and P wave, which the model already reads.

Only earlier beats are read, so live and offline analysis agree beat for beat.
A lone odd-looking beat among look-alikes (noise, an artefact) is pulled
towards what the patient's similar beats were rather than flagged alone, while
a shape the patient has not shown before (a first PVC, the first beat of a run
of a new focus) keeps the network's call.

Measured on the patient-wise DS1 cross-validation (held-out probabilities of two
trainings of the shipped design, EC57 from minute 5): VEB Se/+P went from
89.1/85.4 and 88.9/85.4 to 91.4/89.1 and 91.3/89.2, SVEB was unchanged within
0.2 points; of the true V beats the network called V, the memory turned 31 and
30 away (it won 91 and 107). The constants were chosen on those same folds;
the look-alike limit is the template's match limit, not tuned.
"""

from __future__ import annotations

from typing import Final

import numpy as np

from inference import features as ft

#: Earlier beats searched for look-alikes (about 15 minutes at 70 bpm).
MEMORY_BEATS: Final = 1024
#: Slots of the average: the nearest earlier beats, each counted when it is a look-alike.
NEIGHBOUR_BEATS: Final = 10
#: Share of the beat's own model probability in its refined V and F probabilities.
MODEL_WEIGHT: Final = 0.2
#: An earlier beat is a look-alike when its QRS shape differs from this beat's by at
#: most this share of this beat's QRS energy (the template's match limit).
LOOKALIKE_LIMIT: Final = ft.TEMPLATE_MATCH_LIMIT
#: Classes whose probabilities the memory refines (V and F in ``CLASSES`` order).
REFINED_CLASSES: Final = (2, 3)
#: QRS shape compared: each lead from 0.1 s before to 0.15 s after R, in units of
#: the patient's running QRS amplitude (absent leads are zero).
SHAPE_SAMPLES: Final = ft.TEMPLATE_QRS
SHAPE_SIZE: Final = ft.MAX_LEADS * (SHAPE_SAMPLES.stop - SHAPE_SAMPLES.start)


def qrs_shapes(waves: np.ndarray) -> np.ndarray:
    """QRS shape vectors ``(n_beats, SHAPE_SIZE)`` from model inputs ``(n, 4, T)``."""
    shape = np.asarray(waves, dtype=np.float32)[:, : ft.MAX_LEADS, SHAPE_SAMPLES]
    return np.nan_to_num(shape.reshape(len(shape), -1), nan=0.0, posinf=0.0, neginf=0.0)


class PatientBeatMemory:
    """The last :data:`MEMORY_BEATS` beats of one patient.  Belongs to one thread.

    Parameters
    ----------
    memory_beats, neighbour_beats, model_weight
        Override the module constants (tests, experiments).
    """

    def __init__(
        self,
        memory_beats: int = MEMORY_BEATS,
        neighbour_beats: int = NEIGHBOUR_BEATS,
        model_weight: float = MODEL_WEIGHT,
    ) -> None:
        if memory_beats < 1 or neighbour_beats < 1:
            raise ValueError("memory_beats and neighbour_beats must be at least 1")
        if not 0.0 <= model_weight <= 1.0:
            raise ValueError(f"model_weight {model_weight} outside 0..1")
        self.memory_beats = int(memory_beats)
        self.neighbour_beats = int(neighbour_beats)
        self.model_weight = float(model_weight)
        self._shapes = np.zeros((0, SHAPE_SIZE), np.float64)
        self._sq = np.zeros(0, np.float64)
        self._probs = np.zeros((0, 5), np.float32)

    def __len__(self) -> int:
        return len(self._shapes)

    def refine(self, waves: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """Refined probabilities of the next beats, in order; then remember them.

        Parameters
        ----------
        waves
            float32 ``(n_beats, 4, WINDOW_SAMPLES)`` model inputs of the beats
            (:class:`inference.features.BeatInputs` ``waves``).
        probabilities
            float32 ``(n_beats, 5)`` the model's probabilities for them.

        Returns
        -------
        float32 ``(n_beats, 5)``; a beat with no earlier beat keeps the model's.
        """
        probs = np.asarray(probabilities, dtype=np.float32)
        n = len(probs)
        if n == 0:
            return probs.copy()
        # float64: look-alikes are close, and |a|^2 + |b|^2 - 2 a.b of nearly equal
        # shapes loses most float32 digits, enough to reorder near neighbours
        # differently for different batch sizes (live and offline would then differ).
        shapes = qrs_shapes(waves).astype(np.float64)
        if len(shapes) != n:
            raise ValueError(f"{len(shapes)} waveforms for {n} probability rows")
        sq = np.einsum("ij,ij->i", shapes, shapes)
        old = len(self._shapes)
        pool = np.concatenate([self._shapes, shapes])
        pool_sq = np.concatenate([self._sq, sq])
        pool_probs = np.concatenate([self._probs, probs])
        # Squared distances of each new beat to every remembered and new beat.
        dist = shapes @ pool.T
        dist *= -2.0
        dist += sq[:, None]
        dist += pool_sq[None, :]
        # Only earlier beats, and none more than memory_beats back, are candidates.
        if old == self.memory_beats:
            # A full memory: new beat i's candidates are pool columns i … i + old - 1, so
            # a skewed view (row stride one column longer) holds exactly them and the
            # search needs no mask.
            row = dist.strides[0] + dist.strides[1]
            window = np.lib.stride_tricks.as_strided(
                dist, shape=(n, old), strides=(row, dist.strides[1]), writeable=False
            )
            k = min(self.neighbour_beats, old)
            nearest = np.argpartition(window, k - 1, axis=1)[:, :k]
            near_dist = np.take_along_axis(window, nearest, axis=1)
            nearest += np.arange(n)[:, None]
        else:
            # np.tri(r, c, k)[i, j] is j <= i + k; pool column j is too old for new beat
            # i when j < old + i - memory_beats.
            excluded = np.tri(n, len(pool), old - self.memory_beats - 1, dtype=bool)
            excluded[:, old:] |= np.tri(n, n, 0, dtype=bool).T  # itself and later beats
            dist[excluded] = np.inf
            k = min(self.neighbour_beats, dist.shape[1])
            nearest = np.argpartition(dist, k - 1, axis=1)[:, :k]
            near_dist = np.take_along_axis(dist, nearest, axis=1)
        # A beat with no QRS shape at all (both leads absent) has no look-alikes: all
        # such beats tie at distance 0, and which of them would count is arbitrary.
        alike = (
            np.isfinite(near_dist)
            & (near_dist <= LOOKALIKE_LIMIT * sq[:, None])
            & (sq[:, None] > 0.0)
        )
        # Slots without a look-alike hold the beat's own probability, so a shape the
        # patient has not shown before (a first PVC, the first beat of a run) keeps the
        # network's call instead of taking that of unlike beats.
        share = alike.sum(axis=1) / self.neighbour_beats
        out = probs.copy()
        for c in REFINED_CLASSES:
            alike_mean = (pool_probs[nearest, c] * alike).sum(axis=1) / np.maximum(
                alike.sum(axis=1), 1
            )
            shift = (1.0 - self.model_weight) * share * (alike_mean - probs[:, c])
            out[:, c] = probs[:, c] + shift
        out /= out.sum(axis=1, keepdims=True)
        keep = self.memory_beats
        self._shapes = pool[-keep:]
        self._sq = pool_sq[-keep:]
        self._probs = pool_probs[-keep:]
        return out.astype(np.float32)
