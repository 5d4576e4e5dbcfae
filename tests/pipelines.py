"""Three tiny untrained layers with different label sets, as the research's cascade has them: general (Game on
for about half the sample's comments: its threshold is Game's median score there), game, and a 3-class
sentiment layer."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from worker.inputs import read_records
from worker.model.load import load_model
from worker.model.repository import MANIFEST_NAME, read_manifest
from worker.model.untrained import init_version

from .conftest import LABELS, SAMPLE

GAME_LABELS = ["Player", "Team", "Judge", "Coach", "Tactics"]
SENTIMENT_LABELS = ["negative", "neutral", "positive"]


def sample_texts() -> list[str]:
    return [r.fields["text"] for r in read_records([SAMPLE])]


def make_layers(root: Path) -> dict[str, Path]:
    """Repositories ``root/general``, ``root/game``, ``root/sentiment``, one version each."""
    texts = sample_texts()
    general = root / "general"
    vdir = general / str(init_version(general, preset="tiny", labels=LABELS, texts=texts, name="general"))
    probs = load_model(vdir, device="cpu", dtype="float32").predict_texts(texts)
    game_threshold = float(np.median(probs[:, LABELS.index("Game")]))
    manifest = read_manifest(vdir).model_copy(update={"thresholds": {"Game": game_threshold}})
    (vdir / MANIFEST_NAME).write_text(manifest.model_dump_json(), encoding="utf-8")
    init_version(root / "game", preset="tiny", labels=GAME_LABELS, texts=texts, name="game", seed=1)
    init_version(
        root / "sentiment",
        preset="tiny",
        labels=SENTIMENT_LABELS,
        texts=texts,
        name="sentiment",
        multi_label=False,
        seed=2,
    )
    return {"general": general, "game": root / "game", "sentiment": root / "sentiment"}


def stage_flags(layers: dict[str, Path]) -> list[str]:
    """``pipeline build``'s flags for the three layers (game only where general says Game)."""
    return [
        "--stage",
        f"general={layers['general']}",
        "--stage",
        f"game={layers['game']}:1:when=general.Game",
        "--stage",
        f"sentiment={layers['sentiment']}",
    ]
