"""The models people already have, as a user meets them: ``livetopic model pull`` from a stand-in for the Hugging
Face Hub (tests/hub.py: nothing leaves the machine) of faithful copies of the four seed checkpoints' layouts
(tests/hubseeds.py), then ``livetopic worker`` classifying pushed comments exactly once with the reference
pipeline's scores; revisions pinned, offline pulls from the Hub cache, private models and mistakes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import redis

from worker.model.repository import read_manifest
from worker.tools.embedded import EmbeddedRedis
from worker.tools.process import WorkerProcess, child_env

from ..cli.helpers import livetopic, one_line_error, reloading_worker_flags, wait_for, wait_for_metric
from ..hub import HubRepo, StandInHub
from ..hubseeds import SEEDS, Seed, reference_scores, seed_files, seed_texts, write_files

TOLERANCE = 1e-4  # fp32 scores against the reference pipeline's (published to 4 decimals: within 5e-5 more)


def hub_env(hub: StandInHub, home: Path, *, offline: bool = False, token: str | None = None) -> dict[str, str]:
    """A pull's environment: the stand-in as HF_ENDPOINT, a Hub cache of the test's own."""
    env = child_env(threads=1)
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN"):
        env.pop(name, None)
    env.update(
        HF_ENDPOINT=hub.url,
        HF_HOME=str(home),
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        **({"HF_HUB_OFFLINE": "1"} if offline else {}),
        **({"HF_TOKEN": token} if token else {}),
    )
    return env


def _push(url: str, seed: Seed, number: int, tmp_path: Path) -> list[str]:
    """The seed's comments into the input stream with ``livetopic push``; their ids."""
    ids = [f"{seed.name}-{k}" for k in range(len(seed_texts(seed)))]
    path = tmp_path / f"{seed.name}.jsonl"
    path.write_text(
        "".join(
            json.dumps({"text": t, "id": i}, ensure_ascii=False) + "\n"
            for t, i in zip(seed_texts(seed), ids, strict=True)
        ),
        encoding="utf-8",
    )
    proc = livetopic("push", "--redis-url", url, "--quiet", str(path))
    assert proc.returncode == 0, proc.stderr
    return ids


def _check_scores(results: list[dict[str, str]], seed: Seed, published: Path, tag: str) -> None:
    expected = reference_scores(published, seed_texts(seed))
    by_id = {r["id"]: r for r in results if r.get("id", "").startswith(seed.name + "-")}
    assert len(by_id) == len(expected)
    for k, want in enumerate(expected):
        result = by_id[f"{seed.name}-{k}"]
        scores = json.loads(result["scores"])
        assert result["model"] == tag and list(scores) == seed.labels  # labels as published
        assert max(abs(scores[label] - w) for label, w in zip(seed.labels, want, strict=True)) <= TOLERANCE


@pytest.mark.slow
@pytest.mark.timeout(1500)
def test_the_four_seed_checkpoints_pulled_from_the_hub_serve_as_published(
    redis_server: EmbeddedRedis, tmp_path: Path
) -> None:
    repo, caches = tmp_path / "models", [tmp_path / "xdg", tmp_path / "tmp"]
    for place in caches:
        place.mkdir()
    client = redis.Redis.from_url(redis_server.url, decode_responses=True)
    env = child_env(threads=1, extra={"XDG_CACHE_HOME": str(caches[0]), "TMPDIR": str(caches[1])})
    worker = WorkerProcess(
        reloading_worker_flags(redis_server.url, repo, "--dtype", "float32"),
        tmp_path / "worker.log",
        env=env,
        cwd=tmp_path,
    )
    pushed: list[str] = []
    with StandInHub() as hub:
        try:
            for number, seed in enumerate(SEEDS, 1):
                files = seed_files(seed)
                hub.add(HubRepo(seed.hub_id)).push(files)
                proc = livetopic(
                    "model",
                    "pull",
                    seed.hub_id,
                    "--repo",
                    str(repo),
                    *(["--change-labels"] if number > 1 else []),
                    env=hub_env(hub, tmp_path / "hf"),
                    timeout_s=600,
                )
                assert proc.returncode == 0, proc.stderr[-3000:]
                assert f"published {repo / str(number)}" in proc.stdout
                assert not set(hub.downloaded(seed.hub_id)) & set(seed.ignored)  # safetensors if any; no extras
                if number == 1:
                    worker.start().wait_ready(300)
                else:
                    wait_for_metric(
                        worker,
                        'livetopic_model_reloads_total{result="ok"}',
                        number - 1,
                        300,
                        f"version {number} is hot-reloaded",
                    )
                pushed += _push(redis_server.url, seed, number, tmp_path)
                total = len(pushed)
                wait_for(
                    lambda n=total: client.xlen("livetopic:topics") == n,
                    300,
                    f"{seed.name}'s comments are classified",
                    worker.log_path,
                )
                results = [fields for _id, fields in client.xrange("livetopic:topics")]
                _check_scores(
                    results, seed, write_files(files, tmp_path / "published" / seed.name), f"{seed.name}:{number}"
                )
            assert worker.stop() == 0
        finally:
            worker.stop()
    results = [fields for _id, fields in client.xrange("livetopic:topics")]
    assert sorted(r["id"] for r in results) == sorted(pushed) and client.xlen("livetopic:dead") == 0  # once each
    # the graphs were published with each version: the worker exported nothing, anywhere
    assert "exported" not in worker.log_tail(10**6)
    assert not list(repo.glob("*/.onnx")) and not list(repo.glob(".stage-*"))
    assert not [p for place in caches for p in place.rglob("*") if "livetopic" in p.name or p.suffix == ".onnx"]
    bertweet = read_manifest(repo / "4")
    assert bertweet.source is not None and bertweet.source.converted == {"pytorch_model.bin": "model.safetensors"}
    assert "onnxruntime:int8" in bertweet.dtype_agreement  # the agreement rule's record, for dtype=auto


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_revisions_are_pinned_and_the_cache_serves_offline(tmp_path: Path) -> None:
    seed = next(s for s in SEEDS if s.name == "distilbert-sst2")
    repo, home = tmp_path / "models", tmp_path / "hf"
    first, second = seed_files(seed, 0), seed_files(seed, 1)
    with StandInHub() as hub:
        hub_repo = hub.add(HubRepo(seed.hub_id))
        tagged = hub_repo.push(first, ref="v1")
        main = hub_repo.push(second)
        proc = livetopic(
            "model", "pull", f"{seed.hub_id}@v1", "--repo", str(repo), env=hub_env(hub, home), timeout_s=600
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        source = read_manifest(repo / "1").source
        assert source is not None and (source.revision, source.commit) == ("v1", tagged)
        assert {n: r.sha256 for n, r in source.files.items()} == {
            n: hashlib.sha256(first[n]).hexdigest() for n in source.files
        }
        # the same labels and nothing to compare on: train's gate keeps it as a candidate, promote publishes it
        proc = livetopic("model", "pull", seed.hub_id, "--repo", str(repo), env=hub_env(hub, home), timeout_s=600)
        assert proc.returncode == 3 and "NOT published" in proc.stdout and "--force" in proc.stdout, proc.stderr
        candidate = read_manifest(repo / "candidates" / "1").source
        assert candidate is not None and candidate.commit == main
        proc = livetopic("model", "promote", "1", "--repo", str(repo))
        assert proc.returncode == 0 and f"published {repo / '2'}" in proc.stdout, proc.stderr
        one_line_error(
            livetopic("model", "pull", f"{seed.hub_id}@v9", "--repo", str(repo), env=hub_env(hub, home)),
            "has no revision 'v9'",
        )
        one_line_error(
            livetopic("model", "pull", "seed/no-such-model", "--repo", str(repo), env=hub_env(hub, home)),
            "no such model on the Hub",
        )
        hub.add(HubRepo("seed/private", token="hf_secret")).push(first)
        one_line_error(
            livetopic("model", "pull", "seed/private", "--repo", str(tmp_path / "p"), env=hub_env(hub, home)),
            "needs HF_TOKEN",
        )
        proc = livetopic(
            "model",
            "pull",
            "seed/private",
            "--repo",
            str(tmp_path / "p"),
            env=hub_env(hub, home, token="hf_secret"),
            timeout_s=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        # offline (HF_HUB_OFFLINE=1): not one request; the cache has v1, pinned to the same commit
        asked = len(hub.requests)
        proc = livetopic(
            "model",
            "pull",
            f"{seed.hub_id}@v1",
            "--repo",
            str(repo),
            "--force",
            env=hub_env(hub, home, offline=True),
            timeout_s=600,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert read_manifest(repo / "3").source.commit == tagged  # type: ignore[union-attr]
        assert len(hub.requests) == asked
        one_line_error(
            livetopic("model", "pull", "seed/never-pulled", "--repo", str(repo), env=hub_env(hub, home, offline=True)),
            "no complete copy",
        )
    # the Hub out of reach: the same one line
    one_line_error(
        livetopic("model", "pull", "seed/never-pulled", "--repo", str(repo), env=hub_env(hub, home)),
        "the Hub cannot be asked",
    )
