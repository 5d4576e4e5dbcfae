"""``train`` and ``evaluate`` as a user meets them: a run ends within its --max-minutes; a run worse than the
version it would replace is kept as a candidate (exit 3) unless --force; published weights are readable by
every user; ``evaluate`` scores a version only on games it never saw (or, labelled, on its validation games),
with the same default split as ``train``, in a table aligned for Chinese label names."""

from __future__ import annotations

import json
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from trainer.config import TrainConfig
from trainer.data import load_dataset
from trainer.evaluate import evaluate_model
from trainer.gate import judge
from trainer.loop import reserve_s
from worker.display import width
from worker.errors import ConfigError
from worker.model.repository import list_versions, read_manifest
from worker.tools.process import child_env

from ..conftest import ROOT
from ..trainer.test_train_publish import write_sample
from .helpers import livetopic, one_line_error, run_command

BUDGET_MIN = 0.75  # loading, the model's set-up and the 10 s reserve take ~20 s of it on a busy 2-core machine
QUICK = ["--preset", "tiny", "--batch-size", "16", "--threads", "1", "--agreement-n", "0", "--quiet"]


def _args(data: Path, repo: Path, run: Path, *flags: str) -> list[str]:
    return ["train", "--data", str(data), "--out", str(repo), "--run-dir", str(run), *QUICK, *flags]


def _train(data: Path, repo: Path, run: Path, *flags: str) -> tuple[Any, float]:
    started = time.monotonic()
    proc = livetopic(*_args(data, repo, run, *flags), timeout_s=300)
    return proc, time.monotonic() - started


def _both(*runs: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Several ``livetopic`` runs side by side (each on one thread: CI has two cores)."""
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "worker", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=ROOT,
            env=child_env(threads=1),
        )
        for args in runs
    ]
    outputs = [p.communicate(timeout=300) for p in procs]
    return [subprocess.CompletedProcess(p.args, p.returncode, *out) for p, out in zip(procs, outputs, strict=True)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("cli-train")
    data = write_sample(root / "data", games=5, per_game=40)
    repo = root / "models"
    good, good_s = _train(
        data,
        repo,
        root / "run-good",
        "--max-minutes",
        str(BUDGET_MIN),
        "--epochs",
        "100000",
        "--patience",
        "100000",
        "--lr",
        "3e-3",
    )
    forced_repo = root / "models-forced"  # the same start, for the same worse run with --force
    shutil.copytree(repo, forced_repo)
    worse = ("--epochs", "1", "--lr", "1e-6", "--no-ngrams")  # an encoder that learnt nothing, and nothing beside it
    bad, forced = _both(
        _args(data, repo, root / "run-bad", *worse),
        _args(data, forced_repo, root / "run-forced", *worse, "--force"),
    )
    return {
        "root": root,
        "data": data,
        "repo": repo,
        "good": good,
        "good_s": good_s,
        "bad": bad,
        "forced": forced,
        "forced_repo": forced_repo,
    }


@pytest.mark.slow
def test_max_minutes_bounds_the_whole_run(runs: dict[str, Any]) -> None:
    assert runs["good"].returncode == 0, runs["good"].stderr
    summary = json.loads((runs["root"] / "run-good" / "summary.json").read_text())
    assert summary["metrics"]["stop_reason"] == "time"  # the budget, not the epochs, ended it
    assert summary["training_args"]["elapsed_s"] <= BUDGET_MIN * 60 + 10
    assert runs["good_s"] <= BUDGET_MIN * 60 + 60  # the process, interpreter start included


def test_the_time_reserve_covers_the_scoring_after_the_fit() -> None:
    # the measured scoring speed (a validation sample before training, then each validation), 25% margin, + 10 s
    assert reserve_s(30_000, 0.002) == pytest.approx(30_000 * 0.0025 + 10)
    assert reserve_s(0, None) == 10


@pytest.mark.slow
def test_a_worse_run_is_kept_as_a_candidate_unless_forced(runs: dict[str, Any]) -> None:
    repo = runs["repo"]
    assert "published" in runs["good"].stdout and "the first version of" in runs["good"].stdout
    bad = runs["bad"]
    assert bad.returncode == 3, bad.stdout + bad.stderr
    assert bad.stdout.startswith("NOT published: validation micro F1 ")
    assert "worse than the version it would replace" in bad.stdout and f"{repo}/candidates/1" in bad.stdout
    assert (repo / "candidates" / "1" / "livetopic.json").is_file()
    assert list_versions(repo) == [1]  # the candidate never became a version
    assert runs["forced"].returncode == 0 and "published anyway (--force)" in runs["forced"].stdout
    assert list_versions(runs["forced_repo"]) == [1, 2]
    gate = read_manifest(runs["forced_repo"] / "2").metrics["publish"]
    assert gate["replaces"] == 1 and gate["micro_f1"] < gate["replaced_micro_f1"]


@pytest.mark.slow
def test_published_weights_are_readable_by_everyone(runs: dict[str, Any]) -> None:
    vdir = runs["repo"] / "1"
    assert stat.S_IMODE(vdir.stat().st_mode) == 0o755
    for path in vdir.rglob("*"):  # the ONNX graphs the trainer leaves in .onnx/ included
        assert stat.S_IMODE(path.stat().st_mode) == (0o755 if path.is_dir() else 0o644), path


@pytest.mark.slow
def test_the_gate_on_labels_and_force(runs: dict[str, Any]) -> None:
    data = load_dataset([runs["data"]])
    val = data.in_groups(read_manifest(runs["repo"] / "1").training_args["val_games"])
    worse = {"micro_f1": 0.0}
    assert not judge(runs["repo"], data.labels, val, worse, TrainConfig(), "cpu").publish
    assert judge(runs["repo"], data.labels, val, worse, TrainConfig(force=True), "cpu").publish
    other = ["Chat", "Cheer"]
    refused = judge(runs["repo"], other, val, {"micro_f1": 1.0}, TrainConfig(force=True), "cpu")
    assert not refused.publish and "--change-labels" in refused.reason
    assert judge(runs["repo"], other, val, {"micro_f1": 0.0}, TrainConfig(change_labels=True), "cpu").publish
    untrained = judge(runs["repo"], data.labels, val, {"micro_f1": 1.0}, TrainConfig(force=True), "cpu", 0)
    assert not untrained.publish and "no epoch finished" in untrained.reason


@pytest.mark.slow
def test_evaluate_never_scores_training_games(runs: dict[str, Any]) -> None:
    repo, data = runs["repo"], runs["data"]
    args = read_manifest(repo / "1").training_args
    assert args["test_fraction"] == 0.2 and len(args["test_games"]) == 1  # train's default = evaluate's
    proc = livetopic("evaluate", "--model", f"{repo}/1", "--data", str(data), "--json")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["split"] == "test" and result["games"] == 1 and result["n"] == 40  # its one unseen game
    # train and evaluate speak of games alike: train said on how many games it validated (and tested)
    assert "validation on 1 games: n=40 " in runs["good"].stdout, runs["good"].stdout
    one_line_error(
        livetopic("evaluate", "--model", f"{repo}/1", "--data", str(data), "--split", "train"),
        "version 1 was trained on 3 of these games",
        "--split test",
    )
    for kwargs in ({"split": "all"}, {"test_fraction": 0.2}):
        with pytest.raises(ConfigError):
            evaluate_model(repo / "1", [data], device="cpu", **kwargs)  # type: ignore[arg-type]
    val = evaluate_model(repo / "1", [data], split="val", device="cpu", dtype="float32")
    assert val["seen_by_model"] == "validation" and val["games"] == 1


def test_evaluate_table_is_aligned_for_chinese_labels(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from worker.model.untrained import init_version

    labels = ["加油", "閒聊", "Broadcast"]
    texts = ["加油加油", "晚安大家", "畫面卡住了", "好球"]
    init_version(tmp_path / "repo", preset="tiny", labels=labels, texts=texts)
    data = tmp_path / "labelled.jsonl"
    rows = [{"text": t, "加油": i % 2, "閒聊": (i + 1) % 2, "Broadcast": int(i == 2)} for i, t in enumerate(texts)]
    data.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    capsys.readouterr()
    evaluated = run_command(
        "evaluate", "--model", str(tmp_path / "repo"), "--data", str(data), "--device", "cpu", "--dtype", "float32"
    )  # in this process, and no int8 graph to make: the table is the point
    assert evaluated == 0
    out = capsys.readouterr().out.splitlines()
    per_label, spread = out[1 : 2 + len(labels)], out[3 + len(labels) : 4 + 2 * len(labels)]
    for table in (per_label, spread):  # the per-label metrics, then each label's threshold spread across games
        assert [line.split()[0] for line in table] == ["label", *labels]
        # every column after the label ends at the same screen position on every row
        ends = {tuple(width(line[: m.end()]) for m in re.finditer(r"\S+", line))[1:] for line in table}
        assert len(ends) == 1, table
