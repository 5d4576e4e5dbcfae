"""``livetopic train``: labelled files → fit (:mod:`.loop`) → select the best epoch → gate (:mod:`.gate`) →
publish (:mod:`.publish`) as the next version of a model repository, or keep it as a candidate."""

from __future__ import annotations

import dataclasses
import logging
import math
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from worker.errors import InputFileError, LivetopicError
from worker.model.ngrams import NgramMember
from worker.model.repository import latest_version
from worker.model.tokenizer import encode_texts, serving_backend
from worker.options import validate_options

from . import ngram_fit
from .config import LOSS, TrainConfig, TrainResult
from .data import Dataset, Split, load_dataset, split_games
from .gate import Verdict, judge
from .layers import load_layer, single_label
from .loop import Fitted, Objective, fit
from .metrics import apply_thresholds, compute_metrics, summary_line
from .modeling import Built, build_model, predict_probs
from .multitask import LOSS as MULTITASK_LOSS
from .multitask import OBJECTIVE, heads_metrics, load_multitask
from .ngram_fit import choose_blend, fit_member
from .publish import CANDIDATES, manifest_for, publish
from .runlog import RunLog, default_run_dir

__all__ = ["TrainConfig", "TrainResult", "train", "train_model"]

log = logging.getLogger(__name__)


def _load(data_paths: Sequence[Path | str], cfg: TrainConfig) -> Dataset:
    """The rows to train on: ``--labels``, a layer's (:mod:`.layers`), or the three heads' (:mod:`.multitask`)."""
    if cfg.layer == "multitask":
        return load_multitask(data_paths)
    return load_layer(data_paths, cfg.layer) if cfg.layer else load_dataset(data_paths, cfg.labels)


def _split(cfg: TrainConfig, data: Dataset) -> tuple[Dataset, Dataset, Dataset, Split]:
    split = split_games(
        data.groups,
        val_fraction=cfg.val_fraction,
        test_fraction=cfg.test_fraction,
        val_games=cfg.val_games,
        test_games=cfg.test_games,
    )
    train, val, test = data.in_groups(split.train), data.in_groups(split.val), data.in_groups(split.test)
    if not len(val) and cfg.val_fraction > 0 and len(train) >= 10:
        # one game only: nothing to hold out by game, so validate on its last rows (optimistic)
        cut = len(train) - max(1, int(len(train) * cfg.val_fraction))
        log.warning(
            "only one game/file for training: validating on its last %d rows, which "
            "overestimates quality; give more files (games) or --val-games",
            len(train) - cut,
        )
        val, train = train.subset(range(cut, len(train))), train.subset(range(cut))
    if cfg.limit and len(train) > cfg.limit:
        rows = np.sort(np.random.default_rng(cfg.seed).choice(len(train), cfg.limit, replace=False))
        train = train.subset(rows)
    if not len(train):
        raise InputFileError("no training rows left after holding out validation/test games")
    return train, val, test, split


def _test_metrics(
    built: Built, test_set: Dataset, thresholds: np.ndarray, encode: Any, member: NgramMember | None
) -> dict[str, Any]:
    ids = encode(test_set.texts)
    probs = predict_probs(built.model, ids, built.device, built.pad_id, built.autocast_dtype)
    if member is not None:
        probs = member.blend(probs, member.probabilities(ids))
    if test_set.mask is not None:  # a multi-task model: each head on its own rows
        metrics = heads_metrics(probs, test_set, thresholds)[0]
    else:
        metrics = compute_metrics(
            test_set.hard, apply_thresholds(probs, thresholds), test_set.labels, probs, list(thresholds)
        )
    log.info("test games: %s", summary_line(metrics))
    return metrics


def _fit_member(cfg: TrainConfig, built: Built, train_ids: list[list[int]], train_set: Dataset) -> NgramMember | None:
    """The n-gram member (:mod:`.ngram_fit`) of a multi-label run with ``--ngrams``, fitted before the encoder so
    that its time comes out of the budget."""
    if not cfg.ngrams or single_label(cfg.layer) or cfg.layer == "multitask":
        return None
    if "ngrams" not in cfg.model_fields_set and not ngram_fit.available():  # the default, without scikit-learn
        log.warning("scikit-learn is not installed (the [train] extra): training the encoder without its n-gram member")
        return None
    return fit_member(train_ids, train_set.hard, int(built.model.config.vocab_size) + 1, seed=cfg.seed)


def _blend(
    built: Built, fitted: Fitted, member: NgramMember | None, val_set: Dataset, val_ids: list[list[int]]
) -> tuple[Fitted, NgramMember | None, dict[str, Any]]:
    """The kept epoch blended with the member at the weight best on the validation games: the fit with the
    blend's thresholds and validation metrics, the member (None: the encoder alone was best) and what was tried."""
    if member is None or not len(val_set):
        return fitted, None, {}
    encoder = predict_probs(built.model, val_ids, built.device, built.pad_id, built.autocast_dtype)
    blend = choose_blend(member, val_ids, val_set.hard, encoder, val_set.labels)
    record = {
        "encoder_weight": blend.member.spec.encoder_weight if blend.member else 1.0,
        "validation_micro_f1_by_encoder_weight": {str(w): f1 for w, f1 in blend.scores.items()},
    }
    return dataclasses.replace(fitted, thresholds=blend.thresholds, validation=blend.validation), blend.member, record


SHORT_AGREEMENT = 500  # validation comments of the dtype agreement when --max-minutes leaves little time


def _rows_after(
    cfg: TrainConfig, out_repo: Path | str, val_set: Dataset, test_set: Dataset, blend: bool
) -> tuple[int, int]:
    """Rows scored after the fit, (needed, optional): the validation games once more for the blend with an n-gram
    member, the version it would replace on them and a short dtype agreement (float32 and up to two reduced
    precisions) are needed; the test games and the rest of the agreement (up to ``agreement_n`` comments) can give
    way to training time."""
    gate = len(val_set) if latest_version(out_repo) is not None else 0
    agreement = min(cfg.agreement_n, len(val_set))
    short = min(agreement, SHORT_AGREEMENT)
    return (len(val_set) if blend else 0) + gate + 3 * short, len(test_set) + 3 * (agreement - short)


def _after_fit(cfg: TrainConfig, fitted: Fitted) -> TrainConfig:
    """The configuration of the steps after the fit: with ``trimmed``, a short dtype agreement."""
    if not fitted.trimmed:
        return cfg
    log.warning(
        "--max-minutes leaves little time after training: the test games are not scored in this run "
        "(`livetopic evaluate --split test` scores them) and the dtype agreement uses %d comments",
        min(cfg.agreement_n, SHORT_AGREEMENT),
    )
    return cfg.model_copy(update={"agreement_n": min(cfg.agreement_n, SHORT_AGREEMENT)})


def _result_metrics(fitted: Fitted, split: Split) -> dict[str, Any]:
    """The run's metrics; ``validation`` (and later ``test``) say on how many games they were scored, as
    ``evaluate`` does (0 validation games: the last rows of a single game)."""
    out: dict[str, Any] = {
        "best_epoch": fitted.best_epoch,
        "epochs_run": fitted.epochs_run,
        "stop_reason": fitted.stop_reason,
        "steps": fitted.steps,
    }
    if fitted.validation:
        out["validation"] = {**fitted.validation, "games": len(split.val)}
    return out


def _training_args(
    cfg: TrainConfig,
    data_paths: Sequence[Path | str],
    data: Dataset,
    soft: bool,
    built: Built,
    sets: tuple[Dataset, Dataset, Dataset],
    split: Split,
    started: float,
) -> dict[str, Any]:
    """The manifest's ``training_args``: every option as used (the recipe's defaults filled in), the data, the
    split and the run."""
    options = cfg.model_dump(mode="json", include=set(TrainConfig.model_fields))  # not TrainOptions' paths
    return {
        **options,
        "data": [str(p) for p in data_paths],
        "files": data.files,
        "recipe": "seed card (--base)" if cfg.base else "from scratch",
        "loss": MULTITASK_LOSS if cfg.layer == "multitask" else LOSS,
        "soft_targets": soft,
        "vocab_size": int(built.model.config.vocab_size),
        **{f"n_{name}": len(rows) for name, rows in zip(("train", "val", "test"), sets, strict=True)},
        **split.to_dict(),
        "elapsed_s": round(time.monotonic() - started, 1),
        "device": built.device,
    }


def _log_split(data: Dataset, sets: tuple[Dataset, Dataset, Dataset], split: Split, soft: bool) -> None:
    train_set, val_set, test_set = sets
    log.info(
        "data: %d rows, %d labels; train %d rows (%d games), validation %d (%d), test %d (%d); %s targets",
        *(len(data), len(data.labels), len(train_set), len(split.train), len(val_set), len(split.val)),
        *(len(test_set), len(split.test), "soft" if soft else "0/1"),
    )


def _fit_targets(train_set: Dataset, soft: bool) -> np.ndarray:
    """What the model learns: the teacher's scores or 0/1; NaN where a head learns nothing (not its rows)."""
    targets = train_set.targets if soft else train_set.hard.astype(np.float32)
    if train_set.mask is not None:
        targets = np.where(train_set.mask, targets, np.float32(np.nan))
    return targets


def train(data_paths: Sequence[Path | str], out_repo: Path | str, cfg: TrainConfig) -> TrainResult:
    """Train as configured and publish the best epoch as the next version of ``out_repo``."""
    started = time.monotonic()
    import torch

    deadline = started + cfg.max_minutes * 60 if cfg.max_minutes else math.inf
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    data = _load(data_paths, cfg)
    train_set, val_set, test_set, split = _split(cfg, data)
    soft = cfg.targets == "soft" or (cfg.targets == "auto" and data.is_soft)
    _log_split(data, (train_set, val_set, test_set), split, soft)
    runlog = RunLog(Path(cfg.run_dir) if cfg.run_dir else default_run_dir())
    with tempfile.TemporaryDirectory(prefix="livetopic-train-") as workdir:
        try:
            built = build_model(cfg, data.labels, train_set.texts, Path(workdir))
            backend = serving_backend(built.tokenizer, cfg.max_length)

            def encode(texts: list[str]) -> list[list[int]]:
                return encode_texts(backend, built.preprocessing.build(), texts)

            train_ids, val_ids = encode(train_set.texts), encode(val_set.texts)
            member = _fit_member(cfg, built, train_ids, train_set)
            fitted = fit(
                cfg,
                built,
                train_ids,
                _fit_targets(train_set, soft),
                val_set,
                val_ids,
                lr=cfg.lr,
                deadline=deadline,
                rows_after=_rows_after(cfg, out_repo, val_set, test_set, member is not None),
                runlog=runlog,
                started=started,
                objective=OBJECTIVE if cfg.layer == "multitask" else Objective(),
            )
            fitted, member, blended = _blend(built, fitted, member, val_set, val_ids)
            metrics = {**_result_metrics(fitted, split), **({"ngram_blend": blended} if blended else {})}
            cfg = _after_fit(cfg, fitted)
            if len(test_set) and not fitted.trimmed:
                metrics["test"] = {
                    **_test_metrics(built, test_set, fitted.thresholds, encode, member),
                    "games": len(split.test),
                }
            sets = (train_set, val_set, test_set)
            training_args = _training_args(cfg, data_paths, data, soft, built, sets, split, started)
            thresholds = {label: round(float(t), 4) for label, t in zip(data.labels, fitted.thresholds, strict=True)}
            verdict = judge(
                Path(out_repo), data.labels, val_set, fitted.validation, cfg, built.device, fitted.epochs_run
            )
            metrics["publish"] = verdict.record()
            manifest = manifest_for(
                cfg, data.labels, thresholds, built.preprocessing, metrics, data.fingerprint, training_args
            ).model_copy(update={"ngrams": member.spec if member else None})
            target = Path(out_repo) if verdict.publish else Path(out_repo) / CANDIDATES
            version, manifest = publish(target, built, manifest, member, Path(workdir) / "stage", val_set.texts, cfg)
            return _finish(runlog, target, version, manifest, started, verdict)
        finally:
            runlog.close()


def _finish(runlog: RunLog, repo: Path, version: int, manifest: Any, started: float, verdict: Verdict) -> TrainResult:
    elapsed = round(time.monotonic() - started, 1)
    kind = "published" if verdict.publish else "candidate"
    runlog.write(
        {
            "type": kind,
            "repo": str(repo),
            "version": version,
            **manifest.metrics,
            "thresholds": manifest.thresholds,
            "elapsed_s": elapsed,
        }
    )
    runlog.plot()
    runlog.write_json(
        "summary.json",
        {
            "repo": str(repo),
            "version": version,
            "published": verdict.publish,
            "reason": verdict.reason,
            "metrics": manifest.metrics,
            "thresholds": manifest.thresholds,
            "training_args": manifest.training_args,
        },
    )
    if verdict.publish:
        log.info("published %s version %d in %.0fs (run directory %s)", repo, version, elapsed, runlog.dir)
    else:
        log.warning("not published, kept as candidate %s/%d: %s", repo, version, verdict.reason)
    return TrainResult(
        version,
        repo,
        manifest.metrics,
        manifest.thresholds,
        runlog.dir,
        verdict.publish,
        verdict.reason,
        repo / str(version),
    )


def train_model(
    data_paths: Sequence[Path | str],
    out_repo: Path | str,
    labels: Sequence[str] | None = None,
    preset: str = "tiny",
    epochs: int = 40,
    max_minutes: float | None = 2.0,
    **options: Any,
) -> int:
    """Train on ``data_paths`` and publish into ``out_repo``; returns the version number.

    The defaults suit a demo: a tiny model from scratch, at most 40 epochs or 2 minutes (a few hundred
    labelled comments train in well under a minute on one CPU core). ``options`` are further
    :class:`TrainConfig` fields (``lr``, ``batch_size``, ``seed``, ``run_dir``, ``threads``, ``quiet``…), checked
    as their flags are (:class:`~worker.errors.ConfigError` naming the flag of an invalid value).
    """
    unknown = sorted(set(options) - set(TrainConfig.model_fields))
    if unknown:
        raise TypeError(f"unknown training options: {', '.join(unknown)}")
    cfg = validate_options(
        TrainConfig, {"labels": labels, "preset": preset, "epochs": epochs, "max_minutes": max_minutes, **options}
    )
    result = train(data_paths, out_repo, cfg)
    if not result.published:
        raise LivetopicError(f"not published (kept as candidate {result.path}): {result.reason}")
    return result.version
