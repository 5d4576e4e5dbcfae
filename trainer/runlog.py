"""The run directory of a training job: a JSONL metrics log and a PNG of the training curves."""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from pathlib import Path
from typing import Any

__all__ = ["RunLog", "default_run_dir"]

log = logging.getLogger(__name__)


def default_run_dir() -> Path:
    return Path("runs") / time.strftime("%Y%m%d-%H%M%S")


def _clean(value: Any) -> Any:
    """JSON-safe: NaN/inf become null, numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


# English names of the chat topics, for the legend: the default font has no CJK glyphs.
_TOPIC_NAMES = {
    "轉播": "broadcast",
    "加油": "cheer",
    "閒聊": "chat",
    "球員": "player",
    "教練": "coach",
    "裁判": "referee",
    "戰術": "tactics",
    "球隊": "team",
}


def _legend_name(label: str) -> str:
    return label if label.isascii() else _TOPIC_NAMES.get(label, label)


class RunLog:
    """Appends one JSON object per line to ``run_dir/metrics.jsonl`` and plots ``run_dir/curves.png``."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.path = self.dir / "metrics.jsonl"
        self.plot_path = self.dir / "curves.png"
        self.records: list[dict[str, Any]] = []
        self._fh = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def write(self, record: dict[str, Any]) -> None:
        record = _clean({"time": round(time.time(), 3), **record})
        self.records.append(record)
        self._fh.write(json.dumps(record, ensure_ascii=False) + "\n")
        self._fh.flush()

    def write_json(self, name: str, data: dict[str, Any]) -> Path:
        path = self.dir / name
        path.write_text(json.dumps(_clean(data), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return path

    def close(self) -> None:
        self._fh.close()

    def plot(self) -> Path | None:
        """Training loss per step, validation loss and F1 per epoch, per-label F1 per epoch."""
        steps = [r for r in self.records if r.get("type") == "step"]
        epochs = [r for r in self.records if r.get("type") == "epoch"]
        if not steps and not epochs:
            return None
        try:
            import matplotlib
        except ImportError:  # the base install: matplotlib comes with the [train] extra
            log.info("matplotlib is not installed (pip install 'livetopic[train]'): no %s", self.plot_path.name)
            return None

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        with warnings.catch_warnings():
            # label names may be CJK, which the default font lacks; the curves matter, not the glyphs
            warnings.filterwarnings("ignore", message=r"Glyph .* missing from")
            fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
            ax = axes[0]
            if steps:
                ax.plot([r["step"] for r in steps], [r["loss"] for r in steps], label="train loss", lw=1)
            if epochs:
                ax.plot([r["step"] for r in epochs], [r.get("val_loss") for r in epochs], "o-", label="val loss")
            ax.set_xlabel("step")
            ax.set_title("loss")
            ax.legend()
            ax = axes[1]
            for key in ("micro_f1", "macro_f1", "exact_match"):
                ax.plot([r["epoch"] for r in epochs], [r.get(key) for r in epochs], "o-", label=f"val {key}")
            ax.set_xlabel("epoch")
            ax.set_title("validation")
            ax.legend()
            ax = axes[2]
            labels = list(epochs[-1].get("per_label_f1", {})) if epochs else []
            for label in labels:
                ax.plot(
                    [r["epoch"] for r in epochs],
                    [r["per_label_f1"].get(label) for r in epochs],
                    "o-",
                    label=_legend_name(label),
                )
            ax.set_xlabel("epoch")
            ax.set_title("validation F1 per label")
            if labels:
                ax.legend(fontsize="small")
            fig.tight_layout()
            fig.savefig(self.plot_path, dpi=90)
            plt.close(fig)
        return self.plot_path
