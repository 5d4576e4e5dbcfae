"""Pieces of ``livetopic bench`` that need no worker: the parser contract, text drawing, the vocabulary
guard, batch statistics, percentiles, the CPU meter and the table."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from worker.cli import build_parser
from worker.errors import ConfigError, LivetopicError
from worker.options import options_from_args, settings_from_args
from worker.settings import Settings
from worker.tools.bench import command as bench
from worker.tools.bench.load import CpuMeter, percentiles
from worker.tools.bench.records import DEFAULT_PRESET, BenchOptions
from worker.tools.bench.steps import draw, load_texts
from worker.tools.bench.table import render_table
from worker.tools.bench.workers import batch_stats, worker_layout


def _bench_args(*argv: str) -> tuple[BenchOptions, Settings]:
    args = build_parser().parse_args(["bench", *argv])
    assert args.func.run is bench.cmd_bench
    return options_from_args(args, BenchOptions), settings_from_args(args)


def test_parser_accepts_the_contract_flags(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [k for k in os.environ if k.startswith("LIVETOPIC_")]:
        monkeypatch.delenv(key)
    options, settings = _bench_args(
        "--preset",
        "bert-base-chinese",
        "--texts",
        "a",
        "b",
        "--n",
        "7",
        "--device",
        "cpu",
        "--redis-url",
        "redis://x:1/0",
        "--json",
        "--max-batch-size",
        "64",
    )
    assert (options.preset, options.texts, options.n, options.as_json) == (
        "bert-base-chinese",
        [Path("a"), Path("b")],
        7,
        True,
    )
    assert (settings.device, settings.redis_url, settings.max_batch_size) == ("cpu", "redis://x:1/0", 64)
    options, settings = _bench_args("--model", "repo", "--texts", "t")
    assert options.model == Path("repo") and options.preset is None and settings.device == "auto"
    assert _bench_args("--texts", "t")[0].preset == DEFAULT_PRESET
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--model", "r", "--preset", "tiny", "--texts", "t"])
    with pytest.raises(ConfigError, match="--preset: 'huge' is not one of"):
        _bench_args("--preset", "huge", "--texts", "t")
    with pytest.raises(ConfigError, match="--preset null"):
        bench.cmd_bench(*_bench_args("--texts", "t", "--backend", "null"))


def test_draw_wraps_around_a_small_pool() -> None:
    assert draw(["a", "b", "c"], 2, 5) == ["c", "a", "b", "c", "a"]


def test_load_texts_drops_unusable_comments(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}) for t in ["ok", "   ", "x" * 50, "fine"]), encoding="utf-8")
    assert load_texts([path], max_chars=10) == ["ok", "fine"]
    with pytest.raises(LivetopicError):
        load_texts([path], max_chars=1)


def test_batch_stats_from_metric_deltas() -> None:
    before = {"livetopic_batch_size_count": 2, "livetopic_batch_size_sum": 10}
    after = {
        "livetopic_batch_size_count": 6,
        "livetopic_batch_size_sum": 90,
        "livetopic_batch_tokens_sum": 800,
        "livetopic_padded_tokens_total": 1000,
    }
    assert batch_stats(before, after) == {"mean_batch_size": 20.0, "padding_fill": 0.8}
    assert batch_stats(after, after) == {}
    # the models' busy share: every stage's forward time over the phase's seconds × workers
    before |= {'livetopic_stage_inference_seconds_sum{stage="general"}': 1.0}
    after |= {
        'livetopic_stage_inference_seconds_sum{stage="general"}': 4.0,
        'livetopic_stage_inference_seconds_sum{stage="game"}': 1.5,
        'livetopic_stage_inference_seconds_count{stage="game"}': 99.0,  # a count, not seconds
    }
    assert batch_stats(before, after, capacity_s=2 * 5.0)["model_busy"] == pytest.approx((3.0 + 1.5) / 10.0)
    assert "model_busy" not in batch_stats(before, after)


def test_percentiles_and_cpu_meter() -> None:
    p = percentiles(np.arange(1, 101, dtype=float))
    assert p["50"] == pytest.approx(50.5) and p["99"] == pytest.approx(99.01)
    assert all(math.isnan(v) for v in percentiles(np.array([])).values())
    meter = CpuMeter().start()
    sum(i * i for i in range(200_000))
    cores = meter.stop()
    assert math.isnan(cores) or cores >= 0.0


def bench_result(dtype: str, backend: str, n: int, workers: int) -> dict[str, Any]:
    """The head of a result of ``livetopic bench``: untrained model m/1 on two threads of a CPU "Some Xeon",
    ``workers`` single-threaded workers over ``n`` comments."""
    head = {"model": "m/1", "untrained": True, "device": "cpu", "dtype": dtype, "backend": backend, "threads": 2}
    return {**head, "n": n, "workers": workers, "worker_threads": 1, "cpu_model": "Some Xeon"}


def test_table_names_every_step() -> None:
    result = bench_result("int8", "onnxruntime", 100, 2) | {
        "cpu_features": {"avx512f": True, "avx512_vnni": False, "amx_int8": False},
        "agreement_n": 50,
        "label_agreement": 0.996,
        "prob_max_abs_diff": 0.002,
        "near_threshold_fraction": 0.1,
        "model_only_comments_per_s": 150.0,
        "float32_model_only_comments_per_s": 60.0,
        "engines_threads": 1,
        "engines": {
            "onnxruntime:int8": {
                "label_agreement": 0.996,
                "prob_max_abs_diff": 0.002,
                "comments_per_s": 150.0,
                "comments_per_s_batch_4": 120.0,
                "comments_per_s_batch_1": 110.0,
            },
            "torch:float32": {
                "label_agreement": 1.0,
                "prob_max_abs_diff": 0.0,
                "comments_per_s": 60.0,
                "comments_per_s_batch_4": 30.0,
                "comments_per_s_batch_1": 12.0,
            },
        },
        "baseline_comments_per_s": 10.0,
        "baseline_n": 20,
        "baseline_extrapolated": True,
        "worker_comments_per_s": 120.0,
        "speedup": 12.0,
        "latency_ms_p50": 500.0,
        "latency_ms_p95": 900.0,
        "latency_ms_p99": 990.0,
        "half_load_n": 100,
        "half_load_rate": 60.0,
        "half_load_latency_ms_p50": 80.0,
        "half_load_latency_ms_p99": 200.0,
        "half_load_model_busy": 0.874,
        "mean_batch_size": 50.0,
        "padding_fill": 0.95,
        "matmul_tflops": 0.4,
        "matmul_tflops_by_dtype": {"float32": 0.1, "int8": 0.4},
        "ceiling_dtype": "int8",
        "gflops_per_comment": 2.1,
        "mean_tokens_per_comment": 12.3,
        "compute_bound_comments_per_s": 190.0,
        "chosen_dtype_compute_bound_comments_per_s": 190.0,
        "fraction_of_ceiling": 0.63,
        "baseline_label_agreement": 1.0,
        "other_cpu_cores_baseline": 0.1,
        "other_cpu_cores_worker": float("nan"),
    }
    table = render_table(result)
    for text in (
        "80 / 200, 87%",  # half load: p50 / p99, the models' busy share
        "99.60%",
        "12.0×",
        "measured on 20 of 100",
        "63%",
        "int8 400",
        "(untrained)",
        "n/a",
        "Some Xeon",
        "avx512f",
        "onnxruntime",
        "best dtype: int8",
        "110.0 at batch 1",
    ):
        assert text in table, text
    assert "avx512_vnni" not in table  # only the features the CPU has


def test_null_table_reports_the_host_path() -> None:
    result = bench_result("float32", "null", 1000, 1) | {
        "cpu_features": {"avx512f": False},
        "cpu_emulated": "avx2",
        "host_path_comments_per_s": 12345.6,
        "worker_comments_per_s": 12345.6,
        "latency_ms_p50": 50.0,
        "latency_ms_p95": 70.0,
        "latency_ms_p99": 80.0,
        "half_load_n": 1000,
        "half_load_rate": 6000.0,
        "half_load_latency_ms_p50": 5.0,
        "half_load_latency_ms_p99": 9.0,
        "mean_batch_size": 200.0,
        "other_cpu_cores_worker": 0.1,
        "other_cpu_cores_half_load": 0.2,
    }
    table = render_table(result)
    for text in ("null stand-in", "12,345.6 comments/s", "none of avx512f", "emulating the avx2 class", "one worker"):
        assert text in table, text
    assert "speedup" not in table


def test_worker_layout(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2, 3}, raising=False)
    assert worker_layout("cpu", None, None) == (4, 1)  # one single-threaded worker per core
    assert worker_layout("cpu", None, 2) == (2, 2)
    assert worker_layout("cpu", 1, None) == (1, 4)
    assert worker_layout("cpu", 3, 1) == (3, 1)
    assert worker_layout("cuda", None, None) == (1, 4)
