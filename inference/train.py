"""Train the beat classifier: ``vigil train --data DIR [DIR ...] --out FILE.safetensors``.

Training reads WFDB records with reference beat annotations (mitdb, svdb),
takes the reference R peaks (jittered by a few ms so the model tolerates a
detector's timing), builds the features of :mod:`inference.features` afresh
every epoch with augmentation (nstdb noise, sampling-rate jitter; lead dropout,
lead swap and polarity inversion per batch) and fits the CNN of
:mod:`inference.beats` with class-balanced sampling. The model is an ensemble:
each member network is the same recipe with its own seed (``seed``,
``seed + 1`` …), and members (and CV folds) train in parallel worker processes
(``--workers``); each network's weights do not depend on where it trained.

Validation is patient-wise: ``--cv`` trains once per fold with that fold's
MIT-BIH DS1 records left out (whole records, never single beats; svdb always
trains) and scores the held-out records with the EC57 beat classes. The final
model is then trained on everything and a model card is written next to it.

Seeded and reproducible (one torch thread per network): the same data,
arguments and seed give the same weights file.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from inference import features as ft
from inference.beats import (
    CLASSES,
    BeatClassifier,
    BeatCNNConfig,
    beat_calls,
    build_beat_cnn,
    ensemble_of,
    save_beat_model,
    stored_state,
)
from inference.train_data import (
    Record,
    augment_batch,
    augmented_record,
    load_data,
    noise_at_rate,
)
from inference.train_report import aami_scores, confusion, write_model_card

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

#: MIT-BIH DS1 of de Chazal et al. (2004), split by record into four folds that
#: each hold some S- and V-rich patients.
CV_FOLDS: Final = (
    ("101", "106", "112", "122", "209", "215"),
    ("108", "115", "119", "201", "205", "230"),
    ("109", "114", "118", "203", "207"),
    ("116", "124", "208", "220", "223"),
)
LEARNING_PERIOD_S: Final = 300.0  # EC57 does not score the first 5 minutes
FEATURE_GROUP_RECORDS: Final = 16  # records whose features are built together
#: Worker processes by default (each trains one network on one thread); more
#: than a few only add memory on a workstation.
DEFAULT_WORKERS: Final = max(1, min(os.cpu_count() or 1, 4))


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides the trained weights (stored in the model card)."""

    epochs: int = 16
    beats_per_epoch: int = 48_000
    batch_size: int = 256
    learning_rate: float = 3e-3
    # The shipped weights are an exponential average of the last ~500 steps' weights:
    # inter-patient scores swing much less from run to run than with the last step's.
    weight_average_decay: float = 0.998
    weight_decay: float = 1e-3
    label_smoothing: float = 0.05
    sampling_power: float = 0.5  # class share grows as count**power (1 = natural, 0 = equal)
    class_share_cap: dict[str, float] = field(default_factory=lambda: {"F": 0.015, "Q": 0.003})
    noise_probability: float = 0.5
    snr_db: tuple[float, float] = (0.0, 24.0)
    fs_jitter: float = 0.04
    peak_jitter_s: float = 0.006
    # A QRS detector lands within a few ms on narrow beats but can be tens of ms off on
    # wide ventricular and fusion beats, so a share of those moves further.
    wide_jitter_s: float = 0.04
    wide_jitter_fraction: float = 0.3
    drop_second_lead: float = 0.2
    drop_first_lead: float = 0.1
    swap_leads: float = 0.1
    invert_lead: float = 0.05
    seed: int = 0
    # Three networks averaged. Against the mean of its single networks (measured before
    # training noise was resampled to each record's rate): DS1 CV VEB
    # +1.0 Se / +1.7 +P, SVEB +1.0 / +3.1 (with the AF rule); svdb CV VEB -0.4 / +0.6,
    # SVEB +1.3 / +0.6; and none of a single network's seed-to-seed swing.
    architecture: BeatCNNConfig = field(default_factory=lambda: BeatCNNConfig(members=3))

    def to_dict(self) -> dict[str, object]:
        d = asdict(self)
        d["architecture"] = json.loads(self.architecture.to_json())
        return d


# --------------------------------------------------------------------- training


def _class_weights(labels: np.ndarray, cfg: TrainConfig) -> np.ndarray:
    """Per-beat sampling probability giving each class a share ∝ count**power."""
    counts = np.bincount(labels, minlength=len(CLASSES)).astype(np.float64)
    share = np.where(counts > 0, counts**cfg.sampling_power, 0.0)
    share /= share.sum()
    capped = np.zeros(len(CLASSES), dtype=bool)
    for name, cap in cfg.class_share_cap.items():
        i = CLASSES.index(name)
        if share[i] > cap:
            share[i], capped[i] = cap, True
    # What the capped classes give up goes to the others in proportion.
    free = share[~capped].sum()
    if free > 0:
        share[~capped] *= (1.0 - share[capped].sum()) / free
    per_beat = np.where(counts > 0, share / np.maximum(counts, 1), 0.0)
    p = per_beat[labels]
    return p / p.sum()


def fit(
    train: Sequence[Record],
    noise: dict[str, np.ndarray],
    cfg: TrainConfig,
    *,
    validate: Sequence[Record] = (),
    progress: str = "",
    probabilities: dict[str, np.ndarray] | None = None,
    workers: int = 1,
):
    """Train a fresh model (every member network); returns ``(module, history)``.

    ``history`` holds per-epoch loss of each member and, when ``validate`` is
    given, the held-out scores of the model after the last epoch. ``workers``
    above 1 trains members in that many processes (same weights as in-process).
    """
    members = cfg.architecture.members
    jobs = [
        (train, member_config(cfg, m), f"{progress}{_member_label(m, members)}")
        for m in range(members)
    ]
    trained = _train_networks(jobs, noise, workers)
    module = ensemble_of(cfg.architecture, [net for net, _ in trained])
    history: dict[str, list | dict] = {"epochs": [e for _, h in trained for e in h["epochs"]]}
    if validate:
        history["validation"] = evaluate(module, validate, probabilities)
    return module, history


def member_config(cfg: TrainConfig, member: int) -> TrainConfig:
    """The recipe of one member network: the model's, seeded ``seed + member``, one network."""
    return replace(cfg, seed=cfg.seed + member, architecture=replace(cfg.architecture, members=1))


def _member_label(member: int, members: int) -> str:
    return f"member {member + 1}/{members} " if members > 1 else ""


#: Jobs a forked worker reads from its copy of the parent (records are not pickled).
_FORKED_JOBS: list[tuple[Sequence[Record], TrainConfig, str]] = []
_FORKED_NOISE: dict[str, np.ndarray] = {}


def _train_networks(
    jobs: Sequence[tuple[Sequence[Record], TrainConfig, str]],
    noise: dict[str, np.ndarray],
    workers: int,
) -> list[tuple[torch.nn.Module, dict]]:
    """Train one network per ``(records, config, progress label)``, in order."""
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        return [_fit_network(t, noise, c, label) for t, c, label in jobs]
    global _FORKED_JOBS, _FORKED_NOISE
    _FORKED_JOBS, _FORKED_NOISE = list(jobs), noise
    try:
        # fork: the children see the records already in memory; each job returns
        # only its weights (a few hundred kB).
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_start) as pool:
            done = list(pool.map(_forked_job, range(len(jobs))))
    except BrokenProcessPool as exc:
        raise RuntimeError(
            f"a training worker process died ({exc}); out of memory? "
            "Fewer --workers need less memory (each holds its own epoch of features)"
        ) from exc
    finally:
        _FORKED_JOBS, _FORKED_NOISE = [], {}
    out = []
    for (_, c, _), (state, hist) in zip(jobs, done, strict=True):
        net = build_beat_cnn(c.architecture)
        net.load_state_dict(_tensors(state), strict=False)
        out.append((net.eval(), hist))
    return out


def _worker_start() -> None:
    import torch

    torch.set_num_threads(1)


def _forked_job(index: int) -> tuple[dict[str, np.ndarray], dict]:
    train, cfg, label = _FORKED_JOBS[index]
    net, hist = _fit_network(train, _FORKED_NOISE, cfg, label)
    return stored_state(net), hist


def _tensors(state: dict[str, np.ndarray]) -> dict:
    import torch

    return {k: torch.from_numpy(v) for k, v in state.items()}


def _fit_network(
    train: Sequence[Record], noise: dict[str, np.ndarray], cfg: TrainConfig, progress: str
):
    """Train one network (``cfg.architecture.members`` is 1); returns ``(module, history)``."""
    import torch

    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    module = build_beat_cnn(cfg.architecture)
    averaged = torch.optim.swa_utils.AveragedModel(
        module,
        multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(cfg.weight_average_decay),
        use_buffers=True,
    )
    opt = torch.optim.AdamW(
        module.parameters(), lr=cfg.learning_rate, weight_decay=cfg.weight_decay
    )
    steps_per_epoch = math.ceil(cfg.beats_per_epoch / cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=cfg.learning_rate, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.15
    )
    labels_all = np.concatenate([r.labels for r in train])
    owner = np.concatenate([np.full(len(r.labels), i) for i, r in enumerate(train)])
    offset = np.concatenate([np.arange(len(r.labels)) for r in train])
    p = _class_weights(labels_all, cfg)
    noise_by_rate = {fs: noise_at_rate(noise, fs) for fs in sorted({r.fs_hz for r in train})}
    history: dict[str, list | dict] = {"epochs": []}
    started = time.monotonic()
    for epoch in range(cfg.epochs):
        t0 = time.monotonic()
        chosen = rng.choice(len(labels_all), size=cfg.beats_per_epoch, replace=True, p=p)
        waves = np.empty((len(chosen), ft.N_WAVE_CHANNELS, ft.WINDOW_SAMPLES), np.float32)
        scalars = np.empty((len(chosen), ft.N_SCALARS), np.float32)
        for group in range(0, len(train), FEATURE_GROUP_RECORDS):
            members = range(group, min(group + FEATURE_GROUP_RECORDS, len(train)))
            jobs = [
                augmented_record(
                    train[i],
                    noise_by_rate[train[i].fs_hz],
                    cfg,
                    np.random.default_rng([cfg.seed, epoch, i]),
                )
                for i in members
            ]
            for i, inputs in zip(members, ft.record_beat_inputs(jobs), strict=True):
                rows = np.flatnonzero(owner[chosen] == i)
                waves[rows] = inputs.waves[offset[chosen[rows]]]
                scalars[rows] = inputs.scalars[offset[chosen[rows]]]
        y = torch.from_numpy(labels_all[chosen])
        xw, xs = torch.from_numpy(waves), torch.from_numpy(scalars)
        t_feat = time.monotonic() - t0
        module.train()
        order = torch.randperm(len(chosen), generator=gen)
        total, seen = 0.0, 0
        for step in range(steps_per_epoch):
            idx = order[step * cfg.batch_size : (step + 1) * cfg.batch_size]
            bw, bs = augment_batch(xw[idx], xs[idx], cfg, gen)
            loss = torch.nn.functional.cross_entropy(
                module(bw, bs), y[idx], label_smoothing=cfg.label_smoothing
            )
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            averaged.update_parameters(module)
            total += loss.item() * len(idx)
            seen += len(idx)
        elapsed = time.monotonic() - started
        eta = elapsed / (epoch + 1) * (cfg.epochs - epoch - 1)
        history["epochs"].append(
            {"seed": cfg.seed, "epoch": epoch + 1, "loss": round(total / seen, 4)}
        )
        _progress(
            f"{progress}epoch {epoch + 1}/{cfg.epochs} loss {total / seen:.4f} "
            f"(features {t_feat:.0f} s, epoch {time.monotonic() - t0:.0f} s, "
            f"elapsed {elapsed / 60:.1f} min, left ~{eta / 60:.1f} min)"
        )
    return averaged.module.eval(), history


def evaluate(
    module, records: Sequence[Record], probabilities: dict[str, np.ndarray] | None = None
) -> dict[str, object]:
    """Score a network on whole records (reference peaks, no augmentation).

    ``probabilities``, when given, receives each record's class probabilities.
    """
    clf = BeatClassifier(module, BeatCNNConfig(), {}, "0" * 64)
    per_record = {}
    total = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    total_5min = np.zeros_like(total)
    for rec in records:
        probs = clf.classify(rec.leads, rec.fs_hz, rec.peaks)
        if probabilities is not None:
            probabilities[rec.name] = probs
        pred = beat_calls(probs)
        m = confusion(rec.labels, pred)
        late = rec.peaks >= LEARNING_PERIOD_S * rec.fs_hz
        m5 = confusion(rec.labels[late], pred[late])
        total += m
        total_5min += m5
        per_record[rec.name] = {"confusion": m.tolist(), **aami_scores(m)}
    return {
        "records": per_record,
        "confusion": total.tolist(),
        "scores": aami_scores(total),
        "confusion_from_5min": total_5min.tolist(),
        "scores_from_5min": aami_scores(total_5min),
    }


def cross_validate(
    records: Sequence[Record],
    noise: dict[str, np.ndarray],
    cfg: TrainConfig,
    probabilities: dict[str, np.ndarray] | None = None,
    workers: int = 1,
) -> dict[str, object]:
    """Leave-records-out CV over the DS1 folds present; other records always train.

    ``probabilities``, when given, receives each held-out record's class
    probabilities (to score decision rules afterwards, e.g. ``bench/beats_in_af.py``).
    ``workers`` processes train the folds' member networks side by side.
    """
    by_name = {r.name: r for r in records if r.database == "mitdb"}
    folds = [[n for n in fold if n in by_name] for fold in CV_FOLDS]
    folds = [f for f in folds if f]
    if len(folds) < 2:
        raise ValueError("patient-wise CV needs the MIT-BIH DS1 records (mitdb folder)")
    results = []
    total = np.zeros((len(CLASSES), len(CLASSES)), dtype=np.int64)
    total_5 = np.zeros_like(total)
    per_record: dict[str, object] = {}
    members = cfg.architecture.members
    jobs = []
    for k, fold in enumerate(folds):
        held = set(fold)
        train = [r for r in records if not (r.database == "mitdb" and r.name in held)]
        for m in range(members):
            label = f"fold {k + 1}/{len(folds)} {_member_label(m, members)}"
            jobs.append((train, member_config(cfg, m), label))
    trained = _train_networks(jobs, noise, workers)
    for k, fold in enumerate(folds):
        networks = trained[k * members : (k + 1) * members]
        module = ensemble_of(cfg.architecture, [net for net, _ in networks])
        val = evaluate(module, [by_name[n] for n in fold], probabilities)
        hist = {"epochs": [e for _, h in networks for e in h["epochs"]]}
        total += np.array(val["confusion"])
        total_5 += np.array(val["confusion_from_5min"])
        per_record.update(val["records"])
        results.append({"held_out": fold, "scores": val["scores"], "loss": hist["epochs"]})
        s = val["scores"]
        _progress(
            f"fold {k + 1}: VEB Se {s['VEB_Se']} +P {s['VEB_PP']} | "
            f"SVEB Se {s['SVEB_Se']} +P {s['SVEB_PP']}"
        )
    return {
        "folds": results,
        "records": per_record,
        "confusion": total.tolist(),
        "scores": aami_scores(total),
        "confusion_from_5min": total_5.tolist(),
        "scores_from_5min": aami_scores(total_5),
        "config": cfg.to_dict(),
    }


def _progress(text: str) -> None:
    sys.stderr.write(f"[{dt.datetime.now():%H:%M:%S}] {text}\n")
    sys.stderr.flush()


# -------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="vigil train", description=__doc__.splitlines()[0])
    p.add_argument("--data", nargs="+", type=Path, required=True, help="WFDB folders")
    p.add_argument("--out", type=Path, required=True, help="weights file (.safetensors)")
    p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    p.add_argument("--beats-per-epoch", type=int, default=TrainConfig.beats_per_epoch)
    p.add_argument("--seed", type=int, default=TrainConfig.seed)
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument(
        "--workers",
        type=int,
        default=DEFAULT_WORKERS,
        help=f"processes training networks side by side (default {DEFAULT_WORKERS})",
    )
    p.add_argument("--cv", action="store_true", help="patient-wise CV on DS1 first")
    p.add_argument("--cv-only", action="store_true", help="only the CV; writes OUT.cv.json")
    p.add_argument("--cv-from", type=Path, help="CV results (JSON) of the same settings")
    p.add_argument(
        "--cv-probs",
        type=Path,
        help="also save each held-out record's class probabilities here (.npz)",
    )
    p.add_argument(
        "--set", nargs="*", default=[], metavar="KEY=VALUE", help="other TrainConfig fields"
    )
    return p


def _config_from_args(args: argparse.Namespace) -> TrainConfig:
    cfg = TrainConfig(epochs=args.epochs, beats_per_epoch=args.beats_per_epoch, seed=args.seed)
    changes: dict[str, object] = {}
    for item in args.set:
        key, _, value = item.partition("=")
        if key == "architecture":
            changes[key] = BeatCNNConfig.from_json(value)
        elif key in TrainConfig.__dataclass_fields__:
            changes[key] = json.loads(value)
            if isinstance(changes[key], list):
                changes[key] = tuple(changes[key])
        else:
            raise SystemExit(f"unknown setting {key!r}")
    return replace(cfg, **changes)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``vigil train``; returns the process exit status."""
    import torch

    args = build_parser().parse_args(argv)
    torch.set_num_threads(max(1, args.threads))
    cfg = _config_from_args(args)
    command = "vigil train " + " ".join(sys.argv[1:] if argv is None else argv)
    started = time.monotonic()
    records, noise = load_data(args.data)
    _progress(f"loaded {len(records)} records, {sum(len(r.peaks) for r in records)} beats")
    cv = None
    if args.cv or args.cv_only:
        held_out_probs: dict[str, np.ndarray] = {}
        cv = cross_validate(records, noise, cfg, held_out_probs, workers=args.workers)
        if args.cv_probs:
            np.savez_compressed(args.cv_probs, **held_out_probs)
        cv["command"] = command
        cv["wall_time_s"] = round(time.monotonic() - started)
        cv_path = args.out.with_suffix(".cv.json")
        cv_path.parent.mkdir(parents=True, exist_ok=True)
        cv_path.write_text(json.dumps(cv, indent=1))
        _progress(f"CV results in {cv_path}: {json.dumps(cv['scores'])}")
        if args.cv_only:
            return 0
    elif args.cv_from:
        cv = json.loads(args.cv_from.read_text())
        if cv.get("config") != json.loads(json.dumps(cfg.to_dict())):
            _progress("refusing --cv-from: its settings differ from this run's")
            return 2
    fit_started = time.monotonic()
    module, history = fit(records, noise, cfg, progress="final ", workers=args.workers)
    fit_wall = time.monotonic() - fit_started
    trained = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    meta = {
        "trained_utc": trained,
        "training_records": json.dumps(sorted(f"{r.database}/{r.name}" for r in records)),
        "training_config": json.dumps(cfg.to_dict(), sort_keys=True),
        "training_command": command,
    }
    sha = save_beat_model(args.out, module, cfg.architecture, meta)
    write_model_card(
        args.out.with_suffix(".md"),
        weights=args.out,
        sha256=sha,
        records=records,
        cfg=cfg,
        cv=cv,
        command=command,
        fit_wall_s=fit_wall,
        total_wall_s=time.monotonic() - started,
        trained_utc=trained,
        n_parameters=sum(p.numel() for p in module.parameters()),
    )
    _progress(f"wrote {args.out} (sha256 {sha[:16]}…) and {args.out.with_suffix('.md')}")
    return 0


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    raise SystemExit(main())
