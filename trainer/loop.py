"""The training loop (fit) and the choice of the epoch to keep (select).

Fit: BCEWithLogitsLoss on soft or 0/1 targets, AdamW with linear warm-up and linear decay (the decay follows
whichever runs out first, the steps of ``epochs`` or the ``max_minutes`` budget, so a time-boxed run still ends
at a low learning rate), bf16/fp16 autocast on GPU. Select: after each epoch the validation games are scored,
per-label thresholds tuned, and the best epoch (micro F1 at the tuned thresholds) kept; training stops early
after ``patience`` epochs in which neither the validation micro F1 nor the validation loss improved.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from worker.display import bars_disabled

from .config import LOSS, TrainConfig
from .data import Dataset
from .encoding import collate, length_batches
from .metrics import apply_thresholds, compute_metrics, summary_line, tune_thresholds
from .modeling import Built, autocast, predict_probs
from .runlog import RunLog

__all__ = ["BestEpoch", "Fitted", "Objective", "fit", "lr_factor", "reserve_s", "validate"]

log = logging.getLogger(__name__)
LOG_EVERY = 50  # training steps between two log lines


def lr_factor(progress: float, warmup: float) -> float:
    """Linear warm-up to 1 over ``warmup`` of the run, then linear decay to 0 at ``progress`` 1."""
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 0.01)
    return max(0.0, (1.0 - progress) / max(1.0 - warmup, 1e-9))


def reserve_s(rows_after: int, scored_s_per_row: float | None) -> float:
    """Seconds to keep before a ``--max-minutes`` deadline for what follows the last training step: scoring
    ``rows_after`` rows (the last validation, the test games, the publish gate, the dtype agreement) at the
    measured scoring speed, with a 25% margin, plus 10 s to save, publish and plot."""
    return rows_after * 1.25 * (scored_s_per_row or 0.0) + 10.0


def _bce(probs: np.ndarray, targets: np.ndarray) -> float:
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean())


@dataclass
class Fitted:
    """What :func:`fit` leaves: the model holds the kept epoch's weights."""

    best_epoch: int | None
    epochs_run: int
    stop_reason: str  # "epochs", "time" or "early_stopping"
    steps: int
    validation: dict[str, Any]  # the kept epoch's validation metrics (empty without validation games)
    thresholds: np.ndarray  # per label, tuned on the validation games at the kept epoch
    trimmed: bool = False  # the time budget leaves no room for the optional scoring after the fit


@dataclass
class BestEpoch:
    """Select: the epoch with the best validation micro F1, its thresholds and weights; ``stale`` counts epochs
    in which neither it nor the (smoother) validation loss improved, so small validation sets do not stop
    training early."""

    thresholds: np.ndarray
    score: float = -1.0
    epoch: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] | None = None
    best_loss: float = math.inf
    stale: int = 0

    def offer(
        self, epoch: int, score: float, val_loss: float, metrics: dict[str, Any], thresholds: np.ndarray, model: Any
    ) -> None:
        improved = val_loss < self.best_loss
        self.best_loss = min(self.best_loss, val_loss)
        if score > self.score:
            self.score, self.epoch, self.metrics, self.thresholds = score, epoch, metrics, thresholds
            self.state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
            improved = True
        self.stale = 0 if improved else self.stale + 1

    def restore(self, model: Any) -> None:
        if self.state is not None:
            model.load_state_dict(self.state)


class _Run:
    """The state of one fit: model, optimiser, schedule, step count, and the time budget."""

    def __init__(
        self,
        cfg: TrainConfig,
        built: Built,
        train_ids: list[list[int]],
        targets: np.ndarray,
        lr: float,
        deadline: float,
        rows_after: tuple[int, int],
        runlog: RunLog,
        started: float,
        loss: Callable[[Any, Any], Any] | None = None,
    ) -> None:
        import torch

        self.cfg, self.built, self.train_ids, self.lr, self.runlog = cfg, built, train_ids, lr, runlog
        self.targets = torch.from_numpy(targets)
        self.deadline, self.started = deadline, started
        (self.rows_needed, self.rows_optional), self.trimmed = rows_after, False
        model = built.model
        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=lr
        )
        self.loss_fn = loss or getattr(torch.nn, LOSS)()  # the loss the manifest records, unless the objective's
        self.scaler = torch.amp.GradScaler("cuda") if built.autocast_dtype == torch.float16 else None
        self.lengths = [len(x) for x in train_ids]
        self.total_steps = math.ceil(len(train_ids) / cfg.batch_size) * cfg.epochs
        self.step = 0
        self.scored_s_per_row: float | None = None  # scoring speed: a sample before training, then each validation
        self.loop_start = time.monotonic()

    def _reserve(self) -> float:
        """Time to keep after the last step (see :func:`reserve_s`): for all the scoring that follows, unless that
        would take more than half the budget; then only for what publishing needs (``trimmed``)."""
        full = reserve_s(self.rows_needed + self.rows_optional, self.scored_s_per_row)
        self.trimmed = self.rows_optional > 0 and full > 0.5 * (self.deadline - self.loop_start)
        return reserve_s(self.rows_needed, self.scored_s_per_row) if self.trimmed else full

    def measure_scoring(self, ids: list[list[int]]) -> None:
        """Time scoring ``ids`` (a sample of the validation rows): the time budget's first estimate."""
        if ids and self.deadline < math.inf:
            started = time.monotonic()
            predict_probs(self.built.model, ids, self.built.device, self.built.pad_id, self.built.autocast_dtype)
            self.scored_s_per_row = (time.monotonic() - started) / len(ids)

    def _factor(self, now: float) -> float:
        progress = self.step / self.total_steps
        if self.deadline < math.inf:
            time_progress = (now - self.loop_start) / max(self.deadline - self._reserve() - self.loop_start, 1e-9)
            progress = max(progress, time_progress)
        return lr_factor(progress, self.cfg.warmup)

    def _train_step(self, rows: np.ndarray, factor: float) -> float:
        import torch

        for group in self.optimizer.param_groups:
            group["lr"] = self.lr * factor
        model, device = self.built.model, self.built.device
        input_ids, mask = collate(self.train_ids, rows, self.built.pad_id)
        with autocast(self.built.autocast_dtype):
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
        loss = self.loss_fn(logits.float(), self.targets[rows].to(device))
        self.optimizer.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            self.optimizer.step()
        self.step += 1
        return float(loss.detach())

    def epoch(self, epoch: int, rng: np.random.Generator) -> tuple[float, int, bool]:
        """One pass over the training rows: (mean loss, steps taken, out of time)."""
        from tqdm import tqdm

        self.built.model.train()
        total, count, window, window_n = 0.0, 0, 0.0, 0
        bar = tqdm(
            length_batches(self.lengths, self.cfg.batch_size, rng),
            desc=f"epoch {epoch}/{self.cfg.epochs}",
            file=sys.stderr,
            disable=bars_disabled(self.cfg.quiet, self.cfg.progress),
            leave=False,
            mininterval=1.0,
            dynamic_ncols=True,
        )
        out_of_time = False
        for rows in bar:
            now = time.monotonic()
            if now + self._reserve() >= self.deadline:
                out_of_time = True
                break
            factor = self._factor(now)
            value = self._train_step(rows, factor)
            total, count, window, window_n = total + value, count + 1, window + value, window_n + 1
            if self.step % LOG_EVERY == 0:
                self.runlog.write(
                    {
                        "type": "step",
                        "epoch": epoch,
                        "step": self.step,
                        "loss": window / window_n,
                        "lr": self.lr * factor,
                        "elapsed_s": round(time.monotonic() - self.started, 1),
                    }
                )
                bar.set_postfix(loss=f"{window / window_n:.4f}", refresh=False)
                window, window_n = 0.0, 0
        bar.close()
        return (total / count if count else math.nan), count, out_of_time


def validate(
    built: Built, val_set: Dataset, val_ids: list[list[int]]
) -> tuple[dict[str, Any], np.ndarray, dict[str, Any]]:
    """Validation metrics at thresholds tuned on the validation games; (metrics, thresholds, log fields)."""
    labels = val_set.labels
    probs = predict_probs(built.model, val_ids, built.device, built.pad_id, built.autocast_dtype)
    tuned = tune_thresholds(val_set.hard, probs)
    metrics = compute_metrics(val_set.hard, apply_thresholds(probs, tuned), labels, probs, list(tuned))
    fields = {
        "val_loss": _bce(probs, val_set.targets),
        "micro_f1": metrics["micro_f1"],
        "macro_f1": metrics["macro_f1"],
        "exact_match": metrics["exact_match"],
        "macro_roc_auc": metrics["macro_roc_auc"],
        "micro_f1_at_0_5": compute_metrics(val_set.hard, probs >= 0.5, labels)["micro_f1"],
        "per_label_f1": {k: v["f1"] for k, v in metrics["per_label"].items()},
        "per_label_roc_auc": {k: v["roc_auc"] for k, v in metrics["per_label"].items()},
        "thresholds": dict(zip(labels, tuned.tolist(), strict=True)),
    }
    return metrics, tuned, fields


Validate = Callable[[Built, Dataset, list[list[int]]], tuple[dict[str, Any], np.ndarray, dict[str, Any]]]


@dataclass(frozen=True)
class Objective:
    """What :func:`fit` minimises (``loss(logits, targets)``: a scalar tensor; None: the :data:`LOSS` over every
    label) and how an epoch is validated (:func:`validate`'s signature and result); a multi-task model's heads
    have their own (:mod:`.multitask`)."""

    loss: Callable[[Any, Any], Any] | None = None
    validate: Validate = validate


def _end_of_epoch(
    run: _Run,
    best: BestEpoch,
    epoch: int,
    mean_loss: float,
    val_set: Dataset,
    val_ids: list[list[int]],
    objective: Objective,
) -> None:
    """Validate, log, and offer the epoch to ``best``."""
    val_start = time.monotonic()
    record: dict[str, Any] = {"type": "epoch", "epoch": epoch, "step": run.step, "train_loss": mean_loss}
    if len(val_set):
        metrics, tuned, fields = objective.validate(run.built, val_set, val_ids)
        record.update(fields)
        score = metrics["micro_f1"] or 0.0
    else:
        metrics, tuned, score = {}, np.full(len(val_set.labels), 0.5), float(epoch)
    if len(val_set):
        run.scored_s_per_row = (time.monotonic() - val_start) / len(val_set)
    record["elapsed_s"] = round(time.monotonic() - run.started, 1)
    run.runlog.write(record)
    log.info(
        "epoch %d: train loss %.4f; validation %s", epoch, mean_loss, summary_line(metrics) if metrics else "(none)"
    )
    best.offer(epoch, score, record.get("val_loss", math.inf), metrics, tuned, run.built.model)


def fit(
    cfg: TrainConfig,
    built: Built,
    train_ids: list[list[int]],
    targets: np.ndarray,
    val_set: Dataset,
    val_ids: list[list[int]],
    *,
    lr: float,
    deadline: float,
    rows_after: tuple[int, int],
    runlog: RunLog,
    started: float,
    objective: Objective = Objective(),
) -> Fitted:
    """Train ``built.model`` on ``train_ids``/``targets``; leave the selected epoch's weights in it. ``rows_after``:
    the rows the run scores after the fit, for the time budget: (needed to publish: the publish gate, a short
    dtype agreement; optional: the test games, the rest of the agreement)."""
    needed, optional = rows_after
    rows_after = (len(val_set) + needed, optional)
    run = _Run(cfg, built, train_ids, targets, lr, deadline, rows_after, runlog, started, objective.loss)
    run.measure_scoring(val_ids[:512])
    rng = np.random.default_rng(cfg.seed)
    best = BestEpoch(thresholds=np.full(len(val_set.labels), 0.5))
    epochs_run, stop_reason = 0, "epochs"
    for epoch in range(1, cfg.epochs + 1):
        mean_loss, steps, out_of_time = run.epoch(epoch, rng)
        if steps == 0:
            stop_reason = "time"
            break
        epochs_run = epoch
        _end_of_epoch(run, best, epoch, mean_loss, val_set, val_ids, objective)
        if out_of_time:
            stop_reason = "time"
            break
        if len(val_set) and best.stale >= cfg.patience:
            stop_reason = "early_stopping"
            break
    best.restore(built.model)
    return Fitted(
        best.epoch,
        epochs_run,
        stop_reason,
        run.step,
        best.metrics,
        best.thresholds,
        run.trimmed and run.deadline < math.inf,
    )
