"""Masked-LM pre-training of a from-scratch encoder on the training text (``--pretrain-minutes``).

Comments are short (a median of 7 characters), so consecutive comments of a game are packed into
sequences of up to ``max_length`` tokens, separated by ``[SEP]``. 15 % of the real tokens are chosen;
of those 80 % become ``[MASK]``, 10 % a random token and 10 % stay. The learning rate warms up and
decays linearly over the time budget. Afterwards the encoder weights are copied into the classifier.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from worker.text import Preprocessor

from .encoding import encode_texts, serving_backend

if TYPE_CHECKING:
    from .runlog import RunLog
    from .train import TrainConfig

__all__ = ["mask_tokens", "pack_sequences", "pretrain_encoder"]

log = logging.getLogger(__name__)


def pack_sequences(ids: list[list[int]], max_length: int, cls_id: int, sep_id: int) -> list[list[int]]:
    """``[CLS] a [SEP] b [SEP] …`` up to ``max_length`` tokens; ``ids`` carry their own CLS/SEP."""
    packed: list[list[int]] = []
    current = [cls_id]
    for row in ids:
        body = [t for t in row if t not in (cls_id, sep_id)][: max_length - 2]
        if not body:
            continue
        if len(current) + len(body) + 1 > max_length:
            packed.append(current)
            current = [cls_id]
        current += [*body, sep_id]
    if len(current) > 1:
        packed.append(current)
    return packed


def mask_tokens(input_ids: Any, mask: Any, special: Any, mask_id: int, vocab_size: int, rng: Any,
                probability: float = 0.15) -> tuple[Any, Any]:
    """(masked inputs, labels with -100 where no prediction is wanted), BERT's 80/10/10 scheme."""
    import torch

    candidates = mask.bool() & ~special
    chosen = (torch.rand(input_ids.shape, generator=rng) < probability) & candidates
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    inputs = input_ids.clone()
    roll = torch.rand(input_ids.shape, generator=rng)
    inputs[chosen & (roll < 0.8)] = mask_id
    random_positions = chosen & (roll >= 0.8) & (roll < 0.9)
    inputs[random_positions] = torch.randint(5, vocab_size, input_ids.shape, generator=rng)[random_positions]
    return inputs, labels


def pretrain_encoder(model: Any, tokenizer: Any, preprocess: Preprocessor, texts: list[str], cfg: TrainConfig, *,
                     device: str, autocast_dtype: Any, deadline: float, runlog: RunLog) -> dict[str, Any]:
    """Train a masked-LM head on ``model``'s encoder for ``cfg.pretrain_minutes``; returns a summary."""
    import torch
    from tqdm import tqdm
    from transformers import BertConfig, BertForMaskedLM

    from .encoding import collate, length_batches
    from .modeling import autocast, default_lr

    if not isinstance(model.config, BertConfig) or not hasattr(model, "bert"):
        log.warning("masked-LM pre-training is implemented for BERT models only; skipped")
        return {}
    budget = min(cfg.pretrain_minutes * 60, max(deadline - time.monotonic(), 0) * 0.5)
    started = time.monotonic()
    backend = serving_backend(tokenizer, cfg.max_length)
    cls_id, sep_id = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)
    mask_id, pad_id = int(tokenizer.mask_token_id), int(tokenizer.pad_token_id or 0)
    sequences = pack_sequences(encode_texts(backend, preprocess, texts), cfg.max_length, cls_id, sep_id)
    config = BertConfig.from_dict(model.config.to_dict())
    mlm: Any = BertForMaskedLM(config)
    mlm.bert.load_state_dict(model.bert.state_dict(), strict=False)
    mlm.to(device)
    mlm.train()
    lr = cfg.lr or default_lr(None, cfg.preset)
    optimizer = torch.optim.AdamW(mlm.parameters(), lr=lr, weight_decay=cfg.weight_decay)
    rng = np.random.default_rng(cfg.seed + 1)
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    step, window, losses = 0, 0.0, []
    bar = tqdm(total=int(budget), desc="pre-training (s)", file=sys.stderr, disable=not cfg.progress,
               leave=False, mininterval=1.0, dynamic_ncols=True)
    done = False
    while not done:
        for rows in length_batches([len(s) for s in sequences], cfg.batch_size, rng):
            elapsed = time.monotonic() - started
            if elapsed >= budget:
                done = True
                break
            progress = elapsed / budget
            factor = progress / 0.06 if progress < 0.06 else (1 - progress) / 0.94
            for group in optimizer.param_groups:
                group["lr"] = lr * max(factor, 0.01)
            input_ids, mask = collate(sequences, rows, pad_id)
            special = (input_ids == cls_id) | (input_ids == sep_id)
            inputs, labels = mask_tokens(input_ids, mask, special, mask_id, int(config.vocab_size), generator)
            if not bool((labels != -100).any()):
                continue
            with autocast(autocast_dtype):
                # the prediction head only on the chosen positions: the full-vocabulary projection of every
                # token would cost more than the encoder itself
                hidden = mlm.bert(input_ids=inputs.to(device), attention_mask=mask.to(device)).last_hidden_state
                chosen = labels.to(device) != -100
                logits = mlm.cls(hidden[chosen])
            loss = torch.nn.functional.cross_entropy(logits.float(), labels.to(device)[chosen])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(mlm.parameters(), 1.0)
            optimizer.step()
            step += 1
            window += float(loss.detach())
            if step % cfg.log_every == 0:
                losses.append(window / cfg.log_every)
                runlog.write({"type": "pretrain", "step": step, "mlm_loss": losses[-1],
                              "elapsed_s": round(time.monotonic() - started, 1)})
                bar.update(int(time.monotonic() - started) - bar.n)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
                window = 0.0
    bar.close()
    model.bert.load_state_dict(mlm.bert.state_dict(), strict=False)
    info = {"minutes": round((time.monotonic() - started) / 60, 2), "steps": step, "sequences": len(sequences),
            "final_mlm_loss": losses[-1] if losses else None}
    log.info("masked-LM pre-training: %d steps on %d packed sequences in %.1f min, loss %s", step,
             len(sequences), info["minutes"], info["final_mlm_loss"])
    return info
