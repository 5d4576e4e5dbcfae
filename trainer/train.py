"""Fine-tune (``--base``) or train from scratch a multi-label sequence classifier and publish it.

The loop: BCEWithLogitsLoss on soft or 0/1 targets, AdamW with linear warm-up and linear decay (the
decay follows whichever runs out first, the steps of ``epochs`` or the ``max_minutes`` budget, so a
time-boxed run still ends at a low learning rate), bf16/fp16 autocast on GPU. After each epoch the
validation games are scored, per-label thresholds tuned, and the best epoch (micro F1 at the tuned
thresholds) kept; training stops early after ``patience`` epochs in which neither the validation micro F1
nor the validation loss improved. The best weights are published as the next version of the repository
with :func:`worker.repository.publish_version`; the manifest records labels, thresholds, preprocessing,
validation (and test) metrics, the label agreement of reduced precisions (int8, bfloat16) with float32 on
validation comments, the data fingerprint and every training argument.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import ConfigError, InputFileError
from worker.repository import Manifest, publish_version
from worker.text import MODES

from .data import Dataset, Split, load_dataset, split_games
from .encoding import collate, encode_texts, length_batches, serving_backend
from .metrics import apply_thresholds, compute_metrics, summary_line, tune_thresholds
from .modeling import autocast, build_model, default_lr, predict_probs
from .precision import record_agreement
from .runlog import RunLog, default_run_dir

__all__ = ["TrainConfig", "TrainResult", "train", "train_model"]

log = logging.getLogger(__name__)


@dataclass
class TrainConfig:
    """Every option of ``livetopic train``; recorded in the manifest's ``training_args``."""

    labels: list[str] | None = None
    base: str | None = None
    preset: str = "mini"
    preprocess: str | None = None  # None: the base version's, else "raw"
    lowercase: bool = True
    epochs: int = 10
    max_minutes: float | None = None
    seed: int = 0
    lr: float | None = None  # None: 1e-5 from a base model, more from scratch (see modeling.default_lr)
    batch_size: int = 32
    max_length: int = 64
    val_fraction: float = 0.1
    test_fraction: float = 0.0
    val_games: list[str] | None = None
    test_games: list[str] | None = None
    targets: str = "auto"  # soft | hard | auto (soft when the data has soft scores)
    patience: int = 5
    warmup: float = 0.06
    weight_decay: float = 0.01
    device: str = "auto"
    threads: int | None = None
    limit: int | None = None
    dropout: float | None = None  # from scratch: hidden and attention dropout (None: 0.1)
    run_dir: str | None = None
    name: str = "livetopic"
    progress: bool = True
    log_every: int = 50
    agreement_n: int = 2000  # validation comments for the dtype agreement check before publishing (0: skip)

    def check(self) -> None:
        if self.preprocess is not None and self.preprocess not in MODES:
            raise ConfigError(f"--preprocess must be one of {', '.join(MODES)}, got {self.preprocess!r}")
        if self.targets not in ("soft", "hard", "auto"):
            raise ConfigError(f"--targets must be soft, hard or auto, got {self.targets!r}")
        if self.epochs < 1 or self.batch_size < 1 or not 8 <= self.max_length <= 4096:
            raise ConfigError("--epochs and --batch-size must be >= 1, --max-length in [8, 4096]")
        if not (0.0 <= self.val_fraction < 1.0 and 0.0 <= self.test_fraction < 1.0):
            raise ConfigError("--val-fraction and --test-fraction must be in [0, 1)")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError("--max-minutes must be > 0")
        if self.agreement_n < 0:
            raise ConfigError("--agreement-n must be >= 0")


@dataclass
class TrainResult:
    version: int
    repo: Path
    metrics: dict[str, Any]
    thresholds: dict[str, float]
    run_dir: Path


# --- data -----------------------------------------------------------------------------------------------
def _split(cfg: TrainConfig, data: Dataset) -> tuple[Dataset, Dataset, Dataset, Split]:
    split = split_games(data.groups, val_fraction=cfg.val_fraction, test_fraction=cfg.test_fraction,
                        val_games=cfg.val_games, test_games=cfg.test_games)
    train, val, test = data.in_groups(split.train), data.in_groups(split.val), data.in_groups(split.test)
    if not len(val) and cfg.val_fraction > 0 and len(train) >= 10:
        # one game only: nothing to hold out by game, so validate on its last rows (optimistic)
        cut = len(train) - max(1, int(len(train) * cfg.val_fraction))
        log.warning("only one game/file for training: validating on its last %d rows, which "
                    "overestimates quality; give more files (games) or --val-games", len(train) - cut)
        val, train = train.subset(range(cut, len(train))), train.subset(range(cut))
    if cfg.limit and len(train) > cfg.limit:
        rows = np.sort(np.random.default_rng(cfg.seed).choice(len(train), cfg.limit, replace=False))
        train = train.subset(rows)
    if not len(train):
        raise InputFileError("no training rows left after holding out validation/test games")
    return train, val, test, split


# --- the loop -------------------------------------------------------------------------------------------
def _lr_factor(progress: float, warmup: float) -> float:
    if warmup > 0 and progress < warmup:
        return max(progress / warmup, 0.01)
    return max(0.0, (1.0 - progress) / max(1.0 - warmup, 1e-9))


def _bce(probs: np.ndarray, targets: np.ndarray) -> float:
    p = np.clip(probs.astype(np.float64), 1e-7, 1 - 1e-7)
    return float(-(targets * np.log(p) + (1 - targets) * np.log(1 - p)).mean())


def _validate(model: Any, val_set: Dataset, val_ids: list[list[int]], device: str, pad_id: int,
              autocast_dtype: Any) -> tuple[dict[str, Any], np.ndarray, dict[str, Any]]:
    """Validation metrics at thresholds tuned on the validation games; (metrics, thresholds, log fields)."""
    labels = val_set.labels
    probs = predict_probs(model, val_ids, device, pad_id, autocast_dtype)
    tuned = tune_thresholds(val_set.hard, probs)
    metrics = compute_metrics(val_set.hard, apply_thresholds(probs, tuned), labels, probs, list(tuned))
    fields = {
        "val_loss": _bce(probs, val_set.targets), "micro_f1": metrics["micro_f1"], "macro_f1": metrics["macro_f1"],
        "exact_match": metrics["exact_match"], "macro_roc_auc": metrics["macro_roc_auc"],
        "micro_f1_at_0_5": compute_metrics(val_set.hard, probs >= 0.5, labels)["micro_f1"],
        "per_label_f1": {k: v["f1"] for k, v in metrics["per_label"].items()},
        "per_label_roc_auc": {k: v["roc_auc"] for k, v in metrics["per_label"].items()},
        "thresholds": dict(zip(labels, tuned.tolist(), strict=True)),
    }
    return metrics, tuned, fields


def train(data_paths: Sequence[Path | str], out_repo: Path | str, cfg: TrainConfig) -> TrainResult:
    """Train as configured and publish the best epoch as the next version of ``out_repo``."""
    import torch
    from tqdm import tqdm

    cfg.check()
    started = time.monotonic()
    deadline = started + cfg.max_minutes * 60 if cfg.max_minutes else math.inf
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)

    data = load_dataset(data_paths, cfg.labels)
    train_set, val_set, test_set, split = _split(cfg, data)
    labels = data.labels
    soft = cfg.targets == "soft" or (cfg.targets == "auto" and data.is_soft)
    log.info("data: %d rows, %d labels; train %d rows (%d games), validation %d (%d), test %d (%d); %s targets",
             len(data), len(labels), len(train_set), len(split.train), len(val_set), len(split.val),
             len(test_set), len(split.test), "soft" if soft else "0/1")

    run_dir = Path(cfg.run_dir) if cfg.run_dir else default_run_dir()
    runlog = RunLog(run_dir)
    workdir = tempfile.TemporaryDirectory(prefix="livetopic-train-")
    try:
        built = build_model(cfg, labels, train_set.texts, Path(workdir.name))
        model, tokenizer, spec, device = built.model, built.tokenizer, built.preprocessing, built.device
        backend = serving_backend(tokenizer, cfg.max_length)
        preprocess = spec.build()
        pad_id = int(tokenizer.pad_token_id or 0)
        train_ids = encode_texts(backend, preprocess, train_set.texts)
        val_ids = encode_texts(backend, preprocess, val_set.texts)
        train_targets = torch.from_numpy(train_set.targets if soft else train_set.hard.astype(np.float32))
        lr = cfg.lr if cfg.lr is not None else default_lr(cfg.base, cfg.preset)

        decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "LayerNorm" not in n]
        no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "LayerNorm" not in n)]
        optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg.weight_decay},
                                       {"params": no_decay, "weight_decay": 0.0}], lr=lr)
        loss_fn = torch.nn.BCEWithLogitsLoss()
        scaler = torch.amp.GradScaler("cuda") if built.autocast_dtype == torch.float16 else None
        lengths = [len(x) for x in train_ids]
        steps_per_epoch = math.ceil(len(train_ids) / cfg.batch_size)
        total_steps = steps_per_epoch * cfg.epochs
        loop_start = time.monotonic()

        best: dict[str, Any] = {"micro_f1": -1.0}
        best_loss = math.inf
        best_state: dict[str, Any] | None = None
        thresholds = np.full(len(labels), 0.5)
        step, stale, epochs_run, stop_reason = 0, 0, 0, "epochs"
        val_seconds = 0.0
        for epoch in range(1, cfg.epochs + 1):
            model.train()
            running, count, window, window_n = 0.0, 0, 0.0, 0
            bar = tqdm(length_batches(lengths, cfg.batch_size, rng), desc=f"epoch {epoch}/{cfg.epochs}",
                       file=sys.stderr, disable=not cfg.progress, leave=False, mininterval=1.0, dynamic_ncols=True)
            out_of_time = False
            for rows in bar:
                now = time.monotonic()
                reserve = 1.5 * val_seconds * (1 + len(test_set) / max(len(val_set), 1)) + 5.0
                if now + reserve >= deadline:
                    out_of_time = True
                    break
                time_progress = (now - loop_start) / max(deadline - reserve - loop_start, 1e-9)
                factor = _lr_factor(max(step / total_steps, time_progress if deadline < math.inf else 0.0),
                                    cfg.warmup)
                for group in optimizer.param_groups:
                    group["lr"] = lr * factor
                input_ids, mask = collate(train_ids, rows, pad_id)
                target = train_targets[rows].to(device)
                with autocast(built.autocast_dtype):
                    logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits
                loss = loss_fn(logits.float(), target)
                optimizer.zero_grad(set_to_none=True)
                if scaler is not None:
                    scaler.scale(loss).backward()
                    scaler.unscale_(optimizer)
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
                step += 1
                value = float(loss.detach())
                running += value
                window += value
                window_n += 1
                count += 1
                if step % cfg.log_every == 0:
                    runlog.write({"type": "step", "epoch": epoch, "step": step, "loss": window / window_n,
                                  "lr": lr * factor, "elapsed_s": round(time.monotonic() - started, 1)})
                    bar.set_postfix(loss=f"{window / window_n:.4f}", refresh=False)
                    window, window_n = 0.0, 0
            bar.close()
            if count == 0:
                stop_reason = "time"
                break
            epochs_run = epoch
            val_start = time.monotonic()
            record: dict[str, Any] = {"type": "epoch", "epoch": epoch, "step": step, "train_loss": running / count}
            if len(val_set):
                metrics, tuned, fields = _validate(model, val_set, val_ids, device, pad_id, built.autocast_dtype)
                record.update(fields)
                score = metrics["micro_f1"] or 0.0
            else:
                metrics, tuned, score = {}, np.full(len(labels), 0.5), float(epoch)
            val_seconds = time.monotonic() - val_start
            record["elapsed_s"] = round(time.monotonic() - started, 1)
            runlog.write(record)
            log.info("epoch %d: train loss %.4f; validation %s", epoch, record["train_loss"],
                     summary_line(metrics) if metrics else "(none)")
            # the best epoch is the best validation micro F1; patience runs out when neither it nor the
            # (smoother) validation loss improves, so small validation sets do not stop training early
            val_loss = record.get("val_loss", math.inf)
            improved = val_loss < best_loss
            best_loss = min(best_loss, val_loss)
            if score > best["micro_f1"]:
                best = {"micro_f1": score, "epoch": epoch, "metrics": metrics}
                thresholds = tuned
                best_state = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
                improved = True
            stale = 0 if improved else stale + 1
            if out_of_time:
                stop_reason = "time"
                break
            if len(val_set) and stale >= cfg.patience:
                stop_reason = "early_stopping"
                break

        if best_state is not None:
            model.load_state_dict(best_state)
        result_metrics: dict[str, Any] = {"best_epoch": best.get("epoch"), "epochs_run": epochs_run,
                                          "stop_reason": stop_reason, "steps": step}
        if best.get("metrics"):
            result_metrics["validation"] = best["metrics"]
        if len(test_set):
            probs = predict_probs(model, encode_texts(backend, preprocess, test_set.texts), device, pad_id,
                            built.autocast_dtype)
            result_metrics["test"] = compute_metrics(test_set.hard, apply_thresholds(probs, thresholds), labels,
                                                     probs, list(thresholds))
            log.info("test games: %s", summary_line(result_metrics["test"]))
        elapsed = time.monotonic() - started
        training_args = {
            **dataclasses.asdict(cfg), "data": [str(p) for p in data_paths], "files": data.files,
            "lr": lr, "soft_targets": soft, "vocab_size": int(model.config.vocab_size),
            "n_train": len(train_set), "n_val": len(val_set), "n_test": len(test_set),
            **split.to_dict(), "elapsed_s": round(elapsed, 1), "device": device,
        }
        threshold_map = {label: round(float(t), 4) for label, t in zip(labels, thresholds, strict=True)}
        manifest = Manifest(name=cfg.name, labels=labels, problem_type="multi_label_classification",
                            thresholds=threshold_map, preprocessing=spec, max_length=cfg.max_length,
                            metrics=result_metrics, data_fingerprint=data.fingerprint,
                            training_args=training_args)

        stage = Path(workdir.name) / "stage"
        model.to("cpu")
        model.save_pretrained(str(stage))
        tokenizer.save_pretrained(str(stage))
        if cfg.agreement_n > 0 and len(val_set):
            agreement = record_agreement(stage, manifest, val_set.texts, cfg.agreement_n, cfg.seed)
            manifest = manifest.model_copy(update={"dtype_agreement": agreement})
            result_metrics["dtype_agreement"] = agreement

        def write(out: Path) -> None:
            shutil.copytree(stage, out, dirs_exist_ok=True)

        version = publish_version(out_repo, write, manifest)
        runlog.write({"type": "published", "repo": str(out_repo), "version": version, **result_metrics,
                      "thresholds": threshold_map, "elapsed_s": round(elapsed, 1)})
        runlog.plot()
        runlog.write_json("summary.json", {"repo": str(out_repo), "version": version, "metrics": result_metrics,
                                           "thresholds": threshold_map, "training_args": training_args})
        log.info("published %s version %d in %.0fs (run directory %s)", out_repo, version, elapsed, run_dir)
        return TrainResult(version, Path(out_repo), result_metrics, threshold_map, run_dir)
    finally:
        runlog.close()
        workdir.cleanup()


def train_model(data_paths: Sequence[Path | str], out_repo: Path | str, labels: Sequence[str] | None = None,
                preset: str = "tiny", epochs: int = 40, max_minutes: float | None = 2.0,
                **options: Any) -> int:
    """Train on ``data_paths`` and publish into ``out_repo``; returns the version number.

    The defaults suit a demo: a tiny model from scratch, at most 40 epochs or 2 minutes (a few hundred
    labelled comments train in well under a minute on one CPU core). ``options`` are further
    :class:`TrainConfig` fields (``lr``, ``batch_size``, ``seed``, ``run_dir``, ``threads``, ``progress``…).
    """
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise TypeError(f"unknown training options: {', '.join(unknown)}")
    cfg = TrainConfig(labels=list(labels) if labels else None, preset=preset, epochs=epochs,
                      max_minutes=max_minutes, **options)
    return train(data_paths, out_repo, cfg).version

